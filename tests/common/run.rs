//! Running a command to completion under a time-out, polling, and describing outputs and exit statuses.

use super::bins::bins;
use super::sys::{hermetic, send_signal, SIGKILL};
use super::watchdog::{register_group, unregister_group};
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Runs `cmd` to completion, collecting its output; kills it (and its group) and panics
/// if it takes longer than `timeout`.
pub fn run_output(mut cmd: Command, timeout: Duration) -> Output {
    let desc = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    hermetic(&mut cmd);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {desc}: {e}"));
    let pid = child.id() as i32;
    register_group(pid);
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t2 = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let end = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < end => thread::sleep(Duration::from_millis(10)),
            _ => {
                send_signal(-pid, SIGKILL);
                let _ = child.kill();
                let _ = child.wait();
                unregister_group(pid);
                panic!("{desc} did not finish within {timeout:?}");
            }
        }
    };
    // Anything it left behind in its group goes too (so the pipes reach EOF).
    send_signal(-pid, SIGKILL);
    unregister_group(pid);
    let stdout = t1.join().unwrap();
    let stderr = t2.join().unwrap();
    Output { status, stdout, stderr }
}

/// Runs an mtcp_restart `program` on `image` directly, in `dir`.
pub fn run_restart_program(program: &Path, image: &Path, dir: &Path) -> Output {
    let mut cmd = Command::new(program);
    cmd.arg(image).current_dir(dir);
    run_output(cmd, Duration::from_secs(30))
}

/// Runs the mtcp CLI with `args`.
pub fn mtcp(args: &[&str], timeout: Duration) -> Output {
    let mut cmd = Command::new(&bins().mtcp);
    cmd.args(args);
    run_output(cmd, timeout)
}

pub fn describe_output(o: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}--- stderr ---\n{}",
        describe_status(&o.status),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Checks the run of a program that must refuse its input: not killed by a signal, a
/// non-zero exit (exactly 1 if `exit1`), exactly one line on stderr, and that line
/// mentions one of `keywords` (lower case). Returns the problem, or None if it failed
/// properly.
pub fn one_line_failure(what: &str, out: &Output, exit1: bool, keywords: &[&str]) -> Option<String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    let problem = if let Some(sig) = out.status.signal() {
        Some(format!("was killed by signal {sig}"))
    } else if out.status.success() {
        Some("exited 0".to_string())
    } else if exit1 && out.status.code() != Some(1) {
        Some(format!("exited {:?} instead of 1", out.status.code()))
    } else if lines.len() != 1 {
        Some(format!("printed {} lines on stderr instead of one", lines.len()))
    } else if !keywords.iter().any(|k| lines[0].to_lowercase().contains(k)) {
        Some(format!("its stderr line does not mention any of {keywords:?}"))
    } else {
        None
    };
    problem.map(|p| format!("{what}: {p}\n{}", describe_output(out)))
}

pub fn describe_status(s: &ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(sig)) => format!(
            "killed by signal {sig}{}",
            if s.core_dumped() { " (core dumped)" } else { "" }
        ),
        _ => format!("{s:?}"),
    }
}

/// Polls `f` every 20 ms until it returns Some or `timeout` passes.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}
