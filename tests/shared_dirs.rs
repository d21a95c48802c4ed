//! What mtcp creates in shared directories cannot be planted or hijacked by another
//! user, answers reach the request that asked, and nothing is left behind: a status
//! directory planted in /tmp, symbolic links and files planted at the names images used
//! to be written through, a world-writable image directory, two checkpoints at once, a
//! restarted copy beside its original, temporary images of a killed writer, and image
//! paths with any bytes in them. The /tmp attacks run in a private mount namespace (a
//! directory of the test bound over /tmp), so the real /tmp is never touched; the
//! attacker is the user `nobody` (uid 65534). They need root, as CI runs them.

pub mod common;

use common::*;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const NOBODY: u32 = 65534;

fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {} (these tests need root): {e}", p.display()));
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// The pid the kernel will hand out next, roughly (the last one it gave).
fn last_pid() -> u32 {
    fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Another user has prepared /tmp: the status directory `/tmp/.mtcp-0` is theirs and open
/// to all, with symbolic links to a root-only file at every name the next pids' status
/// would have been written through, and links and a file of theirs at every name the
/// next pids' temporary images used to be written through. A program launched by root
/// must write through none of them (the victim stays intact, every image is root's own,
/// mode 0600, at its real name), say that it will not use the planted directory, and
/// `mtcp checkpoint` must refuse to believe anything found there.
#[test]
fn planted_tmp_is_never_written_through() {
    let t = Test::new("planted_tmp");
    let prog = t.compile_c("counter", Variant::Dynamic, &[]);
    let fake = t.subdir("tmp");
    chmod(&fake, 0o1777);
    fs::copy(&prog, fake.join("counter")).unwrap();
    let victim = fake.join("victim");
    fs::write(&victim, "precious\n").unwrap();
    chmod(&victim, 0o600);
    let planted_dir = fake.join(".mtcp-0");
    fs::create_dir(&planted_dir).unwrap();
    chown(&planted_dir, NOBODY, NOBODY);
    chmod(&planted_dir, 0o777);
    let next = last_pid();
    for pid in next..next + 3000 {
        let link = planted_dir.join(format!(".{pid}.status.tmp"));
        std::os::unix::fs::symlink("/tmp/victim", &link).unwrap();
        chown(&link, NOBODY, NOBODY);
        // The temporary image's old name: a link to the victim, or a file of theirs.
        let planted = fake.join(format!(".ckpt_counter_{pid}.mtcp.tmp"));
        if pid % 2 == 0 {
            std::os::unix::fs::symlink("/tmp/victim", &planted).unwrap();
        } else {
            fs::write(&planted, "").unwrap();
            chmod(&planted, 0o666);
        }
        chown(&planted, NOBODY, NOBODY);
    }

    // The tool and the runtime go along: the build tree may itself be under /tmp.
    let tools = fake.join("bin/release");
    fs::create_dir_all(&tools).unwrap();
    for file in [&bins().mtcp, &bins().mtcp_restart, &bins().libmtcp_so] {
        fs::copy(file, tools.join(file.file_name().unwrap())).unwrap();
    }
    let mtcp_inside = Path::new("/tmp/bin/release/mtcp");

    // Inside a mount namespace of its own, with the prepared directory as /tmp.
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$1" /tmp && exec "$2" launch --dir /tmp -- /tmp/counter 1000000"#)
        .arg("sh")
        .arg(&fake)
        .arg(mtcp_inside)
        .current_dir(&t.dir);
    let mut p = Proc::spawn(cmd, "launch in a private /tmp");
    let pid = p.pid();
    assert!((pid as u32) < next + 3000, "pid {pid} beyond the planted range");
    p.wait_for_count(3, LINE_TIMEOUT);
    let warned = p
        .stderr_lines()
        .iter()
        .any(|l| l.contains(".mtcp-0") && l.contains("65534"));
    assert!(warned, "no word about the planted status directory\n{}", p.describe());

    // The tool, in the same namespace, believes nothing found there.
    let mut tool = Command::new("nsenter");
    tool.arg("-t").arg(pid.to_string()).arg("-m").arg(mtcp_inside);
    tool.args(["checkpoint", "--timeout", "5", &pid.to_string()]);
    let out = run_output(tool, Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(1) && err.contains(".mtcp-0") && err.contains("refusing to trust"),
        "mtcp checkpoint must refuse the planted status directory\n{}",
        describe_output(&out)
    );
    assert!(out.stdout.is_empty(), "it printed a path\n{}", describe_output(&out));

    // Checkpoints still work; each image is root's own, at its own name.
    let image = fake.join(format!("ckpt_counter_{pid}.mtcp"));
    for round in 0..3 {
        let before = fs::metadata(&image).and_then(|m| m.modified()).ok();
        assert!(send_signal(pid, SIGUSR2));
        let written = poll(CHECKPOINT_TIMEOUT, || {
            let m = fs::metadata(&image).and_then(|m| m.modified()).ok();
            (m.is_some() && m != before).then_some(())
        });
        assert!(written.is_some(), "checkpoint {round}: no image\n{}", p.describe());
    }
    let md = fs::symlink_metadata(&image).unwrap();
    assert!(
        md.is_file() && md.uid() == 0 && md.mode() & 0o777 == 0o600,
        "the image is not root's own 0600 file: uid {} mode {:o}",
        md.uid(),
        md.mode()
    );
    assert_eq!(
        fs::read_to_string(&victim).unwrap(),
        "precious\n",
        "written through a planted link"
    );
    for pid in next..next + 3000 {
        let planted = fake.join(format!(".ckpt_counter_{pid}.mtcp.tmp"));
        let md = fs::symlink_metadata(&planted).unwrap();
        if pid % 2 == 0 {
            assert!(md.file_type().is_symlink(), "{} was replaced", planted.display());
        } else {
            assert_eq!(md.len(), 0, "{} was written", planted.display());
        }
    }
    let planted_files = fs::read_dir(&planted_dir).unwrap().count();
    assert_eq!(
        planted_files, 3000,
        "something was written into the planted status directory"
    );
    p.assert_no_bad();
}

/// An image directory any user may write to, without the sticky bit, would let anyone
/// replace the images: the runtime refuses it at start with one line, and the program
/// does not run without checkpoints.
#[test]
fn world_writable_image_directory_is_refused() {
    let t = Test::new("ww_dir");
    let prog = t.compile_c("counter", Variant::Dynamic, &[]);
    let ww = t.subdir("open");
    chmod(&ww, 0o777);
    let out = mtcp(
        &[
            "launch",
            "--dir",
            ww.to_str().unwrap(),
            "--",
            prog.to_str().unwrap(),
            "5",
        ],
        Duration::from_secs(20),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", describe_output(&out));
    assert!(err.contains("not sticky") && err.trim().lines().count() == 1, "{err}");
    assert!(out.stdout.is_empty(), "the program ran\n{}", describe_output(&out));
    // With the sticky bit (as /tmp has) it is fine.
    chmod(&ww, 0o1777);
    let mut p = t.launch_with(&["--dir", ww.to_str().unwrap()], &prog, &["100000"]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let image = checkpoint(p.pid());
    assert_eq!(image.parent(), Some(ww.as_path()));
    p.kill9();
}

/// `mtcp checkpoint PID` twice at the same moment: each request gets its answer (they
/// may share one checkpoint), both print the image's path.
#[test]
fn two_checkpoint_commands_at_once_both_answer() {
    let t = Test::new("two_at_once");
    let prog = t.compile_c("counter", Variant::Dynamic, &["-pthread"]);
    let mut p = t.launch(&prog, &["100000"]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let pid = p.pid().to_string();
    for round in 0..10 {
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let pid = pid.clone();
                std::thread::spawn(move || mtcp(&["checkpoint", "--timeout", "20", &pid], CHECKPOINT_TIMEOUT))
            })
            .collect();
        for run in runs {
            let out = run.join().unwrap();
            let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert!(
                out.status.success() && Path::new(&path).is_file(),
                "round {round}: a request went unanswered\n{}",
                describe_output(&out)
            );
        }
    }
    p.assert_no_bad();
    p.kill9();
}

/// A restarted copy runs beside its original (same computation, same image name): their
/// checkpoints, taken at the same moments, never share a temporary file; each succeeds,
/// and the image in place is always a whole one.
#[test]
fn restarted_copy_and_original_checkpoint_side_by_side() {
    let t = Test::new("copy_and_original");
    let prog = t.compile_c("counter", Variant::Dynamic, &[]);
    let mut original = t.launch(&prog, &["100000"]);
    original.wait_for_count(3, LINE_TIMEOUT);
    let image = checkpoint(original.pid());
    let saved = t.path("saved.mtcp");
    fs::copy(&image, &saved).unwrap();
    let mut copy = t.restart(&saved);
    copy.wait_for_line("a count after the restart", LINE_TIMEOUT, |l| parse_count(l).is_some());
    for round in 0..10 {
        let pids = [original.pid(), copy.pid()];
        let runs: Vec<_> = pids
            .iter()
            .map(|&pid| std::thread::spawn(move || try_checkpoint(pid)))
            .collect();
        for run in runs {
            let out = run.join().unwrap();
            assert!(out.status.success(), "round {round}\n{}", describe_output(&out));
        }
        let doc = inspect_json(&image);
        assert_eq!(
            doc.get("checksums_ok").and_then(|v| v.as_bool()),
            Some(true),
            "round {round}"
        );
    }
    let leftovers: Vec<_> = fs::read_dir(&t.dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().as_bytes().ends_with(b"tmp"))
        .map(|e| e.path())
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    original.kill9();
    copy.kill9();
}

/// A checkpoint killed halfway leaves its temporary image behind; the next checkpoint
/// written into that directory removes it (a live writer's stays). A status file of a
/// process that is gone is removed when a runtime starts.
#[test]
fn leftovers_of_dead_writers_are_removed() {
    let t = Test::new("leftovers");
    let prog = t.compile_c("counter", Variant::Dynamic, &[]);
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let live = std::process::id();
    let stale = t.path(&format!(".ckpt_counter_1.mtcp.{dead}.0123456789abcdef.tmp"));
    let busy = t.path(&format!(".ckpt_counter_1.mtcp.{live}.0123456789abcdef.tmp"));
    // Not of this pattern: never touched.
    let other = t.path(&format!(".notes.{dead}.0123456789abcdef.tmp"));
    fs::write(&other, "a user's file").unwrap();
    fs::write(&stale, "half an image").unwrap();
    fs::write(&busy, "being written").unwrap();
    let status_dir = PathBuf::from("/tmp/.mtcp-0");
    let old_status = status_dir.join(format!("{dead}.status"));
    let mut p = t.launch(&prog, &["100000"]);
    p.wait_for_count(3, LINE_TIMEOUT);
    // The runtime made its status directory by now; a dead process's file appears there.
    if status_dir.is_dir() {
        fs::write(&old_status, "1 0 ready -\n").unwrap();
    }
    checkpoint(p.pid());
    assert!(!stale.exists(), "the dead writer's temporary image is still there");
    assert!(busy.exists(), "a live writer's temporary image was removed");
    assert!(other.exists(), "a file that is no temporary image was removed");
    p.kill9();
    let mut q = t.launch(&prog, &["100000"]);
    q.wait_for_count(3, LINE_TIMEOUT);
    assert!(!old_status.exists(), "the status file of a process that is gone stays");
    q.kill9();
}

/// An image directory whose name holds a newline and a byte that is not UTF-8: `mtcp
/// checkpoint` prints the image's path byte for byte, and it is the image.
#[test]
fn image_paths_are_bytes_end_to_end() {
    let t = Test::new("odd_paths");
    let prog = t.compile_c("counter", Variant::Dynamic, &[]);
    let mut name = b"odd\nname ".to_vec();
    name.push(0xff);
    let dir = t.dir.join(OsStr::from_bytes(&name));
    fs::create_dir(&dir).unwrap();
    let mut cmd = Command::new(&bins().mtcp);
    cmd.arg("launch")
        .arg("--dir")
        .arg(&dir)
        .arg("--")
        .arg(&prog)
        .arg("100000");
    cmd.current_dir(&t.dir);
    let mut p = Proc::spawn(cmd, "launch into an odd directory");
    p.wait_for_count(3, LINE_TIMEOUT);
    let out = mtcp(&["checkpoint", &p.pid().to_string()], CHECKPOINT_TIMEOUT);
    assert!(out.status.success(), "{}", describe_output(&out));
    let mut want = dir
        .join(format!("ckpt_counter_{}.mtcp", p.pid()))
        .into_os_string()
        .into_vec();
    assert!(Path::new(OsStr::from_bytes(&want)).is_file());
    want.push(b'\n');
    assert_eq!(out.stdout, want, "the printed path is not the image's");
    p.kill9();
}

/// `mtcp clean DIR` lists (with --dry-run) and removes the temporary images of dead
/// writers and the status and progress files of processes that are gone, and nothing
/// else.
#[test]
fn mtcp_clean_removes_only_leftovers() {
    let t = Test::new("clean");
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let live = std::process::id();
    let stale = t.path(&format!(".ckpt_x_1.mtcp.{dead}.00000000000000aa.tmp"));
    let busy = t.path(&format!(".ckpt_x_1.mtcp.{live}.00000000000000bb.tmp"));
    let other = t.path(&format!(".notes.{dead}.00000000000000cc.tmp"));
    let image = t.path("ckpt_x_1.mtcp");
    for f in [&stale, &busy, &other, &image] {
        fs::write(f, "x").unwrap();
    }
    // A status directory of this test's own (other tests' runtimes tidy /tmp/.mtcp-0).
    let runtime_dir = t.subdir("run");
    chmod(&runtime_dir, 0o700);
    let status_dir = runtime_dir.join("mtcp");
    fs::create_dir(&status_dir).unwrap();
    chmod(&status_dir, 0o700);
    let old_status = status_dir.join(format!("{dead}.status"));
    fs::write(&old_status, "1 0 ready -\n").unwrap();
    let old_progress = status_dir.join(format!("{dead}.progress"));
    let live_progress = status_dir.join(format!("{live}.progress"));
    fs::write(&old_progress, [0u8; 64]).unwrap();
    fs::write(&live_progress, [0u8; 64]).unwrap();
    let clean = |extra: &[&str]| {
        let mut cmd = Command::new(&bins().mtcp);
        cmd.arg("clean")
            .args(extra)
            .arg(&t.dir)
            .env("XDG_RUNTIME_DIR", &runtime_dir);
        run_output(cmd, Duration::from_secs(20))
    };

    let out = clean(&["--dry-run"]);
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", describe_output(&out));
    assert!(
        listed.contains(stale.to_str().unwrap())
            && listed.contains(old_status.to_str().unwrap())
            && listed.contains(old_progress.to_str().unwrap()),
        "{listed}"
    );
    assert!(
        !listed.contains(busy.to_str().unwrap()) && !listed.contains("notes"),
        "{listed}"
    );
    assert!(stale.exists() && old_status.exists(), "--dry-run removed something");

    let out = clean(&[]);
    assert!(out.status.success(), "{}", describe_output(&out));
    assert!(
        !stale.exists() && !old_status.exists() && !old_progress.exists(),
        "{}",
        describe_output(&out)
    );
    assert!(
        busy.exists() && other.exists() && image.exists() && live_progress.exists(),
        "removed more than leftovers"
    );
}

/// Where the process's XDG_RUNTIME_DIR is a private directory of its user, the status
/// file goes there (`$XDG_RUNTIME_DIR/mtcp`), and `mtcp checkpoint` finds it; where it is
/// not (open to all), /tmp/.mtcp-<uid> serves as before.
#[test]
fn status_files_go_to_a_private_runtime_dir() {
    let t = Test::new("xdg");
    let prog = t.compile_c("counter", Variant::Dynamic, &[]);
    let private = t.subdir("run-user");
    chmod(&private, 0o700);
    let open = t.subdir("run-open");
    chmod(&open, 0o777);
    for (runtime_dir, expected) in [(&private, private.join("mtcp")), (&open, PathBuf::from("/tmp/.mtcp-0"))] {
        let mut cmd = Command::new(&bins().mtcp);
        cmd.args(["launch", "--dir"])
            .arg(&t.dir)
            .arg("--")
            .arg(&prog)
            .arg("100000")
            .env("XDG_RUNTIME_DIR", runtime_dir)
            .current_dir(&t.dir);
        let mut p = Proc::spawn(cmd, "launch with XDG_RUNTIME_DIR");
        p.wait_for_count(3, LINE_TIMEOUT);
        let status = expected.join(format!("{}.status", p.pid()));
        assert!(status.is_file(), "no {}\n{}", status.display(), p.describe());
        let image = checkpoint(p.pid());
        assert!(image.is_file());
        let line = fs::read_to_string(&status).unwrap();
        assert!(line.contains(image.to_str().unwrap()), "{line}");
        p.kill9();
    }
    let md = fs::metadata(private.join("mtcp")).unwrap();
    assert_eq!(md.mode() & 0o777, 0o700, "the status directory is private");
}
