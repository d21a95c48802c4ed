#!/bin/bash
# A Slurm batch job that outlives its time limit: checkpointed before the limit, requeued,
# and resumed from its image where it stopped.
#
#   sbatch --time=24:00:00 examples/slurm-job.sh ./solver input.dat
#
# 60 s before the time limit Slurm sends SIGTERM to this script alone (`B:`), not to the
# program. The script passes it on to `mtcp run`, which checkpoints the program into
# the job's directory, stops it and exits 85; the script then requeues the job. The
# requeued job runs this same script, and `mtcp run` resumes the program from its image
# (the same command line for the first run and every requeue). When the program ends by
# itself, the job ends with its exit status.
#
# The image directory is $MTCP_DIR if set (one per computation), else mtcp-<job id> in
# the directory sbatch was run from (the job id stays the same across requeues).
# `mtcp` must be in PATH on the node (sbatch passes the submitting shell's environment).
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --signal=B:TERM@60

dir=${MTCP_DIR:-${SLURM_SUBMIT_DIR:-$PWD}/mtcp-${SLURM_JOB_ID:?this script is meant for sbatch}}

mtcp run --dir "$dir" -- "$@" &
pid=$!
trapped=
trap 'trapped=1; kill -TERM "$pid" 2>/dev/null' TERM

# A trapped signal cuts `wait` short (status > 128): wait again for mtcp run's own status.
wait "$pid"
status=$?
while [ -n "$trapped" ]; do
    trapped=
    wait "$pid"
    rc=$?
    # 127: it had ended and been waited for already, just before the signal came.
    [ "$rc" -ne 127 ] && status=$rc
done

if [ "$status" -eq 85 ]; then
    echo "slurm-job: checkpointed; requeueing job $SLURM_JOB_ID" >&2
    scontrol requeue "$SLURM_JOB_ID" || echo "slurm-job: scontrol requeue failed" >&2
fi
exit "$status"
