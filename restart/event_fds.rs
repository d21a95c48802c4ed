//! Step 4, files: eventfds, timerfds, signalfds and epoll instances made again at their
//! numbers with their state; each epoll's registrations last, once every descriptor it
//! watches (another epoll included) is back. What cannot come back is named.
#![deny(unsafe_code)]

use mtcp_core::eprint_line;
use mtcp_core::fmt::{ErrnoName, Lossy};
use mtcp_core::image::*;
use mtcp_core::sys::{self, Fd};
use mtcp_core::Errno;

const O_NONBLOCK: u32 = 0o4000;
const O_CLOEXEC: u32 = 0o2000000;
const F_GETFD: usize = 1;

pub fn is_event_kind(kind: u32) -> bool {
    matches!(kind, FD_EVENTFD | FD_TIMERFD | FD_SIGNALFD | FD_EPOLL)
}

/// Makes the eventfd, timerfd, signalfd or (still empty) epoll instance of `rec` again
/// at its number; a record that shares its open file with an earlier one becomes a
/// duplicate of that one's number.
pub fn restore(meta: &Meta, index: usize, rec: &FdRecord, verbose: bool) {
    let data = meta.string(rec.data);
    let name = fd_kind_name(rec.kind);
    let same_as = event_fd_same_as(rec, data).unwrap_or(NOT_SHARED);
    if same_as != NOT_SHARED {
        let original = (0..index)
            .map(|j| meta.fd(j))
            .find(|o| o.fd == same_as && o.kind == rec.kind);
        let shared = match original {
            Some(_) => sys::dup3(same_as as i32, rec.fd as i32, cloexec(rec)),
            None => Err(Errno::EINVAL),
        };
        match shared {
            Ok(()) if verbose => eprint_line!("mtcp_restart: fd {} ({}) shares fd {} again", rec.fd, name, same_as),
            Ok(()) => {}
            Err(e) => eprint_line!(
                "mtcp_restart: warning: fd {} ({}) shared fd {}, which is not back ({}); it stays closed",
                rec.fd,
                name,
                same_as,
                ErrnoName(e)
            ),
        }
        return;
    }
    let flags = (rec.flags & (O_NONBLOCK | O_CLOEXEC)) as usize;
    let made = match rec.kind {
        FD_EVENTFD => EventFdState::of(rec, data).ok_or(Errno::EINVAL).and_then(|s| {
            let semaphore = if s.flags & EVENTFD_SEMAPHORE != 0 { 1 } else { 0 };
            let fd = sys::eventfd(0, flags | semaphore)?;
            if s.count != 0 {
                sys::write_all(fd.raw(), &s.count.to_ne_bytes())?;
            }
            Ok(fd)
        }),
        FD_TIMERFD => TimerFdState::of(rec, data)
            .ok_or(Errno::EINVAL)
            .and_then(|s| timer(rec, &s, flags)),
        FD_SIGNALFD => SignalFdState::of(rec, data)
            .ok_or(Errno::EINVAL)
            .and_then(|s| sys::signalfd(s.mask, flags)),
        FD_EPOLL => sys::epoll_create((rec.flags & O_CLOEXEC) as usize),
        _ => Err(Errno::EINVAL),
    };
    let placed = made.and_then(|fd| place(fd, rec));
    match placed {
        Ok(()) if verbose => eprint_line!("mtcp_restart: fd {} ({}) recreated", rec.fd, name),
        Ok(()) => {}
        Err(e) => eprint_line!(
            "mtcp_restart: warning: fd {} ({}) cannot be recreated: {}; it stays closed",
            rec.fd,
            name,
            ErrnoName(e)
        ),
    }
}

/// A timerfd on its clock, set to fire when it would have (the time it had left, or its
/// absolute time), with its interval and the expirations nobody had read yet.
fn timer(rec: &FdRecord, s: &TimerFdState, flags: usize) -> Result<Fd, Errno> {
    let fd = sys::timerfd_create(s.clock, flags)?;
    if (s.value_sec, s.value_nsec) != (0, 0) {
        let spec = [s.interval_sec, s.interval_nsec as i64, s.value_sec, s.value_nsec as i64];
        sys::timerfd_settime(fd.raw(), s.settime_flags, &spec)?;
    }
    if s.ticks != 0 {
        let set = match sys::timerfd_set_ticks(fd.raw(), s.ticks) {
            Err(Errno::ENOTTY) => ticks_from_the_past(fd.raw(), s),
            other => other,
        };
        if let Err(e) = set {
            eprint_line!(
                "mtcp_restart: warning: fd {} (timerfd): its {} unread expiration(s) are lost: {}",
                rec.fd,
                s.ticks,
                ErrnoName(e)
            );
        }
    }
    Ok(fd)
}

