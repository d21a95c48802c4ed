//! libc entry points that the runtime replaces so that no program can block, wait for,
//! steal or replace the checkpoint signal: sigprocmask, pthread_sigmask, sigaction,
//! signal, sigwait, sigwaitinfo, sigtimedwait, sigsuspend and signalfd.
//!
//! In a preloaded libmtcp.so these exported definitions come first in symbol lookup; in
//! a static program libmtcp.a's strong definitions win over libc.a's weak ones. Each
//! one does what libc would do, by raw syscalls, except that the checkpoint signal is
//! left out of every mask and wait set, and a handler for it is kept aside and reported
//! back instead of installed. Waits that a checkpoint interrupts are resumed, so the
//! program never sees an EINTR caused by a checkpoint in these calls.

use core::sync::atomic::{AtomicU32, Ordering};
use syscalls::{Errno, Sysno};

use core::mem::{offset_of, size_of};

use mtcp_core::global::Global;
use mtcp_core::sys;

use crate::config::CONFIG;

/// glibc keeps these two for itself (SIGCANCEL, SIGSETXID): never blocked, never waited.
const LIBC_INTERNAL: u64 = (1 << 31) | (1 << 32);

/// How many times the checkpoint handler ran, per thread (tid modulo the table size),
/// and how many restarts happened: a wait that returns EINTR while one of these moved
/// was interrupted by us, not by the program's own signal.
static HANDLER_RUNS: [AtomicU32; 1024] = [const { AtomicU32::new(0) }; 1024];
pub static RESTARTS: AtomicU32 = AtomicU32::new(0);

pub fn note_handler_run(tid: u32) {
    HANDLER_RUNS[tid as usize % HANDLER_RUNS.len()].fetch_add(1, Ordering::AcqRel);
}

fn interruption_mark() -> (u32, u32) {
    let tid = sys::gettid();
    (
        HANDLER_RUNS[tid as usize % HANDLER_RUNS.len()].load(Ordering::Acquire),
        RESTARTS.load(Ordering::Acquire),
    )
}

fn ckpt_bit() -> u64 {
    // SAFETY: the configuration is fixed once the runtime has started.
    let sig = unsafe { (*CONFIG.get()).signal };
    1u64 << (sig - 1)
}

fn ckpt_signal() -> i32 {
    // SAFETY: as in ckpt_bit.
    unsafe { (*CONFIG.get()).signal as i32 }
}

/// The program's mask with the signals it may not block taken out.
fn filtered(mask: u64) -> u64 {
    mask & !ckpt_bit() & !LIBC_INTERNAL
}

/// libc's error convention: -1 with errno set (when the program has a libc).
fn fail(e: Errno) -> i32 {
    if let Some(errno_location) = mtcp_core::arch::libc_errno_location() {
        // SAFETY: glibc's __errno_location is async-signal-safe and returns this
        // thread's errno.
        unsafe { *errno_location() = e.into_raw() };
    }
    -1
}

/// glibc's `struct sigaction` (bits/sigaction.h): handler, sigset_t (128 bytes), int
/// flags, restorer. Only its offsets are used: programs pass it as bytes.
#[repr(C)]
struct LibcSigaction {
    handler: usize,
    mask: [u32; 32],
    flags: i32,
    restorer: usize,
}

/// Offsets into the program's `struct sigaction`.
mod usa {
    use super::*;
    pub const HANDLER: usize = offset_of!(LibcSigaction, handler);
    pub const MASK: usize = offset_of!(LibcSigaction, mask);
    pub const FLAGS: usize = offset_of!(LibcSigaction, flags);
    pub const RESTORER: usize = offset_of!(LibcSigaction, restorer);
    pub const SIZE: usize = size_of::<LibcSigaction>();
}
#[cfg(target_pointer_width = "64")]
static_assertions::const_assert!(usa::MASK == 8 && usa::FLAGS == 136 && usa::RESTORER == 144 && usa::SIZE == 152);
#[cfg(target_pointer_width = "32")]
static_assertions::const_assert!(usa::MASK == 4 && usa::FLAGS == 132 && usa::RESTORER == 136 && usa::SIZE == 140);

/// The program's `struct timespec`: two C longs.
type Timespec = [isize; 2];

/// The program's timespec at `p` in nanoseconds.
///
/// # Safety
/// `p` must point to a valid struct timespec.
unsafe fn read_timespec_ns(p: usize) -> u64 {
    // SAFETY: the caller's contract.
    let ts = unsafe { core::ptr::read_unaligned(p as *const Timespec) };
    (ts[0].max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts[1].max(0) as u64)
}

