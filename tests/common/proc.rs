//! A running child (`Proc`) in its own process group, its stdout and stderr collected line by line.

use super::run::describe_status;
use super::sys::{hermetic, send_signal, SIGKILL};
use super::watchdog::{register_group, unregister_group};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

#[derive(Default)]
struct LinesState {
    lines: Vec<String>,
    eof: bool,
}

#[derive(Default)]
struct Lines {
    state: Mutex<LinesState>,
    cv: Condvar,
}

impl Lines {
    fn start(stream: impl Read + Send + 'static) -> (Arc<Lines>, thread::JoinHandle<()>) {
        let lines = Arc::new(Lines::default());
        let l2 = lines.clone();
        let h = thread::spawn(move || {
            let mut r = BufReader::new(stream);
            loop {
                let mut buf = Vec::new();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if buf.last() == Some(&b'\n') {
                            buf.pop();
                        }
                        let mut s = l2.state.lock().unwrap();
                        s.lines.push(String::from_utf8_lossy(&buf).into_owned());
                        l2.cv.notify_all();
                    }
                }
            }
            let mut s = l2.state.lock().unwrap();
            s.eof = true;
            l2.cv.notify_all();
        });
        (lines, h)
    }

    fn snapshot(&self) -> Vec<String> {
        self.state.lock().unwrap().lines.clone()
    }

    /// Waits for a line at index >= `from` matching `pred`; returns (index, line).
    fn wait(&self, from: usize, timeout: Duration, pred: &mut dyn FnMut(&str) -> bool) -> Option<(usize, String)> {
        let end = Instant::now() + timeout;
        let mut s = self.state.lock().unwrap();
        let mut next = from;
        loop {
            while next < s.lines.len() {
                if pred(&s.lines[next]) {
                    return Some((next, s.lines[next].clone()));
                }
                next += 1;
            }
            if s.eof {
                return None;
            }
            let now = Instant::now();
            if now >= end {
                return None;
            }
            s = self.cv.wait_timeout(s, end - now).unwrap().0;
        }
    }

    fn wait_eof(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        let mut s = self.state.lock().unwrap();
        while !s.eof {
            let now = Instant::now();
            if now >= end {
                return false;
            }
            s = self.cv.wait_timeout(s, end - now).unwrap().0;
        }
        true
    }
}

/// Parses `count N`.
/// The program behind `pid`: `pid` itself once it runs the program, or, where `pid` is
/// an mtcp_restart supervising a restored program, that program (the child whose name
/// is not mtcp_restart's). While `pid` is still `mtcp restart` on its way to exec, or
/// restoring, this waits (up to 10 s); None if no program appears.
pub fn supervised_program(pid: i32) -> Option<i32> {
    let comm = |p: i32| std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
    super::run::poll(Duration::from_secs(10), || match comm(pid).trim_end() {
        "" => Some(pid), // gone: nothing to wait for
        "mtcp" => None,  // about to exec mtcp_restart
        "mtcp_restart" => program_under(pid),
        _ => Some(pid),
    })
}

fn is_supervisor(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == "mtcp_restart")
}

fn program_under(pid: i32) -> Option<i32> {
    let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let found = kids
        .split_whitespace()
        .filter_map(|k| k.parse::<i32>().ok())
        .find(|&k| !is_supervisor(k));
    found
}

/// The program as it is now (no waiting): `pid`, or the program a supervisor runs.
fn program_now(pid: i32) -> i32 {
    if is_supervisor(pid) {
        program_under(pid).unwrap_or(pid)
    } else {
        pid
    }
}

pub fn parse_count(line: &str) -> Option<u64> {
    line.strip_prefix("count ")?.trim().parse().ok()
}

/// A child process in its own process group, stdout and stderr collected line by line.
pub struct Proc {
    pub label: String,
    child: Option<Child>,
    pid: i32,
    out: Arc<Lines>,
    err: Arc<Lines>,
    status: Option<ExitStatus>,
}

impl Proc {
    pub fn spawn(cmd: Command, label: &str) -> Proc {
        Proc::spawn_io(cmd, label, Stdio::null(), None).0
    }

