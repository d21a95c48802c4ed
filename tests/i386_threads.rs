//! i386: multi-threaded 32-bit programs (tests/progs/threads32.c, built with `gcc -m32`):
//! four pthread workers with __thread state, a thread blocked in sigwait with every
//! signal blocked, and a raw clone() thread; dynamic and static; checkpoint, kill,
//! restart (twice), then every thread keeps running and pthread_join works on threads
//! created before the checkpoint. `mtcp restart --same-pid` gives the process and every thread
//! their old ids back.

pub mod common;

use common::*;
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const LIMIT: u64 = 110;
/// threads32.c: main, 4 workers, the sigwait thread, the raw clone thread.
const THREADS: usize = 7;

/// The values of the first `ids PID MAIN W0 W1 W2 W3 SIGWAIT RAW` line printed after
/// `count min_count` (or later).
fn ids_after(p: &Proc, min_count: u64) -> Option<Vec<i32>> {
    let mut last_count = 0;
    for l in p.lines() {
        if let Some(c) = parse_count(&l) {
            last_count = c;
        } else if let Some(rest) = l.strip_prefix("ids ") {
            if last_count >= min_count {
                let v: Vec<i32> = rest.split_whitespace().map(|w| w.parse().expect("ids value")).collect();
                assert_eq!(v.len(), 1 + THREADS, "malformed line {l:?}");
                return Some(v);
            }
        }
    }
    None
}

/// The last `ids` line printed so far.
fn last_ids(p: &Proc) -> Vec<i32> {
    let l = p
        .lines()
        .into_iter()
        .rev()
        .find(|l| l.starts_with("ids "))
        .unwrap_or_else(|| panic!("no `ids` line\n{}", p.describe()));
    l[4..]
        .split_whitespace()
        .map(|w| w.parse().expect("ids value"))
        .collect()
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
    assert_eq!(distinct.len(), THREADS, "{what}: thread ids are not distinct: {ids:?}");
    assert!(ids.iter().all(|&i| i > 0), "{what}: {ids:?}");
}

/// Checks the end: `joined 6` (4 workers + sigwait thread joined, raw thread exited),
/// then `done LIMIT` and exit 0.
fn expect_joined_and_done(p: &mut Proc) {
    expect_done(p, LIMIT, Duration::from_secs(30));
    assert!(
        p.lines().iter().any(|l| l == "joined 6"),
        "{}: pthread_join of the threads created before the checkpoint did not report `joined 6`\n{}",
        p.label,
        p.describe()
    );
}

fn threads_cycle(name: &str, variant: Variant) {
    let t = Test::new(name);
    let prog = t.compile("threads32", variant, Bits::B32, &["-pthread"]);
    let mut p = t.launch(&prog, &[&LIMIT.to_string()]);
    p.wait_for_count(12, LINE_TIMEOUT);
    let before_ids = last_ids(&p);
    assert_sane_ids(&before_ids, "before the checkpoint");
    assert_eq!(
        before_ids[0],
        p.pid(),
        "the launched program keeps the pid of `mtcp launch`"
    );
    let mut c = cycle(&t, p);

    // The image holds all seven threads, one of them the main one.
    let doc = inspect_json(&c.image);
    assert_eq!(doc.get("arch").and_then(|a| a.as_str()), Some("i386"));
    assert_eq!(doc.get("checksums_ok").and_then(|v| v.as_bool()), Some(true));
    let threads = doc.get("threads").and_then(|t| t.as_array()).expect("threads array");
    let tids: HashSet<i64> = threads
        .iter()
        .filter_map(|t| t.get("tid").and_then(|v| v.as_i64()))
        .collect();
    let expected: HashSet<i64> = before_ids[1..].iter().map(|&v| v as i64).collect();
    assert_eq!(
        tids, expected,
        "the image's threads are not the program's threads ({threads:?})"
    );

    // After the restart: a new pid (that of `mtcp restart`, which execs in place), every
    // thread running with its new id.
    let ids = wait_ids_after(&mut c.restarted, c.first + 10);
    assert_sane_ids(&ids, "after the restart");
    assert_eq!(
        ids[0],
        c.restarted.pid(),
        "without --same-pid the process continues in the `mtcp restart` process"
    );
    c.restarted.assert_no_bad();

    // Once more, from the restarted process (whose threads were recreated by the runtime).
    let mut c2 = cycle(&t, c.restarted);
    assert_eq!(c2.image, c.image, "a restarted computation must rewrite its own image");
    let ids2 = wait_ids_after(&mut c2.restarted, c2.first + 10);
    assert_sane_ids(&ids2, "after the second restart");
    assert_eq!(ids2[0], c2.restarted.pid());
    expect_joined_and_done(&mut c2.restarted);
}

#[test]
fn threads32_dynamic() {
    threads_cycle("i386_threads_dynamic", Variant::Dynamic);
}

#[test]
fn threads32_static() {
    threads_cycle("i386_threads_static", Variant::Static);
}

fn restart_same_pid(t: &Test, image: &Path) -> Proc {
    let mut cmd = Command::new(&bins().mtcp);
    cmd.arg("restart").arg("--same-pid").arg(image).current_dir(&t.dir);
    Proc::spawn(cmd, &format!("restart --same-pid {}", image.display()))
}

/// `mtcp restart --same-pid` of a 32-bit multi-threaded image: getpid() and every
/// thread's gettid() are the ones from before the checkpoint. The restored process is a
/// child of the `mtcp restart` process, so the ids are read from the program's output.
#[test]
fn threads32_same_pid() {
    let t = Test::new("i386_threads_same_pid");
    let prog = t.compile("threads32", Variant::Dynamic, Bits::B32, &["-pthread"]);
    let mut p = t.launch(&prog, &[&LIMIT.to_string()]);
    p.wait_for_count(12, LINE_TIMEOUT);
    let before = p.last_count().unwrap();
    let image = checkpoint(p.pid());
    let before_ids = last_ids(&p);
    assert_sane_ids(&before_ids, "before the checkpoint");
    assert_eq!(before_ids[0], p.pid());
    p.wait_for_count(p.last_count().unwrap() + 2, LINE_TIMEOUT);
    p.kill9();
    p.assert_no_bad();
    let at_kill = p.last_count().unwrap();
    // The ids from before the checkpoint did not change while it ran.
    assert_eq!(
        last_ids(&p),
        before_ids,
        "thread ids changed while the original ran\n{}",
        p.describe()
    );

    let mut r = restart_same_pid(&t, &image);
    let first = r.wait_first_count(LINE_TIMEOUT);
    assert!(
        first > before && first <= at_kill + 1,
        "restarted at {first}, expected {}..={}\n{}",
        before + 1,
        at_kill + 1,
        r.describe()
    );
    let ids = wait_ids_after(&mut r, first + 10);
    assert_eq!(
        ids, before_ids,
        "`mtcp restart --same-pid`: ids after the restart (pid, main, 4 workers, sigwait, raw clone) differ from those at checkpoint time\n{}",
        r.describe()
    );
    assert_ne!(
        ids[0],
        r.pid(),
        "the restored process should be a child of `mtcp restart`"
    );
    let noise: Vec<String> = r.stderr_lines().into_iter().filter(|l| l.contains("mtcp")).collect();
    assert!(
        noise.is_empty(),
        "the restart printed messages without --verbose: {noise:?}\n{}",
        r.describe()
    );
    r.assert_no_bad();
    r.assert_consecutive();
    expect_joined_and_done(&mut r);
}
