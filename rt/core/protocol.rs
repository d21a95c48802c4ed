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

/// The directory of status files for user `uid`: `$XDG_RUNTIME_DIR/mtcp` where the
/// process's `XDG_RUNTIME_DIR` is usable (see `usable_runtime_dir`), `/tmp/.mtcp-<uid>`
/// otherwise. The runtime and the tool decide alike, from the process's environment.
pub struct StatusDir<'a> {
    pub uid: u32,
    pub runtime_dir: Option<&'a [u8]>,
}

impl Display for StatusDir<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.runtime_dir {
            Some(d) => write!(f, "{}/mtcp", crate::fmt::Lossy(d)),
            None => write!(f, "/tmp/.mtcp-{}", self.uid),
        }
    }
}

/// Whether `XDG_RUNTIME_DIR=dir` may hold the status directory: an absolute path of a
/// directory (not a link) that `uid` owns and nobody else may write to, as a login
/// session's is. `owner_and_mode` stats it (the caller's way: raw syscalls or std).
pub fn usable_runtime_dir(dir: &[u8], uid: u32, owner_and_mode: impl FnOnce(&[u8]) -> Option<(u32, u32)>) -> bool {
    const S_IFMT: u32 = 0o170000;
    const S_IFDIR: u32 = 0o040000;
    dir.starts_with(b"/")
        && dir.len() < 200
        && !dir.contains(&b'\n')
        && owner_and_mode(dir)
            .is_some_and(|(owner, mode)| owner == uid && mode & S_IFMT == S_IFDIR && mode & 0o022 == 0)
}

/// A process as status and temporary file names name it: its pid as it sees it itself,
/// and its pid namespace (the inode number of /proc/PID/ns/pid). Two processes with one
/// pid in two namespaces (a restarted copy in a namespace of its own beside another)
/// must not share a name: `<pid>` in the initial pid namespace, `<pid>@<namespace>`
/// in any other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcName {
    pub pid: u32,
    /// INITIAL_PID_NAMESPACE where unknown (a system without /proc/PID/ns).
    pub pidns: u64,
}

/// The inode number of the initial pid namespace (PROC_PID_INIT_INO,
/// include/linux/proc_ns.h), the same on every kernel.
pub const INITIAL_PID_NAMESPACE: u64 = 0xEFFF_FFFC;

impl ProcName {
    pub fn new(pid: u32, pidns: Option<u64>) -> ProcName {
        ProcName {
            pid,
            pidns: pidns.unwrap_or(INITIAL_PID_NAMESPACE),
        }
    }
}

impl Display for ProcName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pidns == INITIAL_PID_NAMESPACE {
            write!(f, "{}", self.pid)
        } else {
            write!(f, "{}@{}", self.pid, self.pidns)
        }
    }
}

/// Reads a ProcName as Display writes it; None for anything else.
pub fn parse_proc_name(s: &[u8]) -> Option<ProcName> {
    let mut parts = s.splitn(2, |&c| c == b'@');
    let pid = crate::maps::dec(parts.next()?)?;
    let pidns = match parts.next() {
        None => INITIAL_PID_NAMESPACE,
        Some(ns) => crate::maps::dec(ns).filter(|&n| n != INITIAL_PID_NAMESPACE)?,
    };
    (pid > 0 && pid <= u32::MAX as u64).then_some(ProcName { pid: pid as u32, pidns })
}

/// The status file of process `proc` in `dir`.
pub struct StatusFile<'a> {
    pub dir: StatusDir<'a>,
    pub proc: ProcName,
}

impl Display for StatusFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}.status", self.dir, self.proc)
    }
}

/// The process a status file's name (`<ProcName>.status`) belongs to.
pub fn status_file_owner(name: &[u8]) -> Option<ProcName> {
    parse_proc_name(name.strip_suffix(b".status")?)
}

/// The temporary file a status file is written to before it is renamed into place:
/// `.<ProcName>.<16 hex digits>.status.tmp`.
pub struct TempStatusName {
    pub proc: ProcName,
    pub random: u64,
}

