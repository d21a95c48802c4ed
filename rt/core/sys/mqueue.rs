//! POSIX message queues: opening and unlinking by name, attributes, sending and
//! receiving without ever blocking, notification registrations, and the status line
//! the kernel gives a read of a queue descriptor.
//!
//! Error policy as in `sys`. Queue names here are the kernel's: without glibc's leading
//! `/`.

use core::mem::{offset_of, size_of};
use static_assertions::const_assert_eq;
use syscalls::{Errno, Sysno};

use super::file::Fd;
use super::time::{SigEvent, SIGEVENT_PAD};
use super::{fd_arg, pread, CPathBuf};

/// `struct mq_attr`: four C longs and four reserved ones.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MqAttr {
    /// O_NONBLOCK of the descriptor, or 0.
    pub flags: isize,
    pub maxmsg: isize,
    pub msgsize: isize,
    pub curmsgs: isize,
    reserved: [isize; 4],
}
const_assert_eq!(size_of::<MqAttr>(), size_of::<[isize; 8]>());
const_assert_eq!(offset_of!(MqAttr, curmsgs), 3 * size_of::<isize>());

impl MqAttr {
    /// The attributes a new queue is made with (flags and curmsgs are ignored there).
    pub fn new(maxmsg: u64, msgsize: u64) -> MqAttr {
        MqAttr {
            maxmsg: maxmsg.min(isize::MAX as u64) as isize,
            msgsize: msgsize.min(isize::MAX as u64) as isize,
            ..MqAttr::default()
        }
    }
}

/// The highest message priority there is (MQ_PRIO_MAX - 1).
pub const MQ_PRIO_TOP: u32 = 32767;
/// The filesystem magic of the mqueue filesystem (fstatfs f_type).
pub const MQUEUE_MAGIC: u32 = 0x1980_0202;
/// sigev_notify values.
pub const SIGEV_THREAD: u32 = 2;
/// The length of a SIGEV_THREAD cookie, and the codes the kernel puts in its last byte
/// when it sends one to the registration's netlink socket.
pub const NOTIFY_COOKIE_LEN: usize = 32;
pub const NOTIFY_WOKENUP: u8 = 1;
pub const NOTIFY_REMOVED: u8 = 2;

/// mq_open of the kernel name `name` with open(2) `flags` (O_CREAT, O_EXCL, access mode,
/// O_NONBLOCK, O_CLOEXEC), `mode` and, for a new queue, `attr` (None: the defaults).
/// Errors: ENOENT (no such queue), EEXIST (O_EXCL), EACCES, EINVAL (bad attributes or
/// name), ENAMETOOLONG, EMFILE, ENFILE, ENOSPC (too many queues), ENOMEM, EPERM.
pub fn mq_open<const N: usize>(
    name: &CPathBuf<N>,
    flags: usize,
    mode: u32,
    attr: Option<&MqAttr>,
) -> Result<Fd, Errno> {
    let attr = attr.map_or(0, |a| a as *const MqAttr as usize);
    // SAFETY: name is NUL-terminated, attr null or one struct mq_attr; both outlive the call.
    unsafe { syscalls::syscall4(Sysno::mq_open, name.ptr(), flags, mode as usize, attr).map(|r| Fd::adopt(r as i32)) }
}

/// mq_unlink of the kernel name `name`. Errors: ENOENT, EACCES, ENAMETOOLONG.
pub fn mq_unlink<const N: usize>(name: &CPathBuf<N>) -> Result<(), Errno> {
    // SAFETY: name is NUL-terminated and outlives the call.
    unsafe { syscalls::syscall1(Sysno::mq_unlink, name.ptr()).map(|_| ()) }
}

/// The queue's attributes, with the descriptor's O_NONBLOCK in `flags`. EBADF: not a
/// queue descriptor.
pub fn mq_getattr(fd: i32) -> Result<MqAttr, Errno> {
    let mut attr = MqAttr::default();
    // SAFETY: the kernel writes one struct mq_attr into attr; no new one is given.
    unsafe { syscalls::syscall3(Sysno::mq_getsetattr, fd_arg(fd), 0, &mut attr as *mut MqAttr as usize)? };
    Ok(attr)
}

/// An absolute time long past: a send or receive with it never waits. 16 bytes of zeros
/// are a zero time whether the call reads a 32-bit or a 64-bit timespec.
static NEVER_WAIT: [u64; 2] = [0, 0];

/// Sends `msg` with priority `prio`, never waiting. Errors: ETIMEDOUT or EAGAIN (the
/// queue is full), EBADF (not open for writing), EMSGSIZE, EINVAL (bad priority).
pub fn mq_send_now(fd: i32, msg: &[u8], prio: u32) -> Result<(), Errno> {
    // SAFETY: the kernel reads msg.len() bytes of msg and one timespec of NEVER_WAIT.
    unsafe {
        syscalls::syscall5(
            Sysno::mq_timedsend,
            fd_arg(fd),
            msg.as_ptr() as usize,
            msg.len(),
            prio as usize,
            NEVER_WAIT.as_ptr() as usize,
        )
        .map(|_| ())
    }
}

