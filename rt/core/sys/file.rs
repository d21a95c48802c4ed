//! Descriptors and files: the owned `Fd`, opening, reading, writing, metadata.
//!
//! Error policy as in `sys`: a negative kernel return is `Err(Errno)` unchanged; only
//! the functions that say so retry on EINTR.

use syscalls::{Errno, Sysno};

use super::{fd_arg, pread, pwrite, CPath, CPathBuf, AT_FDCWD, O_CLOEXEC, O_LARGEFILE, O_RDONLY};

/// An open descriptor this code owns: it is closed when the value is dropped, on every
/// path, so no early return can leak one into the checkpointed program.
#[derive(Debug)]
pub struct Fd(i32);

impl Fd {
    /// Takes ownership of a descriptor a syscall just returned.
    fn from_ret(ret: usize) -> Fd {
        Fd(ret as i32)
    }

    /// Takes ownership of `fd`, which nothing else may close.
    pub fn adopt(fd: i32) -> Fd {
        Fd(fd)
    }

    /// The descriptor number, for syscalls; `self` still owns it.
    pub fn raw(&self) -> i32 {
        self.0
    }

    /// Hands the descriptor over (to the restored program, say): it is no longer closed here.
    pub fn into_raw(self) -> i32 {
        let fd = self.0;
        core::mem::forget(self);
        fd
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        close(self.0);
    }
}

/// Closes `fd`; errors (EBADF, EINTR, EIO) are ignored because the descriptor is gone
/// either way on Linux.
fn close(fd: i32) {
    // SAFETY: close touches no memory.
    unsafe {
        let _ = syscalls::syscall1(Sysno::close, fd_arg(fd));
    }
}

pub fn openat<const N: usize>(dirfd: i32, path: &CPathBuf<N>, flags: usize, mode: usize) -> Result<Fd, Errno> {
    // SAFETY: path is NUL-terminated and lives across the call.
    unsafe { syscalls::syscall4(Sysno::openat, fd_arg(dirfd), path.ptr(), flags | O_LARGEFILE, mode).map(Fd::from_ret) }
}

pub fn open(path: &[u8], flags: usize, mode: usize) -> Result<Fd, Errno> {
    openat(AT_FDCWD, &CPath::new(path)?, flags, mode)
}

/// `read`, retried on EINTR.
///
/// # Safety
/// `buf` must be valid for writes of `len` bytes.
pub unsafe fn read(fd: i32, buf: *mut u8, len: usize) -> Result<usize, Errno> {
    loop {
        // SAFETY: the caller guarantees `buf` is writable for `len` bytes.
        match unsafe { syscalls::syscall3(Sysno::read, fd_arg(fd), buf as usize, len) } {
            Err(Errno::EINTR) => continue,
            r => return r,
        }
    }
}

/// Writes all of `data`, retrying on EINTR and short writes. A write that makes no
/// progress reports ENOSPC (what a full disk looks like to a short write).
pub fn write_all(fd: i32, mut data: &[u8]) -> Result<(), Errno> {
    while !data.is_empty() {
        // SAFETY: data is a valid slice for reads.
        match unsafe { syscalls::syscall3(Sysno::write, fd_arg(fd), data.as_ptr() as usize, data.len()) } {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(0) => return Err(Errno::ENOSPC),
            Ok(n) => data = &data[n..],
        }
    }
    Ok(())
}

