//! i386: 32-bit programs (built with `gcc -m32`, or `rustc --target i686-unknown-linux-gnu`)
//! on the 64-bit kernel, run with the i686 build of the runtime and of mtcp_restart
//! (`cargo build --release --target i686-unknown-linux-gnu`). The single-threaded suite
//! of checkpoint_restart.rs, triggers.rs and bad_images.rs again, for 32-bit programs:
//! dynamic, static, static-pie and libc-free; the four checkpoint triggers; repeated
//! cycles; dlopen of a 32-bit library after restart (no 32-bit interpreter is installed:
//! this stands in for one); images of the wrong architecture given to each mtcp_restart;
//! `mtcp inspect` of an i386 image. Multi-threaded 32-bit programs: i386_threads.rs.

mod common;

#[allow(dead_code, clippy::all)]
#[path = "../rt/image.rs"]
mod image;
#[allow(dead_code, clippy::all)]
#[path = "../rt/xxh64.rs"]
mod xxh64;

use common::*;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// Counter runs stop here (about 4.5 s of counting) and must print `done LIMIT`.
const LIMIT: u64 = 90;

/// The 32-bit runtime is what `mtcp launch` preloaded into (or what is linked into)
/// the running process `pid`, and the process is a 32-bit one.
fn assert_runs_32bit_runtime(pid: i32, dynamic: bool) {
    let exe = fs::read(format!("/proc/{pid}/exe")).unwrap_or_default();
    assert!(exe.len() > 5 && &exe[..4] == b"\x7fELF", "cannot read /proc/{pid}/exe");
    assert_eq!(exe[4], 1, "process {pid} is not a 32-bit (ELFCLASS32) program");
    if dynamic {
        let maps = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        let lib = bins32().libmtcp_so.canonicalize().unwrap();
        assert!(
            maps.contains(lib.to_str().unwrap()),
            "the 32-bit runtime {} is not mapped in the 32-bit process {pid}:\n{maps}",
            lib.display()
        );
        let lib64 = bins().libmtcp_so.canonicalize().unwrap();
        assert!(
            !maps.contains(lib64.to_str().unwrap()),
            "the 64-bit runtime is mapped in a 32-bit process:\n{maps}"
        );
    }
}

/// The header's architecture word (offset 12): 3 (EM_386) or 62 (EM_X86_64).
fn image_arch(image: &Path) -> u32 {
    let b = fs::read(image).unwrap();
    u32::from_le_bytes(b[12..16].try_into().unwrap())
}

/// Launch, wait for a few counts, checkpoint with `mtcp checkpoint`, kill, restart,
/// continue, finish.
fn full_cycle(t: &Test, prog: &Path, dynamic: bool) {
    let mut p = t.launch(prog, &[&LIMIT.to_string()]);
    p.wait_for_count(5, LINE_TIMEOUT);
    assert_runs_32bit_runtime(p.pid(), dynamic);
    let mut c = cycle(t, p);
    assert_eq!(
        t.images(),
        vec![c.image.clone()],
        "exactly one image, the one `mtcp checkpoint` printed, is in the image directory"
    );
    assert_eq!(
        image_arch(&c.image),
        3,
        "the image of a 32-bit program must say i386 (EM_386) in its header"
    );
    assert_runs_32bit_runtime(c.restarted.pid(), dynamic);
    expect_done(&mut c.restarted, LIMIT, Duration::from_secs(30));
}

#[test]
fn dynamic32_c_program() {
    let t = Test::new("i386_dynamic");
    let prog = t.compile_c32("counter", Variant::Dynamic, &[]);
    full_cycle(&t, &prog, true);
}

#[test]
fn static32_c_program() {
    let t = Test::new("i386_static");
    let prog = t.compile_c32("counter", Variant::Static, &[]);
    full_cycle(&t, &prog, false);
}

#[test]
fn static_pie32_c_program() {
    let t = Test::new("i386_static_pie");
    let prog = t.compile_c32("counter", Variant::StaticPie, &[]);
    full_cycle(&t, &prog, false);
}

#[test]
fn libc_free32_program() {
    let t = Test::new("i386_nolibc");
    let prog = t.compile_c32("nolibc32", Variant::NoLibc, &[]);
    full_cycle(&t, &prog, false);
}

