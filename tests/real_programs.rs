//! Real programs, each launched, checkpointed, killed with SIGKILL and restarted twice:
//! node's HTTP server with a timer and a file watcher, Python asyncio and `selectors`
//! echo servers, the sqlite3 shell building an index on an on-disk database (its
//! temporary files deleted and open), and a Python client whose connection to an
//! outside server comes back reset.

pub mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A program the distribution packages, which .ci/run installs.
fn installed(name: &str, package: &str) -> PathBuf {
    let out = Command::new("sh").args(["-c", &format!("command -v {name}")]).output();
    match out {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => panic!("this test needs `{name}` (Debian's `{package}`; .ci/run installs it)"),
    }
}

fn script(name: &str) -> PathBuf {
    bins().root.join("tests/progs").join(name)
}

/// The port a server printed (`port P`).
fn port_of(p: &mut Proc) -> u16 {
    let line = p.wait_for_line("`port P`", LINE_TIMEOUT, |l| l.starts_with("port "));
    line[5..].trim().parse().unwrap()
}

fn connect(port: u16) -> TcpStream {
    let addr = ([127, 0, 0, 1], port).into();
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap_or_else(|e| panic!("connect to port {port}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// The body of `GET /` on the port.
fn http_get(port: u16) -> String {
    let mut s = connect(port);
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("read the answer");
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "not a 200 answer: {reply:?}");
    body.trim().to_string()
}

/// The `key N` numbers of an answer such as `ticks 12 changes 1`.
fn number(answer: &str, key: &str) -> u64 {
    let mut words = answer.split_whitespace();
    while let Some(w) = words.next() {
        if w == key {
            if let Some(n) = words.next().and_then(|n| n.parse().ok()) {
                return n;
            }
        }
    }
    panic!("no `{key} N` in {answer:?}")
}

/// One line sent to an echo server and its answer, `echo N LINE`: N.
fn echo(port: u16, line: &str) -> u64 {
    let mut s = connect(port);
    s.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut answer = String::new();
    BufReader::new(&s).read_line(&mut answer).expect("read the echo");
    let rest = answer
        .strip_prefix("echo ")
        .unwrap_or_else(|| panic!("not an echo: {answer:?}"));
    let (n, back) = rest.trim_end().split_once(' ').unwrap_or((rest.trim_end(), ""));
    assert_eq!(back, line, "the echo changed the line: {answer:?}");
    n.parse().unwrap()
}

/// Two checkpoint / kill / restart cycles; `check` runs on the original and on each
/// restarted process.
fn two_cycles(t: &Test, mut p: Proc, mut check: impl FnMut(&mut Proc, &str)) -> Proc {
    check(&mut p, "before the first checkpoint");
    for round in 1..=2 {
        // The server has closed its end of the check's connections by then (one still
        // open would come back reset, and be named).
        let n = p.last_count().unwrap();
        p.wait_for_count(n + 5, LINE_TIMEOUT);
        let c = cycle(t, p);
        p = c.restarted;
        check(&mut p, &format!("after restart {round}"));
    }
    p
}

/// node: the HTTP server answers on its port after each restart, its setInterval timer
/// goes on ticking, and its fs.watch watcher goes on seeing the file change.
#[test]
fn node_http_server_timer_and_watcher() {
    let node = installed("node", "nodejs");
    let t = Test::new("node_http");
    let watched = t.path("watched.txt");
    std::fs::write(&watched, b"0\n").unwrap();
    let mut p = t.launch(
        &node,
        &[script("http_server.js").to_str().unwrap(), watched.to_str().unwrap()],
    );
    let port = port_of(&mut p);
    p.wait_for_count(5, LINE_TIMEOUT);
    let mut last_ticks = 0;
    let r = two_cycles(&t, p, |p, when| {
        let answer = http_get(port);
        let ticks = number(&answer, "ticks");
        assert!(
            ticks > last_ticks,
            "{when}: the timer stopped: {answer:?}\n{}",
            p.describe()
        );
        last_ticks = ticks;
        let changes = number(&answer, "changes");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&watched)
            .and_then(|mut f| f.write_all(b"more\n"))
            .unwrap();
        let seen = poll(Duration::from_secs(10), || {
            let a = http_get(port);
            (number(&a, "changes") > changes).then_some(a)
        });
        assert!(
            seen.is_some(),
            "{when}: fs.watch saw no change of the file (answer {answer:?})\n{}",
            p.describe()
        );
    });
    drop(r);
}

/// Python asyncio: the echo server answers on its port after each restart and the
/// periodic task goes on. (CPython's asyncio keeps the pid its event loop runs in
/// beside the loop, and finds no running loop under another pid: it needs the
/// restart to give it its pid back, as it does.)
#[test]
fn python_asyncio_echo_server() {
    let t = Test::new("py_asyncio");
    let mut p = t.launch(&python3(), &[script("asyncio_echo.py").to_str().unwrap()]);
    let port = port_of(&mut p);
    p.wait_for_count(5, LINE_TIMEOUT);
    let mut last = 0;
    two_cycles(&t, p, |p, when| {
        let n = echo(port, &format!("hello {when}"));
        assert!(n > last, "{when}: the periodic task stopped ({n})\n{}", p.describe());
        last = n;
    });
}

/// Python's `selectors` (epoll): the echo server answers on its port after each restart
/// and its select timeout keeps the time.
#[test]
fn python_selectors_echo_server() {
    let t = Test::new("py_selectors");
    let mut p = t.launch(&python3(), &[script("selectors_echo.py").to_str().unwrap()]);
    let port = port_of(&mut p);
    p.wait_for_count(5, LINE_TIMEOUT);
    let mut last = 0;
    two_cycles(&t, p, |p, when| {
        let n = echo(port, &format!("hello {when}"));
        assert!(n > last, "{when}: the loop stopped ({n})\n{}", p.describe());
        last = n;
    });
}

/// A Python client's connection to the test's server cannot come back: after each
/// restart the program's next ping fails (the connection reads as reset), it connects
/// again and goes on; the restart names the connection in one line.
#[test]
fn python_client_of_an_outside_server_sees_a_reset() {
    let t = Test::new("py_client");
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    // Answers every `ping N` line on every connection with `pong N`.
    std::thread::spawn(move || {
        for conn in server.incoming().flatten() {
            std::thread::spawn(move || {
                let mut w = conn.try_clone().unwrap();
                for line in BufReader::new(conn).lines().map_while(Result::ok) {
                    if w.write_all(format!("pong {}\n", &line[5.min(line.len())..]).as_bytes())
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
    let mut p = t.launch(
        &python3(),
        &[script("tcp_client.py").to_str().unwrap(), &port.to_string()],
    );
    p.wait_for_line("`connected 1`", LINE_TIMEOUT, |l| l == "connected 1");
    p.wait_for_count(12, LINE_TIMEOUT);
    let mut p = Some(p);
    for round in 1..=2 {
        let image = checkpoint(p.as_ref().unwrap().pid());
        let mut old = p.take().unwrap();
        old.kill9();
        old.assert_no_bad();
        let mut r = t.restart(&image);
        let lost = r.wait_for_line("`lost E`", LINE_TIMEOUT, |l| l.starts_with("lost "));
        assert!(
            lost == "lost BrokenPipeError" || lost == "lost ConnectionResetError",
            "round {round}: the old connection failed as {lost:?}, not as a reset"
        );
        r.wait_for_line("`connected K`", LINE_TIMEOUT, |l| l.starts_with("connected "));
        let named: Vec<String> = r.stderr_lines().into_iter().filter(|l| l.contains("mtcp")).collect();
        assert!(
            named.len() == 1
                && named[0].contains(&format!("TCP connection to 127.0.0.1:{port}"))
                && named[0].contains("reset"),
            "round {round}: the restart did not name the connection in one line: {named:?}"
        );
        // It goes on with its new connection: a ping answered.
        let n = r.last_count().unwrap();
        r.wait_for_count(n + 12, LINE_TIMEOUT);
        assert!(
            !r.lines()
                .iter()
                .skip_while(|l| !l.starts_with("connected "))
                .any(|l| l.starts_with("lost ")),
            "round {round}: the new connection failed too\n{}",
            r.describe()
        );
        p = Some(r);
    }
}

/// The sqlite3 shell's work on `db`: an index built with little cache (so that its sort
/// spills to temporary files, deleted while open), then the check and a digest of the
/// index's order.
const SQLITE_WORK: &str = "PRAGMA cache_size=-1024; PRAGMA temp_store=FILE; PRAGMA cache_spill=OFF; \
     CREATE INDEX by_text ON t(b, a); PRAGMA integrity_check; \
     SELECT count(*), sum(a % 9973), min(b), max(b) FROM t INDEXED BY by_text WHERE b > '8';";

/// A database of `rows` rows of about 110 bytes, the same every time.
fn make_database(sqlite: &Path, db: &Path, rows: u64) {
    let sql = format!(
        "CREATE TABLE t(a INTEGER, b TEXT); \
         WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows}) \
         INSERT INTO t SELECT (x * 2654435761) % 4294967291, printf('%08x-%096d', (x * 40503) % 4294967291, x) FROM c;"
    );
    let out = run_output(
        {
            let mut c = Command::new(sqlite);
            c.arg(db).arg(sql);
            c
        },
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "making the database: {}", describe_output(&out));
}

/// The deleted files `pid` holds open (sqlite's temporary files).
fn deleted_open(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|l| l.to_string_lossy().ends_with(" (deleted)"))
                .count()
        })
        .unwrap_or(0)
}

fn sqlite_command(sqlite: &Path, t: &Test, db: &Path) -> Command {
    let mut c = Command::new(sqlite);
    c.arg(db)
        .arg(SQLITE_WORK)
        .env("SQLITE_TMPDIR", &t.dir)
        .current_dir(&t.dir);
    c
}

/// Waits until the program runs with the runtime's checkpoint handler in place (a
/// restarted one: once mtcp_restart has made its files again and handed over) and has
/// a temporary file open (its sort spilled), or fails.
fn wait_for_temp_file(p: &Proc, when: &str) {
    let ready = || {
        // Asked each time: right after `mtcp restart` starts, it is not yet the
        // supervisor with the program under it.
        let pid = supervised_program(p.pid())?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let caught = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))?
            .trim()
            .to_string();
        let usr2 = u64::from_str_radix(&caught, 16).ok()? & (1 << (SIGUSR2 - 1)) != 0;
        (usr2 && deleted_open(pid) > 0).then_some(())
    };
    assert!(
        poll(Duration::from_secs(30), ready).is_some(),
        "{when}: sqlite3 opened no temporary file (or finished first)\n{}",
        p.describe()
    );
}

/// sqlite3 building an index on an on-disk database, checkpointed twice while it goes
/// on and then killed and restarted twice, each time while its sort's temporary files
/// are open: it ends with the same answer as a run without checkpoints, and the
/// database passes `PRAGMA integrity_check`.
#[test]
fn sqlite3_index_build_through_checkpoints_and_restarts() {
    let sqlite = installed("sqlite3", "sqlite3");
    let t = Test::new("sqlite3_index");
    let pristine = t.path("pristine.db");
    make_database(&sqlite, &pristine, 400_000);
    let reference_db = t.path("reference.db");
    std::fs::copy(&pristine, &reference_db).unwrap();
    let reference = run_output(sqlite_command(&sqlite, &t, &reference_db), Duration::from_secs(60));
    assert!(
        reference.status.success(),
        "the run without checkpoints: {}",
        describe_output(&reference)
    );
    let reference = String::from_utf8_lossy(&reference.stdout).into_owned();
    assert!(
        reference.starts_with("ok\n"),
        "the run without checkpoints: {reference:?}"
    );

    let db = t.path("work.db");
    std::fs::copy(&pristine, &db).unwrap();
    // sqlite3 writes the database only when it commits (cache_spill is off): until then
    // the file is as it was, and a restart from an image taken before that finds it so.
    let untouched = |db: &Path| std::fs::metadata(db).and_then(|m| m.modified()).unwrap();
    let copied = untouched(&db);
    let mut launch = Command::new(&bins().mtcp);
    // Blocking checkpoints: the work is sized so that sqlite3 has not committed when
    // the test kills it, which counts on each checkpoint stopping it for a while.
    launch
        .arg("launch")
        .arg("--blocking")
        .arg("--dir")
        .arg(&t.dir)
        .arg("--");
    let work = sqlite_command(&sqlite, &t, &db);
    launch.arg(work.get_program()).args(work.get_args()).current_dir(&t.dir);
    launch.env("SQLITE_TMPDIR", &t.dir);
    let p = Proc::spawn(launch, "launch sqlite3");
    wait_for_temp_file(&p, "before the first checkpoint");
    for _ in 0..2 {
        let image = checkpoint(p.pid());
        let json = inspect_json(&image);
        let saved = json["fds"].as_array().unwrap().iter().any(|f| f["kind"] == "deleted");
        assert!(saved, "the image holds no deleted temporary file: {json}");
    }
    let mut p = p;
    for round in 1..=2 {
        wait_for_temp_file(&p, &format!("round {round}"));
        let out = try_checkpoint(p.pid());
        assert!(
            out.status.success(),
            "round {round}: the checkpoint failed:\n{}\n{}",
            describe_output(&out),
            p.describe()
        );
        let image = PathBuf::from(String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("").trim());
        p.kill9();
        assert!(
            untouched(&db) == copied,
            "round {round}: sqlite3 committed before it was killed (the work is too short for this machine)\n{}",
            p.describe()
        );
        p = t.restart(&image);
    }
    let status = p.wait_exit(Duration::from_secs(60));
    let out = p.lines().join("\n") + "\n";
    assert!(status.success(), "the restarted sqlite3 failed\n{}", p.describe());
    assert_eq!(
        out, reference,
        "the restarted run's answer differs from the run without checkpoints"
    );
    let noise: Vec<String> = p.stderr_lines().into_iter().filter(|l| l.contains("mtcp")).collect();
    assert!(noise.is_empty(), "the restart warned: {noise:?}");
    let check = run_output(
        {
            let mut c = Command::new(&sqlite);
            c.arg(&db)
                .arg("PRAGMA integrity_check; SELECT count(*) FROM sqlite_master WHERE name = 'by_text';");
            c
        },
        Duration::from_secs(60),
    );
    assert_eq!(
        String::from_utf8_lossy(&check.stdout),
        "ok\n1\n",
        "the database afterwards: {}",
        describe_output(&check)
    );
}

/// sqlite3's temporary file above MTCP_DELETED_LIMIT fails the checkpoint with a
/// message that names it and the limit; sqlite3 goes on and finishes as it would have.
#[test]
fn sqlite3_temporary_file_over_the_limit_fails_the_checkpoint() {
    let sqlite = installed("sqlite3", "sqlite3");
    let t = Test::new("sqlite3_limit");
    let db = t.path("work.db");
    make_database(&sqlite, &db, 300_000);
    let mut launch = Command::new(&bins().mtcp);
    launch
        .args(["launch", "--deleted-limit", "64K", "--dir"])
        .arg(&t.dir)
        .arg("--");
    let work = sqlite_command(&sqlite, &t, &db);
    launch.arg(work.get_program()).args(work.get_args()).current_dir(&t.dir);
    launch.env("SQLITE_TMPDIR", &t.dir);
    let mut p = Proc::spawn(launch, "launch sqlite3");
    // A temporary file that has grown beyond 64 KiB.
    let pid = p.pid();
    let big = poll(Duration::from_secs(30), || {
        std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten().find(|e| {
            std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().ends_with(" (deleted)"))
                && std::fs::metadata(e.path()).is_ok_and(|m| m.len() > 64 << 10)
        })
    });
    assert!(big.is_some(), "no temporary file above 64 KiB\n{}", p.describe());
    let out = try_checkpoint(pid);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("MTCP_DELETED_LIMIT")
            && err.contains("65536")
            && err.contains("(deleted)"),
        "the checkpoint did not fail naming the file and the limit:\n{}",
        describe_output(&out)
    );
    assert!(t.images().is_empty(), "an image was written");
    let status = p.wait_exit(Duration::from_secs(60));
    assert!(
        status.success(),
        "sqlite3 did not finish after the failed checkpoint\n{}",
        p.describe()
    );
    assert_eq!(p.lines().first().map(String::as_str), Some("ok"), "{}", p.describe());
}
