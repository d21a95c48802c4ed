//! No system call fails with EINTR because of a checkpoint: threads asleep in `poll`,
//! `nanosleep`, `epoll_wait`, `semop`, `msgrcv`, futex waits, pipe and socket reads
//! (and one that blocks every signal) go on as if nothing happened, in the process that
//! goes on after each checkpoint and in the restarted one.

pub mod common;

use common::*;
use std::time::Duration;

/// The live process, every kind of wait included (sockets too): checkpointed 50 times
/// while its threads wait; none of them may see EINTR.
fn survives_many_checkpoints(variant: Variant, bits: Bits) {
    let t = Test::new(&bits.name(&format!("eintr_live_{variant:?}").to_lowercase()));
    let prog = t.compile("eintr", variant, bits, &["-pthread"]);
    let mut p = t.launch(&prog, &["100000"]);
    p.wait_for_count(3, LINE_TIMEOUT);
    for i in 0..50 {
        let out = try_checkpoint(p.pid());
        if !out.status.success() {
            std::thread::sleep(Duration::from_millis(200));
            panic!("checkpoint {i} failed:\n{}\n{}", describe_output(&out), p.describe());
        }
        p.assert_no_bad();
        assert!(
            p.exited().is_none(),
            "the program exited after checkpoint {i}\n{}",
            p.describe()
        );
        std::thread::sleep(Duration::from_millis(60));
    }
    let at = p.last_count().unwrap();
    p.wait_for_count(at + 3, LINE_TIMEOUT);
    p.assert_no_bad();
    p.assert_consecutive();
    p.kill9();
}

/// Checkpoint, kill, restart: the restarted threads wait again where they were, through
/// ten more checkpoints, and the program finishes.
fn restarted_waits_go_on(variant: Variant, bits: Bits) {
    let t = Test::new(&bits.name(&format!("eintr_restart_{variant:?}").to_lowercase()));
    let prog = t.compile("eintr", variant, bits, &["-pthread"]);
    let limit = 90;
    let mut p = t.launch(&prog, &[&limit.to_string(), "nosockets"]);
    p.wait_for_count(5, LINE_TIMEOUT);
    let mut c = cycle(&t, p);
    let r = &mut c.restarted;
    for _ in 0..10 {
        checkpoint(r.pid());
        r.assert_no_bad();
        std::thread::sleep(Duration::from_millis(100));
    }
    expect_done(r, limit, Duration::from_secs(30));
    let waits: u64 = r
        .lines()
        .iter()
        .find_map(|l| l.strip_prefix("waits ")?.parse().ok())
        .unwrap_or_else(|| panic!("no `waits` line\n{}", r.describe()));
    // 14 waiting threads finish a 50 ms wait each about 20 times a second.
    assert!(
        waits > 200,
        "the waiting threads made almost no progress ({waits})\n{}",
        r.describe()
    );
}

/// Periodic checkpoints (`--interval 1`) reach the waiting threads quietly too: the
/// request comes from the runtime's own interval thread, not from a timer signal that
/// would land on one of the program's threads.
fn interval_checkpoints_are_quiet(bits: Bits) {
    let t = Test::new(&bits.name("eintr_interval"));
    let prog = t.compile("eintr", Variant::Dynamic, bits, &["-pthread"]);
    let mut p = t.launch_with(&["--interval", "1"], &prog, &["100000"]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let pid = p.pid();
    let image = poll(Duration::from_secs(10), || image_for(&t.dir, pid))
        .unwrap_or_else(|| panic!("no image within 10 s with --interval 1\n{}", p.describe()));
    let mut seen = std::collections::HashSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < 5 && std::time::Instant::now() < deadline {
        if let Ok(m) = std::fs::metadata(&image).and_then(|m| m.modified()) {
            seen.insert(m);
        }
        p.assert_no_bad();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        seen.len() >= 5,
        "only {} interval checkpoints in 20 s\n{}",
        seen.len(),
        p.describe()
    );
    let at = p.last_count().unwrap();
    p.wait_for_count(at + 3, LINE_TIMEOUT);
    p.assert_no_bad();
    p.kill9();
}

#[test]
fn no_eintr_from_interval_checkpoints() {
    interval_checkpoints_are_quiet(Bits::B64);
}

#[test]
fn no_eintr_from_interval_checkpoints_32() {
    interval_checkpoints_are_quiet(Bits::B32);
}

#[test]
fn no_eintr_across_checkpoints() {
    survives_many_checkpoints(Variant::Dynamic, Bits::B64);
}

#[test]
fn no_eintr_across_checkpoints_32() {
    survives_many_checkpoints(Variant::Dynamic, Bits::B32);
}

#[test]
fn no_eintr_across_checkpoints_static() {
    survives_many_checkpoints(Variant::Static, Bits::B64);
}

#[test]
fn no_eintr_after_restart() {
    restarted_waits_go_on(Variant::Dynamic, Bits::B64);
}

#[test]
fn no_eintr_after_restart_32() {
    restarted_waits_go_on(Variant::Dynamic, Bits::B32);
}
