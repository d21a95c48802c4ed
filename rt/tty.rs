//! Terminals and standard input at checkpoint time: each terminal's settings and window
//! size, the input typed but not yet read on fd 0, and the bytes waiting in a stdin pipe
//! or FIFO, all read without taking anything away from the running process.

use syscalls::Errno;

use mtcp_core::arena::ArenaVec;
use mtcp_core::image::{as_bytes, FdRecord, TtyState, TTY_STATE_MAGIC, TTY_WINSIZE};
use mtcp_core::sys;
use mtcp_core::tty::{push_back, take_input, TTY_BUF};

/// Appends the TtyState of terminal `fd` (and, for fd 0, the input waiting in it) to
/// `out`; returns where it lies in `out`, or None if `fd` is not a terminal.
pub fn capture_terminal(fd: u32, out: &mut ArenaVec<'_, u8>) -> Result<Option<(usize, usize)>, Errno> {
    let fd = fd as i32;
    let Ok(t) = sys::tcgets(fd) else {
        return Ok(None);
    };
    let mut state = TtyState {
        magic: TTY_STATE_MAGIC,
        iflag: t.iflag,
        oflag: t.oflag,
        cflag: t.cflag,
        lflag: t.lflag,
        line: t.line,
        cc: t.cc,
        ..TtyState::default()
    };
    if let Ok(w) = sys::window_size(fd) {
        state.flags |= TTY_WINSIZE;
        (state.rows, state.cols, state.xpixel, state.ypixel) = (w.rows, w.cols, w.xpixel, w.ypixel);
    }
    let mut typed = [0u8; TTY_BUF];
    // Input of a terminal whose foreground is another process group is not ours.
    if fd == 0 && !sys::foreground_group(fd).is_ok_and(|g| g != sys::getpgrp()) {
        match take_input(fd, &t, &mut typed) {
            Ok(n) => {
                // The running process must still read it.
                let _ = push_back(fd, &t, &typed[..n]);
                (state.pending, state.saved) = (n as u32, n as u32);
            }
            // TIOCSTI is not permitted: the input stays where it is, and is only counted.
            Err((_, waiting)) => state.pending = waiting as u32,
        }
        let _ = sys::tcsets(fd, &t);
    }
    let start = out.len();
    for &c in as_bytes(&state).iter().chain(&typed[..state.saved as usize]) {
        out.push(c)?;
    }
    Ok(Some((start, out.len())))
}

/// Records the bytes waiting in fd 0 when it is a pipe or FIFO whose write end the
/// process does not hold (so they would be lost with the pipe): `pos` says how many
/// waited, `data` holds them. They are copied with tee, never consumed, so the running
/// process still reads them.
pub fn capture_stdin_pipe(
    records: &mut [FdRecord],
    data_ranges: &mut [(usize, usize)],
    out: &mut ArenaVec<'_, u8>,
) -> Result<(), Errno> {
    let Some(i) = records.iter().position(|r| r.fd == 0) else {
        return Ok(());
    };
    let stdin = records[i];
    let is_fifo = stdin.mode & 0o170000 == 0o010000;
    let writes = |r: &FdRecord| r.flags & 3 != sys::O_RDONLY as u32;
    let writer_inside = records.iter().any(|r| {
        r.inode == stdin.inode && (r.dev_major, r.dev_minor) == (stdin.dev_major, stdin.dev_minor) && writes(r)
    });
    if !is_fifo || writer_inside {
        return Ok(());
    }
    let waiting = sys::bytes_readable(0)?;
    records[i].pos = waiting as u64;
    if waiting == 0 {
        return Ok(());
    }
    // A scratch pipe as large as stdin's takes every buffer tee links into it at once
    // (tee always starts at the head of its input, so there is no second try).
    let (r, w) = sys::pipe()?;
    if let Ok(size) = sys::pipe_capacity(0) {
        let _ = sys::set_pipe_capacity(w.raw(), size);
    }
    let copied = sys::tee(0, w.raw(), waiting, sys::SPLICE_F_NONBLOCK).unwrap_or(0);
    let start = out.len();
    let mut chunk = [0u8; 4096];
    let mut left = copied;
    while left > 0 {
        // SAFETY: chunk is valid for writes of its length.
        let n = unsafe { sys::read(r.raw(), chunk.as_mut_ptr(), chunk.len().min(left))? };
        if n == 0 {
            break;
        }
        for &c in &chunk[..n] {
            out.push(c)?;
        }
        left -= n;
    }
    data_ranges[i] = (start, out.len());
    Ok(())
}
