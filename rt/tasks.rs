//! Listing this process's threads and file descriptors (/proc/self/task, /proc/self/fd)
//! and reading threads' signal masks.

use syscalls::Errno;

use mtcp_core::maps::dec;
use mtcp_core::sys;

/// Calls `f(tid)` for every thread of the process.
pub fn for_each_task(f: impl FnMut(u32)) -> Result<(), Errno> {
    for_each_entry(b"/proc/self/task", f)
}

/// Calls `f(n)` for every numeric entry of a /proc directory (tasks, fds).
pub fn for_each_entry(dir: &[u8], mut f: impl FnMut(u32)) -> Result<(), Errno> {
    let fd = sys::open(dir, sys::O_RDONLY | sys::O_DIRECTORY | sys::O_CLOEXEC, 0)?;
    sys::for_each_dir_entry(&fd, |name| {
        if let Some(n) = dec(name) {
            f(n as u32);
        }
    })
}

/// Whether thread `tid` has `sig` in its blocked mask (SigBlk in its status file).
pub fn blocks_signal(tid: u32, sig: u32) -> bool {
    thread_mask(tid, b"SigBlk:").is_some_and(|m| m & (1u64 << (sig - 1)) != 0)
}

/// A signal mask line (`SigBlk:`, `SigPnd:`, `ShdPnd:` ...) of thread `tid`'s status file.
pub fn thread_mask(tid: u32, key: &[u8]) -> Option<u64> {
    sys::trace::task_mask(sys::getpid(), tid, key)
}
