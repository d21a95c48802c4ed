//! Terminals and standard input at restart: the program's terminal settings go to this
//! restart's terminals, typed input saved at checkpoint time is typed again before any
//! new input, and bytes that waited in a stdin pipe or FIFO are read first, ahead of
//! this restart's own standard input, through a forwarder process.
#![deny(unsafe_code)]

use core::fmt::Write;

use mtcp_core::eprint_line;
use mtcp_core::fmt::{ErrnoName, FmtBuf, Lossy};
use mtcp_core::image::{is_stdin_pipe, FdRecord, Meta, TtyState};
use mtcp_core::sys::{self, Fd, KernelSigaction, Termios};
use mtcp_core::tty::{push_back, take_input, TTY_BUF};

const SIG_IGN: usize = 1;
const SIGINT: usize = 2;
const SIGQUIT: usize = 3;
const SIGPIPE: usize = 13;
const O_NONBLOCK: u32 = 0o4000;

/// The bytes that waited in a stdin pipe or FIFO whose writer was outside the process,
/// if the image has any: fd 0's record and the bytes.
fn waiting_stdin<'a>(meta: &Meta<'a>) -> Option<(FdRecord, &'a [u8])> {
    let rec = (0..meta.fd_count()).map(|i| meta.fd(i)).find(is_stdin_pipe)?;
    let same_file = |o: &FdRecord| o.inode == rec.inode && (o.dev_major, o.dev_minor) == (rec.dev_major, rec.dev_minor);
    let writer_inside = (0..meta.fd_count())
        .map(|i| meta.fd(i))
        .any(|o| same_file(&o) && o.flags & 3 != sys::O_RDONLY as u32);
    let data = meta.string(rec.data);
    if writer_inside || (data.is_empty() && rec.pos == 0) {
        return None;
    }
    Some((rec, data))
}

/// When bytes waited in fd 0's pipe or FIFO at checkpoint time: a new pipe for fd 0, fed
/// by a forwarder process that writes those bytes first, then copies this restart's
/// standard input until its end. Returns the pipe's read end (above every descriptor
/// number the program uses), for `restore_stdin`.
///
/// Call after `--same-pid` (the forwarder is a child of the process the program goes on
/// in, and dies with it) and before the map step, while this address space is small:
/// the forwarder is a fork of it.
pub fn start_stdin_forwarder(meta: &Meta) -> Option<Fd> {
    let (rec, data) = waiting_stdin(meta)?;
    if (data.len() as u64) < rec.pos {
        eprint_line!(
            "mtcp_restart: warning: fd 0: only {} of the {} bytes waiting on standard input at checkpoint time were saved; the rest are lost",
            data.len(),
            rec.pos
        );
    }
    if data.is_empty() {
        return None;
    }
    let above = (0..meta.fd_count()).map(|i| meta.fd(i).fd).max().unwrap_or(0).max(2) as usize + 1;
    let parent = sys::getpid();
    let started = sys::pipe().and_then(|(r, w)| {
        let r = sys::dup_at_least(r.raw(), above)?;
        match sys::fork_quiet()? {
            0 => forward(parent, w, data),
            _ => Ok(r),
        }
    });
    match started {
        Ok(r) => Some(r),
        Err(e) => {
            eprint_line!(
                "mtcp_restart: warning: cannot start a process to feed standard input ({}): the {} bytes waiting on it at checkpoint time are lost",
                ErrnoName(e),
                data.len()
            );
            None
        }
    }
}

/// The forwarder: writes `saved` into the pipe `w`, then this restart's standard input
/// (spliced, or copied where it cannot be, from a terminal), then closes the pipe and
/// ends. It dies with the process that made it (the restored program), ignores the
/// terminal's Ctrl-C and Ctrl-\ (the program decides about those), and never blocks
/// the program: a full pipe only makes it wait.
fn forward(parent: u32, w: Fd, saved: &[u8]) -> ! {
    let _ = sys::die_with_parent(sys::SIGKILL);
    if sys::getppid() != parent {
        sys::exit_group(0); // the restart died before the line above
    }
    let ignore = KernelSigaction {
        handler: SIG_IGN,
        ..KernelSigaction::default()
    };
    for sig in [SIGINT, SIGQUIT, SIGPIPE] {
        let _ = sys::rt_sigaction(sig, Some(&ignore), None);
    }
    let _ = sys::rt_sigprocmask(sys::SIG_SETMASK, Some(0));
    // 0: what to forward; 1: the pipe; 2: stderr. Nothing else of mtcp_restart's.
    if sys::dup3(w.raw(), 1, 0).is_err() {
        sys::exit_group(1);
    }
    drop(w);
    let _ = sys::close_from(3);
    if sys::write_all(1, saved).is_err() {
        sys::exit_group(0); // the program closed its end
    }
    loop {
        match sys::splice(0, 1, 1 << 16) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(mtcp_core::Errno::EINVAL) => {
                copy_rest();
                break;
            }
            Err(_) => break,
        }
    }
    sys::exit_group(0)
}

