//! Typed wrappers over the raw syscalls that the runtime and mtcp_restart use.
//!
//! Error policy, for every function here unless it says otherwise: a negative kernel
//! return becomes `Err(Errno)` carrying the kernel's errno unchanged; nothing is
//! retried except where a function says it retries on EINTR. No function touches libc
//! or its errno, so all of them are safe to call from a signal handler.

use syscalls::{Errno, Sysno};

#[allow(unused_imports)] // seek_set is for mtcp_restart only
pub use crate::arch::{mmap, pread, pwrite, seek_set, KernelSigaction};

pub const AT_FDCWD: i32 = -100;
pub const O_RDONLY: usize = 0;
pub const O_WRONLY: usize = 1;
pub const O_RDWR: usize = 2;
pub const O_CREAT: usize = 0o100;
pub const O_EXCL: usize = 0o200;
pub const O_TRUNC: usize = 0o1000;
pub const O_DIRECTORY: usize = 0o200000;
pub const O_CLOEXEC: usize = 0o2000000;
pub const O_LARGEFILE: usize = if cfg!(target_pointer_width = "32") { 0o100000 } else { 0 };

pub const PROT_NONE: usize = 0;
pub const PROT_READ: usize = 1;
pub const PROT_WRITE: usize = 2;
pub const PROT_EXEC: usize = 4;
pub const MAP_SHARED: usize = 0x01;
pub const MAP_PRIVATE: usize = 0x02;
pub const MAP_FIXED: usize = 0x10;
pub const MAP_ANONYMOUS: usize = 0x20;
pub const MAP_GROWSDOWN: usize = 0x100;
pub const MAP_NORESERVE: usize = 0x4000;
pub const MAP_FIXED_NOREPLACE: usize = 0x100000;
pub const MREMAP_MAYMOVE: usize = 1;
pub const MREMAP_FIXED: usize = 2;

pub const MADV_DONTFORK: usize = 10;
pub const MADV_MERGEABLE: usize = 12;
pub const MADV_HUGEPAGE: usize = 14;
pub const MADV_NOHUGEPAGE: usize = 15;
pub const MADV_DONTDUMP: usize = 16;
pub const MADV_WIPEONFORK: usize = 18;

pub const SIG_BLOCK: usize = 0;
pub const SIG_UNBLOCK: usize = 1;
pub const SIG_SETMASK: usize = 2;
pub const SA_SIGINFO: usize = 4;
pub const SA_ONSTACK: usize = 0x0800_0000;
pub const SA_RESTART: usize = 0x1000_0000;
pub const SIGKILL: usize = 9;
pub const SIGSTOP: usize = 19;

pub const PR_SET_NAME: usize = 15;
pub const PR_GET_NAME: usize = 16;
pub const PR_SET_MM: usize = 35;
pub const PR_SET_MM_MAP: usize = 14;
pub const PR_GET_TID_ADDRESS: usize = 40;

pub const FUTEX_WAIT: usize = 0;
pub const FUTEX_WAKE: usize = 1;

#[inline]
fn fd_arg(fd: i32) -> usize {
    fd as isize as usize
}

/// A NUL-terminated path held in a fixed buffer of N bytes (the kernel needs the
/// terminator). Short paths use a small N to keep signal-handler stacks small.
pub struct CPathBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

/// Room for any path.
pub type CPath = CPathBuf<4096>;

impl<const N: usize> CPathBuf<N> {
    /// Fails with ENAMETOOLONG if `bytes` plus the terminator do not fit, and EINVAL if
    /// it holds a NUL.
    pub fn new(bytes: &[u8]) -> Result<CPathBuf<N>, Errno> {
        let mut p = CPathBuf { buf: [0; N], len: 0 };
        p.push(bytes)?;
        Ok(p)
    }

