//! Multi-threaded programs checkpointed, killed with SIGKILL and restarted: pthreads busy,
//! parked everywhere and in sigwait, beside a raw clone thread (tests/progs/threads.c,
//! dynamic and static, `--same-pid`, gdb attaching to a restored process: each for x86_64
//! and, as `*_32`, for i386 programs built with `gcc -m32`); a thread made with a raw
//! clone, SIMD registers, threads that come and go during 50 checkpoints in a row, Rust
//! std threads and channels, python threading, and a thread that blocks the checkpoint
//! signal behind the runtime's back.

pub mod common;

use common::*;
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a program's finale (after the stop file appears) may take.
const FINALE_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Helpers

/// `mtcp restart OPTS IMAGE`, started in the test directory.
fn restart_opts(t: &Test, opts: &[&str], image: &Path) -> Proc {
    let mut cmd = Command::new(&bins().mtcp);
    cmd.arg("restart").args(opts).arg(image).current_dir(&t.dir);
    Proc::spawn(cmd, &format!("restart {} {}", opts.join(" "), image.display()))
}

/// The numbers after `prefix ` on each stdout line that starts with it.
fn values(p: &Proc, prefix: &str) -> Vec<Vec<u64>> {
    let pre = format!("{prefix} ");
    p.lines()
        .iter()
        .filter_map(|l| l.strip_prefix(pre.as_str()))
        .map(|rest| rest.split_whitespace().filter_map(|w| w.parse().ok()).collect())
        .collect()
}

/// The first value on the first line `prefix N ...`, waiting for it.
fn wait_value(p: &mut Proc, prefix: &str) -> u64 {
    let pre = format!("{prefix} ");
    let line = p.wait_for_line(&format!("`{prefix} N`"), LINE_TIMEOUT, |l| l.starts_with(pre.as_str()));
    line[pre.len()..]
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("bad line {line:?}"))
}

/// Every column of the `prefix` lines never goes down, and column `col` went up from the
/// first line to the last (over at least `min_lines` lines).
fn assert_progress(p: &Proc, prefix: &str, col: usize, min_lines: usize) -> (u64, u64) {
    let v = values(p, prefix);
    assert!(
        v.len() >= min_lines,
        "{}: only {} `{prefix}` lines, expected at least {min_lines}\n{}",
        p.label,
        v.len(),
        p.describe()
    );
    for w in v.windows(2) {
        for (a, b) in w[0].iter().zip(w[1].iter()) {
            assert!(
                b >= a,
                "{}: `{prefix}` went down: {:?} then {:?}\n{}",
                p.label,
                w[0],
                w[1],
                p.describe()
            );
        }
    }
    let (first, last) = (v[0][col], v[v.len() - 1][col]);
    assert!(
        last > first,
        "{}: `{prefix}` column {col} did not go up ({first} to {last})\n{}",
        p.label,
        p.describe()
    );
    (first, last)
}

/// Waits for `done ...`; the program must print `done OK`, print no `BAD` and exit 0.
fn expect_done_ok(p: &mut Proc) {
    let line = p.wait_for_line("`done ...`", FINALE_TIMEOUT, |l| {
        l.starts_with("done") || l.starts_with("BAD")
    });
    let st = if line.starts_with("BAD") {
        // Let it print the rest of what it found.
        let _ = p.try_wait_for_line(FINALE_TIMEOUT, |l| l.starts_with("done"));
        p.wait_exit(Duration::from_secs(20))
    } else {
        p.wait_exit(Duration::from_secs(20))
    };
    let bad = p.bad_lines();
    assert!(
        bad.is_empty() && st.success() && p.lines().iter().any(|l| l == "done OK"),
        "{}: the program found problems after the restart ({}):\n  {}\n{}",
        p.label,
        describe_status(&st),
        bad.join("\n  "),
        p.describe()
    );
}

/// Whether /proc/cpuinfo lists `flag` for this CPU.
fn cpu_has(flag: &str) -> bool {
    let info = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find(|l| l.starts_with("flags"))
        .is_some_and(|l| l.split_whitespace().any(|f| f == flag))
}

