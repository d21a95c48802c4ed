//! `examples/slurm-job.sh` on a real Slurm: a controller, a node and munge started by the test in its own directory, on its own ports; a job signalled before its time limit checkpoints, requeues itself, resumes from its image and ends with the result of an uninterrupted run.
//!
//! Slurm's time limits are in minutes and its warning signal (`--signal=B:TERM@60`) is
//! sent by the controller's periodic time-limit check, at most 30 s late. The job is
//! submitted with `--time=10`; once it runs, the test shortens its limit to 1 minute
//! with `scontrol update TimeLimit=1`, which puts the warning time (60 s before the
//! end) in the past: the next periodic check sends SIGTERM to the batch shell exactly
//! as it would 60 s before any time limit (Slurm's own code path, `send_job_warn_signal`,
//! not a signal of the test's). While the requeued job waits to start again the limit
//! goes back to 10 minutes, so its second run is not warned again. Two settings of the
//! test's slurm.conf keep the wait short without changing what happens:
//! `AuthInfo=cred_expire=5` (a requeued job waits cred_expire + 1 s before it may start
//! again; 120 s by default) and `SchedulerParameters=sched_interval=1` (the scheduler
//! looks at pending jobs every second instead of every minute).
//!
//! Without slurm-wlm and munge (`.ci/run` installs them) the test fails, saying so.

pub mod common;

use common::*;
use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

/// The whole test, Slurm's timers included (typically about a minute).
const TEST_LIMIT_SECS: u64 = 300;
/// How long the job may take from submission to its end.
const JOB_TIMEOUT: Duration = Duration::from_secs(200);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// The computation: 500 steps of 100 ms, so that it still runs when the warning comes
/// (at most about 35 s after the limit is shortened) and leaves work for the second run.
const STEPS: u64 = 500;
const STEP_MS: &str = "100";

extern "C" {
    fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
}
const PR_SET_CHILD_SUBREAPER: i32 = 36;

/// A Slurm program's path: in PATH, or in /usr/sbin where Debian puts the daemons.
fn slurm_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed, so this test cannot start Slurm: run .ci/run, which installs \
                 Debian's slurm-wlm and munge (apt-get install slurm-wlm munge)"
            )
        })
}

/// A TCP port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Every process below `pid` (found through /proc's parent links).
fn descendants(pid: i32) -> Vec<i32> {
    let mut parent_of = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
            .and_then(|s| s.parse::<i32>().ok());
        if let Some(ppid) = ppid {
            parent_of.push((p, ppid));
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parent_of.iter().filter(|&&(_, pp)| pp == parent).map(|&(p, _)| p));
        i += 1;
    }
    found.remove(0);
    found
}

/// munged, slurmctld and slurmd of this test. Dropping it kills them and everything
/// they started (slurmstepd and the job's processes, which this process reaps as their
/// subreaper), whether the test passed or not.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
    daemons: Vec<Proc>,
}

