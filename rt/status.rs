//! The status file through which `mtcp checkpoint PID` learns that a process runs the
//! runtime and how its request ended: `<pid>.status` (`<pid>@<pid namespace>.status` outside
//! the initial pid namespace) in the user's status directory
//! (path and line format: `mtcp_core::protocol`). The file keeps the last few lines,
//! newest first, and is always replaced atomically. The directory must be the user's
//! own, private one: a directory another user made (say, planted in /tmp) is never
//! written into.

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

use mtcp_core::eprint_line;
use mtcp_core::fmt::{FmtBuf, Lossy};
use mtcp_core::global::Global;
use mtcp_core::progress::progress_file_owner;
use mtcp_core::protocol::{
    escape, status_file_owner, temp_status_writer, usable_runtime_dir, Outcome, ProcName, Status, StatusDir,
    TempStatusName, STATUS_HISTORY,
};
use mtcp_core::sys::{self, CPathBuf, Fd};

/// Room for the file: a few lines, each a head and an escaped path.
const TEXT_SIZE: usize = 16 << 10;

/// The file's current contents, and room to build the next ones. Written only by the
/// constructor, the coordinator (finish) and the restore code, one at a time.
static TEXT: Global<(FmtBuf<TEXT_SIZE>, FmtBuf<TEXT_SIZE>)> = Global::new((FmtBuf::new(), FmtBuf::new()));

static WARNED: AtomicBool = AtomicBool::new(false);

/// Where this module keeps its text (a forked writer must not give that memory back).
pub fn text_range() -> (usize, usize) {
    let at = TEXT.get() as usize;
    (at, at + core::mem::size_of::<(FmtBuf<TEXT_SIZE>, FmtBuf<TEXT_SIZE>)>())
}

/// The line after a checkpoint, answering `nonces` (their decimal list, `0` for none);
/// failures are ignored (the image, not the status, is what matters, and the tool
/// reports a time-out).
pub fn publish(seq: u64, nonces: &[u8], ok: bool, text: &[u8]) {
    let outcome = if ok { Outcome::Ok(text) } else { Outcome::Error(text) };
    write_status(&Status { seq, nonces, outcome }, sys::own_proc_name());
}

/// `publish` from a forked writer, in the status file of the program `proc`; returns
/// the line it wrote, for the program to `remember`.
pub fn publish_for(proc: ProcName, seq: u64, nonces: &[u8], ok: bool, text: &[u8]) -> &'static [u8] {
    let outcome = if ok { Outcome::Ok(text) } else { Outcome::Error(text) };
    write_status(&Status { seq, nonces, outcome }, proc);
    // SAFETY: the caller (the forked writer) is the only user of TEXT in its process.
    let (text, _) = unsafe { &*TEXT.get() };
    text.as_bytes().split(|&c| c == b'\n').next().unwrap_or(b"")
}

/// Takes the line a forked writer published into this process's copy of the file, so
/// that the next line written keeps it as history.
pub fn remember(line: &[u8]) {
    // SAFETY: the protocol gives the caller (the coordinator) the only access to TEXT.
    let (text, next) = unsafe { &mut *TEXT.get() };
    *next = FmtBuf::new();
    next.push_bytes(line);
    next.push_bytes(b"\n");
    keep_history(text, next);
    core::mem::swap(text, next);
}

/// Appends the lines of `text` that fit as history after `next`'s new line.
fn keep_history(text: &FmtBuf<TEXT_SIZE>, next: &mut FmtBuf<TEXT_SIZE>) {
    for line in text
        .as_bytes()
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .take(STATUS_HISTORY - 1)
    {
        if next.as_bytes().len() + line.len() + 1 > TEXT_SIZE {
            break;
        }
        next.push_bytes(line);
        next.push_bytes(b"\n");
    }
}

/// Announces that the runtime runs in this process (at start, and after a restart);
/// also clears out the files of processes that are gone.
pub fn publish_ready(seq: u64) {
    write_status(
        &Status {
            seq,
            nonces: b"0",
            outcome: Outcome::Ready,
        },
        sys::own_proc_name(),
    );
    if let Some(dir) = private_dir() {
        remove_dead_files(&dir);
    }
}

