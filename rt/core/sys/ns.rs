//! Namespaces, capabilities and child supervision: what mtcp_restart needs to give a
//! process its old ids (a user, pid and mount namespace of its own where the user may
//! not choose ids here) and to stand in for it as the pid the shell knows.
//!
//! Error policy as in `sys`.

use syscalls::{Errno, Sysno};

use super::{fd_arg, CPathBuf, CloneArgs, Fd};

pub const CLONE_NEWNS: u64 = 0x0002_0000;
pub const CLONE_NEWUSER: u64 = 0x1000_0000;
pub const CLONE_NEWPID: u64 = 0x2000_0000;
const SIGCHLD: u64 = 17;

/// fork() into new namespaces (`flags`: CLONE_NEW*): the child is the first process of a
/// new pid namespace, pid 1 there, if CLONE_NEWPID is given. Returns 0 in the child and
/// its pid (as this process sees it) in the parent. EPERM: not allowed here (no
/// CAP_SYS_ADMIN for namespaces other than a user namespace, a seccomp filter, a
/// disabled feature); ENOSPC: a namespace limit (`user.max_user_namespaces` and the
/// like) is reached; EUSERS: user namespaces nested too deeply; EINVAL: unsupported.
pub fn fork_into_namespaces(flags: u64) -> Result<u32, Errno> {
    super::thread::fork_with(&CloneArgs {
        flags,
        exit_signal: SIGCHLD,
        ..Default::default()
    })
}

/// A pidfd for process `pid` (pidfd_open). ESRCH: no such process; ENOSYS before 5.3.
pub fn pidfd_open(pid: u32) -> Result<Fd, Errno> {
    // SAFETY: pidfd_open touches no memory; the new descriptor is ours alone.
    unsafe { syscalls::syscall2(Sysno::pidfd_open, pid as usize, 0).map(|fd| Fd::adopt(fd as i32)) }
}

/// Joins the namespaces (`nstype`: CLONE_NEW*) of the process behind `pidfd`, all or
/// none (setns with a pidfd, 5.8+). EPERM: not privileged over them; EINVAL: a kernel
/// without pidfd setns, or the caller is multi-threaded (user namespaces).
pub fn setns(pidfd: &Fd, nstype: u64) -> Result<(), Errno> {
    // SAFETY: setns touches no memory.
    unsafe { syscalls::syscall2(Sysno::setns, fd_arg(pidfd.raw()), nstype as usize).map(|_| ()) }
}

/// Mounts a procfs of the caller's pid namespace on /proc, so that /proc/self is the
/// caller in that namespace. EPERM: no CAP_SYS_ADMIN over the mount namespace, or the
/// kernel refuses a procfs that would show more than the one already there (parts of
/// /proc covered by other mounts, as in some containers).
pub fn mount_proc() -> Result<(), Errno> {
    const MS_NOSUID: usize = 2;
    const MS_NODEV: usize = 4;
    const MS_NOEXEC: usize = 8;
    let source = CPathBuf::<8>::new(b"proc")?;
    let target = CPathBuf::<8>::new(b"/proc")?;
    // SAFETY: three NUL-terminated strings that outlive the call, and no data.
    unsafe {
        syscalls::syscall5(
            Sysno::mount,
            source.ptr(),
            target.ptr(),
            source.ptr(),
            MS_NOSUID | MS_NODEV | MS_NOEXEC,
            0,
        )
        .map(|_| ())
    }
}

/// Makes every mount of the caller's mount namespace a slave: it still sees what is
/// mounted outside later, but nothing mounted here propagates out. A mount namespace
/// that a privileged process makes keeps the host's shared propagation otherwise, and
/// a /proc mounted in it would appear on the host's /proc. EPERM: no CAP_SYS_ADMIN over
/// the mount namespace.
pub fn make_mounts_slave() -> Result<(), Errno> {
    const MS_REC: usize = 0x4000;
    const MS_SLAVE: usize = 1 << 19;
    let root = CPathBuf::<8>::new(b"/")?;
    // SAFETY: a NUL-terminated target that outlives the call; no source, type or data.
    unsafe { syscalls::syscall5(Sysno::mount, 0, root.ptr(), 0, MS_REC | MS_SLAVE, 0).map(|_| ()) }
}

/// `struct __user_cap_header_struct` and the two `__user_cap_data_struct`s of
/// _LINUX_CAPABILITY_VERSION_3 (include/uapi/linux/capability.h).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}
static_assertions::const_assert_eq!(core::mem::size_of::<CapHeader>(), 8);
static_assertions::const_assert_eq!(core::mem::size_of::<CapData>(), 12);
const CAP_V3: u32 = 0x2008_0522;

