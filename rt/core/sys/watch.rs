//! Waiting for a directory to change (inotify), so that `mtcp checkpoint` hears of its
//! answer when it is written instead of at its next poll.

use syscalls::{Errno, Sysno};

use super::{CPath, Fd};

const IN_NONBLOCK: usize = 0o4000;
const IN_CLOEXEC: usize = 0o2000000;
const IN_MODIFY: u32 = 0x2;
const IN_CLOSE_WRITE: u32 = 0x8;
const IN_MOVED_TO: u32 = 0x80;
const IN_CREATE: u32 = 0x100;
const POLLIN: i16 = 1;

/// An inotify descriptor watching `dir` for files written, created or renamed into it.
/// Errors as inotify_init1 and inotify_add_watch give them (EMFILE, ENOSPC for too many
/// watches, ENOENT/EACCES for the directory).
pub fn watch_dir_changes(dir: &[u8]) -> Result<Fd, Errno> {
    let fd = super::inotify_init(IN_NONBLOCK | IN_CLOEXEC)?;
    let path = CPath::new(dir)?;
    super::inotify_add_watch(fd.raw(), &path, IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE)?;
    Ok(fd)
}

/// Waits up to `ms` milliseconds for `watch` to report a change, then drains what it
/// reported. True if something changed. EINTR counts as a change (the caller looks again).
pub fn wait_dir_change(watch: &Fd, ms: u32) -> bool {
    #[repr(C)]
    struct PollFd {
        fd: i32,
        events: i16,
        revents: i16,
    }
    let mut p = PollFd {
        fd: watch.raw(),
        events: POLLIN,
        revents: 0,
    };
    // SAFETY: one valid struct pollfd.
    let ready = unsafe { syscalls::syscall3(Sysno::poll, &mut p as *mut PollFd as usize, 1, ms as usize) };
    match ready {
        Ok(0) => false,
        Ok(_) => {
            let mut events = [0u8; 4096];
            // SAFETY: the buffer is writable for its length; the descriptor is non-blocking.
            while let Ok(n) = unsafe {
                syscalls::syscall3(
                    Sysno::read,
                    watch.raw() as usize,
                    events.as_mut_ptr() as usize,
                    events.len(),
                )
            } {
                if n == 0 {
                    break;
                }
            }
            true
        }
        Err(_) => true,
    }
}
