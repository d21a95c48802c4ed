//! `--same-pid`: the rest of the restart runs in a child created with the image's pid
//! (clone3 with set_tid), where the kernel lets us choose ids.
#![deny(unsafe_code)]

use mtcp_core::eprint_line;
use mtcp_core::fmt::ErrnoName;
use mtcp_core::image::Meta;
use mtcp_core::sys::{self, KernelSigaction};
use mtcp_core::Errno;

/// Makes the rest of the restart run in a child that has the image's pid; this process
/// waits for it and ends the way it ends. Returns true in that child, or false (after
/// saying why) when the ids cannot be chosen here and the restart goes on with new ids.
///
/// Call before the map step, while single-threaded: it forks.
pub fn become_old_pid(meta: &Meta) -> bool {
    let old = meta.process().pid as u32;
    // A process killed just now can stay a zombie for a moment: wait for its ids to free.
    let deadline = sys::monotonic_ns() + 3_000_000_000;
    for i in 0..meta.thread_count {
        let tid = meta.thread(i).tid as u32;
        while sys::id_in_use(tid) {
            if sys::monotonic_ns() > deadline {
                eprint_line!(
                    "mtcp_restart: --same-pid: id {} is in use by another process; restoring with new ids",
                    tid
                );
                return false;
            }
            let pause = core::sync::atomic::AtomicU32::new(0);
            sys::futex_wait_timeout(&pause, 0, 20_000_000);
        }
    }
    let child = match sys::fork_with_pid(old) {
        Ok(0) => return true,
        Ok(child) => child,
        Err(e) => {
            // The ids cannot be chosen here: fall back to new ids, and say so.
            let why = match e {
                Errno::EPERM => "choosing ids needs CAP_CHECKPOINT_RESTORE (root)",
                Errno::EEXIST => "the pid is in use",
                _ => "clone3 refused",
            };
            eprint_line!(
                "mtcp_restart: --same-pid: cannot create pid {} ({}: {}); restoring with new ids",
                old,
                why,
                ErrnoName(e)
            );
            return false;
        }
    };
    // This process only stands in for the restored one now: it must outlive it and end
    // as it ends, whatever signal the terminal or a `timeout` sends to both.
    let _ = sys::rt_sigprocmask(sys::SIG_SETMASK, Some(!0u64));
    let status = match sys::wait_status(child) {
        Ok(s) => s,
        Err(e) => die!("cannot wait for the restored process: {}", ErrnoName(e)),
    };
    if status & 0x7f == 0 {
        sys::exit_group((status >> 8) & 0xff);
    }
    // Killed by a signal: die the same way, so whoever started us sees it.
    let sig = (status & 0x7f) as usize;
    let dfl = KernelSigaction::default();
    let _ = sys::rt_sigaction(sig, Some(&dfl), None);
    let _ = sys::rt_sigprocmask(sys::SIG_SETMASK, Some(0));
    let _ = sys::tgkill(sys::getpid(), sys::gettid(), sig as u32);
    sys::exit_group(128 + sig as i32)
}
