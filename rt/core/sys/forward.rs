//! Moving bytes between descriptors in the kernel (tee, splice), pipe capacities, and
//! the quiet fork a stdin forwarder runs in.
//!
//! Error policy as in `sys`.

use syscalls::{Errno, Sysno};

use super::fd_arg;

/// tee/splice flag: fail with EAGAIN instead of waiting.
pub const SPLICE_F_NONBLOCK: usize = 2;
const F_SETPIPE_SZ: usize = 1031;
const F_GETPIPE_SZ: usize = 1032;

/// Copies up to `len` bytes from the start of pipe `input` into pipe `output` without
/// consuming them (tee). Returns the bytes copied, 0 if `input` is empty. EINVAL if
/// either is not a pipe, EAGAIN with SPLICE_F_NONBLOCK if it would wait.
pub fn tee(input: i32, output: i32, len: usize, flags: usize) -> Result<usize, Errno> {
    // SAFETY: tee touches no memory of ours.
    unsafe { syscalls::syscall4(Sysno::tee, fd_arg(input), fd_arg(output), len, flags) }
}

/// Moves up to `len` bytes from `input` to `output`, one of which is a pipe (splice,
/// at each one's own offset), retried on EINTR. Returns the bytes moved, 0 at end of
/// input. EINVAL if neither is a pipe or `input` cannot be spliced from (a terminal),
/// EPIPE if `output` has no reader left.
pub fn splice(input: i32, output: i32, len: usize) -> Result<usize, Errno> {
    loop {
        // SAFETY: null offsets: splice touches no memory of ours.
        match unsafe { syscalls::syscall6(Sysno::splice, fd_arg(input), 0, fd_arg(output), 0, len, 0) } {
            Err(Errno::EINTR) => continue,
            r => return r,
        }
    }
}

/// The capacity of pipe `fd` in bytes (F_GETPIPE_SZ); EBADF, or EINVAL if not a pipe.
pub fn pipe_capacity(fd: i32) -> Result<usize, Errno> {
    super::fcntl(fd, F_GETPIPE_SZ, 0)
}

/// Makes pipe `fd` hold at least `bytes` (F_SETPIPE_SZ); returns the new capacity.
/// EPERM beyond /proc/sys/fs/pipe-max-size or the user's pipe quota without
/// CAP_SYS_RESOURCE, EBUSY if it holds more than fits.
pub fn set_pipe_capacity(fd: i32, bytes: usize) -> Result<usize, Errno> {
    super::fcntl(fd, F_SETPIPE_SZ, bytes)
}

/// fork() whose child does not signal its end (exit signal 0): the parent is not sent
/// SIGCHLD, and its plain wait() and waitpid() calls never see the child. Returns 0 in
/// the child, its pid in the parent; EAGAIN or ENOMEM when no process can be made.
pub fn fork_quiet() -> Result<u32, Errno> {
    super::thread::fork_with(&super::CloneArgs::default())
}

/// Closes every descriptor from `first` on (close_range); EINVAL on kernels before 5.9.
pub fn close_from(first: u32) -> Result<(), Errno> {
    // SAFETY: close_range touches no memory.
    unsafe { syscalls::syscall3(Sysno::close_range, first as usize, u32::MAX as usize, 0).map(|_| ()) }
}

/// The parent's pid (cannot fail).
pub fn getppid() -> u32 {
    // SAFETY: getppid cannot fail.
    unsafe { syscalls::syscall0(Sysno::getppid).unwrap_or(0) as u32 }
}

/// Asks the kernel to send `sig` to the caller when the thread that created it ends
/// (PR_SET_PDEATHSIG); EINVAL for a bad signal number.
pub fn die_with_parent(sig: usize) -> Result<(), Errno> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number, no pointer.
    unsafe { super::prctl(1, sig, 0, 0, 0).map(|_| ()) }
}

/// `read` into `buf`, retried on EINTR: the bytes read, 0 at end of input.
pub fn read_into(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: buf is valid for writes of its length.
    unsafe { super::read(fd, buf.as_mut_ptr(), buf.len()) }
}
