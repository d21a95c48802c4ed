//! `mtcp`: command-line entry point, argument plumbing and error reporting shared by the subcommands.

use mtcp_core::image;

mod args;
mod artifacts;
mod checkpoint;
mod clean;
mod debug;
mod elf;
mod generate;
mod inspect;
mod launch;
mod progress;
mod restart;
mod run;
mod signal;

use std::ffi::OsString;
use std::fmt::Write as _;
use std::process::ExitCode;

use args::{Opt, Subcommand, Value};

const COMMANDS: [&Subcommand; 9] = [
    &launch::COMMAND,
    &run::COMMAND,
    &checkpoint::COMMAND,
    &restart::COMMAND,
    &inspect::COMMAND,
    &clean::COMMAND,
    &debug::COMMAND,
    &generate::COMPLETION,
    &generate::MAN,
];

/// What mtcp is, in one line: `mtcp --help` and mtcp(1) say it.
pub const TAGLINE: &str = "Transparent checkpoint/restart of Linux processes.";

/// The options of `mtcp` itself, before any command.
pub const TOP_OPTIONS: [Opt; 2] = [
    args::HELP,
    Opt {
        name: "-V, --version",
        value: Value::None,
        help: "show mtcp's version and the image format version it writes",
    },
];

/// What `mtcp --help` prints: each command's synopsis and summary from its table entry.
fn usage_text() -> String {
    let mut s = format!("usage: mtcp <command> [options]\n\n{}\n\ncommands:\n", TAGLINE);
    for c in COMMANDS {
        let _ = writeln!(s, "  {} {}\n{:17}{}", c.name, c.synopsis, "", c.summary);
    }
    s.push_str("\noptions:\n");
    args::write_options(&mut s, TOP_OPTIONS.iter());
    s.push_str("\nRun `mtcp <command> --help` for details.\n");
    s
}

/// What `mtcp --version` prints: this tool's version and the image format it reads and writes.
fn version_text() -> String {
    format!("mtcp {} (image format {})", env!("CARGO_PKG_VERSION"), image::VERSION)
}

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

/// An io::Error as a short message, without Rust's "(os error N)" suffix.
pub use mtcp_api::io_message as io_msg;

/// A scratch directory for one test, removed when dropped.
#[cfg(test)]
pub struct TempDir(pub std::path::PathBuf);

#[cfg(test)]
impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("mtcp-test-{}-{}", tag, std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }

    pub fn join(&self, name: &str) -> std::path::PathBuf {
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
            print!("{}", usage_text());
            Ok(0)
        }
        "-V" | "--version" => {
            println!("{}", version_text());
            Ok(0)
        }
        name => match COMMANDS.iter().find(|c| c.name == name) {
            Some(c) => c.main(rest),
            None => usage(format!("unknown command '{}' (see `mtcp --help`)", name)),
        },
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
