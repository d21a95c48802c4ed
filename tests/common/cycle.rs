//! The checkpoint / kill / restart cycle with its continuity checks, and a counting program's normal end.

use super::images::checkpoint;
use super::proc::Proc;
use super::run::describe_status;
use super::test_dir::Test;
use super::LINE_TIMEOUT;
use std::path::PathBuf;
use std::time::Duration;

/// What one cycle observed.
pub struct Cycle {
    pub image: PathBuf,
    /// Last count seen before the checkpoint was requested.
    pub before: u64,
    /// Last count seen when the checkpoint had completed.
    pub after: u64,
    /// Last count printed by the original process before SIGKILL.
    pub at_kill: u64,
    /// First count printed by the restarted process.
    pub first: u64,
    pub restarted: Proc,
}

/// Takes a checkpoint of `p` with `trigger` (which returns the image path once it is
/// complete), lets `p` run a little further, kills it with SIGKILL, restarts the image
/// and checks that the restarted process picks up where the checkpoint was taken:
/// its first count f satisfies `before + 1 <= f <= at_kill + 1` and it goes on counting
/// 20 more consecutive values with intact memory.
pub fn cycle_with(t: &Test, mut p: Proc, trigger: impl FnOnce(&mut Proc) -> PathBuf) -> Cycle {
    let before = p
        .last_count()
        .unwrap_or_else(|| panic!("{}: no count before the checkpoint\n{}", p.label, p.describe()));
    let image = trigger(&mut p);
    let after = p.last_count().unwrap();
    assert!(image.is_file(), "image {} does not exist", image.display());
    // The original survives its checkpoint.
    p.wait_for_count(after + 2, LINE_TIMEOUT);
    p.kill9();
    p.assert_no_bad();
    p.assert_consecutive();
    let at_kill = p.last_count().unwrap();
    let mut r = t.restart(&image);
    let first = r.wait_first_count(LINE_TIMEOUT);
    assert!(
        first > before && first <= at_kill + 1,
        "restarted process began at count {first}, but the checkpoint was taken between counts {before} and {after} \
         (the original printed up to {at_kill} before being killed); expected {}..={}\n{}",
        before + 1,
        at_kill + 1,
        r.describe()
    );
    eprintln!(
        "[{}] checkpoint {} taken between counts {before} and {after}; killed at {at_kill}; restarted at {first}",
        t.name,
        image.display()
    );
    r.wait_for_count(first + 20, LINE_TIMEOUT);
    r.assert_no_bad();
    r.assert_consecutive();
    let noise: Vec<String> = r.stderr_lines().into_iter().filter(|l| l.contains("mtcp")).collect();
    assert!(
        noise.is_empty(),
        "the restart printed messages without --verbose: {noise:?}\n{}",
        r.describe()
    );
    assert!(
        !r.lines().iter().any(|l| l.starts_with("start ")),
        "restarted process ran its start-up again (printed `start`)\n{}",
        r.describe()
    );
    Cycle {
        image,
        before,
        after,
        at_kill,
        first,
        restarted: r,
    }
}

/// `cycle_with` using `mtcp checkpoint PID`.
pub fn cycle(t: &Test, p: Proc) -> Cycle {
    cycle_with(t, p, |p| checkpoint(p.pid()))
}

/// Waits until the process exits normally after printing `done N`.
pub fn expect_done(p: &mut Proc, n: u64, timeout: Duration) {
    p.wait_for_line(&format!("`done {n}`"), timeout, |l| l == format!("done {n}"));
    let st = p.wait_exit(Duration::from_secs(10));
    assert!(
        st.success(),
        "{}: exited with {} after `done {n}`\n{}",
        p.label,
        describe_status(&st),
        p.describe()
    );
    p.assert_no_bad();
    p.assert_consecutive();
}
