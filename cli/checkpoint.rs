//! `mtcp checkpoint`: checks that a process runs the runtime, asks it for a checkpoint (signal + nonce) and waits for its status file.

use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mtcp_core::protocol::{self, StatusFile, TIMER_VALUE};
use mtcp_core::{sys, Errno};

use crate::args::{Args, Operands, Opt, Subcommand, Value};
use crate::{fail, io_msg, usage, Result};

pub const COMMAND: Subcommand = Subcommand {
    name: "checkpoint",
    synopsis: "[--timeout SECS] PID",
    summary: "checkpoint a running process and print the image path",
    about: "\
Asks the mtcp runtime inside process PID to checkpoint it, waits until the image is
written and prints its path as the last line of output.",
    options: &[Opt {
        name: "--timeout",
        value: Value::Text("SECS"),
        help: "give up after SECS seconds (default 60)",
    }],
    notes: "",
    operands: Operands::One("PID"),
    run: main,
};

const DEFAULT_TIMEOUT: u64 = 60;
const POLL: Duration = Duration::from_millis(20);

fn main(args: Args) -> Result<u8> {
    let mut timeout = DEFAULT_TIMEOUT;
    for t in args.texts("--timeout") {
        timeout = match t.parse::<u32>() {
            Ok(n) if n > 0 && t.bytes().all(|c| c.is_ascii_digit()) => n as u64,
            _ => {
                return usage(format!(
                    "checkpoint: invalid --timeout '{}': expected a positive whole number of seconds",
                    t
                ))
            }
        };
    }
    let p = args.operands[0].to_string_lossy();
    let pid = match p.parse::<i32>() {
        Ok(n) if n > 0 && p.bytes().all(|c| c.is_ascii_digit()) => n,
        _ => return usage(format!("checkpoint: invalid PID '{}'", p)),
    };
    checkpoint(pid, timeout)
}

fn checkpoint(pid: i32, timeout: u64) -> Result<u8> {
    let status = match proc_status(pid)? {
        Some(s) if !is_dead(&s) => s,
        _ => return fail(format!("no process {}", pid)),
    };
    let sig = checkpoint_signal(pid)?;
    let caught = status_field(&status, "SigCgt:")
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .unwrap_or(0);
    if caught & (1u64 << (sig - 1)) == 0 {
        return fail(format!(
            "process {} does not run the mtcp runtime (signal {} is not caught)",
            pid,
            crate::signal::name(sig)
        ));
    }

    // The runtime writes under its own real uid; that is ours unless we are root.
    let our_uid = real_uid(&proc_status_self()?).unwrap_or(0);
    let uid = real_uid(&status).unwrap_or(our_uid);
    let path = status_path(uid, pid);
    // Catching the signal is not enough: a process that catches it for its own reasons
    // must not get it from us.
    if !runs_runtime(pid, &path) {
        return fail(format!(
            "process {} does not run the mtcp runtime (it catches {}, but has no runtime status file, no libmtcp.so and no linked-in runtime)",
            pid,
            crate::signal::name(sig)
        ));
    }
    remove_stale_status_files(&path);
    let old_seq = read_status(&path).map(|s| s.seq).unwrap_or(0);
    let nonce = make_nonce();
    send_signal(pid, sig, nonce, our_uid)?;

    let deadline = Instant::now() + Duration::from_secs(timeout);
    loop {
        if let Some(r) = poll_result(&path, old_seq, nonce) {
            return report(pid, r);
        }
        let alive = matches!(proc_status(pid), Ok(Some(ref s)) if !is_dead(s));
        if !alive {
            // It may have finished the image just before exiting.
            if let Some(r) = poll_result(&path, old_seq, nonce) {
                return report(pid, r);
            }
            return fail(format!("process {} exited during the checkpoint", pid));
        }
        if Instant::now() >= deadline {
            return fail(format!(
                "timed out after {} s waiting for the checkpoint of {}",
                timeout, pid
            ));
        }
        std::thread::sleep(POLL);
    }
}

fn report(pid: i32, r: Outcome) -> Result<u8> {
    match r {
        Outcome::Ok(image) => {
            println!("{}", image);
            Ok(0)
        }
        Outcome::Error(msg) => fail(format!("checkpoint of {} failed: {}", pid, msg)),
        Outcome::Ready => fail(format!("checkpoint of {} gave no result", pid)),
    }
}