#[test]
fn libc_free32_program_calling_mtcp_init() {
    let t = Test::new("i386_nolibc_init");
    let prog = t.compile_c32_as("nolibc32", "nolibc32_init", Variant::NoLibc, &["-DCALL_INIT"]);
    full_cycle(&t, &prog, false);
}

#[test]
fn rust_std32_program() {
    let t = Test::new("i386_rust_std");
    bins32();
    let source = bins().root.join("tests/progs/rust_counter.rs");
    let prog = t.path("rust_counter32");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let mut cmd = Command::new(rustc);
    cmd.args(["-O", "--edition", "2021", "--target", "i686-unknown-linux-gnu"])
        .arg(&source)
        .arg("-o")
        .arg(&prog);
    let out = run_output(cmd, Duration::from_secs(100));
    assert!(
        out.status.success(),
        "rustc --target i686-unknown-linux-gnu failed (run `rustup target add i686-unknown-linux-gnu`):\n{}",
        describe_output(&out)
    );
    full_cycle(&t, &prog, true);
}

/// A static 32-bit program started directly (no `mtcp launch`), configured by MTCP_DIR.
#[test]
fn static32_program_without_launch() {
    let t = Test::new("i386_static_direct");
    let prog = t.compile_c32("counter", Variant::Static, &[]);
    let images = t.subdir("images");
    let mut cmd = Command::new(&prog);
    cmd.arg(LIMIT.to_string()).env("MTCP_DIR", &images).current_dir(&t.dir);
    let mut p = Proc::spawn(cmd, "static 32-bit counter run directly");
    p.wait_for_count(5, LINE_TIMEOUT);
    let pid = p.pid();
    let mut c = cycle(&t, p);
    assert_eq!(
        c.image,
        images.join(format!("ckpt_counter_{pid}.mtcp")),
        "the image is $MTCP_DIR/ckpt_<comm>_<pid>.mtcp"
    );
    expect_done(&mut c.restarted, LIMIT, Duration::from_secs(30));
}

/// Three checkpoint/kill/restart rounds: the same image is rewritten each time.
#[test]
fn three_cycles32() {
    let t = Test::new("i386_three_cycles");
    let prog = t.compile_c32("counter", Variant::Dynamic, &[]);
    let limit = 200u64;
    let mut p = t.launch(&prog, &[&limit.to_string()]);
    p.wait_for_count(5, LINE_TIMEOUT);
    let mut image = None;
    let mut last_first = 0;
    for round in 1..=3 {
        let c = cycle(&t, p);
        assert!(
            c.first > last_first,
            "round {round}: restarted at {} after {} in the previous round",
            c.first,
            last_first
        );
        if let Some(prev) = &image {
            assert_eq!(
                &c.image, prev,
                "round {round}: a restarted computation must rewrite its own image"
            );
        }
        assert_eq!(t.images().len(), 1, "round {round}: one image only: {:?}", t.images());
        assert_eq!(image_arch(&c.image), 3, "round {round}: not an i386 image");
        image = Some(c.image.clone());
        last_first = c.first;
        p = c.restarted;
    }
    p.wait_for_count(last_first + 25, LINE_TIMEOUT);
    expect_done(&mut p, limit, Duration::from_secs(30));
}

