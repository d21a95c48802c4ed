//! Shared harness of the end-to-end tests: finding the built binaries, per-test temporary
//! directories, compiling the test programs for x86_64 or i386 (`Bits`), running processes
//! whose output is collected line by line, pseudo-terminals, and the checkpoint / kill /
//! restart cycle with its continuity checks. This file owns the time limits and re-exports
//! the modules, so that a test file needs only `pub mod common; use common::*;`. (`pub`:
//! the harness is then an API of each test binary, so what one binary leaves unused is
//! not reported as dead code, as each uses a part of it; a private item that nothing uses
//! still is.)
//!
//! Nothing here may hang: every wait has a time-out, every test body runs under a
//! watchdog (`Test::new`) that kills all children and aborts the test binary after
//! `WATCHDOG_SECS`, and every child is put in its own process group that is killed with
//! SIGKILL when its `Proc` is dropped.

mod bins;
mod cycle;
mod images;
mod proc;
mod pty;
mod run;
mod sys;
mod test_dir;
mod users;
mod watchdog;
mod widths;

pub use bins::*;
pub use cycle::*;
pub use images::*;
pub use proc::*;
pub use pty::*;
pub use run::*;
pub use sys::*;
pub use test_dir::*;
pub use users::*;
pub use watchdog::*;
pub use widths::*;

use std::time::Duration;

/// A whole test (compilation included) must finish within this.
pub const WATCHDOG_SECS: u64 = 120;
/// How long a `mtcp checkpoint` may take before the harness gives up on it.
pub const CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(30);
/// Generic time-out for "the next few lines".
pub const LINE_TIMEOUT: Duration = Duration::from_secs(20);
