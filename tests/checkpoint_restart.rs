//! Checkpoint, SIGKILL and restart of the counter in each way a program can carry the
//! runtime: dynamic (preloaded by `mtcp launch`), static and static-pie with libmtcp.a,
//! libc-free, and a Rust std program; repeated cycles; two computations side by side;
//! dlopen after restart.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

/// Counter runs stop here (about 4.5 s of counting) and must print `done LIMIT`.
const LIMIT: u64 = 90;

/// Launch, wait for a few counts, checkpoint, kill, restart, continue, finish.
fn full_cycle(t: &Test, prog: &std::path::Path) {
    let mut p = t.launch(prog, &[&LIMIT.to_string()]);
    p.wait_for_count(5, LINE_TIMEOUT);
    let mut c = cycle(t, p);
    let expected = t.images();
    assert_eq!(
        expected,
        vec![c.image.clone()],
        "exactly one image, the one `mtcp checkpoint` printed, is in the image directory"
    );
    expect_done(&mut c.restarted, LIMIT, Duration::from_secs(30));
}

#[test]
fn dynamic_c_program() {
    let t = Test::new("dynamic_c");
    let prog = t.compile_c("counter", Variant::Dynamic, &[]);
    full_cycle(&t, &prog);
}

#[test]
fn static_c_program() {
    let t = Test::new("static_c");
    let prog = t.compile_c("counter", Variant::Static, &[]);
    full_cycle(&t, &prog);
}

#[test]
fn static_pie_c_program() {
    let t = Test::new("static_pie_c");
    let prog = t.compile_c("counter", Variant::StaticPie, &[]);
    full_cycle(&t, &prog);
}

#[test]
fn libc_free_program() {
    let t = Test::new("nolibc");
    let prog = t.compile_c("nolibc", Variant::NoLibc, &[]);
    full_cycle(&t, &prog);
}

#[test]
fn libc_free_program_calling_mtcp_init() {
    let t = Test::new("nolibc_init");
    // Runs .init_array and calls mtcp_init() too: the second call must be harmless.
    let prog = t.compile_c_as("nolibc", "nolibc_init", Variant::NoLibc, &["-DCALL_INIT"]);
    full_cycle(&t, &prog);
}

#[test]
fn rust_std_program() {
    let t = Test::new("rust_std");
    let prog = t.compile_rust("rust_counter", "rust_counter");
    full_cycle(&t, &prog);
}

/// A static program started directly (no `mtcp launch`), configured by MTCP_DIR only.
#[test]
fn static_program_without_launch() {
    let t = Test::new("static_direct");
    let prog = t.compile_c("counter", Variant::Static, &[]);
    let images = t.subdir("images");
    let mut cmd = Command::new(&prog);
    cmd.arg(LIMIT.to_string()).env("MTCP_DIR", &images).current_dir(&t.dir);
    let mut p = Proc::spawn(cmd, "static counter run directly");
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

/// The link line of pkgconfig/mtcp.pc works as documented.
#[test]
fn static_program_linked_with_pkg_config() {
    let t = Test::new("pkg_config");
    let b = bins();
    let pc = Command::new("pkg-config")
        .args(["--cflags", "--libs", "mtcp"])
        .env("PKG_CONFIG_PATH", b.root.join("pkgconfig"))
        .output()
        .expect("run pkg-config");
    assert!(
        pc.status.success(),
        "pkg-config --cflags --libs mtcp failed: {}",
        String::from_utf8_lossy(&pc.stderr)
    );
    let flags = String::from_utf8(pc.stdout).unwrap();
    let prog = t.path("pkgcounter");
    let mut cmd = Command::new("gcc");
    cmd.args(["-O2", "-static", "-DUSE_API"])
        .arg(b.root.join("tests/progs/counter.c"))
        .arg("-o")
        .arg(&prog);
    cmd.args(flags.split_whitespace());
    let out = run_output(cmd, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "gcc with pkg-config flags ({flags}) failed:\n{}",
        describe_output(&out)
    );
    full_cycle(&t, &prog);
}

/// Checkpoint, kill, restart three times over: the same image file is rewritten (the
/// computation keeps its identity) and the count keeps going up.
#[test]
fn three_cycles() {
    let t = Test::new("three_cycles");
    let prog = t.compile_c("counter", Variant::Dynamic, &[]);
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
        image = Some(c.image.clone());
        last_first = c.first;
        p = c.restarted;
    }
    p.wait_for_count(last_first + 25, LINE_TIMEOUT);
    expect_done(&mut p, limit, Duration::from_secs(30));
}