/// The final line of the status file once it answers our request.
fn poll_result(path: &Path, old_seq: u64, nonce: u64) -> Option<Outcome> {
    let st = read_status(path)?;
    // Our random nonce identifies our result even if the file is a stale one left by an
    // earlier process with this pid (whose seq may be ahead). Another request's result
    // (periodic or a second `mtcp checkpoint`) may come first; two results later ours
    // has certainly been served.
    if st.outcome == Outcome::Ready || (st.nonce != nonce && st.seq < old_seq.saturating_add(2)) {
        return None;
    }
    Some(st.outcome)
}

/// Evidence that the runtime runs in `pid`: its status file written since the process
/// started (at runtime start or restart), libmtcp.so in its maps (a forked child of a
/// preloaded program), or an executable that links the runtime in (a forked child of a
/// static one).
fn runs_runtime(pid: i32, status_file: &Path) -> bool {
    if let (Some(started), Ok(meta)) = (process_start(pid), std::fs::metadata(status_file)) {
        if let Ok(written) = meta.modified() {
            // A file left by an earlier process with the same pid is older than this one.
            if written + Duration::from_secs(1) >= started {
                return true;
            }
        }
    }
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", pid)).unwrap_or_default();
    if maps.lines().any(|l| l.ends_with("/libmtcp.so")) {
        return true;
    }
    let exe = PathBuf::from(format!("/proc/{}/exe", pid));
    matches!(crate::elf::Elf::open(&exe).and_then(|e| e.carries_runtime()), Ok(true))
}

/// When `pid` started, from /proc/PID/stat (field 22, in clock ticks since boot; the
/// kernel's USER_HZ is 100 on x86) and the boot time in /proc/stat.
fn process_start(pid: i32) -> Option<std::time::SystemTime> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid)).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 = after_comm.split_whitespace().nth(19)?.parse().ok()?;
    let btime: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let since_epoch = Duration::from_secs(btime) + Duration::from_millis(ticks * 10);
    Some(std::time::UNIX_EPOCH + since_epoch)
}

/// Status files of processes that no longer exist (the runtime cannot remove its own
/// when the program exits).
fn remove_stale_status_files(ours: &Path) {
    let dir = match ours.parent() {
        Some(d) => d,
        None => return,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(_) => return,
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(pid) = name.strip_suffix(".status").and_then(|p| p.parse::<u32>().ok()) {
            if !Path::new(&format!("/proc/{}", pid)).exists() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The runtime is running; no checkpoint result yet.
    Ready,
    Ok(String),
    Error(String),
}

#[derive(Debug, PartialEq, Eq)]
pub struct Status {
    pub seq: u64,
    pub nonce: u64,
    pub outcome: Outcome,
}

pub fn status_path(uid: u32, pid: i32) -> PathBuf {
    PathBuf::from(
        StatusFile {
            uid,
            pid: pid as u32,
            tmp: false,
        }
        .to_string(),
    )
}

/// The status file's line (protocol::parse_status), with owned text.
fn read_status(path: &Path) -> Option<Status> {
    let text = std::fs::read(path).ok()?;
    let st = protocol::parse_status(&text)?;
    let owned = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let outcome = match st.outcome {
        protocol::Outcome::Ready => Outcome::Ready,
        protocol::Outcome::Ok(image) => Outcome::Ok(owned(image)),
        protocol::Outcome::Error(msg) => Outcome::Error(owned(msg)),
    };
    Some(Status {
        seq: st.seq,
        nonce: st.nonce,
        outcome,
    })
}

/// /proc/PID/status, or None if there is no such process.
fn proc_status(pid: i32) -> Result<Option<String>> {
    match std::fs::read_to_string(format!("/proc/{}/status", pid)) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        // ESRCH when the process goes away while we read.
        Err(e) if e.raw_os_error() == Some(3) => Ok(None),
        Err(e) => fail(format!("cannot read /proc/{}/status: {}", pid, io_msg(&e))),
    }
}

fn proc_status_self() -> Result<String> {
    std::fs::read_to_string("/proc/self/status")
        .or_else(|e| fail(format!("cannot read /proc/self/status: {}", io_msg(&e))))
}

fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|l| l.strip_prefix(key))
}

/// A zombie has exited; only its parent has not reaped it yet.
fn is_dead(status: &str) -> bool {
    matches!(
        status_field(status, "State:").map(|s| s.trim_start().as_bytes().first()),
        Some(Some(b'Z' | b'X'))
    )
}

