//! Terminals and standard input across a restart: a terminal's settings, SIGWINCH on the
//! new terminal, typed input not yet read, and the bytes waiting in a stdin pipe or FIFO.

pub mod common;

use common::*;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

const LEGACY_TIOCSTI: &str = "/proc/sys/dev/tty/legacy_tiocsti";

fn launch_command(t: &Test, prog: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(&bins().mtcp);
    cmd.arg("launch")
        .arg("--dir")
        .arg(&t.dir)
        .arg("--")
        .arg(prog)
        .args(args);
    cmd.current_dir(&t.dir);
    cmd
}

fn restart_command(t: &Test, image: &Path) -> Command {
    let mut cmd = Command::new(&bins().mtcp);
    cmd.arg("restart").arg(image).current_dir(&t.dir);
    cmd
}

fn lines_starting(p: &Proc, prefix: &str) -> Vec<String> {
    p.lines().into_iter().filter(|l| l.starts_with(prefix)).collect()
}

fn mtcp_messages(p: &Proc) -> Vec<String> {
    p.stderr_lines().into_iter().filter(|l| l.contains("mtcp")).collect()
}

const QUIET_TTY: &str = "tty icanon=0 echo=0 onlcr=0";

/// A program that set its terminal to -icanon -echo -onlcr keeps those settings on the
/// new terminal it is restarted on, is told of that terminal's size with SIGWINCH, and
/// reads the line typed before the checkpoint (which the process that went on read
/// too) before the line typed after the restart. Restarted without a terminal, it goes
/// on, and mtcp_restart says in one line each that the settings and the typed input
/// could not be restored.
fn terminal_state_and_typed_input(bits: Bits) {
    let t = Test::new(&bits.name("tty"));
    let prog = t.compile("tty", Variant::Dynamic, bits, &[]);
    let old = Pty::open(24, 80);
    let mut p = old.spawn(launch_command(&t, &prog, &["80", "30"]), "launch tty");
    p.wait_for_line(&format!("`{QUIET_TTY}`"), LINE_TIMEOUT, |l| l == QUIET_TTY);
    old.type_text("hello\n");
    let before = p.last_count().unwrap();
    let image = checkpoint(p.pid());
    let json = inspect_json(&image);
    let stdin = &json["fds"][0];
    assert_eq!(stdin["terminal"]["icanon"], false, "{json}");
    assert_eq!(
        stdin["terminal"]["typed_saved"], 6,
        "the typed line is not in the image: {json}"
    );
    // The process that goes on after the checkpoint still reads it.
    p.wait_for_line("`typed hello`", LINE_TIMEOUT, |l| l == "typed hello");
    p.kill9();
    assert_eq!(lines_starting(&p, "typed "), ["typed hello"], "\n{}", p.describe());
    assert!(
        before < 25,
        "the checkpoint must come before the program reads (count {before})"
    );

    let new = Pty::open(30, 100);
    let mut r = new.spawn(restart_command(&t, &image), "restart tty");
    let first = r.wait_first_count(LINE_TIMEOUT);
    assert!(
        first > before && first < 30,
        "restarted at count {first}\n{}",
        r.describe()
    );
    new.type_text("world\n");
    r.wait_for_line("`winch 1 30x100`", LINE_TIMEOUT, |l| l.starts_with("winch"));
    r.wait_for_line("`typed world`", LINE_TIMEOUT, |l| l == "typed world");
    expect_done(&mut r, 80, Duration::from_secs(30));
    assert_eq!(
        lines_starting(&r, "typed "),
        ["typed hello", "typed world"],
        "typed input lost or out of order\n{}",
        r.describe()
    );
    assert_eq!(lines_starting(&r, "winch"), ["winch 1 30x100"], "\n{}", r.describe());
    let ttys = lines_starting(&r, "tty ");
    assert!(
        !ttys.is_empty() && ttys.iter().all(|l| l == QUIET_TTY),
        "terminal settings not restored: {ttys:?}\n{}",
        r.describe()
    );
    assert!(
        r.lines().iter().all(|l| !l.contains('\r')),
        "output processing (onlcr) came back on\n{}",
        r.describe()
    );
    assert!(mtcp_messages(&r).is_empty(), "unexpected messages\n{}", r.describe());

    // Without a terminal: it goes on, and says what it could not do.
    let mut q = t.restart(&image);
    let first = q.wait_first_count(LINE_TIMEOUT);
    q.wait_for_count(first + 6, LINE_TIMEOUT);
    q.kill9();
    assert!(
        lines_starting(&q, "tty ").iter().all(|l| l == "tty none"),
        "\n{}",
        q.describe()
    );
    assert!(
        lines_starting(&q, "winch").is_empty(),
        "SIGWINCH without a terminal\n{}",
        q.describe()
    );
    let said = mtcp_messages(&q);
    assert_eq!(said.len(), 2, "expected two lines\n{}", q.describe());
    assert!(
        said[0].contains("fds 0, 1 were terminals") && said[0].contains("not restored"),
        "{said:?}"
    );
    assert!(
        said[1].contains("6 byte(s) of typed input") && said[1].contains("could not be carried over"),
        "{said:?}"
    );
}

