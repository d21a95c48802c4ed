//! `mtcp checkpoint`: checks that a process runs the runtime, asks it for a checkpoint (signal + nonce) and waits for its status file.

use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mtcp_core::fmt::JsonStr;
use mtcp_core::progress::{ProgressFile, Record, Seconds};
use mtcp_core::protocol::{self, StatusFile, TIMER_VALUE};
use mtcp_core::{sys, Errno};

use crate::args::{Args, Operands, Opt, Subcommand, Value};
use crate::progress::{self, ProgressLine, Report};
use crate::{fail, io_msg, usage, Result};

pub const COMMAND: Subcommand = Subcommand {
    name: "checkpoint",
    synopsis: "[--timeout SECS] [--progress] [--quiet] [--json] PID",
    summary: "checkpoint a running process and print the image path",
    about: "\
Asks the mtcp runtime inside process PID to checkpoint it, waits until the image is
written and prints its path as the last line of output. On a terminal, a line on
stderr shows how far a long checkpoint has come (bytes written of the image's size,
and the rate).",
    options: &[
        Opt {
            name: "--timeout",
            value: Value::Text("SECS"),
            help: "give up after SECS seconds (default 60)",
        },
        progress::PROGRESS,
        progress::QUIET,
        progress::json(
            "print one JSON object instead of the path (image, bytes, seconds);
show progress as JSON objects on stderr",
        ),
    ],
    notes: "\
With --json, stdout is one object: {\"type\":\"checkpoint\",\"ok\":true,\"pid\":PID,
\"image\":PATH,\"bytes\":N,\"seconds\":S,\"bytes_per_second\":N} (bytes and the rate are
null where the runtime reported no progress), or on failure {\"type\":\"checkpoint\",
\"ok\":false,\"pid\":PID,\"error\":MESSAGE}, besides the error on stderr. Progress objects:
{\"type\":\"progress\",\"operation\":\"checkpoint\",\"done\":N,\"total\":N,\"seconds\":S,
\"bytes_per_second\":N}, the last one with done equal to total.",
    operands: Operands::One("PID"),
    run: main,
};

pub const DEFAULT_TIMEOUT: u64 = 60;
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
    checkpoint(pid, timeout, &Report::from_args("checkpoint", &args)?)
}

fn checkpoint(pid: i32, timeout: u64, report: &Report) -> Result<u8> {
    let started = Instant::now();
    let mut line = report.meter("checkpoint");
    let r = request(pid, timeout, &mut |rec| {
        if let Some(l) = line.as_mut() {
            l.update(rec)
        }
    });
    if let Some(l) = line.as_mut() {
        l.finish();
    }
    let r = r.and_then(|r| match r {
        Outcome::Ok(image) => Ok(image),
        Outcome::Error(msg) => fail(format!("checkpoint of {} failed: {}", pid, msg)),
    });
    match (r, report.json) {
        (Ok(image), false) => print_path(&image),
        (Ok(image), true) => print_json(&json_result(pid, &image, started.elapsed(), line.as_ref())),
        (Err(crate::Error::Fail(msg) | crate::Error::Usage(msg)), true) => {
            print_json(&format!(
                "{{\"type\":\"checkpoint\",\"ok\":false,\"pid\":{},\"error\":{}}}",
                pid,
                JsonStr(msg.as_bytes())
            ))?;
            fail(msg)
        }
        (Err(e), false) => Err(e),
    }
}

/// `mtcp checkpoint --json`'s answer: the image, its size as the runtime reported it
/// (null without a report), the time from request to answer and the writing rate.
fn json_result(pid: i32, image: &[u8], took: Duration, line: Option<&ProgressLine>) -> String {
    let figures = line.and_then(ProgressLine::figures);
    let (bytes, rate) = match figures {
        Some(f) => (f.total.to_string(), f.rate().to_string()),
        None => ("null".to_string(), "null".to_string()),
    };
    format!(
        "{{\"type\":\"checkpoint\",\"ok\":true,\"pid\":{},\"image\":{},\"bytes\":{},\"seconds\":{},\"bytes_per_second\":{}}}",
        pid,
        JsonStr(image),
        bytes,
        Seconds(took.as_nanos() as u64),
        rate
    )
}