/// A 32-bit and a 64-bit computation checkpointed, killed and restarted side by side:
/// `mtcp restart` picks each image's own mtcp_restart.
#[test]
fn i386_and_x86_64_side_by_side() {
    let t = Test::new("i386_side_by_side");
    let prog32 = t.compile_c32_as("counter", "counter32", Variant::Dynamic, &[]);
    let prog64 = t.compile_c_as("counter", "counter64", Variant::Static, &[]);
    let mut a = t.launch(&prog32, &["150"]);
    a.wait_for_count(3, LINE_TIMEOUT);
    let mut b = t.launch(&prog64, &["100"]);
    b.wait_for_count(3, LINE_TIMEOUT);
    let a_before = a.last_count().unwrap();
    let b_before = b.last_count().unwrap();
    let image_a = checkpoint(a.pid());
    let image_b = checkpoint(b.pid());
    assert_eq!(
        (image_arch(&image_a), image_arch(&image_b)),
        (3, 62),
        "image architectures (EM_386, EM_X86_64)"
    );
    a.kill9();
    b.kill9();
    let (a_kill, b_kill) = (a.last_count().unwrap(), b.last_count().unwrap());
    let mut ra = t.restart(&image_a);
    let mut rb = t.restart(&image_b);
    let fa = ra.wait_first_count(LINE_TIMEOUT);
    let fb = rb.wait_first_count(LINE_TIMEOUT);
    assert!(
        fa > a_before && fa <= a_kill + 1,
        "32-bit restarted at {fa}, expected {}..={}\n{}",
        a_before + 1,
        a_kill + 1,
        ra.describe()
    );
    assert!(
        fb > b_before && fb <= b_kill + 1,
        "64-bit restarted at {fb}, expected {}..={}\n{}",
        b_before + 1,
        b_kill + 1,
        rb.describe()
    );
    ra.wait_for_count(fa + 20, LINE_TIMEOUT);
    rb.wait_for_count(fb + 20, LINE_TIMEOUT);
    expect_done(&mut rb, 100, Duration::from_secs(30));
    let a_now = ra.last_count().unwrap();
    ra.wait_for_count(a_now + 5, LINE_TIMEOUT);
    assert!(
        ra.exited().is_none(),
        "the 32-bit one stopped when the 64-bit one ended\n{}",
        ra.describe()
    );
    expect_done(&mut ra, 150, Duration::from_secs(30));
}

/// After a restart, the restored 32-bit dynamic loader loads a 32-bit library the
/// program had never loaded. (Stands in for a 32-bit interpreter, which Debian does not
/// offer cheaply: it exercises the same restored ld.so, relocation and constructors.)
#[test]
fn dlopen32_after_restart() {
    let t = Test::new("i386_dlopen");
    let prog = t.compile_c32_as("counter", "dlcounter32", Variant::Dynamic, &["-DUSE_DLOPEN", "-ldl"]);
    let plugin = t.compile_c32_as("plugin", "libplugin32.so", Variant::Shared, &[]);
    let trigger = t.path("load-now");
    let mut p = t.launch(
        &prog,
        &[
            "120",
            "--dlopen-file",
            trigger.to_str().unwrap(),
            plugin.to_str().unwrap(),
        ],
    );
    p.wait_for_count(5, LINE_TIMEOUT);
    assert_runs_32bit_runtime(p.pid(), true);
    let mut c = cycle(&t, p);
    assert!(
        !c.restarted.lines().iter().any(|l| l.starts_with("plugin")),
        "the plugin was loaded too early"
    );
    fs::write(&trigger, b"").unwrap();
    let line = c.restarted.wait_for_line("`plugin ...`", LINE_TIMEOUT, |l| {
        l.starts_with("plugin") || l.starts_with("BAD")
    });
    let lines = c.restarted.lines();
    let idx = lines.iter().position(|l| *l == line).unwrap();
    let at = lines[..idx].iter().rev().find_map(|l| parse_count(l)).unwrap();
    let expected = format!("plugin {} mtcp-test-plugin", 1080 + 2 * at);
    assert_eq!(line, expected, "\n{}", c.restarted.describe());
    let maps = fs::read_to_string(format!("/proc/{}/maps", c.restarted.pid())).unwrap_or_default();
    assert!(
        maps.contains("libplugin32.so"),
        "libplugin32.so is not mapped in the restarted process:\n{maps}"
    );
    expect_done(&mut c.restarted, 120, Duration::from_secs(30));
}

// ---------------------------------------------------------------------------------------
// Triggers

/// (inode, mtime) of an image: changes whenever the image is rewritten (renamed into place).
fn identity(p: &Path) -> Option<(u64, i64, i64)> {
    let m = fs::metadata(p).ok()?;
    Some((m.ino(), m.mtime(), m.mtime_nsec()))
}

/// Sends `sig` to `p` and waits for the image of computation `vpid` in `dir` to appear
/// or be replaced, and to be readable by `mtcp inspect`.
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

