//! Checkpoint, SIGKILL and restart of the counter in each way a program can carry the
//! runtime: dynamic (preloaded by `mtcp launch`), static and static-pie with libmtcp.a,
//! libc-free, and a Rust std program; repeated cycles; two computations side by side;
//! dlopen after restart. Each scenario runs for x86_64 programs and, as `*_32`, for i386
//! ones (`gcc -m32`, `rustc --target i686-unknown-linux-gnu`) with the i686 build of the
//! runtime and of mtcp_restart; a 32-bit and a 64-bit computation also run side by side.

pub mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Counter runs stop here (about 4.5 s of counting) and must print `done LIMIT`.
const LIMIT: u64 = 90;

/// Launch, wait for a few counts, checkpoint, kill, restart, continue, finish; the
/// processes before and after run the runtime of their width (`dynamic`: the preloaded
/// one) and the image says their architecture.
fn full_cycle(t: &Test, prog: &Path, bits: Bits, dynamic: bool) {
    let mut p = t.launch(prog, &[&LIMIT.to_string()]);
    p.wait_for_count(5, LINE_TIMEOUT);
    assert_runs_runtime(p.pid(), bits, dynamic);
    let mut c = cycle(t, p);
    assert_eq!(
        t.images(),
        vec![c.image.clone()],
        "exactly one image, the one `mtcp checkpoint` printed, is in the image directory"
    );
    assert_eq!(
        image_arch(&c.image),
        bits.em(),
        "the image of a {} program must say so (e_machine {}) in its header",
        bits.arch(),
        bits.em()
    );
    assert_runs_runtime(c.restarted.program_pid(), bits, dynamic);
    expect_done(&mut c.restarted, LIMIT, Duration::from_secs(30));
}

/// tests/progs/counter.c built as `variant`, through a full cycle.
fn c_program(bits: Bits, name: &str, variant: Variant) {
    let t = Test::new(&bits.name(name));
    let prog = t.compile("counter", variant, bits, &[]);
    full_cycle(&t, &prog, bits, variant == Variant::Dynamic);
}

per_width!(dynamic_c_program, dynamic_c_program_32 => c_program("dynamic_c", Variant::Dynamic));

per_width!(static_c_program, static_c_program_32 => c_program("static_c", Variant::Static));

per_width!(static_pie_c_program, static_pie_c_program_32 => c_program("static_pie_c", Variant::StaticPie));

/// tests/progs/nolibc.c (x86_64) or nolibc32.c (i386), which make their own syscalls,
/// built with `flags` as `out`, through a full cycle.
fn libc_free(bits: Bits, out: &str, flags: &[&str]) {
    let t = Test::new(&bits.name(out));
    let src = format!("nolibc{}", bits.suffix());
    let prog = t.compile_as(&src, out, Variant::NoLibc, bits, flags);
    full_cycle(&t, &prog, bits, false);
}

per_width!(libc_free_program, libc_free_program_32 => libc_free("nolibc", &[]));

// Runs .init_array and calls mtcp_init() too: the second call must be harmless.
per_width!(
    libc_free_program_calling_mtcp_init,
    libc_free_program_calling_mtcp_init_32 => libc_free("nolibc_init", &["-DCALL_INIT"])
);

fn rust_std(bits: Bits) {
    let t = Test::new(&bits.name("rust_std"));
    let prog = t.compile_rust("rust_counter", &format!("rust_counter{}", bits.suffix()), bits);
    full_cycle(&t, &prog, bits, true);
}

per_width!(rust_std_program, rust_std_program_32 => rust_std());

/// A static program started directly (no `mtcp launch`), configured by MTCP_DIR only.
fn static_without_launch(bits: Bits) {
    let t = Test::new(&bits.name("static_direct"));
    let prog = t.compile("counter", Variant::Static, bits, &[]);
    let images = t.subdir("images");
    let mut cmd = Command::new(&prog);
    cmd.arg(LIMIT.to_string()).env("MTCP_DIR", &images).current_dir(&t.dir);
    let mut p = Proc::spawn(cmd, &format!("static {} counter run directly", bits.arch()));
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

per_width!(static_program_without_launch, static_program_without_launch_32 => static_without_launch());

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
    full_cycle(&t, &prog, Bits::B64, false);
}

