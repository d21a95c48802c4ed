//! Event-loop descriptors at checkpoint time (eventfd, timerfd, signalfd, epoll): which
//! kind each one is and its kernel state, from /proc/self/fdinfo and timerfd_gettime.

use core::fmt::Write;
use syscalls::Errno;

use mtcp_core::arena::ArenaVec;
use mtcp_core::fmt::FmtBuf;
use mtcp_core::image::*;
use mtcp_core::sys;

/// The event kind of a descriptor whose /proc/self/fd link is `target`.
pub fn kind_of(target: &[u8]) -> Option<u32> {
    match target {
        b"anon_inode:[eventfd]" => Some(FD_EVENTFD),
        b"anon_inode:[timerfd]" => Some(FD_TIMERFD),
        b"anon_inode:[signalfd]" => Some(FD_SIGNALFD),
        b"anon_inode:[eventpoll]" => Some(FD_EPOLL),
        _ => None,
    }
}

const TFD_TIMER_ABSTIME: u32 = 1;

/// Appends the state of `fd`, an event descriptor of `kind`, to `out`. `info` is the
/// start of its fdinfo (epoll reads all of its own); `earlier` are the records taken so
/// far, one of which may share its open file. Ok(false): the kernel would not tell
/// (the record stays FD_OTHER, and nothing was appended).
pub fn capture(fd: u32, kind: u32, info: &[u8], earlier: &[FdRecord], out: &mut ArenaVec<u8>) -> Result<bool, Errno> {
    let same_as = earlier
        .iter()
        .find(|r| r.kind == kind && sys::same_open_file(r.fd as i32, fd as i32) == Ok(true))
        .map_or(NOT_SHARED, |r| r.fd);
    match kind {
        FD_EVENTFD => {
            let count = match field(info, b"eventfd-count:").and_then(|v| radix(v, 16)) {
                Some(c) => c,
                None => return Ok(false),
            };
            let semaphore = field(info, b"eventfd-semaphore:").and_then(|v| radix(v, 10)) == Some(1);
            let state = EventFdState {
                same_as,
                flags: if semaphore { EVENTFD_SEMAPHORE } else { 0 },
                count,
            };
            push_all(out, as_bytes(&state))?;
        }
        FD_TIMERFD => {
            // First timerfd_gettime: it brings a periodic timer's expiry up to now and
            // adds the intervals that went by unread to its ticks, which fdinfo shows
            // only from then on (until a read or gettime, it counts one).
            let spec = sys::timerfd_gettime(fd as i32);
            let mut fresh = [0u8; 512];
            let info = fdinfo(fd, &mut fresh).unwrap_or(info);
            let clock = field(info, b"clockid:").and_then(|v| radix(v, 10));
            let ticks = field(info, b"ticks:").and_then(|v| radix(v, 10));
            let settime_flags = field(info, b"settime flags:").and_then(|v| radix(v, 8));
            let (clock, ticks, settime_flags, spec) = match (clock, ticks, settime_flags, spec) {
                (Some(c), Some(t), Some(f), Ok(spec)) => (c as u32, t, f as u32, spec),
                _ => return Ok(false),
            };
            let [interval_sec, interval_nsec, mut value_sec, mut value_nsec] = spec;
            if settime_flags & TFD_TIMER_ABSTIME != 0 && (value_sec, value_nsec) != (0, 0) {
                // Set for a time on its clock: keep that time, not what was left of it.
                let (now_sec, now_nsec) = sys::clock_now(sys::readable_clock(clock)).unwrap_or((0, 0));
                value_sec += now_sec;
                value_nsec += now_nsec;
                if value_nsec >= 1_000_000_000 {
                    value_sec += 1;
                    value_nsec -= 1_000_000_000;
                }
            }
            let state = TimerFdState {
                same_as,
                clock,
                settime_flags,
                value_nsec: value_nsec as u32,
                value_sec,
                interval_sec,
                interval_nsec: interval_nsec as u32,
                reserved: 0,
                ticks,
            };
            push_all(out, as_bytes(&state))?;
        }
        FD_SIGNALFD => {
            let mask = match field(info, b"sigmask:").and_then(|v| radix(v, 16)) {
                Some(m) => m,
                None => return Ok(false),
            };
            let state = SignalFdState {
                same_as,
                reserved: 0,
                mask,
            };
            push_all(out, as_bytes(&state))?;
        }
        FD_EPOLL => return capture_epoll(fd, same_as, out),
        _ => return Ok(false),
    }
    Ok(true)
}

