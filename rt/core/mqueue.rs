//! Message queues the runtime and `mtcp_restart` make for themselves: an unnamed queue
//! of their own, and handing a netlink socket a SIGEV_THREAD notification again (the
//! kernel alone can put one there).
#![deny(unsafe_code)]

use core::fmt::Write;

use crate::fmt::FmtBuf;
use crate::image::COOKIE_LEN;
use crate::sys::{self, CPathBuf, Fd, MqAttr, MqNotification};
use crate::Errno;

/// A new queue of `attr`'s size that no one else can open: made under a name of our own
/// (unpredictable, created exclusively) and unlinked at once. `flags` are the access
/// mode, O_NONBLOCK and O_CLOEXEC; `mode` its permission bits. Errors: mq_open's
/// (EINVAL for attributes above the system's limits, EMFILE, ENOSPC, ENOMEM, EPERM).
pub fn private_queue(flags: usize, mode: u32, attr: &MqAttr) -> Result<Fd, Errno> {
    let mut last = Errno::EEXIST;
    for _ in 0..8 {
        let mut name = FmtBuf::<64>::new();
        let _ = write!(name, "mtcp-{}-{:016x}", sys::getpid(), sys::random_u64());
        let name = CPathBuf::<64>::new(name.as_bytes())?;
        match sys::mq_open(&name, flags | sys::O_CREAT | sys::O_EXCL, mode, Some(attr)) {
            Ok(q) => {
                sys::mq_unlink(&name)?;
                return Ok(q);
            }
            Err(Errno::EEXIST) => last = Errno::EEXIST,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// Makes the kernel send `cookie` (a SIGEV_THREAD notification as it was read from a
/// netlink socket: NOTIFY_WOKENUP or NOTIFY_REMOVED in its last byte) to netlink socket
/// `sock` again: a registration of `sock` on a private queue, then a message to that
/// queue (woken up) or the queue's closing (removed). Errors: `private_queue`'s, and
/// mq_notify's (EBADF or ECONNREFUSED: `sock` is not a netlink socket; EAGAIN: its
/// receive queue is full).
pub fn send_cookie(sock: i32, cookie: &[u8; COOKIE_LEN]) -> Result<(), Errno> {
    let q = private_queue(
        sys::O_RDWR | sys::O_NONBLOCK | sys::O_CLOEXEC,
        0o600,
        &MqAttr::new(1, 1),
    )?;
    let mut registered = *cookie;
    registered[COOKIE_LEN - 1] = 0;
    let how = MqNotification {
        notify: sys::SIGEV_THREAD,
        signo: sock as u32,
        value: registered.as_ptr() as usize,
    };
    sys::mq_notify(q.raw(), Some(&how))?;
    if cookie[COOKIE_LEN - 1] != sys::NOTIFY_REMOVED {
        // A message to the empty queue: the kernel sends the cookie, woken up.
        sys::mq_send_now(q.raw(), b"", 0)?;
    }
    // Closing the queue removes a registration still in place: the cookie, removed.
    drop(q);
    Ok(())
}
