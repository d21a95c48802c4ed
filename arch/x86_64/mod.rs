//! x86_64: syscall shapes, signal-frame layout, TLS, CPU features and the context
//! switches that checkpoint and restart are built from.
//!
//! `arch/x86/mod.rs` provides the same names for i386; `arch/lib.rs` picks one.

use core::arch::naked_asm;
use core::mem::{offset_of, size_of};
use static_assertions::const_assert_eq;
use syscalls::{Errno, Sysno};

mod mem;
mod start;

/// The ELF machine number, which images use as their architecture id.
pub const ELF_MACHINE: u32 = 62;
pub const PAGE_SIZE: usize = 4096;
/// One past the highest user address (47-bit address space).
pub const USER_TOP: u64 = 0x0000_8000_0000_0000;

// ---------------------------------------------------------------------------------
// Syscalls whose shape differs between the architectures.

/// `mmap`: the offset is in bytes on x86_64. Errors are returned as the kernel's errno.
///
/// # Safety
/// Mapping over existing memory (MAP_FIXED) can destroy anything the caller uses.
pub unsafe fn mmap(addr: usize, len: usize, prot: usize, flags: usize, fd: i32, offset: u64) -> Result<usize, Errno> {
    // SAFETY: the caller's contract.
    unsafe {
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
}

/// `pread64`; errors as the kernel's errno (EINTR is left to the caller).
///
/// # Safety
/// `buf` must be valid for writes of `len` bytes.
pub unsafe fn pread(fd: i32, buf: *mut u8, len: usize, offset: u64) -> Result<usize, Errno> {
    // SAFETY: the caller guarantees `buf` is writable for `len` bytes.
    unsafe { syscalls::syscall4(Sysno::pread64, fd as isize as usize, buf as usize, len, offset as usize) }
}

/// `pwrite64`; errors as the kernel's errno.
///
/// # Safety
/// `buf` must be valid for reads of `len` bytes.
pub unsafe fn pwrite(fd: i32, buf: *const u8, len: usize, offset: u64) -> Result<usize, Errno> {
    // SAFETY: the caller guarantees `buf` is readable for `len` bytes.
    unsafe {
        syscalls::syscall4(
            Sysno::pwrite64,
            fd as isize as usize,
            buf as usize,
            len,
            offset as usize,
        )
    }
}

/// `lseek(fd, offset, SEEK_SET)`; errors as the kernel's errno.
pub fn seek_set(fd: i32, offset: u64) -> Result<u64, Errno> {
    // SAFETY: lseek touches no memory.
    unsafe { syscalls::syscall3(Sysno::lseek, fd as usize, offset as usize, 0).map(|v| v as u64) }
}

// ---------------------------------------------------------------------------------
// Signals.

/// Returns from a signal handler: the kernel restores every register, the FPU state,
/// the signal mask and the alternate stack from the frame at the stack pointer.
///
/// # Safety
/// Only the kernel calls this, as the SA_RESTORER, with a signal frame at the stack pointer.
#[unsafe(naked)]
pub unsafe extern "C" fn sigreturn_trampoline() {
    naked_asm!("mov eax, 15", "syscall", "ud2")
}

/// The SA_RESTORER for a handler with these `sa_flags`: x86_64 builds an rt frame for
/// every handler.
pub fn signal_restorer(_flags: usize) -> usize {
    sigreturn_trampoline as *const () as usize
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
#[allow(dead_code)] // declared only for the offset checks below
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
#[allow(dead_code)] // declared only for the offset checks below
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
    // SAFETY: the caller passes the kernel's ucontext, which holds every offset read.
    let read = |off: usize| unsafe { core::ptr::read_unaligned(uc.add(off) as *const u64) };
    FrameView {
        sp: read(uc::RSP),
        ip: read(uc::RIP),
        sigmask: read(uc::SIGMASK),
    }
}

/// `siginfo_t` fields: si_code at 8, and for kill/sigqueue the sender's pid at 16, its
/// uid at 20 and the queued value at 24.
pub const SIGINFO_CODE: usize = 8;
pub const SIGINFO_PID: usize = 16;
pub const SIGINFO_UID: usize = 20;
pub const SIGINFO_VALUE: usize = 24;

/// The head of the kernel's `siginfo_t` for kill/sigqueue (include/uapi/asm-generic/
/// siginfo.h; the union is 8-byte aligned on x86_64), to check the offsets above.
#[repr(C)]
#[allow(dead_code)] // declared only for the offset checks below
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
const_assert_eq!(offset_of!(SiginfoRt, uid), SIGINFO_UID);
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
    // SAFETY: ARCH_SET_* take values, not pointers; the caller vouches for the bases.
    unsafe {
        syscalls::syscall2(Sysno::arch_prctl, ARCH_SET_FS, base as usize)?;
        if aux != 0 {
            syscalls::syscall2(Sysno::arch_prctl, ARCH_SET_GS, aux as usize)?;
        }
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

// ---------------------------------------------------------------------------------
// Time: the syscalls that take the 64-bit `struct __kernel_timespec`, which on x86_64
// are the ordinary ones.

pub const SYS_TIMERFD_GETTIME64: Sysno = Sysno::timerfd_gettime;
pub const SYS_TIMERFD_SETTIME64: Sysno = Sysno::timerfd_settime;
pub const SYS_CLOCK_GETTIME64: Sysno = Sysno::clock_gettime;
pub const SYS_TIMER_SETTIME64: Sysno = Sysno::timer_settime;
pub const SYS_TIMER_GETTIME64: Sysno = Sysno::timer_gettime;
pub const SYS_FUTEX_TIME64: Sysno = Sysno::futex;

// ---------------------------------------------------------------------------------
// User and group ids (32 bits wide here).

pub const SYS_GETUID: Sysno = Sysno::getuid;
pub const SYS_GETEUID: Sysno = Sysno::geteuid;
pub const SYS_GETEGID: Sysno = Sysno::getegid;

// ---------------------------------------------------------------------------------
// glibc's rseq area and errno, found through weak references so that programs without
// glibc (or with an older one) simply have none.

core::arch::global_asm!(
    ".pushsection .text.mtcp_libc_syms,\"ax\",@progbits",
    ".weak __rseq_offset",
    ".weak __rseq_size",
    ".weak __errno_location",
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
    ".globl mtcp_arch_errno_fn",
    ".hidden mtcp_arch_errno_fn",
    "mtcp_arch_errno_fn:",
    "    mov rax, qword ptr [rip + __errno_location@GOTPCREL]",
    "    ret",
    ".popsection",
);

extern "C" {
    fn mtcp_arch_rseq_offset_ptr() -> *const isize;
    fn mtcp_arch_rseq_size_ptr() -> *const u32;
    fn mtcp_arch_errno_fn() -> Option<unsafe extern "C" fn() -> *mut i32>;
}

/// The addresses of glibc's `__rseq_offset` and `__rseq_size`, each null where the
/// program has no such symbol (an unresolved weak reference).
pub fn libc_rseq_symbols() -> (*const isize, *const u32) {
    // SAFETY: the helpers only read GOT slots.
    unsafe { (mtcp_arch_rseq_offset_ptr(), mtcp_arch_rseq_size_ptr()) }
}

/// libc's `__errno_location`, when the program has a libc.
pub fn libc_errno_location() -> Option<unsafe extern "C" fn() -> *mut i32> {
    // SAFETY: the helper only reads a GOT slot: glibc's function or null (an
    // unresolved weak reference).
    unsafe { mtcp_arch_errno_fn() }
}

/// The rseq signature that x86 kernels check before aborting a critical section.
pub const RSEQ_SIG: u32 = 0x5305_3053;

// ---------------------------------------------------------------------------------
// Threads: the clone system calls, whose child side must run without a stack frame.

/// The value CLONE_SETTLS wants for a thread whose TLS state is (base, aux): on x86_64
/// the fs base itself.
pub fn clone_tls_arg(base: u64, _aux: u64, _scratch: &mut [u32; 4]) -> usize {
    base as usize
}

/// `clone(flags, sp, ptid, ctid, tls)`. The child pops a function and its argument from
/// `sp` and calls it; it must never return. Returns the raw kernel result.
///
/// # Safety
/// `sp` must point at (f, arg) on writable memory the new thread may use as its stack.
#[unsafe(naked)]
pub unsafe extern "C" fn clone_raw(flags: usize, sp: usize, ptid: usize, ctid: usize, tls: usize) -> usize {
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

/// `clone3(args, size)`. The child starts at `stack + stack_size` of `args`, where it
/// pops a function and its argument; it must never return. Returns the raw kernel result.
///
/// # Safety
/// `args` is a valid `struct clone_args` whose stack top holds (f, arg).
#[unsafe(naked)]
pub unsafe extern "C" fn clone3_raw(args: usize, size: usize) -> usize {
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

// ---------------------------------------------------------------------------------
// Another thread's registers, as ptrace reads and writes them.

/// The kernel's `struct user_regs_struct` (arch/x86/include/asm/user_64.h), which
/// PTRACE_GETREGS fills and PTRACE_SETREGS takes.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct UserRegs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub bp: u64,
    pub bx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub ax: u64,
    pub cx: u64,
    pub dx: u64,
    pub si: u64,
    pub di: u64,
    pub orig_ax: u64,
    pub ip: u64,
    pub cs: u64,
    pub flags: u64,
    pub sp: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}
const_assert_eq!(size_of::<UserRegs>(), 27 * 8);
const_assert_eq!(offset_of!(UserRegs, orig_ax), 15 * 8);
const_assert_eq!(offset_of!(UserRegs, ip), 16 * 8);
const_assert_eq!(offset_of!(UserRegs, sp), 19 * 8);

impl UserRegs {
    /// The system call the thread is in, if it is in one: (number, return value so far).
    /// The kernel keeps `orig_ax` negative outside system calls.
    pub fn syscall(&self) -> Option<(usize, isize)> {
        let nr = self.orig_ax as i64;
        (nr >= 0).then_some((nr as usize, self.ax as i64 as isize))
    }

    /// Makes the thread execute its system call again when it next runs, as the
    /// kernel's own restart does: the number back in `ax`, the instruction pointer back
    /// over the 2-byte `syscall`. `orig_ax` becomes -1 so that the kernel applies no
    /// restart of its own on top.
    pub fn rewind_syscall(&mut self) {
        self.ax = self.orig_ax;
        self.ip -= 2;
        self.orig_ax = u64::MAX;
    }

    /// Whether the thread runs 32-bit code (the kernel's __USER32_CS), so that its call
    /// numbers are i386 ones.
    pub fn is_compat(&self) -> bool {
        self.cs == 0x23
    }
}

/// System calls that did nothing when they return EINTR, so that running them again
/// with the same arguments is what an uninterrupted thread would have done. `close`
/// and `connect` are the classic exceptions (they may have acted), so they are not here.
/// (32-bit threads use `i386_repeatable_after_eintr`.)
fn repeatable_after_eintr(nr: usize) -> bool {
    use Sysno::*;
    const LIST: &[Sysno] = &[
        read,
        write,
        readv,
        writev,
        pread64,
        pwrite64,
        preadv,
        pwritev,
        poll,
        ppoll,
        select,
        pselect6,
        epoll_wait,
        epoll_pwait,
        epoll_pwait2,
        nanosleep,
        clock_nanosleep,
        pause,
        rt_sigsuspend,
        rt_sigtimedwait,
        futex,
        futex_waitv,
        msgrcv,
        msgsnd,
        semop,
        semtimedop,
        mq_timedreceive,
        mq_timedsend,
        io_getevents,
        io_pgetevents,
        wait4,
        waitid,
        accept,
        accept4,
        recvfrom,
        recvmsg,
        recvmmsg,
        sendto,
        sendmsg,
        sendmmsg,
        flock,
    ];
    LIST.iter().any(|&s| s as usize == nr)
}

impl UserRegs {
    /// Whether the system call this thread is in (see `syscall`), having returned EINTR,
    /// did nothing and may simply run again (`repeatable_after_eintr`).
    pub fn repeatable_after_eintr(&self) -> bool {
        match self.syscall() {
            Some((nr, _)) if self.is_compat() => crate::i386_repeatable_after_eintr(nr, self.bx as u32),
            Some((nr, _)) => repeatable_after_eintr(nr),
            None => false,
        }
    }
}

// ---------------------------------------------------------------------------------
// glibc's pthread_mutex_t and pthread_rwlock_t (sysdeps/x86/nptl/bits/struct_mutex.h
// and struct_rwlock.h, x86_64 side): where a held lock names its holder's tid, so that a
// restart with new ids can hand it to the new tid.

#[repr(C)]
#[allow(dead_code)] // declared for its layout only
struct GlibcMutex {
    lock: i32,
    count: u32,
    owner: i32,
    nusers: u32,
    kind: i32,
    spins: i16,
    elision: i16,
    list: [usize; 2],
}
#[repr(C)]
#[allow(dead_code)] // declared for its layout only
struct GlibcRwlock {
    readers: u32,
    writers: u32,
    wrphase_futex: u32,
    writers_futex: u32,
    pad3: u32,
    pad4: u32,
    cur_writer: i32,
    shared: i32,
    rwelision: i8,
    pad1: [u8; 7],
    pad2: u64,
    flags: u32,
}
pub const GLIBC_MUTEX_SIZE: usize = 40;
pub const GLIBC_MUTEX_LOCK: usize = 0;
pub const GLIBC_MUTEX_COUNT: usize = 4;
pub const GLIBC_MUTEX_OWNER: usize = 8;
pub const GLIBC_MUTEX_NUSERS: usize = 12;
pub const GLIBC_MUTEX_KIND: usize = 16;
pub const GLIBC_RWLOCK_SIZE: usize = 56;
pub const GLIBC_RWLOCK_READERS: usize = 0;
pub const GLIBC_RWLOCK_WRITERS_FUTEX: usize = 12;
pub const GLIBC_RWLOCK_CUR_WRITER: usize = 24;
/// Both are aligned to this.
pub const GLIBC_LOCK_ALIGN: usize = 8;
const_assert_eq!(size_of::<GlibcMutex>(), GLIBC_MUTEX_SIZE);
const_assert_eq!(offset_of!(GlibcMutex, lock), GLIBC_MUTEX_LOCK);
const_assert_eq!(offset_of!(GlibcMutex, count), GLIBC_MUTEX_COUNT);
const_assert_eq!(offset_of!(GlibcMutex, owner), GLIBC_MUTEX_OWNER);
const_assert_eq!(offset_of!(GlibcMutex, nusers), GLIBC_MUTEX_NUSERS);
const_assert_eq!(offset_of!(GlibcMutex, kind), GLIBC_MUTEX_KIND);
const_assert_eq!(size_of::<GlibcRwlock>(), GLIBC_RWLOCK_SIZE);
const_assert_eq!(offset_of!(GlibcRwlock, readers), GLIBC_RWLOCK_READERS);
const_assert_eq!(offset_of!(GlibcRwlock, writers_futex), GLIBC_RWLOCK_WRITERS_FUTEX);
const_assert_eq!(offset_of!(GlibcRwlock, cur_writer), GLIBC_RWLOCK_CUR_WRITER);
