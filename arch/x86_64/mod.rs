//! x86_64: syscall shapes, signal-frame layout, TLS, CPU features and the context
//! switches that checkpoint and restart are built from.
//!
//! Everything outside `arch/` sees only this interface; `arch/x86/mod.rs` provides the
//! same names for i386.

use core::arch::naked_asm;
use core::mem::{offset_of, size_of};
use static_assertions::const_assert_eq;
use syscalls::{Errno, Sysno};

use crate::image::{SigActionRecord, ARCH_X86_64};

pub const ARCH: u32 = ARCH_X86_64;
pub const PAGE_SIZE: usize = 4096;
/// One past the highest user address (47-bit address space).
pub const USER_TOP: u64 = 0x0000_8000_0000_0000;

/// `mtcp_restart` is linked at RESTART_BASE (see linker/restart-x86_64.ld) and keeps
/// everything it owns inside [RESTART_BASE, RESTART_BASE + RESTART_WINDOW): far from
/// non-PIE programs (0x400000), PIE programs (0x55..-0x56..), the mmap area and the
/// stack (0x7f..).
pub const RESTART_BASE: usize = 0x4a00_0000_0000;
pub const RESTART_WINDOW: usize = 0x4000_0000;
/// Where `mtcp_restart` maps its scratch memory, inside the window.
pub const RESTART_SCRATCH: usize = RESTART_BASE + 0x1000_0000;

// ---------------------------------------------------------------------------------
// Syscalls whose shape differs between the architectures.

/// `mmap`: the offset is in bytes on x86_64. Errors are returned as the kernel's errno.
///
/// # Safety
/// Mapping over existing memory (MAP_FIXED) can destroy anything the caller uses.
pub unsafe fn mmap(addr: usize, len: usize, prot: usize, flags: usize, fd: i32, offset: u64) -> Result<usize, Errno> {
    syscalls::syscall6(
        Sysno::mmap,
        addr,
        len,
        prot,
        flags,
        fd as isize as usize,
        offset as usize,
    )
}

/// `pread64`; errors as the kernel's errno (EINTR is left to the caller).
///
/// # Safety
/// `buf` must be valid for writes of `len` bytes.
pub unsafe fn pread(fd: i32, buf: *mut u8, len: usize, offset: u64) -> Result<usize, Errno> {
    syscalls::syscall4(Sysno::pread64, fd as usize, buf as usize, len, offset as usize)
}

/// `pwrite64`; errors as the kernel's errno.
///
/// # Safety
/// `buf` must be valid for reads of `len` bytes.
pub unsafe fn pwrite(fd: i32, buf: *const u8, len: usize, offset: u64) -> Result<usize, Errno> {
    syscalls::syscall4(Sysno::pwrite64, fd as usize, buf as usize, len, offset as usize)
}

/// `lseek(fd, offset, SEEK_SET)`; errors as the kernel's errno.
pub fn seek_set(fd: i32, offset: u64) -> Result<u64, Errno> {
    // SAFETY: lseek touches no memory.
    unsafe { syscalls::syscall3(Sysno::lseek, fd as usize, offset as usize, 0).map(|v| v as u64) }
}

// ---------------------------------------------------------------------------------
// Signals.

/// The kernel's `struct sigaction` for rt_sigaction on x86_64.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct KernelSigaction {
    pub handler: usize,
    pub flags: usize,
    pub restorer: usize,
    pub mask: u64,
}
const_assert_eq!(size_of::<KernelSigaction>(), 32);
const_assert_eq!(offset_of!(KernelSigaction, mask), 24);

impl KernelSigaction {
    pub fn to_record(&self) -> SigActionRecord {
        SigActionRecord {
            handler: self.handler as u64,
            flags: self.flags as u64,
            restorer: self.restorer as u64,
            mask: self.mask,
        }
    }

    pub fn from_record(r: &SigActionRecord) -> KernelSigaction {
        KernelSigaction {
            handler: r.handler as usize,
            flags: r.flags as usize,
            restorer: r.restorer as usize,
            mask: r.mask,
        }
    }
}