/// Writes `ns` as the program's timespec into `out` and returns its address. Seconds
/// beyond what a C long holds are clamped.
fn timespec_from_ns(ns: u64, out: &mut Timespec) -> usize {
    out[0] = (ns / 1_000_000_000).min(isize::MAX as u64) as isize;
    out[1] = (ns % 1_000_000_000) as isize;
    out.as_ptr() as usize
}

/// rt_sigtimedwait with the program's `struct timespec`: x86_64's only one, and on i386
/// the old call with 32-bit fields (glibc's default there).
///
/// # Safety
/// `set` must point to a signal set, `info` be null or writable siginfo, `timeout`
/// null or a valid timespec.
unsafe fn sigtimedwait_raw(set: &u64, info: usize, timeout: usize) -> Result<usize, Errno> {
    // SAFETY: the caller's contract covers every pointer.
    unsafe { syscalls::syscall4(Sysno::rt_sigtimedwait, set as *const u64 as usize, info, timeout, 8) }
}

/// sigprocmask and pthread_sigmask: the signals the program may not block are left out.
///
/// # Safety
/// `set` and `old` are null or valid sigset_t pointers (the caller's libc contract).
unsafe fn sigmask_common(how: i32, set: *const u64, old: *mut u64) -> Result<(), Errno> {
    let mut kernel_old: u64 = 0;
    let new = if set.is_null() {
        None
    } else {
        // SAFETY: not null, so a readable sigset_t (our contract); its first 64 bits are
        // the kernel's whole mask.
        let requested = unsafe { core::ptr::read_unaligned(set) };
        match how as usize {
            sys::SIG_BLOCK | sys::SIG_SETMASK => Some(filtered(requested)),
            sys::SIG_UNBLOCK => Some(requested),
            _ => return Err(Errno::EINVAL),
        }
    };
    let new_ptr = new.as_ref().map_or(0, |m| m as *const u64 as usize);
    // SAFETY: new_ptr is null or points at `new`, and the old mask goes to `kernel_old`:
    // locals that outlive the call, 8 bytes each as the kernel is told.
    unsafe {
        syscalls::syscall4(
            Sysno::rt_sigprocmask,
            how as usize,
            new_ptr,
            &mut kernel_old as *mut u64 as usize,
            8,
        )
    }?;
    if !old.is_null() {
        // SAFETY: not null, so a writable sigset_t (our contract).
        unsafe { core::ptr::write_unaligned(old, kernel_old) };
    }
    Ok(())
}

