//! `mtcp run`: starts a program with the runtime, or resumes it from the image an earlier run left in its directory, and stays its parent to checkpoint it when the scheduler says stop.

use std::ffi::OsString;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mtcp_core::{protocol, sys};

use crate::args::{Args, Operands, Opt, Subcommand, Value};
use crate::checkpoint::{self, Outcome};
use crate::progress::{self, Report};
use crate::{fail, io_msg, usage, Result};
use mtcp_core::fmt::JsonStr;

pub const COMMAND: Subcommand = Subcommand {
    name: "run",
    synopsis:
        "[--dir D] [--interval S] [--signal-on SIG]... [--fresh] [--progress] [--quiet] [--json] [--] PROG ARGS...",
    summary: "run PROG, or resume it from its image in D; checkpoint it and exit 85 on SIGTERM",
    about: "\
Runs PROG with the mtcp runtime as `mtcp launch` does or, when D holds an image that
an earlier `mtcp run` of the same PROG and ARGS left, restarts that image instead: one
command line serves the first run of a batch job and every requeue. mtcp run stays as
PROG's parent. SIGTERM (and each --signal-on signal) makes it checkpoint PROG into D,
kill it and exit 85; other signals sent to it are passed on to PROG.",
    options: &[
        Opt {
            name: "--dir",
            value: Value::Os("D"),
            help: "directory for images and mtcp run's record of the command
(default: $MTCP_DIR, else the current directory); one per computation",
        },
        Opt {
            name: "--interval",
            value: Value::Text("S"),
            help: "also checkpoint every S seconds (a resumed run keeps the first run's)",
        },
        Opt {
            name: "--signal-on",
            value: Value::Text("SIG"),
            help: "checkpoint, kill PROG and exit 85 on SIG too (as on SIGTERM);
may be given more than once",
        },
        Opt {
            name: "--fresh",
            value: Value::None,
            help: "start PROG afresh: move what D holds aside, into D/old-<time>/",
        },
        progress::PROGRESS,
        progress::QUIET,
        progress::json("say what mtcp run does, and show progress, as JSON objects on stderr"),
    ],
    notes: "\
Exit status: PROG's own, or 128+N when a signal N killed it; 85 when PROG was
checkpointed and stopped, so that running the same command again resumes it; 1 when
nothing could be started: D holds a damaged image (left as it is), files of another
command, or a computation that has ended; or PROG cannot be run.
D holds mtcp-run.info (PROG's absolute path and ARGS, the pid the computation first ran
with, and whether it has ended), written at the first start and at the end; an image in
D is resumed only when this record names the same PROG and ARGS and the image's own
process record has that pid.
On a terminal, lines on stderr show the progress of a long checkpoint or restore.
With --json, mtcp run's notes are JSON objects on stderr instead: {\"type\":\"run\",
\"event\":E,...} with E \"start\" (and \"pid\"), \"resume\" (\"image\"), \"fresh\" (\"moved\",
\"to\"), \"checkpointed\" (\"image\", \"status\": 85) or \"exit\" (\"status\"), besides the
progress objects of `mtcp checkpoint --json` and `mtcp restart --json`; errors and
warnings stay one plain line.",
    operands: Operands::Program,
    run: main,
};

/// The exit status that means "checkpointed and stopped: run the same command again".
pub const RESUME_STATUS: u8 = 85;

/// mtcp run's record of the computation its directory belongs to.
const RECORD: &str = "mtcp-run.info";
const RECORD_MAGIC: &str = "mtcp run 1";

/// After the program starts, how long a checkpoint request may wait for its runtime to
/// be ready (its constructor, or the restart, not yet done).
const READY_GRACE: Duration = Duration::from_secs(10);

const SIGKILL: u32 = 9;
const SIGTERM: u32 = 15;
const SIGCHLD: u32 = 17;
/// si_code of a signal the kernel sent itself (a terminal's ^C, a resource limit).
const SI_KERNEL: i32 = 0x80;

