//! POSIX timers: parsing `/proc/PID/timers`, and creating a timer with a given id.

use syscalls::Errno;

use crate::image::{TimerRecord, TIMER_NOTIFY_NONE, TIMER_NOTIFY_SIGNAL, TIMER_NOTIFY_THREAD, TIMER_NOTIFY_THREAD_ID};
use crate::sys::{self, TimerEvent};

/// Calls `each` with every timer of `text` (the file's contents, four lines a timer:
/// `ID: %d`, `signal: %d/%px`, `notify: %s/%s.%d`, `ClockID: %d`), the times left
/// zero. Err(line number) at the first line it cannot read, or a timer that lacks one.
pub fn parse(text: &[u8], mut each: impl FnMut(TimerRecord)) -> Result<(), usize> {
    let mut cur: Option<(TimerRecord, u8)> = None;
    const ALL: u8 = 0b1111;
    for (n, line) in text.split(|&c| c == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let (key, val) = match line.iter().position(|&c| c == b':') {
            Some(p) => (&line[..p], trim(&line[p + 1..])),
            None => return Err(n + 1),
        };
        if key == b"ID" {
            if let Some((t, seen)) = cur.take() {
                if seen != ALL {
                    return Err(n + 1);
                }
                each(t);
            }
            let id = dec(val).filter(|&v| v <= i32::MAX as u64).ok_or(n + 1)?;
            cur = Some((
                TimerRecord {
                    id: id as u32,
                    ..TimerRecord::default()
                },
                1,
            ));
            continue;
        }
        let (t, seen) = cur.as_mut().ok_or(n + 1)?;
        let ok = match key {
            b"signal" => split2(val, b'/').and_then(|(sig, value)| {
                t.signo = dec(sig).filter(|&s| s <= 64)? as u32;
                t.value = hex(value)?;
                *seen |= 2;
                Some(())
            }),
            b"notify" => split2(val, b'/').and_then(|(how, rest)| {
                let (kind, pid) = split2(rest, b'.')?;
                let base = match how {
                    b"signal" => TIMER_NOTIFY_SIGNAL,
                    b"none" => TIMER_NOTIFY_NONE,
                    b"thread" => TIMER_NOTIFY_THREAD,
                    _ => return None,
                };
                t.notify = match kind {
                    b"pid" => base,
                    b"tid" if base == TIMER_NOTIFY_SIGNAL => TIMER_NOTIFY_THREAD_ID,
                    _ => return None,
                };
                t.target = dec(pid).filter(|&p| p <= u32::MAX as u64)? as u32;
                *seen |= 4;
                Some(())
            }),
            b"ClockID" => signed(val).map(|c| {
                t.clock = c;
                *seen |= 8;
            }),
            // A field a later kernel may add.
            _ => Some(()),
        };
        ok.ok_or(n + 1)?;
    }
    if let Some((t, seen)) = cur {
        if seen != ALL {
            return Err(text.split(|&c| c == b'\n').count());
        }
        each(t);
    }
    Ok(())
}

/// Switches timer_create's "take the id asked for" mode on or off (kernels from 6.15:
/// PR_TIMER_CREATE_RESTORE_IDS). EINVAL where the kernel lacks it. The mode is the
/// whole process's: while it is on, every timer_create reads its id argument.
pub fn restore_ids_mode(on: bool) -> Result<(), Errno> {
    let mode = if on {
        sys::PR_TIMER_CREATE_RESTORE_IDS_ON
    } else {
        sys::PR_TIMER_CREATE_RESTORE_IDS_OFF
    };
    // SAFETY: PR_TIMER_CREATE_RESTORE_IDS takes plain integers, no pointers.
    unsafe { sys::prctl(sys::PR_TIMER_CREATE_RESTORE_IDS, mode, 0, 0, 0).map(|_| ()) }
}

/// Why a timer could not be had with the id wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdError {
    /// timer_create failed (EBUSY: the id is taken).
    Kernel(Errno),
    /// Without the restore mode: the kernel hands out ids in increasing order and gave
    /// `next`, past the one wanted.
    Passed { next: u32 },
    /// Without the restore mode: more than `MAX_SKIPPED_IDS` ids lie before it.
    TooFar,
}

/// Without the restore mode, how many timers `create_with_id` may create and delete to
/// reach an id.
pub const MAX_SKIPPED_IDS: u32 = 1 << 20;

/// Creates a timer with id `id`. With the restore mode on (`restore_ids_mode`), the
/// kernel gives that id or EBUSY. Without it, kernels hand out ids in increasing order:
/// timers are created (and deleted) until the id comes up, so timers must be asked for
/// in increasing id order.
pub fn create_with_id(id: u32, clock: i32, event: &TimerEvent, restore_mode: bool) -> Result<(), IdError> {
    if restore_mode {
        let mut got = id as i32;
        sys::timer_create(clock, event, &mut got).map_err(IdError::Kernel)?;
        if got as u32 != id {
            let _ = sys::timer_delete(got);
            return Err(IdError::Kernel(Errno::EBUSY));
        }
        return Ok(());
    }
    for _ in 0..MAX_SKIPPED_IDS {
        let mut got = 0i32;
        sys::timer_create(clock, event, &mut got).map_err(IdError::Kernel)?;
        if got as u32 == id {
            return Ok(());
        }
        let _ = sys::timer_delete(got);
        if got as u32 > id {
            return Err(IdError::Passed { next: got as u32 });
        }
    }
    Err(IdError::TooFar)
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&c| c != b' ' && c != b'\t').unwrap_or(s.len());
    &s[start..]
}

