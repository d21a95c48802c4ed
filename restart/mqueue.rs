//! Step 4, files: message queues opened again by name, or made again with their
//! messages where they had been unlinked; last, their notification registrations, and
//! the SIGEV_THREAD notifications that waited in netlink sockets, sent there again.
//! What cannot come back is named.
#![deny(unsafe_code)]

use core::fmt::Write;

use mtcp_core::eprint_line;
use mtcp_core::fmt::{ErrnoName, FmtBuf, Lossy};
use mtcp_core::image::*;
use mtcp_core::sys::{self, CPathBuf, Fd, MqAttr, MqNotification};
use mtcp_core::Errno;

const O_NONBLOCK: u32 = 0o4000;
const O_CLOEXEC: u32 = 0o2000000;
const F_GETFD: usize = 1;
const DELETED_SUFFIX: &[u8] = b" (deleted)";

/// The queue's name as mq_open takes it (no leading `/`, no ` (deleted)`).
fn kernel_name(state: &MqueueState, path: &[u8]) -> Result<CPathBuf<256>, Errno> {
    let mut name = path.strip_prefix(b"/").unwrap_or(path);
    if state.flags & MQ_UNLINKED != 0 {
        name = name.strip_suffix(DELETED_SUFFIX).unwrap_or(name);
    }
    CPathBuf::new(name)
}

/// The open(2) flags a record's descriptor had: access mode, O_NONBLOCK, O_CLOEXEC.
fn open_flags(rec: &FdRecord) -> usize {
    (rec.flags & (3 | O_NONBLOCK | O_CLOEXEC)) as usize
}

/// Makes the queue descriptor `rec` (record `index`) again at its number: the first
/// record of a queue opens it by name, or makes a new unnamed queue with its saved
/// messages if it had been unlinked; a later record shares or reopens that one.
pub fn restore(meta: &Meta, index: usize, rec: &FdRecord, verbose: bool) {
    let path = meta.string(rec.path);
    let Some((state, messages)) = MqueueState::of(rec, meta.string(rec.data)) else {
        eprint_line!(
            "mtcp_restart: warning: fd {} (message queue {}): malformed record; it stays closed",
            rec.fd,
            Lossy(path)
        );
        return;
    };
    let made = if state.same_as != NOT_SHARED {
        let back = (0..index).any(|j| meta.fd(j).fd == state.same_as && meta.fd(j).kind == FD_MQUEUE)
            && sys::fcntl(state.same_as as i32, F_GETFD, 0).is_ok();
        if !back {
            Err(Errno::EBADF)
        } else if state.flags & MQ_SAME_OPEN_FILE != 0 {
            sys::dup3(state.same_as as i32, rec.fd as i32, cloexec(rec)).map(|()| None)
        } else {
            reopen(state.same_as as i32, open_flags(rec)).map(Some)
        }
    } else if state.flags & MQ_UNLINKED != 0 {
        remake(rec, &state, messages, path).map(Some)
    } else {
        open_by_name(rec, &state, path).map(Some)
    };
    let placed = made.and_then(|fd| match fd {
        Some(fd) => place(fd, rec),
        None => Ok(()),
    });
    match placed {
        Ok(()) if verbose => eprint_line!(
            "mtcp_restart: fd {} message queue {} restored ({} message(s) at checkpoint time)",
            rec.fd,
            Lossy(path),
            state.curmsgs
        ),
        Ok(()) => {}
        Err(e) => eprint_line!(
            "mtcp_restart: warning: fd {} (message queue {}) cannot be restored: {}; it stays closed",
            rec.fd,
            Lossy(path),
            ErrnoName(e)
        ),
    }
}

/// A queue that still had its name: opened by it, where its messages waited all along.
/// One that is gone is made again, empty, and one that changed is named.
fn open_by_name(rec: &FdRecord, state: &MqueueState, path: &[u8]) -> Result<Fd, Errno> {
    let name = kernel_name(state, path)?;
    let q = match sys::mq_open(&name, open_flags(rec), 0, None) {
        Err(Errno::ENOENT) => {
            let attr = MqAttr::new(state.maxmsg, state.msgsize);
            let q = sys::mq_open(&name, open_flags(rec) | sys::O_CREAT | sys::O_EXCL, 0o600, Some(&attr))?;
            let _ = sys::fchmod(q.raw(), rec.mode & 0o7777);
            eprint_line!(
                "mtcp_restart: warning: fd {}: message queue {} no longer existed; it is made again, empty (it held {} message(s) at checkpoint time)",
                rec.fd,
                Lossy(path),
                state.curmsgs
            );
            return Ok(q);
        }
        other => other?,
    };
    let replaced = sys::fstat(q.raw()).is_ok_and(|st| st.ino != rec.inode);
    let attr = sys::mq_getattr(q.raw())?;
    if replaced || (attr.maxmsg as u64, attr.msgsize as u64) != (state.maxmsg, state.msgsize) {
        eprint_line!(
            "mtcp_restart: warning: fd {}: message queue {} was {} since the checkpoint ({} messages of {} bytes at most then, {} of {} now; {} queued then, {} now)",
            rec.fd,
            Lossy(path),
            if replaced { "replaced" } else { "changed" },
            state.maxmsg,
            state.msgsize,
            attr.maxmsg,
            attr.msgsize,
            state.curmsgs,
            attr.curmsgs
        );
    }
    Ok(q)
}