/// The signals mtcp run takes (blocked, read from a signalfd): all that can be sent to
/// a process and caught, but the faults, the terminal stop signals (so that ^Z stops
/// mtcp run too) and glibc's 32 and 33.
const TAKEN: &[u32] = &[1, 2, 3, 10, 12, 14, 15, 17, 18, 23, 24, 25, 26, 27, 28, 29, 30, 31];
const FIRST_RT: u32 = 34;

fn main(args: Args) -> Result<u8> {
    let report = Report::from_args("run", &args)?;
    let dir = image_dir(&args)?;
    let mut stop_signals = vec![SIGTERM];
    for s in args.texts("--signal-on") {
        match crate::signal::parse(&s.to_ascii_uppercase()) {
            Some(SIGCHLD) | None => {
                return usage(format!(
                    "run: invalid --signal-on '{}': expected a number 1-64 or a name such as USR1 or RTMIN+3 (not KILL, STOP, CHLD, 32 or 33)",
                    s
                ))
            }
            Some(n) => stop_signals.push(n),
        }
    }
    // Checks the options and finds the program before anything in D is touched.
    let (mut cmd, path) = crate::launch::command("run", &args)?;
    cmd.env("MTCP_DIR", &dir);
    let program = std::fs::canonicalize(&path).or_else(|e| fail(format!("{}: {}", path.display(), io_msg(&e))))?;
    let wanted = Record {
        program,
        args: args.operands[1..].to_vec(),
        vpid: 0,
        ended: None,
    };
    let resume = if args.flag("--fresh") {
        move_aside(&dir, &report)?;
        None
    } else {
        image_to_resume(&dir, &wanted)?
    };

    let taken = TAKEN
        .iter()
        .chain(&stop_signals)
        .copied()
        .chain(FIRST_RT..=64)
        .fold(0u64, |m, s| m | 1u64 << (s - 1));
    // Blocked before the child exists, so that nothing is lost (`spawn` unblocks them in
    // the child).
    sys::rt_sigprocmask(0 /* SIG_BLOCK */, Some(taken))
        .or_else(|e| fail(format!("run: cannot block signals: {:?}", e)))?;
    let signals = sys::signalfd(taken, 0o2000000 /* SFD_CLOEXEC */)
        .or_else(|e| fail(format!("run: cannot make a signalfd: {:?}", e)))?;
    // SAFETY: the signalfd's descriptor is ours alone; the File takes it over.
    let signals = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(signals.into_raw()) };

    let (child, record) = match resume {
        Some((image, record)) => {
            report.note(format_args!("run: resuming from {}", image.display()));
            report.event(format_args!(
                "{{\"type\":\"run\",\"event\":\"resume\",\"image\":{}}}",
                JsonStr(image.as_os_str().as_bytes())
            ));
            let flags: Vec<String> = report.restart_flag().into_iter().collect();
            (spawn(crate::restart::command(&image, &flags)?, "mtcp_restart")?, record)
        }
        None => {
            let pid = spawn(cmd, &args.operands[0].to_string_lossy())?;
            report.event(format_args!("{{\"type\":\"run\",\"event\":\"start\",\"pid\":{}}}", pid));
            let record = Record { vpid: pid, ..wanted };
            if let Err(e) = write_record(&dir, &record) {
                let _ = sys::kill(pid, SIGKILL);
                let _ = wait_for(pid);
                return Err(e);
            }
            (pid, record)
        }
    };
    match supervise(child, &signals, &stop_signals, &report)? {
        End::Checkpointed => Ok(RESUME_STATUS),
        End::Exited(code) => {
            report.event(format_args!(
                "{{\"type\":\"run\",\"event\":\"exit\",\"status\":{}}}",
                code
            ));
            // Its images are older than its end now: the same command must not go back
            // to one of them.
            write_record(
                &dir,
                &Record {
                    ended: Some(code),
                    ..record
                },
            )?;
            Ok(code)
        }
    }
}

/// How the child's run ended.
enum End {
    /// mtcp run checkpointed it and killed it.
    Checkpointed,
    /// It ended by itself (or by a signal someone else sent) with this exit status.
    Exited(u8),
}

