//! Step 4, files: the program's descriptors at their numbers again: regular files,
//! directories and devices reopened at their offsets, pipes whose both ends were in the
//! process made again with their contents, event descriptors (`event_fds`), sockets
//! (`sockets`) and message queues (`mqueue`) remade.
//! What cannot come back is named.
#![deny(unsafe_code)]

use mtcp_core::eprint_line;
use mtcp_core::fmt::{ErrnoName, Lossy};
use mtcp_core::image::{
    FdRecord, FileIdentity, Meta, NetlinkState, SocketInfo, AF_NETLINK, FD_CHAR, FD_DELETED, FD_DIR, FD_FIFO, FD_FILE,
    FD_INOTIFY, FD_MQUEUE, FD_PIPE, FD_SOCKET,
};
use mtcp_core::sys;

/// Opens the program's files again at their numbers and offsets. Standard input, output
/// and error stay those of whoever started the restart. Deleted files, FIFOs and inotify
/// descriptors are made again by `deleted_files` and `inotify`. What cannot come back
/// (pipes to other processes, most sockets) is reported and stays closed.
///
/// Call after every descriptor of mtcp_restart's own is closed: it takes descriptor
/// numbers over.
pub fn restore_fds(meta: &Meta, verbose: bool) {
    const KEEP: u32 = 0o3 | 0o2000 | 0o4000 | 0o200000 | 0o400000 | 0o2000000 | 0o100000; // access mode, APPEND, NONBLOCK, DIRECTORY, NOFOLLOW, CLOEXEC, LARGEFILE
    restore_pipes(meta, verbose);
    for i in 0..meta.fd_count() {
        let rec = meta.fd(i);
        if rec.fd <= 2 {
            continue;
        }
        let path = meta.string(rec.path);
        if rec.kind == FD_PIPE {
            if pipe_end(meta, &rec).is_none() {
                eprint_line!(
                    "mtcp_restart: warning: fd {} ({}): the other end of the pipe was outside the process; it stays closed",
                    rec.fd,
                    Lossy(path)
                );
            }
            continue;
        }
        if crate::event_fds::is_event_kind(rec.kind) {
            crate::event_fds::restore(meta, i, &rec, verbose);
            continue;
        }
        if rec.kind == FD_DELETED {
            crate::deleted_files::restore_deleted(meta, i, &rec, verbose);
            continue;
        }
        if rec.kind == FD_INOTIFY {
            crate::inotify::restore(meta, i, &rec, verbose);
            continue;
        }
        if rec.kind == FD_FIFO {
            crate::deleted_files::restore_fifo(meta, &rec, verbose);
            continue;
        }
        if rec.kind == FD_MQUEUE {
            crate::mqueue::restore(meta, i, &rec, verbose);
            continue;
        }
        if rec.kind == FD_SOCKET && (crate::sockets::restore(meta, &rec, verbose) || restore_netlink(meta, &rec)) {
            continue;
        }
        // FD_OTHER, or a kind this mtcp_restart does not know.
        if !matches!(rec.kind, FD_FILE | FD_DIR | FD_CHAR) {
            eprint_line!(
                "mtcp_restart: warning: fd {} ({}) cannot be restored and stays closed",
                rec.fd,
                Lossy(path)
            );
            continue;
        }
        // Never blocks (a FIFO or device now at the path), never follows a link planted
        // at the path; the program's own blocking mode is put back below.
        let opened = sys::open(path, (rec.flags & KEEP) as usize | sys::O_NONBLOCK | sys::O_NOFOLLOW, 0);
        let file = match opened {
            Ok(f) => f,
            Err(e) => {
                eprint_line!(
                    "mtcp_restart: warning: fd {} ({}) cannot be reopened: {}; it stays closed",
                    rec.fd,
                    Lossy(path),
                    ErrnoName(e)
                );
                continue;
            }
        };
        let st = match sys::fstat(file.raw()) {
            Ok(st) => st,
            Err(e) => {
                eprint_line!(
                    "mtcp_restart: warning: fd {} ({}) cannot be checked: {}; it stays closed",
                    rec.fd,
                    Lossy(path),
                    ErrnoName(e)
                );
                continue;
            }
        };
        let (was, is) = (rec.mode & 0o170000, st.mode as u32 & 0o170000);
        if was != 0 && was != is {
            eprint_line!(
                "mtcp_restart: warning: fd {}: {} was a {} at checkpoint time and is a {} now; it stays closed",
                rec.fd,
                Lossy(path),
                file_type_name(was),
                file_type_name(is)
            );
            continue;
        }
        let _ = sys::fcntl(file.raw(), sys::F_SETFL, (rec.flags & (O_APPEND | O_NONBLOCK)) as usize);
        if rec.kind == FD_FILE {
            say_how_the_file_changed(&rec, FileIdentity::of(&rec, meta.string(rec.data)), &st, path);
        }
        if rec.kind == FD_FILE {
            if let Err(e) = sys::seek_set(file.raw(), rec.pos) {
                eprint_line!(
                    "mtcp_restart: warning: fd {} ({}): cannot seek to {}: {}",
                    rec.fd,
                    Lossy(path),
                    rec.pos,
                    ErrnoName(e)
                );
            }
        }
        if file.raw() as u32 == rec.fd {
            // Opened at its own number: it belongs to the program now.
            let _ = file.into_raw();
        } else {
            let cloexec = if rec.flags & 0o2000000 != 0 { sys::O_CLOEXEC } else { 0 };
            if let Err(e) = sys::dup3(file.raw(), rec.fd as i32, cloexec) {
                eprint_line!(
                    "mtcp_restart: warning: fd {} ({}) cannot be restored: {}",
                    rec.fd,
                    Lossy(path),
                    ErrnoName(e)
                );
                continue;
            }
        }
        if verbose {
            eprint_line!(
                "mtcp_restart: fd {} reopened: {} at offset {}",
                rec.fd,
                Lossy(path),
                rec.pos
            );
        }
    }
    // Last: what each epoll instance watches, now that all of it is back, and the
    // message queues' notifications (netlink sockets included).
    crate::event_fds::restore_registrations(meta, verbose);
    crate::mqueue::restore_notifications(meta, verbose);
}