/// Copies fd 0 to fd 1 until the end of input or an error.
fn copy_rest() {
    let mut buf = [0u8; 16384];
    loop {
        let n = match sys::read_into(0, &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if sys::write_all(1, &buf[..n]).is_err() {
            return;
        }
    }
}

/// Puts the forwarder's pipe at fd 0, with the program's blocking mode. Call after
/// `restore_fds`.
pub fn restore_stdin(meta: &Meta, pipe: Option<Fd>, verbose: bool) {
    let (Some(r), Some((rec, data))) = (pipe, waiting_stdin(meta)) else {
        return;
    };
    if let Err(e) = sys::dup3(r.raw(), 0, 0) {
        eprint_line!(
            "mtcp_restart: warning: fd 0 cannot be restored ({}): the {} bytes waiting on standard input at checkpoint time are lost",
            ErrnoName(e),
            data.len()
        );
        return;
    }
    let _ = sys::fcntl(0, sys::F_SETFL, (rec.flags & O_NONBLOCK) as usize);
    if verbose {
        eprint_line!(
            "mtcp_restart: fd 0: the {} byte(s) that waited on standard input come first, then this restart's standard input",
            data.len()
        );
    }
}

/// Gives each of the program's 0, 1 and 2 that was a terminal its settings back, on this
/// restart's descriptor of the same number, and types the saved input again on fd 0,
/// ahead of anything typed there already. Says, in one line, which were terminals and
/// are not any more, and how much typed input could not be carried over. Returns true
/// if any terminal got its settings back (the program is then sent SIGWINCH).
pub fn restore_terminals(meta: &Meta, verbose: bool) -> bool {
    let mut restored = false;
    let mut not_terminals = FmtBuf::<32>::new();
    let mut lost_typed = 0;
    for i in 0..meta.fd_count() {
        let rec = meta.fd(i);
        if rec.fd > 2 {
            continue;
        }
        let Some((state, typed)) = TtyState::of(&rec, meta.string(rec.data)) else {
            continue;
        };
        let fd = rec.fd as i32;
        let t = Termios {
            iflag: state.iflag,
            oflag: state.oflag,
            cflag: state.cflag,
            lflag: state.lflag,
            line: state.line,
            cc: state.cc,
        };
        if sys::tcgets(fd).is_err() {
            let _ = write!(
                not_terminals,
                "{}{}",
                if not_terminals.as_bytes().is_empty() { "" } else { ", " },
                fd
            );
            lost_typed += state.pending;
            continue;
        }
        if fd == 0 {
            retype(&t, &state, typed);
        }
        match sys::tcsets(fd, &t) {
            Ok(()) => restored = true,
            Err(e) => eprint_line!(
                "mtcp_restart: warning: fd {}: cannot restore the terminal settings: {}",
                fd,
                ErrnoName(e)
            ),
        }
        if verbose {
            eprint_line!(
                "mtcp_restart: fd {}: terminal settings restored (it was {}x{})",
                fd,
                state.cols,
                state.rows
            );
        }
    }
    let list = not_terminals.as_bytes();
    if list.len() > 1 {
        eprint_line!(
            "mtcp_restart: warning: fds {} were terminals at checkpoint time and are not now: their terminal settings were not restored",
            Lossy(list)
        );
    } else if !list.is_empty() {
        eprint_line!(
            "mtcp_restart: warning: fd {} was a terminal at checkpoint time and is not one now: its terminal settings were not restored",
            Lossy(list)
        );
    }
    if lost_typed > 0 {
        lost_input(lost_typed, "fd 0 is not a terminal now");
    }
    restored
}

/// Types `typed` (saved at checkpoint time) again on fd 0, a terminal, ahead of input
/// waiting there already.
fn retype(t: &Termios, state: &TtyState, typed: &[u8]) {
    if state.pending as usize > typed.len() {
        lost_input(
            state.pending - typed.len() as u32,
            "the kernel did not permit reading them out (TIOCSTI) at checkpoint time, so they stayed with the old terminal",
        );
    }
    if typed.is_empty() {
        return;
    }
    // More than a terminal holds can only come from a damaged image.
    let typed = &typed[..typed.len().min(TTY_BUF)];
    let mut all = [0u8; 2 * TTY_BUF];
    all[..typed.len()].copy_from_slice(typed);
    let pushed = match take_input(0, t, &mut all[typed.len()..]) {
        Ok(newer) => push_back(0, t, &all[..typed.len() + newer]),
        Err((e, _)) => Err(e),
    };
    if let Err(e) = pushed {
        let mut why = FmtBuf::<64>::new();
        let _ = write!(why, "TIOCSTI: {}", ErrnoName(e));
        lost_input(
            typed.len() as u32,
            core::str::from_utf8(why.as_bytes()).unwrap_or("TIOCSTI"),
        );
    }
}

fn lost_input(bytes: u32, why: &str) {
    eprint_line!(
        "mtcp_restart: warning: {} byte(s) of typed input waiting at checkpoint time could not be carried over: {}",
        bytes,
        why
    );
}
