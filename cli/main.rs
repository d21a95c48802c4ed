//! `mtcp`: command-line entry point, argument plumbing and error reporting shared by the subcommands.

use mtcp_core::{image, xxh64};

mod checkpoint;
mod elf;
mod inspect;
mod launch;
mod restart;
mod signal;

#[cfg(test)]
mod format_tests;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
usage: mtcp <command> [options]

Transparent checkpoint/restart of Linux processes.

commands:
  launch [--dir D] [--interval S] [--signal SIG] -- PROG ARGS...
                 run PROG with the mtcp runtime
  checkpoint [--timeout SECS] PID
                 checkpoint a running process and print the image path
  restart [--verbose] [--same-pid] IMAGE
                 bring a process back from an image, in place of this one
  inspect [--json] IMAGE
                 describe an image and verify its checksums

Run `mtcp <command> --help` for details.
";

/// How a subcommand failed: a usage mistake (exit 2) or a real failure (exit 1).
#[derive(Debug)]
pub enum Error {
    Usage(String),
    Fail(String),
}

pub type Result<T> = std::result::Result<T, Error>;

pub fn usage<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Usage(msg.into()))
}

pub fn fail<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Fail(msg.into()))
}

/// Walks a subcommand's arguments: options first, then positionals.
pub struct Args {
    args: Vec<OsString>,
    pos: usize,
    /// The subcommand's name, for error messages.
    pub cmd: &'static str,
}

/// One parsed option or positional argument.
pub enum Arg {
    /// `--name` or `--name=value` (the value, if attached, is kept for `value`).
    Opt(String, Option<OsString>),
    Positional(OsString),
    /// `--` was seen: everything after it is positional.
    DashDash,
}

impl Args {
    pub fn new(cmd: &'static str, args: Vec<OsString>) -> Args {
        Args { args, pos: 0, cmd }
    }

    pub fn next_arg(&mut self) -> Option<Arg> {
        let a = self.args.get(self.pos)?.clone();
        self.pos += 1;
        let b = a.as_bytes();
        if b == b"--" {
            return Some(Arg::DashDash);
        }
        if b.len() > 1 && b[0] == b'-' {
            // Bytes, not lossy text, so that `--dir=<non-UTF-8 path>` survives.
            if let Some(eq) = b.iter().position(|&c| c == b'=') {
                let name = String::from_utf8_lossy(&b[..eq]).into_owned();
                return Some(Arg::Opt(name, Some(OsStr::from_bytes(&b[eq + 1..]).to_os_string())));
            }
            return Some(Arg::Opt(String::from_utf8_lossy(b).into_owned(), None));
        }
        Some(Arg::Positional(a))
    }

    /// The value of option `name`: attached with `=` or the next argument.
    pub fn value(&mut self, name: &str, attached: Option<OsString>) -> Result<OsString> {
        if let Some(v) = attached {
            return Ok(v);
        }
        match self.args.get(self.pos) {
            Some(v) => {
                self.pos += 1;
                Ok(v.clone())
            }
            None => usage(format!("{}: option {} needs a value", self.cmd, name)),
        }
    }

    /// Like `value`, for options whose values must be text.
    pub fn value_str(&mut self, name: &str, attached: Option<OsString>) -> Result<String> {
        match self.value(name, attached)?.into_string() {
            Ok(s) => Ok(s),
            Err(v) => usage(format!("{}: invalid value for {}: {:?}", self.cmd, name, v)),
        }
    }

    /// Everything not consumed yet.
    pub fn rest(&mut self) -> Vec<OsString> {
        let r = self.args[self.pos..].to_vec();
        self.pos = self.args.len();
        r
    }

    pub fn unknown<T>(&self, opt: &str) -> Result<T> {
        usage(format!(
            "{}: unknown option {} (see `mtcp {} --help`)",
            self.cmd, opt, self.cmd
        ))
    }
}

/// The directory holding the running `mtcp` executable; the runtime and `mtcp_restart`
/// are built next to it.
pub fn exe_dir() -> Result<PathBuf> {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return fail(format!("cannot find the mtcp executable: {}", io_msg(&e))),
    };
    match exe.parent() {
        Some(d) => Ok(d.to_path_buf()),
        None => fail(format!("cannot find the directory of {}", exe.display())),
    }
}

/// Where the i386 build of `file` lives: `$MTCP_LIB32_DIR/file`, or the i686 target
/// directory beside this executable's, under the same profile name.
pub fn i386_artifact(file: &str) -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("MTCP_LIB32_DIR") {
        if !d.is_empty() {
            return Ok(Path::new(&d).join(file));
        }
    }
    let dir = exe_dir()?;
    let profile = dir
        .file_name()
        .map(|p| p.to_os_string())
        .unwrap_or_else(|| "release".into());
    let target = dir.parent().unwrap_or(Path::new("/"));
    Ok(target.join("i686-unknown-linux-gnu").join(profile).join(file))
}

/// The cargo command that builds the artifacts of this executable's profile.
pub fn build_hint(i386: bool) -> String {
    let profile = exe_dir()
        .ok()
        .and_then(|d| d.file_name().map(|p| p.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "release".into());
    let mut cmd = String::from("cargo build");
    match profile.as_str() {
        "debug" => {}
        "release" => cmd.push_str(" --release"),
        p => {
            cmd.push_str(" --profile ");
            cmd.push_str(p);
        }
    }
    if i386 {
        cmd.push_str(" --target i686-unknown-linux-gnu");
    }
    cmd
}

/// An io::Error as a short message, without Rust's "(os error N)" suffix.
pub fn io_msg(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// A scratch directory for one test, removed when dropped.
#[cfg(test)]
pub struct TempDir(pub PathBuf);

#[cfg(test)]
impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("mtcp-test-{}-{}", tag, std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

#[cfg(test)]
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the command line; `Ok` carries the exit status.
fn run(argv: Vec<OsString>) -> Result<u8> {
    let mut it = argv.into_iter().skip(1);
    let cmd = match it.next() {
        Some(c) => c,
        None => return usage("no command given (see `mtcp --help`)"),
    };
    let rest: Vec<OsString> = it.collect();
    match cmd.to_string_lossy().as_ref() {
        "-h" | "--help" | "help" => {
            print!("{}", USAGE);
            Ok(0)
        }
        "-V" | "--version" => {
            println!("mtcp {} ({})", env!("CARGO_PKG_VERSION"), env!("MTCP_BUILD_TARGET"));
            Ok(0)
        }
        "launch" => launch::main(Args::new("launch", rest)),
        "checkpoint" => checkpoint::main(Args::new("checkpoint", rest)),
        "restart" => restart::main(Args::new("restart", rest)),
        "inspect" => inspect::main(Args::new("inspect", rest)),
        other => usage(format!("unknown command '{}' (see `mtcp --help`)", other)),
    }
}

fn main() -> ExitCode {
    match run(std::env::args_os().collect()) {
        Ok(code) => ExitCode::from(code),
        Err(Error::Usage(msg)) => {
            eprintln!("mtcp: {}", msg);
            ExitCode::from(2)
        }
        Err(Error::Fail(msg)) => {
            eprintln!("mtcp: {}", msg);
            ExitCode::from(1)
        }
    }
}