/// Writes all of `data` at `offset`, with write_all's retry rules.
pub fn pwrite_all(fd: i32, mut data: &[u8], mut offset: u64) -> Result<(), Errno> {
    while !data.is_empty() {
        // SAFETY: data is a valid slice for reads.
        match unsafe { pwrite(fd, data.as_ptr(), data.len(), offset) } {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(0) => return Err(Errno::ENOSPC),
            Ok(n) => {
                data = &data[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// One buffer of a vectored write (`struct iovec`: two pointer-sized words on both
/// architectures; the compat syscalls take the i386 layout).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IoVec {
    pub base: usize,
    pub len: usize,
}
static_assertions::const_assert_eq!(core::mem::size_of::<IoVec>(), 2 * core::mem::size_of::<usize>());

/// The most buffers one `pwritev` takes (the kernel's UIO_MAXIOV).
pub const IOV_MAX: usize = 1024;

/// Writes every buffer of `iov`, one after the other, at `offset`: `pwritev`, again
/// for what a short write left, with write_all's retry rules (EINTR retried, a write
/// of nothing is ENOSPC). The buffers' lengths may be changed.
///
/// # Safety
/// Every buffer of `iov` must be valid for reads of its length.
pub unsafe fn pwritev_all(fd: i32, mut iov: &mut [IoVec], mut offset: u64) -> Result<(), Errno> {
    while !iov.is_empty() {
        let n = iov.len().min(IOV_MAX);
        // The offset as (low, high) words: the compat call joins them, a 64-bit kernel
        // takes all of it from the low word.
        // SAFETY: the kernel reads n iovecs from `iov` and the bytes each names, which
        // the caller guarantees are readable.
        let written = unsafe {
            syscalls::syscall5(
                Sysno::pwritev,
                fd_arg(fd),
                iov.as_ptr() as usize,
                n,
                offset as usize,
                (offset >> 32) as usize,
            )
        };
        let mut done = match written {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(0) => return Err(Errno::ENOSPC),
            Ok(d) => d,
        };
        offset += done as u64;
        while done > 0 {
            let take = done.min(iov[0].len);
            iov[0].base += take;
            iov[0].len -= take;
            done -= take;
            if iov[0].len == 0 {
                iov = &mut iov[1..];
            }
        }
        while iov.first().is_some_and(|v| v.len == 0) {
            iov = &mut iov[1..];
        }
    }
    Ok(())
}

/// `sync_file_range`: starts writing back (`SYNC_FILE_RANGE_WRITE`), or also waits for
/// (`SYNC_WAIT_BEFORE | SYNC_WRITE | SYNC_WAIT_AFTER`), the dirty pages of a range.
/// Errors as the kernel's errno. It commits no metadata: fsync still decides durability.
pub fn sync_file_range(fd: i32, offset: u64, len: u64, flags: u32) -> Result<(), Errno> {
    // i386 has only sync_file_range with (offset, len) each split into two words;
    // x86_64 takes them whole.
    // SAFETY: sync_file_range touches no memory.
    unsafe {
        #[cfg(target_pointer_width = "64")]
        let r = syscalls::syscall4(
            Sysno::sync_file_range,
            fd_arg(fd),
            offset as usize,
            len as usize,
            flags as usize,
        );
        #[cfg(target_pointer_width = "32")]
        let r = syscalls::syscall6(
            Sysno::sync_file_range,
            fd_arg(fd),
            offset as u32 as usize,
            (offset >> 32) as usize,
            len as u32 as usize,
            (len >> 32) as usize,
            flags as usize,
        );
        r.map(|_| ())
    }
}
pub const SYNC_FILE_RANGE_WAIT_BEFORE: u32 = 1;
pub const SYNC_FILE_RANGE_WRITE: u32 = 2;
pub const SYNC_FILE_RANGE_WAIT_AFTER: u32 = 4;

/// Fills `len` bytes at `buf` from `offset`, retrying on EINTR and short reads. End of
/// file before `len` bytes reports ENODATA.
///
/// # Safety
/// `buf` must be valid for writes of `len` bytes.
pub unsafe fn pread_exact(fd: i32, buf: *mut u8, len: usize, offset: u64) -> Result<(), Errno> {
    let mut done = 0usize;
    while done < len {
        // SAFETY: done < len, so the rest of the caller's buffer is writable.
        match unsafe { pread(fd, buf.add(done), len - done, offset + done as u64) } {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(0) => return Err(Errno::ENODATA),
            Ok(n) => done += n,
        }
    }
    Ok(())
}

/// Writes to fd 2; errors are ignored (there is nobody left to tell).
pub fn write_stderr(msg: &[u8]) {
    let _ = write_all(2, msg);
}

pub fn fsync(fd: i32) -> Result<(), Errno> {
    // SAFETY: fsync touches no memory.
    unsafe { syscalls::syscall1(Sysno::fsync, fd_arg(fd)).map(|_| ()) }
}

pub fn renameat<const A: usize, const B: usize>(
    olddir: i32,
    old: &CPathBuf<A>,
    newdir: i32,
    new: &CPathBuf<B>,
) -> Result<(), Errno> {
    // SAFETY: both paths are NUL-terminated and live across the call.
    unsafe { syscalls::syscall4(Sysno::renameat, fd_arg(olddir), old.ptr(), fd_arg(newdir), new.ptr()).map(|_| ()) }
}

pub fn unlinkat<const N: usize>(dirfd: i32, path: &CPathBuf<N>) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated.
    unsafe { syscalls::syscall3(Sysno::unlinkat, fd_arg(dirfd), path.ptr(), 0).map(|_| ()) }
}

pub fn mkdirat<const N: usize>(dirfd: i32, path: &CPathBuf<N>, mode: usize) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated.
    unsafe { syscalls::syscall3(Sysno::mkdirat, fd_arg(dirfd), path.ptr(), mode).map(|_| ()) }
}

/// `getcwd` into `buf`; returns the path without its NUL.
pub fn getcwd(buf: &mut [u8]) -> Result<&[u8], Errno> {
    // SAFETY: buf is valid for writes of its length.
    let n = unsafe { syscalls::syscall2(Sysno::getcwd, buf.as_mut_ptr() as usize, buf.len())? };
    let n = if n > 0 && buf[n - 1] == 0 { n - 1 } else { n };
    Ok(&buf[..n])
}

pub fn chdir<const N: usize>(path: &CPathBuf<N>) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated.
    unsafe { syscalls::syscall1(Sysno::chdir, path.ptr()).map(|_| ()) }
}

/// dup3(old, new, flags): `new` now refers to `old`'s file.
pub fn dup3(old: i32, new: i32, flags: usize) -> Result<(), Errno> {
    // SAFETY: dup3 touches no memory.
    unsafe { syscalls::syscall3(Sysno::dup3, fd_arg(old), fd_arg(new), flags).map(|_| ()) }
}

/// The kernel's `struct statx`, the parts we read (same layout on every architecture).
#[repr(C)]
pub struct Statx {
    pub mask: u32,
    pub blksize: u32,
    pub attributes: u64,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub mode: u16,
    pad1: u16,
    pub ino: u64,
    pub size: u64,
    pub blocks: u64,
    pub attributes_mask: u64,
    pub atime: StatxTime,
    pub btime: StatxTime,
    pub ctime: StatxTime,
    pub mtime: StatxTime,
    pub rdev_major: u32,
    pub rdev_minor: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
    spare: [u64; 14],
}
static_assertions::const_assert_eq!(core::mem::size_of::<Statx>(), 256);
static_assertions::const_assert_eq!(core::mem::offset_of!(Statx, ino), 32);
static_assertions::const_assert_eq!(core::mem::offset_of!(Statx, mtime), 112);
static_assertions::const_assert_eq!(core::mem::offset_of!(Statx, dev_major), 136);

impl Statx {
    /// What the image keeps of a regular file beyond its inode.
    pub fn identity(&self) -> crate::image::FileIdentity {
        let born = self.mask & STATX_BTIME != 0;
        crate::image::FileIdentity {
            size: self.size,
            ctime_sec: self.ctime.sec,
            ctime_nsec: self.ctime.nsec,
            flags: if born { crate::image::FILE_BTIME } else { 0 },
            btime_sec: if born { self.btime.sec } else { 0 },
            btime_nsec: if born { self.btime.nsec } else { 0 },
            reserved: 0,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct StatxTime {
    pub sec: i64,
    pub nsec: u32,
    reserved: i32,
}

pub const AT_EMPTY_PATH: usize = 0x1000;
const STATX_BASIC_STATS: usize = 0x7ff;
/// statx/fstatat flag: describe a symbolic link itself, not what it points to.
pub const AT_SYMLINK_NOFOLLOW: usize = 0x100;
/// `Statx::mask` bit: `btime` (the file's birth) is valid.
pub const STATX_BTIME: u32 = 0x800;

/// statx of `path` (or of `fd` itself when `path` is empty).
pub fn statx<const N: usize>(fd: i32, path: &CPathBuf<N>, flags: usize) -> Result<Statx, Errno> {
    // SAFETY: Statx is plain data; all-zero is a valid value.
    let mut st: Statx = unsafe { core::mem::zeroed() };
    // SAFETY: path is NUL-terminated; st is valid for the kernel's 256-byte write.
    unsafe {
        syscalls::syscall5(
            Sysno::statx,
            fd_arg(fd),
            path.ptr(),
            flags,
            STATX_BASIC_STATS | STATX_BTIME as usize,
            &mut st as *mut Statx as usize,
        )?;
    }
    Ok(st)
}

/// fchmod: sets the permission bits of an open file.
pub fn fchmod(fd: i32, mode: u32) -> Result<(), Errno> {
    // SAFETY: fchmod touches no memory.
    unsafe { syscalls::syscall2(Sysno::fchmod, fd_arg(fd), mode as usize).map(|_| ()) }
}

/// Calls `f(name)` for every entry of the open directory `dir` (`.` and `..` included).
pub fn for_each_dir_entry(dir: &Fd, mut f: impl FnMut(&[u8])) -> Result<(), Errno> {
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe {
            syscalls::syscall3(
                Sysno::getdents64,
                fd_arg(dir.raw()),
                buf.as_mut_ptr() as usize,
                buf.len(),
            )?
        };
        if n == 0 {
            return Ok(());
        }
        let mut pos = 0;
        while pos + 19 < n {
            // struct linux_dirent64: ino u64, off i64, reclen u16, type u8, name[]
            let reclen = u16::from_le_bytes([buf[pos + 16], buf[pos + 17]]) as usize;
            if reclen == 0 || pos + reclen > n {
                break;
            }
            let name = &buf[pos + 19..pos + reclen];
            f(&name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())]);
            pos += reclen;
        }
    }
}

/// statx of an open descriptor.
pub fn fstat(fd: i32) -> Result<Statx, Errno> {
    statx(fd, &CPath::new(b"")?, AT_EMPTY_PATH)
}

/// A whole small file (e.g. under /proc) read into `buf`; returns the bytes read.
pub fn read_file(path: &[u8], buf: &mut [u8]) -> Result<usize, Errno> {
    let fd = open(path, O_RDONLY | O_CLOEXEC, 0)?;
    let mut total = 0;
    while total < buf.len() {
        // SAFETY: the remaining part of buf is valid for writes.
        match unsafe { read(fd.raw(), buf.as_mut_ptr().add(total), buf.len() - total)? } {
            0 => break,
            n => total += n,
        }
    }
    Ok(total)
}

pub const F_GETFL: usize = 3;
pub const F_SETFL: usize = 4;
pub const F_DUPFD_CLOEXEC: usize = 1030;

/// fcntl with an integer argument; errors as the kernel's errno.
pub fn fcntl(fd: i32, cmd: usize, arg: usize) -> Result<usize, Errno> {
    // SAFETY: the commands used here take an integer, not a pointer.
    unsafe { syscalls::syscall3(Sysno::fcntl, fd_arg(fd), cmd, arg) }
}

/// Bytes waiting to be read from a pipe or socket (FIONREAD).
pub fn bytes_readable(fd: i32) -> Result<usize, Errno> {
    let mut n: i32 = 0;
    // SAFETY: FIONREAD writes one int.
    unsafe { syscalls::syscall3(Sysno::ioctl, fd_arg(fd), 0x541b, &mut n as *mut i32 as usize)? };
    Ok(n.max(0) as usize)
}

/// A new pipe: (read end, write end), both close-on-exec.
pub fn pipe() -> Result<(Fd, Fd), Errno> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two ints.
    unsafe { syscalls::syscall2(Sysno::pipe2, fds.as_mut_ptr() as usize, O_CLOEXEC)? };
    Ok((Fd(fds[0]), Fd(fds[1])))
}

