//! How a checkpoint is asked for: the checkpoint signal's handler and the interval
//! thread.

use core::sync::atomic::{AtomicU32, Ordering};

use mtcp_core::fmt::ErrnoName;
use mtcp_core::protocol::TIMER_VALUE;
use mtcp_core::sys::{self, KernelSigaction};

use crate::config::CONFIG;

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

/// The interval thread's tid (0 when there is none).
pub static INTERVAL_TID: AtomicU32 = AtomicU32::new(0);
const INTERVAL_STACK: usize = 64 << 10;

/// Periodic checkpoints, asked for by a thread of the runtime's own that sleeps between
/// them (named `mtcp-interval`). A timer signal would land on whichever thread the
/// kernel picks and cut short the call it sleeps in; this thread asks itself, and the
/// others are reached quietly like for any request. A failure is reported, not fatal
/// (explicit checkpoints still work).
pub fn start_interval_thread() {
    if let Err(e) = spawn_interval_thread() {
        mtcp_core::eprint_line!("mtcp: cannot start the checkpoint interval thread: {}", ErrnoName(e));
    }
}

fn spawn_interval_thread() -> Result<(), syscalls::Errno> {
    let stack = sys::map_anon(INTERVAL_STACK)?;
    let flags = sys::THREAD_CLONE_FLAGS;
    // No thread pointer of its own: it runs only the runtime's code, which uses none.
    let mut scratch = [0u32; 4];
    let tls = mtcp_core::arch::clone_tls_arg(0, 0, &mut scratch);
    // It starts with every signal blocked: none of the program's handlers may run on it.
    let old = sys::rt_sigprocmask(sys::SIG_SETMASK, Some(!0))?;
    #[allow(unsafe_code)]
    // SAFETY: the stack was just mapped for this thread alone, and interval_main never
    // returns.
    let spawned = unsafe { sys::clone_thread(flags, stack + INTERVAL_STACK, 0, 0, tls, interval_main, 0) };
    let _ = sys::rt_sigprocmask(sys::SIG_SETMASK, Some(old));
    spawned.map(|_| ())
}

#[allow(unsafe_code)]
extern "C" fn interval_main(_: usize) -> ! {
    INTERVAL_TID.store(sys::gettid(), Ordering::Release);
    sys::set_thread_name(b"mtcp-interval\0\0\0");
    // SAFETY: the configuration is fixed before this thread starts (and is the image's
    // after a restart).
    let (sig, secs) = unsafe { ((*CONFIG.get()).signal, (*CONFIG.get()).interval_sec) };
    let period = secs as u64 * 1_000_000_000;
    // Only the checkpoint signal may reach this thread.
    let _ = sys::rt_sigprocmask(sys::SIG_SETMASK, Some(!(1u64 << (sig - 1))));
    let mut next = sys::monotonic_ns() + period;
    let pause = AtomicU32::new(0);
    loop {
        let now = sys::monotonic_ns();
        if now < next {
            sys::futex_wait_timeout(&pause, 0, next - now);
            continue;
        }
        // The handler runs before this returns, in this thread, as the coordinator. A
        // restart gives the process and this thread new ids: read them each time.
        let (pid, tid) = (sys::getpid(), sys::gettid());
        INTERVAL_TID.store(tid, Ordering::Release);
        let _ = sys::tgsigqueue(pid, tid, sig, TIMER_VALUE as u32, pid, sys::getuid());
        next += period;
        let now = sys::monotonic_ns();
        if next <= now {
            next = now + period;
        }
    }
}
