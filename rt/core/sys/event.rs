//! Event-loop descriptors: eventfd, timerfd, signalfd, epoll, and kcmp to tell whether
//! two numbers share one open file.
//!
//! Error policy as in `sys`.

use core::mem::size_of;
use static_assertions::const_assert_eq;
use syscalls::{Errno, Sysno};

use mtcp_arch::{SYS_CLOCK_GETTIME64, SYS_TIMERFD_GETTIME64, SYS_TIMERFD_SETTIME64};

use super::fd_arg;
use super::file::Fd;

/// A new eventfd holding `count` (EFD_SEMAPHORE 1, O_NONBLOCK, O_CLOEXEC in `flags`).
/// Errors: EINVAL (bad flags), EMFILE, ENFILE, ENOMEM.
pub fn eventfd(count: u32, flags: usize) -> Result<Fd, Errno> {
    // SAFETY: eventfd2 touches no memory of ours.
    unsafe { syscalls::syscall2(Sysno::eventfd2, count as usize, flags).map(|r| Fd::adopt(r as i32)) }
}

/// A new, disarmed timerfd on `clock` (O_NONBLOCK, O_CLOEXEC in `flags`). Errors: EINVAL
/// (unknown clock or flags), EPERM (an alarm clock without CAP_WAKE_ALARM), EMFILE,
/// ENFILE, ENODEV, ENOMEM.
pub fn timerfd_create(clock: u32, flags: usize) -> Result<Fd, Errno> {
    // SAFETY: timerfd_create touches no memory of ours.
    unsafe { syscalls::syscall2(Sysno::timerfd_create, clock as usize, flags).map(|r| Fd::adopt(r as i32)) }
}

/// `struct __kernel_itimerspec`: interval, then value, each a 64-bit (seconds, nanoseconds).
pub type ItimerSpec64 = [i64; 4];
const_assert_eq!(size_of::<ItimerSpec64>(), 32);

/// The timer's (interval, time left), as timerfd_gettime gives them. Errors: EBADF,
/// EINVAL (not a timerfd).
pub fn timerfd_gettime(fd: i32) -> Result<ItimerSpec64, Errno> {
    let mut spec: ItimerSpec64 = [0; 4];
    // SAFETY: the kernel writes one struct __kernel_itimerspec into spec.
    unsafe { syscalls::syscall2(SYS_TIMERFD_GETTIME64, fd_arg(fd), spec.as_mut_ptr() as usize)? };
    Ok(spec)
}

/// Arms (or with a zero value disarms) the timer; `flags` are TFD_TIMER_ABSTIME and
/// TFD_TIMER_CANCEL_ON_SET. Errors: EBADF, EINVAL (bad flags or times), ECANCELED.
pub fn timerfd_settime(fd: i32, flags: u32, spec: &ItimerSpec64) -> Result<(), Errno> {
    // SAFETY: the kernel reads one struct __kernel_itimerspec; no old value is asked for.
    unsafe {
        syscalls::syscall4(
            SYS_TIMERFD_SETTIME64,
            fd_arg(fd),
            flags as usize,
            spec.as_ptr() as usize,
            0,
        )
        .map(|_| ())
    }
}

/// TFD_IOC_SET_TICKS: `_IOW('T', 0, __u64)`.
const TFD_IOC_SET_TICKS: usize = 0x4008_5400;

/// Adds `ticks` unread expirations to a timerfd. Errors: ENOTTY (a kernel without
/// CONFIG_CHECKPOINT_RESTORE, or a 32-bit program on a 64-bit kernel: timerfd has no
/// compat ioctl), EINVAL, EBADF.
pub fn timerfd_set_ticks(fd: i32, ticks: u64) -> Result<(), Errno> {
    // SAFETY: the ioctl reads one u64, a local that outlives the call.
    unsafe {
        syscalls::syscall3(
            Sysno::ioctl,
            fd_arg(fd),
            TFD_IOC_SET_TICKS,
            &ticks as *const u64 as usize,
        )
        .map(|_| ())
    }
}

/// A new signalfd reading the signals in `mask` (O_NONBLOCK, O_CLOEXEC in `flags`).
/// Errors: EINVAL, EMFILE, ENFILE, ENODEV, ENOMEM.
pub fn signalfd(mask: u64, flags: usize) -> Result<Fd, Errno> {
    // SAFETY: the kernel reads 8 bytes at `mask`, a local that outlives the call.
    unsafe {
        syscalls::syscall4(Sysno::signalfd4, usize::MAX, &mask as *const u64 as usize, 8, flags)
            .map(|r| Fd::adopt(r as i32))
    }
}

/// A new epoll instance (O_CLOEXEC in `flags`). Errors: EINVAL, EMFILE, ENFILE, ENOMEM.
pub fn epoll_create(flags: usize) -> Result<Fd, Errno> {
    // SAFETY: epoll_create1 touches no memory of ours.
    unsafe { syscalls::syscall1(Sysno::epoll_create1, flags).map(|r| Fd::adopt(r as i32)) }
}

/// `struct epoll_event`, packed on x86_64 and naturally 12 bytes on i386.
#[repr(C, packed)]
struct EpollEvent {
    events: u32,
    data: u64,
}
const_assert_eq!(size_of::<EpollEvent>(), 12);

pub const EPOLL_CTL_ADD: usize = 1;

/// Registers `target` with the epoll instance `epfd`. Errors: EBADF, EEXIST, EINVAL,
/// ELOOP, ENOMEM, ENOSPC, EPERM (a file epoll cannot watch).
pub fn epoll_add(epfd: i32, target: i32, events: u32, data: u64) -> Result<(), Errno> {
    let ev = EpollEvent { events, data };
    // SAFETY: the kernel reads one struct epoll_event, a local that outlives the call.
    unsafe {
        syscalls::syscall4(
            Sysno::epoll_ctl,
            fd_arg(epfd),
            EPOLL_CTL_ADD,
            fd_arg(target),
            &ev as *const EpollEvent as usize,
        )
        .map(|_| ())
    }
}

const KCMP_FILE: usize = 0;

/// Whether descriptors `a` and `b` of this process refer to the same open file. Errors:
/// EBADF, ENOSYS or EPERM (no kcmp here).
pub fn same_open_file(a: i32, b: i32) -> Result<bool, Errno> {
    let pid = super::getpid() as usize;
    // SAFETY: kcmp on file descriptors touches no memory of ours.
    let order = unsafe { syscalls::syscall5(Sysno::kcmp, pid, pid, KCMP_FILE, fd_arg(a), fd_arg(b))? };
    Ok(order == 0)
}

/// The clock clock_gettime reads for a timer clock: the alarm clocks read as the clocks
/// they wake on.
pub fn readable_clock(clock: u32) -> u32 {
    const CLOCK_REALTIME_ALARM: u32 = 8;
    const CLOCK_BOOTTIME_ALARM: u32 = 9;
    match clock {
        CLOCK_REALTIME_ALARM => 0,
        CLOCK_BOOTTIME_ALARM => 7,
        c => c,
    }
}

/// The clock `clock` now, as (seconds, nanoseconds). Errors: EINVAL (unknown clock).
pub fn clock_now(clock: u32) -> Result<(i64, i64), Errno> {
    let mut ts = [0i64; 2];
    // SAFETY: the call writes one struct __kernel_timespec into ts.
    unsafe { syscalls::syscall2(SYS_CLOCK_GETTIME64, clock as usize, ts.as_mut_ptr() as usize)? };
    Ok((ts[0], ts[1]))
}
