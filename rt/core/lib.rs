//! mtcp-core: the no_std code the runtime, `mtcp_restart` and the `mtcp` tool share —
//! typed syscalls, scratch memory, fixed-buffer formatting, the image format, maps
//! and timers parsing, checksums, configuration parsing, the runtime/tool protocol, the
//! progress record and meter, and moving typed input in and out of a terminal — over the
//! architecture layer (`mtcp-arch`, re-exported as `arch`).
#![cfg_attr(not(test), no_std)]
// Errors carry their message in a fixed buffer (there is no allocator): large by design.
#![allow(clippy::result_large_err)]

pub use mtcp_arch as arch;
pub use syscalls::Errno;

pub mod arena;
pub mod config;
pub mod fmt;
pub mod global;
pub mod image;
pub mod maps;
pub mod mqueue;
pub mod posix_timers;
pub mod progress;
pub mod protocol;
#[cfg(any(test, feature = "sample-image"))]
pub mod sample_image;
pub mod sys;
pub mod tty;
pub mod xxh64;
