//! The status file through which `mtcp checkpoint PID` learns that a checkpoint ended:
//! `/tmp/.mtcp-<uid>/<pid>.status`, one line `<seq> <nonce> ok <image path>` or
//! `<seq> <nonce> error <message>`, replaced atomically after every checkpoint.

use core::fmt::Write;

use crate::fmt::{FmtBuf, Lossy};
use crate::sys::{self, CPath};

/// Writes the status line; failures are ignored (the image, not the status, is what
/// matters, and the tool reports a time-out).
pub fn publish(seq: u64, nonce: u32, ok: bool, text: &[u8]) {
    let uid = sys::getuid();
    let pid = sys::getpid();
    let mut dir = FmtBuf::<64>::new();
    let _ = write!(dir, "/tmp/.mtcp-{}", uid);
    if let Ok(p) = CPath::new(dir.as_bytes()) {
        let _ = sys::mkdirat(sys::AT_FDCWD, &p, 0o700);
    }
    let mut tmp = FmtBuf::<96>::new();
    let _ = write!(tmp, "{}/.{}.status.tmp", Lossy(dir.as_bytes()), pid);
    let mut dst = FmtBuf::<96>::new();
    let _ = write!(dst, "{}/{}.status", Lossy(dir.as_bytes()), pid);
    let mut line = FmtBuf::<4400>::new();
    let _ = write!(line, "{} {} {} {}\n", seq, nonce, if ok { "ok" } else { "error" }, Lossy(text));
    let (tmp, dst) = match (CPath::new(tmp.as_bytes()), CPath::new(dst.as_bytes())) {
        (Ok(t), Ok(d)) => (t, d),
        _ => return,
    };
    let fd = match sys::openat(sys::AT_FDCWD, &tmp, sys::O_WRONLY | sys::O_CREAT | sys::O_TRUNC | sys::O_CLOEXEC, 0o600) {
        Ok(fd) => fd,
        Err(_) => return,
    };
    let written = sys::write_all(fd, line.as_bytes());
    sys::close(fd);
    if written.is_ok() {
        let _ = sys::renameat(sys::AT_FDCWD, &tmp, sys::AT_FDCWD, &dst);
    }
}