/// The first (real) uid on the `Uid:` line.
fn real_uid(status: &str) -> Option<u32> {
    status_field(status, "Uid:")?.split_whitespace().next()?.parse().ok()
}

/// MTCP_SIGNAL from the process's initial environment, read as the runtime reads it.
fn checkpoint_signal(pid: i32) -> Result<u32> {
    let environ = match std::fs::read(format!("/proc/{}/environ", pid)) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return fail(format!("no process {}", pid)),
        Err(e) => {
            return fail(format!(
                "cannot read the environment of process {}: {}",
                pid,
                io_msg(&e)
            ))
        }
    };
    let value = environ.split(|&c| c == 0).find_map(|e| e.strip_prefix(b"MTCP_SIGNAL="));
    match value {
        None | Some(b"") => Ok(crate::signal::DEFAULT_SIGNAL),
        Some(v) => {
            let v = String::from_utf8_lossy(v);
            match crate::signal::parse(&v) {
                Some(sig) => Ok(sig),
                None => fail(format!(
                    "process {} has MTCP_SIGNAL={}, which the runtime cannot use",
                    pid, v
                )),
            }
        }
    }
}

/// A random nonzero 31-bit number that tells our result from other requests'.
fn make_nonce() -> u64 {
    let mut b = [0u8; 4];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok();
    let mut n = if random { u32::from_le_bytes(b) } else { 0 };
    if n & 0x7fff_ffff == 0 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        n = t.subsec_nanos() ^ (t.as_secs() as u32) ^ std::process::id().rotate_left(16);
    }
    match n & 0x7fff_ffff {
        // The runtime reads 0 and its own timer's value as "no nonce".
        0 => 1,
        v if v as usize == TIMER_VALUE => 1,
        v => v as u64,
    }
}

/// Queues `sig` to `pid` with the nonce as si_value (sigqueue).
fn send_signal(pid: i32, sig: u32, nonce: u64, uid: u32) -> Result<()> {
    match sys::sigqueue(pid as u32, sig, nonce as u32, std::process::id(), uid) {
        Ok(()) => Ok(()),
        Err(Errno::ESRCH) => fail(format!("no process {}", pid)),
        Err(e) => fail(format!(
            "cannot signal process {}: {}",
            pid,
            io_msg(&std::io::Error::from_raw_os_error(e.into_raw()))
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields() {
        let s = "Name:\tcat\nState:\tZ (zombie)\nUid:\t1000\t1001\t1002\t1003\nSigCgt:\t0000000000000800\n";
        assert!(is_dead(s));
        assert_eq!(real_uid(s), Some(1000));
        assert!(!is_dead("State:\tS (sleeping)\n"));
        let me = proc_status_self().unwrap();
        assert!(real_uid(&me).is_some());
        assert!(!is_dead(&me));
    }

    #[test]
    fn nonce_is_31_bit_nonzero() {
        for _ in 0..100 {
            let n = make_nonce();
            assert!(n > 0 && n <= 0x7fff_ffff);
        }
    }

    #[test]
    fn polling_matches_nonce() {
        let dir = crate::TempDir::new("ckpt-poll");
        let p = dir.join("1.status");
        std::fs::write(&p, "5 99 ok /old\n").unwrap();
        assert_eq!(poll_result(&p, 5, 42), None, "an old result is not ours");
        std::fs::write(&p, "6 99 ok /other\n").unwrap();
        assert_eq!(poll_result(&p, 5, 42), None, "another request's result is not ours");
        std::fs::write(&p, "7 99 ok /later\n").unwrap();
        assert_eq!(poll_result(&p, 5, 42), Some(Outcome::Ok("/later".into())));
        assert!(p.exists(), "someone else's result stays");
        std::fs::write(&p, "1 42 ok /stale-file-restarted\n").unwrap();
        assert_eq!(
            poll_result(&p, 5, 42),
            Some(Outcome::Ok("/stale-file-restarted".into())),
            "our nonce wins over a stale seq"
        );
        std::fs::write(&p, "6 42 error boom\n").unwrap();
        assert_eq!(poll_result(&p, 5, 42), Some(Outcome::Error("boom".into())));
        assert!(p.exists(), "the file stays: it also tells that the runtime runs");
        std::fs::write(&p, "9 0 ready -\n").unwrap();
        assert_eq!(poll_result(&p, 5, 42), None, "a ready line is no result");
    }

    #[test]
    fn signal_self_errors() {
        // A process that does not exist.
        assert!(checkpoint(i32::MAX, 1).is_err());
    }
}
