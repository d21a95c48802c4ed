//! The four ways a checkpoint starts: the checkpoint signal sent by anyone, the interval
//! timer, `mtcp checkpoint PID`, and the program's own mtcp_checkpoint() call; and the
//! errors of `mtcp checkpoint` itself. Each scenario with a program runs for x86_64 and,
//! as `*_32`, for i386 (`gcc -m32`) programs.

pub mod common;

use common::*;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// (inode, mtime) of an image: changes whenever the image is rewritten (renamed into place).
fn identity(p: &Path) -> Option<(u64, i64, i64)> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.ino(), m.mtime(), m.mtime_nsec()))
}

/// Sends `sig` to `p` and waits for the image of computation `vpid` (the pid of its
/// first launch) in `dir` to appear or be replaced, and to be readable by `mtcp inspect`.
fn signal_and_wait(p: &mut Proc, vpid: i32, dir: &Path, sig: i32) -> PathBuf {
    let before = image_for(dir, vpid).and_then(|i| identity(&i));
    assert!(send_signal(p.pid(), sig), "cannot signal {}", p.pid());
    let image = poll(Duration::from_secs(20), || {
        let i = image_for(dir, vpid)?;
        let id = identity(&i)?;
        (Some(id) != before).then_some(i)
    })
    .unwrap_or_else(|| {
        panic!(
            "no image in {} within 20 s of signal {sig}\n{}",
            dir.display(),
            p.describe()
        )
    });
    assert!(
        p.exited().is_none(),
        "the process died of the checkpoint signal\n{}",
        p.describe()
    );
    inspect_text(&image);
    image
}

fn by_default_signal(bits: Bits) {
    let t = Test::new(&bits.name("signal_usr2"));
    let prog = t.compile("counter", Variant::Dynamic, bits, &[]);
    let mut p = t.launch(&prog, &["90"]);
    p.wait_for_count(5, LINE_TIMEOUT);
    let (dir, vpid) = (t.dir.clone(), p.pid());
    let mut c = cycle_with(&t, p, |p| signal_and_wait(p, vpid, &dir, SIGUSR2));
    expect_done(&mut c.restarted, 90, Duration::from_secs(30));
}

per_width!(by_default_signal_usr2, by_default_signal_usr2_32 => by_default_signal());

fn by_chosen_signal(bits: Bits) {
    let t = Test::new(&bits.name("signal_usr1"));
    let prog = t.compile("counter", Variant::Static, bits, &[]);
    let mut p = t.launch_with(&["--signal", "USR1"], &prog, &["90"]);
    p.wait_for_count(5, LINE_TIMEOUT);
    let (dir, vpid) = (t.dir.clone(), p.pid());
    let mut c = cycle_with(&t, p, |p| signal_and_wait(p, vpid, &dir, SIGUSR1));
    // The restarted process still answers to USR1 (its handler was restored)...
    let image2 = signal_and_wait(&mut c.restarted, vpid, &t.dir, SIGUSR1);
    assert_eq!(
        image2, c.image,
        "re-checkpointing a restarted process rewrites its image"
    );
    // ... and `mtcp checkpoint` finds the configured signal by itself.
    let image3 = checkpoint(c.restarted.pid());
    assert_eq!(image3, c.image);
    expect_done(&mut c.restarted, 90, Duration::from_secs(30));
}

per_width!(by_chosen_signal_usr1_static, by_chosen_signal_usr1_static_32 => by_chosen_signal());