/// # Safety
/// Called by the program with libc's contract: `set`/`old` null or valid sigset_t.
#[no_mangle]
pub unsafe extern "C" fn sigprocmask(how: i32, set: *const u64, old: *mut u64) -> i32 {
    // SAFETY: our caller's contract is sigmask_common's.
    match unsafe { sigmask_common(how, set, old) } {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// # Safety
/// As sigprocmask; returns the error number instead of setting errno.
#[no_mangle]
pub unsafe extern "C" fn pthread_sigmask(how: i32, set: *const u64, old: *mut u64) -> i32 {
    // SAFETY: our caller's contract is sigmask_common's.
    match unsafe { sigmask_common(how, set, old) } {
        Ok(()) => 0,
        Err(e) => e.into_raw(),
    }
}

/// The program's own disposition for the checkpoint signal, never installed.
static VIRTUAL_ACTION: Global<[u8; usa::SIZE]> = Global::new([0; usa::SIZE]);

/// # Safety
/// `act`/`oact` null or valid `struct sigaction` as libc defines it.
#[no_mangle]
pub unsafe extern "C" fn sigaction(sig: i32, act: *const u8, oact: *mut u8) -> i32 {
    if sig <= 0 || sig > 64 || sig == 32 || sig == 33 {
        return fail(Errno::EINVAL);
    }
    if sig == ckpt_signal() {
        // SAFETY: only this function uses VIRTUAL_ACTION. Nothing orders two threads
        // that set the checkpoint signal's disposition at the same moment (the kernel
        // would, for a real one): their copies could interleave, in bytes that are only
        // ever handed back, never installed.
        let saved = unsafe { &mut *VIRTUAL_ACTION.get() };
        if !oact.is_null() {
            // SAFETY: not null, so a writable struct sigaction of usa::SIZE bytes (our
            // contract), which cannot overlap the runtime's private static.
            unsafe { core::ptr::copy_nonoverlapping(saved.as_ptr(), oact, usa::SIZE) };
        }
        if !act.is_null() {
            // SAFETY: not null, so a readable struct sigaction of usa::SIZE bytes (our
            // contract), which cannot overlap the runtime's private static.
            unsafe { core::ptr::copy_nonoverlapping(act, saved.as_mut_ptr(), usa::SIZE) };
        }
        return 0;
    }
    if (sig == sys::SIGKILL as i32 || sig == sys::SIGSTOP as i32) && !act.is_null() {
        return fail(Errno::EINVAL);
    }
    let new = if act.is_null() {
        None
    } else {
        // SAFETY: not null, so a readable struct sigaction (our contract); every field
        // read lies inside it (offsets checked above), read unaligned.
        unsafe {
            let rd = |off: usize| core::ptr::read_unaligned(act.add(off) as *const usize);
            let flags = core::ptr::read_unaligned(act.add(usa::FLAGS) as *const i32) as u32 as usize;
            Some(sys::KernelSigaction {
                handler: rd(usa::HANDLER),
                // Like libc: every handler returns through a restorer that undoes the frame
                // the kernel builds for it (an old one, without SA_SIGINFO, on i386).
                flags: flags | sys::SA_RESTORER,
                restorer: mtcp_core::arch::signal_restorer(flags),
                mask: core::ptr::read_unaligned(act.add(usa::MASK) as *const u64),
            })
        }
    };
    let mut old = sys::KernelSigaction::default();
    if let Err(e) = sys::rt_sigaction(sig as usize, new.as_ref(), Some(&mut old)) {
        return fail(e);
    }
    if !oact.is_null() {
        // SAFETY: not null, so a writable struct sigaction of usa::SIZE bytes (our
        // contract); every field written lies inside it (offsets checked above).
        unsafe {
            core::ptr::write_bytes(oact, 0, usa::SIZE);
            core::ptr::write_unaligned(oact.add(usa::HANDLER) as *mut usize, old.handler);
            core::ptr::write_unaligned(oact.add(usa::MASK) as *mut u64, old.mask);
            core::ptr::write_unaligned(oact.add(usa::FLAGS) as *mut i32, old.flags as i32);
            core::ptr::write_unaligned(oact.add(usa::RESTORER) as *mut usize, old.restorer);
        }
    }
    0
}

/// BSD semantics, as glibc's signal(): restart syscalls, block the signal in its handler.
///
/// # Safety
/// `handler` is SIG_DFL, SIG_IGN or a function of the program.
#[no_mangle]
pub unsafe extern "C" fn signal(sig: i32, handler: usize) -> usize {
    const SIG_ERR: usize = usize::MAX;
    if sig <= 0 || sig > 64 {
        fail(Errno::EINVAL);
        return SIG_ERR;
    }
    let mut act = [0u8; usa::SIZE];
    let mut old = [0u8; usa::SIZE];
    // SAFETY: act is a local struct sigaction's worth of bytes; every field written lies
    // inside it (offsets checked above).
    unsafe {
        core::ptr::write_unaligned(act.as_mut_ptr().add(usa::HANDLER) as *mut usize, handler);
        core::ptr::write_unaligned(act.as_mut_ptr().add(usa::MASK) as *mut u64, 1u64 << (sig - 1));
        core::ptr::write_unaligned(act.as_mut_ptr().add(usa::FLAGS) as *mut i32, sys::SA_RESTART as i32);
    }
    // SAFETY: act and old are whole local struct sigactions, readable and writable.
    if unsafe { sigaction(sig, act.as_ptr(), old.as_mut_ptr()) } < 0 {
        return SIG_ERR;
    }
    // SAFETY: old is local, and the handler field lies inside it.
    unsafe { core::ptr::read_unaligned(old.as_ptr().add(usa::HANDLER) as *const usize) }
}

/// rt_sigtimedwait on the program's set without the checkpoint signal, resumed when a
/// checkpoint (not the program) caused the EINTR. Returns the signal number.
///
/// # Safety
/// `set` points to a sigset_t; `info` and `timeout` are null or valid (libc contract).
unsafe fn timed_wait(set: *const u64, info: usize, timeout: usize) -> Result<usize, Errno> {
    // SAFETY: `set` is a readable sigset_t (our contract).
    let want = filtered(unsafe { core::ptr::read_unaligned(set) });
    let deadline = if timeout != 0 {
        // SAFETY: a non-null `timeout` is a valid timespec (our contract).
        Some(sys::monotonic_ns().saturating_add(unsafe { read_timespec_ns(timeout) }))
    } else {
        None
    };
    let mut ts: Timespec = Default::default();
    let mut tptr = timeout;
    loop {
        let mark = interruption_mark();
        // SAFETY: `want` outlives the call; `info` is null or a writable siginfo_t (our
        // contract); tptr is null, the caller's valid timespec, or `ts`, which outlives
        // the loop.
        match unsafe { sigtimedwait_raw(&want, info, tptr) } {
            Err(Errno::EINTR) if mark != interruption_mark() => {
                if let Some(d) = deadline {
                    let now = sys::monotonic_ns();
                    tptr = timespec_from_ns(d.saturating_sub(now), &mut ts);
                }
                continue;
            }
            r => return r,
        }
    }
}

/// # Safety
/// libc's contract: valid set and out-pointer.
#[no_mangle]
pub unsafe extern "C" fn sigwait(set: *const u64, sig: *mut i32) -> i32 {
    loop {
        // SAFETY: the program's set (libc's contract); no siginfo, no timeout.
        match unsafe { timed_wait(set, 0, 0) } {
            Ok(s) => {
                if !sig.is_null() {
                    // SAFETY: not null, so a writable int (libc's contract).
                    unsafe { *sig = s as i32 };
                }
                return 0;
            }
            // POSIX sigwait never fails with EINTR.
            Err(Errno::EINTR) => continue,
            Err(e) => return e.into_raw(),
        }
    }
}

/// # Safety
/// libc's contract: valid set; info null or writable siginfo_t.
#[no_mangle]
pub unsafe extern "C" fn sigwaitinfo(set: *const u64, info: *mut u8) -> i32 {
    // SAFETY: the program's set and info (libc's contract); no timeout.
    match unsafe { timed_wait(set, info as usize, 0) } {
        Ok(s) => s as i32,
        Err(e) => fail(e),
    }
}

/// # Safety
/// libc's contract: valid set; info null or writable; timeout null or valid timespec.
#[no_mangle]
pub unsafe extern "C" fn sigtimedwait(set: *const u64, info: *mut u8, timeout: *const u8) -> i32 {
    // SAFETY: our caller's contract is timed_wait's.
    match unsafe { timed_wait(set, info as usize, timeout as usize) } {
        Ok(s) => s as i32,
        Err(e) => fail(e),
    }
}

/// # Safety
/// libc's contract: valid mask.
#[no_mangle]
pub unsafe extern "C" fn sigsuspend(mask: *const u64) -> i32 {
    // SAFETY: `mask` is a readable sigset_t (libc's contract).
    let m = filtered(unsafe { core::ptr::read_unaligned(mask) });
    loop {
        let mark = interruption_mark();
        // SAFETY: the kernel reads 8 bytes at `m`, a local that outlives the call.
        let r = unsafe { syscalls::syscall2(Sysno::rt_sigsuspend, &m as *const u64 as usize, 8) };
        match r {
            Err(Errno::EINTR) if mark != interruption_mark() => continue,
            Err(e) => return fail(e),
            Ok(_) => return 0,
        }
    }
}

/// # Safety
/// libc's contract: valid mask.
#[no_mangle]
pub unsafe extern "C" fn signalfd(fd: i32, mask: *const u64, flags: i32) -> i32 {
    // SAFETY: `mask` is a readable sigset_t (libc's contract).
    let m = filtered(unsafe { core::ptr::read_unaligned(mask) });
    // SAFETY: the kernel reads 8 bytes at `m`, a local that outlives the call.
    match unsafe {
        syscalls::syscall4(
            Sysno::signalfd4,
            fd as isize as usize,
            &m as *const u64 as usize,
            8,
            flags as usize,
        )
    } {
        Ok(v) => v as i32,
        Err(e) => fail(e),
    }
}

/// 32-bit glibc's entry for programs built with 64-bit time (`_TIME_BITS=64`): the
/// timeout is a `struct __timespec64` (i64 seconds, i32 nanoseconds, padding).
///
/// # Safety
/// libc's contract: valid set; info null or writable; timeout null or valid.
#[cfg(target_pointer_width = "32")]
#[no_mangle]
pub unsafe extern "C" fn __sigtimedwait64(set: *const u64, info: *mut u8, timeout: *const u8) -> i32 {
    let mut ts: Timespec = Default::default();
    let tptr = if timeout.is_null() {
        0
    } else {
        // SAFETY: not null, so a readable struct __timespec64 (libc's contract): i64
        // seconds at 0, i32 nanoseconds at 8.
        let (sec, nsec) = unsafe {
            (
                core::ptr::read_unaligned(timeout as *const i64),
                core::ptr::read_unaligned(timeout.add(8) as *const i32),
            )
        };
        if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
            return fail(Errno::EINVAL);
        }
        // A relative timeout: the program's 32-bit form holds any realistic one.
        timespec_from_ns(
            (sec as u64).saturating_mul(1_000_000_000).saturating_add(nsec as u64),
            &mut ts,
        )
    };
    // SAFETY: the program's set and info (libc's contract); tptr is null or `ts`, which
    // outlives the call.
    match unsafe { timed_wait(set, info as usize, tptr) } {
        Ok(s) => s as i32,
        Err(e) => fail(e),
    }
}
