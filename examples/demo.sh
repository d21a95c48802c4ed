#!/usr/bin/env bash
# A two-minute tour of mtcp, runnable from a fresh clone:
#
#   bash examples/demo.sh
#
# It builds mtcp, compiles a tiny C counter, runs it under `mtcp launch`, checkpoints
# it, kills it with SIGKILL, looks at the image with `mtcp inspect`, brings it back
# with `mtcp restart` and shows that it carries on counting where it was.
# Exits non-zero if the restarted process does not continue. Everything it creates
# lives in a temporary directory that is removed at the end.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

heading() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { printf '\ndemo: FAILED: %s\n' "$*" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/mtcp-demo.XXXXXX")"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# `clean_exec CMD... &` runs CMD in the background job's own process (so that $! is its
# pid) with only stdin/stdout/stderr open: descriptors this shell inherited (from an
# IDE, a CI runner...) would otherwise become part of the checkpointed process.
# Only for background use: in the foreground it would replace this script.
clean_exec() {
    local fd
    for fd in /proc/$BASHPID/fd/*; do
        fd=${fd##*/}
        if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec "$@"
}

# Waits (at most $2 seconds) until file $1 has a `count N` line; prints the last N.
wait_count() {
    local file=$1 secs=$2 n
    for _ in $(seq $((secs * 10))); do
        n=$(grep -o '^count [0-9]*' "$file" 2>/dev/null | tail -n 1 | cut -d' ' -f2 || true)
        if [ -n "$n" ]; then
            echo "$n"
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# Waits (at most $3 seconds) until file $1 shows a count of at least $2.
wait_count_at_least() {
    local file=$1 want=$2 secs=$3 n
    for _ in $(seq $((secs * 10))); do
        n=$(grep -o '^count [0-9]*' "$file" 2>/dev/null | tail -n 1 | cut -d' ' -f2 || true)
        if [ -n "$n" ] && [ "$n" -ge "$want" ]; then
            echo "$n"
            return 0
        fi
        sleep 0.1
    done
    return 1
}

heading "1. Build mtcp (cargo build --release)"
cargo build --release
MTCP="$ROOT/target/release/mtcp"
[ -x "$MTCP" ] || die "$MTCP was not built"

heading "2. Compile a small C program that counts"
cat > "$WORK/counter.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    /* Some heap state that must survive the restart. */
    char *note = malloc(64);
    strcpy(note, "heap intact");
    for (long i = 1;; i++) {
        printf("count %ld (%s)\n", i, note);
        fflush(stdout);
        usleep(200 * 1000);
    }
}
EOF
gcc -O2 -o "$WORK/counter" "$WORK/counter.c"
echo "built $WORK/counter"

heading "3. Run it under mtcp:  mtcp launch --dir $WORK -- $WORK/counter"
clean_exec "$MTCP" launch --dir "$WORK" -- "$WORK/counter" > "$WORK/before.log" 2>&1 &
PID=$!
PIDS+=("$PID")
wait_count_at_least "$WORK/before.log" 5 20 > /dev/null || die "the counter did not start counting"
echo "pid $PID says:"
sed 's/^/    /' "$WORK/before.log"

heading "4. Checkpoint it while it runs:  mtcp checkpoint $PID"
BEFORE=$(wait_count "$WORK/before.log" 1)
IMAGE=$(timeout 60 "$MTCP" checkpoint --timeout 30 "$PID" | tail -n 1) || die "mtcp checkpoint failed"
AT=$(wait_count "$WORK/before.log" 1)
echo "image: $IMAGE"
echo "the counter was at $AT when the checkpoint finished"
[ -f "$IMAGE" ] || die "no image at $IMAGE"

heading "5. Kill it for good:  kill -9 $PID"
sleep 0.5
kill -9 "$PID"
wait "$PID" 2>/dev/null || true
LAST=$(wait_count "$WORK/before.log" 1)
echo "it got to count $LAST and is gone: $(kill -0 "$PID" 2>/dev/null && echo 'still alive?!' || echo 'no such process')"

heading "6. Look inside the image:  mtcp inspect $(basename "$IMAGE")"
timeout 60 "$MTCP" inspect "$IMAGE" | sed -n '1,/^regions/p' | sed 's/^/    /'
echo "    ..."
timeout 60 "$MTCP" inspect "$IMAGE" | grep '^checksums' | sed 's/^/    /'

heading "7. Bring it back:  mtcp restart $(basename "$IMAGE")"
clean_exec "$MTCP" restart "$IMAGE" > "$WORK/after.log" 2>&1 &
RPID=$!
PIDS+=("$RPID")
FIRST_LINE_OK=0
if wait_count_at_least "$WORK/after.log" 1 20 > /dev/null; then FIRST_LINE_OK=1; fi
[ "$FIRST_LINE_OK" = 1 ] || { sed 's/^/    /' "$WORK/after.log"; die "the restarted process printed nothing"; }
FIRST=$(grep -o '^count [0-9]*' "$WORK/after.log" | head -n 1 | cut -d' ' -f2)
wait_count_at_least "$WORK/after.log" $((FIRST + 5)) 20 > /dev/null || die "the restarted process stopped counting"
echo "restarted as pid $RPID, which says:"
sed 's/^/    /' "$WORK/after.log"

heading "8. Result"
if [ "$FIRST" -ge $((BEFORE + 1)) ] && [ "$FIRST" -le $((LAST + 1)) ] && grep -q 'heap intact' "$WORK/after.log"; then
    echo "OK: checkpointed at count $AT, killed at $LAST, the restarted process went on from $FIRST."
else
    die "the restarted process began at count $FIRST; expected $((BEFORE + 1))..$((LAST + 1)) (the checkpoint was taken between counts $BEFORE and $AT)"
fi
kill -9 "$RPID" 2>/dev/null || true
wait "$RPID" 2>/dev/null || true
echo "stopped it and removed $WORK"