/// A regular file reopened at restart is used whatever happened to it (a log rotated, a
/// data file appended to by another program), but never silently: a replaced file and
/// a modified one are each named, with what changed.
fn say_how_the_file_changed(rec: &FdRecord, then: Option<FileIdentity>, st: &sys::Statx, path: &[u8]) {
    let now = st.identity();
    let other_inode = st.ino != rec.inode || st.dev_major != rec.dev_major || st.dev_minor != rec.dev_minor;
    if other_inode || then.is_some_and(|t| t.born_apart(&now)) {
        eprint_line!(
            "mtcp_restart: warning: fd {}: {} was replaced by another file since the checkpoint; the program gets the new one",
            rec.fd,
            Lossy(path)
        );
    } else if let Some(t) = then.filter(|t| t.changed(&now)) {
        eprint_line!(
            "mtcp_restart: warning: fd {}: {} was modified since the checkpoint (size {} then, {} now)",
            rec.fd,
            Lossy(path),
            t.size,
            now.size
        );
    }
}

const O_APPEND: u32 = 0o2000;
const O_NONBLOCK: u32 = 0o4000;

fn file_type_name(mode_type: u32) -> &'static str {
    match mode_type {
        0o100000 => "regular file",
        0o040000 => "directory",
        0o020000 => "character device",
        0o060000 => "block device",
        0o010000 => "FIFO",
        0o140000 => "socket",
        0o120000 => "symbolic link",
        _ => "file of unknown type",
    }
}

const DEFAULT_PIPE_SIZE: usize = 65536;
const F_SETPIPE_SZ: usize = 1031;

/// Before anything is given up: every pipe of the process can hold again the bytes it
/// held (a pipe enlarged beyond what this user may ask for, say by root, cannot).
pub fn check_pipes(meta: &Meta) {
    for i in 0..meta.fd_count() {
        let rec = meta.fd(i);
        let held = meta.string(rec.data).len();
        // Bytes of a pipe with an end outside (stdin's) are fed in by a process: any size.
        if rec.kind != FD_PIPE || held <= DEFAULT_PIPE_SIZE || pipe_end(meta, &rec).is_none() {
            continue;
        }
        let enlarged = sys::pipe().and_then(|(_r, w)| sys::fcntl(w.raw(), F_SETPIPE_SZ, held));
        if let Err(e) = enlarged {
            die!(
                "the pipe of fd {} held {} bytes, more than this user's pipes can hold here ({}; see /proc/sys/fs/pipe-max-size)",
                rec.fd,
                held,
                ErrnoName(e)
            );
        }
    }
}

/// The record of `rec`'s pipe's other end (a read end for a write end and the other
/// way round), if the process had it open.
fn pipe_end(meta: &Meta, rec: &FdRecord) -> Option<FdRecord> {
    let want = if rec.flags & 3 == sys::O_RDONLY as u32 {
        sys::O_WRONLY as u32
    } else {
        sys::O_RDONLY as u32
    };
    (0..meta.fd_count())
        .map(|j| meta.fd(j))
        .find(|o| o.kind == FD_PIPE && o.inode == rec.inode && o.flags & 3 == want)
}

