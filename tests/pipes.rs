//! Pipes inside the process come back: the bytes in them and the thread blocked reading.

pub mod common;

use common::*;
use std::time::Duration;

#[test]
fn pipes_inside_the_process_keep_their_bytes_and_readers() {
    let t = Test::new("pipes");
    let prog = t.compile_c("pipes", Variant::Dynamic, &["-pthread"]);
    let mut p = t.launch(&prog, &["70", "40"]);
    p.wait_for_count(8, LINE_TIMEOUT);
    let mut c = cycle(&t, p);
    assert!(
        c.first < 40,
        "the checkpoint must come before the held message is read (first count {})",
        c.first
    );
    let r = &mut c.restarted;
    let held = r.wait_for_line("`held ...`", Duration::from_secs(20), |l| l.starts_with("held "));
    assert_eq!(
        held,
        "held kept-across-the-restart",
        "the bytes in the pipe changed\n{}",
        r.describe()
    );
    expect_done(r, 70, Duration::from_secs(20));
    let got: Vec<String> = r.lines().into_iter().filter(|l| l.starts_with("got msg")).collect();
    assert!(
        got.len() >= 5,
        "the blocked reader thread received too little after restart: {got:?}\n{}",
        r.describe()
    );
    let warnings: Vec<String> = r.stderr_lines().into_iter().filter(|l| l.contains("pipe")).collect();
    assert!(
        warnings.is_empty(),
        "pipes inside the process were reported as lost: {warnings:?}"
    );
}

/// Sets /proc/sys/fs/pipe-max-size, and puts the old value back when dropped.
struct PipeMaxSize(String);

impl PipeMaxSize {
    const PATH: &'static str = "/proc/sys/fs/pipe-max-size";

    fn raise_to(bytes: usize) -> PipeMaxSize {
        let old = std::fs::read_to_string(Self::PATH).unwrap();
        std::fs::write(Self::PATH, bytes.to_string()).expect("set pipe-max-size (this test needs root)");
        PipeMaxSize(old)
    }
}

impl Drop for PipeMaxSize {
    fn drop(&mut self) {
        let _ = std::fs::write(Self::PATH, self.0.trim());
    }
}

/// A pipe that held more than the restarting user's pipes may (the limit was higher
/// when the program made it): the restart refuses with one line before it changes
/// anything, rather than hang writing the bytes back or lose them. (Needs root, to raise
/// the limit for a moment and to restart as another user.)
#[test]
fn pipe_larger_than_the_user_may_have_is_refused() {
    let t = Test::new("bigpipe");
    let prog = t.compile_c("bigpipe", Variant::Dynamic, &[]);
    let raised = PipeMaxSize::raise_to(4 << 20);
    let mut p = t.launch(&prog, &["2"]);
    p.wait_for_line("`held`", LINE_TIMEOUT, |l| l.starts_with("held"));
    drop(raised);
    p.wait_for_count(3, LINE_TIMEOUT);
    let image = checkpoint(p.pid());
    p.kill9();
    let json = inspect_json(&image);
    let buffered: u64 = json["fds"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["buffered"].as_u64())
        .sum();
    assert_eq!(buffered, 2 << 20, "the pipe's bytes are not in the image: {json}");
    // Readable by the other user, in a directory it may enter.
    std::fs::set_permissions(&image, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(Bits::B64.mtcp_restart())
        .arg(&image)
        .current_dir(&t.dir);
    let out = run_output(cmd, Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", describe_output(&out));
    assert!(
        err.contains("more than this user's pipes can hold"),
        "unclear error:\n{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line:\n{err}");
}