per_width!(terminal_state_and_typed_input_survive, terminal_state_and_typed_input_survive_32 => terminal_state_and_typed_input());

/// Sets /proc/sys/dev/tty/legacy_tiocsti, and puts the old value back when dropped.
struct LegacyTiocsti(String);

impl LegacyTiocsti {
    fn set(value: &str) -> LegacyTiocsti {
        let old = std::fs::read_to_string(LEGACY_TIOCSTI).unwrap();
        std::fs::write(LEGACY_TIOCSTI, value).expect("set legacy_tiocsti (this test needs root)");
        LegacyTiocsti(old)
    }
}

impl Drop for LegacyTiocsti {
    fn drop(&mut self) {
        let _ = std::fs::write(LEGACY_TIOCSTI, self.0.trim());
    }
}

/// Where the kernel does not let the program's user push input back (TIOCSTI), typed
/// input is left alone at checkpoint time (the process that goes on reads it), and the
/// restart says how many bytes could not be carried over. (Needs root: to forbid
/// TIOCSTI for a moment and to run the program as another user.)
#[test]
fn typed_input_without_tiocsti_is_reported() {
    let t = Test::new("tty_nosti");
    let prog = t.compile_c("tty", Variant::Dynamic, &[]);
    let nobody = "65534";
    Command::new("chown")
        .args([nobody, t.dir.to_str().unwrap()])
        .status()
        .unwrap();
    Command::new("chmod")
        .args(["755", t.dir.to_str().unwrap()])
        .status()
        .unwrap();
    let old = Pty::open(24, 80);
    std::os::unix::fs::fchown(&old.slave, Some(65534), Some(65534)).unwrap();
    let forbid = LegacyTiocsti::set("0");
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", nobody, "--regid", nobody, "--clear-groups"])
        .arg(&bins().mtcp)
        .args(["launch", "--dir"])
        .arg(&t.dir)
        .arg("--")
        .arg(&prog)
        .args(["60", "20"])
        .current_dir(&t.dir);
    let mut p = old.spawn(cmd, "launch tty as nobody");
    p.wait_for_line(&format!("`{QUIET_TTY}`"), LINE_TIMEOUT, |l| l == QUIET_TTY);
    old.type_text("hello\n");
    let image = checkpoint(p.pid());
    drop(forbid);
    let json = inspect_json(&image);
    let stdin = &json["fds"][0];
    assert_eq!(stdin["terminal"]["typed_pending"], 6, "{json}");
    assert_eq!(stdin["terminal"]["typed_saved"], 0, "{json}");
    p.wait_for_line("`typed hello`", LINE_TIMEOUT, |l| l == "typed hello");
    p.kill9();

    let new = Pty::open(24, 80);
    let mut r = new.spawn(restart_command(&t, &image), "restart tty");
    let first = r.wait_first_count(LINE_TIMEOUT);
    r.wait_for_count(first + 5, LINE_TIMEOUT);
    r.kill9();
    let said = mtcp_messages(&r);
    assert_eq!(said.len(), 1, "expected one line\n{}", r.describe());
    assert!(
        said[0].contains("6 byte(s) of typed input") && said[0].contains("TIOCSTI"),
        "{said:?}"
    );
    let ttys = lines_starting(&r, "tty ");
    assert!(ttys.iter().all(|l| l == QUIET_TTY), "{ttys:?}\n{}", r.describe());
}