fn by_interval_of(bits: Bits) {
    let t = Test::new(&bits.name("interval"));
    let prog = t.compile("counter", Variant::Dynamic, bits, &[]);
    let mut p = t.launch_with(&["--interval", "1"], &prog, &["200"]);
    p.wait_first_count(LINE_TIMEOUT);
    let pid = p.pid();
    let image = poll(Duration::from_secs(6), || image_for(&t.dir, pid))
        .unwrap_or_else(|| panic!("no image within 6 s with --interval 1\n{}", p.describe()));
    let first_id = identity(&image);
    // Periodic: it is written again.
    poll(Duration::from_secs(6), || {
        (identity(&image) != first_id && identity(&image).is_some()).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the image was not rewritten within 6 s with --interval 1\n{}",
            p.describe()
        )
    });
    p.kill9();
    p.assert_no_bad();
    let at_kill = p.last_count().unwrap();
    inspect_text(&image);
    let mut r = t.restart(&image);
    let first = r.wait_first_count(LINE_TIMEOUT);
    assert!(
        first >= 2 && first <= at_kill + 1,
        "restarted at {first}; the original printed 1..={at_kill}\n{}",
        r.describe()
    );
    // The timer comes back with the process: the restarted one keeps writing its image.
    let restored_id = identity(&image);
    poll(Duration::from_secs(6), || {
        (identity(&image) != restored_id && identity(&image).is_some()).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the restarted process did not rewrite its image within 6 s (interval timer lost?)\n{}",
            r.describe()
        )
    });
    r.wait_for_count(first + 20, LINE_TIMEOUT);
    r.assert_no_bad();
    r.assert_consecutive();
    assert_eq!(t.images(), vec![image.clone()], "one image per computation");
}

per_width!(by_interval, by_interval_32 => by_interval_of());