/// Two computations checkpointed, killed and restarted at the same time continue
/// independently, each with its own count.
#[test]
fn two_processes_side_by_side() {
    let t = Test::new("side_by_side");
    let dynamic = t.compile_c_as("counter", "counter_a", Variant::Dynamic, &[]);
    let stat = t.compile_c_as("counter", "counter_b", Variant::Static, &[]);
    let mut a = t.launch(&dynamic, &["150"]);
    a.wait_for_count(3, LINE_TIMEOUT);
    let mut b = t.launch(&stat, &["100"]);
    b.wait_for_count(3, LINE_TIMEOUT);
    let a_before = a.last_count().unwrap();
    let b_before = b.last_count().unwrap();
    let image_a = checkpoint(a.pid());
    let image_b = checkpoint(b.pid());
    assert_ne!(image_a, image_b);
    a.kill9();
    b.kill9();
    let (a_kill, b_kill) = (a.last_count().unwrap(), b.last_count().unwrap());
    let mut ra = t.restart(&image_a);
    let mut rb = t.restart(&image_b);
    let fa = ra.wait_first_count(LINE_TIMEOUT);
    let fb = rb.wait_first_count(LINE_TIMEOUT);
    assert!(
        fa > a_before && fa <= a_kill + 1,
        "A restarted at {fa}, expected {}..={}\n{}",
        a_before + 1,
        a_kill + 1,
        ra.describe()
    );
    assert!(
        fb > b_before && fb <= b_kill + 1,
        "B restarted at {fb}, expected {}..={}\n{}",
        b_before + 1,
        b_kill + 1,
        rb.describe()
    );
    ra.wait_for_count(fa + 20, LINE_TIMEOUT);
    rb.wait_for_count(fb + 20, LINE_TIMEOUT);
    expect_done(&mut rb, 100, Duration::from_secs(30));
    // A still runs after B is gone.
    let a_now = ra.last_count().unwrap();
    ra.wait_for_count(a_now + 5, LINE_TIMEOUT);
    assert!(ra.exited().is_none(), "A stopped when B ended\n{}", ra.describe());
    expect_done(&mut ra, 150, Duration::from_secs(30));
}

/// After a restart, the restored dynamic loader loads a library the program had never
/// loaded (its own dlopen, dlsym, relocation, constructor and TLS-free data).
#[test]
fn dlopen_after_restart() {
    let t = Test::new("dlopen");
    let prog = t.compile_c_as("counter", "dlcounter", Variant::Dynamic, &["-DUSE_DLOPEN", "-ldl"]);
    let plugin = t.compile_c_as("plugin", "libplugin.so", Variant::Shared, &[]);
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
    let mut c = cycle(&t, p);
    assert!(
        !c.restarted.lines().iter().any(|l| l.starts_with("plugin")),
        "the plugin was loaded too early"
    );
    std::fs::write(&trigger, b"").unwrap();
    let line = c.restarted.wait_for_line("`plugin ...`", LINE_TIMEOUT, |l| {
        l.starts_with("plugin") || l.starts_with("BAD")
    });
    let lines = c.restarted.lines();
    let idx = lines.iter().position(|l| *l == line).unwrap();
    let at = lines[..idx].iter().rev().find_map(|l| parse_count(l)).unwrap();
    // plugin_answer(x) = 1000 + 2x + 80, called with the count just printed.
    let expected = format!("plugin {} mtcp-test-plugin", 1080 + 2 * at);
    assert_eq!(line, expected, "\n{}", c.restarted.describe());
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", c.restarted.pid())).unwrap_or_default();
    assert!(
        maps.contains("libplugin.so"),
        "libplugin.so is not mapped in the restarted process:\n{maps}"
    );
    expect_done(&mut c.restarted, 120, Duration::from_secs(30));
}