#[test]
fn by_default_signal_usr2_dynamic32() {
    let t = Test::new("i386_signal_usr2");
    let prog = t.compile_c32("counter", Variant::Dynamic, &[]);
    let mut p = t.launch(&prog, &["90"]);
    p.wait_for_count(5, LINE_TIMEOUT);
    let (dir, vpid) = (t.dir.clone(), p.pid());
    let mut c = cycle_with(&t, p, |p| signal_and_wait(p, vpid, &dir, SIGUSR2));
    expect_done(&mut c.restarted, 90, Duration::from_secs(30));
}

#[test]
fn by_chosen_signal_usr1_static32() {
    let t = Test::new("i386_signal_usr1");
    let prog = t.compile_c32("counter", Variant::Static, &[]);
    let mut p = t.launch_with(&["--signal", "USR1"], &prog, &["90"]);
    p.wait_for_count(5, LINE_TIMEOUT);
    let (dir, vpid) = (t.dir.clone(), p.pid());
    let mut c = cycle_with(&t, p, |p| signal_and_wait(p, vpid, &dir, SIGUSR1));
    // The restarted process still answers to USR1 ...
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

#[test]
fn by_interval_dynamic32() {
    let t = Test::new("i386_interval");
    let prog = t.compile_c32("counter", Variant::Dynamic, &[]);
    let mut p = t.launch_with(&["--interval", "1"], &prog, &["200"]);
    p.wait_first_count(LINE_TIMEOUT);
    let pid = p.pid();
    let image = poll(Duration::from_secs(6), || image_for(&t.dir, pid))
        .unwrap_or_else(|| panic!("no image within 6 s with --interval 1\n{}", p.describe()));
    let first_id = identity(&image);
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

#[test]
fn by_mtcp_checkpoint_command_dynamic32() {
    let t = Test::new("i386_checkpoint_cmd");
    let prog = t.compile_c32("counter", Variant::Dynamic, &[]);
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

fn api_test(name: &str, variant: Variant) {
    let t = Test::new(name);
    let prog = t.compile_c32_as("counter", "apicounter", variant, &["-DUSE_API"]);
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

#[test]
fn by_api_static32() {
    api_test("i386_api_static", Variant::Static);
}

#[test]
fn by_api_static_pie32() {
    api_test("i386_api_static_pie", Variant::StaticPie);
}

/// A 32-bit process without the runtime that catches SIGUSR2 must be refused by
/// `mtcp checkpoint`, not sent the signal (which would kill it).
#[test]
fn checkpoint_refuses_a_32bit_process_that_only_catches_the_signal() {
    let t = Test::new("i386_checkpoint_catcher");
    let prog = t.compile_c32("catcher", Variant::Dynamic, &[]);
    let mut cmd = Command::new(&prog);
    cmd.current_dir(&t.dir);
    let mut p = Proc::spawn(cmd, "32-bit catcher (no mtcp runtime, catches SIGUSR2)");
    p.wait_for_line("`ready`", LINE_TIMEOUT, |l| l == "ready");
    let out = mtcp(
        &["checkpoint", "--timeout", "3", &p.pid().to_string()],
        CHECKPOINT_TIMEOUT,
    );
    std::thread::sleep(Duration::from_millis(300));
    let died = p.exited();
    assert!(
        died.is_none(),
        "`mtcp checkpoint {}` sent the checkpoint signal to a 32-bit process without the mtcp runtime and killed it ({})\n\
         mtcp checkpoint: {}\n{}",
        p.pid(),
        describe_status(&died.unwrap()),
        describe_output(&out),
        p.describe()
    );
    assert!(
        out.status.code().is_some_and(|c| c != 0),
        "expected a non-zero exit\n{}",
        describe_output(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "expected one line on stderr\n{}",
        describe_output(&out)
    );
}

// ---------------------------------------------------------------------------------------
// Images: wrong architecture, damage, inspect

/// An image of `prog` (launched, checkpointed after 3 counts, killed).
fn image_of(t: &Test, prog: &Path) -> PathBuf {
    let mut p = t.launch(prog, &[]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let image = checkpoint(p.pid());
    p.kill9();
    image
}

fn one_line_failure(what: &str, out: &Output, exit1: bool, keywords: &[&str]) -> Option<String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    let problem = if let Some(sig) = out.status.signal() {
        Some(format!("was killed by signal {sig}"))
    } else if out.status.success() {
        Some("exited 0".to_string())
    } else if exit1 && out.status.code() != Some(1) {
        Some(format!("exited {:?} instead of 1", out.status.code()))
    } else if lines.len() != 1 {
        Some(format!("printed {} lines on stderr instead of one", lines.len()))
    } else if !keywords.iter().any(|k| lines[0].to_lowercase().contains(k)) {
        Some(format!("its stderr line does not mention any of {keywords:?}"))
    } else {
        None
    };
    problem.map(|p| format!("{what}: {p}\n{}", describe_output(out)))
}

fn run_restart_program(program: &Path, image: &Path, dir: &Path) -> Output {
    let mut cmd = Command::new(program);
    cmd.arg(image).current_dir(dir);
    run_output(cmd, Duration::from_secs(30))
}

/// Each mtcp_restart refuses an image of the other architecture: exit 1, one line on
/// stderr naming the architecture, the address space untouched (no signal).
#[test]
fn wrong_architecture_images_are_refused() {
    let t = Test::new("i386_wrong_arch");
    let prog32 = t.compile_c32_as("counter", "counter32", Variant::Dynamic, &[]);
    let prog64 = t.compile_c_as("counter", "counter64", Variant::Dynamic, &[]);
    let image32 = image_of(&t, &prog32);
    let image64 = image_of(&t, &prog64);
    assert_eq!((image_arch(&image32), image_arch(&image64)), (3, 62));
    let mut problems = Vec::new();
    let out = run_restart_program(&bins().mtcp_restart, &image32, &t.dir);
    problems.extend(one_line_failure(
        &format!(
            "{} (x86_64) given the i386 image {}",
            bins().mtcp_restart.display(),
            image32.display()
        ),
        &out,
        true,
        &["i386", "i686", "32-bit"],
    ));
    let out = run_restart_program(&bins32().mtcp_restart, &image64, &t.dir);
    problems.extend(one_line_failure(
        &format!(
            "{} (i386) given the x86_64 image {}",
            bins32().mtcp_restart.display(),
            image64.display()
        ),
        &out,
        true,
        &["x86_64", "x86-64", "64-bit"],
    ));
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    // And the CLI still picks the right one for each.
    for image in [&image32, &image64] {
        let mut r = t.restart(image);
        r.wait_first_count(LINE_TIMEOUT);
        r.assert_no_bad();
    }
}

fn read_u64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// The file offset of the first saved run of the first region that has one.
fn first_run_offset(bytes: &[u8]) -> u64 {
    let header = image::parse_header(&bytes[..image::HEADER_SIZE], bytes.len() as u64).expect("good image header");
    let meta_bytes = &bytes[header.meta_offset as usize..(header.meta_offset + header.meta_size) as usize];
    let meta = image::Meta::parse(&header, meta_bytes).expect("good image metadata");
    for i in 0..meta.region_count {
        let r = meta.region(i);
        if r.run_count > 0 {
            return meta.run(r.run_first as usize).file_offset;
        }
    }
    panic!("the image has no saved pages at all");
}

/// Damaged i386 images are refused by the i386 mtcp_restart (directly and through
/// `mtcp restart`) with one line on stderr and a non-zero exit, never a signal; and
/// `mtcp inspect` reports the damage.
#[test]
fn damaged_i386_images_are_refused() {
    let t = Test::new("i386_damaged");
    let prog = t.compile_c32("counter", Variant::Dynamic, &[]);
    let good = image_of(&t, &prog);
    let bytes = fs::read(&good).unwrap();
    assert_eq!(&bytes[..8], b"MTCPIMG\0", "image magic");
    let bad = t.subdir("bad");
    let write = |name: &str, data: &[u8]| -> PathBuf {
        let p = bad.join(name);
        fs::write(&p, data).unwrap();
        p
    };
    let mut cases: Vec<(&str, PathBuf, &[&str])> = Vec::new();
    cases.push((
        "truncated to half",
        write("truncated.mtcp", &bytes[..bytes.len() / 2]),
        &["truncated"],
    ));
    cases.push((
        "truncated to its header",
        write("header-only.mtcp", &bytes[..4096]),
        &["truncated"],
    ));
    let mut header_flip = bytes.clone();
    header_flip[100] ^= 0x40;
    cases.push((
        "flipped header byte",
        write("header-flip.mtcp", &header_flip),
        &["corrupt"],
    ));
    assert_eq!(read_u64(&bytes, 24), 4096, "metadata starts after the one-page header");
    let mut meta_flip = bytes.clone();
    meta_flip[4096 + 100] ^= 0x01;
    cases.push((
        "flipped metadata byte",
        write("meta-flip.mtcp", &meta_flip),
        &["corrupt"],
    ));
    let run = first_run_offset(&bytes);
    let mut data_flip = bytes.clone();
    data_flip[run as usize + 1234] ^= 0x10;
    cases.push((
        "flipped region data byte",
        write("data-flip.mtcp", &data_flip),
        &["corrupt"],
    ));

    let mut problems = Vec::new();
    for (name, path, keywords) in &cases {
        let out = run_restart_program(&bins32().mtcp_restart, path, &t.dir);
        problems.extend(one_line_failure(
            &format!("i386 mtcp_restart {} ({name})", path.display()),
            &out,
            false,
            keywords,
        ));
        let mut cmd = Command::new(&bins().mtcp);
        cmd.arg("restart").arg(path).current_dir(&t.dir);
        let out = run_output(cmd, Duration::from_secs(30));
        problems.extend(one_line_failure(
            &format!("mtcp restart {} ({name})", path.display()),
            &out,
            false,
            keywords,
        ));
        let out = mtcp(&["inspect", path.to_str().unwrap()], Duration::from_secs(30));
        if out.status.success() || out.status.code().is_none() {
            problems.push(format!(
                "mtcp inspect {} ({name}): expected a non-zero exit\n{}",
                path.display(),
                describe_output(&out)
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} runs misbehaved:\n\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn inspect_i386_image() {
    let t = Test::new("i386_inspect");
    let prog = t.compile_c32("counter", Variant::Dynamic, &[]);
    let image = image_of(&t, &prog);
    let text = inspect_text(&image);
    let arch_line = text
        .lines()
        .find(|l| l.starts_with("arch"))
        .unwrap_or_else(|| panic!("no `arch` line:\n{text}"));
    assert!(
        arch_line.contains("i386"),
        "`mtcp inspect` does not say i386: {arch_line:?}\n{text}"
    );
    assert!(
        !text.contains("x86_64"),
        "`mtcp inspect` of an i386 image mentions x86_64:\n{text}"
    );
    for word in ["regions", "checksums", "[heap]", "[stack]", "counter", "ld-linux.so.2"] {
        assert!(text.contains(word), "`mtcp inspect` output lacks {word:?}:\n{text}");
    }
    let checksum_line = text.lines().find(|l| l.contains("checksums")).unwrap();
    assert!(
        checksum_line.contains("ok"),
        "checksums not reported ok: {checksum_line}\n{text}"
    );

    let doc = inspect_json(&image);
    assert_eq!(doc.get("arch").and_then(|a| a.as_str()), Some("i386"), "{doc:?}");
    assert_eq!(doc.get("checksums_ok").and_then(|v| v.as_bool()), Some(true));
    let regions = doc
        .get("regions")
        .and_then(|r| r.as_array())
        .unwrap_or_else(|| panic!("no \"regions\" array in {doc:?}"));
    assert!(regions.len() >= 5, "only {} regions", regions.len());
    for r in regions {
        assert_eq!(
            r.get("checksum_ok").and_then(|v| v.as_bool()),
            Some(true),
            "region not ok: {r:?}"
        );
        let end = r.get("end").and_then(|v| v.as_f64()).unwrap_or(f64::MAX);
        assert!(end <= 4294967296.0, "a region of an i386 image ends above 4 GiB: {r:?}");
    }
    let paths: Vec<&str> = regions
        .iter()
        .filter_map(|r| r.get("path").and_then(|p| p.as_str()))
        .collect();
    assert!(
        paths.iter().any(|p| p.ends_with("/counter")),
        "the executable is not among the regions: {paths:?}"
    );
    let lib32 = bins32().libmtcp_so.canonicalize().unwrap();
    assert!(
        paths.iter().any(|p| Path::new(p) == lib32),
        "the 32-bit runtime {} is not among the regions: {paths:?}",
        lib32.display()
    );
    let threads = doc.get("threads").and_then(|t| t.as_array()).expect("threads array");
    assert_eq!(threads.len(), 1);
}