fn by_checkpoint_command(bits: Bits) {
    let t = Test::new(&bits.name("checkpoint_cmd"));
    let prog = t.compile("counter", Variant::Dynamic, bits, &[]);
    let mut p = t.launch(&prog, &["90"]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let pid = p.pid();
    let out = mtcp(&["checkpoint", &pid.to_string()], CHECKPOINT_TIMEOUT);
    assert!(out.status.success(), "{}", describe_output(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let printed = PathBuf::from(stdout.lines().last().unwrap_or("").trim());
    assert_eq!(
        printed,
        t.dir.join(format!("ckpt_counter_{pid}.mtcp")),
        "image name and directory"
    );
    // A second checkpoint replaces the first.
    let id1 = identity(&printed);
    let again = checkpoint(pid);
    assert_eq!(again, printed);
    assert_ne!(
        identity(&printed),
        id1,
        "the second checkpoint did not rewrite the image"
    );
    let mut c = cycle(&t, p);
    assert_eq!(c.image, printed);
    expect_done(&mut c.restarted, 90, Duration::from_secs(30));
}

per_width!(by_mtcp_checkpoint_command, by_mtcp_checkpoint_command_32 => by_checkpoint_command());

/// The program calls mtcp_checkpoint() itself after count 5 (libmtcp.a linked in).
fn by_api(bits: Bits, name: &str, variant: Variant) {
    let t = Test::new(&bits.name(name));
    let prog = t.compile_as("counter", "apicounter", variant, bits, &["-DUSE_API"]);
    let mut p = t.launch(&prog, &["60", "--api-at", "5"]);
    let line = p.wait_for_line("`api ...`", LINE_TIMEOUT, |l| l.starts_with("api "));
    let expected_image = t.dir.join(format!("ckpt_apicounter_{}.mtcp", p.pid()));
    assert_eq!(
        line,
        format!("api checkpointed {}", expected_image.display()),
        "\n{}",
        p.describe()
    );
    assert!(expected_image.is_file());
    p.wait_for_count(8, LINE_TIMEOUT);
    p.kill9();
    p.assert_no_bad();
    let mut r = t.restart(&expected_image);
    let first_line = r.wait_for_line("any line", LINE_TIMEOUT, |_| true);
    assert_eq!(
        first_line,
        format!("api restarted {}", expected_image.display()),
        "\n{}",
        r.describe()
    );
    let first = r.wait_first_count(LINE_TIMEOUT);
    assert_eq!(
        first,
        6,
        "mtcp_checkpoint() was called right after count 5\n{}",
        r.describe()
    );
    expect_done(&mut r, 60, Duration::from_secs(30));
    assert_eq!(
        r.lines().iter().filter(|l| l.starts_with("api")).count(),
        1,
        "\n{}",
        r.describe()
    );
}

per_width!(by_api_static, by_api_static_32 => by_api("api_static", Variant::Static));

per_width!(by_api_static_pie, by_api_static_pie_32 => by_api("api_static_pie", Variant::StaticPie));

#[test]
fn checkpoint_command_errors() {
    let t = Test::new("checkpoint_errors");
    // No such process.
    let mut cmd = Command::new("true");
    cmd.current_dir(&t.dir);
    let mut gone = Proc::spawn(cmd, "true");
    let dead_pid = gone.pid();
    gone.wait_exit(Duration::from_secs(10));
    let out = mtcp(
        &["checkpoint", "--timeout", "5", &dead_pid.to_string()],
        CHECKPOINT_TIMEOUT,
    );
    assert_one_line_failure(&out, "checkpoint of a dead pid");

    // A process without the runtime: refused (or timed out), and left alive.
    let mut cmd = Command::new("sleep");
    cmd.arg("60");
    let mut sleeper = Proc::spawn(cmd, "sleep 60");
    std::thread::sleep(Duration::from_millis(200));
    let out = mtcp(
        &["checkpoint", "--timeout", "3", &sleeper.pid().to_string()],
        CHECKPOINT_TIMEOUT,
    );
    assert_one_line_failure(&out, "checkpoint of a process without the runtime");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        sleeper.exited().is_none(),
        "`mtcp checkpoint` killed a process that has no mtcp runtime ({})",
        describe_status(&sleeper.exited().unwrap())
    );
    assert!(t.images().is_empty());

    // Not a pid at all.
    let out = mtcp(&["checkpoint", "not-a-pid"], CHECKPOINT_TIMEOUT);
    assert!(
        !out.status.success() && out.status.code().is_some(),
        "{}",
        describe_output(&out)
    );
}

fn assert_one_line_failure(out: &std::process::Output, what: &str) {
    assert!(
        out.status.code().is_some_and(|c| c != 0),
        "{what}: expected a non-zero exit\n{}",
        describe_output(out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{what}: expected one line on stderr\n{}",
        describe_output(out)
    );
}

/// A process without the runtime that happens to catch SIGUSR2 (bash running a script
/// with an EXIT trap does, and so does this test's catcher) must be refused, not sent
/// the signal: `mtcp checkpoint` would otherwise kill it.
fn refuses_a_catcher(bits: Bits) {
    let t = Test::new(&bits.name("checkpoint_catcher"));
    let prog = t.compile("catcher", Variant::Dynamic, bits, &[]);
    let mut cmd = Command::new(&prog);
    cmd.current_dir(&t.dir);
    let label = format!("{} catcher (no mtcp runtime, catches SIGUSR2)", bits.arch());
    let mut p = Proc::spawn(cmd, &label);
    p.wait_for_line("`ready`", LINE_TIMEOUT, |l| l == "ready");
    let out = mtcp(
        &["checkpoint", "--timeout", "3", &p.pid().to_string()],
        CHECKPOINT_TIMEOUT,
    );
    std::thread::sleep(Duration::from_millis(300));
    let died = p.exited();
    assert!(
        died.is_none(),
        "BUG (cli/checkpoint.rs): `mtcp checkpoint {}` sent SIGUSR2 to a process that does not run the mtcp runtime \
         but catches SIGUSR2, and so killed it ({}). The SigCgt check alone cannot tell such a process from an mtcp one; \
         it should also require the runtime to be present (libmtcp.so in /proc/PID/maps, or mtcp symbols in /proc/PID/exe).\n\
         mtcp checkpoint: {}\n{}",
        p.pid(),
        describe_status(&died.unwrap()),
        describe_output(&out),
        p.describe()
    );
    assert_one_line_failure(&out, "checkpoint of a process that catches SIGUSR2 without the runtime");
}

per_width!(
    checkpoint_refuses_a_process_that_only_catches_the_signal,
    checkpoint_refuses_a_process_that_only_catches_the_signal_32 => refuses_a_catcher()
);
