//! `scripts/install.sh` puts mtcp into a prefix, and the installed `mtcp`, run from a
//! directory outside the source tree, launches, checkpoints and restarts programs with
//! the installed runtimes and `mtcp_restart`s; programs link the installed `libmtcp.a`
//! through pkg-config.

pub mod common;

use common::*;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// Runs `scripts/install.sh ARGS` in the test directory, with `env` set, taking what
/// `cargo test` built (`--no-build` unless the caller says otherwise: cargo must not build
/// into the target directory while its tests run).
fn install_script(t: &Test, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let target = bins().mtcp.parent().and_then(Path::parent).expect("target directory");
    let mut cmd = Command::new("bash");
    cmd.arg(bins().root.join("scripts/install.sh"))
        .args(args)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("DESTDIR")
        .current_dir(&t.dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_output(cmd, Duration::from_secs(60))
}

/// Installs into `<test dir>/prefix` and returns the prefix. With `i386`, the i686 build
/// must exist (`bins32` says how to make it).
fn install(t: &Test, i386: bool) -> PathBuf {
    if i386 {
        bins32();
    }
    let prefix = t.path("prefix");
    let mut args = vec!["--no-build", "--prefix", prefix.to_str().unwrap()];
    if !i386 {
        args.push("--no-i386");
    }
    let out = install_script(t, &args, &[]);
    assert!(out.status.success(), "install.sh failed:\n{}", describe_output(&out));
    prefix
}

/// The installed artifact `file` of `bits`.
fn installed(prefix: &Path, bits: Bits, file: &str) -> PathBuf {
    prefix.join("lib/mtcp").join(bits.arch()).join(file)
}

/// Asserts that process `pid` has the installed runtime of `bits` mapped.
fn assert_maps_installed_runtime(pid: i32, prefix: &Path, bits: Bits, what: &str) {
    let lib = installed(prefix, bits, "libmtcp.so").canonicalize().unwrap();
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    assert!(
        maps.contains(lib.to_str().unwrap()),
        "the {what} process {pid} does not have the installed runtime {} mapped:\n{maps}",
        lib.display()
    );
}

/// A dynamic counter of `bits`, launched by the installed `mtcp` from the test directory
/// (outside the source tree), gets the installed runtime; the installed `mtcp`
/// checkpoints it and, after it is killed, restarts it with the installed
/// `mtcp_restart`, and it goes on counting.
fn installed_mtcp_cycle(bits: Bits) {
    let mut t = Test::new(&bits.name("install_cycle"));
    let prefix = install(&t, bits == Bits::B32);
    let mtcp = prefix.join("bin/mtcp");
    t.use_mtcp(&mtcp);
    let prog = t.compile("counter", Variant::Dynamic, bits, &[]);
    let mut p = t.launch(&prog, &["100000"]);
    p.wait_for_count(3, LINE_TIMEOUT);
    assert_maps_installed_runtime(p.pid(), &prefix, bits, "launched");
    let c = cycle_with(&t, p, |p| checkpoint_with(&mtcp, p.pid()));
    assert_eq!(image_arch(&c.image), bits.em(), "image architecture");
    assert_maps_installed_runtime(c.restarted.program_pid(), &prefix, bits, "restarted");
}

per_width!(
    installed_mtcp_launches_checkpoints_and_restarts,
    installed_mtcp_launches_checkpoints_and_restarts_32 => installed_mtcp_cycle()
);

/// A static program of `bits` built with the installed header and `libmtcp.a`, through
/// `pkg-config --cflags --libs --static` and nothing of the source tree, is launched,
/// checkpoints itself with `mtcp_checkpoint()`, and goes through a cycle with the
/// installed `mtcp`.
fn pkg_config_static_program(bits: Bits) {
    let mut t = Test::new(&bits.name("install_pkg_config"));
    let prefix = install(&t, bits == Bits::B32);
    let mtcp = prefix.join("bin/mtcp");
    t.use_mtcp(&mtcp);
    let package = match bits {
        Bits::B64 => "mtcp",
        Bits::B32 => "mtcp-i386",
    };
    let mut pc = Command::new("pkg-config");
    pc.args(["--cflags", "--libs", "--static", package])
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
        .current_dir(&t.dir);
    let out = run_output(pc, Duration::from_secs(20));
    assert!(
        out.status.success(),
        "pkg-config {package} failed (.ci/run installs pkg-config):\n{}",
        describe_output(&out)
    );
    let flags = String::from_utf8(out.stdout).unwrap();
    let include = format!("-I{}", prefix.join("include").display());
    let archive = installed(&prefix, bits, "libmtcp.a");
    assert!(
        flags.contains(&include) && flags.contains(archive.to_str().unwrap()),
        "pkg-config {package} does not name the installed header and archive ({include}, {}): {flags}",
        archive.display()
    );

    // counter.c includes "mtcp.h", which only the installed include directory holds.
    let prog = t.path("counter_static");
    let mut cc = Command::new("gcc");
    cc.args(bits.gcc_args())
        .args(["-O2", "-static", "-DUSE_API"])
        .arg(bins().root.join("tests/progs/counter.c"))
        .args(flags.split_whitespace())
        .arg("-o")
        .arg(&prog)
        .current_dir(&t.dir);
    let out = run_output(cc, Duration::from_secs(60));
    assert!(out.status.success(), "gcc failed:\n{}", describe_output(&out));

    let mut p = t.launch(&prog, &["100000", "--api-at", "2"]);
    let line = p.wait_for_line("`api checkpointed`", LINE_TIMEOUT, |l| l.starts_with("api "));
    assert!(
        line.starts_with("api checkpointed /"),
        "mtcp_checkpoint() failed: {line}\n{}",
        p.describe()
    );
    p.wait_for_count(4, LINE_TIMEOUT);
    let c = cycle_with(&t, p, |p| checkpoint_with(&mtcp, p.pid()));
    assert_eq!(image_arch(&c.image), bits.em(), "image architecture");
}

per_width!(
    program_linked_through_installed_pkg_config,
    program_linked_through_installed_pkg_config_32 => pkg_config_static_program()
);

/// Asserts that `out` is a one-line failure naming `path`.
fn assert_names(what: &str, out: &Output, path: &Path) {
    if let Some(problem) = one_line_failure(what, out, true, &[path.to_str().unwrap()]) {
        panic!("{problem}");
    }
}

/// An installed `mtcp` whose runtime or `mtcp_restart` is missing says so in one line
/// that names the installed path it looked at, and what to run; it never falls back to
/// anything else.
#[test]
fn installed_mtcp_names_a_missing_artifact() {
    let t = Test::new("install_missing");
    // Without the i386 part: a 32-bit program must be refused, naming where its runtime
    // would be.
    let prefix = install(&t, false);
    let mtcp = prefix.join("bin/mtcp");
    let run = |args: &[&OsStr]| {
        let mut cmd = Command::new(&mtcp);
        cmd.args(args).env_remove("MTCP_LIB32_DIR").current_dir(&t.dir);
        run_output(cmd, Duration::from_secs(30))
    };
    let prog32 = t.compile_as("counter", "counter32", Variant::Dynamic, Bits::B32, &[]);
    let out = run(&[
        OsStr::new("launch"),
        OsStr::new("--"),
        prog32.as_os_str(),
        OsStr::new("3"),
    ]);
    assert_names(
        "32-bit program without the installed i386 runtime",
        &out,
        &installed(&prefix, Bits::B32, "libmtcp.so"),
    );
    assert!(out.stdout.is_empty(), "the program ran:\n{}", describe_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("scripts/install.sh --prefix"),
        "the message does not say how to install the i386 part:\n{}",
        describe_output(&out)
    );

    // An image to restart, then its mtcp_restart gone.
    let prog = t.compile_c("counter", Variant::Dynamic, &[]);
    let mut cmd = Command::new(&mtcp);
    cmd.arg("launch")
        .arg("--dir")
        .arg(&t.dir)
        .arg("--")
        .arg(&prog)
        .arg("100000");
    cmd.current_dir(&t.dir);
    let mut p = Proc::spawn(cmd, "launch counter");
    p.wait_for_count(3, LINE_TIMEOUT);
    let image = checkpoint_with(&mtcp, p.pid());
    p.kill9();
    let restart = installed(&prefix, Bits::B64, "mtcp_restart");
    fs::remove_file(&restart).unwrap();
    let out = run(&[OsStr::new("restart"), image.as_os_str()]);
    assert_names("restart without the installed mtcp_restart", &out, &restart);

    let lib = installed(&prefix, Bits::B64, "libmtcp.so");
    fs::remove_file(&lib).unwrap();
    let out = run(&[
        OsStr::new("launch"),
        OsStr::new("--"),
        prog.as_os_str(),
        OsStr::new("3"),
    ]);
    assert_names("launch without the installed runtime", &out, &lib);
    assert!(out.stdout.is_empty(), "the program ran:\n{}", describe_output(&out));
}

/// The layout and modes of an install (staged under DESTDIR, as a package build does,
/// while the files name the real prefix), an install over an existing one, and an
/// uninstall that removes exactly what was installed.
#[test]
fn install_layout_modes_and_uninstall() {
    let t = Test::new("install_layout");
    bins32();
    let stage = t.path("stage");
    let prefix = "/opt/mtcp-install-test";
    let staged = stage.join(prefix.trim_start_matches('/'));
    let env = [("DESTDIR", stage.as_path())];
    // A reinstall replaces each file (a new inode), never rewrites it in place under a
    // program that has it open, mapped or running; the old one is held open meanwhile,
    // so its inode cannot be handed to the new file.
    let lib = staged.join("lib/mtcp/x86_64/libmtcp.so");
    let mut held = None;
    for round in 0..2 {
        let out = install_script(&t, &["--no-build", "--prefix", prefix], &env);
        assert!(
            out.status.success(),
            "install.sh (round {round}) failed:\n{}",
            describe_output(&out)
        );
        held.get_or_insert_with(|| fs::File::open(&lib).unwrap());
    }
    let old = held.unwrap().metadata().unwrap().ino();
    assert_ne!(
        old,
        fs::metadata(&lib).unwrap().ino(),
        "the reinstall rewrote {} in place",
        lib.display()
    );
    let expected: &[(&str, u32)] = &[
        ("bin/mtcp", 0o755),
        ("include/mtcp.h", 0o644),
        ("lib/pkgconfig/mtcp.pc", 0o644),
        ("lib/pkgconfig/mtcp-i386.pc", 0o644),
        ("lib/mtcp/x86_64/libmtcp.so", 0o644),
        ("lib/mtcp/x86_64/libmtcp.a", 0o644),
        ("lib/mtcp/x86_64/mtcp_restart", 0o755),
        ("lib/mtcp/i386/libmtcp.so", 0o644),
        ("lib/mtcp/i386/libmtcp.a", 0o644),
        ("lib/mtcp/i386/mtcp_restart", 0o755),
        ("share/bash-completion/completions/mtcp", 0o644),
        ("share/zsh/site-functions/_mtcp", 0o644),
        ("share/fish/vendor_completions.d/mtcp.fish", 0o644),
        ("share/man/man1/mtcp.1", 0o644),
        ("share/man/man1/mtcp-run.1", 0o644),
        ("share/man/man1/mtcp-checkpoint.1", 0o644),
    ];
    for (f, mode) in expected {
        let md = fs::metadata(staged.join(f)).unwrap_or_else(|e| panic!("{f} is not installed: {e}"));
        assert_eq!(md.permissions().mode() & 0o7777, *mode, "mode of {f}");
    }
    let same = |installed: &str, built: &Path| {
        assert!(
            fs::read(staged.join(installed)).unwrap() == fs::read(built).unwrap(),
            "{installed} is not a copy of {}",
            built.display()
        )
    };
    same("bin/mtcp", &bins().mtcp);
    same("lib/mtcp/x86_64/mtcp_restart", &bins().mtcp_restart);
    same("lib/mtcp/i386/mtcp_restart", &bins32().mtcp_restart);
    same("lib/mtcp/i386/libmtcp.a", &bins32().libmtcp_a);
    // Completion and man pages as the installed mtcp makes them, one page a command.
    let generated = |args: &[&str]| {
        let out = mtcp(args, Duration::from_secs(20));
        assert!(out.status.success(), "{}", describe_output(&out));
        out.stdout
    };
    for (shell, file) in [
        ("bash", "share/bash-completion/completions/mtcp"),
        ("zsh", "share/zsh/site-functions/_mtcp"),
        ("fish", "share/fish/vendor_completions.d/mtcp.fish"),
    ] {
        assert!(
            fs::read(staged.join(file)).unwrap() == generated(&["completion", shell]),
            "{file} is not what `mtcp completion {shell}` prints"
        );
    }
    let pages: Vec<String> = fs::read_dir(staged.join("share/man/man1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let listed = String::from_utf8(generated(&["man", "--dir", t.path("man").to_str().unwrap()])).unwrap();
    assert_eq!(pages.len(), listed.lines().count(), "{pages:?} / {listed}");
    assert!(
        fs::read(staged.join("share/man/man1/mtcp-run.1")).unwrap() == generated(&["man", "run"]),
        "mtcp-run.1 is not what `mtcp man run` prints"
    );
    let pc = fs::read_to_string(staged.join("lib/pkgconfig/mtcp-i386.pc")).unwrap();
    assert!(
        pc.contains(&format!("prefix={prefix}\n"))
            && pc.contains("libdir=${prefix}/lib/mtcp/i386\n")
            && !pc.contains('@'),
        "mtcp-i386.pc does not name the prefix and the i386 directory:\n{pc}"
    );

    // Uninstall leaves what is not mtcp's.
    fs::write(staged.join("bin/other"), "not mtcp's").unwrap();
    let out = install_script(&t, &["--uninstall", "--prefix", prefix], &env);
    assert!(out.status.success(), "uninstall failed:\n{}", describe_output(&out));
    for (f, _) in expected {
        assert!(!staged.join(f).exists(), "{f} is still there after uninstall");
    }
    for page in &pages {
        assert!(
            !staged.join("share/man/man1").join(page).exists(),
            "{page} is still there after uninstall"
        );
    }
    assert!(
        !staged.join("lib/mtcp").exists(),
        "lib/mtcp is still there after uninstall"
    );
    assert!(
        staged.join("bin/other").exists(),
        "uninstall removed a file that is not mtcp's"
    );
    let out = install_script(&t, &["--uninstall", "--prefix", prefix], &env);
    if let Some(problem) = one_line_failure("a second uninstall", &out, true, &["nothing of mtcp's"]) {
        panic!("{problem}");
    }

    // A prefix LD_PRELOAD could not hold is refused before anything is written.
    let blank = t.path("a b");
    let out = install_script(&t, &["--no-build", "--prefix", blank.to_str().unwrap()], &[]);
    if let Some(problem) = one_line_failure("a prefix with a blank", &out, true, &["blank"]) {
        panic!("{problem}");
    }
    assert!(!blank.exists(), "install.sh wrote into a prefix it refused");
}
