//! ptrace, used for one thing: delivering the checkpoint signal to a thread without
//! making the system call it sleeps in fail with EINTR, even if it blocks the signal.

use core::fmt::Write;
use syscalls::{Errno, Sysno};

use crate::fmt::FmtBuf;
use mtcp_arch::UserRegs;

const PTRACE_DETACH: usize = 17;
const PTRACE_GETREGS: usize = 12;
const PTRACE_SETREGS: usize = 13;
const PTRACE_SEIZE: usize = 0x4206;
const PTRACE_INTERRUPT: usize = 0x4207;
const PTRACE_GETSIGMASK: usize = 0x420a;
const PTRACE_SETSIGMASK: usize = 0x420b;
/// The event a PTRACE_INTERRUPT stop reports (status >> 16).
const PTRACE_EVENT_STOP: i32 = 128;
/// wait for children of any kind, clone children (exit signal 0) included.
pub const WALL: usize = 0x4000_0000;
/// Yama's "this process may trace me" (PR_SET_PTRACER).
const PR_SET_PTRACER: usize = 0x5961_6d61;

const ERESTARTSYS: isize = 512;
const ERESTARTNOINTR: isize = 513;
const ERESTARTNOHAND: isize = 514;
const ERESTART_RESTARTBLOCK: isize = 516;
const EINTR: isize = 4;

/// # Safety
/// `addr` and `data` must be what `request` expects (valid pointers where it takes them).
unsafe fn ptrace(request: usize, tid: u32, addr: usize, data: usize) -> Result<usize, Errno> {
    // SAFETY: the caller's contract.
    unsafe { syscalls::syscall4(Sysno::ptrace, request, tid as usize, addr, data) }
}

/// PTRACE_SEIZE: becomes `tid`'s tracer without stopping it. EPERM when the thread is
/// traced already, the process is not dumpable or Yama forbids it; ESRCH when it is gone.
pub fn seize(tid: u32) -> Result<(), Errno> {
    // SAFETY: SEIZE with no options reads no memory.
    unsafe { ptrace(PTRACE_SEIZE, tid, 0, 0).map(|_| ()) }
}

/// PTRACE_INTERRUPT: stops a seized thread; its system call, if any, ends as it would
/// for a signal. ESRCH when it is gone or not ours.
pub fn interrupt(tid: u32) -> Result<(), Errno> {
    // SAFETY: INTERRUPT reads no memory.
    unsafe { ptrace(PTRACE_INTERRUPT, tid, 0, 0).map(|_| ()) }
}

/// PTRACE_DETACH, delivering `sig` (0 for none) if the thread is in a signal stop.
pub fn detach(tid: u32, sig: u32) -> Result<(), Errno> {
    // SAFETY: DETACH reads no memory.
    unsafe { ptrace(PTRACE_DETACH, tid, 0, sig as usize).map(|_| ()) }
}

/// The registers of a stopped tracee. ESRCH when it is not stopped or not ours.
pub fn get_regs(tid: u32) -> Result<UserRegs, Errno> {
    let mut regs = UserRegs::default();
    // SAFETY: the kernel writes one user_regs_struct, which UserRegs is.
    unsafe { ptrace(PTRACE_GETREGS, tid, 0, &mut regs as *mut UserRegs as usize)? };
    Ok(regs)
}

/// Sets the registers of a stopped tracee. ESRCH as `get_regs`; EIO for a value the
/// kernel refuses (a bad segment selector).
pub fn set_regs(tid: u32, regs: &UserRegs) -> Result<(), Errno> {
    // SAFETY: the kernel reads one user_regs_struct.
    unsafe { ptrace(PTRACE_SETREGS, tid, 0, regs as *const UserRegs as usize).map(|_| ()) }
}

/// The signal mask of a stopped tracee (what it blocks right now).
pub fn get_sigmask(tid: u32) -> Result<u64, Errno> {
    let mut mask: u64 = 0;
    // SAFETY: the kernel writes 8 bytes (the size passed) into mask.
    unsafe { ptrace(PTRACE_GETSIGMASK, tid, 8, &mut mask as *mut u64 as usize)? };
    Ok(mask)
}

/// Sets the signal mask of a stopped tracee.
pub fn set_sigmask(tid: u32, mask: u64) -> Result<(), Errno> {
    // SAFETY: the kernel reads 8 bytes (the size passed) from mask.
    unsafe { ptrace(PTRACE_SETSIGMASK, tid, 8, &mask as *const u64 as usize).map(|_| ()) }
}

/// Lets process `pid` trace the caller under Yama's ptrace_scope 1. Without Yama the
/// call fails with EINVAL, which is harmless: nothing restricts tracing then.
pub fn allow_tracer(pid: u32) -> Result<(), Errno> {
    // SAFETY: PR_SET_PTRACER takes no pointers.
    unsafe { syscalls::syscall5(Sysno::prctl, PR_SET_PTRACER, pid as usize, 0, 0, 0).map(|_| ()) }
}

/// What became of a thread that `deliver_quietly` was asked to signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The signal is queued for it, and it will take it with its system call (if any)
    /// set to run again. `unblocked`: its mask blocked the signal, and it no longer does.
    Sent { unblocked: bool },
    /// One of the program's own signals is about to reach it: it was left alone, so
    /// that signal interrupts its system call as it should. Ask again later.
    Busy,
    /// It exited meanwhile.
    Gone,
}

