//! Parsing `/proc/PID/timers`: the process's POSIX timers as the kernel lists them.
#![deny(unsafe_code)]

use crate::image::{TimerRecord, TIMER_NOTIFY_NONE, TIMER_NOTIFY_SIGNAL, TIMER_NOTIFY_THREAD, TIMER_NOTIFY_THREAD_ID};

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