/// Lines written into the program's stdin pipe and not yet read at checkpoint time are
/// read after the restart, in order, before the lines of the restart's own standard
/// input; the process that goes on after the checkpoint reads all of them too.
fn stdin_pipe_lines(bits: Bits) {
    let t = Test::new(&bits.name("stdin_pipe"));
    let prog = t.compile("stdin", Variant::Dynamic, bits, &[]);
    let cmd = launch_command(&t, &prog, &["120", "40"]);
    let (mut p, input) = Proc::spawn_io(cmd, "launch stdin", Stdio::piped(), None);
    let mut input = input.unwrap();
    input.write_all(b"a1\na2\na3\na4\na5\n").unwrap();
    p.wait_for_count(3, LINE_TIMEOUT);
    let image = checkpoint(p.pid());
    let before = p.last_count().unwrap();
    assert!(
        before < 40,
        "the checkpoint must come before the program reads (count {before})"
    );
    let json = inspect_json(&image);
    assert_eq!(
        json["fds"][0]["buffered"], 15,
        "the waiting lines are not in the image: {json}"
    );
    let a: Vec<String> = (1..=5).map(|i| format!("line a{i}")).collect();
    p.wait_for_line("`line a5`", LINE_TIMEOUT, |l| l == "line a5");
    p.kill9();
    assert_eq!(
        lines_starting(&p, "line "),
        a,
        "the process that went on lost input\n{}",
        p.describe()
    );
    drop(input);

    let (mut r, input) = Proc::spawn_io(restart_command(&t, &image), "restart stdin", Stdio::piped(), None);
    let mut input = input.unwrap();
    input.write_all(b"b1\nb2\n").unwrap();
    drop(input);
    let first = r.wait_first_count(LINE_TIMEOUT);
    assert!(first > 3 && first <= 40, "restarted at count {first}\n{}", r.describe());
    r.wait_for_line("`eof`", Duration::from_secs(30), |l| l == "eof");
    expect_done(&mut r, 120, Duration::from_secs(30));
    let mut want = a.clone();
    want.extend(["line b1".to_string(), "line b2".to_string()]);
    assert_eq!(lines_starting(&r, "line "), want, "\n{}", r.describe());
    assert!(mtcp_messages(&r).is_empty(), "unexpected messages\n{}", r.describe());
}

per_width!(stdin_pipe_lines_survive, stdin_pipe_lines_survive_32 => stdin_pipe_lines());

/// A FIFO on stdin holding far more than a pipe holds by default (the program enlarged
/// it): every byte comes back, in order, then the restart's own input, and the restart
/// does not wait for the program to read them.
#[test]
fn stdin_fifo_larger_than_a_pipe_survives() {
    const BIG: usize = 600_000;
    let t = Test::new("stdin_fifo");
    let prog = t.compile_c("stdin", Variant::Dynamic, &[]);
    let fifo = t.path("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    // Read-write: opening never waits, and the FIFO always has a writer.
    let mut writer = OpenOptions::new().read(true).write(true).open(&fifo).unwrap();
    let reader = File::open(&fifo).unwrap();
    let cmd = launch_command(&t, &prog, &["100", "40", &BIG.to_string()]);
    let (mut p, _) = Proc::spawn_io(cmd, "launch stdin", Stdio::from(reader), None);
    p.wait_for_line("`ready`", LINE_TIMEOUT, |l| l == "ready");
    let data: Vec<u8> = (0..BIG).map(|i| (i * 7 % 251) as u8).collect();
    writer.write_all(&data).unwrap();
    let sum = data
        .iter()
        .fold(0u64, |s, &b| s.wrapping_mul(31).wrapping_add(b as u64));
    let total = format!("total {BIG} sum {sum}");
    p.wait_for_count(3, LINE_TIMEOUT);
    let image = checkpoint(p.pid());
    assert!(
        p.last_count().unwrap() < 40,
        "the checkpoint must come before the program reads"
    );
    let json = inspect_json(&image);
    assert_eq!(
        json["fds"][0]["buffered"], BIG,
        "the waiting bytes are not in the image"
    );
    p.wait_for_line(&format!("`{total}`"), LINE_TIMEOUT, |l| l.starts_with("total"));
    p.kill9();
    assert_eq!(
        lines_starting(&p, "total"),
        std::slice::from_ref(&total),
        "\n{}",
        p.describe()
    );
    drop(writer);

    let (mut r, input) = Proc::spawn_io(restart_command(&t, &image), "restart stdin", Stdio::piped(), None);
    let mut input = input.unwrap();
    input.write_all(b"extra\n").unwrap();
    drop(input);
    r.wait_for_line("`then 6 bytes`", Duration::from_secs(30), |l| l.starts_with("then"));
    expect_done(&mut r, 100, Duration::from_secs(30));
    assert_eq!(lines_starting(&r, "total"), [total], "\n{}", r.describe());
    assert_eq!(lines_starting(&r, "then"), ["then 6 bytes"], "\n{}", r.describe());
    assert!(mtcp_messages(&r).is_empty(), "unexpected messages\n{}", r.describe());
}

/// The children of `pid`.
fn children_of(pid: i32) -> Vec<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    text.split_whitespace().filter_map(|c| c.parse().ok()).collect()
}

