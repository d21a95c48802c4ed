//! Threads: ids, names, clear_child_tid, robust lists, rseq, futexes and the clone
//! system calls (whose assembly is in the arch layer).
//!
//! Error policy as in `sys`.

use core::mem::size_of;
use syscalls::{Errno, Sysno};

use super::{prctl, PR_GET_NAME, PR_GET_TID_ADDRESS, PR_SET_NAME};

pub const CLONE_VM: usize = 0x100;
pub const CLONE_FS: usize = 0x200;
pub const CLONE_FILES: usize = 0x400;
pub const CLONE_SIGHAND: usize = 0x800;
pub const CLONE_THREAD: usize = 0x10000;
pub const CLONE_SYSVSEM: usize = 0x40000;
pub const CLONE_SETTLS: usize = 0x80000;
pub const CLONE_PARENT_SETTID: usize = 0x100000;
pub const CLONE_CHILD_CLEARTID: usize = 0x200000;
pub const CLONE_VFORK: usize = 0x4000;
pub const CLONE_UNTRACED: usize = 0x0080_0000;
/// What a thread of this process (a program's, or the runtime's own) is cloned with: it
/// shares everything a thread shares, with a thread pointer of its own (CLONE_SETTLS).
pub const THREAD_CLONE_FLAGS: usize =
    CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS;

pub const FUTEX_WAIT: usize = 0;
pub const FUTEX_WAKE: usize = 1;

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
    // SAFETY: the caller keeps the area valid while it is registered.
    unsafe { syscalls::syscall4(Sysno::rseq, area, len as usize, flags as usize, sig as usize).map(|_| ()) }
}

/// (offset of the rseq area from the thread pointer, registered size) when the
/// program's libc registers rseq for its threads.
pub fn libc_rseq() -> Option<(isize, u32)> {
    let (off, size) = mtcp_arch::libc_rseq_symbols();
    if off.is_null() || size.is_null() {
        return None;
    }
    // SAFETY: non-null, these are glibc's exported constants, readable for the whole
    // life of the process.
    let (off, size) = unsafe { (*off, *size) };
    (size != 0).then_some((off, size))
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
    fork_with(&CloneArgs {
        exit_signal: 17, // SIGCHLD
        set_tid: &tid as *const u64 as u64,
        set_tid_size: 1,
        ..Default::default()
    })
}

/// fork() as clone3 with `args`, which must not ask for CLONE_VM or a stack: 0 in the
/// child, the child's pid in the parent. Errors as clone3's.
pub(super) fn fork_with(args: &CloneArgs) -> Result<u32, Errno> {
    // SAFETY: without CLONE_VM the child gets a copy of this address space and returns
    // 0 from the syscall on the same stack, like fork(); `args` (and the set_tid array
    // it may point to) outlive the call.
    unsafe {
        syscalls::syscall2(
            Sysno::clone3,
            args as *const CloneArgs as usize,
            core::mem::size_of::<CloneArgs>(),
        )
        .map(|v| v as u32)
    }
}

