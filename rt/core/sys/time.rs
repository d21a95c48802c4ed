//! Clocks, timers and timed futex waits. Our own timespecs are always the 64-bit
//! `struct __kernel_timespec`; the arch layer names the syscalls that take it.
//!
//! Error policy as in `sys`.

use core::mem::{offset_of, size_of};
use core::sync::atomic::AtomicU32;
use static_assertions::const_assert_eq;
use syscalls::{Errno, Sysno};

use mtcp_arch::{SYS_CLOCK_GETTIME64, SYS_FUTEX_TIME64, SYS_TIMER_GETTIME64, SYS_TIMER_SETTIME64};

use super::FUTEX_WAIT;

/// `struct __kernel_timespec`: 64-bit seconds and nanoseconds on every architecture.
type Timespec64 = [i64; 2];
const_assert_eq!(size_of::<Timespec64>(), 16);

pub const CLOCK_REALTIME: usize = 0;
pub const CLOCK_MONOTONIC: usize = 1;

fn clock(clock: usize) -> Timespec64 {
    let mut ts: Timespec64 = [0; 2];
    // SAFETY: the call writes one struct __kernel_timespec into ts. A clock that cannot
    // be read leaves zeros.
    unsafe {
        let _ = syscalls::syscall2(SYS_CLOCK_GETTIME64, clock, ts.as_mut_ptr() as usize);
    }
    ts
}

/// CLOCK_REALTIME as (seconds, nanoseconds); (0, 0) if the clock cannot be read.
pub fn realtime() -> (u64, u32) {
    let [s, ns] = clock(CLOCK_REALTIME);
    (s as u64, ns as u32)
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let [s, ns] = clock(CLOCK_MONOTONIC);
    s as u64 * 1_000_000_000 + ns as u64
}

/// The kernel's `struct sigevent`: the sigval union is pointer-sized, then the signal,
/// the notification and a union whose first member is the SIGEV_THREAD_ID target; the
/// whole struct is 64 bytes on every architecture.
#[repr(C)]
pub(super) struct SigEvent {
    pub value: usize,
    pub signo: i32,
    pub notify: i32,
    pub tid: i32,
    pub pad: [i32; SIGEVENT_PAD],
}
pub(super) const SIGEVENT_PAD: usize = (64 - 12 - size_of::<usize>()) / 4;
const_assert_eq!(size_of::<SigEvent>(), 64);
const_assert_eq!(offset_of!(SigEvent, signo), size_of::<usize>());
const_assert_eq!(offset_of!(SigEvent, tid), size_of::<usize>() + 8);

pub const SIGEV_SIGNAL: u32 = 0;
pub const SIGEV_NONE: u32 = 1;
pub const SIGEV_THREAD_ID: u32 = 4;

/// How a POSIX timer tells of its expiry: `notify` is the kernel's sigev_notify
/// (SIGEV_*), `tid` the thread for SIGEV_THREAD_ID.
#[derive(Clone, Copy, Debug)]
pub struct TimerEvent {
    pub value: usize,
    pub signo: u32,
    pub notify: u32,
    pub tid: u32,
}

/// `struct __kernel_itimerspec`: interval, then value, each a 64-bit timespec.
type Itimerspec64 = [i64; 4];

fn ns_timespec(ns: u64) -> [i64; 2] {
    [
        (ns / 1_000_000_000).min(i64::MAX as u64) as i64,
        (ns % 1_000_000_000) as i64,
    ]
}

