//! POSIX message queues at checkpoint time: attributes, the notification registration
//! (its signal and value, or its SIGEV_THREAD cookie), the messages of a queue unlinked
//! while open, and the cookies waiting in netlink sockets. The running process keeps
//! all of it: what is taken out to be read is put back.

use core::fmt::Write;
use syscalls::Errno;

use mtcp_core::arena::ArenaVec;
use mtcp_core::fmt::FmtBuf;
use mtcp_core::image::*;
use mtcp_core::sys::{self, Fd, MqNotification, MqStatus};

/// Whether descriptor `fd`, a regular file by its `mode`, is a message queue.
pub fn is_mqueue(fd: u32, mode: u32) -> bool {
    mode & 0o170000 == 0o100000 && sys::filesystem_type(fd as i32) == Ok(sys::MQUEUE_MAGIC)
}

/// Appends the first MqueueState of queue descriptor `rec` (its attributes, whether it
/// was unlinked, which earlier record shares the queue); `capture_queues` completes it
/// once every descriptor is known. Ok(false): the kernel would not tell.
pub fn capture(rec: &FdRecord, nlink: u32, earlier: &[FdRecord], out: &mut ArenaVec<u8>) -> Result<bool, Errno> {
    let Ok(attr) = sys::mq_getattr(rec.fd as i32) else {
        return Ok(false);
    };
    let mut s = MqueueState {
        same_as: NOT_SHARED,
        maxmsg: attr.maxmsg as u64,
        msgsize: attr.msgsize as u64,
        curmsgs: attr.curmsgs as u64,
        ..MqueueState::default()
    };
    if nlink == 0 {
        s.flags |= MQ_UNLINKED;
    }
    let same_queue = |r: &&FdRecord| r.kind == FD_MQUEUE && same_file(r, rec);
    if let Some(dup) = earlier
        .iter()
        .filter(same_queue)
        .find(|r| sys::same_open_file(r.fd as i32, rec.fd as i32) == Ok(true))
    {
        s.same_as = dup.fd;
        s.flags |= MQ_SAME_OPEN_FILE;
    } else if let Some(first) = earlier.iter().find(same_queue) {
        s.same_as = first.fd;
    }
    push_all(out, as_bytes(&s))?;
    Ok(true)
}

fn same_file(a: &FdRecord, b: &FdRecord) -> bool {
    (a.inode, a.dev_major, a.dev_minor) == (b.inode, b.dev_major, b.dev_minor)
}

/// The most SIGEV_THREAD cookies one checkpoint carries (waiting in netlink sockets).
const MAX_COOKIES: usize = 128;

/// Cookies taken out of netlink sockets, in the order they came: (socket, cookie).
struct Cookies {
    taken: [(u32, [u8; COOKIE_LEN]); MAX_COOKIES],
    count: usize,
}

impl Cookies {
    /// Takes what waits in netlink socket `sock`, one cookie at a time; a removal
    /// notice (NOTIFY_REMOVED) is returned instead of kept, if `want_removed`.
    fn take(&mut self, sock: u32, want_removed: bool) -> Option<[u8; COOKIE_LEN]> {
        let mut found = None;
        loop {
            let mut c = [0u8; COOKIE_LEN];
            // Only whole cookies: anything else stays where it is.
            match sys::recv(sock as i32, &mut c, sys::MSG_PEEK | sys::MSG_DONTWAIT | MSG_TRUNC) {
                Ok(n) if n == COOKIE_LEN => {}
                _ => break,
            }
            let ours = want_removed && found.is_none() && c[COOKIE_LEN - 1] == sys::NOTIFY_REMOVED;
            if !ours && self.count == MAX_COOKIES {
                break;
            }
            if sys::recv(sock as i32, &mut c, sys::MSG_DONTWAIT) != Ok(COOKIE_LEN) {
                break;
            }
            if ours {
                found = Some(c);
            } else {
                self.taken[self.count] = (sock, c);
                self.count += 1;
            }
        }
        found
    }
}

const MSG_TRUNC: usize = 0x20;
/// si_code of a message queue's notification signal.
const SI_MESGQ: i32 = -3;