/// Capability numbers (include/uapi/linux/capability.h).
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_CHECKPOINT_RESTORE: u32 = 40;

/// The calling thread's effective capabilities, as a bit set (bit n for capability n).
pub fn effective_capabilities() -> Result<u64, Errno> {
    let mut header = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: a v3 header and the two data structs v3 fills.
    unsafe {
        syscalls::syscall2(
            Sysno::capget,
            &mut header as *mut CapHeader as usize,
            data.as_mut_ptr() as usize,
        )?;
    }
    Ok(data[0].effective as u64 | (data[1].effective as u64) << 32)
}

/// Drops every capability of the calling thread (effective, permitted, inheritable;
/// the ambient set empties with them). Other threads keep theirs: each must drop its own.
pub fn drop_capabilities() -> Result<(), Errno> {
    let mut header = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: a v3 header and the two data structs v3 reads.
    unsafe {
        syscalls::syscall2(
            Sysno::capset,
            &mut header as *mut CapHeader as usize,
            data.as_ptr() as usize,
        )
        .map(|_| ())
    }
}

/// wait4 options.
pub const WNOHANG: usize = 1;
pub const WUNTRACED: usize = 2;
pub const WCONTINUED: usize = 8;
pub const WALL: usize = 0x4000_0000;

/// wait4(pid, options), retried on EINTR: the pid and raw status of a child that
/// changed state, or Ok(None) with WNOHANG when none has. ECHILD: no such child.
pub fn wait_child(pid: i32, options: usize) -> Result<Option<(u32, i32)>, Errno> {
    let mut status: i32 = 0;
    loop {
        // SAFETY: status is a valid int to write; no rusage.
        match unsafe {
            syscalls::syscall4(
                Sysno::wait4,
                pid as isize as usize,
                &mut status as *mut i32 as usize,
                options,
                0,
            )
        } {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(0) => return Ok(None),
            Ok(child) => return Ok(Some((child as u32, status))),
        }
    }
}

/// A signal's siginfo as the kernel gives it (128 bytes).
pub type SigInfo = [u8; 128];

/// Waits, with `mask` blocked, for one of its signals (rt_sigtimedwait without a time
/// limit, retried on EINTR); returns its number and siginfo.
pub fn wait_signal(mask: u64, info: &mut SigInfo) -> Result<u32, Errno> {
    loop {
        // SAFETY: the kernel writes one siginfo (128 bytes) into `info` and reads the
        // 8-byte mask; no timeout.
        match unsafe {
            syscalls::syscall4(
                Sysno::rt_sigtimedwait,
                &mask as *const u64 as usize,
                info.as_mut_ptr() as usize,
                0,
                8,
            )
        } {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(sig) => return Ok(sig as u32),
        }
    }
}

/// Queues signal `sig` with the siginfo `info` (whose si_code must be negative, as a
/// process's own signals are) to process `pid` (rt_sigqueueinfo). EPERM: a non-negative
/// si_code, or not allowed to signal `pid`; ESRCH: no such process.
pub fn queue_signal_info(pid: u32, sig: u32, info: &SigInfo) -> Result<(), Errno> {
    // SAFETY: the kernel reads 128 bytes of siginfo from `info`.
    unsafe {
        syscalls::syscall3(
            Sysno::rt_sigqueueinfo,
            pid as usize,
            sig as usize,
            info.as_ptr() as usize,
        )
        .map(|_| ())
    }
}

/// The inode number that names the caller's pid namespace (/proc/self/ns/pid), as a
/// process outside sees it in /proc/PID/ns/pid. ENOENT without /proc.
pub fn pid_namespace_id() -> Result<u64, Errno> {
    let path = CPathBuf::<32>::new(b"/proc/self/ns/pid")?;
    super::statx(super::AT_FDCWD, &path, 0).map(|st| st.ino)
}

/// This process as status and temporary file names name it.
pub fn own_proc_name() -> crate::protocol::ProcName {
    crate::protocol::ProcName::new(super::getpid(), pid_namespace_id().ok())
}

/// Whether the process a file name names is known to be gone: only a name of this
/// process's own pid namespace can be looked up here (another namespace's pid may be
/// anyone's in this one, or nobody's).
pub fn named_process_gone(name: crate::protocol::ProcName) -> bool {
    let own = crate::protocol::ProcName::new(0, pid_namespace_id().ok()).pidns;
    name.pidns == own && !super::id_in_use(name.pid)
}
