//! Typed wrappers over the raw syscalls that the runtime and mtcp_restart use.
//!
//! Error policy, for every function here unless it says otherwise: a negative kernel
//! return becomes `Err(Errno)` carrying the kernel's errno unchanged; nothing is
//! retried except where a function says it retries on EINTR. No function touches libc
//! or its errno, so all of them are safe to call from a signal handler.

use syscalls::{Errno, Sysno};

pub use mtcp_arch::{mmap, pread, pwrite, seek_set};

mod event;
mod file;
mod forward;
mod mqueue;
mod notify;
mod ns;
mod pagemap;
mod signal;
mod socket;
mod thread;
mod time;
pub mod trace;
mod tty;
pub mod watch;

pub use event::*;
pub use file::*;
pub use forward::*;
pub use mqueue::*;
pub use notify::*;
pub use ns::*;
pub use pagemap::*;
pub use signal::*;
pub use socket::*;
pub use thread::*;
pub use time::*;
pub use tty::*;

pub const AT_FDCWD: i32 = -100;
pub const O_RDONLY: usize = 0;
pub const O_WRONLY: usize = 1;
pub const O_RDWR: usize = 2;
pub const O_CREAT: usize = 0o100;
pub const O_EXCL: usize = 0o200;
pub const O_TRUNC: usize = 0o1000;
pub const O_NONBLOCK: usize = 0o4000;
pub const O_DIRECTORY: usize = 0o200000;
pub const O_NOFOLLOW: usize = 0o400000;
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

pub const MADV_DONTNEED: usize = 4;
pub const MADV_DONTFORK: usize = 10;
pub const MADV_MERGEABLE: usize = 12;
pub const MADV_HUGEPAGE: usize = 14;
pub const MADV_NOHUGEPAGE: usize = 15;
pub const MADV_DONTDUMP: usize = 16;
pub const MADV_WIPEONFORK: usize = 18;

pub const PR_SET_NAME: usize = 15;
pub const PR_GET_NAME: usize = 16;
pub const PR_SET_MM: usize = 35;
pub const PR_SET_MM_MAP: usize = 14;
pub const PR_GET_TID_ADDRESS: usize = 40;
/// timer_create takes the id wanted from its timer id argument while this is on.
pub const PR_TIMER_CREATE_RESTORE_IDS: usize = 77;
pub const PR_TIMER_CREATE_RESTORE_IDS_OFF: usize = 0;
pub const PR_TIMER_CREATE_RESTORE_IDS_ON: usize = 1;

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
    unsafe { syscalls::syscall0(mtcp_arch::SYS_GETUID).unwrap_or(0) as u32 }
}

/// Whether a process or thread with this id exists here (`/proc/ID`).
pub fn id_in_use(id: u32) -> bool {
    let mut path = crate::fmt::FmtBuf::<32>::new();
    let _ = core::fmt::Write::write_fmt(&mut path, format_args!("/proc/{}", id));
    CPathBuf::<32>::new(path.as_bytes()).is_ok_and(|c| statx(AT_FDCWD, &c, 0).is_ok())
}

/// The effective uid: the owner of the files this process creates.
pub fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { syscalls::syscall0(mtcp_arch::SYS_GETEUID).unwrap_or(0) as u32 }
}

/// The effective gid (cannot fail).
pub fn getegid() -> u32 {
    // SAFETY: getegid cannot fail.
    unsafe { syscalls::syscall0(mtcp_arch::SYS_GETEGID).unwrap_or(0) as u32 }
}

/// 64 unpredictable bits from the kernel (getrandom, never blocking); if the kernel has
/// none to give yet, a mix of the time, the pid and a counter (unique, if guessable).
pub fn random_u64() -> u64 {
    static COUNTER: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
    const GRND_NONBLOCK: usize = 1;
    let mut v: u64 = 0;
    // SAFETY: getrandom writes at most 8 bytes into v.
    let got = unsafe { syscalls::syscall3(Sysno::getrandom, &mut v as *mut u64 as usize, 8, GRND_NONBLOCK) };
    if got == Ok(8) {
        return v;
    }
    let n = COUNTER.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    monotonic_ns().rotate_left(17) ^ ((getpid() as u64) << 32) ^ n
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

/// # Safety
/// Unmapping memory that is in use (code, stack, data) is the caller's problem.
pub unsafe fn munmap(addr: usize, len: usize) -> Result<(), Errno> {
    // SAFETY: the caller's contract; munmap reads no memory of ours.
    unsafe { syscalls::syscall2(Sysno::munmap, addr, len).map(|_| ()) }
}

/// # Safety
/// Removing access from memory that is in use is the caller's problem.
pub unsafe fn mprotect(addr: usize, len: usize, prot: usize) -> Result<(), Errno> {
    // SAFETY: the caller's contract; mprotect reads no memory of ours.
    unsafe { syscalls::syscall3(Sysno::mprotect, addr, len, prot).map(|_| ()) }
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
    // SAFETY: the caller's contract; mremap reads no memory of ours.
    unsafe { syscalls::syscall5(Sysno::mremap, old, old_len, new_len, flags, new_addr) }
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

/// Which pages of [addr, addr + vec.len() pages) are resident (mincore): bit 0 of each
/// byte. For a file mapping a page counts if the file's page is cached. ENOMEM: part of
/// the range is not mapped; EINVAL: `addr` not page aligned.
pub fn mincore(addr: usize, vec: &mut [u8]) -> Result<(), Errno> {
    let len = vec.len() * 4096;
    // SAFETY: the kernel writes one byte per page of the range into vec, which has room.
    unsafe { syscalls::syscall3(Sysno::mincore, addr, len, vec.as_mut_ptr() as usize).map(|_| ()) }
}

/// `brk(addr)`: returns the new break (the old one if the kernel refused to move it).
pub fn brk(addr: usize) -> usize {
    // SAFETY: brk only changes the heap mapping; brk(0) only reads.
    unsafe { syscalls::syscall1(Sysno::brk, addr).unwrap_or(0) }
}

/// `prctl` with up to four arguments.
///
/// # Safety
/// Options that take pointers need valid ones.
pub unsafe fn prctl(option: usize, a2: usize, a3: usize, a4: usize, a5: usize) -> Result<usize, Errno> {
    // SAFETY: the caller passes valid pointers for options that take them.
    unsafe { syscalls::syscall5(Sysno::prctl, option, a2, a3, a4, a5) }
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
