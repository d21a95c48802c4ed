//! Listing this process's threads and file descriptors (/proc/self/task, /proc/self/fd)
//! and reading threads' signal masks.

use core::fmt::Write;
use syscalls::Errno;

use mtcp_core::fmt::FmtBuf;
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
    let mut path = FmtBuf::<64>::new();
    let _ = write!(path, "/proc/self/task/{}/status", tid);
    let mut buf = [0u8; 2048];
    let n = sys::read_file(path.as_bytes(), &mut buf).ok()?;
    let line = buf[..n].split(|&c| c == b'\n').find_map(|l| l.strip_prefix(key))?;
    let mut mask: u64 = 0;
    for &c in line.trim_ascii() {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        mask = (mask << 4) | d as u64;
    }
    Some(mask)
}