/// Takes the first message (highest priority, oldest first) into `buf`, never waiting:
/// its length and priority. Errors: ETIMEDOUT or EAGAIN (the queue is empty), EBADF (not
/// open for reading), EMSGSIZE (`buf` is shorter than the queue's message size).
pub fn mq_receive_now(fd: i32, buf: &mut [u8]) -> Result<(usize, u32), Errno> {
    let mut prio: u32 = 0;
    // SAFETY: the kernel writes at most buf.len() bytes into buf and one unsigned int
    // into prio, and reads one timespec of NEVER_WAIT.
    let n = unsafe {
        syscalls::syscall5(
            Sysno::mq_timedreceive,
            fd_arg(fd),
            buf.as_mut_ptr() as usize,
            buf.len(),
            &mut prio as *mut u32 as usize,
            NEVER_WAIT.as_ptr() as usize,
        )?
    };
    Ok((n, prio))
}

/// A notification registration as mq_notify(2) takes it: `notify` is SIGEV_SIGNAL,
/// SIGEV_NONE or SIGEV_THREAD; for SIGEV_SIGNAL `signo` and `value` are the signal and its
/// si_value; for SIGEV_THREAD `signo` is the netlink socket and `value` the address of
/// the NOTIFY_COOKIE_LEN bytes the kernel sends it.
#[derive(Clone, Copy, Debug)]
pub struct MqNotification {
    pub notify: u32,
    pub signo: u32,
    pub value: usize,
}

/// mq_notify: registers this process for `how` (None: removes its registration, which
/// sends a SIGEV_THREAD registration's cookie to its socket with NOTIFY_REMOVED).
/// Errors: EBADF, EBUSY (another registration is in place), EINVAL (bad signal or
/// notification), ENOMEM; for SIGEV_THREAD also EBADF or ECONNREFUSED (not a netlink
/// socket) and EFAULT (the cookie cannot be read).
pub fn mq_notify(fd: i32, how: Option<&MqNotification>) -> Result<(), Errno> {
    let ev = how.map(|n| SigEvent {
        value: n.value,
        signo: n.signo as i32,
        notify: n.notify as i32,
        tid: 0,
        pad: [0; SIGEVENT_PAD],
    });
    let ptr = ev.as_ref().map_or(0, |e| e as *const SigEvent as usize);
    // SAFETY: ptr is null or one struct sigevent that outlives the call; a SIGEV_THREAD
    // cookie's address is the caller's, which the kernel only reads.
    unsafe { syscalls::syscall2(Sysno::mq_notify, fd_arg(fd), ptr).map(|_| ()) }
}

/// What a read of a queue descriptor tells: `QSIZE:n NOTIFY:n SIGNO:n NOTIFY_PID:n`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MqStatus {
    /// Bytes of the messages queued.
    pub qsize: u64,
    /// The registration's sigev_notify (meaningless when `pid` is 0).
    pub notify: u32,
    /// Its signal, for SIGEV_SIGNAL.
    pub signo: u32,
    /// The process registered (as this process's pid namespace sees it), or 0 for none.
    pub pid: u32,
}

/// The status line of queue descriptor `fd`, read at offset 0 (the descriptor's own
/// offset does not move). EBADF: not open for reading; EINVAL: not a queue's line.
pub fn mq_status(fd: i32) -> Result<MqStatus, Errno> {
    let mut buf = [0u8; 128];
    // SAFETY: buf is valid for writes of its length.
    let n = unsafe { pread(fd, buf.as_mut_ptr(), buf.len(), 0)? };
    parse_mq_status(&buf[..n]).ok_or(Errno::EINVAL)
}

fn parse_mq_status(line: &[u8]) -> Option<MqStatus> {
    let mut status = MqStatus::default();
    let mut seen = 0;
    for word in line.split(|c| c.is_ascii_whitespace()).filter(|w| !w.is_empty()) {
        let colon = word.iter().position(|&c| c == b':')?;
        let (key, value) = (&word[..colon], &word[colon + 1..]);
        let value = crate::maps::dec(value)?;
        match key {
            b"QSIZE" => status.qsize = value,
            b"NOTIFY" => status.notify = value as u32,
            b"SIGNO" => status.signo = value as u32,
            b"NOTIFY_PID" => status.pid = value as u32,
            _ => continue,
        }
        seen += 1;
    }
    (seen == 4).then_some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        let s = parse_mq_status(b"QSIZE:6          NOTIFY:0     SIGNO:10    NOTIFY_PID:19462 \n").unwrap();
        assert_eq!(
            s,
            MqStatus {
                qsize: 6,
                notify: 0,
                signo: 10,
                pid: 19462
            }
        );
        assert!(parse_mq_status(b"QSIZE:6 NOTIFY:0\n").is_none(), "a short line");
        assert!(parse_mq_status(b"hello world").is_none());
    }
}
