//! Step 4, files: the program's descriptors at their numbers again: regular files,
//! directories and devices reopened at their offsets, pipes whose both ends were in the
//! process made again with their contents. What cannot come back is named.
#![deny(unsafe_code)]

use mtcp_core::eprint_line;
use mtcp_core::fmt::{ErrnoName, Lossy};
use mtcp_core::image::{FdRecord, Meta, FD_FILE, FD_OTHER, FD_PIPE};
use mtcp_core::sys;

/// Opens the program's files again at their numbers and offsets. Standard input, output
/// and error stay those of whoever started the restart. What cannot come back (pipes,
/// sockets, deleted files) is reported and stays closed.
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
        if rec.kind == FD_OTHER {
            eprint_line!(
                "mtcp_restart: warning: fd {} ({}) cannot be restored and stays closed",
                rec.fd,
                Lossy(path)
            );
            continue;
        }
        let opened = sys::open(path, (rec.flags & KEEP) as usize, 0);
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
        if let Ok(st) = sys::fstat(file.raw()) {
            if rec.kind == FD_FILE
                && (st.ino != rec.inode || st.dev_major != rec.dev_major || st.dev_minor != rec.dev_minor)
            {
                eprint_line!(
                    "mtcp_restart: warning: fd {}: {} is not the file it was at checkpoint time; using it anyway",
                    rec.fd,
                    Lossy(path)
                );
            }
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
        if data.len() > 65536 {
            let _ = sys::fcntl(w.raw(), 1031 /* F_SETPIPE_SZ */, data.len());
        }
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