/// D: --dir, else $MTCP_DIR, else the current directory, made if need be; absolute, as
/// the runtime of a resumed run still has it.
fn image_dir(args: &Args) -> Result<PathBuf> {
    let env = std::env::var_os("MTCP_DIR").filter(|d| !d.is_empty());
    let d = args.value("--dir").or(env.as_deref()).unwrap_or(".".as_ref());
    // A job script may name a directory per job that does not exist yet.
    if !d.is_empty() && std::fs::symlink_metadata(d).is_err() {
        if let Err(e) = std::fs::create_dir_all(d) {
            return fail(format!("--dir {}: {}", Path::new(d).display(), io_msg(&e)));
        }
    }
    crate::launch::checked_dir("run", d)
}

/// What `mtcp-run.info` says: the computation D belongs to.
#[derive(Debug, PartialEq, Eq)]
struct Record {
    /// The program's absolute path, links resolved.
    program: PathBuf,
    /// Its arguments, after the program name.
    args: Vec<OsString>,
    /// The pid it first ran with: the images' `ckpt_<comm>_<vpid>.mtcp` and their
    /// process record's vpid.
    vpid: u32,
    /// Its exit status, once it has ended by itself.
    ended: Option<u8>,
}

impl Record {
    /// Lines of `key value`, values escaped as status lines are (`%`, newline).
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{}\nvpid {}\nprogram ", RECORD_MAGIC, self.vpid).into_bytes();
        protocol::escape(self.program.as_os_str().as_bytes(), |p| out.extend_from_slice(p));
        for a in &self.args {
            out.extend_from_slice(b"\narg ");
            protocol::escape(a.as_bytes(), |p| out.extend_from_slice(p));
        }
        if let Some(code) = self.ended {
            out.extend_from_slice(format!("\nended {}", code).as_bytes());
        }
        out.push(b'\n');
        out
    }

    fn parse(text: &[u8]) -> std::result::Result<Record, String> {
        let mut lines = text
            .strip_suffix(b"\n")
            .ok_or("it does not end with a newline")?
            .split(|&c| c == b'\n');
        if lines.next() != Some(RECORD_MAGIC.as_bytes()) {
            return Err(format!("it does not begin with '{}'", RECORD_MAGIC));
        }
        let (mut vpid, mut program, mut args, mut ended) = (None, None, Vec::new(), Ok(None));
        for line in lines {
            let sp = line.iter().position(|&c| c == b' ').ok_or("a line has no value")?;
            let (key, value) = (&line[..sp], &line[sp + 1..]);
            let mut bytes = vec![0u8; value.len()];
            let n = protocol::unescape(value, &mut bytes).ok_or("a value is badly escaped")?;
            bytes.truncate(n);
            match key {
                b"vpid" => vpid = std::str::from_utf8(&bytes).ok().and_then(|v| v.parse::<u32>().ok()),
                b"program" => program = Some(PathBuf::from(OsString::from_vec(bytes))),
                b"arg" => args.push(OsString::from_vec(bytes)),
                b"ended" => {
                    ended = std::str::from_utf8(&bytes)
                        .ok()
                        .and_then(|v| v.parse::<u8>().ok())
                        .map(Some)
                        .ok_or(())
                }
                _ => return Err(format!("unknown key '{}'", String::from_utf8_lossy(key))),
            }
        }
        match (vpid, program, ended) {
            (Some(vpid), Some(program), Ok(ended)) if vpid > 0 && program.is_absolute() => Ok(Record {
                program,
                args,
                vpid,
                ended,
            }),
            _ => Err("it lacks a valid vpid or program, or has a bad ended status".into()),
        }
    }

    /// The command line, for messages.
    fn describe(&self) -> String {
        let mut s = self.program.display().to_string();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }
}

/// The record, written through a temporary file and renamed, so that it is whole.
fn write_record(dir: &Path, record: &Record) -> Result<()> {
    let path = dir.join(RECORD);
    let tmp = dir.join(format!(".{}.{}.tmp", RECORD, std::process::id()));
    let written = File::create(&tmp)
        .and_then(|mut f| f.write_all(&record.to_bytes()).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, &path));
    written.or_else(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(format!("run: cannot write {}: {}", path.display(), io_msg(&e)))
    })
}