pub const SA_RESTORER: usize = 0x0400_0000;

/// Returns from a signal handler: the kernel restores every register, the FPU state,
/// the signal mask and the alternate stack from the frame at the stack pointer.
///
/// # Safety
/// Only the kernel calls this, as the SA_RESTORER, with a signal frame at the stack pointer.
#[unsafe(naked)]
pub unsafe extern "C" fn sigreturn_trampoline() {
    naked_asm!("mov eax, 15", "syscall", "ud2")
}

/// `ucontext_t` as the kernel lays it out on the stack (arch/x86/include/uapi/asm/ucontext.h
/// and sigcontext.h): flags, link, stack_t, sigcontext (32 slots), sigmask.
pub mod uc {
    pub const STACK_SP: usize = 16;
    pub const STACK_FLAGS: usize = 24;
    pub const STACK_SIZE: usize = 32;
    pub const MCONTEXT: usize = 40;
    pub const RSP: usize = MCONTEXT + 15 * 8;
    pub const RIP: usize = MCONTEXT + 16 * 8;
    pub const FPSTATE: usize = MCONTEXT + 23 * 8;
    pub const SIGMASK: usize = MCONTEXT + 32 * 8;
}

/// The kernel's `struct ucontext` with `struct sigcontext` (arch/x86/include/uapi/asm/
/// sigcontext.h), declared only to check the offsets above.
#[repr(C)]
#[allow(dead_code)]
struct KernelUcontext {
    uc_flags: u64,
    uc_link: u64,
    ss_sp: u64,
    ss_flags: i32,
    ss_pad: i32,
    ss_size: u64,
    mcontext: Sigcontext64,
    uc_sigmask: u64,
}

#[repr(C)]
#[allow(dead_code)]
struct Sigcontext64 {
    r8_r15: [u64; 8],
    di: u64,
    si: u64,
    bp: u64,
    bx: u64,
    dx: u64,
    ax: u64,
    cx: u64,
    sp: u64,
    ip: u64,
    flags: u64,
    cs_gs_fs_ss: [u16; 4],
    err: u64,
    trapno: u64,
    oldmask: u64,
    cr2: u64,
    fpstate: u64,
    reserved1: [u64; 8],
}
const_assert_eq!(size_of::<Sigcontext64>(), 256);
const_assert_eq!(offset_of!(KernelUcontext, ss_sp), uc::STACK_SP);
const_assert_eq!(offset_of!(KernelUcontext, ss_flags), uc::STACK_FLAGS);
const_assert_eq!(offset_of!(KernelUcontext, ss_size), uc::STACK_SIZE);
const_assert_eq!(offset_of!(KernelUcontext, mcontext), uc::MCONTEXT);
const_assert_eq!(uc::MCONTEXT + offset_of!(Sigcontext64, sp), uc::RSP);
const_assert_eq!(uc::MCONTEXT + offset_of!(Sigcontext64, ip), uc::RIP);
const_assert_eq!(uc::MCONTEXT + offset_of!(Sigcontext64, fpstate), uc::FPSTATE);
const_assert_eq!(offset_of!(KernelUcontext, uc_sigmask), uc::SIGMASK);
const_assert_eq!(uc::SIGMASK, 296);

/// What the handler's frame says about the interrupted thread.
pub struct FrameView {
    pub sp: u64,
    pub ip: u64,
    pub sigmask: u64,
}

/// # Safety
/// `uc` must be the `ucontext_t` pointer the kernel passed to an SA_SIGINFO handler.
pub unsafe fn frame_view(uc: *const u8) -> FrameView {
    let read = |off: usize| core::ptr::read_unaligned(uc.add(off) as *const u64);
    FrameView {
        sp: read(uc::RSP),
        ip: read(uc::RIP),
        sigmask: read(uc::SIGMASK),
    }
}