fn timespec_ns(sec: i64, nsec: i64) -> u64 {
    (sec.max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(nsec.max(0) as u64)
}

/// timer_create on `clock`. `id` receives the new timer's id; while
/// PR_TIMER_CREATE_RESTORE_IDS is on, the kernel first reads from it the id wanted.
/// Errors as the kernel's errno: EINVAL (unknown clock, bad event, a target thread not
/// in this process, a wanted id out of range), EBUSY (the wanted id is taken), EAGAIN
/// (no room for another timer), EPERM (an alarm clock without CAP_WAKE_ALARM),
/// EOPNOTSUPP (a clock without timers).
pub fn timer_create(clock: i32, event: &TimerEvent, id: &mut i32) -> Result<(), Errno> {
    let ev = SigEvent {
        value: event.value,
        signo: event.signo as i32,
        notify: event.notify as i32,
        tid: event.tid as i32,
        pad: [0; SIGEVENT_PAD],
    };
    // SAFETY: ev is a whole struct sigevent for the kernel to read and id an int it
    // reads and writes; both outlive the call.
    unsafe {
        syscalls::syscall3(
            Sysno::timer_create,
            clock as isize as usize,
            &ev as *const SigEvent as usize,
            id as *mut i32 as usize,
        )
        .map(|_| ())
    }
}

/// timer_gettime(id): (time left, interval) in nanoseconds; (0, _) is a disarmed timer.
/// EINVAL if the process has no timer `id`.
pub fn timer_gettime(id: i32) -> Result<(u64, u64), Errno> {
    let mut spec: Itimerspec64 = [0; 4];
    // SAFETY: the call writes one struct __kernel_itimerspec into spec.
    unsafe { syscalls::syscall2(SYS_TIMER_GETTIME64, id as usize, spec.as_mut_ptr() as usize)? };
    Ok((timespec_ns(spec[2], spec[3]), timespec_ns(spec[0], spec[1])))
}

/// timer_settime(id), relative: expires in `value_ns` (0 disarms), then every
/// `interval_ns` (0 = once). EINVAL if the process has no timer `id`.
pub fn timer_settime(id: i32, value_ns: u64, interval_ns: u64) -> Result<(), Errno> {
    let [isec, insec] = ns_timespec(interval_ns);
    let [vsec, vnsec] = ns_timespec(value_ns);
    let spec: Itimerspec64 = [isec, insec, vsec, vnsec];
    // SAFETY: spec is a valid itimerspec for the kernel to read; no old value is asked for.
    unsafe { syscalls::syscall4(SYS_TIMER_SETTIME64, id as usize, 0, spec.as_ptr() as usize, 0).map(|_| ()) }
}

/// timer_delete(id). EINVAL if the process has no timer `id`.
pub fn timer_delete(id: i32) -> Result<(), Errno> {
    // SAFETY: deletes a timer; touches no memory.
    unsafe { syscalls::syscall1(Sysno::timer_delete, id as usize).map(|_| ()) }
}

/// FUTEX_WAIT with a relative timeout in nanoseconds; callers re-check the word.
pub fn futex_wait_timeout(word: &AtomicU32, expected: u32, ns: u64) {
    let ts: Timespec64 = [(ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i64];
    // SAFETY: word is a valid aligned u32 and ts a valid 64-bit timespec.
    unsafe {
        let _ = syscalls::syscall4(
            SYS_FUTEX_TIME64,
            word.as_ptr() as usize,
            FUTEX_WAIT,
            expected as usize,
            ts.as_ptr() as usize,
        );
    }
}

/// `struct itimerval` (interval, then value, each {sec, usec} as C longs: there is no
/// 64-bit variant for ia32 tasks).
type Itimerval = [isize; 4];

/// getitimer(which): (interval, value) in microseconds. EINVAL for an unknown timer.
pub fn get_itimer(which: u32) -> Result<(u64, u64), Errno> {
    let mut v: Itimerval = [0; 4];
    // SAFETY: getitimer writes one struct itimerval.
    unsafe { syscalls::syscall2(Sysno::getitimer, which as usize, v.as_mut_ptr() as usize)? };
    let us = |s: isize, u: isize| (s.max(0) as u64) * 1_000_000 + u.max(0) as u64;
    Ok((us(v[0], v[1]), us(v[2], v[3])))
}

/// setitimer(which) from microseconds (seconds clamped to what a C long holds); errors as
/// the kernel's errno.
pub fn set_itimer(which: u32, interval_us: u64, value_us: u64) -> Result<(), Errno> {
    let sec = |us: u64| (us / 1_000_000).min(isize::MAX as u64) as isize;
    let v: Itimerval = [
        sec(interval_us),
        (interval_us % 1_000_000) as isize,
        sec(value_us),
        (value_us % 1_000_000) as isize,
    ];
    // SAFETY: setitimer reads one struct itimerval; the old value is not asked for.
    unsafe { syscalls::syscall3(Sysno::setitimer, which as usize, v.as_ptr() as usize, 0).map(|_| ()) }
}