/// The state letter of /proc/PID/stat.
fn state_of(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// Job control in an interactive shell, as an ordinary user: a program restarted with
/// its ids (in namespaces of its own, under the `mtcp restart` supervisor) stops with
/// ^Z, and the shell sees the job stopped; `fg` continues it; ^C ends it and the shell
/// gets its prompt back.
#[test]
fn job_control_of_a_restarted_program() {
    let t = Test::new("job_control");
    let prog = t.compile("counter", Variant::Dynamic, Bits::B64, &[]);
    let u = Unprivileged::new(&t);
    let mut p = u.launch(&prog, &["100000"]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let image = u.checkpoint(p.pid());
    p.kill9();

    let pty = Pty::open(24, 80);
    let mut shell = u.command(Path::new("/bin/sh"));
    // bash's job control wants the terminal on stderr too.
    shell.args(["-c", "exec bash --norc --noprofile -i 2>&0"]);
    let mut sh = pty.spawn(shell, "interactive bash");
    pty.type_text(&format!("PS1='$ '; {} restart {}\n", u.mtcp.display(), image.display()));
    let first = sh.wait_first_count(LINE_TIMEOUT);
    sh.wait_for_count(first + 5, LINE_TIMEOUT);
    let supervisor =
        poll(Duration::from_secs(5), || children_of(sh.pid()).first().copied()).expect("the shell runs mtcp restart");
    let program = supervised_program(supervisor).expect("the restored program");
    assert_ne!(program, supervisor, "the program should run under its supervisor");

    pty.type_text("\x1a");
    sh.wait_for_line("the shell's `Stopped`", LINE_TIMEOUT, |l| l.contains("Stopped"));
    let stopped = poll(Duration::from_secs(5), || {
        (state_of(program) == Some('T') && state_of(supervisor) == Some('T')).then_some(())
    });
    assert!(
        stopped.is_some(),
        "after ^Z: program {:?}, supervisor {:?}\n{}",
        state_of(program),
        state_of(supervisor),
        sh.describe()
    );
    let at_stop = sh.last_count().unwrap();
    thread::sleep(Duration::from_millis(700));
    assert!(
        sh.last_count().unwrap() <= at_stop + 1,
        "it counted on while stopped\n{}",
        sh.describe()
    );

    pty.type_text("fg\n");
    sh.wait_for_count(at_stop + 10, LINE_TIMEOUT);

    pty.type_text("\x03");
    let gone = poll(Duration::from_secs(10), || {
        (state_of(program).is_none() && state_of(supervisor).is_none()).then_some(())
    });
    assert!(
        gone.is_some(),
        "^C did not end the program and its supervisor\n{}",
        sh.describe()
    );
    pty.type_text("echo back at the prompt\n");
    // The shell's own output carries a carriage return and its mode switches.
    sh.wait_for_line("`back at the prompt`", LINE_TIMEOUT, |l| {
        l.trim_end_matches('\r').ends_with("back at the prompt") && !l.contains("echo")
    });
    sh.assert_no_bad();
    sh.kill9();
}