/// A close-on-exec duplicate of `fd` at the lowest free number >= `min` (F_DUPFD_CLOEXEC).
pub fn dup_at_least(fd: i32, min: usize) -> Result<Fd, Errno> {
    fcntl(fd, F_DUPFD_CLOEXEC, min).map(Fd::from_ret)
}

/// The target of the symbolic link `path`, in `buf` (cut to its length).
pub fn readlink<'a>(path: &[u8], buf: &'a mut [u8]) -> Result<&'a [u8], Errno> {
    let p = CPath::new(path)?;
    // SAFETY: p is NUL-terminated; buf is valid for writes of its length.
    let n = unsafe {
        syscalls::syscall4(
            Sysno::readlinkat,
            fd_arg(AT_FDCWD),
            p.ptr(),
            buf.as_mut_ptr() as usize,
            buf.len(),
        )?
    };
    Ok(&buf[..n])
}

const SOL_SOCKET: usize = 1;
const SO_TYPE: usize = 3;
const SO_PROTOCOL: usize = 38;
const SO_DOMAIN: usize = 39;

/// A socket's (address family, type, protocol), from getsockopt SO_DOMAIN, SO_TYPE and
/// SO_PROTOCOL. ENOTSOCK if `fd` is not a socket; EBADF if it is not open.
pub fn socket_kind(fd: i32) -> Result<(u32, u32, u32), Errno> {
    let get = |opt: usize| -> Result<u32, Errno> {
        let mut value: i32 = 0;
        let mut len: u32 = 4;
        // SAFETY: the kernel writes at most `len` (4) bytes into value and the length
        // into len, both valid for the call.
        unsafe {
            syscalls::syscall5(
                Sysno::getsockopt,
                fd as usize,
                SOL_SOCKET,
                opt,
                &mut value as *mut i32 as usize,
                &mut len as *mut u32 as usize,
            )?
        };
        Ok(value as u32)
    };
    Ok((get(SO_DOMAIN)?, get(SO_TYPE)?, get(SO_PROTOCOL)?))
}