/// The complete images (`ckpt_*.mtcp`, regular files) in `dir`.
fn images_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).or_else(|e| fail(format!("cannot read {}: {}", dir.display(), io_msg(&e))))?;
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            let n = e.file_name();
            let n = n.as_bytes();
            n.starts_with(b"ckpt_") && n.ends_with(b".mtcp") && e.file_type().is_ok_and(|t| t.is_file())
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    Ok(found)
}

/// The image in `dir` that continues `wanted` and the record that says so, None when
/// there is none yet, or an error when `dir` holds another command's files, a
/// computation that has ended, or a damaged image.
fn image_to_resume(dir: &Path, wanted: &Record) -> Result<Option<(PathBuf, Record)>> {
    let record_path = dir.join(RECORD);
    let images = images_in(dir)?;
    let refuse = |why: String| {
        fail(format!(
            "run: {}; nothing was started (give each computation its own --dir, or add --fresh to move these files aside and start afresh)",
            why
        ))
    };
    let record = match std::fs::read(&record_path) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return match images.first() {
                None => Ok(None),
                Some(i) => refuse(format!(
                    "{} holds the image {}, which no `mtcp run` of this command made",
                    dir.display(),
                    i.display()
                )),
            };
        }
        Err(e) => return fail(format!("run: cannot read {}: {}", record_path.display(), io_msg(&e))),
        Ok(text) => match Record::parse(&text) {
            Ok(r) => r,
            Err(why) => return refuse(format!("{} is damaged: {}", record_path.display(), why)),
        },
    };
    if record.program != wanted.program || record.args != wanted.args {
        return refuse(format!(
            "{} belongs to another command ({}), not to {}",
            dir.display(),
            record.describe(),
            wanted.describe()
        ));
    }
    if let Some(code) = record.ended {
        return refuse(format!(
            "the computation in {} has ended already (exit status {}), and its images are older than its end",
            dir.display(),
            code
        ));
    }
    // The newest image of this computation: the program may have renamed itself.
    let suffix = format!("_{}.mtcp", record.vpid);
    let newest = images
        .into_iter()
        .filter(|p| p.as_os_str().as_bytes().ends_with(suffix.as_bytes()))
        .max_by_key(|p| {
            std::fs::metadata(p)
                .map(|m| (m.mtime(), m.mtime_nsec()))
                .unwrap_or_default()
        });
    let Some(image) = newest else {
        return Ok(None);
    };
    match crate::inspect::check(&image) {
        Ok(process) if process.vpid == record.vpid as u64 => Ok(Some((image, record))),
        Ok(process) => refuse(format!(
            "{} is an image of another computation (first pid {}, not {})",
            image.display(),
            process.vpid,
            record.vpid
        )),
        Err(crate::Error::Fail(why) | crate::Error::Usage(why)) => fail(format!(
            "run: cannot resume: {}; the image is left as it is (add --fresh to move it aside and start afresh)",
            why
        )),
    }
}