/// `siginfo_t` fields: si_code at 8, and for kill/sigqueue the sender's pid at 16 and
/// the queued value at 24.
pub const SIGINFO_CODE: usize = 8;
pub const SIGINFO_PID: usize = 16;
pub const SIGINFO_VALUE: usize = 24;

/// The head of the kernel's `siginfo_t` for kill/sigqueue (include/uapi/asm-generic/
/// siginfo.h; the union is 8-byte aligned on x86_64), to check the offsets above.
#[repr(C)]
#[allow(dead_code)]
struct SiginfoRt {
    signo: i32,
    errno: i32,
    code: i32,
    pad: i32,
    pid: i32,
    uid: u32,
    value: u64,
}
const_assert_eq!(offset_of!(SiginfoRt, code), SIGINFO_CODE);
const_assert_eq!(offset_of!(SiginfoRt, pid), SIGINFO_PID);
const_assert_eq!(offset_of!(SiginfoRt, value), SIGINFO_VALUE);

// ---------------------------------------------------------------------------------
// Thread-local storage: the fs base (glibc's thread pointer) and the gs base.

const ARCH_SET_GS: usize = 0x1001;
const ARCH_SET_FS: usize = 0x1002;
const ARCH_GET_FS: usize = 0x1003;
const ARCH_GET_GS: usize = 0x1004;

/// The calling thread's TLS state: (fs base, gs base).
pub fn read_tls() -> (u64, u64) {
    let mut fs: u64 = 0;
    let mut gs: u64 = 0;
    // SAFETY: ARCH_GET_* write one u64 to the pointer we pass, which is valid. Errors
    // cannot happen for valid pointers; a failure leaves 0, meaning "no TLS".
    unsafe {
        let _ = syscalls::syscall2(Sysno::arch_prctl, ARCH_GET_FS, &mut fs as *mut u64 as usize);
        let _ = syscalls::syscall2(Sysno::arch_prctl, ARCH_GET_GS, &mut gs as *mut u64 as usize);
    }
    (fs, gs)
}