/// Asks the runtime in `pid` for a checkpoint and waits up to `timeout` seconds for its
/// answer: the image's path or the runtime's reason for failing. An `Err` is a failure
/// on our side (no such process, no runtime in it, no answer in time). Each progress
/// record the runtime writes for this checkpoint meanwhile goes to `on_progress`, the
/// last one (the image written) before the answer returns.
pub fn request(pid: i32, timeout: u64, on_progress: &mut dyn FnMut(&Record)) -> Result<Outcome> {
    let pid = restored_program(pid, Instant::now() + Duration::from_secs(timeout))?;
    let status = match proc_status(pid)? {
        Some(s) if !is_dead(&s) => s,
        _ => return fail(format!("no process {}", pid)),
    };
    let environ = environ_of(pid)?;
    let sig = checkpoint_signal(pid, &environ)?;
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
    let path = status_path(uid, proc_name(pid, &status), &environ);
    let progress_file = PathBuf::from(
        ProgressFile {
            dir: status_dir(uid, &environ),
            proc: proc_name(pid, &status),
        }
        .to_string(),
    );
    // Catching the signal is not enough: a process that catches it for its own reasons
    // must not get it from us.
    if !runs_runtime(pid, &path) {
        return fail(format!(
            "process {} does not run the mtcp runtime (it catches {}, but has no runtime status file, no libmtcp.so and no linked-in runtime)",
            pid,
            crate::signal::name(sig)
        ));
    }
    // Before anything is sent: a status file we could not trust is an error now.
    let mut newest = read_status_file(&path, uid)?.as_deref().and_then(first_line);
    // Told of each change to the status directory, we answer as soon as the runtime
    // does; the poll interval is only the upper bound (a watch may be refused).
    let watch = path
        .parent()
        .and_then(|dir| sys::watch::watch_dir_changes(dir.as_os_str().as_encoded_bytes()).ok());
    let nonce = make_nonce();
    let quiet = quiet_delivery_allowed(&environ);
    // Records of earlier checkpoints (or of an earlier process with this pid) are older.
    let asked_ns = sys::monotonic_ns();
    let mut last_progress = None;
    let mut look_at_progress = || {
        if let Some(rec) = read_progress(&progress_file, uid, asked_ns) {
            if last_progress != Some(rec) {
                last_progress = Some(rec);
                on_progress(&rec);
            }
        }
    };
    send_request(pid, sig, nonce, our_uid, quiet)?;

    let deadline = Instant::now() + Duration::from_secs(timeout);
    loop {
        // One read a turn: the answer and the newest line must come from the same text,
        // or an answer written between two reads would pass for a checkpoint that ended
        // without answering us, and we would ask for a second one.
        look_at_progress();
        let text = read_status_file(&path, uid)?;
        if let Some(r) = text.as_deref().and_then(|t| answer_in(t, nonce)) {
            // The image's last record is written before the answer.
            look_at_progress();
            return Ok(r);
        }
        // A checkpoint ended, or the process restarted, without answering us: ordinary
        // signals do not queue, so ours was merged into one already pending. Ask again,
        // with the same nonce (the runtime serves a nonce it has answered only once).
        let now = text.as_deref().and_then(first_line);
        if now != newest {
            newest = now;
            send_request(pid, sig, nonce, our_uid, quiet)?;
        }
        let alive = matches!(proc_status(pid), Ok(Some(ref s)) if !is_dead(s));
        if !alive {
            // It may have finished the image just before exiting.
            if let Some(r) = read_status_file(&path, uid)?.and_then(|t| answer_in(&t, nonce)) {
                return Ok(r);
            }
            return fail(format!("process {} exited during the checkpoint", pid));
        }
        if Instant::now() >= deadline {
            return fail(format!(
                "timed out after {} s waiting for the checkpoint of {}",
                timeout, pid
            ));
        }
        match &watch {
            Some(w) => {
                sys::watch::wait_dir_change(w, POLL.as_millis() as u32);
            }
            None => std::thread::sleep(POLL),
        }
    }
}

fn print_path(image: &[u8]) -> Result<u8> {
    // The path as bytes, exactly: it may hold any byte but NUL.
    let mut out = std::io::stdout().lock();
    out.write_all(image)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .or_else(|e| fail(format!("cannot print the image path: {}", io_msg(&e))))?;
    Ok(0)
}

fn print_json(object: &str) -> Result<u8> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", object)
        .and_then(|()| out.flush())
        .or_else(|e| fail(format!("cannot print the result: {}", io_msg(&e))))?;
    Ok(0)
}