/// Queues `sig` for thread `tid` of process `pid` so that the sleep it is in, if any,
/// does not end with EINTR because of it: the thread is stopped with ptrace, its
/// interrupted system call is rewound to run again (as the kernel itself does for
/// SA_RESTART handlers, but for every call that did nothing: see
/// `UserRegs::repeatable_after_eintr` for the calls that return EINTR and qualify), and the signal is queued by `send` while it is
/// stopped, unblocked first if its mask blocks it (`send` is told so: the handler must
/// block it again in the mask it restores). The handler then runs where the call
/// began, and the call runs again when it returns. A relative timeout starts over.
///
/// Errors: those of `seize` (EPERM: tracing not allowed; ESRCH: no such thread), of
/// the other ptrace requests, and of `send`. The thread is always left detached.
pub fn deliver_quietly(
    pid: u32,
    tid: u32,
    sig: u32,
    send: &mut dyn FnMut(bool) -> Result<(), Errno>,
) -> Result<Delivery, Errno> {
    seize(tid)?;
    let result = stopped_delivery(pid, tid, sig, send);
    // Every path of stopped_delivery that returns Ok has detached already.
    if result.is_err() {
        let _ = detach(tid, 0);
    }
    result
}

fn stopped_delivery(
    pid: u32,
    tid: u32,
    sig: u32,
    send: &mut dyn FnMut(bool) -> Result<(), Errno>,
) -> Result<Delivery, Errno> {
    interrupt(tid)?;
    loop {
        let mut status: i32 = 0;
        // SAFETY: status is a valid int to write.
        let r = unsafe { syscalls::syscall4(Sysno::wait4, tid as usize, &mut status as *mut i32 as usize, WALL, 0) };
        match r {
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => return Ok(Delivery::Gone),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        let stopped = status & 0xff == 0x7f;
        if !stopped {
            return Ok(Delivery::Gone); // exited or killed
        }
        if status >> 16 == PTRACE_EVENT_STOP {
            break;
        }
        // A signal-delivery stop: a signal is being delivered. One of the program's
        // goes through untouched; ours (an earlier request) is let in with the call
        // rewound, which is the delivery asked for.
        let delivered = ((status >> 8) & 0xff) as u32;
        if delivered != sig {
            detach(tid, delivered)?;
            return Ok(Delivery::Busy);
        }
        rewind_if_interrupted(tid, &get_regs(tid)?)?;
        detach(tid, sig)?;
        return Ok(Delivery::Sent { unblocked: false });
    }
    let regs = get_regs(tid)?;
    let blocked = get_sigmask(tid)?;
    let ours = 1u64 << (sig - 1);
    let pending = pending_signals(pid, tid);
    if pending & !blocked & !ours != 0 {
        // The program's own signal is due: its handler must see the call interrupted.
        detach(tid, 0)?;
        return Ok(Delivery::Busy);
    }
    rewind_if_interrupted(tid, &regs)?;
    let unblocked = blocked & ours != 0;
    if unblocked {
        set_sigmask(tid, blocked & !ours)?;
    }
    if let Err(e) = send(unblocked) {
        // Put the thread back exactly as it was: its call then restarts (or fails with
        // EINTR) as the kernel decides.
        let _ = set_regs(tid, &regs);
        let _ = set_sigmask(tid, blocked);
        return Err(e);
    }
    detach(tid, 0)?;
    Ok(Delivery::Sent { unblocked })
}

/// Sets a stopped thread to run its system call again if the stop cut it short: an
/// ERESTART* code (the kernel would restart it itself, but not once a handler has run)
/// or EINTR from a call that did nothing.
fn rewind_if_interrupted(tid: u32, regs: &UserRegs) -> Result<(), Errno> {
    if let Some((_, ret)) = regs.syscall() {
        let rerun = matches!(
            -ret,
            ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND | ERESTART_RESTARTBLOCK
        ) || (-ret == EINTR && regs.repeatable_after_eintr());
        if rerun {
            let mut rewound = *regs;
            rewound.rewind_syscall();
            set_regs(tid, &rewound)?;
        }
    }
    Ok(())
}

/// A signal mask line (`SigPnd:`, `ShdPnd:`, `SigBlk:` ...) of /proc/PID/task/TID/status.
pub fn task_mask(pid: u32, tid: u32, key: &[u8]) -> Option<u64> {
    let mut buf = [0u8; 2048];
    let status = task_status(pid, tid, &mut buf)?;
    mask_line(status, key)
}

/// The signals pending for thread `tid` or for its whole process (SigPnd | ShdPnd),
/// from one read of its status file.
fn pending_signals(pid: u32, tid: u32) -> u64 {
    let mut buf = [0u8; 2048];
    let Some(status) = task_status(pid, tid, &mut buf) else {
        return 0;
    };
    mask_line(status, b"SigPnd:").unwrap_or(0) | mask_line(status, b"ShdPnd:").unwrap_or(0)
}

fn task_status(pid: u32, tid: u32, buf: &mut [u8; 2048]) -> Option<&[u8]> {
    let mut path = FmtBuf::<64>::new();
    let _ = write!(path, "/proc/{}/task/{}/status", pid, tid);
    let n = super::read_file(path.as_bytes(), buf).ok()?;
    Some(&buf[..n])
}

/// The hexadecimal mask after `key` in a status file's text.
fn mask_line(status: &[u8], key: &[u8]) -> Option<u64> {
    let line = status.split(|&c| c == b'\n').find_map(|l| l.strip_prefix(key))?;
    let mut mask: u64 = 0;
    for &c in line.trim_ascii() {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        mask = (mask << 4) | d as u64;
    }
    Some(mask)
}
