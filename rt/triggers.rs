//! How a checkpoint is asked for: the checkpoint signal's handler and the interval timer.
#![deny(unsafe_code)]

use mtcp_core::fmt::ErrnoName;
use mtcp_core::protocol::TIMER_VALUE;
use mtcp_core::sys::{self, KernelSigaction};

/// Installs the checkpoint handler for `sig`.
pub fn install_handler(sig: u32) -> Result<(), syscalls::Errno> {
    let act = KernelSigaction {
        handler: crate::checkpoint::on_signal as *const () as usize,
        // SA_ONSTACK: on a thread with an alternate signal stack the handler runs there;
        // Go requires it of every handler, since a goroutine's own stack may be tiny.
        flags: sys::SA_SIGINFO | sys::SA_RESTART | sys::SA_RESTORER | sys::SA_ONSTACK,
        restorer: mtcp_core::arch::sigreturn_trampoline as *const () as usize,
        // No handler of the program may run inside ours: it would change memory while
        // the image is being written, or wait on a lock a parked thread holds. Signals
        // that arrive meanwhile stay pending (and are saved as such).
        mask: !0,
    };
    sys::rt_sigaction(sig as usize, Some(&act), None)
}

/// Periodic checkpoints; a failure is reported, not fatal (explicit checkpoints still work).
pub fn start_interval_timer(sig: u32, secs: u32) {
    if let Err(e) = sys::periodic_signal_timer(sig, TIMER_VALUE, secs) {
        mtcp_core::eprint_line!("mtcp: cannot start the checkpoint timer: {}", ErrnoName(e));
    }
}
