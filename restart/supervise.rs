//! The supervisor: after the restored process was forked with its old ids, this process
//! stays the pid the shell, `timeout` or a batch system knows. It passes on the signals
//! sent to it, stops when the program stops (so that job control sees the job stop), and
//! ends the way the program ends. It holds nothing else of the restart's.
#![deny(unsafe_code)]

use mtcp_core::arch;
use mtcp_core::fmt::ErrnoName;
use mtcp_core::sys::{self, KernelSigaction};

const SIGCHLD: u32 = 17;
const SIGCONT: u32 = 18;
/// si_code values of signals that a process sent (kill, tgkill, sigqueue); the kernel's
/// own (a terminal's ^C or ^Z to the foreground group, SIGWINCH) are positive, and
/// reached the program directly, since it is in this process's group.
const SI_USER: i32 = 0;
const SI_TKILL: i32 = -6;

/// Supervises `child`, the restored process, until it ends; then ends the same way.
pub fn supervise(child: u32) -> ! {
    let _ = sys::rt_sigprocmask(sys::SIG_SETMASK, Some(!0u64));
    // Only the standard streams stay, for messages: the image and the restart's other
    // descriptors are the program's business now.
    let _ = sys::close_from(3);
    let catchable = !(1u64 << (sys::SIGKILL - 1) | 1u64 << (sys::SIGSTOP - 1));
    let mut info: sys::SigInfo = [0; 128];
    // As the wait statuses tell it (this process's /proc may be another namespace's).
    let mut child_stopped = false;
    loop {
        let sig = match sys::wait_signal(catchable, &mut info) {
            Ok(s) => s,
            Err(e) => die!("the supervisor cannot wait for signals: {}", ErrnoName(e)),
        };
        if sig == SIGCHLD {
            reap(child, &mut child_stopped);
            continue;
        }
        let code = i32::from_le_bytes([
            info[arch::SIGINFO_CODE],
            info[arch::SIGINFO_CODE + 1],
            info[arch::SIGINFO_CODE + 2],
            info[arch::SIGINFO_CODE + 3],
        ]);
        if code > 0 {
            continue; // the kernel's: the program had it too
        }
        if sig == SIGCONT && !child_stopped {
            continue; // the program runs (a `fg` continued it with us): nothing to do
        }
        let _ = if code == SI_USER || code == SI_TKILL {
            sys::kill(child, sig)
        } else {
            // sigqueue and the like: the same siginfo, value included.
            sys::queue_signal_info(child, sig, &info)
        };
    }
}

/// Handles every state change of our children: the program's end ends us; its stop
/// stops us too (with the same signal, so that the shell reports the job stopped as the
/// program would be), until something continues us.
fn reap(child: u32, child_stopped: &mut bool) {
    while let Ok(Some((pid, status))) = sys::wait_child(-1, sys::WNOHANG | sys::WUNTRACED | sys::WCONTINUED | sys::WALL)
    {
        if pid != child {
            continue; // the namespace's init, which ends only with us
        }
        if status == 0xffff {
            *child_stopped = false;
        } else if status & 0xff == 0x7f {
            *child_stopped = true;
            stop_like(((status >> 8) & 0xff) as u32);
        } else if status & 0x7f == 0 {
            sys::exit_group((status >> 8) & 0xff);
        } else {
            die_like((status & 0x7f) as usize);
        }
    }
}

/// Stops this process with `sig`, and returns once it is continued.
fn stop_like(sig: u32) {
    let dfl = KernelSigaction::default();
    let _ = sys::rt_sigaction(sig as usize, Some(&dfl), None);
    let _ = sys::kill(sys::getpid(), sig);
    // A blocked stop signal stays pending: unblocking it stops us right here.
    let _ = sys::rt_sigprocmask(sys::SIG_SETMASK, Some(!(1u64 << (sig - 1))));
    let _ = sys::rt_sigprocmask(sys::SIG_SETMASK, Some(!0u64));
}

/// Dies of `sig`, as the program did, so that whoever started us sees the same end.
pub fn die_like(sig: usize) -> ! {
    // No core file of ours: the program's, if any, was written already.
    let _ = sys::prlimit(4 /* RLIMIT_CORE */, Some((0, 0)));
    let dfl = KernelSigaction::default();
    let _ = sys::rt_sigaction(sig, Some(&dfl), None);
    let _ = sys::rt_sigprocmask(sys::SIG_SETMASK, Some(!(1u64 << (sig - 1))));
    let _ = sys::tgkill(sys::getpid(), sys::gettid(), sig as u32);
    sys::exit_group(128 + sig as i32)
}