/// Pipes whose both ends were in the process: a new pipe holding the bytes the old
/// one held, at every descriptor number that referred to either end.
///
/// Called by `restore_fds` first.
fn restore_pipes(meta: &Meta, verbose: bool) {
    let above = (0..meta.fd_count()).map(|i| meta.fd(i).fd).max().unwrap_or(0) as usize + 1;
    for i in 0..meta.fd_count() {
        let rec = meta.fd(i);
        if rec.kind != FD_PIPE || rec.flags & 3 != sys::O_RDONLY as u32 || pipe_end(meta, &rec).is_none() {
            continue;
        }
        // Both new ends start above every number the process uses, so moving one into
        // place can never close the other.
        let made =
            sys::pipe().and_then(|(r, w)| Ok((sys::dup_at_least(r.raw(), above)?, sys::dup_at_least(w.raw(), above)?)));
        let (r, w) = match made {
            Ok(p) => p,
            Err(e) => {
                eprint_line!(
                    "mtcp_restart: warning: cannot recreate the pipe of fd {}: {}",
                    rec.fd,
                    ErrnoName(e)
                );
                continue;
            }
        };
        let data = meta.string(rec.data);
        if data.len() > DEFAULT_PIPE_SIZE {
            // check_pipes made sure this works.
            let _ = sys::fcntl(w.raw(), F_SETPIPE_SZ, data.len());
        }
        // Never blocks: a pipe that cannot take it all reports EAGAIN instead.
        let _ = sys::fcntl(w.raw(), sys::F_SETFL, O_NONBLOCK as usize);
        if let Err(e) = sys::write_all(w.raw(), data) {
            eprint_line!(
                "mtcp_restart: warning: the pipe of fd {} lost its contents: {}",
                rec.fd,
                ErrnoName(e)
            );
        }
        for j in 0..meta.fd_count() {
            let end = meta.fd(j);
            if end.kind != FD_PIPE || end.inode != rec.inode || end.fd <= 2 {
                continue;
            }
            let src = if end.flags & 3 == sys::O_RDONLY as u32 { &r } else { &w };
            let cloexec = if end.flags & 0o2000000 != 0 { sys::O_CLOEXEC } else { 0 };
            if let Err(e) = sys::dup3(src.raw(), end.fd as i32, cloexec) {
                eprint_line!(
                    "mtcp_restart: warning: fd {} (pipe) cannot be restored: {}",
                    end.fd,
                    ErrnoName(e)
                );
                continue;
            }
            let _ = sys::fcntl(end.fd as i32, sys::F_SETFL, (end.flags & 0o4000) as usize);
            if verbose {
                eprint_line!(
                    "mtcp_restart: fd {} pipe recreated with {} byte(s) in it",
                    end.fd,
                    data.len()
                );
            }
        }
    }
}

/// A netlink socket comes back new and unbound at its number, so that a thread waiting
/// on it (glibc's mq_notify helper, say) goes on waiting instead of failing with EBADF
/// for ever; whatever it was subscribed to is not, and the restart says so. False for
/// any other socket.
fn restore_netlink(meta: &Meta, rec: &FdRecord) -> bool {
    let Some(info) = SocketInfo::of(rec, meta.string(rec.data)) else {
        return false;
    };
    if info.domain != AF_NETLINK {
        return false;
    }
    const SOCK_NONBLOCK: u32 = 0o4000;
    const SOCK_CLOEXEC: u32 = 0o2000000;
    let flags = rec.flags & (SOCK_NONBLOCK | SOCK_CLOEXEC);
    let made = sys::socket(info.domain, info.kind | flags, info.protocol).and_then(|s| {
        if s.raw() == rec.fd as i32 {
            let _ = s.into_raw(); // it got its number already
            Ok(())
        } else {
            sys::dup3(s.raw(), rec.fd as i32, (flags & SOCK_CLOEXEC) as usize)
        }
    });
    // An unbound socket in no group is new again as it was (glibc's for mq_notify).
    let unbound = NetlinkState::of(rec, meta.string(rec.data)).is_some_and(|(nl, _)| nl.portid == 0 && nl.groups == 0);
    match made {
        Ok(()) if unbound => {}
        Ok(()) => eprint_line!(
            "mtcp_restart: warning: fd {} (netlink socket, protocol {}) comes back new and unbound: its address and the groups it was subscribed to are lost",
            rec.fd,
            info.protocol
        ),
        Err(e) => eprint_line!(
            "mtcp_restart: warning: fd {} (netlink socket) cannot be made again: {}; it stays closed",
            rec.fd,
            ErrnoName(e)
        ),
    }
    true
}