/// A queue that had been unlinked: a new unnamed queue of its size and mode, holding its
/// saved messages in their order with their priorities.
fn remake(rec: &FdRecord, state: &MqueueState, messages: MqMessages, path: &[u8]) -> Result<Fd, Errno> {
    let attr = MqAttr::new(state.maxmsg, state.msgsize);
    let filler = mtcp_core::mqueue::private_queue(sys::O_RDWR | sys::O_NONBLOCK | sys::O_CLOEXEC, 0o600, &attr)?;
    let mut put = 0u64;
    for (prio, bytes) in messages {
        if let Err(e) = sys::mq_send_now(filler.raw(), bytes, prio) {
            eprint_line!(
                "mtcp_restart: warning: fd {} (message queue {}): a message cannot be put back: {}",
                rec.fd,
                Lossy(path),
                ErrnoName(e)
            );
            break;
        }
        put += 1;
    }
    if state.flags & MQ_MESSAGES_SAVED == 0 && state.curmsgs > 0 {
        eprint_line!(
            "mtcp_restart: warning: fd {} (message queue {}, unlinked): its {} message(s) could not be saved at checkpoint time (it was open for writing only, or read would have fired a notification that cannot be made again); it comes back with {}",
            rec.fd,
            Lossy(path),
            state.curmsgs,
            put
        );
    }
    // The program's own open file, with its access mode and flags; the filler goes
    // before any registration is made (closing it would remove one).
    let q = reopen(filler.raw(), open_flags(rec))?;
    let _ = sys::fchmod(q.raw(), rec.mode & 0o7777);
    Ok(q)
}

/// Another open file of the queue `fd` is open on, through /proc.
fn reopen(fd: i32, flags: usize) -> Result<Fd, Errno> {
    let mut path = FmtBuf::<48>::new();
    let _ = write!(path, "/proc/self/fd/{}", fd);
    sys::open(path.as_bytes(), flags, 0)
}

fn cloexec(rec: &FdRecord) -> usize {
    if rec.flags & O_CLOEXEC != 0 {
        sys::O_CLOEXEC
    } else {
        0
    }
}

/// Moves a new descriptor to the record's number, with the record's FD_CLOEXEC (the
/// kernel's mq_open sets it on every descriptor it makes).
fn place(fd: Fd, rec: &FdRecord) -> Result<(), Errno> {
    if fd.raw() as u32 == rec.fd {
        const F_SETFD: usize = 2;
        let _ = sys::fcntl(fd.raw(), F_SETFD, (rec.flags & O_CLOEXEC != 0) as usize);
        let _ = fd.into_raw();
        return Ok(());
    }
    sys::dup3(fd.raw(), rec.fd as i32, cloexec(rec))
}

/// Each queue's notification registration again, for this process, and then the
/// SIGEV_THREAD notifications that waited unread in netlink sockets, sent to them again.
/// Call when every descriptor is back: closing any descriptor of a queue would remove
/// its registration.
pub fn restore_notifications(meta: &Meta, verbose: bool) {
    for i in 0..meta.fd_count() {
        let rec = meta.fd(i);
        let Some((s, _)) = MqueueState::of(&rec, meta.string(rec.data)) else {
            continue;
        };
        if s.same_as != NOT_SHARED || sys::fcntl(rec.fd as i32, F_GETFD, 0).is_err() {
            continue;
        }
        let path = Lossy(meta.string(rec.path));
        let known = s.flags & MQ_VALUE_KNOWN != 0;
        let how = match s.notify {
            MQ_NOTIFY_SIGNAL => {
                if !known {
                    eprint_line!(
                        "mtcp_restart: warning: fd {} (message queue {}): its notification signal {} comes back with sigev_value 0: the value could not be read at checkpoint time (the queue held messages, or the signal was pending)",
                        rec.fd,
                        path,
                        s.signo
                    );
                }
                MqNotification {
                    notify: sys::SIGEV_SIGNAL,
                    signo: s.signo,
                    value: s.value as usize,
                }
            }
            MQ_NOTIFY_QUIET => MqNotification {
                notify: sys::SIGEV_NONE,
                signo: 0,
                value: 0,
            },
            MQ_NOTIFY_THREAD if known => MqNotification {
                notify: sys::SIGEV_THREAD,
                signo: s.signo,
                value: s.cookie.as_ptr() as usize,
            },
            MQ_NOTIFY_THREAD | MQ_NOTIFY_UNKNOWN => {
                eprint_line!(
                    "mtcp_restart: warning: fd {} (message queue {}): its notification registration ({}) could not be read at checkpoint time; it is not restored",
                    rec.fd,
                    path,
                    mq_notify_name(s.notify)
                );
                continue;
            }
            _ => continue,
        };
        match sys::mq_notify(rec.fd as i32, Some(&how)) {
            Ok(()) if verbose => eprint_line!(
                "mtcp_restart: fd {} (message queue {}): notification registered again ({})",
                rec.fd,
                path,
                mq_notify_name(s.notify)
            ),
            Ok(()) => {}
            Err(e) => eprint_line!(
                "mtcp_restart: warning: fd {} (message queue {}): its notification ({}) cannot be registered again: {}",
                rec.fd,
                path,
                mq_notify_name(s.notify),
                ErrnoName(e)
            ),
        }
    }
    for i in 0..meta.fd_count() {
        let rec = meta.fd(i);
        let Some((_, cookies)) = NetlinkState::of(&rec, meta.string(rec.data)) else {
            continue;
        };
        for c in cookies {
            let mut cookie = [0u8; COOKIE_LEN];
            cookie.copy_from_slice(c);
            if let Err(e) = mtcp_core::mqueue::send_cookie(rec.fd as i32, &cookie) {
                eprint_line!(
                    "mtcp_restart: warning: fd {} (netlink socket): a message queue notification that waited in it is lost: {}",
                    rec.fd,
                    ErrnoName(e)
                );
            }
        }
    }
}
