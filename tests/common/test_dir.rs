//! The per-test context `Test`: a temporary directory, a watchdog, and the programs it compiles and runs.

use super::bins::bins;
use super::images::images_in;
use super::proc::Proc;
use super::run::{describe_output, run_output};
use super::watchdog::Watchdog;
use super::widths::Bits;
use super::WATCHDOG_SECS;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

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
    /// The `mtcp` that `launch` and `restart` run: the build tree's, or another
    /// (`use_mtcp`).
    pub mtcp: PathBuf,
    _watchdog: Watchdog,
}

static SERIAL: AtomicU64 = AtomicU64::new(0);

impl Test {
    /// A fresh temporary directory and a watchdog for the test `name`.
    pub fn new(name: &str) -> Test {
        Test::with_time_limit(name, WATCHDOG_SECS)
    }

    /// `new` with a watchdog of `secs`, for a test that waits on slow timers by design
    /// (a batch scheduler's).
    pub fn with_time_limit(name: &str, secs: u64) -> Test {
        let watchdog = Watchdog::new(name, secs);
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
            mtcp: bins().mtcp.clone(),
            _watchdog: watchdog,
        }
    }

    /// From now on `launch` and `restart` run `mtcp` (an installed one, say) instead of
    /// the build tree's.
    pub fn use_mtcp(&mut self, mtcp: &Path) {
        self.mtcp = mtcp.to_path_buf();
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
        // C, or C++ where the program is a .cpp.
        let cxx = b.root.join("tests/progs").join(format!("{src}.cpp"));
        let (source, compiler) = if cxx.exists() {
            (cxx, "g++")
        } else {
            (b.root.join("tests/progs").join(format!("{src}.c")), "gcc")
        };
        let output = self.path(out);
        let mut cmd = Command::new(compiler);
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
            "{compiler} failed for {} ({bits:?} {variant:?} {flags:?}):\n{}",
            source.display(),
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
        let mut cmd = Command::new(&self.mtcp);
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
        let mut cmd = Command::new(&self.mtcp);
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