/// This checkpoint's progress record, if there is a whole one written since `asked_ns`
/// in a file we can trust (as the status file).
fn read_progress(path: &Path, uid: u32, asked_ns: u64) -> Option<Record> {
    let text = read_status_file(path, uid).ok()??;
    Record::parse(&text).filter(|r| r.started_ns >= asked_ns)
}

/// The answer to our request in the status file's text, if it has one: only a line that
/// carries our own random nonce is ours (another request's result, or a file an earlier
/// process with this pid left, never is).
fn answer_in(text: &[u8], nonce: u64) -> Option<Outcome> {
    for st in protocol::status_lines(text).filter(|st| st.answers(nonce)) {
        let mut bytes = vec![0u8; st.text().len()];
        let Some(n) = protocol::unescape(st.text(), &mut bytes) else {
            continue;
        };
        bytes.truncate(n);
        match st.outcome {
            protocol::Outcome::Ok(_) => return Some(Outcome::Ok(bytes)),
            protocol::Outcome::Error(_) => return Some(Outcome::Error(String::from_utf8_lossy(&bytes).into_owned())),
            protocol::Outcome::Ready => {}
        }
    }
    None
}

/// The newest line of the status file's text, as written.
fn first_line(text: &[u8]) -> Option<Vec<u8>> {
    text.split(|&c| c == b'\n').next().map(<[u8]>::to_vec)
}

/// The status file's contents, if there is one and it can be trusted: a regular file of
/// `uid`'s, in a directory of `uid`'s that nobody else may write to. A status directory
/// or file another user made (planted in /tmp, say) is an error, never read.
fn read_status_file(path: &Path, uid: u32) -> Result<Option<Vec<u8>>> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let dir = path.parent().unwrap_or(Path::new("/"));
    let untrusted = |what: &Path, md: &std::fs::Metadata| {
        fail(format!(
            "{} belongs to uid {} (mode {:o}), not to the process's user {} alone: refusing to trust it (remove it)",
            what.display(),
            md.uid(),
            md.mode() & 0o7777,
            uid
        ))
    };
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return fail(format!("cannot read {}: {}", dir.display(), io_msg(&e))),
        Ok(md) if !md.is_dir() || md.uid() != uid || md.mode() & 0o022 != 0 => return untrusted(dir, &md),
        Ok(_) => {}
    }
    const O_NOFOLLOW: i32 = 0o400000;
    const O_NONBLOCK: i32 = 0o4000;
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NOFOLLOW | O_NONBLOCK)
        .open(path)
    {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return fail(format!("cannot read {}: {}", path.display(), io_msg(&e))),
        Ok(f) => f,
    };
    let md = file
        .metadata()
        .or_else(|e| fail(format!("cannot read {}: {}", path.display(), io_msg(&e))))?;
    if !md.is_file() || md.uid() != uid {
        return untrusted(path, &md);
    }
    let mut text = Vec::new();
    (&file)
        .take(1 << 20)
        .read_to_end(&mut text)
        .or_else(|e| fail(format!("cannot read {}: {}", path.display(), io_msg(&e))))?;
    Ok(Some(text))
}