/// For --fresh: moves the record and every image in `dir` into a new `dir/old-<time>/`.
fn move_aside(dir: &Path, report: &Report) -> Result<()> {
    let mut files = images_in(dir)?;
    let record = dir.join(RECORD);
    if record.symlink_metadata().is_ok() {
        files.push(record);
    }
    if files.is_empty() {
        return Ok(());
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut aside = dir.join(format!("old-{}", secs));
    for n in 1.. {
        match std::fs::create_dir(&aside) {
            Ok(()) => break,
            Err(e) if e.kind() == ErrorKind::AlreadyExists && n < 100 => {
                aside = dir.join(format!("old-{}-{}", secs, n))
            }
            Err(e) => return fail(format!("run: cannot make {}: {}", aside.display(), io_msg(&e))),
        }
    }
    for f in &files {
        let to = aside.join(f.file_name().unwrap_or_default());
        if let Err(e) = std::fs::rename(f, &to) {
            return fail(format!(
                "run: cannot move {} to {}: {}",
                f.display(),
                to.display(),
                io_msg(&e)
            ));
        }
    }
    report.note(format_args!(
        "run: --fresh: moved {} file(s) to {}",
        files.len(),
        aside.display()
    ));
    report.event(format_args!(
        "{{\"type\":\"run\",\"event\":\"fresh\",\"moved\":{},\"to\":{}}}",
        files.len(),
        JsonStr(aside.as_os_str().as_bytes())
    ));
    Ok(())
}

/// Starts `cmd` as our child, which dies with us (no program left running beside the
/// next run of the job); returns its pid.
fn spawn(mut cmd: Command, what: &str) -> Result<u32> {
    let parent = std::process::id();
    // SAFETY: the closure makes raw system calls only, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            // The program starts with nothing blocked, as it would without us.
            let _ = sys::rt_sigprocmask(2 /* SIG_SETMASK */, Some(0));
            sys::die_with_parent(SIGKILL as usize).map_err(|e| std::io::Error::from_raw_os_error(e.into_raw()))?;
            if sys::getppid() != parent {
                // We died before the line above: nobody would wait for this program.
                return Err(std::io::Error::from_raw_os_error(3 /* ESRCH */));
            }
            Ok(())
        });
    }
    match cmd.spawn() {
        Ok(c) => Ok(c.id()),
        Err(e) => fail(format!("cannot execute {}: {}", what, io_msg(&e))),
    }
}

extern "C" {
    // From the C library std already links.
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
}
const WNOHANG: i32 = 1;

/// A wait status as an exit status: the code, or 128+N for a death by signal N; None
/// for a stop.
fn exit_code(status: i32) -> Option<u8> {
    match status & 0x7f {
        0 => Some((status >> 8) as u8),
        0x7f => None,
        sig => Some(128 + sig as u8),
    }
}

/// Reaps every child that has ended (a process that outlives its parent comes to us when
/// we are pid 1, in a container); `Some` with `child`'s exit status once it has ended.
fn reap(child: u32) -> Result<Option<u8>> {
    loop {
        let mut status = 0;
        // SAFETY: status is an int to write.
        let pid = unsafe { waitpid(-1, &mut status, WNOHANG) };
        if pid <= 0 {
            let e = std::io::Error::last_os_error();
            return match pid {
                0 => Ok(None),
                _ if e.kind() == ErrorKind::Interrupted => continue,
                _ => fail(format!("run: lost track of process {}: {}", child, io_msg(&e))),
            };
        }
        if pid as u32 == child {
            if let Some(code) = exit_code(status) {
                return Ok(Some(code));
            }
        }
    }
}

/// Waits for `child` to end; its exit status.
fn wait_for(child: u32) -> Result<u8> {
    loop {
        let mut status = 0;
        // SAFETY: status is an int to write.
        let pid = unsafe { waitpid(child as i32, &mut status, 0) };
        if pid == child as i32 {
            if let Some(code) = exit_code(status) {
                return Ok(code);
            }
        } else if pid < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != ErrorKind::Interrupted {
                return fail(format!("run: lost track of process {}: {}", child, io_msg(&e)));
            }
        }
    }
}

/// Waits for the child to end, passing signals on and checkpointing on a stop signal.
fn supervise(child: u32, signals: &File, stop_signals: &[u32], report: &Report) -> Result<End> {
    loop {
        if let Some(code) = reap(child)? {
            return Ok(End::Exited(code));
        }
        // struct signalfd_siginfo: ssi_signo (u32) at 0, ssi_code (i32) at 8; 128 bytes.
        let mut info = [0u8; 128];
        let mut reader: &File = signals;
        match reader.read(&mut info) {
            Ok(128) => {}
            Ok(n) => return fail(format!("run: short read of {} bytes from the signalfd", n)),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return fail(format!("run: cannot read the signalfd: {}", io_msg(&e))),
        }
        let sig = u32::from_le_bytes(info[0..4].try_into().unwrap_or_default());
        let code = i32::from_le_bytes(info[8..12].try_into().unwrap_or_default());
        if stop_signals.contains(&sig) {
            if let Some(end) = checkpoint_and_stop(child, sig, report)? {
                return Ok(end);
            }
        } else if sig != SIGCHLD && code != SI_KERNEL {
            // What the kernel sends (a terminal's ^C) reaches the program by itself.
            let _ = sys::kill(child, sig);
        }
    }
}