    pub fn push(&mut self, bytes: &[u8]) -> Result<(), Errno> {
        if self.len + bytes.len() >= self.buf.len() {
            return Err(Errno::ENAMETOOLONG);
        }
        if bytes.contains(&0) {
            return Err(Errno::EINVAL);
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        self.buf[self.len] = 0;
        Ok(())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn ptr(&self) -> usize {
        self.buf.as_ptr() as usize
    }
}

pub fn openat<const N: usize>(dirfd: i32, path: &CPathBuf<N>, flags: usize, mode: usize) -> Result<i32, Errno> {
    // SAFETY: path is NUL-terminated and lives across the call.
    unsafe {
        syscalls::syscall4(Sysno::openat, fd_arg(dirfd), path.ptr(), flags | O_LARGEFILE, mode).map(|fd| fd as i32)
    }
}

pub fn open(path: &[u8], flags: usize, mode: usize) -> Result<i32, Errno> {
    openat(AT_FDCWD, &CPath::new(path)?, flags, mode)
}

/// Closes `fd`; errors (EBADF, EINTR, EIO) are ignored because the descriptor is gone
/// either way on Linux.
pub fn close(fd: i32) {
    // SAFETY: close touches no memory.
    unsafe {
        let _ = syscalls::syscall1(Sysno::close, fd_arg(fd));
    }
}

/// `read`, retried on EINTR.
///
/// # Safety
/// `buf` must be valid for writes of `len` bytes.
pub unsafe fn read(fd: i32, buf: *mut u8, len: usize) -> Result<usize, Errno> {
    loop {
        match syscalls::syscall3(Sysno::read, fd_arg(fd), buf as usize, len) {
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

/// Fills `len` bytes at `buf` from `offset`, retrying on EINTR and short reads. End of
/// file before `len` bytes reports ENODATA.
///
/// # Safety
/// `buf` must be valid for writes of `len` bytes.
pub unsafe fn pread_exact(fd: i32, buf: *mut u8, len: usize, offset: u64) -> Result<(), Errno> {
    let mut done = 0usize;
    while done < len {
        match pread(fd, buf.add(done), len - done, offset + done as u64) {
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

/// Sets the umask and returns the old one (cannot fail).
pub fn umask(mask: u32) -> u32 {
    // SAFETY: umask touches no memory.
    unsafe { syscalls::syscall1(Sysno::umask, mask as usize).unwrap_or(0) as u32 }
}

/// `personality(0xffffffff)` reads the persona without changing it.
pub fn personality(persona: u32) -> Result<u32, Errno> {
    // SAFETY: personality touches no memory.
    unsafe { syscalls::syscall1(Sysno::personality, persona as usize).map(|v| v as u32) }
}

pub fn getpid() -> u32 {
    // SAFETY: getpid cannot fail.
    unsafe { syscalls::syscall0(Sysno::getpid).unwrap_or(0) as u32 }
}

pub fn gettid() -> u32 {
    // SAFETY: gettid cannot fail.
    unsafe { syscalls::syscall0(Sysno::gettid).unwrap_or(0) as u32 }
}

pub fn getuid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { syscalls::syscall0(Sysno::getuid).unwrap_or(0) as u32 }
}

pub fn tgkill(tgid: u32, tid: u32, sig: u32) -> Result<(), Errno> {
    // SAFETY: tgkill touches no memory.
    unsafe { syscalls::syscall3(Sysno::tgkill, tgid as usize, tid as usize, sig as usize).map(|_| ()) }
}

/// kill(pid, sig): a signal for the whole process.
pub fn kill(pid: u32, sig: u32) -> Result<(), Errno> {
    // SAFETY: kill touches no memory.
    unsafe { syscalls::syscall2(Sysno::kill, pid as usize, sig as usize).map(|_| ()) }
}

pub fn exit_group(code: i32) -> ! {
    // SAFETY: exit_group does not return.
    unsafe {
        let _ = syscalls::syscall1(Sysno::exit_group, code as usize);
    }
    // exit_group cannot fail; this only satisfies the type.
    loop {
        core::hint::spin_loop();
    }
}

/// dup3(old, new, flags): `new` now refers to `old`'s file.
pub fn dup3(old: i32, new: i32, flags: usize) -> Result<(), Errno> {
    // SAFETY: dup3 touches no memory.
    unsafe { syscalls::syscall3(Sysno::dup3, fd_arg(old), fd_arg(new), flags).map(|_| ()) }
}

/// # Safety
/// Unmapping memory that is in use (code, stack, data) is the caller's problem.
pub unsafe fn munmap(addr: usize, len: usize) -> Result<(), Errno> {
    syscalls::syscall2(Sysno::munmap, addr, len).map(|_| ())
}

/// # Safety
/// Removing access from memory that is in use is the caller's problem.
pub unsafe fn mprotect(addr: usize, len: usize, prot: usize) -> Result<(), Errno> {
    syscalls::syscall3(Sysno::mprotect, addr, len, prot).map(|_| ())
}

/// # Safety
/// Moving memory that is in use is the caller's problem.
pub unsafe fn mremap(
    old: usize,
    old_len: usize,
    new_len: usize,
    flags: usize,
    new_addr: usize,
) -> Result<usize, Errno> {
    syscalls::syscall5(Sysno::mremap, old, old_len, new_len, flags, new_addr)
}

/// madvise; advice that the kernel does not know gives EINVAL.
pub fn madvise(addr: usize, len: usize, advice: usize) -> Result<(), Errno> {
    // SAFETY: the advice values we pass only change kernel bookkeeping, not contents.
    unsafe { syscalls::syscall3(Sysno::madvise, addr, len, advice).map(|_| ()) }
}

/// Anonymous private read-write memory anywhere; ENOMEM when there is none.
pub fn map_anon(len: usize) -> Result<usize, Errno> {
    // SAFETY: without MAP_FIXED the kernel picks unused address space.
    unsafe { mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) }
}

/// `brk(addr)`: returns the new break (the old one if the kernel refused to move it).
pub fn brk(addr: usize) -> usize {
    // SAFETY: brk only changes the heap mapping; brk(0) only reads.
    unsafe { syscalls::syscall1(Sysno::brk, addr).unwrap_or(0) }
}

/// Reads (`new` = None) or sets a signal's disposition.
pub fn rt_sigaction(sig: usize, new: Option<&KernelSigaction>, old: Option<&mut KernelSigaction>) -> Result<(), Errno> {
    let new_ptr = new.map_or(0, |n| n as *const KernelSigaction as usize);
    let old_ptr = old.map_or(0, |o| o as *mut KernelSigaction as usize);
    // SAFETY: both pointers are null or point to valid KernelSigaction values.
    unsafe { syscalls::syscall4(Sysno::rt_sigaction, sig, new_ptr, old_ptr, 8).map(|_| ()) }
}

/// Changes the calling thread's mask; returns the old mask.
pub fn rt_sigprocmask(how: usize, set: Option<u64>) -> Result<u64, Errno> {
    let mut old: u64 = 0;
    let set_val = set.unwrap_or(0);
    let set_ptr = if set.is_some() {
        &set_val as *const u64 as usize
    } else {
        0
    };
    // SAFETY: set_ptr is null or points to a u64; old is a valid u64 to write.
    unsafe { syscalls::syscall4(Sysno::rt_sigprocmask, how, set_ptr, &mut old as *mut u64 as usize, 8)? };
    Ok(old)
}

/// `prctl` with up to four arguments.
///
/// # Safety
/// Options that take pointers need valid ones.
pub unsafe fn prctl(option: usize, a2: usize, a3: usize, a4: usize, a5: usize) -> Result<usize, Errno> {
    syscalls::syscall5(Sysno::prctl, option, a2, a3, a4, a5)
}

/// The calling thread's name (PR_GET_NAME).
pub fn thread_name() -> [u8; 16] {
    let mut name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes into the buffer.
    unsafe {
        let _ = prctl(PR_GET_NAME, name.as_mut_ptr() as usize, 0, 0, 0);
    }
    name
}

pub fn set_thread_name(name: &[u8; 16]) {
    // SAFETY: PR_SET_NAME reads at most 16 bytes; the buffer is NUL-terminated by the
    // kernel's own truncation rules (it copies 15 and terminates).
    unsafe {
        let _ = prctl(PR_SET_NAME, name.as_ptr() as usize, 0, 0, 0);
    }
}

/// `clear_child_tid` of the calling thread (PR_GET_TID_ADDRESS, needs
/// CONFIG_CHECKPOINT_RESTORE); 0 when unknown.
pub fn tid_address() -> usize {
    let mut addr: usize = 0;
    // SAFETY: the kernel writes one pointer-sized value.
    unsafe {
        let _ = prctl(PR_GET_TID_ADDRESS, &mut addr as *mut usize as usize, 0, 0, 0);
    }
    addr
}

/// Sets clear_child_tid; returns the caller's tid.
pub fn set_tid_address(addr: usize) -> u32 {
    // SAFETY: the kernel only stores the pointer now; it writes there at thread exit.
    unsafe { syscalls::syscall1(Sysno::set_tid_address, addr).unwrap_or(0) as u32 }
}

/// The calling thread's robust futex list: (head, len).
pub fn get_robust_list() -> (usize, usize) {
    let mut head: usize = 0;
    let mut len: usize = 0;
    // SAFETY: pid 0 means the caller; both out-pointers are valid.
    unsafe {
        let _ = syscalls::syscall3(
            Sysno::get_robust_list,
            0,
            &mut head as *mut usize as usize,
            &mut len as *mut usize as usize,
        );
    }
    (head, len)
}

pub fn set_robust_list(head: usize, len: usize) -> Result<(), Errno> {
    // SAFETY: the kernel only records the pointer.
    unsafe { syscalls::syscall2(Sysno::set_robust_list, head, len).map(|_| ()) }
}

/// `rseq(area, len, flags, sig)`.
///
/// # Safety
/// A registered area must stay valid for the thread's lifetime.
pub unsafe fn rseq(area: usize, len: u32, flags: u32, sig: u32) -> Result<(), Errno> {
    syscalls::syscall4(Sysno::rseq, area, len as usize, flags as usize, sig as usize).map(|_| ())
}

/// Reads the calling thread's alternate signal stack: (sp, flags, size).
pub fn get_altstack() -> (usize, u32, usize) {
    #[repr(C)]
    struct StackT {
        sp: usize,
        flags: i32,
        size: usize,
    }
    let mut st = StackT {
        sp: 0,
        flags: 0,
        size: 0,
    };
    // SAFETY: a null new stack only reads into st.
    unsafe {
        let _ = syscalls::syscall2(Sysno::sigaltstack, 0, &mut st as *mut StackT as usize);
    }
    (st.sp, st.flags as u32, st.size)
}

/// FUTEX_WAIT on a private word until it changes from `expected` (or a signal or a
/// spurious wake); callers re-check the word.
pub fn futex_wait(word: &core::sync::atomic::AtomicU32, expected: u32) {
    // SAFETY: the word is a valid, aligned u32 for the duration of the call.
    unsafe {
        let _ = syscalls::syscall4(Sysno::futex, word.as_ptr() as usize, FUTEX_WAIT, expected as usize, 0);
    }
}

/// Wakes every waiter on `word`.
pub fn futex_wake_all(word: &core::sync::atomic::AtomicU32) {
    // SAFETY: the word is a valid, aligned u32.
    unsafe {
        let _ = syscalls::syscall3(Sysno::futex, word.as_ptr() as usize, FUTEX_WAKE, i32::MAX as usize);
    }
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

#[repr(C)]
#[derive(Clone, Copy)]
pub struct StatxTime {
    pub sec: i64,
    pub nsec: u32,
    reserved: i32,
}

pub const AT_EMPTY_PATH: usize = 0x1000;
const STATX_BASIC_STATS: usize = 0x7ff;

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
            STATX_BASIC_STATS,
            &mut st as *mut Statx as usize,
        )?;
    }
    Ok(st)
}

pub fn fstat(fd: i32) -> Result<Statx, Errno> {
    statx(fd, &CPath::new(b"")?, AT_EMPTY_PATH)
}

/// A whole small file (e.g. under /proc) read into `buf`; returns the bytes read.
pub fn read_file(path: &[u8], buf: &mut [u8]) -> Result<usize, Errno> {
    let fd = open(path, O_RDONLY | O_CLOEXEC, 0)?;
    let mut total = 0;
    let result = loop {
        if total == buf.len() {
            break Ok(total);
        }
        // SAFETY: the remaining part of buf is valid for writes.
        match unsafe { read(fd, buf.as_mut_ptr().add(total), buf.len() - total) } {
            Ok(0) => break Ok(total),
            Ok(n) => total += n,
            Err(e) => break Err(e),
        }
    };
    close(fd);
    result
}

/// `struct clone_args` up to set_tid (CLONE_ARGS_SIZE_VER1, include/uapi/linux/sched.h):
/// every field is 64 bits wide for every task, pointers included.
#[repr(C)]
#[derive(Default)]
pub struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
}
static_assertions::const_assert_eq!(core::mem::size_of::<CloneArgs>(), 80);
static_assertions::const_assert_eq!(core::mem::offset_of!(CloneArgs, tls), 56);
static_assertions::const_assert_eq!(core::mem::offset_of!(CloneArgs, set_tid), 64);

/// fork() with a chosen pid (clone3 with set_tid). Returns 0 in the child and the
/// child's pid in the parent; EPERM without CAP_CHECKPOINT_RESTORE, EEXIST if the pid
/// is taken.
pub fn fork_with_pid(pid: u32) -> Result<u32, Errno> {
    let tid: u64 = pid as u64;
    let args = CloneArgs {
        exit_signal: 17, // SIGCHLD
        set_tid: &tid as *const u64 as u64,
        set_tid_size: 1,
        ..Default::default()
    };
    // SAFETY: without CLONE_VM the child gets a copy of this address space and returns
    // 0 from the syscall on the same stack, like fork().
    unsafe {
        syscalls::syscall2(
            Sysno::clone3,
            &args as *const CloneArgs as usize,
            core::mem::size_of::<CloneArgs>(),
        )
        .map(|v| v as u32)
    }
}

/// wait4 for `pid`, retried on EINTR; returns the raw wait status.
pub fn wait_status(pid: u32) -> Result<i32, Errno> {
    let mut status: i32 = 0;
    loop {
        // SAFETY: status is a valid int to write.
        match unsafe { syscalls::syscall4(Sysno::wait4, pid as usize, &mut status as *mut i32 as usize, 0, 0) } {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(_) => return Ok(status),
        }
    }
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
pub fn pipe() -> Result<(i32, i32), Errno> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two ints.
    unsafe { syscalls::syscall2(Sysno::pipe2, fds.as_mut_ptr() as usize, O_CLOEXEC)? };
    Ok((fds[0], fds[1]))
}

/// prlimit64 on the calling process: sets `new` if given, returns the old (soft, hard).
pub fn prlimit(resource: u32, new: Option<(u64, u64)>) -> Result<(u64, u64), Errno> {
    let mut old = [0u64; 2];
    let set = new.map(|(a, b)| [a, b]);
    let set_ptr = set.as_ref().map_or(0, |v| v.as_ptr() as usize);
    // SAFETY: both pointers are null or point to a struct rlimit64 (two u64).
    unsafe {
        syscalls::syscall4(
            Sysno::prlimit64,
            0,
            resource as usize,
            set_ptr,
            old.as_mut_ptr() as usize,
        )?
    };
    Ok((old[0], old[1]))
}
