//! Event-loop descriptors survive a restart: an epoll loop over an eventfd, a timerfd and
//! a signalfd goes on getting events from all three; the checkpoint handler runs on a
//! thread's small alternate signal stack; a cgo Go program (netpoll, timers, goroutines)
//! goes on through three restarts; a malformed event descriptor record is refused.

pub mod common;

use mtcp_core::image;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The `key=N` values of a `state ...` line.
fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

/// The `state ...` line printed just before `count n`.
fn state_at(p: &Proc, n: u64) -> String {
    let lines = p.lines();
    let i = lines
        .iter()
        .position(|l| parse_count(l) == Some(n))
        .unwrap_or_else(|| panic!("no `count {n}` line\n{}", p.describe()));
    match i.checked_sub(1).map(|j| &lines[j]) {
        Some(l) if l.starts_with("state ") => l.clone(),
        _ => panic!("no `state` line before `count {n}`\n{}", p.describe()),
    }
}

fn event_loop(bits: Bits) {
    let t = Test::new(&bits.name("evloop"));
    let prog = t.compile("evloop", Variant::Dynamic, bits, &["-pthread"]);
    let mut p = t.launch(&prog, &["70"]);
    p.wait_for_count(5, LINE_TIMEOUT);
    let mut c = cycle(&t, p);

    let json = inspect_json(&c.image);
    let kinds: Vec<&str> = json["fds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    for kind in ["eventfd", "timerfd", "signalfd", "epoll"] {
        assert!(kinds.contains(&kind), "no {kind} in the image: {kinds:?}");
    }
    let watches: Vec<usize> = json["fds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "epoll")
        .map(|f| f["state"]["watches"].as_array().unwrap().len())
        .collect();
    assert_eq!(
        watches,
        [1, 3],
        "the two epoll instances watch the timerfd, and the eventfd, the signalfd and the inner epoll"
    );

    // Every source keeps delivering after the restart: between the first count and 20
    // later each counter grew.
    let r = &mut c.restarted;
    let (a, b) = (state_at(r, c.first), state_at(r, c.first + 20));
    for key in ["ev", "ew", "tm", "sg"] {
        assert!(
            field(&b, key) > field(&a, key),
            "{key} did not grow after the restart: {a:?} then {b:?}\n{}",
            r.describe()
        );
    }
    // 20 counts are 100 ticks of the 20 ms timer: about 2 s if it kept its interval.
    let ms = field(&b, "ms") - field(&a, "ms");
    assert!(
        (1500..3500).contains(&ms),
        "100 timer ticks took {ms} ms: {a:?} then {b:?}"
    );
    expect_done(r, 70, Duration::from_secs(30));
    assert!(
        r.lines().iter().any(|l| l.starts_with("balance ok")),
        "the eventfd lost or gained a count across the restart\n{}",
        r.describe()
    );
}

per_width!(
    /// eventfd (its count), timerfd (its period), signalfd (its mask) and two nested epoll
    /// instances (their registrations, edge-triggered included) come back.
    event_loop_goes_on_after_restart, event_loop_goes_on_after_restart_32 => event_loop()
);

fn small_alternate_stacks(bits: Bits) {
    let t = Test::new(&bits.name("altstack"));
    let prog = t.compile("altstack", Variant::Dynamic, bits, &["-pthread", "-Wl,-z,now"]);
    let mut p = t.launch(&prog, &["60"]);
    p.wait_for_count(5, LINE_TIMEOUT);
    // cycle checks that neither the original nor the restarted process printed BAD.
    let mut c = cycle(&t, p);
    expect_done(&mut c.restarted, 60, Duration::from_secs(20));
}

per_width!(
    /// The checkpoint handler runs on each thread's 32 KiB alternate signal stack (Go's
    /// size), never on the thread's own stack, and works there.
    checkpoint_handler_runs_on_small_alternate_stacks,
    checkpoint_handler_runs_on_small_alternate_stacks_32 => small_alternate_stacks()
);

fn malformed_records(bits: Bits) {
    let t = Test::new(&bits.name("evbad"));
    let prog = t.compile("evloop", Variant::Dynamic, bits, &["-pthread"]);
    let good = image_of(&t, &prog);
    let bytes = std::fs::read(&good).unwrap();
    let mut problems = Vec::new();
    for kind in [
        image::FD_EVENTFD,
        image::FD_TIMERFD,
        image::FD_SIGNALFD,
        image::FD_EPOLL,
    ] {
        let bad = t.path(&format!("bad{kind}.mtcp"));
        std::fs::write(&bad, shorten_fd_record(&bytes, kind)).unwrap();
        let out = run_restart_program(bits.mtcp_restart(), &bad, &t.dir);
        let what = format!("mtcp_restart, {} record one byte short", image::fd_kind_name(kind));
        problems.extend(one_line_failure(&what, &out, true, &["event descriptor"]));
        let out = mtcp(&["inspect", bad.to_str().unwrap()], Duration::from_secs(30));
        problems.extend(one_line_failure(
            &format!("inspect, {what}"),
            &out,
            false,
            &["event descriptor"],
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

per_width!(
    /// A record of an event descriptor whose state has the wrong size is refused with one
    /// line, before anything changes.
    malformed_event_records_are_refused, malformed_event_records_are_refused_32 => malformed_records()
);

/// The `go` command, which the Go test needs (installed by .ci/run).
fn go() -> PathBuf {
    let out = Command::new("go").arg("version").output();
    match out {
        Ok(o) if o.status.success() => PathBuf::from("go"),
        _ => panic!("the Go test needs the `go` command with cgo (Debian's golang-go; .ci/run installs it)"),
    }
}

/// Builds tests/progs/`src`.go with cgo into the test directory, for `bits`.
fn build_go(t: &Test, src: &str, bits: Bits) -> PathBuf {
    let source = bins().root.join("tests/progs").join(format!("{src}.go"));
    let output = t.path(src);
    // One build cache for every run: a cold one costs a minute.
    let cache = bins().mtcp.parent().unwrap().join("go-cache");
    let mut cmd = Command::new(go());
    cmd.args(["build", "-o"])
        .arg(&output)
        .arg(&source)
        .current_dir(&t.dir)
        .env("CGO_ENABLED", "1")
        .env("GOCACHE", &cache)
        .env("GOPATH", t.path("gopath"))
        .env("GO111MODULE", "off")
        .env("GOPROXY", "off");
    match bits {
        Bits::B64 => cmd.env("GOARCH", "amd64").env("CC", "gcc"),
        Bits::B32 => cmd.env("GOARCH", "386").env("CC", "gcc -m32"),
    };
    let out = run_output(cmd, Duration::from_secs(100));
    assert!(
        out.status.success(),
        "go build {src}.go failed:\n{}",
        describe_output(&out)
    );
    output
}

/// Three checkpoint / kill / restart cycles of a Go program, each restart the next one's
/// original; the program checks its own pipeline (`BAD` on a gap) and goes on counting.
fn go_restarts(t: &Test, prog: &Path) {
    let mut p = t.launch(prog, &["400"]);
    p.wait_for_count(5, LINE_TIMEOUT);
    for round in 1..=3 {
        let c = cycle(t, p);
        let r = c.restarted;
        let (a, b) = (state_at(&r, c.first), state_at(&r, c.first + 20));
        assert!(
            field(&b, "piped") > field(&a, "piped") && field(&b, "ticks") > field(&a, "ticks"),
            "round {round}: the pipe or the ticker stopped after the restart: {a:?} then {b:?}\n{}",
            r.describe()
        );
        p = r;
    }
    p.kill9();
    p.assert_no_bad();
}

/// A cgo Go program (several goroutines and threads, a time.Ticker, a channel pipeline
/// fed through an os.Pipe that the netpoller waits on) checkpointed and restarted three
/// times: it goes on counting, and its pipeline loses nothing.
#[test]
fn go_program_goes_on_through_three_restarts() {
    let t = Test::new("gocount");
    let prog = build_go(&t, "gocount", Bits::B64);
    go_restarts(&t, &prog);
}