    /// `spawn` with `stdin` as the child's standard input (its writing end is returned
    /// for `Stdio::piped()`). With `output`, the caller has set the child's stdout (a
    /// terminal, say) and made it lead a process group of its own (`setsid`, say), and
    /// the lines are read from `output` (the terminal's master side).
    pub fn spawn_io(
        mut cmd: Command,
        label: &str,
        stdin: Stdio,
        output: Option<Box<dyn Read + Send>>,
    ) -> (Proc, Option<ChildStdin>) {
        cmd.stdin(stdin).stderr(Stdio::piped());
        if output.is_none() {
            cmd.stdout(Stdio::piped()).process_group(0);
        }
        hermetic(&mut cmd);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {label} ({cmd:?}): {e}"));
        drop(cmd); // descriptors given to the child (a terminal's slave side) close here
        let pid = child.id() as i32;
        register_group(pid);
        let (out, _) = match output {
            Some(o) => Lines::start(o),
            None => Lines::start(child.stdout.take().unwrap()),
        };
        let (err, _) = Lines::start(child.stderr.take().unwrap());
        let input = child.stdin.take();
        let p = Proc {
            label: label.to_string(),
            child: Some(child),
            pid,
            out,
            err,
            status: None,
        };
        (p, input)
    }

    /// The pid this harness started: the one a shell would see (`$!`).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The pid whose /proc entries show the program itself: for a restarted program
    /// with its old ids, `pid()` is the mtcp_restart that supervises it, and the program
    /// is its child. Use it to inspect the program's descriptors, maps or threads.
    pub fn program_pid(&self) -> i32 {
        supervised_program(self.pid).unwrap_or_else(|| {
            panic!(
                "{}: supervisor {} has no program under it\n{}",
                self.label,
                self.pid,
                self.describe()
            )
        })
    }

    pub fn lines(&self) -> Vec<String> {
        self.out.snapshot()
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.err.snapshot()
    }

    /// The `count N` values printed so far, in order.
    pub fn counts(&self) -> Vec<u64> {
        self.lines().iter().filter_map(|l| parse_count(l)).collect()
    }

    pub fn last_count(&self) -> Option<u64> {
        self.lines().iter().rev().find_map(|l| parse_count(l))
    }

    /// Both streams, for failure messages (the last 40 lines of each).
    pub fn describe(&self) -> String {
        fn tail(v: Vec<String>) -> String {
            let skip = v.len().saturating_sub(40);
            let mut s = String::new();
            if skip > 0 {
                s.push_str(&format!("  ... ({skip} earlier lines)\n"));
            }
            for l in &v[skip..] {
                s.push_str("  ");
                s.push_str(l);
                s.push('\n');
            }
            s
        }
        let status = match self.status {
            Some(s) => describe_status(&s),
            None => format!("running (or not reaped){}", kernel_view(program_now(self.pid))),
        };
        format!(
            "[{} pid {} — {}]\n--- stdout ---\n{}--- stderr ---\n{}",
            self.label,
            self.pid,
            status,
            tail(self.lines()),
            tail(self.stderr_lines())
        )
    }

    /// Waits for a stdout line matching `pred`; panics (with both streams) on time-out or
    /// if the output ends first.
    pub fn wait_for_line(&mut self, what: &str, timeout: Duration, mut pred: impl FnMut(&str) -> bool) -> String {
        match self.out.wait(0, timeout, &mut pred) {
            Some((_, l)) => l,
            None => {
                self.reap_if_exited();
                panic!("{}: no line {what} within {timeout:?}\n{}", self.label, self.describe())
            }
        }
    }

    /// Like `wait_for_line` but returns None instead of panicking.
    pub fn try_wait_for_line(&self, timeout: Duration, mut pred: impl FnMut(&str) -> bool) -> Option<String> {
        self.out.wait(0, timeout, &mut pred).map(|(_, l)| l)
    }

    /// Waits until `count n` (or a later count) has been printed; returns the count seen.
    pub fn wait_for_count(&mut self, n: u64, timeout: Duration) -> u64 {
        let line = self.wait_for_line(&format!("`count {n}`"), timeout, |l| {
            parse_count(l).is_some_and(|c| c >= n)
        });
        parse_count(&line).unwrap()
    }

