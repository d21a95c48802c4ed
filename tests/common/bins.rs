//! Where the programs under test are: the native build (`bins()`), the i686 one (`bins32()`), and python3.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

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

/// The i686 build of the runtime and of mtcp_restart, which `mtcp` uses for 32-bit
/// programs and images.
pub struct Bins32 {
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
