//! The program's POSIX timers (`timer_create`): read while every thread is parked,
//! recreated with the same ids, clocks, notifications and times at restart.

use core::fmt::Write;

use mtcp_core::arena::Arena;
use mtcp_core::eprint_line;
use mtcp_core::fmt::ErrnoName;
use mtcp_core::global::Global;
use mtcp_core::image::TimerRecord;
use mtcp_core::posix_timers::{self, IdError};
use mtcp_core::sys::{self, TimerEvent};
use syscalls::Errno;

use crate::state::{FailMessage, Slot};

/// More timers than this fail the checkpoint (the kernel's limit is the user's
/// RLIMIT_SIGPENDING, typically in the thousands).
pub const MAX_TIMERS: usize = 1024;

pub struct Timers {
    /// Sorted by id.
    pub records: [TimerRecord; MAX_TIMERS],
    pub count: usize,
}

/// The timers at the last checkpoint. Saved with the image's memory, so the restore
/// code finds them here. Written by the coordinator while every other thread is
/// parked, read by the restore code before any other thread runs.
static TIMERS: Global<Timers> = Global::new(Timers {
    records: [TimerRecord::zeroed(); MAX_TIMERS],
    count: 0,
});

/// The program's timers (the runtime makes none: its interval checkpoints come from a
/// thread, triggers.rs), each with its time left and interval, kept for the restore
/// and returned for the image.
///
/// # Safety
/// Only the coordinator, while every other thread is parked.
pub unsafe fn capture(arena: &mut Arena) -> Result<&'static [TimerRecord], FailMessage> {
    // SAFETY: nothing else uses TIMERS while the coordinator writes (our contract).
    let timers = unsafe { &mut *TIMERS.get() };
    timers.count = 0;
    let text = match arena.read_file(b"/proc/self/timers") {
        Ok(t) => t,
        // A kernel without CONFIG_CHECKPOINT_RESTORE has no such file; nothing to save.
        Err(Errno::ENOENT) => return Ok(&[]),
        Err(e) => return Err(message(format_args!("cannot read /proc/self/timers: {}", ErrnoName(e)))),
    };
    let mut overflow = false;
    let parsed = posix_timers::parse(text, |mut t| {
        if overflow {
            return;
        }
        match sys::timer_gettime(t.id as i32) {
            Ok((value_ns, interval_ns)) => {
                t.value_ns = value_ns;
                t.interval_ns = interval_ns;
            }
            // Deleted after the listing was read: every thread is parked, so only by
            // the kernel; there is nothing to save.
            Err(_) => return,
        }
        if timers.count == MAX_TIMERS {
            overflow = true;
            return;
        }
        // Sorted by id: the kernel lists the newest first.
        let at = timers.records[..timers.count].partition_point(|r| r.id < t.id);
        timers.records.copy_within(at..timers.count, at + 1);
        timers.records[at] = t;
        timers.count += 1;
    });
    if let Err(line) = parsed {
        return Err(message(format_args!("cannot parse line {} of /proc/self/timers", line)));
    }
    if overflow {
        return Err(message(format_args!(
            "the process has more than {} POSIX timers, more than mtcp saves",
            MAX_TIMERS
        )));
    }
    Ok(&timers.records[..timers.count])
}

fn message(args: core::fmt::Arguments) -> FailMessage {
    let mut m = FailMessage::new();
    let _ = m.write_fmt(args);
    m
}

/// The restart cannot go on: one line and exit.
fn fatal(args: core::fmt::Arguments) -> ! {
    eprint_line!("mtcp_restart: {}", args);
    sys::exit_group(1)
}

/// Recreates every timer of the last checkpoint with its id, clock (a CPU-time clock of
/// a thread or of the process mapped to its new id), notification (a thread's mapped to
/// its new tid), signal value, time left and interval. A timer that cannot be had
/// back ends the restart with one line.
///
/// # Safety
/// Only the restore code, once every thread of `slots` exists (with `new_tid` set) and
/// before any of them runs the program: while the kernel takes wanted ids, a
/// timer_create of the program's would be read as asking for one.
pub unsafe fn restore(slots: &[Slot], old_pid: u32) {
    // SAFETY: no other thread runs yet (our contract); TIMERS is as the image left it.
    let timers = unsafe { &*TIMERS.get() };
    let records = &timers.records[..timers.count];
    if records.is_empty() {
        return;
    }
    let new_tid = |old: u32| {
        slots
            .iter()
            .find(|s| s.rec.tid == old as u64 && s.new_tid != 0)
            .map(|s| s.new_tid)
    };
    // Refuse before creating any.
    for t in records {
        if let Err(why) = t.restored(old_pid, slots.len(), new_tid) {
            fatal(format_args!("{}", why));
        }
    }
    let exact = posix_timers::restore_ids_mode(true).is_ok();
    for t in records {
        let (clock, tid) = t.restored(old_pid, slots.len(), new_tid).unwrap_or((t.clock, 0));
        let event = TimerEvent {
            value: t.value as usize,
            signo: t.signo,
            notify: t.notify,
            tid,
        };
        if let Err(e) = posix_timers::create_with_id(t.id, clock, &event, exact) {
            if exact {
                let _ = posix_timers::restore_ids_mode(false);
            }
            match e {
                IdError::Kernel(e) => fatal(format_args!("cannot recreate POSIX timer {}: {}", t.id, ErrnoName(e))),
                IdError::Passed { next } => fatal(format_args!(
                    "cannot recreate POSIX timer {}: this kernel hands out id {} next and cannot be asked for \
                     an id (it lacks PR_TIMER_CREATE_RESTORE_IDS)",
                    t.id, next
                )),
                IdError::TooFar => fatal(format_args!(
                    "cannot recreate POSIX timer {}: more than {} ids to skip on a kernel that cannot be asked \
                     for an id (it lacks PR_TIMER_CREATE_RESTORE_IDS)",
                    t.id,
                    posix_timers::MAX_SKIPPED_IDS
                )),
            }
        }
        // A disarmed timer stays so; a periodic one keeps its period.
        if t.value_ns != 0 {
            if let Err(e) = sys::timer_settime(t.id as i32, t.value_ns, t.interval_ns) {
                fatal(format_args!("cannot arm POSIX timer {}: {}", t.id, ErrnoName(e)));
            }
        }
    }
    if exact {
        // Left on, the program's next timer_create would read its argument as an id.
        if let Err(e) = posix_timers::restore_ids_mode(false) {
            fatal(format_args!("cannot end the timer id restore mode: {}", ErrnoName(e)));
        }
    }
}