/// Completes the record of every message queue: its notification registration and,
/// for a queue unlinked while open, its messages; and the record of every netlink
/// socket that may hold SIGEV_THREAD notifications, with those waiting in it. Every
/// record rewritten gets a new payload at the end of `out` (`data_ranges`).
///
/// What had to be taken out to be read (a registration, the messages, waiting
/// cookies) is put back before this returns, so the running process goes on as before.
pub fn capture_queues(
    records: &[FdRecord],
    data_ranges: &mut [(usize, usize)],
    out: &mut ArenaVec<u8>,
) -> Result<(), Errno> {
    let has_queue = records.iter().any(|r| r.kind == FD_MQUEUE);
    let mut sockets = [0u32; 16];
    let mut socket_count = 0;
    let mut others = false;
    for (i, r) in records.iter().enumerate() {
        let (start, end) = data_ranges[i];
        if let Some((nl, _)) = NetlinkState::of(r, &out.as_slice()[start..end]) {
            // An unbound socket in no group can be sent nothing but notifications.
            if nl.portid == 0 && nl.groups == 0 && socket_count < sockets.len() {
                sockets[socket_count] = r.fd;
                socket_count += 1;
            } else {
                others = true;
            }
        }
    }
    let sockets = &sockets[..socket_count];
    if !has_queue && sockets.is_empty() {
        return Ok(());
    }
    let mut cookies = Cookies {
        taken: [(0, [0; COOKIE_LEN]); MAX_COOKIES],
        count: 0,
    };
    // A cookie taken out goes back through a private queue: none is taken where no
    // queue can be made (they stay, and only the image goes without them).
    let waiting = sockets.iter().any(|&s| {
        let mut c = [0u8; COOKIE_LEN];
        sys::recv(s as i32, &mut c, sys::MSG_PEEK | sys::MSG_DONTWAIT) == Ok(COOKIE_LEN)
    });
    let can_send_back = !waiting
        || mtcp_core::mqueue::private_queue(sys::O_RDWR | sys::O_CLOEXEC, 0o600, &sys::MqAttr::new(1, 1)).is_ok();
    if can_send_back {
        for &s in sockets {
            cookies.take(s, false);
        }
    }
    let mut result = Ok(());
    for i in 0..records.len() {
        if records[i].kind != FD_MQUEUE || result.is_err() {
            continue;
        }
        let (start, end) = data_ranges[i];
        let Some((state, _)) = MqueueState::of(&records[i], &out.as_slice()[start..end]) else {
            continue;
        };
        if state.same_as != NOT_SHARED {
            continue;
        }
        let queue = Queue {
            records,
            first: records[i],
            state,
            sockets,
            removable_thread: !sockets.is_empty() && !others,
        };
        let head = out.len();
        match queue.capture(&mut cookies, out) {
            Ok(()) => data_ranges[i] = (head, out.len()),
            Err(e) => result = Err(e),
        }
    }
    // Each cookie taken goes back to its socket, in order, and into its record.
    for k in 0..cookies.count {
        let (sock, c) = cookies.taken[k];
        let _ = mtcp_core::mqueue::send_cookie(sock as i32, &c);
    }
    for &s in sockets {
        let i = records.iter().position(|r| r.fd == s).unwrap_or(0);
        let (start, end) = data_ranges[i];
        let data = &out.as_slice()[start..end];
        let (Some(info), Some((mut nl, _))) = (SocketInfo::of(&records[i], data), NetlinkState::of(&records[i], data))
        else {
            continue;
        };
        let taken = || cookies.taken[..cookies.count].iter().filter(|(sock, _)| *sock == s);
        nl.cookies = taken().count() as u32;
        let head = out.len();
        push_all(out, as_bytes(&info))?;
        push_all(out, as_bytes(&nl))?;
        for (_, c) in taken() {
            push_all(out, c)?;
        }
        data_ranges[i] = (head, out.len());
    }
    result
}

/// One queue: its first record, what that record holds so far, and its process's
/// netlink sockets that may carry SIGEV_THREAD notifications.
struct Queue<'a> {
    records: &'a [FdRecord],
    first: FdRecord,
    state: MqueueState,
    sockets: &'a [u32],
    /// A SIGEV_THREAD registration may be removed to read its cookie: the removal
    /// notice can only go to one of `sockets`.
    removable_thread: bool,
}

/// How a descriptor of the queue was opened: read, write or both.
fn access(r: &FdRecord) -> usize {
    r.flags as usize & 3
}