/// Checkpoint, kill, restart three times over: the same image file is rewritten (the
/// computation keeps its identity) and the count keeps going up.
fn three_cycles_of(bits: Bits) {
    let t = Test::new(&bits.name("three_cycles"));
    let prog = t.compile("counter", Variant::Dynamic, bits, &[]);
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
        assert_eq!(
            image_arch(&c.image),
            bits.em(),
            "round {round}: not an {} image",
            bits.arch()
        );
        image = Some(c.image.clone());
        last_first = c.first;
        p = c.restarted;
    }
    p.wait_for_count(last_first + 25, LINE_TIMEOUT);
    expect_done(&mut p, limit, Duration::from_secs(30));
}

per_width!(three_cycles, three_cycles_32 => three_cycles_of());

/// Two computations, A (dynamic, of width `a`) and B (static, of width `b`),
/// checkpointed, killed and restarted at the same time continue independently, each with
/// its own count; `mtcp restart` picks each image's own mtcp_restart.
fn side_by_side(name: &str, a: Bits, b: Bits) {
    let t = Test::new(name);
    let prog_a = t.compile_as("counter", "counter_a", Variant::Dynamic, a, &[]);
    let prog_b = t.compile_as("counter", "counter_b", Variant::Static, b, &[]);
    let (la, lb) = (format!("A ({})", a.arch()), format!("B ({})", b.arch()));
    let mut pa = t.launch(&prog_a, &["150"]);
    pa.wait_for_count(3, LINE_TIMEOUT);
    let mut pb = t.launch(&prog_b, &["100"]);
    pb.wait_for_count(3, LINE_TIMEOUT);
    let a_before = pa.last_count().unwrap();
    let b_before = pb.last_count().unwrap();
    let image_a = checkpoint(pa.pid());
    let image_b = checkpoint(pb.pid());
    assert_ne!(image_a, image_b);
    assert_eq!(
        (image_arch(&image_a), image_arch(&image_b)),
        (a.em(), b.em()),
        "image architectures ({la}, {lb})"
    );
    pa.kill9();
    pb.kill9();
    let (a_kill, b_kill) = (pa.last_count().unwrap(), pb.last_count().unwrap());
    let mut ra = t.restart(&image_a);
    let mut rb = t.restart(&image_b);
    let fa = ra.wait_first_count(LINE_TIMEOUT);
    let fb = rb.wait_first_count(LINE_TIMEOUT);
    for (label, r, first, before, at_kill) in [(&la, &ra, fa, a_before, a_kill), (&lb, &rb, fb, b_before, b_kill)] {
        assert!(
            first > before && first <= at_kill + 1,
            "{label} restarted at {first}, expected {}..={}\n{}",
            before + 1,
            at_kill + 1,
            r.describe()
        );
    }
    ra.wait_for_count(fa + 20, LINE_TIMEOUT);
    rb.wait_for_count(fb + 20, LINE_TIMEOUT);
    expect_done(&mut rb, 100, Duration::from_secs(30));
    // A still runs after B is gone.
    let a_now = ra.last_count().unwrap();
    ra.wait_for_count(a_now + 5, LINE_TIMEOUT);
    assert!(ra.exited().is_none(), "{la} stopped when {lb} ended\n{}", ra.describe());
    expect_done(&mut ra, 150, Duration::from_secs(30));
}

#[test]
fn two_processes_side_by_side() {
    side_by_side("side_by_side", Bits::B64, Bits::B64);
}

/// A 32-bit and a 64-bit computation side by side.
#[test]
fn i386_and_x86_64_side_by_side() {
    side_by_side("side_by_side_32_64", Bits::B32, Bits::B64);
}

/// After a restart, the restored dynamic loader loads a library the program had never
/// loaded (its own dlopen, dlsym, relocation, constructor and TLS-free data). For i386
/// this stands in for a 32-bit interpreter, which Debian does not offer cheaply: it
/// exercises the same restored ld.so, relocation and constructors.
fn dlopen_after(bits: Bits) {
    let t = Test::new(&bits.name("dlopen"));
    let sfx = bits.suffix();
    let prog = t.compile_as(
        "counter",
        &format!("dlcounter{sfx}"),
        Variant::Dynamic,
        bits,
        &["-DUSE_DLOPEN", "-ldl"],
    );
    let lib = format!("libplugin{sfx}.so");
    let plugin = t.compile_as("plugin", &lib, Variant::Shared, bits, &[]);
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
    assert_runs_runtime(p.pid(), bits, true);
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
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", c.restarted.program_pid())).unwrap_or_default();
    assert!(
        maps.contains(&lib),
        "{lib} is not mapped in the restarted process:\n{maps}"
    );
    expect_done(&mut c.restarted, 120, Duration::from_secs(30));
}

per_width!(dlopen_after_restart, dlopen_after_restart_32 => dlopen_after());