/// Sets the calling thread's fs and gs bases.
///
/// # Safety
/// Code that runs afterwards on this thread trusts the new thread pointer.
pub unsafe fn write_tls(base: u64, aux: u64) -> Result<(), Errno> {
    syscalls::syscall2(Sysno::arch_prctl, ARCH_SET_FS, base as usize)?;
    if aux != 0 {
        syscalls::syscall2(Sysno::arch_prctl, ARCH_SET_GS, aux as usize)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// CPU features.

/// (XCR0, xsave area size for the enabled features). (0, 512) without XSAVE.
pub fn xsave_features() -> (u64, u32) {
    let (ecx1, _) = cpuid(1, 0);
    if ecx1 & (1 << 27) == 0 {
        return (0, 512); // no OSXSAVE: fxsave only
    }
    let lo: u32;
    let hi: u32;
    // SAFETY: OSXSAVE is set, so xgetbv with ecx=0 is permitted in user mode.
    unsafe { core::arch::asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    let (_, ebx) = cpuid(0xd, 0);
    (((hi as u64) << 32) | lo as u64, ebx)
}

/// cpuid(leaf, subleaf) -> (ecx, ebx).
fn cpuid(leaf: u32, sub: u32) -> (u32, u32) {
    // cpuid is available on every x86_64 CPU.
    let r = core::arch::x86_64::__cpuid_count(leaf, sub);
    (r.ecx, r.ebx)
}

// ---------------------------------------------------------------------------------
// Context switches.

/// Callee-saved state at a `save_and_call`; `resume` makes that call return again.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct JumpContext {
    pub rbx: u64,
    pub rbp: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub sp: u64,
    pub ip: u64,
    pub mxcsr: u32,
    pub fpucw: u32,
}
const_assert_eq!(size_of::<JumpContext>(), 72);

impl JumpContext {
    pub const fn zeroed() -> JumpContext {
        JumpContext {
            rbx: 0,
            rbp: 0,
            r12: 0,
            r13: 0,
            r14: 0,
            r15: 0,
            sp: 0,
            ip: 0,
            mxcsr: 0,
            fpucw: 0,
        }
    }
}

/// Saves the caller's callee-saved registers, stack pointer and return address in
/// `ctx`, then tail-calls `f(arg)`, so `f`'s result is returned to our caller. Later,
/// `resume(ctx, v)` returns `v` from this same call, with the stack as it was then.
///
/// # Safety
/// `ctx` must be writable. After a `resume`, the frames above the call must hold the
/// bytes they held when it was made (true when the stack was saved and restored).
#[unsafe(naked)]
pub unsafe extern "C" fn save_and_call(ctx: *mut JumpContext, f: extern "C" fn(usize) -> usize, arg: usize) -> usize {
    naked_asm!(
        "mov [rdi + 0], rbx",
        "mov [rdi + 8], rbp",
        "mov [rdi + 16], r12",
        "mov [rdi + 24], r13",
        "mov [rdi + 32], r14",
        "mov [rdi + 40], r15",
        "lea rax, [rsp + 8]", // the caller's stack pointer after we return
        "mov [rdi + 48], rax",
        "mov rax, [rsp]", // our return address
        "mov [rdi + 56], rax",
        "stmxcsr [rdi + 64]",
        "fnstcw [rdi + 68]",
        "mov rdi, rdx",
        "jmp rsi", // f returns straight to our caller
    )
}

/// Returns `value` from the `save_and_call` that filled `ctx`.
///
/// # Safety
/// See `save_and_call`; the stack `ctx.sp` points into must be intact.
#[unsafe(naked)]
pub unsafe extern "C" fn resume(ctx: *const JumpContext, value: usize) -> ! {
    naked_asm!(
        "mov rbx, [rdi + 0]",
        "mov rbp, [rdi + 8]",
        "mov r12, [rdi + 16]",
        "mov r13, [rdi + 24]",
        "mov r14, [rdi + 32]",
        "mov r15, [rdi + 40]",
        "ldmxcsr [rdi + 64]",
        "fldcw [rdi + 68]",
        "mov rsp, [rdi + 48]",
        "mov rax, rsi",
        "jmp qword ptr [rdi + 56]",
    )
}

/// Switches to the stack ending at `stack_top` and calls `f(arg)`, which must not return.
///
/// # Safety
/// `stack_top` must be the 16-byte aligned end of writable memory that nothing else uses.
#[unsafe(naked)]
pub unsafe extern "C" fn switch_stack(stack_top: usize, f: unsafe extern "C" fn(usize) -> !, arg: usize) -> ! {
    naked_asm!(
        "mov rsp, rdi",
        "and rsp, -16",
        "xor ebp, ebp",
        "mov rdi, rdx",
        "call rsi",
        "ud2",
    )
}

/// Calls `f(arg)` on the stack ending at `stack_top` and returns its result on the
/// caller's stack again; keeps deep work (the image writer) off a thread's own stack.
///
/// # Safety
/// `stack_top` must be the end of writable memory that nothing else uses meanwhile.
#[unsafe(naked)]
pub unsafe extern "C" fn call_on_stack(stack_top: usize, f: extern "C" fn(usize) -> usize, arg: usize) -> usize {
    naked_asm!(
        "push rbp",
        "mov rbp, rsp",
        "mov rsp, rdi",
        "and rsp, -16",
        "mov rdi, rdx",
        "call rsi",
        "mov rsp, rbp",
        "pop rbp",
        "ret",
    )
}

/// Clears the frame pointer chain and calls the entry in the restored image with `arg`
/// on the given stack. Used by mtcp_restart for its final jump.
///
/// # Safety
/// `entry` must be the runtime's restore entry in fully restored memory.
pub unsafe fn jump_to_entry(entry: usize, arg: usize, stack_top: usize) -> ! {
    // SAFETY: same contract; transmute turns the recorded address into a callable.
    let f: unsafe extern "C" fn(usize) -> ! = core::mem::transmute(entry);
    switch_stack(stack_top, f, arg)
}

// ---------------------------------------------------------------------------------
// Time: timespec and itimerspec are 64-bit on x86_64.

/// CLOCK_REALTIME as (seconds, nanoseconds); (0, 0) if the clock cannot be read.
pub fn realtime() -> (u64, u32) {
    let mut ts = [0i64; 2];
    // SAFETY: clock_gettime writes one struct timespec (two i64) into ts.
    unsafe {
        let _ = syscalls::syscall2(Sysno::clock_gettime, 0, ts.as_mut_ptr() as usize);
    }
    (ts[0] as u64, ts[1] as u32)
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let mut ts = [0i64; 2];
    // SAFETY: as in realtime().
    unsafe {
        let _ = syscalls::syscall2(Sysno::clock_gettime, 1, ts.as_mut_ptr() as usize);
    }
    ts[0] as u64 * 1_000_000_000 + ts[1] as u64
}

/// A POSIX timer on CLOCK_MONOTONIC that sends `sig` with `value` every `secs` seconds.
/// Returns the timer id; errors (EINVAL, EAGAIN) as the kernel's errno.
pub fn periodic_signal_timer(sig: u32, value: usize, secs: u32) -> Result<usize, Errno> {
    #[repr(C)]
    struct SigEvent {
        value: usize,
        signo: i32,
        notify: i32,
        pad: [i32; 12],
    }
    const_assert_eq!(size_of::<SigEvent>(), 64);
    let ev = SigEvent {
        value,
        signo: sig as i32,
        notify: 0, /* SIGEV_SIGNAL */
        pad: [0; 12],
    };
    let mut id: i32 = 0;
    // SAFETY: ev and id are valid for the kernel's read and write.
    unsafe {
        syscalls::syscall3(
            Sysno::timer_create,
            1,
            &ev as *const SigEvent as usize,
            &mut id as *mut i32 as usize,
        )?;
        let spec: [i64; 4] = [secs as i64, 0, secs as i64, 0];
        if let Err(e) = syscalls::syscall4(Sysno::timer_settime, id as usize, 0, spec.as_ptr() as usize, 0) {
            let _ = syscalls::syscall1(Sysno::timer_delete, id as usize);
            return Err(e);
        }
    }
    Ok(id as usize)
}

/// FUTEX_WAIT with a relative timeout in nanoseconds; callers re-check the word.
pub fn futex_wait_timeout(word: &core::sync::atomic::AtomicU32, expected: u32, ns: u64) {
    let ts: [i64; 2] = [(ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i64];
    // SAFETY: word is a valid aligned u32 and ts a valid timespec.
    unsafe {
        let _ = syscalls::syscall4(
            Sysno::futex,
            word.as_ptr() as usize,
            0, /* FUTEX_WAIT */
            expected as usize,
            ts.as_ptr() as usize,
        );
    }
}

// ---------------------------------------------------------------------------------
// glibc's rseq area, found through weak references so that programs without glibc
// (or with an older one) simply have none.

core::arch::global_asm!(
    ".pushsection .text.mtcp_rseq_syms,\"ax\",@progbits",
    ".weak __rseq_offset",
    ".weak __rseq_size",
    ".globl mtcp_arch_rseq_offset_ptr",
    ".hidden mtcp_arch_rseq_offset_ptr",
    "mtcp_arch_rseq_offset_ptr:",
    "    mov rax, qword ptr [rip + __rseq_offset@GOTPCREL]",
    "    ret",
    ".globl mtcp_arch_rseq_size_ptr",
    ".hidden mtcp_arch_rseq_size_ptr",
    "mtcp_arch_rseq_size_ptr:",
    "    mov rax, qword ptr [rip + __rseq_size@GOTPCREL]",
    "    ret",
    ".popsection",
);

extern "C" {
    fn mtcp_arch_rseq_offset_ptr() -> *const isize;
    fn mtcp_arch_rseq_size_ptr() -> *const u32;
}

/// (offset of the rseq area from the thread pointer, registered size) when the
/// program's libc registers rseq for its threads.
pub fn libc_rseq() -> Option<(isize, u32)> {
    // SAFETY: the helpers return the addresses of glibc's exported constants, or null
    // when the weak references are unresolved; we only read through non-null ones.
    unsafe {
        let off = mtcp_arch_rseq_offset_ptr();
        let size = mtcp_arch_rseq_size_ptr();
        if off.is_null() || size.is_null() || *size == 0 {
            return None;
        }
        Some((*off, *size))
    }
}

/// The rseq signature that x86 kernels check before aborting a critical section.
pub const RSEQ_SIG: u32 = 0x5305_3053;

// ---------------------------------------------------------------------------------
// Threads.

pub const CLONE_VM: usize = 0x100;
pub const CLONE_FS: usize = 0x200;
pub const CLONE_FILES: usize = 0x400;
pub const CLONE_SIGHAND: usize = 0x800;
pub const CLONE_THREAD: usize = 0x10000;
pub const CLONE_SYSVSEM: usize = 0x40000;
pub const CLONE_SETTLS: usize = 0x80000;
pub const CLONE_PARENT_SETTID: usize = 0x100000;
pub const CLONE_CHILD_CLEARTID: usize = 0x200000;

/// The value CLONE_SETTLS wants for a thread whose TLS state is (base, aux): on x86_64
/// the fs base itself.
pub fn clone_tls_arg(base: u64, _aux: u64, _scratch: &mut [u32; 4]) -> usize {
    base as usize
}

/// Puts `f` and `arg` at the top of a new thread's stack, where the child side of
/// `clone_raw`/`clone3_raw` pops them; returns the child's stack pointer.
///
/// # Safety
/// The 16 bytes below `stack_top` (rounded down to 16) must be writable.
unsafe fn child_stack(stack_top: usize, f: unsafe extern "C" fn(usize) -> !, arg: usize) -> usize {
    let sp = (stack_top & !15) - 16;
    core::ptr::write(sp as *mut usize, f as usize);
    core::ptr::write((sp + core::mem::size_of::<usize>()) as *mut usize, arg);
    sp
}

/// Starts a thread in this process that runs `f(arg)` on `stack_top`; returns its tid.
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
    let sp = child_stack(stack_top, f, arg);
    let ret = clone_raw(flags, sp, ptid, ctid, tls);
    Errno::from_ret(ret).map(|t| t as u32)
}

/// # Safety
/// As `clone_thread`: the new stack must hold `f` and `arg` where the child pops them.
#[unsafe(naked)]
unsafe extern "C" fn clone_raw(flags: usize, sp: usize, ptid: usize, ctid: usize, tls: usize) -> usize {
    naked_asm!(
        "mov r10, rcx", // ctid: the kernel takes the fourth argument in r10
        "mov eax, 56",  // clone
        "syscall",
        "test rax, rax",
        "jnz 1f",
        // Child: new stack holds f, arg.
        "xor ebp, ebp",
        "pop rax",
        "pop rdi",
        "and rsp, -16",
        "call rax",
        "ud2",
        "1: ret",
    )
}

// ---------------------------------------------------------------------------------
// libc's view of signals, for the interposed entry points.

/// glibc's `struct sigaction` on x86_64: handler, sigset_t (128 bytes), int flags, restorer.
pub mod user_sigaction {
    pub const HANDLER: usize = 0;
    pub const MASK: usize = 8;
    pub const FLAGS: usize = 136;
    pub const RESTORER: usize = 144;
    pub const SIZE: usize = 152;
}

core::arch::global_asm!(
    ".pushsection .text.mtcp_errno_sym,\"ax\",@progbits",
    ".weak __errno_location",
    ".globl mtcp_arch_errno_fn",
    ".hidden mtcp_arch_errno_fn",
    "mtcp_arch_errno_fn:",
    "    mov rax, qword ptr [rip + __errno_location@GOTPCREL]",
    "    ret",
    ".popsection",
);

extern "C" {
    fn mtcp_arch_errno_fn() -> Option<unsafe extern "C" fn() -> *mut i32>;
}

/// Sets libc's errno for the calling thread, when the program has a libc.
pub fn set_libc_errno(value: i32) {
    // SAFETY: the helper returns glibc's __errno_location or null (unresolved weak
    // reference); __errno_location is async-signal-safe and returns this thread's errno.
    unsafe {
        if let Some(f) = mtcp_arch_errno_fn() {
            *f() = value;
        }
    }
}

/// rt_sigtimedwait with the program's `struct timespec` (64-bit fields on x86_64).
///
/// # Safety
/// `set` must point to a signal set, `info` be null or writable siginfo, `timeout`
/// null or a valid timespec.
pub unsafe fn sigtimedwait_raw(set: &u64, info: usize, timeout: usize) -> Result<usize, Errno> {
    syscalls::syscall4(Sysno::rt_sigtimedwait, set as *const u64 as usize, info, timeout, 8)
}

/// The program's timespec at `p` in nanoseconds.
///
/// # Safety
/// `p` must point to a valid struct timespec.
pub unsafe fn read_timespec_ns(p: usize) -> u64 {
    let ts = core::ptr::read(p as *const [i64; 2]);
    (ts[0].max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts[1].max(0) as u64)
}

/// Writes `ns` as the program's timespec into `out` (which must hold one) and returns its address.
pub fn timespec_from_ns(ns: u64, out: &mut TimespecBuf) -> usize {
    out[0] = (ns / 1_000_000_000) as i64;
    out[1] = (ns % 1_000_000_000) as i64;
    out.as_ptr() as usize
}

/// Room for one of the program's `struct timespec`.
pub type TimespecBuf = [i64; 2];

/// Like `clone_thread`, but the new thread gets the id `tid` (clone3 with set_tid).
///
/// # Safety
/// As `clone_thread`.
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
    let sp = child_stack(stack_top, f, arg);
    let want: u64 = tid as u64;
    // The kernel starts the child at stack + stack_size: put f and arg right there.
    let args = crate::sys::CloneArgs {
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
    Errno::from_ret(clone3_raw(
        &args as *const crate::sys::CloneArgs as usize,
        size_of::<crate::sys::CloneArgs>(),
    ))
    .map(|t| t as u32)
}

/// # Safety
/// As `clone_thread_with_tid`: `args` is a valid clone_args whose stack top holds `f` and `arg`.
#[unsafe(naked)]
unsafe extern "C" fn clone3_raw(args: usize, size: usize) -> usize {
    naked_asm!(
        "mov eax, 435", // clone3
        "syscall",
        "test rax, rax",
        "jnz 1f",
        "xor ebp, ebp",
        "pop rax",
        "pop rdi",
        "and rsp, -16",
        "call rax",
        "ud2",
        "1: ret",
    )
}

/// getitimer(which): (interval, value) in microseconds. EINVAL for an unknown timer.
pub fn get_itimer(which: u32) -> Result<(u64, u64), Errno> {
    let mut v = [0i64; 4]; // struct itimerval: interval {sec, usec}, value {sec, usec}
                           // SAFETY: getitimer writes one struct itimerval.
    unsafe { syscalls::syscall2(Sysno::getitimer, which as usize, v.as_mut_ptr() as usize)? };
    let us = |s: i64, u: i64| (s.max(0) as u64) * 1_000_000 + u.max(0) as u64;
    Ok((us(v[0], v[1]), us(v[2], v[3])))
}

/// setitimer(which) from microseconds; errors as the kernel's errno.
pub fn set_itimer(which: u32, interval_us: u64, value_us: u64) -> Result<(), Errno> {
    let v: [i64; 4] = [
        (interval_us / 1_000_000) as i64,
        (interval_us % 1_000_000) as i64,
        (value_us / 1_000_000) as i64,
        (value_us % 1_000_000) as i64,
    ];
    // SAFETY: setitimer reads one struct itimerval; the old value is not asked for.
    unsafe { syscalls::syscall3(Sysno::setitimer, which as usize, v.as_ptr() as usize, 0).map(|_| ()) }
}
