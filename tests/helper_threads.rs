//! glibc's helper threads block every signal: the one that runs SIGEV_THREAD timer
//! callbacks and the one that waits for mq_notify notifications. A process with both is
//! checkpointed again and again while its timers fire and its notifications come, and
//! after a restart its timers go on firing, its notifications go on coming (the
//! registration and glibc's netlink socket are back) and nothing spins.

pub mod common;

use common::*;
use std::time::{Duration, Instant};

fn ticks(p: &Proc) -> Option<(u64, u64)> {
    p.lines().iter().rev().find_map(|l| {
        let mut it = l.strip_prefix("ticks ")?.split(' ');
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    })
}

/// The last `notified K`.
fn notified(p: &Proc) -> Option<u64> {
    p.lines()
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("notified ")?.parse().ok())
}

/// Waits until both timers have fired `more` times beyond `from`.
fn wait_ticks(p: &Proc, from: (u64, u64), more: u64, what: &str) -> (u64, u64) {
    poll(Duration::from_secs(20), || {
        ticks(p).filter(|t| t.0 >= from.0 + more && t.1 >= from.1 + more)
    })
    .unwrap_or_else(|| panic!("{what}: the timers stopped firing (from {from:?})\n{}", p.describe()))
}

/// CPU time (user + system, in clock ticks) the process used so far.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name.
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn timers_and_mq_notify(bits: Bits) {
    let t = Test::new(&bits.name("glibc_helpers"));
    let prog = t.compile("sigev", Variant::Dynamic, bits, &["-pthread", "-lrt"]);
    let mut p = t.launch(&prog, &["100000"]);
    p.wait_for_line("`notified 1`", LINE_TIMEOUT, |l| l == "notified 1");
    let mut seen = ticks(&p).unwrap();
    for i in 0..20 {
        let out = try_checkpoint(p.pid());
        assert!(
            out.status.success(),
            "checkpoint {i} failed with glibc's helper threads present:\n{}\n{}",
            describe_output(&out),
            p.describe()
        );
        seen = wait_ticks(&p, seen, 2, &format!("after checkpoint {i}"));
    }
    let image = checkpoint(p.pid());
    p.kill9();
    p.assert_no_bad();

    let mut r = t.restart(&image);
    let first = r.wait_first_count(LINE_TIMEOUT);
    r.wait_for_line("`ticks A B`", LINE_TIMEOUT, |l| l.starts_with("ticks "));
    let start = ticks(&r).unwrap();
    let later = wait_ticks(&r, start, 20, "after the restart");
    assert!(first > 1 && later.0 > start.0, "\n{}", r.describe());
    // The notification thread sleeps on its (new, unbound) netlink socket: the process
    // as a whole stays nearly idle.
    let (cpu0, t0) = (cpu_ticks(r.program_pid()), Instant::now());
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(r.program_pid()) - cpu0;
    let hz = 100;
    assert!(
        used * 1000 / hz < t0.elapsed().as_millis() as u64 / 2,
        "the restarted process used {used} CPU ticks in {:?}: a thread spins\n{}",
        t0.elapsed(),
        r.describe()
    );
    // The notification registration came back: notifications go on after the restart.
    let two = poll(Duration::from_secs(20), || {
        let seen = r.lines().iter().filter(|l| l.starts_with("notified ")).count();
        (seen >= 2).then_some(())
    });
    assert!(
        two.is_some(),
        "fewer than two mq_notify notifications after the restart (last: {:?})\n{}",
        notified(&r),
        r.describe()
    );
    let noise: Vec<String> = r.stderr_lines().into_iter().filter(|l| l.contains("mtcp")).collect();
    assert!(noise.is_empty(), "the restart warned: {noise:?}");
    r.assert_no_bad();
    r.kill9();
}

#[test]
fn glibc_helper_threads_checkpoint_and_restart() {
    timers_and_mq_notify(Bits::B64);
}

#[test]
fn glibc_helper_threads_checkpoint_and_restart_32() {
    timers_and_mq_notify(Bits::B32);
}
