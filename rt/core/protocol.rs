//! The contract between the runtime and the `mtcp` tool, written once: where the status
//! file lives and what its line says, the checkpoint timer's si_value, the ELF note that
//! marks a program carrying the runtime.
#![deny(unsafe_code)]

use core::fmt::{self, Display, Write};

/// The si_value the runtime's own periodic checkpoint timer sends; a request carrying
/// it (or 0) has no nonce of the tool's.
pub const TIMER_VALUE: usize = 0x6d74_6370;

/// The ELF note that marks the runtime: name "mtcp", this type, a 4-byte version.
pub const NOTE_NAME: &[u8] = b"mtcp\0";
pub const NOTE_TYPE: u32 = 1;
pub const NOTE_VERSION: u32 = 1;
/// The note as it sits in `.note.mtcp`: namesz, descsz, type, name (padded), version.
pub const RUNTIME_NOTE: [u32; 6] = [
    NOTE_NAME.len() as u32,
    4,
    NOTE_TYPE,
    u32::from_le_bytes([NOTE_NAME[0], NOTE_NAME[1], NOTE_NAME[2], NOTE_NAME[3]]),
    0,
    NOTE_VERSION,
];

/// The directory of status files for user `uid`.
pub struct StatusDir {
    pub uid: u32,
}

impl Display for StatusDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/tmp/.mtcp-{}", self.uid)
    }
}

/// The status file of process `pid` (run by `uid`); the runtime writes `tmp` first and
/// renames it over the real one, so a reader never sees a partial line.
pub struct StatusFile {
    pub uid: u32,
    pub pid: u32,
    pub tmp: bool,
}

impl Display for StatusFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = StatusDir { uid: self.uid };
        if self.tmp {
            write!(f, "{}/.{}.status.tmp", dir, self.pid)
        } else {
            write!(f, "{}/{}.status", dir, self.pid)
        }
    }
}

/// What a status line reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// The runtime runs (at start, and after a restart).
    Ready,
    /// A checkpoint wrote this image.
    Ok(&'a [u8]),
    /// A checkpoint failed, for this reason.
    Error(&'a [u8]),
}

/// One status line: `<seq> <nonce> ready -`, `<seq> <nonce> ok <image path>` or
/// `<seq> <nonce> error <message>`. `seq` grows with every line the process writes;
/// `nonce` is the tool's request (0 when nobody asked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status<'a> {
    pub seq: u64,
    pub nonce: u64,
    pub outcome: Outcome<'a>,
}

impl Status<'_> {
    /// The line's words up to the text (`<seq> <nonce> <word> `); the text and a newline
    /// follow.
    pub fn write_head(&self, w: &mut impl Write) -> fmt::Result {
        let word = match self.outcome {
            Outcome::Ready => "ready",
            Outcome::Ok(_) => "ok",
            Outcome::Error(_) => "error",
        };
        write!(w, "{} {} {} ", self.seq, self.nonce, word)
    }

    pub fn text(&self) -> &[u8] {
        match self.outcome {
            Outcome::Ready => b"-",
            Outcome::Ok(t) | Outcome::Error(t) => t,
        }
    }
}

/// Parses the first line of a status file; None for anything malformed.
pub fn parse_status(text: &[u8]) -> Option<Status<'_>> {
    let line = text.split(|&c| c == b'\n').next()?;
    let mut words = line.splitn(4, |&c| c == b' ');
    let seq = crate::maps::dec(words.next()?)?;
    let nonce = crate::maps::dec(words.next()?)?;
    let word = words.next()?;
    let tail = words.next().unwrap_or(b"");
    let outcome = match word {
        b"ready" => Outcome::Ready,
        b"ok" if !tail.is_empty() => Outcome::Ok(tail),
        b"error" => Outcome::Error(if tail.is_empty() { b"unknown error" } else { tail }),
        _ => return None,
    };
    Some(Status { seq, nonce, outcome })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::String;

    fn line(s: &Status) -> std::vec::Vec<u8> {
        let mut head = String::new();
        s.write_head(&mut head).unwrap();
        let mut v = head.into_bytes();
        v.extend_from_slice(s.text());
        v.push(b'\n');
        v
    }

    #[test]
    fn status_lines_round_trip() {
        for s in [
            Status {
                seq: 1,
                nonce: 0,
                outcome: Outcome::Ready,
            },
            Status {
                seq: 7,
                nonce: 12345,
                outcome: Outcome::Ok(b"/tmp/x y/ckpt_a_1.mtcp"),
            },
            Status {
                seq: u64::MAX,
                nonce: 2,
                outcome: Outcome::Error(b"cannot write: ENOSPC"),
            },
        ] {
            assert_eq!(parse_status(&line(&s)), Some(s));
        }
    }

    #[test]
    fn malformed_status_lines_are_refused() {
        for bad in [
            &b""[..],
            b"1",
            b"1 2",
            b"x 2 ok /a",
            b"1 2 ok",
            b"1 2 maybe /a",
            b"-1 2 ready -",
        ] {
            assert_eq!(parse_status(bad), None, "{:?}", core::str::from_utf8(bad));
        }
        assert_eq!(
            parse_status(b"3 4 error").map(|s| s.outcome),
            Some(Outcome::Error(b"unknown error"))
        );
    }

    #[test]
    fn paths_and_note() {
        let mut s = String::new();
        write!(
            s,
            "{} {}",
            StatusFile {
                uid: 5,
                pid: 9,
                tmp: false
            },
            StatusFile {
                uid: 5,
                pid: 9,
                tmp: true
            }
        )
        .unwrap();
        assert_eq!(s, "/tmp/.mtcp-5/9.status /tmp/.mtcp-5/.9.status.tmp");
        assert_eq!(RUNTIME_NOTE, [5, 4, 1, u32::from_le_bytes(*b"mtcp"), 0, 1]);
    }
}
