//! The status file through which `mtcp checkpoint PID` learns that a process runs the
//! runtime and that a checkpoint ended (its path and line format are
//! `mtcp_core::protocol`'s); always replaced atomically.
#![deny(unsafe_code)]

use core::fmt::Write;

use mtcp_core::fmt::FmtBuf;
use mtcp_core::protocol::{Outcome, Status, StatusDir, StatusFile};
use mtcp_core::sys::{self, CPathBuf};

/// Writes the status line after a checkpoint; failures are ignored (the image, not the
/// status, is what matters, and the tool reports a time-out).
pub fn publish(seq: u64, nonce: u32, ok: bool, text: &[u8]) {
    let outcome = if ok { Outcome::Ok(text) } else { Outcome::Error(text) };
    write_line(&Status {
        seq,
        nonce: nonce as u64,
        outcome,
    });
}

/// Announces that the runtime runs in this process (at start, and after a restart).
pub fn publish_ready(seq: u64) {
    write_line(&Status {
        seq,
        nonce: 0,
        outcome: Outcome::Ready,
    });
}

fn write_line(status: &Status) {
    let uid = sys::getuid();
    let pid = sys::getpid();
    let mut dir = FmtBuf::<64>::new();
    let _ = write!(dir, "{}", StatusDir { uid });
    if let Ok(p) = CPathBuf::<64>::new(dir.as_bytes()) {
        let _ = sys::mkdirat(sys::AT_FDCWD, &p, 0o700);
    }
    let mut tmp = FmtBuf::<96>::new();
    let _ = write!(tmp, "{}", StatusFile { uid, pid, tmp: true });
    let mut dst = FmtBuf::<96>::new();
    let _ = write!(dst, "{}", StatusFile { uid, pid, tmp: false });
    let mut head = FmtBuf::<64>::new();
    let _ = status.write_head(&mut head);
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
    let written = sys::write_all(fd.raw(), head.as_bytes())
        .and_then(|()| sys::write_all(fd.raw(), status.text()))
        .and_then(|()| sys::write_all(fd.raw(), b"\n"));
    drop(fd);
    if written.is_ok() {
        let _ = sys::renameat(sys::AT_FDCWD, &tmp, sys::AT_FDCWD, &dst);
    }
}
