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

/// The socket calls multiplexed by i386's `socketcall` (include/uapi/linux/net.h) that
/// did nothing when they return EINTR: accept, send, recv, sendto, recvfrom, sendmsg,
/// recvmsg, accept4, recvmmsg, sendmmsg (connect is not one: it goes on in the kernel).
pub fn socketcall_repeatable(call: u32) -> bool {
    matches!(call, 5 | 9 | 10 | 11 | 12 | 16 | 17 | 18 | 19 | 20)
}
