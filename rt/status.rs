//! The status file through which `mtcp checkpoint PID` learns that a process runs the
//! runtime and that a checkpoint ended: `/tmp/.mtcp-<uid>/<pid>.status`, one line
//! `<seq> 0 ready -` when the runtime starts or a restart completes, then
//! `<seq> <nonce> ok <image path>` or `<seq> <nonce> error <message>` after each
//! checkpoint, always replaced atomically.

use core::fmt::Write;

use crate::fmt::{FmtBuf, Lossy};
use crate::sys::{self, CPathBuf};

/// Writes the status line; failures are ignored (the image, not the status, is what
/// matters, and the tool reports a time-out).
pub fn publish(seq: u64, nonce: u32, ok: bool, text: &[u8]) {
    write_line(seq, nonce, if ok { "ok" } else { "error" }, text);
}

/// Announces that the runtime runs in this process (at start, and after a restart).
pub fn publish_ready(seq: u64) {
    write_line(seq, 0, "ready", b"-");
}

fn write_line(seq: u64, nonce: u32, word: &str, text: &[u8]) {
    let uid = sys::getuid();
    let pid = sys::getpid();
    let mut dir = FmtBuf::<64>::new();
    let _ = write!(dir, "/tmp/.mtcp-{}", uid);
    if let Ok(p) = CPathBuf::<64>::new(dir.as_bytes()) {
        let _ = sys::mkdirat(sys::AT_FDCWD, &p, 0o700);
    }
    let mut tmp = FmtBuf::<96>::new();
    let _ = write!(tmp, "{}/.{}.status.tmp", Lossy(dir.as_bytes()), pid);
    let mut dst = FmtBuf::<96>::new();
    let _ = write!(dst, "{}/{}.status", Lossy(dir.as_bytes()), pid);
    let mut head = FmtBuf::<64>::new();
    let _ = write!(head, "{} {} {} ", seq, nonce, word);
    let (tmp, dst) = match (
        CPathBuf::<128>::new(tmp.as_bytes()),
        CPathBuf::<128>::new(dst.as_bytes()),
    ) {
        (Ok(t), Ok(d)) => (t, d),
        _ => return,
    };
    let fd = match sys::openat(
        sys::AT_FDCWD,
        &tmp,
        sys::O_WRONLY | sys::O_CREAT | sys::O_TRUNC | sys::O_CLOEXEC,
        0o600,
    ) {
        Ok(fd) => fd,
        Err(_) => return,
    };
    // Pieces are fine: the reader only ever sees the file after the rename.
    let written = sys::write_all(fd, head.as_bytes())
        .and_then(|()| sys::write_all(fd, text))
        .and_then(|()| sys::write_all(fd, b"\n"));
    sys::close(fd);
    if written.is_ok() {
        let _ = sys::renameat(sys::AT_FDCWD, &tmp, sys::AT_FDCWD, &dst);
    }
}
