//! inotify descriptors made and watched again, and files found by their handle.

use syscalls::{Errno, Sysno};

use super::{fd_arg, CPath, Fd};

/// inotify_init1 with `flags` (IN_NONBLOCK, IN_CLOEXEC). Errors: EINVAL, EMFILE, ENFILE,
/// ENOMEM.
pub fn inotify_init(flags: usize) -> Result<Fd, Errno> {
    // SAFETY: inotify_init1 touches no memory of ours.
    unsafe { syscalls::syscall1(Sysno::inotify_init1, flags).map(|r| Fd::adopt(r as i32)) }
}

/// Adds (or changes) the watch of `path` with `mask`; returns its watch descriptor.
/// Errors: EACCES, EBADF, EEXIST (IN_MASK_CREATE), EINVAL, ENAMETOOLONG, ENOENT, ENOMEM,
/// ENOSPC (the user's watch limit), ENOTDIR (IN_ONLYDIR).
pub fn inotify_add_watch(fd: i32, path: &CPath, mask: u32) -> Result<u32, Errno> {
    // SAFETY: path is NUL-terminated and lives across the call.
    unsafe { syscalls::syscall3(Sysno::inotify_add_watch, fd_arg(fd), path.ptr(), mask as usize).map(|wd| wd as u32) }
}

/// Removes watch `wd` (the kernel queues an IN_IGNORED event for it). Errors: EBADF,
/// EINVAL (no such watch).
pub fn inotify_rm_watch(fd: i32, wd: u32) -> Result<(), Errno> {
    // SAFETY: inotify_rm_watch touches no memory of ours.
    unsafe { syscalls::syscall2(Sysno::inotify_rm_watch, fd_arg(fd), wd as usize).map(|_| ()) }
}

/// Opens the file of `handle` (a kernel `struct file_handle`: handle_bytes u32,
/// handle_type i32, then the bytes) on the filesystem of `mount_fd`, with `flags`.
/// Errors: EPERM (needs CAP_DAC_READ_SEARCH), ESTALE (no such file now), EINVAL,
/// EBADF, EOPNOTSUPP, and those of open.
pub fn open_by_handle_at(mount_fd: i32, handle: &[u8], flags: usize) -> Result<Fd, Errno> {
    if handle.len() < 8 {
        return Err(Errno::EINVAL);
    }
    // SAFETY: handle holds a whole struct file_handle (its byte count is checked by the
    // kernel against MAX_HANDLE_SZ and read from the buffer, which the caller sized to it).
    unsafe {
        syscalls::syscall3(
            Sysno::open_by_handle_at,
            fd_arg(mount_fd),
            handle.as_ptr() as usize,
            flags,
        )
        .map(|r| Fd::adopt(r as i32))
    }
}