fn write_status(status: &Status, proc: ProcName) {
    // SAFETY: the protocol gives the caller (constructor, coordinator or restore code)
    // the only access to TEXT.
    let (text, next) = unsafe { &mut *TEXT.get() };
    *next = FmtBuf::new();
    let _ = status.write_head(next);
    escape(status.text(), |piece| next.push_bytes(piece));
    next.push_bytes(b"\n");
    // Earlier lines follow, as many whole ones as fit.
    keep_history(text, next);
    core::mem::swap(text, next);
    if let Some(dir) = private_dir() {
        write_file(&dir, text.as_bytes(), proc);
    }
}

/// The status directory, created if need be; None (after saying so, once) if it is not
/// a directory this user owns, or cannot be made private.
pub(crate) fn private_dir() -> Option<Fd> {
    let uid = sys::getuid();
    let owner = sys::geteuid();
    // SAFETY: the configuration is written only before the first checkpoint.
    let cfg = unsafe { &*crate::config::CONFIG.get() };
    let runtime_dir = cfg.runtime_dir().filter(|d| {
        usable_runtime_dir(d, owner, |p| {
            let c = CPathBuf::<256>::new(p).ok()?;
            let st = sys::statx(sys::AT_FDCWD, &c, sys::AT_SYMLINK_NOFOLLOW).ok()?;
            Some((st.uid, st.mode as u32))
        })
    });
    let mut path = FmtBuf::<300>::new();
    let _ = write!(path, "{}", StatusDir { uid, runtime_dir });
    let cpath = CPathBuf::<300>::new(path.as_bytes()).ok()?;
    let _ = sys::mkdirat(sys::AT_FDCWD, &cpath, 0o700);
    let refuse = |why: core::fmt::Arguments| {
        if !WARNED.swap(true, Ordering::AcqRel) {
            eprint_line!(
                "mtcp: {} {}; no checkpoint status is written there, so `mtcp checkpoint` cannot answer (remove it)",
                Lossy(path.as_bytes()),
                why
            );
        }
        None
    };
    let dir = match sys::openat(
        sys::AT_FDCWD,
        &cpath,
        sys::O_RDONLY | sys::O_DIRECTORY | sys::O_NOFOLLOW | sys::O_CLOEXEC,
        0,
    ) {
        Ok(d) => d,
        Err(_) => return refuse(format_args!("is not a directory")),
    };
    let st = sys::fstat(dir.raw()).ok()?;
    if st.uid != owner {
        return refuse(format_args!("belongs to uid {}, not to uid {}", st.uid, owner));
    }
    if st.mode & 0o077 != 0 && sys::fchmod(dir.raw(), 0o700).is_err() {
        return refuse(format_args!("is open to other users (mode {:o})", st.mode & 0o7777));
    }
    Some(dir)
}

/// Writes `<ProcName>.status` through a temporary file of an unpredictable name.
fn write_file(dir: &Fd, text: &[u8], proc: ProcName) {
    let mut tmp = FmtBuf::<80>::new();
    let _ = write!(
        tmp,
        "{}",
        TempStatusName {
            proc,
            random: sys::random_u64()
        }
    );
    let mut dst = FmtBuf::<48>::new();
    let _ = write!(dst, "{}.status", proc);
    let (Ok(tmp), Ok(dst)) = (CPathBuf::<80>::new(tmp.as_bytes()), CPathBuf::<48>::new(dst.as_bytes())) else {
        return;
    };
    let flags = sys::O_WRONLY | sys::O_CREAT | sys::O_EXCL | sys::O_NOFOLLOW | sys::O_CLOEXEC;
    let Ok(fd) = sys::openat(dir.raw(), &tmp, flags, 0o600) else {
        return;
    };
    let written = sys::write_all(fd.raw(), text);
    drop(fd);
    if written.is_err() || sys::renameat(dir.raw(), &tmp, dir.raw(), &dst).is_err() {
        let _ = sys::unlinkat(dir.raw(), &tmp);
    }
}

/// Status files (and temporary ones) and progress files of processes that no longer
/// exist: those of this pid namespace only (the others' pids mean nothing here).
fn remove_dead_files(dir: &Fd) {
    let _ = sys::for_each_dir_entry(dir, |name| {
        let owner = status_file_owner(name)
            .or_else(|| temp_status_writer(name))
            .or_else(|| progress_file_owner(name));
        if owner.is_some_and(sys::named_process_gone) {
            if let Ok(n) = CPathBuf::<256>::new(name) {
                let _ = sys::unlinkat(dir.raw(), &n);
            }
        }
    });
}
