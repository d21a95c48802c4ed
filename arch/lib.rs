//! The architecture layer: everything that needs assembly or a kernel layout (syscall
//! shapes, signal frames, TLS, context switches, the clone system calls, CPU features).
//! It imports nothing of mtcp; everything above it is architecture-neutral.
#![no_std]

#[cfg(target_arch = "x86")]
mod x86;
#[cfg(target_arch = "x86")]
pub use x86::*;

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::*;
