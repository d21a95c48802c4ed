//! Signal state that lives in the kernel: pending signals survive a restart.

pub mod common;

use common::*;
use std::time::Duration;

#[test]
fn pending_signals_are_delivered_after_restart() {
    let t = Test::new("pending");
    let prog = t.compile_c("pending", Variant::Dynamic, &[]);
    let mut p = t.launch(&prog, &["60", "40"]);
    p.wait_for_count(5, LINE_TIMEOUT);
    let mut c = cycle(&t, p);
    assert!(
        c.first < 40,
        "the checkpoint must come before the signals are unblocked"
    );
    let r = &mut c.restarted;
    let got = r.wait_for_line("`got ...`", Duration::from_secs(20), |l| l.starts_with("got "));
    assert_eq!(
        got,
        "got usr1=1 hup=1",
        "each pending signal must arrive exactly once\n{}",
        r.describe()
    );
    expect_done(r, 60, Duration::from_secs(20));
}

#[test]
fn alarm_and_resource_limits_survive_a_restart() {
    let t = Test::new("timers");
    let prog = t.compile_c("timers", Variant::Dynamic, &[]);
    let mut p = t.launch(&prog, &["120"]);
    // Checkpoint well before the 2 s alarm rings.
    p.wait_for_count(3, LINE_TIMEOUT);
    let mut c = cycle(&t, p);
    let r = &mut c.restarted;
    assert!(
        r.lines()
            .iter()
            .filter(|l| l.starts_with("nofile "))
            .all(|l| l == "nofile 123"),
        "RLIMIT_NOFILE changed across the restart\n{}",
        r.describe()
    );
    let rang = r.wait_for_line("`alarm 1`", Duration::from_secs(10), |l| l.starts_with("alarm "));
    assert_eq!(rang, "alarm 1", "\n{}", r.describe());
    expect_done(r, 120, Duration::from_secs(20));
    assert_eq!(
        r.lines().iter().filter(|l| l.starts_with("alarm")).count(),
        1,
        "the alarm rang more than once"
    );
}

/// Handlers installed with signal() (no SA_SIGINFO), which i386 kernels deliver with the
/// old, non-rt frame: they run (an i386 program crashed at its first signal before), and
/// still run after a restart.
fn old_style_handlers(bits: Bits) {
    let t = Test::new(&bits.name("oldsignal"));
    for variant in [Variant::Dynamic, Variant::Static] {
        let prog = t.compile("oldsignal", variant, bits, &[]);
        let mut p = t.launch(&prog, &["80"]);
        p.wait_for_count(5, LINE_TIMEOUT);
        let mut c = cycle(&t, p);
        expect_done(&mut c.restarted, 80, Duration::from_secs(30));
        c.restarted.assert_no_bad();
    }
}

per_width!(old_style_signal_handlers, old_style_signal_handlers_32 => old_style_handlers());