/// The unread expirations made again without TFD_IOC_SET_TICKS (which a 32-bit program
/// on a 64-bit kernel does not have), the way the kernel counts them: the timer is set,
/// on its clock's absolute time, to have first expired `ticks` intervals before its
/// next expiry, so that a read counts one expiration for each interval since then (a
/// one-shot timer: it expired at once). The timer then reports itself as absolute.
fn ticks_from_the_past(fd: i32, s: &TimerFdState) -> Result<(), Errno> {
    const TFD_TIMER_ABSTIME: u32 = 1;
    const TFD_TIMER_CANCEL_ON_SET: u32 = 2;
    const NS: i64 = 1_000_000_000;
    let ns = |sec: i64, nsec: i64| sec.saturating_mul(NS).saturating_add(nsec);
    let (now_sec, now_nsec) = sys::clock_now(sys::readable_clock(s.clock))?;
    let now = ns(now_sec, now_nsec);
    let interval = ns(s.interval_sec, s.interval_nsec as i64);
    let value = ns(s.value_sec, s.value_nsec as i64);
    let first = if interval > 0 {
        let next = match (value, s.settime_flags & TFD_TIMER_ABSTIME != 0) {
            (0, _) => now.saturating_add(interval),
            (v, true) => v,
            (v, false) => now.saturating_add(v),
        };
        next.saturating_sub((s.ticks.min(i64::MAX as u64) as i64).saturating_mul(interval))
    } else {
        1
    };
    let first = first.max(1);
    let spec = [s.interval_sec, s.interval_nsec as i64, first / NS, first % NS];
    let flags = TFD_TIMER_ABSTIME | (s.settime_flags & TFD_TIMER_CANCEL_ON_SET);
    sys::timerfd_settime(fd, flags, &spec)
}

fn cloexec(rec: &FdRecord) -> usize {
    if rec.flags & O_CLOEXEC != 0 {
        sys::O_CLOEXEC
    } else {
        0
    }
}

/// Moves a new descriptor to the record's number.
fn place(fd: Fd, rec: &FdRecord) -> Result<(), Errno> {
    if fd.raw() as u32 == rec.fd {
        let _ = fd.into_raw();
        return Ok(());
    }
    sys::dup3(fd.raw(), rec.fd as i32, cloexec(rec))
}

/// Each epoll instance made again watches again what it watched, under the same
/// numbers, with the same events and data. Call when every other descriptor is back.
///
/// A ready descriptor is reported once more after the restart, even edge-triggered (the
/// kernel checks readiness when a registration is added): a spurious wake-up, never a
/// lost one. A one-shot registration that had fired comes back armed for errors and
/// hang-ups only (what EPOLL_CTL_ADD always adds).
pub fn restore_registrations(meta: &Meta, verbose: bool) {
    for i in 0..meta.fd_count() {
        let rec = meta.fd(i);
        let (state, entries) = match EpollState::of(&rec, meta.string(rec.data)) {
            Some(s) => s,
            None => continue,
        };
        // A duplicate shares its original's registrations; an instance that could not
        // be made was reported already.
        if rec.fd <= 2 || state.same_as != NOT_SHARED || sys::fcntl(rec.fd as i32, F_GETFD, 0).is_err() {
            continue;
        }
        let mut restored = 0;
        for e in entries {
            let target = (0..meta.fd_count()).map(|j| meta.fd(j)).find(|t| t.fd == e.fd);
            let target = match target {
                Some(t) if (t.inode, t.dev_major, t.dev_minor) == (e.inode, e.dev_major, e.dev_minor) => t,
                _ => {
                    eprint_line!(
                        "mtcp_restart: warning: epoll fd {}: the file it watched as fd {} had left that number before the checkpoint; that registration is lost",
                        rec.fd,
                        e.fd
                    );
                    continue;
                }
            };
            let path = Lossy(meta.string(target.path));
            if sys::fcntl(e.fd as i32, F_GETFD, 0).is_err() {
                eprint_line!(
                    "mtcp_restart: warning: epoll fd {}: fd {} ({}) it watched is not restored; that registration is lost",
                    rec.fd,
                    e.fd,
                    path
                );
                continue;
            }
            match sys::epoll_add(rec.fd as i32, e.fd as i32, e.events, e.data) {
                Ok(()) => restored += 1,
                Err(err) => eprint_line!(
                    "mtcp_restart: warning: epoll fd {}: cannot watch fd {} ({}) again: {}; that registration is lost",
                    rec.fd,
                    e.fd,
                    path,
                    ErrnoName(err)
                ),
            }
        }
        if verbose {
            eprint_line!(
                "mtcp_restart: epoll fd {} watches {} descriptor(s) again",
                rec.fd,
                restored
            );
        }
    }
}