impl Queue<'_> {
    /// A descriptor of this queue the process opened with `mode` allowed (O_RDONLY: for
    /// reading, O_WRONLY: for writing).
    fn program_fd(&self, mode: usize) -> Option<i32> {
        self.records
            .iter()
            .filter(|r| r.kind == FD_MQUEUE && same_file(r, &self.first))
            .find(|r| access(r) == sys::O_RDWR || access(r) == mode)
            .map(|r| r.fd as i32)
    }

    /// A descriptor of our own on the queue, opened through /proc. Closing it removes
    /// this process's registration on the queue (the kernel does that on any close), so
    /// it is opened only where the registration is made again afterwards, or where
    /// there is none.
    fn private_fd(&self, mode: usize) -> Option<Fd> {
        let mut path = FmtBuf::<48>::new();
        let _ = write!(path, "/proc/self/fd/{}", self.first.fd);
        sys::open(path.as_bytes(), mode | sys::O_NONBLOCK | sys::O_CLOEXEC, 0).ok()
    }

    /// The registration as a read of the queue tells it; for a queue the process can
    /// only write to, whether there is one, from whether one can be made (None: there
    /// is one, of unknown kind).
    fn status(&self, reader: Option<i32>) -> Option<MqStatus> {
        let q = self.first.fd as i32;
        match reader {
            Some(r) => sys::mq_status(r).ok(),
            None => match sys::mq_notify(q, Some(&quiet())) {
                Ok(()) => {
                    let _ = sys::mq_notify(q, None);
                    Some(MqStatus::default())
                }
                Err(_) => None,
            },
        }
    }

    /// Takes this process's SIGEV_THREAD registration off, which sends its cookie to its
    /// socket, and reads the cookie there. False if it could not be taken off.
    fn take_thread(&mut self, cookies: &mut Cookies) -> bool {
        if !self.removable_thread || sys::mq_notify(self.first.fd as i32, None).is_err() {
            return false;
        }
        let found = self
            .sockets
            .iter()
            .find_map(|&sock| cookies.take(sock, true).map(|c| (sock, c)));
        if let Some((sock, cookie)) = found {
            let s = &mut self.state;
            s.signo = sock;
            s.cookie = cookie;
            s.cookie[COOKIE_LEN - 1] = 0;
            s.flags |= MQ_VALUE_KNOWN;
        }
        true
    }

    /// Completes the record (the registration, the messages) and appends its new
    /// payload to `out`. Only running out of scratch memory is an error, and even then
    /// the queue is left as it was.
    fn capture(mut self, cookies: &mut Cookies, out: &mut ArenaVec<u8>) -> Result<(), Errno> {
        let q = self.first.fd as i32;
        let unlinked = self.state.flags & MQ_UNLINKED != 0;
        let program_reader = self.program_fd(sys::O_RDONLY);
        let status = self.status(program_reader);
        let s = &mut self.state;
        s.qsize = status.map_or(0, |st| st.qsize);
        s.notify_pid = status.map_or(0, |st| st.pid);
        s.notify = match status {
            None => MQ_NOTIFY_UNKNOWN,
            Some(st) if st.pid == 0 => MQ_NOTIFY_NONE,
            Some(st) if st.pid != sys::getpid() => MQ_NOTIFY_ELSEWHERE,
            Some(st) if st.notify == sys::SIGEV_SIGNAL => MQ_NOTIFY_SIGNAL,
            Some(st) if st.notify == sys::SIGEV_NONE => MQ_NOTIFY_QUIET,
            Some(st) if st.notify == sys::SIGEV_THREAD => MQ_NOTIFY_THREAD,
            Some(_) => MQ_NOTIFY_UNKNOWN,
        };
        if s.notify == MQ_NOTIFY_SIGNAL {
            s.signo = status.map_or(0, |st| st.signo);
        }
        let (notify, signo, curmsgs, msgsize) = (s.notify, s.signo, s.curmsgs, s.msgsize as usize);
        // A SIGEV_SIGNAL registration tells its value only by firing: into an empty
        // queue, with the signal not pending already (it would be merged with it).
        let pending = sys::rt_sigpending().unwrap_or(!0);
        let fire = notify == MQ_NOTIFY_SIGNAL
            && (unlinked || curmsgs == 0)
            && (1..=64).contains(&signo)
            && pending & (1u64 << (signo - 1)) == 0;
        // Whether the registration is off (or will be, fired) and can be made again
        // exactly: only then may the messages go out and back in (their return to an
        // empty queue would fire it).
        let off = match notify {
            MQ_NOTIFY_NONE => true,
            MQ_NOTIFY_QUIET => sys::mq_notify(q, None).is_ok(),
            MQ_NOTIFY_THREAD => self.take_thread(cookies),
            MQ_NOTIFY_SIGNAL => fire,
            _ => false,
        };
        let drain = unlinked && curmsgs > 0 && off;
        // Descriptors of our own where none of the program's will do: they are closed
        // before the registration is made again (reading needs one only when there is
        // no registration: a SIGEV_SIGNAL one was read through the program's).
        let program_writer = self.program_fd(sys::O_WRONLY);
        let own_writer = if program_writer.is_none() && (drain || fire) {
            self.private_fd(sys::O_WRONLY)
        } else {
            None
        };
        let own_reader = if program_reader.is_none() && drain {
            self.private_fd(sys::O_RDONLY)
        } else {
            None
        };
        let writer = program_writer.or(own_writer.as_ref().map(Fd::raw));
        let reader = program_reader.or(own_reader.as_ref().map(Fd::raw));

        let head = out.len();
        push_all(out, as_bytes(&self.state))?;
        let mut result = Ok(());
        if let (Some(r), Some(w)) = (reader, writer) {
            let mut count = 0;
            if drain {
                let (n, complete, res) = take_messages(r, msgsize, out);
                count = n;
                result = res;
                self.state.messages = n;
                if complete {
                    self.state.flags |= MQ_MESSAGES_SAVED;
                }
            }
            if fire {
                if let Some(value) = fire_once(r, w, signo, msgsize, out) {
                    self.state.value = value as u64;
                    self.state.flags |= MQ_VALUE_KNOWN;
                }
            }
            // Back in the order they came out, each with its priority: the queue is as
            // it was.
            let saved = &out.as_slice()[head + core::mem::size_of::<MqueueState>()..];
            for (prio, bytes) in MqMessages::new(saved, count) {
                let _ = sys::mq_send_now(w, bytes, prio);
            }
        }
        drop(own_reader);
        drop(own_writer);
        // The registration again, now that no descriptor of ours is left to close.
        let s = &self.state;
        let again = match notify {
            MQ_NOTIFY_QUIET if off => Some(quiet()),
            MQ_NOTIFY_SIGNAL if off => Some(MqNotification {
                notify: sys::SIGEV_SIGNAL,
                signo,
                value: s.value as usize,
            }),
            MQ_NOTIFY_THREAD if s.flags & MQ_VALUE_KNOWN != 0 => Some(MqNotification {
                notify: sys::SIGEV_THREAD,
                signo: s.signo,
                value: s.cookie.as_ptr() as usize,
            }),
            _ => None,
        };
        if let Some(how) = again {
            let _ = sys::mq_notify(q, Some(&how));
        }
        // The head, complete now, over the one pushed before the messages.
        let s = self.state;
        out.as_mut_slice()[head..head + core::mem::size_of::<MqueueState>()].copy_from_slice(as_bytes(&s));
        result
    }
}