impl Cluster {
    fn start(t: &Test) -> Cluster {
        let (munged, slurmctld, slurmd) = (
            slurm_program("munged"),
            slurm_program("slurmctld"),
            slurm_program("slurmd"),
        );
        for client in ["sbatch", "scontrol", "sinfo"] {
            slurm_program(client);
        }
        // Orphans of the daemons (slurmstepd, the job) come to us, to be killed at the end.
        // SAFETY: prctl with integer arguments only.
        assert_eq!(unsafe { prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }, 0);
        let dir = t.subdir("slurm");
        for sub in ["munge", "state", "spool", "log"] {
            let d = dir.join(sub);
            fs::create_dir_all(&d).unwrap();
            fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
        }
        let mut key = vec![0u8; 1024];
        use std::io::Read;
        fs::File::open("/dev/urandom").unwrap().read_exact(&mut key).unwrap();
        let key_file = dir.join("munge/munge.key");
        fs::write(&key_file, &key).unwrap();
        fs::set_permissions(&key_file, fs::Permissions::from_mode(0o400)).unwrap();
        let socket = dir.join("munge/munge.socket");
        let hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let p = |sub: &str| dir.join(sub).display().to_string();
        let conf_text = format!(
            "\
ClusterName=mtcptest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={socket},cred_expire=5
SchedulerParameters=sched_interval=1
StateSaveLocation={state}
SlurmdSpoolDir={spool}
SlurmctldPidFile={log}/slurmctld.pid
SlurmdPidFile={log}/slurmd.pid
SlurmctldLogFile={log}/slurmctld.log
SlurmdLogFile={log}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/linear
MpiDefault=none
ReturnToService=2
NodeName=mtcpnode NodeAddr=127.0.0.1 NodeHostname={hostname} CPUs=1 State=UNKNOWN
PartitionName=test Nodes=mtcpnode Default=YES MaxTime=INFINITE State=UP
",
            ctld_port = free_port(),
            slurmd_port = free_port(),
            socket = socket.display(),
            state = p("state"),
            spool = p("spool"),
            log = p("log"),
            hostname = hostname.trim(),
        );
        let conf = dir.join("slurm.conf");
        fs::write(&conf, conf_text).unwrap();
        let mut cluster = Cluster {
            dir: dir.clone(),
            conf: conf.clone(),
            daemons: Vec::new(),
        };

        let mut cmd = Command::new(munged);
        cmd.arg("--foreground")
            .arg("--force") // as root, in a directory of our own
            .arg(format!("--key-file={}", key_file.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", dir.join("munge/munged.pid").display()))
            .arg(format!("--seed-file={}", dir.join("munge/munged.seed").display()))
            .arg(format!("--log-file={}", dir.join("log/munged.log").display()));
        cluster.daemons.push(Proc::spawn(cmd, "munged"));
        if poll(COMMAND_TIMEOUT, || socket.exists().then_some(())).is_none() {
            panic!("munged did not start\n{}", cluster.describe());
        }
        let mut cmd = Command::new(slurmctld);
        cmd.arg("-D").arg("-f").arg(&conf);
        cluster.daemons.push(Proc::spawn(cmd, "slurmctld"));
        let mut cmd = Command::new(slurmd);
        cmd.arg("-D").arg("-f").arg(&conf).args(["-N", "mtcpnode"]);
        cluster.daemons.push(Proc::spawn(cmd, "slurmd"));
        let idle = poll(COMMAND_TIMEOUT, || {
            thread::sleep(Duration::from_millis(200));
            let out = cluster.try_command("sinfo", &["-h", "-o", "%T"])?;
            (String::from_utf8_lossy(&out.stdout).trim() == "idle").then_some(())
        });
        if idle.is_none() {
            panic!("the Slurm node did not become idle\n{}", cluster.describe());
        }
        cluster
    }

    /// A Slurm client command with this cluster's configuration.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(slurm_program(program));
        cmd.env("SLURM_CONF", &self.conf);
        cmd
    }

    /// Runs a client command; None if it fails (the controller may not answer yet).
    fn try_command(&self, program: &str, args: &[&str]) -> Option<Output> {
        let mut cmd = self.command(program);
        cmd.args(args);
        let out = run_output(cmd, COMMAND_TIMEOUT);
        out.status.success().then_some(out)
    }

    fn run(&self, program: &str, args: &[&str]) -> String {
        let mut cmd = self.command(program);
        cmd.args(args);
        let out = run_output(cmd, COMMAND_TIMEOUT);
        assert!(
            out.status.success(),
            "{program} {args:?} failed\n{}\n{}",
            describe_output(&out),
            self.describe()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `scontrol show job -o ID` as key=value pairs.
    fn job(&self, id: &str) -> Vec<(String, String)> {
        let out = self.run("scontrol", &["show", "job", "-o", id]);
        out.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The daemons' output and logs, for failure messages.
    fn describe(&self) -> String {
        let mut s = String::new();
        for d in &self.daemons {
            s += &d.describe();
            s.push('\n');
        }
        for log in ["munged.log", "slurmctld.log", "slurmd.log"] {
            let text = fs::read_to_string(self.dir.join("log").join(log)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            s += &format!("--- {log} (last lines) ---\n");
            for l in tail.iter().rev() {
                s += l;
                s.push('\n');
            }
        }
        s
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let me = std::process::id() as i32;
        // The job's processes, slurmstepd and the daemons; again for any that a dying
        // parent left to us meanwhile.
        for _ in 0..50 {
            let left = descendants(me);
            if left.is_empty() {
                break;
            }
            for p in left {
                send_signal(p, SIGKILL);
            }
            thread::sleep(Duration::from_millis(100));
            reap_all();
        }
        self.daemons.clear();
    }
}

extern "C" {
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
}

/// Reaps the orphans that came to us as subreaper (the daemons' own `Proc`s reap theirs).
fn reap_all() {
    let mut status = 0;
    // SAFETY: status is an int to write; WNOHANG never blocks.
    while unsafe {
        waitpid(-1, &mut status, 1 /* WNOHANG */)
    } > 0
    {}
}

/// `step N HASH` lines of an output, in order.
fn steps(lines: &[&str]) -> Vec<(u64, String)> {
    lines
        .iter()
        .filter_map(|l| {
            let mut w = l.strip_prefix("step ")?.split(' ');
            Some((w.next()?.parse().ok()?, w.next()?.to_string()))
        })
        .collect()
}

#[test]
fn a_job_checkpointed_before_its_time_limit_is_requeued_and_resumes() {
    let t = Test::with_time_limit("slurm_requeue", TEST_LIMIT_SECS);
    let prog = t.compile_c("accumulate", Variant::Dynamic, &[]);
    let script = bins().root.join("examples/slurm-job.sh");

    // What the computation gives when nothing interrupts it.
    let mut cmd = Command::new(&prog);
    cmd.args([&STEPS.to_string(), "0"]);
    let reference = run_output(cmd, COMMAND_TIMEOUT);
    assert!(reference.status.success(), "{}", describe_output(&reference));
    let reference = String::from_utf8(reference.stdout).unwrap();
    let reference_lines: Vec<&str> = reference.lines().collect();
    let reference_steps = steps(&reference_lines);
    let result = reference_lines
        .iter()
        .find(|l| l.starts_with("result "))
        .unwrap()
        .to_string();

    let cluster = Cluster::start(&t);
    let ckpt = t.path("ckpt");
    let out_file = t.path("job.out");
    let mtcp_dir = bins().mtcp.parent().unwrap();
    let path = format!("{}:{}", mtcp_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut sbatch = cluster.command("sbatch");
    sbatch
        .args(["--parsable", "--time=10", "--job-name=mtcp-slurm-test"])
        .arg(format!("--output={}", out_file.display()))
        .arg(format!("--chdir={}", t.dir.display()))
        .arg(&script)
        .arg(&prog)
        .args([&STEPS.to_string(), STEP_MS])
        .env("PATH", path)
        .env("MTCP_DIR", &ckpt);
    let submitted = run_output(sbatch, COMMAND_TIMEOUT);
    assert!(
        submitted.status.success(),
        "sbatch failed\n{}\n{}",
        describe_output(&submitted),
        cluster.describe()
    );
    let id = String::from_utf8_lossy(&submitted.stdout).trim().to_string();
    let output = || fs::read_to_string(&out_file).unwrap_or_default();
    let field = |job: &[(String, String)], key: &str| {
        job.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };

    // Under way: shorten the limit so that Slurm's warning is due.
    let started = poll(JOB_TIMEOUT, || {
        thread::sleep(Duration::from_millis(100));
        steps(&output().lines().collect::<Vec<_>>()).len().ge(&20).then_some(())
    });
    if started.is_none() {
        panic!(
            "the job did not get under way\n{:?}\n{}\n{}",
            cluster.job(&id),
            output(),
            cluster.describe()
        );
    }
    cluster.run("scontrol", &["update", &format!("JobId={id}"), "TimeLimit=1"]);

    let deadline = Instant::now() + JOB_TIMEOUT;
    let mut limit_restored = false;
    let job = loop {
        let job = cluster.job(&id);
        let state = field(&job, "JobState");
        if !limit_restored && field(&job, "Restarts") == "1" {
            // Requeued: its second run gets its 10 minutes back, so it is not warned again.
            cluster.run("scontrol", &["update", &format!("JobId={id}"), "TimeLimit=10"]);
            limit_restored = true;
        }
        if !["PENDING", "RUNNING", "REQUEUED", "COMPLETING", "CONFIGURING"].contains(&state.as_str()) {
            break job;
        }
        if Instant::now() > deadline {
            panic!(
                "the job did not end within {JOB_TIMEOUT:?}: {job:?}\n--- job output ---\n{}\n{}",
                output(),
                cluster.describe()
            );
        }
        thread::sleep(Duration::from_millis(200));
    };
    let text = output();
    let context = format!("{job:?}\n--- job output ---\n{text}\n{}", cluster.describe());
    assert_eq!(field(&job, "JobState"), "COMPLETED", "{context}");
    assert_eq!(field(&job, "ExitCode"), "0:0", "{context}");
    assert_eq!(field(&job, "Restarts"), "1", "not requeued exactly once\n{context}");

    let lines: Vec<&str> = text.lines().collect();
    let position = |what: &str| {
        let found: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].contains(what)).collect();
        assert_eq!(found.len(), 1, "`{what}` is not in the output once\n{context}");
        found[0]
    };
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("start ")).count(),
        1,
        "the program started more than once\n{context}"
    );
    assert!(!lines.iter().any(|l| l.contains("BAD")), "{context}");
    let checkpointed = position("mtcp: run: checkpointed to");
    let requeued = position("slurm-job: checkpointed; requeueing job");
    let resumed = position("mtcp: run: resuming from");
    assert!(
        checkpointed < requeued && requeued < resumed,
        "checkpoint, requeue and resume are out of order\n{context}"
    );
    let image = lines[checkpointed]
        .split_once("checkpointed to ")
        .and_then(|(_, rest)| rest.split_once("; exiting 85"))
        .map(|(image, _)| PathBuf::from(image))
        .unwrap_or_else(|| panic!("no image path in {:?}", lines[checkpointed]));
    assert!(image.starts_with(&ckpt) && image.is_file(), "{}", image.display());
    assert!(lines[resumed].ends_with(&image.display().to_string()), "{context}");

    // Every step either run printed is the uninterrupted run's step, hash and all; the
    // second run goes on where the image was taken (a step printed after the checkpoint
    // may come again) and takes the computation to its end.
    let first_run = steps(&lines[..checkpointed]);
    let second_run = steps(&lines[resumed..]);
    for (n, hash) in first_run.iter().chain(&second_run) {
        assert_eq!(
            Some(hash),
            reference_steps.get(*n as usize - 1).map(|(_, h)| h),
            "step {n} differs from the uninterrupted run\n{context}"
        );
    }
    let last_before = first_run.last().map_or(0, |s| s.0);
    let first_after = second_run.first().map_or(0, |s| s.0);
    assert!(
        last_before >= 20 && first_after >= 2 && first_after <= last_before + 1,
        "the second run began at step {first_after}, the first ended at {last_before}\n{context}"
    );
    let all: Vec<u64> = first_run.iter().chain(&second_run).map(|s| s.0).collect();
    assert!(
        all.windows(2)
            .all(|w| w[1] == w[0] + 1 || (w[1] <= w[0] && w[1] == first_after)),
        "steps are missing\n{context}"
    );
    assert_eq!(all.last(), Some(&STEPS), "{context}");
    assert!(
        lines.contains(&result.as_str()),
        "the result is not {result}\n{context}"
    );
    assert!(lines.contains(&format!("done {STEPS}").as_str()), "{context}");
    let record = fs::read_to_string(ckpt.join("mtcp-run.info")).unwrap();
    assert!(record.lines().any(|l| l == "ended 0"), "{record}");
    drop(cluster);
    assert!(
        descendants(std::process::id() as i32).is_empty(),
        "processes of the cluster are left"
    );
}