/// fork() whose child shares this process's descriptor table (CLONE_FILES, so that it
/// holds no references of its own until `close_all_unshared`) and signals nobody when
/// it ends (exit signal 0). Returns 0 in the child, its pid in the parent; EAGAIN or
/// ENOMEM when no process can be made.
pub fn fork_sharing_files() -> Result<u32, Errno> {
    let args = CloneArgs {
        flags: CLONE_FILES as u64,
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

/// Leaves this process with a descriptor table of its own, empty: close_range over
/// every number with CLOSE_RANGE_UNSHARE, which copies nothing of a shared table, so no
/// file of the old table gains a reference. EINVAL before Linux 5.9.
pub fn close_all_unshared() -> Result<(), Errno> {
    const CLOSE_RANGE_UNSHARE: usize = 2;
    // SAFETY: close_range touches no memory.
    unsafe { syscalls::syscall3(Sysno::close_range, 0, u32::MAX as usize, CLOSE_RANGE_UNSHARE).map(|_| ()) }
}

/// Whether this process is a child subreaper (PR_GET_CHILD_SUBREAPER): orphaned
/// descendants then become its children. False if the kernel does not say.
pub fn is_child_subreaper() -> bool {
    const PR_GET_CHILD_SUBREAPER: usize = 37;
    let mut on: i32 = 0;
    // SAFETY: PR_GET_CHILD_SUBREAPER writes one int at the address given.
    let r = unsafe { prctl(PR_GET_CHILD_SUBREAPER, &mut on as *mut i32 as usize, 0, 0, 0) };
    r.is_ok() && on != 0
}

/// Puts `f` and `arg` at the top of a new thread's stack, where the child side of
/// `clone_raw`/`clone3_raw` pops them; returns the child's stack pointer.
///
/// # Safety
/// The 16 bytes below `stack_top` (rounded down to 16) must be writable.
unsafe fn child_stack(stack_top: usize, f: unsafe extern "C" fn(usize) -> !, arg: usize) -> usize {
    let sp = (stack_top & !15) - 16;
    // SAFETY: the caller guarantees these two words are writable.
    unsafe {
        core::ptr::write(sp as *mut usize, f as usize);
        core::ptr::write((sp + size_of::<usize>()) as *mut usize, arg);
    }
    sp
}

/// Starts a thread in this process that runs `f(arg)` on `stack_top`; returns its tid.
/// `tls` is what `arch::clone_tls_arg` returned (still valid). Errors as clone's errno.
///
/// # Safety
/// `stack_top` must be writable memory below which the new thread may use the stack,
/// and `f` must never return.
pub unsafe fn clone_thread(
    flags: usize,
    stack_top: usize,
    ptid: usize,
    ctid: usize,
    tls: usize,
    f: unsafe extern "C" fn(usize) -> !,
    arg: usize,
) -> Result<u32, Errno> {
    // SAFETY: the caller's contract covers the stack and f.
    unsafe {
        let sp = child_stack(stack_top, f, arg);
        Errno::from_ret(mtcp_arch::clone_raw(flags, sp, ptid, ctid, tls)).map(|t| t as u32)
    }
}

/// Like `clone_thread`, but the new thread gets the id `tid` (clone3 with set_tid):
/// EPERM without CAP_CHECKPOINT_RESTORE, EEXIST if the id is taken.
///
/// # Safety
/// As `clone_thread`.
#[allow(clippy::too_many_arguments)] // the kernel's clone arguments, plus the id
pub unsafe fn clone_thread_with_tid(
    flags: usize,
    stack_top: usize,
    ptid: usize,
    ctid: usize,
    tls: usize,
    tid: u32,
    f: unsafe extern "C" fn(usize) -> !,
    arg: usize,
) -> Result<u32, Errno> {
    // SAFETY: the caller's contract covers the stack and f.
    let sp = unsafe { child_stack(stack_top, f, arg) };
    let want: u64 = tid as u64;
    // The kernel starts the child at stack + stack_size: put f and arg right there.
    let args = CloneArgs {
        flags: flags as u64,
        child_tid: ctid as u64,
        parent_tid: ptid as u64,
        stack: (sp - 4096) as u64,
        stack_size: 4096,
        tls: tls as u64,
        set_tid: &want as *const u64 as u64,
        set_tid_size: 1,
        ..Default::default()
    };
    // SAFETY: args is a valid clone_args whose stack top holds f and arg.
    let ret = unsafe { mtcp_arch::clone3_raw(&args as *const CloneArgs as usize, size_of::<CloneArgs>()) };
    Errno::from_ret(ret).map(|t| t as u32)
}

/// The calling thread's scheduling policy (SCHED_RESET_ON_FORK included) and static
/// priority (sched_getscheduler, sched_getparam).
pub fn get_scheduling() -> Result<(u32, u32), Errno> {
    let mut priority: i32 = 0;
    // SAFETY: pid 0 is the calling thread; sched_getparam writes one int.
    unsafe {
        let policy = syscalls::syscall1(Sysno::sched_getscheduler, 0)?;
        syscalls::syscall2(Sysno::sched_getparam, 0, &mut priority as *mut i32 as usize)?;
        Ok((policy as u32, priority as u32))
    }
}

/// sched_setscheduler for the calling thread. EPERM for a real-time policy, or a higher
/// priority, without the privilege; EINVAL for a policy this kernel lacks.
pub fn set_scheduling(policy: u32, priority: u32) -> Result<(), Errno> {
    let param = priority as i32;
    // SAFETY: pid 0 is the calling thread; the kernel reads one int.
    unsafe {
        syscalls::syscall3(
            Sysno::sched_setscheduler,
            0,
            policy as usize,
            &param as *const i32 as usize,
        )
        .map(|_| ())
    }
}

const PRIO_PROCESS: usize = 0;

/// The calling thread's nice value (Linux keeps one per thread).
pub fn get_nice() -> Result<i32, Errno> {
    // SAFETY: getpriority touches no memory; the raw call returns 20 - nice.
    unsafe { syscalls::syscall2(Sysno::getpriority, PRIO_PROCESS, 0).map(|v| 20 - v as i32) }
}

/// Sets the calling thread's nice value: EACCES to lower it without the privilege.
pub fn set_nice(nice: i32) -> Result<(), Errno> {
    // SAFETY: setpriority touches no memory.
    unsafe { syscalls::syscall3(Sysno::setpriority, PRIO_PROCESS, 0, nice as isize as usize).map(|_| ()) }
}

/// The CPUs (0-63) the calling thread may run on; EINVAL where the kernel knows more
/// than 64 CPUs (the set would not fit).
pub fn get_affinity64() -> Result<u64, Errno> {
    let mut mask: u64 = 0;
    // SAFETY: the kernel writes at most 8 bytes into mask.
    unsafe { syscalls::syscall3(Sysno::sched_getaffinity, 0, 8, &mut mask as *mut u64 as usize)? };
    Ok(mask)
}

/// Restricts the calling thread to the CPUs in `mask`; EINVAL if none of them exists.
pub fn set_affinity64(mask: u64) -> Result<(), Errno> {
    // SAFETY: the kernel reads 8 bytes from mask.
    unsafe { syscalls::syscall3(Sysno::sched_setaffinity, 0, 8, &mask as *const u64 as usize).map(|_| ()) }
}