/// Evidence that the runtime runs in `pid`: its status file written since the process
/// started (at runtime start or restart), libmtcp.so in its maps (a forked child of a
/// preloaded program), or an executable that links the runtime in (a forked child of a
/// static one).
fn runs_runtime(pid: i32, status_file: &Path) -> bool {
    if let (Some(started), Ok(meta)) = (process_start(pid), std::fs::symlink_metadata(status_file)) {
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

/// How our request ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The image's path, as bytes.
    Ok(Vec<u8>),
    Error(String),
}

/// Where the runtime in process `proc` (run by `uid`, with this initial environment)
/// keeps its status file: decided as the runtime decides it (protocol::StatusDir).
pub fn status_path(uid: u32, proc: protocol::ProcName, environ: &[u8]) -> PathBuf {
    PathBuf::from(
        StatusFile {
            dir: status_dir(uid, environ),
            proc,
        }
        .to_string(),
    )
}

/// The process `pid` as it names itself: its pid in its own pid namespace (the last on
/// the `NSpid:` line) and that namespace.
pub fn proc_name(pid: i32, status: &str) -> protocol::ProcName {
    use std::os::unix::fs::MetadataExt;
    let inner = status_field(status, "NSpid:")
        .and_then(|l| l.split_whitespace().last())
        .and_then(|p| p.parse::<u32>().ok())
        .unwrap_or(pid as u32);
    let pidns = std::fs::metadata(format!("/proc/{}/ns/pid", pid)).ok().map(|m| m.ino());
    protocol::ProcName::new(inner, pidns)
}

/// The program behind `pid`: `pid` itself, or, where `pid` is the mtcp_restart that
/// stays behind as the pid the shell knows while the program runs with its old ids (as
/// its child, in namespaces of its own or not), that child, once its restore is done
/// (waited for until `deadline`).
pub fn restored_program(pid: i32, deadline: Instant) -> Result<i32> {
    if !is_supervisor(pid) {
        return Ok(pid);
    }
    loop {
        let programs: Vec<i32> = children(pid).into_iter().filter(|&c| !is_supervisor(c)).collect();
        match programs[..] {
            [program] => return Ok(program),
            [] if Instant::now() < deadline && is_supervisor(pid) => std::thread::sleep(POLL),
            [] => {
                return fail(format!(
                    "process {} is mtcp_restart, and no restored program runs under it",
                    pid
                ))
            }
            _ => {
                return fail(format!(
                    "process {} is mtcp_restart, with more than one child: {:?}",
                    pid, programs
                ))
            }
        }
    }
}

/// An mtcp_restart that has not become the program: its name is still mtcp_restart's
/// (the restore gives the program its own).
fn is_supervisor(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{}/comm", pid)).is_ok_and(|c| c.trim_end() == "mtcp_restart")
}

/// The children of `pid`: /proc/PID/task/*/children, or, where the kernel lacks it, every
/// process whose parent is `pid`.
fn children(pid: i32) -> Vec<i32> {
    let mut kids = Vec::new();
    let listed = std::fs::read_dir(format!("/proc/{}/task", pid)).map(|tasks| {
        for t in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
                kids.extend(text.split_whitespace().filter_map(|c| c.parse::<i32>().ok()));
            }
        }
    });
    if listed.is_ok() && !kids.is_empty() {
        return kids;
    }
    let Ok(all) = std::fs::read_dir("/proc") else {
        return kids;
    };
    for e in all.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rfind(')')
            .and_then(|at| stat[at + 1..].split_whitespace().nth(1))
            .and_then(|f| f.parse::<i32>().ok());
        if ppid == Some(pid) {
            kids.push(p);
        }
    }
    kids
}

/// The status directory of a process of `uid` with this environment.
pub fn status_dir(uid: u32, environ: &[u8]) -> protocol::StatusDir<'_> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let runtime_dir = mtcp_core::config::env_lookup(environ, b"XDG_RUNTIME_DIR").filter(|d| {
        protocol::usable_runtime_dir(d, uid, |p| {
            let md = std::fs::symlink_metadata(std::ffi::OsStr::from_bytes(p)).ok()?;
            Some((md.uid(), md.mode()))
        })
    });
    protocol::StatusDir { uid, runtime_dir }
}

