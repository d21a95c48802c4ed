//! The libc calls the harness makes itself: signals to processes and groups, children started with only fds 0-2.

use std::os::unix::process::CommandExt;
use std::process::Command;

pub const SIGKILL: i32 = 9;
pub const SIGUSR1: i32 = 10;
pub const SIGUSR2: i32 = 12;

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
    fn close_range(first: u32, last: u32, flags: i32) -> i32;
    fn signal(sig: i32, handler: usize) -> usize;
}

/// The child gets the default action of `sigs` back even if the test runner ignores
/// them (a shell ignores SIGINT and SIGQUIT in its background jobs), for tests that
/// count on a signal ending a process.
pub fn default_actions(cmd: &mut Command, sigs: &'static [i32]) {
    const SIG_DFL: usize = 0;
    // SAFETY: signal(2) is async-signal-safe, and SIG_DFL has no handler to run.
    unsafe {
        cmd.pre_exec(move || {
            for &s in sigs {
                signal(s, SIG_DFL);
            }
            Ok(())
        });
    }
}

const CLOSE_RANGE_CLOEXEC: i32 = 4;

/// Children start with stdin/stdout/stderr only: descriptors the test runner inherited
/// (a job server, whatever ran `cargo test`) are closed at exec, so that images hold
/// only what the test set up. XDG_RUNTIME_DIR, which decides where status files go, is
/// left out unless the test sets it.
pub(super) fn hermetic(cmd: &mut Command) {
    // Where status files go depends on it; tests that want one set it themselves.
    if cmd.get_envs().all(|(k, _)| k != "XDG_RUNTIME_DIR") {
        cmd.env_remove("XDG_RUNTIME_DIR");
    }
    // SAFETY: close_range is async-signal-safe; CLOEXEC (not closing) keeps the
    // descriptor std uses to report exec failures working.
    unsafe {
        cmd.pre_exec(|| {
            close_range(3, u32::MAX, CLOSE_RANGE_CLOEXEC);
            Ok(())
        });
    }
}

/// Sends `sig` to `pid` (a negative pid is a process group); true if it was sent.
pub fn send_signal(pid: i32, sig: i32) -> bool {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { kill(pid, sig) == 0 }
}
