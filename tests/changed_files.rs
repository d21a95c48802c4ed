//! Files on disk that changed after the checkpoint: the restored process must run the
//! code and data it had, never the new file's, and say what it noticed when asked.

pub mod common;

use common::*;
use std::fs;
use std::path::PathBuf;
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

/// The image of a counter that held `data` (in the test directory, "some data\n") open
/// for reading at fd 7: the shell opened it, the program inherited it.
fn image_holding_open_file(t: &Test) -> (PathBuf, PathBuf) {
    let prog = t.compile_c("counter", Variant::Dynamic, &[]);
    let data = t.path("data");
    fs::write(&data, "some data\n").unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"exec 7<"$1"; exec "$2" launch --dir "$3" -- "$4" 100000"#)
        .arg("sh")
        .arg(&data)
        .arg(&bins().mtcp)
        .arg(&t.dir)
        .arg(&prog)
        .current_dir(&t.dir);
    let mut p = Proc::spawn(cmd, "launch holding a file open");
    p.wait_for_count(3, LINE_TIMEOUT);
    let image = checkpoint(p.pid());
    p.kill9();
    (data, image)
}

/// A file the program held open was replaced by a FIFO, then by a directory: the restart
/// never blocks opening it (a FIFO nobody writes to would block for ever) and never hands
/// the program something of another type; it names the descriptor, which stays closed,
/// and the program goes on.
#[test]
fn open_file_replaced_by_another_type() {
    let t = Test::new("replaced_type");
    let (data, image) = image_holding_open_file(&t);
    let json = inspect_json(&image);
    let held = json["fds"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["fd"].as_u64() == Some(7));
    assert!(held, "fd 7 is not in the image: {json}");

    fs::remove_file(&data).unwrap();
    let made = Command::new("mkfifo").arg(&data).status().unwrap();
    assert!(made.success());
    for what in ["FIFO", "directory"] {
        if what == "directory" {
            fs::remove_file(&data).unwrap();
            fs::create_dir(&data).unwrap();
        }
        let mut r = t.restart(&image);
        let first = r.wait_first_count(LINE_TIMEOUT);
        r.wait_for_count(first + 5, LINE_TIMEOUT);
        let said = r
            .stderr_lines()
            .iter()
            .any(|l| l.contains("fd 7") && l.contains(what) && l.contains("stays closed"));
        assert!(said, "the restart did not name fd 7, now a {what}\n{}", r.describe());
        r.assert_no_bad();
        r.kill9();
    }
}

/// A file the program held open is restored silently while untouched; once modified, the
/// restart says so with its sizes; once replaced (removed and written anew, maybe at the
/// same inode number), it says that. The program gets the file in each case and goes on.
#[test]
fn open_file_modified_or_replaced_is_named() {
    let t = Test::new("file_identity");
    let (data, image) = image_holding_open_file(&t);
    let restart_and_tell = |what: &str| -> Vec<String> {
        let mut r = t.restart(&image);
        let first = r.wait_first_count(LINE_TIMEOUT);
        r.wait_for_count(first + 3, LINE_TIMEOUT);
        r.assert_no_bad();
        let said: Vec<String> = r.stderr_lines().into_iter().filter(|l| l.contains("fd 7")).collect();
        r.kill9();
        eprintln!("[{what}] {said:?}");
        said
    };
    assert!(
        restart_and_tell("untouched").is_empty(),
        "an untouched file drew a warning"
    );

    fs::write(&data, "some data\nmore\n").unwrap();
    let said = restart_and_tell("modified");
    assert!(
        said.iter()
            .any(|l| l.contains("modified since the checkpoint") && l.contains("size 10 then, 15 now")),
        "the modification was not named: {said:?}"
    );

    fs::remove_file(&data).unwrap();
    fs::write(&data, "other\n").unwrap();
    let said = restart_and_tell("replaced");
    assert!(
        said.iter().any(|l| l.contains("replaced by another file")),
        "the replacement was not named: {said:?}"
    );
}