/// The start of `fd`'s fdinfo, read into `buf`.
fn fdinfo(fd: u32, buf: &mut [u8]) -> Option<&[u8]> {
    let mut path = FmtBuf::<48>::new();
    let _ = write!(path, "/proc/self/fdinfo/{}", fd);
    let n = sys::read_file(path.as_bytes(), buf).ok()?;
    Some(&buf[..n])
}

/// An epoll instance's registrations, one `tfd:` line of its fdinfo each, read in
/// pieces (an event loop may watch thousands of descriptors).
fn capture_epoll(fd: u32, same_as: u32, out: &mut ArenaVec<u8>) -> Result<bool, Errno> {
    let mut path = FmtBuf::<48>::new();
    let _ = write!(path, "/proc/self/fdinfo/{}", fd);
    let file = match sys::open(path.as_bytes(), sys::O_RDONLY | sys::O_CLOEXEC, 0) {
        Ok(f) => f,
        Err(_) => return Ok(false),
    };
    push_all(out, as_bytes(&EpollState { same_as, reserved: 0 }))?;
    let mut buf = [0u8; 2048];
    let mut held = 0;
    loop {
        // SAFETY: the rest of buf is valid for writes.
        let n = match unsafe { sys::read(file.raw(), buf.as_mut_ptr().add(held), buf.len() - held) } {
            Ok(n) => n,
            // Half an answer would restore a loop that misses events: say it is lost instead.
            Err(_) => return Err(Errno::EIO),
        };
        held += n;
        let lines_end = match buf[..held].iter().rposition(|&c| c == b'\n') {
            Some(i) => i + 1,
            None if n == 0 || held == buf.len() => held, // a last line without newline
            None => continue,
        };
        for line in buf[..lines_end].split(|&c| c == b'\n') {
            if let Some(entry) = epoll_entry(line) {
                push_all(out, as_bytes(&entry))?;
            }
        }
        buf.copy_within(lines_end..held, 0);
        held -= lines_end;
        if n == 0 {
            return Ok(true);
        }
    }
}

/// One registration: `tfd: N events: HEX data: HEX  pos:N ino:HEX sdev:HEX`.
fn epoll_entry(line: &[u8]) -> Option<EpollEntry> {
    let mut words = line.split(|c| c.is_ascii_whitespace()).filter(|w| !w.is_empty());
    let mut entry = EpollEntry::default();
    if words.next()? != b"tfd:" {
        return None;
    }
    entry.fd = radix(words.next()?, 10)? as u32;
    let mut sdev = None;
    while let Some(key) = words.next() {
        match key {
            b"events:" => entry.events = radix(words.next()?, 16)? as u32,
            b"data:" => entry.data = radix(words.next()?, 16)?,
            _ => {
                if let Some(v) = key.strip_prefix(b"ino:") {
                    entry.inode = radix(v, 16)?;
                } else if let Some(v) = key.strip_prefix(b"sdev:") {
                    sdev = radix(v, 16);
                }
            }
        }
    }
    // The kernel's internal dev_t: 12 bits of major above 20 bits of minor.
    let sdev = sdev?;
    entry.dev_major = (sdev >> 20) as u32;
    entry.dev_minor = (sdev & 0xf_ffff) as u32;
    Some(entry)
}

/// The value of the fdinfo line `key`, trimmed.
fn field<'a>(info: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    info.split(|&c| c == b'\n')
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim_ascii())
}

/// An unsigned number in base 8, 10 or 16 (no prefix).
fn radix(s: &[u8], base: u64) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &c| {
        let d = (c as char).to_digit(base as u32)? as u64;
        acc.checked_mul(base)?.checked_add(d)
    })
}

fn push_all(out: &mut ArenaVec<u8>, bytes: &[u8]) -> Result<(), Errno> {
    for &b in bytes {
        out.push(b)?;
    }
    Ok(())
}