/// The initial environment of `pid`.
fn environ_of(pid: i32) -> Result<Vec<u8>> {
    match std::fs::read(format!("/proc/{}/environ", pid)) {
        Ok(e) => Ok(e),
        Err(e) if e.kind() == ErrorKind::NotFound => fail(format!("no process {}", pid)),
        Err(e) => fail(format!(
            "cannot read the environment of process {}: {}",
            pid,
            io_msg(&e)
        )),
    }
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
fn checkpoint_signal(pid: i32, environ: &[u8]) -> Result<u32> {
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

/// Sends the request: `sig` with the nonce as si_value. The thread that takes a signal
/// while asleep in `poll`, `nanosleep`, `epoll_wait` and the like would see the call
/// fail with EINTR; so, where ptrace is allowed (and MTCP_PTRACE is not 0 in the
/// process's environment), the signal goes to one thread stopped for the purpose, its
/// call set to run again (sys::trace::deliver_quietly). Otherwise it is queued to the
/// process (sigqueue) and the kernel picks the thread.
fn send_request(pid: i32, sig: u32, nonce: u64, uid: u32, quiet: bool) -> Result<()> {
    let me = std::process::id();
    if quiet {
        if let Some(tid) = thread_to_signal(pid, sig) {
            // A thread that blocks the signal needs its mask changed, which only the
            // runtime's own helper can undo: leave those to the plain request.
            let mut send = |unblocked: bool| {
                if unblocked {
                    return Err(Errno::EAGAIN);
                }
                sys::tgsigqueue(pid as u32, tid, sig, nonce as u32, me, uid)
            };
            if let Ok(sys::trace::Delivery::Sent { .. }) = sys::trace::deliver_quietly(pid as u32, tid, sig, &mut send)
            {
                return Ok(());
            }
        }
    }
    match sys::sigqueue(pid as u32, sig, nonce as u32, me, uid) {
        Ok(()) => Ok(()),
        Err(Errno::ESRCH) => fail(format!("no process {}", pid)),
        Err(e) => fail(format!(
            "cannot signal process {}: {}",
            pid,
            io_msg(&std::io::Error::from_raw_os_error(e.into_raw()))
        )),
    }
}

/// MTCP_PTRACE=0 in the process's environment turns quiet delivery off, for the
/// runtime and for us.
fn quiet_delivery_allowed(environ: &[u8]) -> bool {
    mtcp_core::config::env_lookup(environ, b"MTCP_PTRACE")
        .and_then(mtcp_core::config::parse_switch)
        .unwrap_or(true)
}

/// The thread the request goes to: the main thread, or else the first one that does
/// not block the signal.
fn thread_to_signal(pid: i32, sig: u32) -> Option<u32> {
    let bit = 1u64 << (sig - 1);
    let takes_it = |tid: u32| sys::trace::task_mask(pid as u32, tid, b"SigBlk:").is_some_and(|m| m & bit == 0);
    if takes_it(pid as u32) {
        return Some(pid as u32);
    }
    let tasks = std::fs::read_dir(format!("/proc/{}/task", pid)).ok()?;
    tasks
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|&tid| takes_it(tid))
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

    fn poll_result(path: &Path, uid: u32, nonce: u64) -> Result<Option<Outcome>> {
        Ok(read_status_file(path, uid)?.and_then(|t| answer_in(&t, nonce)))
    }

    #[test]
    fn polling_matches_nonce() {
        use std::os::unix::fs::PermissionsExt;
        let dir = crate::TempDir::new("ckpt-poll");
        let sdir = dir.join("status");
        std::fs::create_dir(&sdir).unwrap();
        std::fs::set_permissions(&sdir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let me = real_uid(&proc_status_self().unwrap()).unwrap();
        let p = sdir.join("1.status");
        let poll = |text: &str| {
            std::fs::write(&p, text.replace('~', "\u{ff}").as_bytes()).unwrap();
            poll_result(&p, me, 42).unwrap()
        };
        assert_eq!(poll("5 99 ok /old\n"), None, "another request's result is not ours");
        assert_eq!(poll("9 0 ready -\n"), None, "a ready line is no result");
        assert_eq!(poll("60 99 ok /a\n59 98 ok /b\n"), None, "however far the seq moved on");
        assert_eq!(poll("7 99,42 ok /later\n"), Some(Outcome::Ok(b"/later".to_vec())));
        assert_eq!(
            poll("8 5 ok /newer\n7 42 ok /ours\n"),
            Some(Outcome::Ok(b"/ours".to_vec())),
            "an older line of the file answers too"
        );
        assert_eq!(
            poll("6 42 ok /a%0Ab%25~\n"),
            Some(Outcome::Ok("/a\nb%\u{ff}".as_bytes().to_vec())),
            "paths come back byte for byte"
        );
        assert_eq!(poll("6 42 error boom\n"), Some(Outcome::Error("boom".into())));
        assert!(p.exists(), "the file stays: it also tells that the runtime runs");

        // Nothing another user could have made is believed.
        assert!(poll_result(&p, me + 1, 42).is_err(), "a file of another uid");
        std::fs::set_permissions(&sdir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(poll_result(&p, me, 42).is_err(), "a directory others may write to");
        std::fs::set_permissions(&sdir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink(dir.join("elsewhere"), &p).unwrap();
        std::fs::write(dir.join("elsewhere"), "7 42 ok /planted\n").unwrap();
        assert!(poll_result(&p, me, 42).is_err(), "a symbolic link");
        std::fs::remove_file(&p).unwrap();
        assert_eq!(poll_result(&p, me, 42).unwrap(), None, "no file yet");
    }

    #[test]
    fn signal_self_errors() {
        // A process that does not exist.
        let quiet = Report::choose("checkpoint", true, false, false, false).unwrap();
        assert!(checkpoint(i32::MAX, 1, &quiet).is_err());
    }
}