/// Asks the child for a checkpoint; once the image is written, kills the child. If the
/// checkpoint fails, the program gets `sig` itself and None is returned (mtcp run goes
/// on waiting); if it ends meanwhile, its status.
fn checkpoint_and_stop(child: u32, sig: u32, report: &Report) -> Result<Option<End>> {
    let start = Instant::now();
    let mut line = report.meter("checkpoint");
    let why = loop {
        let asked = checkpoint::request(child as i32, checkpoint::DEFAULT_TIMEOUT, &mut |rec| {
            if let Some(l) = line.as_mut() {
                l.update(rec)
            }
        });
        if let Some(l) = line.as_mut() {
            l.finish();
        }
        match asked {
            Ok(Outcome::Ok(image)) => {
                let _ = sys::kill(child, SIGKILL);
                wait_for(child)?;
                report.note(format_args!(
                    "run: checkpointed to {}; exiting {} (the same command resumes it)",
                    String::from_utf8_lossy(&image),
                    RESUME_STATUS
                ));
                report.event(format_args!(
                    "{{\"type\":\"run\",\"event\":\"checkpointed\",\"image\":{},\"status\":{}}}",
                    JsonStr(&image),
                    RESUME_STATUS
                ));
                return Ok(Some(End::Checkpointed));
            }
            Ok(Outcome::Error(msg)) => break msg,
            Err(crate::Error::Fail(msg) | crate::Error::Usage(msg)) => {
                if let Some(code) = reap(child)? {
                    return Ok(Some(End::Exited(code)));
                }
                // The runtime may not be ready yet: the program has only just started.
                if start.elapsed() >= READY_GRACE {
                    break msg;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    eprintln!(
        "mtcp: run: the checkpoint failed ({}); passing {} on to the program",
        why,
        crate::signal::name(sig)
    );
    let _ = sys::kill(child, sig);
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip() {
        let r = Record {
            program: PathBuf::from("/a b/%prog\n"),
            args: vec![
                "100".into(),
                "".into(),
                "x\ny%0A".into(),
                OsString::from_vec(b"\xff".to_vec()),
            ],
            vpid: 4242,
            ended: Some(137),
        };
        let bytes = r.to_bytes();
        assert_eq!(bytes.iter().filter(|&&c| c == b'\n').count(), 8);
        assert_eq!(Record::parse(&bytes), Ok(r));
        let none = Record {
            program: "/p".into(),
            args: vec![],
            vpid: 1,
            ended: None,
        };
        assert_eq!(Record::parse(&none.to_bytes()), Ok(none));
    }

    #[test]
    fn damaged_records_are_refused() {
        for bad in [
            &b""[..],
            b"mtcp run 1\nvpid 1\nprogram /p",
            b"mtcp run 2\nvpid 1\nprogram /p\n",
            b"mtcp run 1\nprogram /p\n",
            b"mtcp run 1\nvpid 0\nprogram /p\n",
            b"mtcp run 1\nvpid x\nprogram /p\n",
            b"mtcp run 1\nvpid 1\nprogram p\n",
            b"mtcp run 1\nvpid 1\nprogram /p\nextra\n",
            b"mtcp run 1\nvpid 1\nprogram /p\nother 1\n",
            b"mtcp run 1\nvpid 1\nprogram /p%\n",
            b"mtcp run 1\nvpid 1\nprogram /p\nended 256\n",
        ] {
            assert!(Record::parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn wait_statuses() {
        assert_eq!(exit_code(7 << 8), Some(7));
        assert_eq!(exit_code(0), Some(0));
        assert_eq!(exit_code(9), Some(137));
        assert_eq!(exit_code(15 | 0x80), Some(143), "core dumped");
        assert_eq!(exit_code(0x137f), None, "stopped");
    }
}
