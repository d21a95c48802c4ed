//! Shared harness of the end-to-end tests: finding the built binaries, per-test temporary
//! directories, compiling the test programs for x86_64 or i386 (`Bits`), running processes
//! whose output is collected line by line, and the checkpoint / kill / restart cycle with
//! its continuity checks.
//!
//! Nothing here may hang: every wait has a time-out, every test body runs under a
//! watchdog (`Test::new`) that kills all children and aborts the test binary after
//! `WATCHDOG_SECS`, and every child is put in its own process group that is killed with
//! SIGKILL when its `Proc` is dropped.
#![allow(dead_code)]

pub mod json;

use std::collections::HashSet;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// A whole test (compilation included) must finish within this.
pub const WATCHDOG_SECS: u64 = 120;
/// How long a `mtcp checkpoint` may take before the harness gives up on it.
pub const CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(30);
/// Generic time-out for "the next few lines".
pub const LINE_TIMEOUT: Duration = Duration::from_secs(20);

pub const SIGKILL: i32 = 9;
pub const SIGUSR1: i32 = 10;
pub const SIGUSR2: i32 = 12;

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
    fn close_range(first: u32, last: u32, flags: i32) -> i32;
}

const CLOSE_RANGE_CLOEXEC: i32 = 4;

/// Children start with stdin/stdout/stderr only: descriptors the test runner inherited
/// (a job server, whatever ran `cargo test`) are closed at exec, so that images hold
/// only what the test set up.
fn hermetic(cmd: &mut Command) {
    // SAFETY: close_range is async-signal-safe; CLOEXEC (not closing) keeps the
    // descriptor std uses to report exec failures working.
    unsafe {
        cmd.pre_exec(|| {
            close_range(3, u32::MAX, CLOSE_RANGE_CLOEXEC);
            Ok(())
        });
    }
}

/// Sends `sig` to `pid` (a negative pid is a process group); true if it was sent.
pub fn send_signal(pid: i32, sig: i32) -> bool {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { kill(pid, sig) == 0 }
}

// ---------------------------------------------------------------------------------------
// Binaries

pub struct Bins {
    /// The repository root.
    pub root: PathBuf,
    pub mtcp: PathBuf,
    pub mtcp_restart: PathBuf,
    pub libmtcp_so: PathBuf,
    pub libmtcp_a: PathBuf,
    pub include: PathBuf,
}

pub fn bins() -> &'static Bins {
    static BINS: OnceLock<Bins> = OnceLock::new();
    BINS.get_or_init(|| {
        let mtcp = PathBuf::from(env!("CARGO_BIN_EXE_mtcp"));
        let dir = mtcp.parent().expect("directory of mtcp").to_path_buf();
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let b = Bins {
            mtcp_restart: dir.join("mtcp_restart"),
            libmtcp_so: dir.join("libmtcp.so"),
            libmtcp_a: dir.join("libmtcp.a"),
            include: root.join("include"),
            mtcp,
            root,
        };
        for p in [&b.mtcp, &b.mtcp_restart, &b.libmtcp_so, &b.libmtcp_a] {
            assert!(
                p.exists(),
                "{} does not exist: build the whole workspace first (`cargo build --release && cargo test --release`)",
                p.display()
            );
        }
        b
    })
}

// ---------------------------------------------------------------------------------------
// Children registry, for the watchdog

fn live_groups() -> &'static Mutex<HashSet<i32>> {
    static LIVE: OnceLock<Mutex<HashSet<i32>>> = OnceLock::new();
    LIVE.get_or_init(|| Mutex::new(HashSet::new()))
}

fn register_group(pgid: i32) {
    live_groups().lock().unwrap().insert(pgid);
}

fn unregister_group(pgid: i32) {
    live_groups().lock().unwrap().remove(&pgid);
}

fn kill_all_groups() {
    if let Ok(g) = live_groups().lock() {
        for &pgid in g.iter() {
            send_signal(-pgid, SIGKILL);
        }
    }
}

/// Aborts the whole test binary if not dropped within `secs`: a test must never hang.
pub struct Watchdog {
    tx: Option<mpsc::Sender<()>>,
}

