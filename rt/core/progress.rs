//! Progress of long work, written once for all three programs: the record the runtime
//! keeps in the status directory while it writes an image (`<pid>.progress`, read by
//! `mtcp checkpoint`), and the meter that the tool and `mtcp_restart` draw on stderr (a
//! line updated in place on a terminal, plain lines, or JSON objects).
#![deny(unsafe_code)]

use core::fmt::{self, Display, Write};

use crate::fmt::JsonStr;
use crate::protocol::{parse_proc_name, ProcName, StatusDir};
use crate::xxh64::xxh64;

pub const RECORD_MAGIC: [u8; 8] = *b"mtcpprog";
pub const RECORD_VERSION: u32 = 1;
pub const RECORD_SIZE: usize = 64;

/// What the writer is doing.
pub const PHASE_WRITING: u32 = 1;
pub const PHASE_SYNCING: u32 = 2;
pub const PHASE_DONE: u32 = 3;
pub const PHASE_FAILED: u32 = 4;

/// The progress record: 64 bytes, little-endian, rewritten in place at offset 0 while an
/// image is written. A reader may see a write half done: the checksum tells.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub phase: u32,
    /// Bytes of the image written so far, and in all.
    pub done: u64,
    pub total: u64,
    /// CLOCK_MONOTONIC (the same clock in every process) when the writing started, and
    /// at this record.
    pub started_ns: u64,
    pub updated_ns: u64,
}

impl Record {
    /// The record as stored: magic, version, phase, done, total, started, updated, a
    /// reserved word, then the xxh64 of the 56 bytes before it.
    pub fn to_bytes(&self) -> [u8; RECORD_SIZE] {
        let mut b = [0u8; RECORD_SIZE];
        b[0..8].copy_from_slice(&RECORD_MAGIC);
        b[8..12].copy_from_slice(&RECORD_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.phase.to_le_bytes());
        for (i, v) in [self.done, self.total, self.started_ns, self.updated_ns, 0]
            .into_iter()
            .enumerate()
        {
            b[16 + i * 8..24 + i * 8].copy_from_slice(&v.to_le_bytes());
        }
        let sum = xxh64(&b[..56], 0);
        b[56..].copy_from_slice(&sum.to_le_bytes());
        b
    }

    /// A whole record of this version, or None (a torn read, another file).
    pub fn parse(b: &[u8]) -> Option<Record> {
        if b.len() != RECORD_SIZE || b[0..8] != RECORD_MAGIC {
            return None;
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(w)
        };
        if u32_at(8) != RECORD_VERSION || u64_at(56) != xxh64(&b[..56], 0) {
            return None;
        }
        let r = Record {
            phase: u32_at(12),
            done: u64_at(16),
            total: u64_at(24),
            started_ns: u64_at(32),
            updated_ns: u64_at(40),
        };
        (PHASE_WRITING..=PHASE_FAILED).contains(&r.phase).then_some(r)
    }

    pub fn figures(&self) -> Figures {
        Figures {
            done: self.done.min(self.total),
            total: self.total,
            elapsed_ns: self.updated_ns.saturating_sub(self.started_ns),
        }
    }
}

/// The progress file of a process: `<status dir>/<ProcName>.progress`, beside its status
/// file (`protocol::StatusFile`), named and trusted as that is.
pub struct ProgressFile<'a> {
    pub dir: StatusDir<'a>,
    pub proc: ProcName,
}

impl Display for ProgressFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.dir, ProgressName(self.proc))
    }
}

/// The progress file's name in the status directory.
pub struct ProgressName(pub ProcName);

impl Display for ProgressName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.0, PROGRESS_SUFFIX)
    }
}

pub const PROGRESS_SUFFIX: &str = ".progress";

/// The process a progress file's name belongs to.
pub fn progress_file_owner(name: &[u8]) -> Option<ProcName> {
    parse_proc_name(name.strip_suffix(PROGRESS_SUFFIX.as_bytes())?)
}

/// How far some work has come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    pub done: u64,
    pub total: u64,
    pub elapsed_ns: u64,
}

impl Figures {
    /// Bytes per second so far; 0 before any time has passed.
    pub fn rate(&self) -> u64 {
        match self.elapsed_ns {
            0 => 0,
            ns => (self.done as u128 * 1_000_000_000 / ns as u128) as u64,
        }
    }

    pub fn percent(&self) -> u64 {
        match self.total {
            0 => 100,
            t => (self.done as u128 * 100 / t as u128) as u64,
        }
    }
}

/// A byte count for people: `512 B`, `3.5 KiB`, `412.0 MiB`, `1.2 GiB`.
pub struct Bytes(pub u64);

impl Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        let mut unit = 0;
        while unit + 1 < UNITS.len() && self.0 >= 1024u64 << (10 * (unit + 1)) {
            unit += 1;
        }
        let tenths = (self.0 as u128 * 10 / (1024u128 << (10 * unit))) as u64;
        write!(f, "{}.{} {}", tenths / 10, tenths % 10, UNITS[unit])
    }
}

