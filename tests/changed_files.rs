//! Files on disk that changed after the checkpoint: the restored process must run the
//! code and data it had, never the new file's, and say what it noticed when asked.

pub mod common;

use common::*;
use std::fs;
use std::process::Command;

#[test]
fn rebuilt_executable_does_not_leak_into_the_restored_process() {
    let t = Test::new("rebuilt_exe");
    let prog = t.compile_c("counter", Variant::Dynamic, &[]);
    let mut p = t.launch(&prog, &["100000"]);
    p.wait_for_count(5, LINE_TIMEOUT);
    let image = checkpoint(p.pid());
    p.kill9();

    // Same path, different program (a new inode with other code and data).
    fs::remove_file(&prog).unwrap();
    let other = t.compile_as("bigcounter", "counter", Variant::Dynamic, Bits::B64, &[]);
    assert_eq!(other, prog);

    let mut cmd = Command::new(&bins().mtcp);
    cmd.args(["restart", "--verbose"]).arg(&image).current_dir(&t.dir);
    let mut r = Proc::spawn(cmd, "restart --verbose");
    let first = r.wait_first_count(LINE_TIMEOUT);
    r.wait_for_count(first + 20, LINE_TIMEOUT);
    r.assert_no_bad();
    r.assert_consecutive();
    let noted = r
        .stderr_lines()
        .iter()
        .any(|l| l.contains("changed or is gone") && l.contains("counter"));
    assert!(
        noted,
        "mtcp_restart --verbose did not say the executable changed\n{}",
        r.describe()
    );
}

#[test]
fn deleted_executable_restarts_from_the_image() {
    let t = Test::new("deleted_exe");
    let prog = t.compile_c("counter", Variant::Static, &[]);
    let mut p = t.launch(&prog, &["100000"]);
    p.wait_for_count(5, LINE_TIMEOUT);
    let image = checkpoint(p.pid());
    p.kill9();
    fs::remove_file(&prog).unwrap();
    let mut r = t.restart(&image);
    let first = r.wait_first_count(LINE_TIMEOUT);
    r.wait_for_count(first + 20, LINE_TIMEOUT);
    r.assert_no_bad();
}