impl Display for TempStatusName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, ".{}.{:016x}.status.tmp", self.proc, self.random)
    }
}

/// The writer of a temporary status file (see TempStatusName).
pub fn temp_status_writer(name: &[u8]) -> Option<ProcName> {
    let stem = name.strip_prefix(b".")?.strip_suffix(b".status.tmp")?;
    let (proc, random) = stem.split_at(stem.iter().position(|&c| c == b'.')?);
    let random = &random[1..];
    (random.len() == 16 && random.iter().all(u8::is_ascii_hexdigit))
        .then(|| parse_proc_name(proc))
        .flatten()
}

/// The temporary file an image is written to before it is renamed into place:
/// `.<image name>.<writer's ProcName>.<16 hex digits>.tmp`, in the image's directory.
pub struct TempImageName<'a> {
    pub image: &'a [u8],
    pub writer: ProcName,
    pub random: u64,
}

impl Display for TempImageName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            ".{}.{}.{:016x}.tmp",
            crate::fmt::Lossy(self.image),
            self.writer,
            self.random
        )
    }
}

/// The writer, if `name` is a temporary image's (see TempImageName).
pub fn temp_image_writer(name: &[u8]) -> Option<ProcName> {
    let stem = name.strip_prefix(b".")?.strip_suffix(b".tmp")?;
    let mut parts = stem.rsplitn(3, |&c| c == b'.');
    let random = parts.next()?;
    let writer = parse_proc_name(parts.next()?)?;
    let image = parts.next()?;
    let ours = image.ends_with(b".mtcp") && random.len() == 16 && random.iter().all(u8::is_ascii_hexdigit);
    ours.then_some(writer)
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

/// How many lines a status file keeps, newest first: a request's answer stays readable
/// while a few later checkpoints complete.
pub const STATUS_HISTORY: usize = 4;

/// One status line: `<seq> <nonces> ready -`, `<seq> <nonces> ok <image path>` or
/// `<seq> <nonces> error <message>`. `seq` grows with every line the process writes;
/// `<nonces>` are the tool's requests this line answers, comma-separated (`0` when
/// nobody asked). The text is escaped (see `escape`), so any path fits on one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status<'a> {
    pub seq: u64,
    /// The nonce field as written: decimal numbers separated by commas.
    pub nonces: &'a [u8],
    pub outcome: Outcome<'a>,
}

impl Status<'_> {
    /// The line's words up to the text (`<seq> <nonces> <word> `); the escaped text and a
    /// newline follow.
    pub fn write_head(&self, w: &mut impl Write) -> fmt::Result {
        let word = match self.outcome {
            Outcome::Ready => "ready",
            Outcome::Ok(_) => "ok",
            Outcome::Error(_) => "error",
        };
        write!(w, "{} ", self.seq)?;
        for &c in self.nonces {
            w.write_char(c as char)?;
        }
        write!(w, " {} ", word)
    }

    /// The text as stored (still escaped).
    pub fn text(&self) -> &[u8] {
        match self.outcome {
            Outcome::Ready => b"-",
            Outcome::Ok(t) | Outcome::Error(t) => t,
        }
    }

    /// Whether this line answers the request that carried `nonce` (never 0).
    pub fn answers(&self, nonce: u64) -> bool {
        nonce != 0
            && self
                .nonces
                .split(|&c| c == b',')
                .any(|n| crate::maps::dec(n) == Some(nonce))
    }
}

/// Parses one status line; None for anything malformed.
pub fn parse_status_line(line: &[u8]) -> Option<Status<'_>> {
    let mut words = line.splitn(4, |&c| c == b' ');
    let seq = crate::maps::dec(words.next()?)?;
    let nonces = words.next()?;
    if nonces.split(|&c| c == b',').any(|n| crate::maps::dec(n).is_none()) {
        return None;
    }
    let word = words.next()?;
    let tail = words.next().unwrap_or(b"");
    let outcome = match word {
        b"ready" => Outcome::Ready,
        b"ok" if !tail.is_empty() => Outcome::Ok(tail),
        b"error" => Outcome::Error(if tail.is_empty() { b"unknown error" } else { tail }),
        _ => return None,
    };
    Some(Status { seq, nonces, outcome })
}