impl Watchdog {
    pub fn new(name: &str, secs: u64) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        let name = name.to_string();
        thread::Builder::new()
            .name(format!("watchdog-{name}"))
            .spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_secs(secs)) {
                    eprintln!(
                        "\nWATCHDOG: test `{name}` did not finish within {secs} s: killing its children and aborting the test binary"
                    );
                    kill_all_groups();
                    std::process::abort();
                }
            })
            .expect("spawn watchdog");
        Watchdog { tx: Some(tx) }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Disconnecting wakes the watchdog thread, which then ends.
        self.tx.take();
    }
}

// ---------------------------------------------------------------------------------------
// Per-test context

/// How a C test program is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Ordinary dynamic PIE; gets the runtime from `mtcp launch` (LD_PRELOAD).
    Dynamic,
    /// `gcc -static ... --whole-archive libmtcp.a`
    Static,
    /// `gcc -static-pie -fPIE ... --whole-archive libmtcp.a`
    StaticPie,
    /// `gcc -nostdlib -static -fno-stack-protector ... --whole-archive libmtcp.a`
    NoLibc,
    /// A shared library (`-shared -fPIC`).
    Shared,
}

pub struct Test {
    pub name: String,
    pub dir: PathBuf,
    _watchdog: Watchdog,
}

static SERIAL: AtomicU64 = AtomicU64::new(0);