/// socket(domain, type, protocol): a new socket descriptor. EAFNOSUPPORT,
/// EPROTONOSUPPORT, EMFILE and the like as the kernel says.
pub fn socket(domain: u32, kind: u32, protocol: u32) -> Result<Fd, Errno> {
    // SAFETY: socket touches no memory of ours.
    let fd = unsafe { syscalls::syscall3(Sysno::socket, domain as usize, kind as usize, protocol as usize)? };
    Ok(Fd::from_ret(fd))
}

/// The type (`f_type`, a magic number such as 0x19800202 for mqueue) of the filesystem
/// `fd` is on. Errors: EBADF, EIO, ENOSYS.
pub fn filesystem_type(fd: i32) -> Result<u32, Errno> {
    // struct statfs (x86_64, 120 bytes) or struct statfs64 (i386, 84 bytes): f_type
    // first, its magic in the low 32 bits either way.
    let mut buf = [0u64; 16];
    #[cfg(target_pointer_width = "64")]
    // SAFETY: the kernel writes one struct statfs (120 bytes) into buf (128 bytes).
    unsafe {
        syscalls::syscall2(Sysno::fstatfs, fd_arg(fd), buf.as_mut_ptr() as usize)?
    };
    #[cfg(target_pointer_width = "32")]
    // SAFETY: the kernel writes at most the 84 bytes it is told into buf (128 bytes).
    unsafe {
        syscalls::syscall3(Sysno::fstatfs64, fd_arg(fd), 84, buf.as_mut_ptr() as usize)?
    };
    Ok(buf[0] as u32)
}
