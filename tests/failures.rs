//! A checkpoint that cannot complete must leave the previous image exactly as it was
//! and the program running: a full disk, and the process killed halfway through writing.

pub mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: PathBuf, size: &str) -> Tmpfs {
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status();
        assert!(
            matches!(st, Ok(s) if s.success()),
            "cannot mount a tmpfs on {} (these tests run as root)",
            dir.display()
        );
        Tmpfs(dir)
    }

    fn resize(&self, bytes: u64) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(&self.0)
            .status();
        assert!(
            matches!(st, Ok(s) if s.success()),
            "cannot resize the tmpfs on {}",
            self.0.display()
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn launch_in(prog: &Path, dir: &Path, args: &[&str]) -> Proc {
    let mut cmd = Command::new(&bins().mtcp);
    cmd.arg("launch")
        .arg("--dir")
        .arg(dir)
        .arg("--")
        .arg(prog)
        .args(args)
        .current_dir(dir);
    Proc::spawn(cmd, &format!("launch {}", prog.display()))
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn full_disk_keeps_the_previous_image_and_the_program() {
    let t = Test::new("full_disk");
    let prog = t.compile_c("bigcounter", Variant::Dynamic, &[]);
    let fs_ = Tmpfs::mount(t.subdir("small"), "256m");
    let mut p = launch_in(&prog, &fs_.0, &["16"]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let image = checkpoint(p.pid());
    let before = fs::read(&image).unwrap();

    // Room for what is there plus a little: the next image cannot fit.
    fs_.resize(before.len() as u64 + (1 << 20));
    let out = try_checkpoint(p.pid());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a checkpoint onto a full disk reported success:\n{}",
        describe_output(&out)
    );
    assert!(
        err.contains("ENOSPC") || err.contains("No space"),
        "the error does not say the disk is full:\n{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "expected one line of error:\n{err}");

    let last = p.last_count().unwrap();
    p.wait_for_count(last + 5, LINE_TIMEOUT);
    p.assert_no_bad();
    assert!(fs::read(&image).unwrap() == before, "the previous image changed");
    assert_eq!(
        files_in(&fs_.0),
        vec![image.file_name().unwrap().to_string_lossy().into_owned()],
        "a partial image was left behind"
    );

    // With room again, the same program checkpoints fine, and that image restarts.
    fs_.resize(256 << 20);
    let again = checkpoint(p.pid());
    assert_eq!(again, image, "the image name changed");
    p.kill9();
    let mut r = t.restart(&again);
    let first = r.wait_first_count(LINE_TIMEOUT);
    r.wait_for_count(first + 10, LINE_TIMEOUT);
    r.assert_no_bad();
}

#[test]
fn killed_while_writing_keeps_the_previous_image() {
    let t = Test::new("killed_writing");
    let prog = t.compile_c("bigcounter", Variant::Dynamic, &[]);
    let dir = t.subdir("images");
    let mut p = launch_in(&prog, &dir, &["768"]);
    p.wait_for_count(2, Duration::from_secs(60));
    let image = checkpoint(p.pid());
    let before = fs::read(&image).unwrap();
    let name = image.file_name().unwrap().to_string_lossy().into_owned();

    // A second checkpoint, killed as soon as its temporary file appears.
    assert!(send_signal(p.pid(), SIGUSR2));
    let start = Instant::now();
    let tmp = poll(Duration::from_secs(30), || {
        files_in(&dir).into_iter().find(|f| f.ends_with(".tmp"))
    });
    assert!(
        tmp.is_some(),
        "no temporary image appeared within 30 s: {:?}",
        files_in(&dir)
    );
    p.kill9();
    eprintln!(
        "[killed_writing] killed {:?} after the temporary image appeared",
        start.elapsed()
    );

    assert!(fs::read(&image).unwrap() == before, "the previous image changed");
    let text = inspect_text(&image);
    assert!(
        text.contains("checksums: all"),
        "the previous image does not verify:\n{text}"
    );
    assert!(files_in(&dir).contains(&name));
    let mut r = t.restart(&image);
    let first = r.wait_first_count(Duration::from_secs(60));
    r.wait_for_count(first + 5, LINE_TIMEOUT);
    r.assert_no_bad();
}

/// Until it gives up the address space, a restart stays stoppable: `timeout` and Ctrl-C
/// (SIGTERM, SIGINT) end it at once, with nothing restored. Here it waits, before that
/// point, for the image's pid (still in use by the original) to become free.
#[test]
fn restart_is_stoppable_before_the_point_of_no_return() {
    use std::os::unix::process::ExitStatusExt;
    let t = Test::new("stoppable_restart");
    let prog = t.compile_c("counter", Variant::Dynamic, &[]);
    let mut original = t.launch(&prog, &["100000"]);
    original.wait_for_count(3, LINE_TIMEOUT);
    let image = checkpoint(original.pid());
    for (sig, name) in [(15, "SIGTERM"), (2, "SIGINT")] {
        let mut cmd = Command::new(&bins().mtcp);
        cmd.args(["restart", "--same-pid"]).arg(&image).current_dir(&t.dir);
        default_actions(&mut cmd, &[2, 15]);
        let mut r = Proc::spawn(cmd, "restart --same-pid while the pid is taken");
        std::thread::sleep(Duration::from_millis(500));
        let sent = Instant::now();
        assert!(send_signal(r.pid(), sig));
        let st = r.wait_exit(Duration::from_secs(10));
        assert_eq!(
            st.signal(),
            Some(sig),
            "{name} did not end the restart ({:?} after it was sent)\n{}",
            sent.elapsed(),
            r.describe()
        );
        assert!(r.counts().is_empty(), "the program was restored\n{}", r.describe());
        // It ended while it waited, not after giving up the wait and going on.
        let went_on = r.stderr_lines().iter().any(|l| l.contains("restoring with new ids"));
        assert!(!went_on, "{name} was held until the restart went on\n{}", r.describe());
    }
    original.assert_no_bad();
    original.kill9();
}