/// Nanoseconds as seconds with three decimals.
pub struct Seconds(pub u64);

impl Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:03}",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000 / 1_000_000
        )
    }
}

/// `mtcp: OPERATION 412.0 MiB of 1.0 GiB (40%), 398.2 MiB/s`
pub fn write_line(w: &mut impl Write, operation: &str, f: &Figures) -> fmt::Result {
    write!(
        w,
        "mtcp: {} {} of {} ({}%), {}/s",
        operation,
        Bytes(f.done),
        Bytes(f.total),
        f.percent(),
        Bytes(f.rate())
    )
}

/// `{"type":"progress","operation":...,"done":N,"total":N,"seconds":S,"bytes_per_second":N}`
pub fn write_json(w: &mut impl Write, operation: &str, f: &Figures) -> fmt::Result {
    write!(
        w,
        "{{\"type\":\"progress\",\"operation\":{},\"done\":{},\"total\":{},\"seconds\":{},\"bytes_per_second\":{}}}",
        JsonStr(operation.as_bytes()),
        f.done,
        f.total,
        Seconds(f.elapsed_ns),
        f.rate()
    )
}

/// How the meter shows progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// One line on a terminal, redrawn in place and cleared at the end.
    Terminal,
    /// A line at a time, for a log that asked for progress.
    Lines,
    /// One JSON object a line (`write_json`), for a program that reads them.
    Json,
}

impl Style {
    /// The name `mtcp_restart --progress=NAME` takes.
    pub fn name(self) -> &'static str {
        match self {
            Style::Terminal => "terminal",
            Style::Lines => "lines",
            Style::Json => "json",
        }
    }

    pub fn from_name(name: &[u8]) -> Option<Style> {
        [Style::Terminal, Style::Lines, Style::Json]
            .into_iter()
            .find(|s| s.name().as_bytes() == name)
    }

    /// The least time between two updates.
    fn interval_ns(self) -> u64 {
        match self {
            Style::Terminal => 100_000_000,
            Style::Lines => 1_000_000_000,
            Style::Json => 250_000_000,
        }
    }
}

/// Work is long, and worth a meter, once it has taken this long or is this big.
pub const SHOW_AFTER_NS: u64 = 500_000_000;
pub const SHOW_FROM_BYTES: u64 = 64 << 20;

/// Decides when progress is worth showing and writes it: the same pacing and the same
/// words for the tool and `mtcp_restart`. Text goes to `out`; the caller writes it to
/// stderr.
pub struct Meter {
    style: Style,
    operation: &'static str,
    shown: bool,
    last_ns: u64,
    /// What was shown last, so that the end does not repeat it.
    last: Figures,
}

impl Meter {
    pub fn new(style: Style, operation: &'static str) -> Meter {
        Meter {
            style,
            operation,
            shown: false,
            last_ns: 0,
            last: Figures::default(),
        }
    }

    /// Shows `f` at time `now_ns` if that is due: JSON objects at once, text once the
    /// work is long (`SHOW_AFTER_NS`, `SHOW_FROM_BYTES`); then no more often than the
    /// style's interval.
    pub fn update(&mut self, now_ns: u64, f: &Figures, out: &mut impl Write) {
        let long = f.elapsed_ns >= SHOW_AFTER_NS || f.total >= SHOW_FROM_BYTES;
        if self.style != Style::Json && !long {
            return;
        }
        if self.shown && now_ns.saturating_sub(self.last_ns) < self.style.interval_ns() {
            return;
        }
        self.shown = true;
        self.last_ns = now_ns;
        self.last = *f;
        let _ = match self.style {
            Style::Terminal => {
                // Redrawn from the line's start; the rest of an earlier, longer one erased.
                let _ = out.write_str("\r");
                write_line(out, self.operation, f).and_then(|()| out.write_str("\x1b[K"))
            }
            Style::Lines => write_line(out, self.operation, f).and_then(|()| out.write_str("\n")),
            Style::Json => write_json(out, self.operation, f).and_then(|()| out.write_str("\n")),
        };
    }

    /// The end of the work, with its final figures: a terminal's line is cleared (what
    /// follows is written where it was), a log gets a last line if it had any, and JSON
    /// always ends with an object whose `done` is the work's total.
    pub fn finish(&mut self, f: &Figures, out: &mut impl Write) {
        let repeat = self.shown && self.last == *f;
        let _ = match self.style {
            Style::Terminal if self.shown => out.write_str("\r\x1b[K"),
            Style::Lines if self.shown && !repeat => {
                write_line(out, self.operation, f).and_then(|()| out.write_str("\n"))
            }
            Style::Json if !repeat => write_json(out, self.operation, f).and_then(|()| out.write_str("\n")),
            _ => Ok(()),
        };
        self.shown = false;
    }