/// The number of threads of `pid` (entries of /proc/PID/task).
fn task_count(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn touch(p: &Path) {
    fs::write(p, b"").unwrap_or_else(|e| panic!("cannot create {}: {e}", p.display()));
}

// ---------------------------------------------------------------------------------------
// tests/progs/threads.c, for x86_64 and (as `*_32`) for i386

/// The threads on threads.c's `ids PID MAIN W0 .. W7 SIGWAIT RAW` line: main, 8 workers,
/// the sigwait thread and the raw clone thread.
const ID_THREADS: usize = 11;

/// Launches threads.c and waits until all its threads are in place and it counts.
fn launch_threads(t: &Test, prog: &Path, args: &[&str]) -> (Proc, usize) {
    let mut p = t.launch(prog, args);
    let threads = wait_value(&mut p, "threads") as usize;
    let tasks = wait_value(&mut p, "tasks") as usize;
    assert_eq!(
        tasks,
        threads,
        "threads.c sees {tasks} entries in /proc/self/task, but started {threads} threads\n{}",
        p.describe()
    );
    p.wait_for_count(5, LINE_TIMEOUT);
    assert_eq!(
        task_count(p.pid()),
        threads,
        "/proc/{}/task before the checkpoint\n{}",
        p.pid(),
        p.describe()
    );
    (p, threads)
}

/// Parses an `ids PID MAIN ...` line.
fn parse_ids(line: &str) -> Vec<i32> {
    let v: Vec<i32> = line["ids ".len()..]
        .split_whitespace()
        .map(|w| w.parse().expect("ids value"))
        .collect();
    assert_eq!(v.len(), 1 + ID_THREADS, "malformed line {line:?}");
    v
}

/// The values of the first `ids` line printed after `count min_count` (or later).
fn ids_after(p: &Proc, min_count: u64) -> Option<Vec<i32>> {
    let mut last_count = 0;
    for l in p.lines() {
        if let Some(c) = parse_count(&l) {
            last_count = c;
        } else if l.starts_with("ids ") && last_count >= min_count {
            return Some(parse_ids(&l));
        }
    }
    None
}

/// The first `ids` line, printed at start.
fn first_ids(p: &Proc) -> Vec<i32> {
    let l = p
        .lines()
        .into_iter()
        .find(|l| l.starts_with("ids "))
        .unwrap_or_else(|| panic!("no `ids` line\n{}", p.describe()));
    parse_ids(&l)
}

/// The last `ids` line printed so far.
fn last_ids(p: &Proc) -> Vec<i32> {
    let l = p
        .lines()
        .into_iter()
        .rev()
        .find(|l| l.starts_with("ids "))
        .unwrap_or_else(|| panic!("no `ids` line\n{}", p.describe()));
    parse_ids(&l)
}

/// Waits for `ids` after `count min_count`.
fn wait_ids_after(p: &mut Proc, min_count: u64) -> Vec<i32> {
    p.wait_for_count(min_count + 10, LINE_TIMEOUT);
    ids_after(p, min_count)
        .unwrap_or_else(|| panic!("{}: no `ids` line after count {min_count}\n{}", p.label, p.describe()))
}

/// ids: pid == main tid, every thread has a distinct positive id.
fn assert_sane_ids(ids: &[i32], what: &str) {
    assert_eq!(
        ids[0], ids[1],
        "{what}: getpid() {} != gettid() {} of the main thread ({ids:?})",
        ids[0], ids[1]
    );
    let distinct: HashSet<i32> = ids[1..].iter().copied().collect();
    assert_eq!(
        distinct.len(),
        ID_THREADS,
        "{what}: thread ids are not distinct: {ids:?}"
    );
    assert!(ids.iter().all(|&i| i > 0), "{what}: {ids:?}");
}

/// The tids of `pid` (the entries of /proc/PID/task).
fn task_ids(pid: i32) -> HashSet<i64> {
    fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// Waits until no process or thread has any of `ids` any more.
fn wait_ids_gone(ids: &[i32]) {
    let gone = poll(Duration::from_secs(10), || {
        ids.iter()
            .all(|id| !Path::new(&format!("/proc/{id}")).exists())
            .then_some(())
    });
    assert!(gone.is_some(), "the ids {ids:?} are still in /proc after 10 s");
}

/// Creates the finale file and checks the finale: `done OK`, no `BAD`, exit 0, and every
/// thread created at start joined (or, the raw one, ended) after the restart.
fn finale(p: &mut Proc, fin: &Path, threads: usize) {
    touch(fin);
    expect_done_ok(p);
    p.assert_consecutive();
    let joined = format!("joined {}", threads - 1);
    assert!(
        p.lines().contains(&joined),
        "{}: pthread_join of the threads created before the checkpoint did not report `{joined}`\n{}",
        p.label,
        p.describe()
    );
}

/// Checkpoint, kill, restart, twice over (the second time from the restarted process,
/// whose threads the runtime recreated); the image holds every thread; each restarted
/// process has every thread back, running with new ids, and passes the finale, which is
/// triggered only once it runs from the image.
fn threads_cycle(bits: Bits, name: &str, variant: Variant) {
    let t = Test::new(&bits.name(name));
    let prog = t.compile("threads", variant, bits, &["-pthread"]);
    let fin = t.path("finale");
    let (mut p, threads) = launch_threads(&t, &prog, &[fin.to_str().unwrap()]);
    p.wait_for_count(12, LINE_TIMEOUT);
    let before_ids = last_ids(&p);
    assert_sane_ids(&before_ids, "before the checkpoint");
    assert_eq!(
        before_ids[0],
        p.pid(),
        "the launched program keeps the pid of `mtcp launch`"
    );
    let tasks = task_ids(p.pid());
    let mut c = cycle(&t, p);

    // The image holds every thread of the program.
    let doc = inspect_json(&c.image);
    assert_eq!(doc.get("arch").and_then(|a| a.as_str()), Some(bits.arch()));
    assert_eq!(doc.get("checksums_ok").and_then(|v| v.as_bool()), Some(true));
    let image_threads = doc.get("threads").and_then(|t| t.as_array()).expect("threads array");
    let tids: HashSet<i64> = image_threads
        .iter()
        .filter_map(|t| t.get("tid").and_then(|v| v.as_i64()))
        .collect();
    assert_eq!(
        (tids.len(), &tids),
        (threads, &tasks),
        "the image's threads are not the program's threads (/proc/PID/task before the checkpoint)"
    );
    assert!(
        before_ids[1..].iter().all(|&id| tids.contains(&(id as i64))),
        "the threads on the `ids` line {before_ids:?} are not all in the image: {tids:?}"
    );

    // After the restart: every thread back and running, with the ids it had (the
    // program, a child of `mtcp restart`, in a pid namespace of its own if they were
    // taken here).
    let program = c.restarted.program_pid();
    assert_eq!(
        task_count(program),
        threads,
        "/proc/{}/task of the restarted process\n{}",
        program,
        c.restarted.describe()
    );
    assert!(
        !c.restarted.lines().iter().any(|l| l.starts_with("finale")),
        "finale ran before the restart\n{}",
        c.restarted.describe()
    );
    let ids = wait_ids_after(&mut c.restarted, c.first + 10);
    assert_sane_ids(&ids, "after the restart");
    assert_eq!(ids, before_ids, "the restarted process's ids are not those it had");
    c.restarted.assert_no_bad();

    // Once more, from the restarted process.
    let mut c2 = cycle(&t, c.restarted);
    assert_eq!(c2.image, c.image, "a restarted computation must rewrite its own image");
    let ids2 = wait_ids_after(&mut c2.restarted, c2.first + 10);
    assert_sane_ids(&ids2, "after the second restart");
    assert_eq!(ids2, before_ids, "ids after the second restart");
    let program = c2.restarted.program_pid();
    assert_eq!(
        task_count(program),
        threads,
        "/proc/{}/task after the second restart\n{}",
        program,
        c2.restarted.describe()
    );
    finale(&mut c2.restarted, &fin, threads);
}

per_width!(threads_dynamic, threads_dynamic_32 => threads_cycle("threads_dynamic", Variant::Dynamic));

per_width!(threads_static, threads_static_32 => threads_cycle("threads_static", Variant::Static));

/// Restarts `image` with `mtcp restart --same-pid` (and `--verbose` if `verbose`) and
/// checks that the process, a child of `mtcp restart`, has its old pid `ids[0]` and every
/// thread its old tid (threads.c checks its cached ids every step too); then runs the
/// finale. `before` and `at_kill` bound the first count, as in `cycle`.
fn restart_same_pid(t: &Test, image: &Path, verbose: bool, ids: &[i32], threads: usize, counts: (u64, u64)) {
    let (before, at_kill) = counts;
    let pid = ids[0];
    let opts: &[&str] = if verbose {
        &["--verbose", "--same-pid"]
    } else {
        &["--same-pid"]
    };
    let mut r = restart_opts(t, opts, image);
    let first = r.wait_first_count(LINE_TIMEOUT);
    assert!(
        first > before && first <= at_kill + 1,
        "restarted at count {first}, checkpoint after {before}, killed at {at_kill}; expected {}..={}\n{}",
        before + 1,
        at_kill + 1,
        r.describe()
    );
    let now = wait_ids_after(&mut r, first + 10);
    assert_eq!(
        now,
        ids,
        "`mtcp restart {}`: ids after the restart (pid, main, 8 workers, sigwait, raw clone) differ from those at \
         checkpoint time\n{}",
        opts.join(" "),
        r.describe()
    );
    r.assert_no_bad();
    // The restored process is the child of `mtcp restart`, with the old pid and tids.
    assert_ne!(pid, r.pid(), "the restored process should be a child of `mtcp restart`");
    assert_eq!(
        r.program_pid(),
        pid,
        "as root, with the ids free, no namespace is needed"
    );
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let ppid = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .map(|v| v.trim().to_string());
    assert_eq!(
        ppid,
        Some(r.pid().to_string()),
        "/proc/{pid}/status of the restored process:\n{status}\n{}",
        r.describe()
    );
    for id in &ids[1..] {
        assert!(
            Path::new(&format!("/proc/{pid}/task/{id}")).exists(),
            "thread {id} is not back in process {pid}\n{}",
            r.describe()
        );
    }
    assert_eq!(
        task_count(pid),
        threads,
        "/proc/{pid}/task of the restored process\n{}",
        r.describe()
    );
    let stderr = r.stderr_lines().join("\n");
    if verbose {
        assert!(
            stderr.contains("process and thread ids are the same as at checkpoint time"),
            "mtcp restart --same-pid --verbose did not say the ids are the same:\n{}",
            r.describe()
        );
    } else {
        let noise: Vec<String> = r.stderr_lines().into_iter().filter(|l| l.contains("mtcp")).collect();
        assert!(
            noise.is_empty(),
            "the restart printed messages without --verbose: {noise:?}\n{}",
            r.describe()
        );
    }
    finale(&mut r, &t.path("finale"), threads);
    let _ = fs::remove_file(t.path("finale"));
}

/// `mtcp restart --same-pid`, quiet and then `--verbose`: the pid and every tid come back
/// (the program checks its cached getpid()/gettid() values every step); then the same
/// image restarted without it gets new ids, and says so.
fn same_pid(bits: Bits) {
    let t = Test::new(&bits.name("threads_same_pid"));
    let prog = t.compile("threads", Variant::Dynamic, bits, &["-pthread"]);
    let fin = t.path("finale");
    let (mut p, threads) = launch_threads(&t, &prog, &[fin.to_str().unwrap(), "--same-ids"]);
    let ids = first_ids(&p);
    assert_sane_ids(&ids, "at start");
    assert_eq!(
        ids[0],
        p.pid(),
        "bad `ids` line {ids:?} for pid {}\n{}",
        p.pid(),
        p.describe()
    );
    p.wait_for_count(12, LINE_TIMEOUT);
    let before = p.last_count().unwrap();
    let image = checkpoint(p.pid());
    let after = p.last_count().unwrap();
    p.wait_for_count(after + 2, LINE_TIMEOUT);
    p.kill9(); // also reaps it
    p.assert_no_bad();
    let at_kill = p.last_count().unwrap();
    // The ids did not change while the original ran.
    assert_eq!(
        last_ids(&p),
        ids,
        "thread ids changed while the original ran\n{}",
        p.describe()
    );
    wait_ids_gone(&ids);

    restart_same_pid(&t, &image, false, &ids, threads, (before, at_kill));
    wait_ids_gone(&ids);
    restart_same_pid(&t, &image, true, &ids, threads, (before, at_kill));
    wait_ids_gone(&ids);

    // The same image with --new-ids: new ids, which the program notices.
    let mut r = restart_opts(&t, &["--verbose", "--new-ids"], &image);
    let line = r.wait_for_line("`BAD ids ...` (the ids must have changed)", LINE_TIMEOUT, |l| {
        l.starts_with("BAD") || l.starts_with("count")
    });
    assert!(
        line.starts_with("BAD ids"),
        "with --new-ids the program should see new ids, but printed {line:?}\n{}",
        r.describe()
    );
    let st = r.wait_exit(LINE_TIMEOUT);
    assert_eq!(st.code(), Some(3), "{}", r.describe());
    let stderr = r.stderr_lines().join("\n");
    assert!(
        stderr.contains("thread ids are new"),
        "mtcp restart --verbose --new-ids did not say the thread ids are new:\n{}",
        r.describe()
    );
}

per_width!(threads_same_pid, threads_same_pid_32 => same_pid());

/// gdb attaches to a restored multi-threaded process and sees every thread as a thread
/// (libthread_db reads glibc's thread list, so the tids there must be right).
fn gdb_sees_threads(bits: Bits) {
    let t = Test::new(&bits.name("threads_gdb"));
    let gdb_ok = Command::new("gdb")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        gdb_ok,
        "gdb is needed by this test (.ci/run installs it: apt-get install gdb)"
    );
    let prog = t.compile("threads", Variant::Dynamic, bits, &["-pthread"]);
    let fin = t.path("finale");
    let (p, threads) = launch_threads(&t, &prog, &[fin.to_str().unwrap()]);
    let c = cycle(&t, p);
    let mut r = c.restarted;
    let pid = r.program_pid();
    let mut cmd = Command::new("gdb");
    cmd.args(["-nx", "-batch", "-p", &pid.to_string(), "-ex", "info threads"]);
    let out = run_output(cmd, Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    // `info threads` rows: `[*] ID Thread 0x... (LWP N) "name" where`. The raw clone
    // thread shares main's thread pointer, so libthread_db names it by main's.
    let seen = text
        .lines()
        .filter(|l| {
            let row = l.trim_start().trim_start_matches('*').trim_start();
            let rest = row.trim_start_matches(|c: char| c.is_ascii_digit());
            rest.len() < row.len() && rest.trim_start().starts_with("Thread 0x")
        })
        .count();
    assert_eq!(
        seen,
        threads,
        "gdb -p {pid} -ex 'info threads' lists {seen} `Thread 0x` lines, but the process has {threads} threads\n{}\n{}",
        describe_output(&out),
        r.describe()
    );
    // And the process goes on after gdb detaches.
    let last = r.last_count().unwrap();
    r.wait_for_count(last + 10, LINE_TIMEOUT);
    r.assert_no_bad();
    r.assert_consecutive();
}

per_width!(gdb_sees_restored_threads, gdb_sees_restored_threads_32 => gdb_sees_threads());

// ---------------------------------------------------------------------------------------
// A raw clone thread, and a thread blocking the checkpoint signal by raw syscall

#[test]
fn raw_clone_thread() {
    let t = Test::new("raw_clone");
    let prog = t.compile_c("rawclone", Variant::Dynamic, &[]);
    let mut p = t.launch(&prog, &["80"]);
    p.wait_for_count(5, LINE_TIMEOUT);
    let raw_before = values(&p, "raw").last().unwrap()[0];
    let mut c = cycle(&t, p);
    let (first, _) = assert_progress(&c.restarted, "raw", 0, 20);
    assert!(
        first >= raw_before,
        "the raw thread's count restarted at {first}, below {raw_before} seen before the checkpoint"
    );
    expect_done(&mut c.restarted, 80, Duration::from_secs(30));
    assert_progress(&c.restarted, "raw", 0, 40);
}

/// A thread blocks the checkpoint signal with a raw rt_sigprocmask (the runtime cannot
/// see it): the checkpoint reaches it anyway (the runtime's ptrace helper), the process
/// restarts, the thread still blocks the signal afterwards and can unblock it.
#[test]
fn raw_blocked_checkpoint_signal() {
    let t = Test::new("raw_blocked");
    let prog = t.compile_c("rawclone", Variant::Dynamic, &[]);
    let unblock = t.path("unblock");
    let mut p = t.launch(&prog, &["200", "--raw-block", unblock.to_str().unwrap()]);
    p.wait_for_line("`blocked`", LINE_TIMEOUT, |l| l == "blocked");
    p.wait_for_count(3, LINE_TIMEOUT);
    let mut c = cycle(&t, p);
    let r = &mut c.restarted;
    assert_progress(r, "raw", 0, 10);
    let usr2 = 1u64 << 11;
    let blockers = r
        .thread_masks("SigBlk:")
        .into_iter()
        .filter(|(_, m)| m & usr2 != 0)
        .count();
    assert_eq!(
        blockers,
        1,
        "after the restart one thread must still block SIGUSR2\n{}",
        r.describe()
    );
    touch(&unblock);
    r.wait_for_line("`unblocked`", LINE_TIMEOUT, |l| l == "unblocked");
    expect_done(r, 200, Duration::from_secs(30));
}

/// The same thread with MTCP_PTRACE=0: `mtcp checkpoint` fails within its time-out
/// saying that the thread blocks the signal, leaves no image, and the process goes on;
/// once the thread unblocks it, a checkpoint works and the process restarts.
#[test]
fn raw_blocked_checkpoint_signal_without_ptrace() {
    let t = Test::new("raw_blocked_noptrace");
    let prog = t.compile_c("rawclone", Variant::Dynamic, &[]);
    let unblock = t.path("unblock");
    let mut cmd = Command::new(&bins().mtcp);
    cmd.args(["launch", "--dir"])
        .arg(&t.dir)
        .arg("--")
        .arg(&prog)
        .args(["200", "--raw-block", unblock.to_str().unwrap()])
        .current_dir(&t.dir)
        .env("MTCP_PTRACE", "0");
    let mut p = Proc::spawn(cmd, "launch rawclone (MTCP_PTRACE=0)");
    p.wait_for_line("`blocked`", LINE_TIMEOUT, |l| l == "blocked");
    p.wait_for_count(3, LINE_TIMEOUT);
    let started = Instant::now();
    let out = try_checkpoint(p.pid());
    let took = started.elapsed();
    assert!(
        !out.status.success(),
        "mtcp checkpoint succeeded although a thread blocks the checkpoint signal and ptrace is off:\n{}",
        describe_output(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("blocks the checkpoint signal") && stderr.contains("MTCP_PTRACE=0"),
        "mtcp checkpoint failed without saying that a thread blocks the checkpoint signal:\n{}",
        describe_output(&out)
    );
    assert!(took < Duration::from_secs(15), "mtcp checkpoint took {took:?} to fail");
    eprintln!("[raw_blocked] mtcp checkpoint failed in {took:?}: {}", stderr.trim());
    assert!(p.exited().is_none(), "the process died:\n{}", p.describe());
    let last = p.last_count().unwrap();
    p.wait_for_count(last + 5, LINE_TIMEOUT);
    p.assert_no_bad();
    assert!(
        t.images().is_empty(),
        "a failed checkpoint left an image: {:?}",
        t.images()
    );
    let leftovers: Vec<_> = fs::read_dir(&t.dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "a failed checkpoint left temporary files: {leftovers:?}"
    );

    touch(&unblock);
    p.wait_for_line("`unblocked`", LINE_TIMEOUT, |l| l == "unblocked");
    let mut c = cycle(&t, p);
    assert_progress(&c.restarted, "raw", 0, 20);
    expect_done(&mut c.restarted, 200, Duration::from_secs(30));
}

// ---------------------------------------------------------------------------------------
// SIMD registers

fn simd_cycle(t: &Test, flags: &[&str], kind: &str) {
    let prog = t.compile_c("simd", Variant::Dynamic, flags);
    let mut p = t.launch(&prog, &["80"]);
    let line = p.wait_for_line("`simd KIND`", LINE_TIMEOUT, |l| l.starts_with("simd "));
    assert_eq!(line, format!("simd {kind}"), "simd.c built with {flags:?}");
    p.wait_for_count(5, LINE_TIMEOUT);
    let mut c = cycle(t, p);
    assert_progress(&c.restarted, "iters", 0, 20);
    expect_done(&mut c.restarted, 80, Duration::from_secs(30));
}

/// __m256 values (or __m128 on a CPU without AVX2) kept in registers across the restart.
#[test]
fn simd_registers() {
    let t = Test::new("simd");
    if cpu_has("avx2") {
        simd_cycle(&t, &["-mavx2"], "avx");
    } else {
        eprintln!("[simd] no avx2 in /proc/cpuinfo: testing SSE registers only");
        simd_cycle(&t, &[], "sse");
    }
}

/// __m512 values in zmm0-zmm27, where the CPU has AVX-512.
#[test]
fn simd_avx512_registers() {
    if !cpu_has("avx512f") {
        eprintln!("[simd_avx512] no avx512f in /proc/cpuinfo: nothing to test");
        return;
    }
    let t = Test::new("simd_avx512");
    simd_cycle(&t, &["-mavx512f"], "avx512");
}

// ---------------------------------------------------------------------------------------
// Threads coming and going

/// 50 checkpoints in a row while threads start and end all the time; each must succeed
/// (never hang); then the first, a middle and the last image are each restarted and go on.
#[test]
fn churn_50_checkpoints() {
    let t = Test::new("churn");
    let prog = t.compile_c("churn", Variant::Dynamic, &["-pthread"]);
    let saved = t.subdir("saved");
    let mut p = t.launch(&prog, &[]);
    p.wait_for_count(5, LINE_TIMEOUT);
    let mut taken: Vec<(PathBuf, u64)> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    let started = Instant::now();
    for i in 1..=50 {
        let before = p.last_count().unwrap();
        // Each must end within its time-out (`mtcp` panics otherwise); a failure is
        // recorded and the series goes on, so that the restarts below are tested too.
        let out = try_checkpoint(p.pid());
        assert!(
            p.exited().is_none(),
            "the process died during checkpoint {i}\n{}",
            p.describe()
        );
        if !out.status.success() {
            failed.push(format!(
                "checkpoint {i}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            if failed.len() >= 5 {
                break;
            }
            continue;
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let image = PathBuf::from(stdout.lines().last().unwrap_or("").trim());
        assert!(
            image.is_file(),
            "checkpoint {i}: no image path printed:\n{}",
            describe_output(&out)
        );
        let copy = saved.join(format!("img{i:02}.mtcp"));
        fs::copy(&image, &copy).unwrap_or_else(|e| panic!("copy {}: {e}", image.display()));
        taken.push((copy, before));
    }
    eprintln!(
        "[churn] {} checkpoints in {:?}, {} failed",
        taken.len() + failed.len(),
        started.elapsed(),
        failed.len()
    );
    let last = p.last_count().unwrap();
    p.wait_for_count(last + 3, LINE_TIMEOUT);
    p.kill9();
    p.assert_no_bad();
    p.assert_consecutive();
    assert_progress(&p, "churn", 0, 5);
    let at_kill = p.last_count().unwrap();

    assert!(!taken.is_empty(), "no checkpoint succeeded: {failed:#?}");
    let mut prev_first = 0;
    let picks = [0, taken.len() / 2, taken.len() - 1];
    for (n, &idx) in picks.iter().enumerate() {
        if n > 0 && idx == picks[n - 1] {
            continue;
        }
        let (image, before) = &taken[idx];
        let mut r = t.restart(image);
        let first = r.wait_first_count(LINE_TIMEOUT);
        assert!(
            first > *before && first <= at_kill + 1 && first >= prev_first,
            "image {} (taken after count {before}) restarted at count {first} (killed at {at_kill}, previous image at {prev_first})\n{}",
            image.display(),
            r.describe()
        );
        prev_first = first;
        r.wait_for_count(first + 20, LINE_TIMEOUT);
        r.assert_no_bad();
        r.assert_consecutive();
        assert_progress(&r, "churn", 0, 20);
        assert_progress(&r, "churn", 1, 20);
        eprintln!("[churn] {} restarted at count {first} and went on", image.display());
        r.kill9();
    }
    assert!(
        failed.is_empty(),
        "{} of the checkpoints in a row failed (all must succeed):\n  {}\n\
         (`blocks the checkpoint signal` here: glibc blocks every signal in a detached thread that \
         is exiting, which then waits for glibc's stack-cache lock, held by a thread that the \
         checkpoint parked while it was in pthread_create or pthread_join: the checkpoint itself \
         keeps that thread from stopping, and gives up after 1 s)",
        failed.len(),
        failed.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------
// Rust std threads, python threading

#[test]
fn rust_std_threads() {
    let t = Test::new("rust_threads");
    let prog = t.compile_rust("rust_threads", "rust_threads", Bits::B64);
    let stop = t.path("stop");
    let mut p = t.launch(&prog, &[stop.to_str().unwrap()]);
    p.wait_for_count(5, LINE_TIMEOUT);
    let traffic_before = values(&p, "traffic").last().unwrap()[0];
    let c = cycle(&t, p);
    let mut r = c.restarted;
    let (first, _) = assert_progress(&r, "traffic", 0, 20);
    assert_progress(&r, "traffic", 1, 20);
    assert!(
        first >= traffic_before,
        "channel traffic restarted at {first}, below {traffic_before} seen before the checkpoint"
    );
    touch(&stop);
    expect_done_ok(&mut r);
}

#[test]
fn python_threading() {
    let t = Test::new("py_threads");
    let py = python3();
    let script = bins().root.join("tests/progs/py_threads.py");
    let stop = t.path("stop");
    let mut p = t.launch(&py, &[script.to_str().unwrap(), stop.to_str().unwrap()]);
    p.wait_for_count(5, Duration::from_secs(30));
    let c = cycle(&t, p);
    let mut r = c.restarted;
    assert_progress(&r, "py", 0, 20);
    assert_progress(&r, "py", 1, 20);
    touch(&stop);
    expect_done_ok(&mut r);
}

/// A thread with a PTHREAD_STACK_MIN stack coordinates the checkpoint (mtcp_checkpoint()
/// runs it on the calling thread): the handler must fit, and the restart must go on.
#[test]
fn checkpoint_on_a_minimal_stack_thread() {
    let t = Test::new("smallstack");
    let prog = t.compile("smallstack", Variant::Static, Bits::B64, &["-pthread"]);
    let mut p = t.launch(&prog, &["80", "5"]);
    p.wait_for_line("`api checkpointed`", LINE_TIMEOUT, |l| l == "api checkpointed");
    let images = t.images();
    assert_eq!(images.len(), 1, "expected one image, found {images:?}");
    let image = images[0].clone();
    let last = p.last_count().unwrap();
    p.wait_for_count(last + 2, LINE_TIMEOUT);
    p.kill9();
    p.assert_no_bad();
    let mut r = t.restart(&image);
    r.wait_for_line("`api restarted`", LINE_TIMEOUT, |l| l == "api restarted");
    expect_done(&mut r, 80, Duration::from_secs(20));
}

/// Ids still taken here (the original runs on): the copy gets them all the same, in a
/// pid namespace of its own, and `--verbose` says so.
#[test]
fn taken_ids_come_back_in_a_namespace() {
    let t = Test::new("taken_ids");
    let prog = t.compile("counter", Variant::Dynamic, Bits::B64, &[]);
    let mut p = t.launch(&prog, &["100000"]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let image = checkpoint(p.pid());
    let mut copy = restart_opts(&t, &["--verbose"], &image);
    let first = copy.wait_first_count(Duration::from_secs(20));
    copy.wait_for_count(first + 5, LINE_TIMEOUT);
    let err = copy.stderr_lines().join("\n");
    assert!(
        err.contains("the old ids are taken here") && err.contains("in a new pid namespace"),
        "no word of the namespace:\n{err}"
    );
    let program = copy.program_pid();
    let status = fs::read_to_string(format!("/proc/{program}/status")).unwrap_or_default();
    let nspid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .unwrap_or("")
        .to_string();
    let ids: Vec<&str> = nspid.split_whitespace().collect();
    assert_eq!(
        (ids.len(), ids.last().copied()),
        (2, Some(p.pid().to_string().as_str())),
        "the copy's NSpid {nspid:?}: it should be the original's pid {} in a namespace",
        p.pid()
    );
    // Both go on, and each can be checkpointed by the pid this side knows.
    assert!(checkpoint(copy.pid()).is_file());
    assert!(checkpoint(p.pid()).is_file());
    copy.assert_no_bad();
    copy.kill9();
    p.kill9();
}

/// A restart into namespaces mounts its /proc there only: run where mounts propagate
/// (a mount namespace whose mounts are all shared, as on most hosts), it adds no mount
/// to the namespace it was started in.
#[test]
fn namespace_proc_stays_inside() {
    let t = Test::new("ns_proc_inside");
    let prog = t.compile("counter", Variant::Dynamic, Bits::B64, &[]);
    let mut p = t.launch(&prog, &["100000"]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let image = checkpoint(p.pid());
    // The original still runs, so the copy goes into namespaces.
    let script = format!(
        "mount --make-rshared / || exit 9; before=$(grep -c ' /proc ' /proc/self/mountinfo); \
         {} restart {} > copy.out 2>&1 & pid=$!; \
         for i in $(seq 100); do grep -q '^count' copy.out 2>/dev/null && break; sleep 0.1; done; \
         after=$(grep -c ' /proc ' /proc/self/mountinfo); kill -9 $pid; wait $pid; \
         echo \"proc mounts $before $after\"; grep -c '^count' copy.out",
        bins().mtcp.display(),
        image.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "unchanged", "sh", "-c", &script])
        .current_dir(&t.dir);
    let out = run_output(cmd, Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("proc mounts 1 1"), "{}", describe_output(&out));
    assert!(
        lines
            .next()
            .and_then(|n| n.trim().parse::<u32>().ok())
            .is_some_and(|n| n > 0),
        "the copy did not count\n{}",
        describe_output(&out)
    );
    p.kill9();
}

/// Checkpoint requests that overlap: a second signal sent while the first checkpoint
/// stops the threads, writes, or lets them go must not leave a thread parked in a round
/// that is over (it would stop working, signals blocked, until some later checkpoint).
/// Afterwards no thread sits in the checkpoint handler, every worker keeps working
/// (threads.c checks each), and the restarted process passes the finale.
#[test]
fn overlapping_requests() {
    let t = Test::new("overlapping");
    let prog = t.compile("threads", Variant::Dynamic, Bits::B64, &["-pthread"]);
    let fin = t.path("finale");
    let (mut p, threads) = launch_threads(&t, &prog, &[fin.to_str().unwrap()]);
    let image = checkpoint(p.pid());
    // Gaps spread over 0-20 ms, the time a checkpoint of this program takes: some land
    // in its write, some as it lets the threads go (60 pairs found a stuck thread
    // before the fix, where 8 had not).
    for gap_us in (0..60u64).map(|i| (i * 7919) % 20_000) {
        let before = fs::metadata(&image).and_then(|m| m.modified()).ok();
        assert!(send_signal(p.pid(), SIGUSR2), "kill -USR2 {}", p.pid());
        std::thread::sleep(Duration::from_micros(gap_us));
        assert!(send_signal(p.pid(), SIGUSR2), "kill -USR2 {}", p.pid());
        let written = poll(CHECKPOINT_TIMEOUT, || {
            let m = fs::metadata(&image).and_then(|m| m.modified()).ok();
            (m != before).then_some(())
        });
        assert!(
            written.is_some(),
            "no checkpoint after two requests {gap_us} us apart\n{}",
            p.describe()
        );
        // Room for a checkpoint of the second request's own.
        std::thread::sleep(Duration::from_millis(100));
    }
    // The handler runs with every signal blocked, and the runtime lets no program block
    // its checkpoint signal: a thread that keeps SIGUSR2 blocked is stuck in the handler.
    let mut stuck: Option<HashSet<String>> = None;
    for _ in 0..6 {
        let now: HashSet<String> = fs::read_dir(format!("/proc/{}/task", p.pid()))
            .unwrap()
            .flatten()
            .filter(|e| {
                let status = fs::read_to_string(e.path().join("status")).unwrap_or_default();
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("SigBlk:"))
                    .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
                    .is_some_and(|m| m & (1 << (SIGUSR2 - 1)) != 0)
            })
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        stuck = Some(match stuck {
            None => now,
            Some(s) => s.intersection(&now).cloned().collect(),
        });
        std::thread::sleep(Duration::from_millis(50));
    }
    let stuck = stuck.unwrap();
    assert!(
        stuck.is_empty(),
        "threads {stuck:?} stay in the checkpoint handler\n{}",
        p.describe()
    );
    // Every worker keeps going (threads.c checks each every 10 counts).
    let now = p.last_count().unwrap();
    p.wait_for_count(now + 25, LINE_TIMEOUT);
    p.assert_no_bad();
    let mut c = cycle(&t, p);
    finale(&mut c.restarted, &fin, threads);
}

/// Each thread's scheduling policy, nice value and CPU set come back after a restart
/// (sched.c checks them itself, by tid, as the kernel reports them).
fn scheduling_survives(bits: Bits) {
    let t = Test::new(&bits.name("sched"));
    let prog = t.compile("sched", Variant::Dynamic, bits, &["-pthread"]);
    let mut p = t.launch(&prog, &["80"]);
    p.wait_for_count(5, LINE_TIMEOUT);
    let mut c = cycle(&t, p);
    expect_done(&mut c.restarted, 80, Duration::from_secs(30));
    c.restarted.assert_no_bad();
    let complained: Vec<String> = c
        .restarted
        .stderr_lines()
        .into_iter()
        .filter(|l| l.contains("cannot restore"))
        .collect();
    assert!(complained.is_empty(), "{complained:?}");
}

per_width!(scheduling_survives_a_restart, scheduling_survives_a_restart_32 => scheduling_survives());