/// Takes every message out of the queue (`reader`, whose messages are at most
/// `msgsize` bytes) into `out`, each an MqMessage and its bytes: how many, whether that
/// was all of them, and whether scratch memory ran out (then what was taken is in
/// `out` all the same, to be put back).
fn take_messages(reader: i32, msgsize: usize, out: &mut ArenaVec<u8>) -> (u32, bool, Result<(), Errno>) {
    let mut count = 0;
    loop {
        let head = out.len();
        let room = match out.grow(core::mem::size_of::<MqMessage>() + msgsize) {
            Ok(r) => r,
            Err(e) => return (count, false, Err(e)),
        };
        let got = sys::mq_receive_now(reader, &mut room[core::mem::size_of::<MqMessage>()..]);
        match got {
            Ok((len, prio)) => {
                let m = MqMessage { prio, len: len as u32 };
                room[..core::mem::size_of::<MqMessage>()].copy_from_slice(as_bytes(&m));
                out.truncate(head + core::mem::size_of::<MqMessage>() + len);
                count += 1;
            }
            Err(e) => {
                out.truncate(head);
                return (count, matches!(e, Errno::ETIMEDOUT | Errno::EAGAIN), Ok(()));
            }
        }
    }
}

/// Fires this process's SIGEV_SIGNAL registration on the (empty) queue with one empty
/// message of the highest priority, takes the signal it sends (blocked in every thread
/// during a checkpoint) and the message back: the registration's sigev_value.
fn fire_once(reader: i32, writer: i32, signo: u32, msgsize: usize, out: &mut ArenaVec<u8>) -> Option<usize> {
    sys::mq_send_now(writer, b"", sys::MQ_PRIO_TOP).ok()?;
    let taken = sys::take_pending_signal(signo).ok().filter(|t| t.code == SI_MESGQ);
    let head = out.len();
    if let Ok(room) = out.grow(msgsize) {
        // The empty message is first (highest priority, oldest of its priority); were it
        // someone else's, it goes back.
        if let Ok((len, prio)) = sys::mq_receive_now(reader, room) {
            if len != 0 || prio != sys::MQ_PRIO_TOP {
                let _ = sys::mq_send_now(writer, &room[..len], prio);
            }
        }
    }
    out.truncate(head);
    taken.map(|t| t.value)
}

fn quiet() -> MqNotification {
    MqNotification {
        notify: sys::SIGEV_NONE,
        signo: 0,
        value: 0,
    }
}

fn push_all(out: &mut ArenaVec<u8>, bytes: &[u8]) -> Result<(), Errno> {
    for &b in bytes {
        out.push(b)?;
    }
    Ok(())
}
