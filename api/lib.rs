//! mtcp for Rust programs: checkpoint the running process, learn whether it was restarted
//! from an image, and read images with the reader the `mtcp` tool uses.
//!
//! The checkpoint itself is the work of the mtcp runtime, which a program gets by being
//! started with `mtcp launch` or `mtcp run` (they preload `libmtcp.so`). This crate finds
//! the runtime when the program runs, so one binary works with and without it:
//!
//! ```
//! use mtcp_api::{checkpoint, Checkpoint, Error};
//!
//! match checkpoint() {
//!     Ok(Checkpoint::Written(image)) => println!("saved in {}", image.display()),
//!     Ok(Checkpoint::Restarted(image)) => println!("back from {}", image.display()),
//!     Err(Error::NoRuntime) => println!("not started by mtcp: going on without a checkpoint"),
//!     Err(e) => eprintln!("{e}"),
//! }
//! ```
//!
//! A restarted process goes on where the checkpoint found it; [`restarts`] says how often
//! that has happened to this computation, so that it can, say, open its connections
//! again:
//!
//! ```
//! if mtcp_api::was_restarted() {
//!     println!("restarted {} time(s); reconnecting", mtcp_api::restarts());
//! }
//! ```
//!
//! Reading an image ([`Image`]; the records are those of [`format`], the image format):
//!
//! ```no_run
//! let image = mtcp_api::Image::open("ckpt_solver_4242.mtcp")?;
//! image.verify()?; // every region's saved memory against its checksum
//! println!(
//!     "{} (first pid {}), {} threads, {} regions, taken at {:?}",
//!     image.program_name(),
//!     image.process().vpid,
//!     image.thread_count(),
//!     image.region_count(),
//!     image.taken_at()
//! );
//! # Ok::<(), mtcp_api::Error>(())
//! ```

use std::fmt;
use std::io;
use std::path::PathBuf;

mod image;
mod runtime;

pub use image::{read_header, Image, RegionCheck};
pub use runtime::{checkpoint, image_path, restarts, runtime_present, was_restarted, Checkpoint};

/// The image format: headers and records as stored (`mtcp_core::image`).
pub use mtcp_core::image as format;

/// What went wrong: with the runtime, or with an image. Each shows as one line.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// This process has no mtcp runtime: it was not started with `mtcp launch` or
    /// `mtcp run` (nor linked with `libmtcp.a` and exporting its symbols).
    NoRuntime,
    /// The runtime could not write the image; the previous image is left as it was.
    /// `EBUSY`: another checkpoint (a signal, `mtcp checkpoint`) ran at that moment and
    /// this thread took part in it.
    Checkpoint(io::Error),
    /// An image could not be opened (`reading` false) or read.
    Io {
        path: PathBuf,
        reading: bool,
        error: io::Error,
    },
    /// The path is a directory or another file that is not a regular one.
    NotAFile { path: PathBuf, directory: bool },
    /// Not an mtcp image, or a damaged one: its header, layout or metadata.
    Format { path: PathBuf, error: format::FormatError },
    /// Saved memory of `bad` of the image's `regions` regions fails its checksum.
    Corrupt { path: PathBuf, bad: usize, regions: usize },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoRuntime => {
                f.write_str("no mtcp runtime in this process (start the program with `mtcp launch` or `mtcp run`)")
            }
            Error::Checkpoint(e) => write!(f, "the checkpoint failed: {}", io_message(e)),
            Error::Io { path, reading, error } => write!(
                f,
                "cannot {} {}: {}",
                if *reading { "read" } else { "open" },
                path.display(),
                io_message(error)
            ),
            Error::NotAFile { path, directory: true } => {
                write!(f, "{}: is a directory, not an mtcp image", path.display())
            }
            Error::NotAFile { path, .. } => {
                write!(f, "{}: not a regular file, so not an mtcp image", path.display())
            }
            Error::Format { path, error } => write!(f, "{}: {}", path.display(), format_error(error)),
            Error::Corrupt { path, bad, regions } => write!(
                f,
                "{}: {} of {} regions have bad data checksums",
                path.display(),
                bad,
                regions
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Checkpoint(e) | Error::Io { error: e, .. } => Some(e),
            _ => None,
        }
    }
}

/// An io::Error as a short message, without Rust's "(os error N)" suffix.
pub fn io_message(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// A FormatError as one line, with the numbers that explain it.
pub fn format_error(e: &format::FormatError) -> String {
    use format::FormatError;
    match e {
        FormatError::BadVersion(v) => format!("{} {} (this mtcp reads version {})", e.message(), v, format::VERSION),
        FormatError::Truncated { expected, actual } => {
            format!("{}: {} of {} bytes", e.message(), actual, expected)
        }
        _ => e.message().to_string(),
    }
}