impl Test {
    /// A fresh temporary directory and a watchdog for the test `name`.
    pub fn new(name: &str) -> Test {
        let watchdog = Watchdog::new(name, WATCHDOG_SECS);
        let _ = bins();
        let dir = std::env::temp_dir().join(format!(
            "mtcp-test-{}-{}-{}",
            name,
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create test dir");
        Test {
            name: name.to_string(),
            dir,
            _watchdog: watchdog,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A subdirectory of the test directory (created).
    pub fn subdir(&self, name: &str) -> PathBuf {
        let d = self.dir.join(name);
        fs::create_dir_all(&d).expect("create subdir");
        d
    }

    /// Builds tests/progs/`src`.c for `bits` (plain `gcc`, or `gcc -m32`) as `out` in the
    /// test directory; the static variants link that width's libmtcp.a (whole archive).
    pub fn compile_as(&self, src: &str, out: &str, variant: Variant, bits: Bits, flags: &[&str]) -> PathBuf {
        let b = bins();
        // For i386 this also checks, with a helpful message, that the i686 build exists.
        let libmtcp_a = bits.libmtcp_a();
        let source = b.root.join("tests/progs").join(format!("{src}.c"));
        let output = self.path(out);
        let mut cmd = Command::new("gcc");
        cmd.args(bits.gcc_args()).args(["-Wall", "-g"]);
        match variant {
            Variant::Dynamic => cmd.args(["-O2"]),
            Variant::Static => cmd.args(["-O2", "-static"]),
            Variant::StaticPie => cmd.args(["-O2", "-static-pie", "-fPIE"]),
            Variant::NoLibc => cmd.args(["-O1", "-nostdlib", "-static", "-fno-stack-protector"]),
            Variant::Shared => cmd.args(["-O2", "-shared", "-fPIC"]),
        };
        cmd.args(flags)
            .arg(&source)
            .arg("-I")
            .arg(&b.include)
            .arg("-o")
            .arg(&output);
        if matches!(variant, Variant::Static | Variant::StaticPie | Variant::NoLibc) {
            cmd.arg("-Wl,--whole-archive")
                .arg(libmtcp_a)
                .arg("-Wl,--no-whole-archive");
        }
        let out = run_output(cmd, Duration::from_secs(60));
        assert!(
            out.status.success(),
            "gcc failed for {src}.c ({bits:?} {variant:?} {flags:?}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        output
    }

    /// `compile_as` with the output named after the source.
    pub fn compile(&self, src: &str, variant: Variant, bits: Bits, flags: &[&str]) -> PathBuf {
        self.compile_as(src, src, variant, bits, flags)
    }

    /// `compile` of an x86_64 program, for the tests that have no i386 counterpart.
    pub fn compile_c(&self, src: &str, variant: Variant, flags: &[&str]) -> PathBuf {
        self.compile(src, variant, Bits::B64, flags)
    }

    /// Builds tests/progs/`src`.rs for `bits` with `rustc -O` (and `--target
    /// i686-unknown-linux-gnu` for i386).
    pub fn compile_rust(&self, src: &str, out: &str, bits: Bits) -> PathBuf {
        let b = bins();
        let source = b.root.join("tests/progs").join(format!("{src}.rs"));
        let output = self.path(out);
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let mut cmd = Command::new(rustc);
        cmd.args(["-O", "--edition", "2021"]);
        if let Some(target) = bits.rust_target() {
            bits.libmtcp_so(); // the i686 build must exist, or the program cannot be run
            cmd.args(["--target", target]);
        }
        cmd.arg(&source).arg("-o").arg(&output);
        let out = run_output(cmd, Duration::from_secs(100));
        assert!(
            out.status.success(),
            "rustc failed for {src}.rs ({bits:?}){}:\n{}",
            match bits.rust_target() {
                Some(target) => format!(" (run `rustup target add {target}`)"),
                None => String::new(),
            },
            describe_output(&out)
        );
        output
    }

    /// `mtcp launch --dir DIR [extra options] -- prog args`, started in the test directory.
    pub fn launch_with(&self, opts: &[&str], prog: &Path, args: &[&str]) -> Proc {
        let mut cmd = Command::new(&bins().mtcp);
        cmd.arg("launch")
            .arg("--dir")
            .arg(&self.dir)
            .args(opts)
            .arg("--")
            .arg(prog)
            .args(args);
        cmd.current_dir(&self.dir);
        Proc::spawn(cmd, &format!("launch {}", prog.display()))
    }

    pub fn launch(&self, prog: &Path, args: &[&str]) -> Proc {
        self.launch_with(&[], prog, args)
    }

    /// `mtcp restart IMAGE`, started in the test directory.
    pub fn restart(&self, image: &Path) -> Proc {
        let mut cmd = Command::new(&bins().mtcp);
        cmd.arg("restart").arg(image).current_dir(&self.dir);
        Proc::spawn(cmd, &format!("restart {}", image.display()))
    }

    /// The images in the test directory (not the temporary files being written).
    pub fn images(&self) -> Vec<PathBuf> {
        images_in(&self.dir)
    }
}

impl Drop for Test {
    fn drop(&mut self) {
        if thread::panicking() || std::env::var_os("MTCP_TEST_KEEP").is_some() {
            eprintln!("[{}] keeping {} for inspection", self.name, self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Target width: x86_64 programs, or i386 programs (`gcc -m32`) on the 64-bit kernel

/// The width of the programs a test builds, which decides the runtime, the mtcp_restart
/// and the image architecture that go with them. The single-threaded scenarios run once
/// per width: a `fn scenario(bits: Bits, ...)` with the entry points `test_name` and
/// `test_name_32` (`per_width!`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bits {
    /// x86_64, with the native build (`bins()`).
    B64,
    /// i386, with the i686 build (`bins32()`), which `mtcp` uses for 32-bit programs.
    B32,
}

impl Bits {
    /// The name of a test's directory: `base`, or `base_32` for i386.
    pub fn name(self, base: &str) -> String {
        match self {
            Bits::B64 => base.to_string(),
            Bits::B32 => format!("{base}_32"),
        }
    }

    /// The suffix of the test programs written once per architecture (nolibc.c,
    /// nolibc32.c) and of output files that must not be confused: "" or "32".
    pub fn suffix(self) -> &'static str {
        match self {
            Bits::B64 => "",
            Bits::B32 => "32",
        }
    }

    pub fn other(self) -> Bits {
        match self {
            Bits::B64 => Bits::B32,
            Bits::B32 => Bits::B64,
        }
    }

    pub fn gcc_args(self) -> &'static [&'static str] {
        match self {
            Bits::B64 => &[],
            Bits::B32 => &["-m32"],
        }
    }

    /// `rustc --target`, if not the host's.
    pub fn rust_target(self) -> Option<&'static str> {
        match self {
            Bits::B64 => None,
            Bits::B32 => Some("i686-unknown-linux-gnu"),
        }
    }

    /// The ELF e_machine, which is also the image header's architecture word:
    /// 62 (EM_X86_64) or 3 (EM_386).
    pub fn em(self) -> u32 {
        match self {
            Bits::B64 => 62,
            Bits::B32 => 3,
        }
    }

    /// EI_CLASS of the programs: 2 (ELFCLASS64) or 1 (ELFCLASS32).
    pub fn elf_class(self) -> u8 {
        match self {
            Bits::B64 => 2,
            Bits::B32 => 1,
        }
    }

    /// The architecture as `mtcp inspect` names it.
    pub fn arch(self) -> &'static str {
        match self {
            Bits::B64 => "x86_64",
            Bits::B32 => "i386",
        }
    }

    /// The file name of the dynamic loader.
    pub fn ld_so(self) -> &'static str {
        match self {
            Bits::B64 => "ld-linux-x86-64.so.2",
            Bits::B32 => "ld-linux.so.2",
        }
    }

    pub fn libmtcp_so(self) -> &'static Path {
        match self {
            Bits::B64 => &bins().libmtcp_so,
            Bits::B32 => &bins32().libmtcp_so,
        }
    }

    pub fn libmtcp_a(self) -> &'static Path {
        match self {
            Bits::B64 => &bins().libmtcp_a,
            Bits::B32 => &bins32().libmtcp_a,
        }
    }

    pub fn mtcp_restart(self) -> &'static Path {
        match self {
            Bits::B64 => &bins().mtcp_restart,
            Bits::B32 => &bins32().mtcp_restart,
        }
    }
}

