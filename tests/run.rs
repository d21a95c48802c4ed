//! `mtcp run`: a batch job's first run, its checkpoint on SIGTERM, and the requeued runs that resume it; exit statuses, damaged images, --fresh, and a directory of another command.

pub mod common;

use common::*;
use mtcp_core::image;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const SIGTERM: i32 = 15;
/// What `mtcp run` exits with once it has checkpointed and stopped the program.
const RESUME: i32 = 85;
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// The command line `mtcp run --dir D [opts] -- prog args`.
fn run_command(d: &Path, opts: &[&str], prog: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(&bins().mtcp);
    cmd.arg("run")
        .arg("--dir")
        .arg(d)
        .args(opts)
        .arg("--")
        .arg(prog)
        .args(args);
    cmd
}

/// `mtcp run --dir D [opts] -- prog args`, started in the test directory.
fn run(t: &Test, d: &Path, opts: &[&str], prog: &Path, args: &[&str], label: &str) -> Proc {
    let mut cmd = run_command(d, opts, prog, args);
    cmd.current_dir(&t.dir);
    Proc::spawn(cmd, label)
}

/// `run` to completion, for the runs that must refuse or end by themselves.
fn run_to_end(d: &Path, opts: &[&str], prog: &Path, args: &[&str]) -> Output {
    run_output(run_command(d, opts, prog, args), RUN_TIMEOUT)
}

/// The pid the program printed first (`start PID`).
fn started_pid(p: &mut Proc) -> i32 {
    let line = p.wait_for_line("`start PID`", LINE_TIMEOUT, |l| l.starts_with("start "));
    line["start ".len()..].trim().parse().unwrap()
}

/// Sends `sig` to `mtcp run` and checks that it checkpoints the program, kills it and
/// exits 85; returns the last count printed.
fn stop_with(p: &mut Proc, sig: i32, program_pid: i32) -> u64 {
    assert!(send_signal(p.pid(), sig));
    let st = p.wait_exit(CHECKPOINT_TIMEOUT);
    assert_eq!(
        st.code(),
        Some(RESUME),
        "mtcp run did not exit {RESUME}\n{}",
        p.describe()
    );
    assert!(
        p.stderr_lines().iter().any(|l| l.contains("checkpointed to")),
        "no word of the checkpoint\n{}",
        p.describe()
    );
    assert!(
        !Path::new(&format!("/proc/{program_pid}")).exists(),
        "the program {program_pid} still runs after mtcp run exited\n{}",
        p.describe()
    );
    p.assert_no_bad();
    p.assert_consecutive();
    p.last_count().unwrap()
}

/// The program `mtcp run` started (its only child).
fn child_of(p: &Proc) -> i32 {
    let children = fs::read_to_string(format!("/proc/{0}/task/{0}/children", p.pid())).unwrap_or_default();
    children
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("mtcp run has no child\n{}", p.describe()))
        .parse()
        .unwrap()
}

/// A resumed run: it prints no `start`, and its first count lies after `before` and at
/// most one after the last count the previous run printed.
fn assert_resumed(p: &mut Proc, before: u64, at_kill: u64) -> u64 {
    let first = p.wait_first_count(LINE_TIMEOUT);
    assert!(
        first > before && first <= at_kill + 1,
        "the resumed run began at count {first}; expected {}..={}\n{}",
        before + 1,
        at_kill + 1,
        p.describe()
    );
    assert!(
        !p.lines().iter().any(|l| l.starts_with("start ")),
        "the program started afresh instead of resuming\n{}",
        p.describe()
    );
    first
}