/// The newest line of a status file; None for anything malformed.
pub fn parse_status(text: &[u8]) -> Option<Status<'_>> {
    parse_status_line(text.split(|&c| c == b'\n').next()?)
}

/// Every well-formed line of a status file, newest first.
pub fn status_lines(text: &[u8]) -> impl Iterator<Item = Status<'_>> {
    text.split(|&c| c == b'\n').filter_map(parse_status_line)
}

/// Hands `text` to `emit` in pieces with `%` and newline escaped as `%25` and `%0A`,
/// so that a path with any bytes stays one line.
pub fn escape(text: &[u8], mut emit: impl FnMut(&[u8])) {
    let mut start = 0;
    for (i, &c) in text.iter().enumerate() {
        let code: &[u8] = match c {
            b'%' => b"%25",
            b'\n' => b"%0A",
            _ => continue,
        };
        emit(&text[start..i]);
        emit(code);
        start = i + 1;
    }
    emit(&text[start..]);
}

/// Undoes `escape` into `out` (which must be at least as long as `text`); returns the
/// length, or None for a malformed escape.
pub fn unescape(text: &[u8], out: &mut [u8]) -> Option<usize> {
    let (mut i, mut n) = (0, 0);
    while i < text.len() {
        let c = match text[i] {
            b'%' => {
                let code = text.get(i + 1..i + 3)?;
                i += 2;
                match code {
                    b"25" => b'%',
                    b"0A" => b'\n',
                    _ => return None,
                }
            }
            c => c,
        };
        *out.get_mut(n)? = c;
        n += 1;
        i += 1;
    }
    Some(n)
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
                nonces: b"0",
                outcome: Outcome::Ready,
            },
            Status {
                seq: 7,
                nonces: b"12345,99",
                outcome: Outcome::Ok(b"/tmp/x y/ckpt_a_1.mtcp"),
            },
            Status {
                seq: u64::MAX,
                nonces: b"2",
                outcome: Outcome::Error(b"cannot write: ENOSPC"),
            },
        ] {
            assert_eq!(parse_status(&line(&s)), Some(s));
        }
        let two = b"8 5 ok /b\n7 3,4 ok /a\n";
        let lines: std::vec::Vec<_> = status_lines(two).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(parse_status(two).unwrap().seq, 8, "the newest line comes first");
        assert!(lines[1].answers(4) && lines[1].answers(3) && !lines[1].answers(5));
        assert!(!lines[0].answers(0), "0 is nobody's nonce");
        assert!(parse_status(b"1 0 ready -").unwrap().nonces == b"0");
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
            b"1 2, ok /a",
            b"1 ,2 ok /a",
            b"1 2,x ok /a",
        ] {
            assert_eq!(parse_status(bad), None, "{:?}", core::str::from_utf8(bad));
        }
        assert_eq!(
            parse_status(b"3 4 error").map(|s| s.outcome),
            Some(Outcome::Error(b"unknown error"))
        );
    }

    #[test]
    fn any_path_fits_one_line() {
        for text in [&b""[..], b"plain", b"%", b"\n", b"a%0Ab\n%25\n\nz%", b"\xff\xfe/x"] {
            let mut escaped = std::vec::Vec::new();
            escape(text, |p| escaped.extend_from_slice(p));
            assert!(!escaped.contains(&b'\n'));
            let mut out = std::vec![0u8; escaped.len()];
            let n = unescape(&escaped, &mut out).unwrap();
            assert_eq!(&out[..n], text);
        }
        let mut out = [0u8; 8];
        assert_eq!(unescape(b"%2", &mut out), None);
        assert_eq!(unescape(b"%41", &mut out), None);
    }

    #[test]
    fn temporary_image_names() {
        let mut s = String::new();
        let name = TempImageName {
            image: b"ckpt_a.b_7.mtcp",
            writer: ProcName::new(42, None),
            random: 0xabc,
        };
        write!(s, "{}", name).unwrap();
        assert_eq!(s, ".ckpt_a.b_7.mtcp.42.0000000000000abc.tmp");
        assert_eq!(temp_image_writer(s.as_bytes()), Some(ProcName::new(42, None)));
        s.clear();
        let in_ns = ProcName::new(42, Some(4026532999));
        let name = TempImageName {
            image: b"ckpt_a.b_7.mtcp",
            writer: in_ns,
            random: 0xabc,
        };
        write!(s, "{}", name).unwrap();
        assert_eq!(s, ".ckpt_a.b_7.mtcp.42@4026532999.0000000000000abc.tmp");
        assert_eq!(temp_image_writer(s.as_bytes()), Some(in_ns));
        for other in [
            &b".ckpt_a_7.mtcp.tmp"[..],
            b".notes.42.0000000000000abc.tmp",
            b"ckpt_a_7.mtcp.42.0000000000000abc.tmp",
            b".ckpt_a_7.mtcp.x.0000000000000abc.tmp",
            b".ckpt_a_7.mtcp.42.000000000000abc.tmp",
            b".ckpt_a_7.mtcp.0.0000000000000abc.tmp",
            b".ckpt_a_7.mtcp.42@.0000000000000abc.tmp",
            b".ckpt_a_7.mtcp.42@4026531836.0000000000000abc.tmp",
        ] {
            assert_eq!(temp_image_writer(other), None, "{:?}", core::str::from_utf8(other));
        }
    }

    #[test]
    fn paths_and_note() {
        let mut s = String::new();
        let tmp = StatusDir {
            uid: 5,
            runtime_dir: None,
        };
        let run = StatusDir {
            uid: 5,
            runtime_dir: Some(b"/run/user/5"),
        };
        write!(
            s,
            "{} {}",
            StatusFile {
                dir: tmp,
                proc: ProcName::new(9, None)
            },
            StatusFile {
                dir: run,
                proc: ProcName::new(9, Some(77))
            }
        )
        .unwrap();
        assert_eq!(s, "/tmp/.mtcp-5/9.status /run/user/5/mtcp/9@77.status");
        assert_eq!(status_file_owner(b"9@77.status"), Some(ProcName::new(9, Some(77))));
        assert_eq!(status_file_owner(b"9.status"), Some(ProcName::new(9, None)));
        assert_eq!(status_file_owner(b"9@x.status"), None);
        s.clear();
        let tmp = TempStatusName {
            proc: ProcName::new(9, Some(77)),
            random: 0xabc,
        };
        write!(s, "{}", tmp).unwrap();
        assert_eq!(s, ".9@77.0000000000000abc.status.tmp");
        assert_eq!(temp_status_writer(s.as_bytes()), Some(tmp.proc));
        assert_eq!(temp_status_writer(b".9.abc.status.tmp"), None);
        let dir = |owner, mode| move |_: &[u8]| Some((owner, mode));
        assert!(usable_runtime_dir(b"/run/user/5", 5, dir(5, 0o040700)));
        assert!(
            !usable_runtime_dir(b"/run/user/5", 5, dir(6, 0o040700)),
            "another user's"
        );
        assert!(!usable_runtime_dir(b"/run/user/5", 5, dir(5, 0o040777)), "open to all");
        assert!(!usable_runtime_dir(b"/run/user/5", 5, dir(5, 0o120777)), "a link");
        assert!(!usable_runtime_dir(b"run/user/5", 5, dir(5, 0o040700)), "relative");
        assert!(!usable_runtime_dir(b"/gone", 5, |_| None));
        assert_eq!(RUNTIME_NOTE, [5, 4, 1, u32::from_le_bytes(*b"mtcp"), 0, 1]);
    }
}