/// The two `#[test]` entry points of a scenario `fn scenario(bits: Bits, args...)`: the
/// first runs it for x86_64, the second for i386; attributes (`///` docs included) go to
/// both.
///
/// ```ignore
/// per_width!(dynamic_c_program, dynamic_c_program_32 => c_program("dynamic_c", Variant::Dynamic));
/// ```
#[macro_export]
macro_rules! per_width {
    ($(#[$attr:meta])* $n64:ident, $n32:ident => $scenario:ident($($arg:expr),* $(,)?)) => {
        $(#[$attr])*
        #[test]
        fn $n64() {
            $scenario($crate::common::Bits::B64 $(, $arg)*);
        }

        $(#[$attr])*
        #[test]
        fn $n32() {
            $scenario($crate::common::Bits::B32 $(, $arg)*);
        }
    };
}

/// The i686 build of the runtime and of mtcp_restart, which `mtcp` uses for 32-bit
/// programs and images.
pub struct Bins32 {
    pub dir: PathBuf,
    pub mtcp_restart: PathBuf,
    pub libmtcp_so: PathBuf,
    pub libmtcp_a: PathBuf,
}

/// The i686 artifacts where `mtcp` itself finds them: `$MTCP_LIB32_DIR`, or
/// `<target>/i686-unknown-linux-gnu/<profile>/` beside `<target>/<profile>/mtcp`.
/// Panics with the command that builds them if any is missing.
pub fn bins32() -> &'static Bins32 {
    static BINS32: OnceLock<Bins32> = OnceLock::new();
    BINS32.get_or_init(|| {
        let profile_dir = bins().mtcp.parent().expect("directory of mtcp").to_path_buf();
        let profile = profile_dir
            .file_name()
            .expect("profile directory")
            .to_string_lossy()
            .into_owned();
        let from_env = std::env::var_os("MTCP_LIB32_DIR").filter(|d| !d.is_empty());
        let dir = match &from_env {
            Some(d) => PathBuf::from(d),
            None => profile_dir
                .parent()
                .expect("target directory")
                .join("i686-unknown-linux-gnu")
                .join(&profile),
        };
        let build = match profile.as_str() {
            "debug" => "cargo build --target i686-unknown-linux-gnu".to_string(),
            "release" => "cargo build --release --target i686-unknown-linux-gnu".to_string(),
            p => format!("cargo build --profile {p} --target i686-unknown-linux-gnu"),
        };
        let b = Bins32 {
            mtcp_restart: dir.join("mtcp_restart"),
            libmtcp_so: dir.join("libmtcp.so"),
            libmtcp_a: dir.join("libmtcp.a"),
            dir,
        };
        for p in [&b.libmtcp_so, &b.libmtcp_a, &b.mtcp_restart] {
            assert!(
                p.exists(),
                "{} does not exist: the i386 tests need the 32-bit build; run `{build}` first \
                 (it needs `rustup target add i686-unknown-linux-gnu` and gcc-multilib){}",
                p.display(),
                if from_env.is_some() {
                    ", or unset MTCP_LIB32_DIR"
                } else {
                    ""
                }
            );
        }
        b
    })
}

/// The image header's architecture word (offset 12): `Bits::em`, 62 or 3.
pub fn image_arch(image: &Path) -> u32 {
    let b = fs::read(image).unwrap();
    u32::from_le_bytes(b[12..16].try_into().unwrap())
}

/// The running process `pid` is a program of width `bits` and, if it is `dynamic`, has
/// the runtime of that width mapped (the one `mtcp launch` preloaded), not the other.
pub fn assert_runs_runtime(pid: i32, bits: Bits, dynamic: bool) {
    let exe = fs::read(format!("/proc/{pid}/exe")).unwrap_or_default();
    assert!(exe.len() > 5 && &exe[..4] == b"\x7fELF", "cannot read /proc/{pid}/exe");
    assert_eq!(
        exe[4],
        bits.elf_class(),
        "process {pid} is not a {} (EI_CLASS {}) program",
        bits.arch(),
        bits.elf_class()
    );
    if dynamic {
        let maps = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        let lib = bits.libmtcp_so().canonicalize().unwrap();
        assert!(
            maps.contains(lib.to_str().unwrap()),
            "the {} runtime {} is not mapped in the {} process {pid}:\n{maps}",
            bits.arch(),
            lib.display(),
            bits.arch()
        );
        if bits == Bits::B32 {
            let lib64 = Bits::B64.libmtcp_so().canonicalize().unwrap();
            assert!(
                !maps.contains(lib64.to_str().unwrap()),
                "the 64-bit runtime is mapped in a 32-bit process:\n{maps}"
            );
        }
    }
}

/// The `ckpt_*.mtcp` files in `dir`.
pub fn images_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    n.starts_with("ckpt_") && n.ends_with(".mtcp")
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The image `ckpt_<anything>_<vpid>.mtcp` in `dir`, if there is one.
pub fn image_for(dir: &Path, vpid: i32) -> Option<PathBuf> {
    let suffix = format!("_{vpid}.mtcp");
    images_in(dir)
        .into_iter()
        .find(|p| p.file_name().unwrap().to_str().unwrap().ends_with(&suffix))
}

pub fn mtime(p: &Path) -> Option<SystemTime> {
    fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Polls `f` every 20 ms until it returns Some or `timeout` passes.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------
// Running commands

/// Runs `cmd` to completion, collecting its output; kills it (and its group) and panics
/// if it takes longer than `timeout`.
pub fn run_output(mut cmd: Command, timeout: Duration) -> Output {
    let desc = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    hermetic(&mut cmd);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {desc}: {e}"));
    let pid = child.id() as i32;
    register_group(pid);
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t2 = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let end = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < end => thread::sleep(Duration::from_millis(10)),
            _ => {
                send_signal(-pid, SIGKILL);
                let _ = child.kill();
                let _ = child.wait();
                unregister_group(pid);
                panic!("{desc} did not finish within {timeout:?}");
            }
        }
    };
    // Anything it left behind in its group goes too (so the pipes reach EOF).
    send_signal(-pid, SIGKILL);
    unregister_group(pid);
    let stdout = t1.join().unwrap();
    let stderr = t2.join().unwrap();
    Output { status, stdout, stderr }
}

/// Runs an mtcp_restart `program` on `image` directly, in `dir`.
pub fn run_restart_program(program: &Path, image: &Path, dir: &Path) -> Output {
    let mut cmd = Command::new(program);
    cmd.arg(image).current_dir(dir);
    run_output(cmd, Duration::from_secs(30))
}

/// Runs the mtcp CLI with `args`.
pub fn mtcp(args: &[&str], timeout: Duration) -> Output {
    let mut cmd = Command::new(&bins().mtcp);
    cmd.args(args);
    run_output(cmd, timeout)
}

pub fn describe_output(o: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}--- stderr ---\n{}",
        describe_status(&o.status),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Checks the run of a program that must refuse its input: not killed by a signal, a
/// non-zero exit (exactly 1 if `exit1`), exactly one line on stderr, and that line
/// mentions one of `keywords` (lower case). Returns the problem, or None if it failed
/// properly.
pub fn one_line_failure(what: &str, out: &Output, exit1: bool, keywords: &[&str]) -> Option<String> {
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

pub fn describe_status(s: &ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(sig)) => format!(
            "killed by signal {sig}{}",
            if s.core_dumped() { " (core dumped)" } else { "" }
        ),
        _ => format!("{s:?}"),
    }
}

