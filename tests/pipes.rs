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