    /// Waits for the first `count` line.
    pub fn wait_first_count(&mut self, timeout: Duration) -> u64 {
        let line = self.wait_for_line("`count N`", timeout, |l| parse_count(l).is_some());
        parse_count(&line).unwrap()
    }

    fn reap_if_exited(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if let Ok(Some(s)) = c.try_wait() {
                self.status = Some(s);
                self.child = None;
                unregister_group(self.pid);
            }
        }
    }

    /// Waits for the process to exit by itself; returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let end = Instant::now() + timeout;
        loop {
            self.reap_if_exited();
            if let Some(s) = self.status {
                self.out.wait_eof(Duration::from_secs(5));
                self.err.wait_eof(Duration::from_secs(5));
                return s;
            }
            if Instant::now() >= end {
                panic!("{}: did not exit within {timeout:?}\n{}", self.label, self.describe());
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Has it exited already (without waiting)?
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.reap_if_exited();
        self.status
    }

    /// SIGKILL to its whole process group, then reap it and collect the rest of its output.
    pub fn kill9(&mut self) {
        send_signal(-self.pid, SIGKILL);
        send_signal(self.pid, SIGKILL);
        if let Some(mut c) = self.child.take() {
            if let Ok(s) = c.wait() {
                self.status = Some(s);
            }
        }
        unregister_group(self.pid);
        self.out.wait_eof(Duration::from_secs(5));
        self.err.wait_eof(Duration::from_secs(5));
    }

    /// A signal mask line (`SigBlk:`, ...) of each of the process's threads: (tid, mask).
    pub fn thread_masks(&self, key: &str) -> Vec<(i32, u64)> {
        let pid = program_now(self.pid);
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", pid)) else {
            return Vec::new();
        };
        tasks
            .filter_map(|e| {
                let tid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
                let status = std::fs::read_to_string(format!("/proc/{}/task/{}/status", pid, tid)).ok()?;
                let line = status.lines().find_map(|l| l.strip_prefix(key))?;
                Some((tid, u64::from_str_radix(line.trim(), 16).ok()?))
            })
            .collect()
    }

    /// Lines starting with `BAD`.
    pub fn bad_lines(&self) -> Vec<String> {
        self.lines().into_iter().filter(|l| l.starts_with("BAD")).collect()
    }

    pub fn assert_no_bad(&self) {
        let bad = self.bad_lines();
        assert!(
            bad.is_empty(),
            "{}: memory check failed: {bad:?}\n{}",
            self.label,
            self.describe()
        );
    }

    /// The counts printed are consecutive (each one more than the previous).
    pub fn assert_consecutive(&self) {
        let c = self.counts();
        for w in c.windows(2) {
            assert!(
                w[1] == w[0] + 1,
                "{}: counts are not consecutive ({} then {})\n{}",
                self.label,
                w[0],
                w[1],
                self.describe()
            );
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.is_some() {
            send_signal(-self.pid, SIGKILL);
            send_signal(self.pid, SIGKILL);
            if let Some(mut c) = self.child.take() {
                let _ = c.wait();
            }
            unregister_group(self.pid);
        }
    }
}

/// What the kernel says of a live process's threads (state, where each waits, its
/// signals), to tell a hang inside the program from one in the runtime.
fn kernel_view(pid: i32) -> String {
    let mut out = String::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten().take(8) {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let wchan = std::fs::read_to_string(task.path().join("wchan")).unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let syscall = std::fs::read_to_string(task.path().join("syscall")).unwrap_or_default();
        out.push_str(&format!(
            "\n  task {}: {} wchan {} SigBlk {} SigPnd {} ShdPnd {} TracerPid {} syscall {}",
            task.file_name().to_string_lossy(),
            field("State:"),
            wchan,
            field("SigBlk:"),
            field("SigPnd:"),
            field("ShdPnd:"),
            field("TracerPid:"),
            syscall.trim()
        ));
        // The kernel stack (root only) tells where a thread that will not die is stuck.
        if let Ok(stack) = std::fs::read_to_string(task.path().join("stack")) {
            for frame in stack.lines().take(6) {
                out.push_str(&format!("\n      {frame}"));
            }
        }
    }
    out
}