/// `mtcp checkpoint --timeout 20 PID`, which must succeed and print the image path last.
pub fn checkpoint(pid: i32) -> PathBuf {
    let out = mtcp(&["checkpoint", "--timeout", "20", &pid.to_string()], CHECKPOINT_TIMEOUT);
    assert!(
        out.status.success(),
        "mtcp checkpoint {pid} failed:\n{}",
        describe_output(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("mtcp checkpoint {pid} printed nothing:\n{}", describe_output(&out)));
    let path = PathBuf::from(last.trim());
    assert!(
        path.is_absolute() && path.is_file(),
        "mtcp checkpoint {pid}: last line {last:?} is not the path of an existing image:\n{}",
        describe_output(&out)
    );
    path
}

/// An image of `prog`: launched with its default arguments, checkpointed after 3 counts
/// with `mtcp checkpoint`, then killed.
pub fn image_of(t: &Test, prog: &Path) -> PathBuf {
    let mut p = t.launch(prog, &[]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let image = checkpoint(p.pid());
    p.kill9();
    image
}

/// `mtcp inspect --json IMAGE`, which must succeed; returns the parsed document.
pub fn inspect_json(image: &Path) -> json::Value {
    let out = mtcp(&["inspect", "--json", image.to_str().unwrap()], Duration::from_secs(60));
    assert!(
        out.status.success(),
        "mtcp inspect --json {} failed:\n{}",
        image.display(),
        describe_output(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    json::parse(&text).unwrap_or_else(|e| panic!("mtcp inspect --json output is not JSON ({e}):\n{text}"))
}

/// `mtcp inspect IMAGE` (text), which must succeed; returns stdout.
pub fn inspect_text(image: &Path) -> String {
    let out = mtcp(&["inspect", image.to_str().unwrap()], Duration::from_secs(60));
    assert!(
        out.status.success(),
        "mtcp inspect {} failed:\n{}",
        image.display(),
        describe_output(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---------------------------------------------------------------------------------------
// Processes with collected output

#[derive(Default)]
struct LinesState {
    lines: Vec<String>,
    eof: bool,
}

#[derive(Default)]
struct Lines {
    state: Mutex<LinesState>,
    cv: Condvar,
}

impl Lines {
    fn start(stream: impl Read + Send + 'static) -> (Arc<Lines>, thread::JoinHandle<()>) {
        let lines = Arc::new(Lines::default());
        let l2 = lines.clone();
        let h = thread::spawn(move || {
            let mut r = BufReader::new(stream);
            loop {
                let mut buf = Vec::new();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if buf.last() == Some(&b'\n') {
                            buf.pop();
                        }
                        let mut s = l2.state.lock().unwrap();
                        s.lines.push(String::from_utf8_lossy(&buf).into_owned());
                        l2.cv.notify_all();
                    }
                }
            }
            let mut s = l2.state.lock().unwrap();
            s.eof = true;
            l2.cv.notify_all();
        });
        (lines, h)
    }

    fn snapshot(&self) -> Vec<String> {
        self.state.lock().unwrap().lines.clone()
    }

    /// Waits for a line at index >= `from` matching `pred`; returns (index, line).
    fn wait(&self, from: usize, timeout: Duration, pred: &mut dyn FnMut(&str) -> bool) -> Option<(usize, String)> {
        let end = Instant::now() + timeout;
        let mut s = self.state.lock().unwrap();
        let mut next = from;
        loop {
            while next < s.lines.len() {
                if pred(&s.lines[next]) {
                    return Some((next, s.lines[next].clone()));
                }
                next += 1;
            }
            if s.eof {
                return None;
            }
            let now = Instant::now();
            if now >= end {
                return None;
            }
            s = self.cv.wait_timeout(s, end - now).unwrap().0;
        }
    }

    fn wait_eof(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        let mut s = self.state.lock().unwrap();
        while !s.eof {
            let now = Instant::now();
            if now >= end {
                return false;
            }
            s = self.cv.wait_timeout(s, end - now).unwrap().0;
        }
        true
    }
}

/// Parses `count N`.
pub fn parse_count(line: &str) -> Option<u64> {
    line.strip_prefix("count ")?.trim().parse().ok()
}

/// A child process in its own process group, stdout and stderr collected line by line.
pub struct Proc {
    pub label: String,
    child: Option<Child>,
    pid: i32,
    out: Arc<Lines>,
    err: Arc<Lines>,
    status: Option<ExitStatus>,
}

impl Proc {
    pub fn spawn(mut cmd: Command, label: &str) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        hermetic(&mut cmd);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {label} ({cmd:?}): {e}"));
        let pid = child.id() as i32;
        register_group(pid);
        let (out, _) = Lines::start(child.stdout.take().unwrap());
        let (err, _) = Lines::start(child.stderr.take().unwrap());
        Proc {
            label: label.to_string(),
            child: Some(child),
            pid,
            out,
            err,
            status: None,
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn lines(&self) -> Vec<String> {
        self.out.snapshot()
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.err.snapshot()
    }

    /// The `count N` values printed so far, in order.
    pub fn counts(&self) -> Vec<u64> {
        self.lines().iter().filter_map(|l| parse_count(l)).collect()
    }

    pub fn last_count(&self) -> Option<u64> {
        self.lines().iter().rev().find_map(|l| parse_count(l))
    }

    pub fn first_count(&self) -> Option<u64> {
        self.lines().iter().find_map(|l| parse_count(l))
    }

    /// Both streams, for failure messages (the last 40 lines of each).
    pub fn describe(&self) -> String {
        fn tail(v: Vec<String>) -> String {
            let skip = v.len().saturating_sub(40);
            let mut s = String::new();
            if skip > 0 {
                s.push_str(&format!("  ... ({skip} earlier lines)\n"));
            }
            for l in &v[skip..] {
                s.push_str("  ");
                s.push_str(l);
                s.push('\n');
            }
            s
        }
        let status = match self.status {
            Some(s) => describe_status(&s),
            None => "running (or not reaped)".to_string(),
        };
        format!(
            "[{} pid {} — {}]\n--- stdout ---\n{}--- stderr ---\n{}",
            self.label,
            self.pid,
            status,
            tail(self.lines()),
            tail(self.stderr_lines())
        )
    }

    /// Waits for a stdout line matching `pred`; panics (with both streams) on time-out or
    /// if the output ends first.
    pub fn wait_for_line(&mut self, what: &str, timeout: Duration, mut pred: impl FnMut(&str) -> bool) -> String {
        match self.out.wait(0, timeout, &mut pred) {
            Some((_, l)) => l,
            None => {
                self.reap_if_exited();
                panic!("{}: no line {what} within {timeout:?}\n{}", self.label, self.describe())
            }
        }
    }

    /// Like `wait_for_line` but returns None instead of panicking.
    pub fn try_wait_for_line(&self, timeout: Duration, mut pred: impl FnMut(&str) -> bool) -> Option<String> {
        self.out.wait(0, timeout, &mut pred).map(|(_, l)| l)
    }

    /// Waits until `count n` (or a later count) has been printed; returns the count seen.
    pub fn wait_for_count(&mut self, n: u64, timeout: Duration) -> u64 {
        let line = self.wait_for_line(&format!("`count {n}`"), timeout, |l| {
            parse_count(l).is_some_and(|c| c >= n)
        });
        parse_count(&line).unwrap()
    }

    /// Waits for the first `count` line.
    pub fn wait_first_count(&mut self, timeout: Duration) -> u64 {
        let line = self.wait_for_line("`count N`", timeout, |l| parse_count(l).is_some());
        parse_count(&line).unwrap()
    }

    fn reap_if_exited(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if let Ok(Some(s)) = c.try_wait() {
                self.status = Some(s);
                self.child = None;
                unregister_group(self.pid);
            }
        }
    }

    /// Waits for the process to exit by itself; returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let end = Instant::now() + timeout;
        loop {
            self.reap_if_exited();
            if let Some(s) = self.status {
                self.out.wait_eof(Duration::from_secs(5));
                self.err.wait_eof(Duration::from_secs(5));
                return s;
            }
            if Instant::now() >= end {
                panic!("{}: did not exit within {timeout:?}\n{}", self.label, self.describe());
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Has it exited already (without waiting)?
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.reap_if_exited();
        self.status
    }

    /// SIGKILL to its whole process group, then reap it and collect the rest of its output.
    pub fn kill9(&mut self) {
        send_signal(-self.pid, SIGKILL);
        send_signal(self.pid, SIGKILL);
        if let Some(mut c) = self.child.take() {
            if let Ok(s) = c.wait() {
                self.status = Some(s);
            }
        }
        unregister_group(self.pid);
        self.out.wait_eof(Duration::from_secs(5));
        self.err.wait_eof(Duration::from_secs(5));
    }

    /// Lines starting with `BAD`.
    pub fn bad_lines(&self) -> Vec<String> {
        self.lines().into_iter().filter(|l| l.starts_with("BAD")).collect()
    }

    pub fn assert_no_bad(&self) {
        let bad = self.bad_lines();
        assert!(
            bad.is_empty(),
            "{}: memory check failed: {bad:?}\n{}",
            self.label,
            self.describe()
        );
    }

    /// The counts printed are consecutive (each one more than the previous).
    pub fn assert_consecutive(&self) {
        let c = self.counts();
        for w in c.windows(2) {
            assert!(
                w[1] == w[0] + 1,
                "{}: counts are not consecutive ({} then {})\n{}",
                self.label,
                w[0],
                w[1],
                self.describe()
            );
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.is_some() {
            send_signal(-self.pid, SIGKILL);
            send_signal(self.pid, SIGKILL);
            if let Some(mut c) = self.child.take() {
                let _ = c.wait();
            }
            unregister_group(self.pid);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The checkpoint / kill / restart cycle

/// What one cycle observed.
pub struct Cycle {
    pub image: PathBuf,
    /// Last count seen before the checkpoint was requested.
    pub before: u64,
    /// Last count seen when the checkpoint had completed.
    pub after: u64,
    /// Last count printed by the original process before SIGKILL.
    pub at_kill: u64,
    /// First count printed by the restarted process.
    pub first: u64,
    pub restarted: Proc,
}

/// Takes a checkpoint of `p` with `trigger` (which returns the image path once it is
/// complete), lets `p` run a little further, kills it with SIGKILL, restarts the image
/// and checks that the restarted process picks up where the checkpoint was taken:
/// its first count f satisfies `before + 1 <= f <= at_kill + 1` and it goes on counting
/// 20 more consecutive values with intact memory.
pub fn cycle_with(t: &Test, mut p: Proc, trigger: impl FnOnce(&mut Proc) -> PathBuf) -> Cycle {
    let before = p
        .last_count()
        .unwrap_or_else(|| panic!("{}: no count before the checkpoint\n{}", p.label, p.describe()));
    let image = trigger(&mut p);
    let after = p.last_count().unwrap();
    assert!(image.is_file(), "image {} does not exist", image.display());
    // The original survives its checkpoint.
    p.wait_for_count(after + 2, LINE_TIMEOUT);
    p.kill9();
    p.assert_no_bad();
    p.assert_consecutive();
    let at_kill = p.last_count().unwrap();
    let mut r = t.restart(&image);
    let first = r.wait_first_count(LINE_TIMEOUT);
    assert!(
        first > before && first <= at_kill + 1,
        "restarted process began at count {first}, but the checkpoint was taken between counts {before} and {after} \
         (the original printed up to {at_kill} before being killed); expected {}..={}\n{}",
        before + 1,
        at_kill + 1,
        r.describe()
    );
    eprintln!(
        "[{}] checkpoint {} taken between counts {before} and {after}; killed at {at_kill}; restarted at {first}",
        t.name,
        image.display()
    );
    r.wait_for_count(first + 20, LINE_TIMEOUT);
    r.assert_no_bad();
    r.assert_consecutive();
    let noise: Vec<String> = r.stderr_lines().into_iter().filter(|l| l.contains("mtcp")).collect();
    assert!(
        noise.is_empty(),
        "the restart printed messages without --verbose: {noise:?}\n{}",
        r.describe()
    );
    assert!(
        !r.lines().iter().any(|l| l.starts_with("start ")),
        "restarted process ran its start-up again (printed `start`)\n{}",
        r.describe()
    );
    Cycle {
        image,
        before,
        after,
        at_kill,
        first,
        restarted: r,
    }
}

/// `cycle_with` using `mtcp checkpoint PID`.
pub fn cycle(t: &Test, p: Proc) -> Cycle {
    cycle_with(t, p, |p| checkpoint(p.pid()))
}

/// Waits until the process exits normally after printing `done N`.
pub fn expect_done(p: &mut Proc, n: u64, timeout: Duration) {
    p.wait_for_line(&format!("`done {n}`"), timeout, |l| l == format!("done {n}"));
    let st = p.wait_exit(Duration::from_secs(10));
    assert!(
        st.success(),
        "{}: exited with {} after `done {n}`\n{}",
        p.label,
        describe_status(&st),
        p.describe()
    );
    p.assert_no_bad();
    p.assert_consecutive();
}

/// The real python3 executable (not a pyenv shell shim).
pub fn python3() -> PathBuf {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 is needed by this test (run .ci/run to install it)");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert!(p.is_file(), "sys.executable {p:?} does not exist");
    p.canonicalize().unwrap()
}
