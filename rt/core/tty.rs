//! Typed input taken out of a terminal's input queue and put back (TIOCSTI), for the
//! runtime at checkpoint time and for mtcp_restart.
//!
//! The kernel shows a terminal's input only to a read, so the input is read out and
//! pushed back as if typed again. Both are done under settings that neither echo nor
//! interpret it (`quiet_settings`); the caller puts its own settings back.

use syscalls::Errno;

use crate::sys::{self, Termios};

/// The n_tty line discipline never holds more than this.
pub const TTY_BUF: usize = 4096;

/// `t` for moving typed input around untouched: no echo, no signal characters, no
/// translation, no editing characters; canonical or not as `t` is, so that lines pushed
/// back stay lines.
pub fn quiet_settings(t: &Termios) -> Termios {
    let mut q = *t;
    q.lflag &= !(sys::ECHO | sys::ECHONL | sys::ISIG | sys::IEXTEN);
    q.iflag &= !(sys::ISTRIP | sys::INLCR | sys::IGNCR | sys::ICRNL | sys::IUCLC | sys::IXON);
    for i in [sys::VERASE, sys::VKILL, sys::VEOL, sys::VEOL2] {
        q.cc[i] = 0; // disabled
    }
    q
}

/// Reads the input waiting on terminal `fd` (whose settings are `t`) into `buf`, a line
/// still being typed included; returns how many bytes. Nothing is taken unless TIOCSTI
/// works (a byte pushed first proves it; it comes back last and is dropped), so that
/// the caller can push the bytes back: otherwise `Err((errno, bytes waiting))`. The
/// terminal is left under non-canonical quiet settings: the caller puts `t` back.
pub fn take_input(fd: i32, t: &Termios, buf: &mut [u8]) -> Result<usize, (Errno, usize)> {
    // Non-canonical, so that the whole queue is readable and reads never wait.
    let mut raw = quiet_settings(t);
    raw.lflag &= !sys::ICANON;
    raw.cc[sys::VMIN] = 0;
    raw.cc[sys::VTIME] = 0;
    sys::tcsets(fd, &raw).map_err(|e| (e, 0))?;
    let waiting = sys::bytes_readable(fd).unwrap_or(0).min(TTY_BUF - 1);
    if waiting == 0 {
        return Ok(0);
    }
    sys::push_input(fd, 0).map_err(|e| (e, waiting))?;
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: buf[got..] is valid for writes of the remaining length.
        match unsafe { sys::read(fd, buf.as_mut_ptr().add(got), buf.len() - got) } {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    if got == waiting + 1 {
        got -= 1; // the probe (a full queue would have dropped it)
    }
    Ok(got)
}

/// Puts `bytes` into terminal `fd`'s input queue as if typed under settings `t`, none of
/// them echoed or taken as a signal or editing character; leaves `quiet_settings(t)` in
/// force. A NUL in canonical input stood for end-of-file there (the line discipline
/// keeps it so), and goes back as the end-of-file character. Fails as TIOCSTI does
/// (EPERM, EIO), at the first byte.
pub fn push_back(fd: i32, t: &Termios, bytes: &[u8]) -> Result<(), Errno> {
    sys::tcsets(fd, &quiet_settings(t))?;
    let canonical = t.lflag & sys::ICANON != 0;
    for &c in bytes {
        let c = if c == 0 && canonical && t.cc[sys::VEOF] != 0 {
            t.cc[sys::VEOF]
        } else {
            c
        };
        sys::push_input(fd, c)?;
    }
    Ok(())
}