fn split2(s: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let p = s.iter().position(|&c| c == sep)?;
    Some((&s[..p], &s[p + 1..]))
}

fn dec(s: &[u8]) -> Option<u64> {
    crate::maps::dec(s)
}

fn signed(s: &[u8]) -> Option<i32> {
    match s {
        [b'-', rest @ ..] => dec(rest)
            .filter(|&v| v <= 1 << 31)
            .map(|v| (v as i64).wrapping_neg() as i32),
        _ => dec(s).filter(|&v| v <= i32::MAX as u64).map(|v| v as i32),
    }
}

fn hex(s: &[u8]) -> Option<u64> {
    let s = s.strip_prefix(b"0x").unwrap_or(s);
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    s.iter()
        .try_fold(0u64, |v, &c| Some(v << 4 | (c as char).to_digit(16)? as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn all(text: &[u8]) -> Result<Vec<TimerRecord>, usize> {
        let mut v = Vec::new();
        parse(text, |t| v.push(t)).map(|()| v)
    }

    #[test]
    fn kernel_listing() {
        let text = b"ID: 3\nsignal: 34/00000000deadbeef\nnotify: signal/tid.812\nClockID: -6\n\
                     ID: 0\nsignal: 12/000000006d746370\nnotify: signal/pid.800\nClockID: 1\n\
                     ID: 7\nsignal: 0/0000000000000000\nnotify: none/pid.800\nClockID: 0\n";
        let t = all(text).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(
            (t[0].id, t[0].signo, t[0].value, t[0].notify, t[0].target, t[0].clock),
            (3, 34, 0xdead_beef, TIMER_NOTIFY_THREAD_ID, 812, -6)
        );
        assert_eq!((t[1].notify, t[1].target, t[1].clock), (TIMER_NOTIFY_SIGNAL, 800, 1));
        assert_eq!((t[2].id, t[2].notify), (7, TIMER_NOTIFY_NONE));
        assert_eq!(all(b"").unwrap().len(), 0);
        assert_eq!(
            all(b"ID: 1\nsignal: 14/0\nnotify: thread/pid.5\nClockID: -2147483648\n").unwrap()[0].clock,
            i32::MIN
        );
    }

    #[test]
    fn bad_listings() {
        assert_eq!(
            all(b"ID: 1\nsignal: 14/00\nnotify: signal/pid.5\n"),
            Err(4),
            "no ClockID"
        );
        assert_eq!(all(b"signal: 14/00\n"), Err(1), "no ID first");
        assert_eq!(all(b"ID: x\n"), Err(1));
        assert_eq!(
            all(b"ID: 1\nnotify: none/tid.5\n"),
            Err(2),
            "none cannot go to a thread"
        );
        assert_eq!(all(b"ID: 1\nsignal: 14/zz\n"), Err(2));
        assert_eq!(all(b"ID: 1\nClockID: 1\nID: 2\n"), Err(3), "a timer without its lines");
    }

    /// Both ways to get a timer with a given id, on this kernel (one test: the restore
    /// mode and the ids are the whole process's).
    #[test]
    fn timers_with_given_ids() {
        let none = TimerEvent {
            value: 0,
            signo: 0,
            notify: sys::SIGEV_NONE,
            tid: 0,
        };
        let clock = sys::CLOCK_MONOTONIC as i32;
        let mut first = 0;
        sys::timer_create(clock, &none, &mut first).unwrap();
        let first = first as u32;
        // Without the restore mode: the ids before the wanted one are skipped.
        assert_eq!(create_with_id(first + 5, clock, &none, false), Ok(()));
        assert!(sys::timer_gettime(first as i32 + 5).is_ok());
        for skipped in first + 1..first + 5 {
            assert_eq!(sys::timer_gettime(skipped as i32), Err(Errno::EINVAL), "id {skipped}");
        }
        assert_eq!(
            create_with_id(first + 2, clock, &none, false),
            Err(IdError::Passed { next: first + 6 })
        );
        // With it (where the kernel has it): any free id, and EBUSY for a taken one.
        if restore_ids_mode(true).is_ok() {
            let made = (
                create_with_id(first + 1000, clock, &none, true),
                create_with_id(first, clock, &none, true),
            );
            restore_ids_mode(false).unwrap();
            assert_eq!(made, (Ok(()), Err(IdError::Kernel(Errno::EBUSY))));
            assert!(sys::timer_gettime(first as i32 + 1000).is_ok());
            let _ = sys::timer_delete(first as i32 + 1000);
        }
        for id in [first, first + 5] {
            sys::timer_delete(id as i32).unwrap();
        }
    }

    #[test]
    fn cpu_clocks() {
        use crate::image::CpuClock;
        // CLOCK_PROCESS_CPUTIME_ID and CLOCK_THREAD_CPUTIME_ID as the kernel keeps them.
        let process = CpuClock::decode(-6).unwrap();
        assert_eq!(
            process,
            CpuClock {
                pid: 0,
                per_thread: false,
                which: 2
            }
        );
        assert_eq!(
            CpuClock::decode(-2).unwrap(),
            CpuClock {
                pid: 0,
                per_thread: true,
                which: 2
            }
        );
        let thread = CpuClock {
            pid: 4321,
            per_thread: true,
            which: 0,
        };
        assert_eq!(CpuClock::decode(thread.encode()), Some(thread));
        assert_eq!(process.encode(), -6);
        assert_eq!(CpuClock::decode(1), None);
    }
}