    /// Whether anything was shown (and not cleared).
    pub fn shown(&self) -> bool {
        self.shown
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::String;

    #[test]
    fn records_round_trip_and_torn_ones_are_refused() {
        let r = Record {
            phase: PHASE_WRITING,
            done: 5 << 20,
            total: 1 << 30,
            started_ns: 123,
            updated_ns: 456,
        };
        let b = r.to_bytes();
        assert_eq!(Record::parse(&b), Some(r));
        for i in 0..RECORD_SIZE {
            let mut bad = b;
            bad[i] ^= 1;
            assert_eq!(Record::parse(&bad), None, "byte {i} changed");
        }
        assert_eq!(Record::parse(&b[..63]), None);
        let mut other = r;
        other.phase = 9;
        assert_eq!(Record::parse(&other.to_bytes()), None);
    }

    #[test]
    fn progress_files_are_named_as_status_files() {
        let p = ProcName::new(9, Some(77));
        assert_eq!(std::format!("{}", ProgressName(p)), "9@77.progress");
        assert_eq!(progress_file_owner(b"9@77.progress"), Some(p));
        assert_eq!(progress_file_owner(b"9.progress"), Some(ProcName::new(9, None)));
        assert_eq!(progress_file_owner(b"9.status"), None);
    }

    #[test]
    fn words_for_people() {
        let s = |v| std::format!("{}", Bytes(v));
        assert_eq!(s(0), "0 B");
        assert_eq!(s(1023), "1023 B");
        assert_eq!(s(1536), "1.5 KiB");
        assert_eq!(s(412 << 20), "412.0 MiB");
        assert_eq!(s((1 << 30) + (1 << 29)), "1.5 GiB");
        assert_eq!(s(u64::MAX), "16777215.9 TiB");
        assert_eq!(std::format!("{}", Seconds(1_234_567_890)), "1.234");
        let f = Figures {
            done: 256 << 20,
            total: 1 << 30,
            elapsed_ns: 500_000_000,
        };
        assert_eq!((f.rate(), f.percent()), (512 << 20, 25));
        let mut line = String::new();
        write_line(&mut line, "checkpoint", &f).unwrap();
        assert_eq!(line, "mtcp: checkpoint 256.0 MiB of 1.0 GiB (25%), 512.0 MiB/s");
        let mut json = String::new();
        write_json(&mut json, "restart", &f).unwrap();
        assert_eq!(
            json,
            "{\"type\":\"progress\",\"operation\":\"restart\",\"done\":268435456,\"total\":1073741824,\"seconds\":0.500,\"bytes_per_second\":536870912}"
        );
        assert_eq!(Figures::default().rate(), 0);
        assert_eq!(Figures::default().percent(), 100);
    }

    #[test]
    fn meter_pacing() {
        let small = |ms: u64| Figures {
            done: 1,
            total: 2,
            elapsed_ns: ms * 1_000_000,
        };
        let big = Figures {
            done: 1,
            total: SHOW_FROM_BYTES,
            elapsed_ns: 0,
        };
        let mut out = String::new();
        let mut m = Meter::new(Style::Terminal, "checkpoint");
        m.update(0, &small(100), &mut out);
        assert!(out.is_empty() && !m.shown(), "short, small work shows nothing");
        m.finish(&small(200), &mut out);
        assert!(out.is_empty(), "and clears nothing");
        m.update(1, &small(600), &mut out);
        assert!(
            out.starts_with("\rmtcp: checkpoint ") && out.ends_with("\x1b[K"),
            "{out:?}"
        );
        out.clear();
        m.update(50_000_000, &small(650), &mut out);
        assert!(out.is_empty(), "not twice within the interval");
        m.update(101_000_001, &small(700), &mut out);
        assert!(!out.is_empty());
        out.clear();
        m.finish(&small(800), &mut out);
        assert_eq!(out, "\r\x1b[K");

        let mut lines = Meter::new(Style::Lines, "restart");
        out.clear();
        lines.update(0, &big, &mut out);
        assert!(out.ends_with('\n') && !out.contains('\r'), "{out:?}");
        lines.finish(&Figures { done: big.total, ..big }, &mut out);
        assert_eq!(out.lines().count(), 2);

        let mut json = Meter::new(Style::Json, "restart");
        out.clear();
        json.finish(&small(1), &mut out);
        assert!(
            out.starts_with("{\"type\":\"progress\"") && out.ends_with("}\n"),
            "{out:?}"
        );
        out.clear();
        json.update(0, &small(2), &mut out);
        json.finish(&small(2), &mut out);
        assert_eq!(out.lines().count(), 1, "the end is not said twice: {out:?}");
        assert_eq!(Style::from_name(b"json"), Some(Style::Json));
        assert_eq!(Style::from_name(b"nope"), None);
    }
}