/// First run, SIGTERM -> checkpoint and 85; the same command resumes, is stopped again
/// (by its --signal-on signal, with the program under a new pid, so the status file and
/// the request's nonce follow the new pid); a third run resumes and finishes, and mtcp
/// run exits with the program's status.
fn requeue(bits: Bits) {
    let t = Test::new(&bits.name("run_requeue"));
    let prog = t.compile("counter", Variant::Dynamic, bits, &[]);
    // mtcp run makes the directory.
    let d = t.path("ckpt");
    let opts = ["--signal-on", "USR1"];
    let limit = 150;

    let mut p1 = run(&t, &d, &opts, &prog, &["150"], "first run");
    let vpid = started_pid(&mut p1);
    p1.wait_for_count(10, LINE_TIMEOUT);
    assert_runs_runtime(vpid, bits, true);
    let before = p1.last_count().unwrap();
    let at_kill = stop_with(&mut p1, SIGTERM, vpid);
    let image = image_for(&d, vpid).unwrap_or_else(|| panic!("no image of {vpid} in {}", d.display()));
    assert_eq!(image_arch(&image), bits.em());

    let mut p2 = run(&t, &d, &opts, &prog, &["150"], "second run");
    let first = assert_resumed(&mut p2, before, at_kill);
    let pid2 = child_of(&p2);
    assert_ne!(pid2, vpid, "the resumed program has its old pid");
    p2.wait_for_count(first + 10, LINE_TIMEOUT);
    let before = p2.last_count().unwrap();
    let at_kill = stop_with(&mut p2, SIGUSR1, pid2);
    assert_eq!(image_for(&d, vpid), Some(image.clone()), "the image keeps its name");
    assert_eq!(
        inspect_json(&image)["process"]["generation"],
        2,
        "{}",
        inspect_text(&image)
    );

    let mut p3 = run(&t, &d, &opts, &prog, &["150"], "third run");
    assert_resumed(&mut p3, before, at_kill);
    expect_done(&mut p3, limit, RUN_TIMEOUT);
    let st = p3.exited().unwrap();
    assert_eq!(st.code(), Some(0), "{}", p3.describe());

    // It has ended: the same command does not go back to its last image.
    let out = run_to_end(&d, &opts, &prog, &["150"]);
    if let Some(p) = one_line_failure("a run after the end", &out, true, &["ended"]) {
        panic!("{p}");
    }
    assert!(out.stdout.is_empty(), "the program ran\n{}", describe_output(&out));
}

per_width!(requeue_resumes_where_the_checkpoint_was, requeue_resumes_where_the_checkpoint_was_32 => requeue());

#[test]
fn exit_status_is_the_programs() {
    let t = Test::new("run_exit_status");
    let sh = Path::new("/bin/sh");
    for (script, code) in [("exit 7", 7), ("exit 0", 0), ("kill -9 $$", 128 + 9)] {
        let d = t.path(&format!("d{code}"));
        let out = run_to_end(&d, &[], sh, &["-c", script]);
        assert_eq!(
            out.status.code(),
            Some(code),
            "sh -c '{script}'\n{}",
            describe_output(&out)
        );
    }
    // A signal sent to mtcp run (other than SIGTERM) goes on to the program: here
    // SIGUSR1, which ends the counter; mtcp run exits 128+10.
    let prog = t.compile_c("counter", Variant::Dynamic, &[]);
    let mut p = run(&t, &t.path("forward"), &[], &prog, &[], "forwarding");
    p.wait_for_count(3, LINE_TIMEOUT);
    assert!(send_signal(p.pid(), SIGUSR1));
    let st = p.wait_exit(RUN_TIMEOUT);
    assert_eq!(st.code(), Some(128 + SIGUSR1), "{}", p.describe());
}

/// The file offset of the first saved run of the first region that has one.
fn first_run_offset(bytes: &[u8]) -> u64 {
    let header = image::parse_header(&bytes[..image::HEADER_SIZE], bytes.len() as u64).expect("good image header");
    let meta_bytes = &bytes[header.meta_offset as usize..(header.meta_offset + header.meta_size) as usize];
    let meta = image::Meta::parse(&header, meta_bytes).expect("good image metadata");
    (0..meta.region_count)
        .map(|i| meta.region(i))
        .find(|r| r.run_count > 0)
        .map(|r| meta.run(r.run_first as usize).file_offset)
        .expect("the image has saved pages")
}

/// A directory with a checkpoint of `counter 100000`, one byte of its data flipped.
fn damaged(t: &Test, prog: &Path) -> (PathBuf, PathBuf, Vec<u8>) {
    let d = t.path("ckpt");
    let mut p = run(t, &d, &[], prog, &["100000"], "first run");
    let vpid = started_pid(&mut p);
    p.wait_for_count(5, LINE_TIMEOUT);
    stop_with(&mut p, SIGTERM, vpid);
    let image = image_for(&d, vpid).unwrap();
    let mut bytes = fs::read(&image).unwrap();
    let at = first_run_offset(&bytes) as usize + 1234;
    bytes[at] ^= 0x10;
    fs::write(&image, &bytes).unwrap();
    (d, image, bytes)
}

#[test]
fn damaged_image_is_refused_and_left_in_place() {
    let t = Test::new("run_damaged");
    let prog = t.compile_c("counter", Variant::Dynamic, &[]);
    let (d, image, bytes) = damaged(&t, &prog);
    let out = run_to_end(&d, &[], &prog, &["100000"]);
    if let Some(p) = one_line_failure("a damaged image", &out, true, &["checksum"]) {
        panic!("{p}");
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(image.to_str().unwrap()) && err.contains("--fresh"),
        "unclear: {err}"
    );
    assert!(out.stdout.is_empty(), "the program ran\n{}", describe_output(&out));
    assert_eq!(fs::read(&image).unwrap(), bytes, "the image was changed");
}

#[test]
fn fresh_starts_afresh_and_keeps_the_old_image_aside() {
    let t = Test::new("run_fresh");
    let prog = t.compile_c("counter", Variant::Dynamic, &[]);
    let (d, image, bytes) = damaged(&t, &prog);
    let mut p = run(&t, &d, &["--fresh"], &prog, &["100000"], "fresh run");
    let vpid = started_pid(&mut p);
    assert_eq!(
        p.wait_first_count(LINE_TIMEOUT),
        1,
        "not a fresh start\n{}",
        p.describe()
    );
    assert!(!image.exists(), "the old image is still in {}", d.display());
    let aside: Vec<PathBuf> = fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().unwrap().to_str().unwrap().starts_with("old-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let kept = aside[0].join(image.file_name().unwrap());
    assert_eq!(
        fs::read(&kept).unwrap(),
        bytes,
        "{} is not the old image",
        kept.display()
    );
    assert!(aside[0].join("mtcp-run.info").is_file());
    // The fresh computation is one like any other.
    p.wait_for_count(3, LINE_TIMEOUT);
    stop_with(&mut p, SIGTERM, vpid);
    assert!(image_for(&d, vpid).is_some());
}

#[test]
fn a_directory_of_another_command_is_refused() {
    let t = Test::new("run_other");
    let prog = t.compile_c("counter", Variant::Dynamic, &[]);
    let d = t.path("ckpt");
    let mut p = run(&t, &d, &[], &prog, &["100000"], "first run");
    let vpid = started_pid(&mut p);
    p.wait_for_count(3, LINE_TIMEOUT);
    stop_with(&mut p, SIGTERM, vpid);
    let image = image_for(&d, vpid).unwrap();
    let bytes = fs::read(&image).unwrap();
    let sh = Path::new("/bin/sh");
    for (what, prog, args) in [
        ("other arguments", prog.as_path(), &["99"][..]),
        ("another program", sh, &["-c", "echo ran"][..]),
    ] {
        let out = run_to_end(&d, &[], prog, args);
        if let Some(p) = one_line_failure(what, &out, true, &["another command"]) {
            panic!("{p}");
        }
        assert!(
            out.stdout.is_empty(),
            "{what}: the program ran\n{}",
            describe_output(&out)
        );
    }
    // An image in a directory without mtcp run's record: made by `mtcp launch`.
    let other = t.subdir("launched");
    let mut l = t.launch_with(&["--dir", other.to_str().unwrap()], &prog, &[]);
    l.wait_for_count(3, LINE_TIMEOUT);
    let launched = checkpoint(l.pid());
    l.kill9();
    let out = run_to_end(&other, &[], &prog, &["100000"]);
    if let Some(p) = one_line_failure("an image mtcp run did not make", &out, true, &["no `mtcp run`"]) {
        panic!("{p}");
    }
    assert!(out.stdout.is_empty(), "the program ran\n{}", describe_output(&out));
    assert!(launched.is_file());
    assert_eq!(fs::read(&image).unwrap(), bytes, "the image was changed");
}

#[test]
fn version_names_the_image_format() {
    let out = mtcp(&["--version"], Duration::from_secs(10));
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("mtcp {} (image format {})\n", env!("CARGO_PKG_VERSION"), image::VERSION)
    );
}
