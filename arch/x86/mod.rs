//! i386 (32-bit programs on a 64-bit kernel, IA32 emulation): syscall shapes,
//! signal-frame layout, TLS, CPU features and the context switches that checkpoint and
//! restart are built from.
//!
//! Same public names as `arch/x86_64/mod.rs`. Syscalls go through `int 0x80` (the
//! `syscalls` crate does this for x86), never through the vDSO's `__kernel_vsyscall`,
//! which moves when a process is restored. Functions are cdecl: arguments on the stack,
//! eax (edx:eax for 64-bit values) returned, ebx, esi, edi and ebp callee-saved.

use core::arch::naked_asm;
use core::mem::{offset_of, size_of};
use static_assertions::const_assert_eq;
use syscalls::{Errno, Sysno};

mod mem;
mod start;

/// The ELF machine number, which images use as their architecture id.
pub const ELF_MACHINE: u32 = 3;
pub const PAGE_SIZE: usize = 4096;
/// One past the highest user address of an ia32 task on a 64-bit kernel
/// (IA32_PAGE_OFFSET = TASK_SIZE for compat tasks without ADDR_LIMIT_3GB).
pub const USER_TOP: u64 = 0xffff_e000;

// ---------------------------------------------------------------------------------
// Syscalls whose shape differs between the architectures.

/// `mmap2`: the offset is in pages on i386 (`offset` must be page-aligned; a byte offset
/// that is not gives EINVAL, as mmap would). Errors are returned as the kernel's errno.
///
/// # Safety
/// Mapping over existing memory (MAP_FIXED) can destroy anything the caller uses.
pub unsafe fn mmap(addr: usize, len: usize, prot: usize, flags: usize, fd: i32, offset: u64) -> Result<usize, Errno> {
    if !offset.is_multiple_of(PAGE_SIZE as u64) || offset / PAGE_SIZE as u64 > u32::MAX as u64 {
        return Err(Errno::EINVAL);
    }
    let pgoff = (offset / PAGE_SIZE as u64) as usize;
    // SAFETY: the caller's contract.
    unsafe { syscalls::syscall6(Sysno::mmap2, addr, len, prot, flags, fd as isize as usize, pgoff) }
}

/// `pread64`: the 64-bit offset is passed as two 32-bit registers (low, high). Errors as
/// the kernel's errno (EINTR is left to the caller).
///
/// # Safety
/// `buf` must be valid for writes of `len` bytes.
pub unsafe fn pread(fd: i32, buf: *mut u8, len: usize, offset: u64) -> Result<usize, Errno> {
    // SAFETY: the caller guarantees `buf` is writable for `len` bytes.
    unsafe {
        syscalls::syscall5(
            Sysno::pread64,
            fd as isize as usize,
            buf as usize,
            len,
            offset as u32 as usize,
            (offset >> 32) as usize,
        )
    }
}

/// `pwrite64`, offset split like `pread`; errors as the kernel's errno.
///
/// # Safety
/// `buf` must be valid for reads of `len` bytes.
pub unsafe fn pwrite(fd: i32, buf: *const u8, len: usize, offset: u64) -> Result<usize, Errno> {
    // SAFETY: the caller guarantees `buf` is readable for `len` bytes.
    unsafe {
        syscalls::syscall5(
            Sysno::pwrite64,
            fd as isize as usize,
            buf as usize,
            len,
            offset as u32 as usize,
            (offset >> 32) as usize,
        )
    }
}

/// `lseek(fd, offset, SEEK_SET)` with a 64-bit offset: `_llseek` (140) takes it as two
/// 32-bit halves (high, low) and writes the resulting position to a `loff_t`. Errors as
/// the kernel's errno.
pub fn seek_set(fd: i32, offset: u64) -> Result<u64, Errno> {
    let mut result: u64 = 0;
    // SAFETY: _llseek writes one 64-bit loff_t to `result`, which is valid.
    unsafe {
        syscalls::syscall5(
            Sysno::_llseek,
            fd as isize as usize,
            (offset >> 32) as usize,
            offset as u32 as usize,
            &mut result as *mut u64 as usize,
            0, /* SEEK_SET */
        )?;
    }
    Ok(result)
}

// ---------------------------------------------------------------------------------
// Signals.

/// Returns from a signal handler: the kernel restores every register (segment
/// registers included), the FPU state, the signal mask and the alternate stack from
/// the rt frame at the stack pointer. 173 is rt_sigreturn in the i386 table.
///
/// # Safety
/// Only the kernel calls this, as the SA_RESTORER, with a signal frame at the stack pointer.
#[unsafe(naked)]
pub unsafe extern "C" fn sigreturn_trampoline() {
    naked_asm!("mov eax, 173", "int 0x80", "ud2")
}

/// Returns from a handler installed without SA_SIGINFO: for those the ia32 kernel builds
/// the old, non-rt frame (signal number, then `struct sigcontext`), which only
/// `sigreturn` (119) undoes. The signal number is popped first, as glibc's restorer does.
///
/// # Safety
/// Only the kernel calls this, as the SA_RESTORER, with a non-rt frame at the stack pointer.
#[unsafe(naked)]
pub unsafe extern "C" fn old_sigreturn_trampoline() {
    naked_asm!("pop eax", "mov eax, 119", "int 0x80", "ud2")
}

/// The SA_RESTORER for a handler with these `sa_flags`: the frame the kernel builds
/// depends on SA_SIGINFO on i386.
pub fn signal_restorer(flags: usize) -> usize {
    const SA_SIGINFO: usize = 4;
    if flags & SA_SIGINFO != 0 {
        sigreturn_trampoline as *const () as usize
    } else {
        old_sigreturn_trampoline as *const () as usize
    }
}

/// `struct ucontext_ia32` as the kernel lays it out in the rt signal frame
/// (arch/x86/include/asm/ia32.h, sigframe.h): uc_flags, uc_link, compat_stack_t
/// {ss_sp, ss_flags, ss_size}, `struct sigcontext_32` (uapi/asm/sigcontext.h: gs, fs,
/// es, ds, edi, esi, ebp, esp, ebx, edx, ecx, eax, trapno, err, eip, cs, flags,
/// sp_at_signal, ss, fpstate, oldmask, cr2: 22 slots of 4 bytes), uc_sigmask.
pub mod uc {
    pub const STACK_SP: usize = 8;
    pub const STACK_FLAGS: usize = 12;
    pub const STACK_SIZE: usize = 16;
    pub const MCONTEXT: usize = 20;
    pub const GS: usize = MCONTEXT;
    pub const ESP: usize = MCONTEXT + 7 * 4;
    pub const EIP: usize = MCONTEXT + 14 * 4;
    pub const FPSTATE: usize = MCONTEXT + 19 * 4;
    pub const SIGMASK: usize = MCONTEXT + 22 * 4;
    /// The x86_64 layer's names for the stack and instruction pointers.
    pub const RSP: usize = ESP;
    pub const RIP: usize = EIP;
}

/// The kernel's structures, written out to check the offsets above against them.
#[repr(C)]
struct CompatStack {
    ss_sp: u32,
    ss_flags: i32,
    ss_size: u32,
}

#[repr(C)]
struct Sigcontext32 {
    gs: u32,
    fs: u32,
    es: u32,
    ds: u32,
    di: u32,
    si: u32,
    bp: u32,
    sp: u32,
    bx: u32,
    dx: u32,
    cx: u32,
    ax: u32,
    trapno: u32,
    err: u32,
    ip: u32,
    cs: u32,
    flags: u32,
    sp_at_signal: u32,
    ss: u32,
    fpstate: u32,
    oldmask: u32,
    cr2: u32,
}

#[repr(C)]
struct UcontextIa32 {
    uc_flags: u32,
    uc_link: u32,
    uc_stack: CompatStack,
    uc_mcontext: Sigcontext32,
    uc_sigmask: u64,
}
const_assert_eq!(size_of::<CompatStack>(), 12);
const_assert_eq!(size_of::<Sigcontext32>(), 88);
const_assert_eq!(size_of::<UcontextIa32>(), 116);
const_assert_eq!(
    offset_of!(UcontextIa32, uc_stack) + offset_of!(CompatStack, ss_sp),
    uc::STACK_SP
);
const_assert_eq!(
    offset_of!(UcontextIa32, uc_stack) + offset_of!(CompatStack, ss_flags),
    uc::STACK_FLAGS
);
const_assert_eq!(
    offset_of!(UcontextIa32, uc_stack) + offset_of!(CompatStack, ss_size),
    uc::STACK_SIZE
);
const_assert_eq!(offset_of!(UcontextIa32, uc_mcontext), uc::MCONTEXT);
const_assert_eq!(
    offset_of!(UcontextIa32, uc_mcontext) + offset_of!(Sigcontext32, gs),
    uc::GS
);
const_assert_eq!(
    offset_of!(UcontextIa32, uc_mcontext) + offset_of!(Sigcontext32, sp),
    uc::ESP
);
const_assert_eq!(
    offset_of!(UcontextIa32, uc_mcontext) + offset_of!(Sigcontext32, ip),
    uc::EIP
);
const_assert_eq!(
    offset_of!(UcontextIa32, uc_mcontext) + offset_of!(Sigcontext32, fpstate),
    uc::FPSTATE
);
const_assert_eq!(offset_of!(UcontextIa32, uc_sigmask), uc::SIGMASK);
const_assert_eq!(uc::SIGMASK, 108);

/// What the handler's frame says about the interrupted thread.
pub struct FrameView {
    pub sp: u64,
    pub ip: u64,
    pub sigmask: u64,
}

/// # Safety
/// `uc` must be the `ucontext_t` pointer the kernel passed to an SA_SIGINFO handler.
pub unsafe fn frame_view(uc: *const u8) -> FrameView {
    // SAFETY: the caller passes the kernel's ucontext, which holds every offset read
    // (here and below).
    let read32 = |off: usize| unsafe { core::ptr::read_unaligned(uc.add(off) as *const u32) } as u64;
    FrameView {
        sp: read32(uc::ESP),
        ip: read32(uc::EIP),
        // SAFETY: as above.
        sigmask: unsafe { core::ptr::read_unaligned(uc.add(uc::SIGMASK) as *const u64) },
    }
}

/// `compat_siginfo_t` fields: si_signo, si_errno, si_code, then the union at 12; for
/// kill/sigqueue (and timers) `_rt` = {pid, uid, sigval}: pid at 12, uid at 16, value at 20.
pub const SIGINFO_CODE: usize = 8;
pub const SIGINFO_PID: usize = 12;
pub const SIGINFO_UID: usize = 16;
pub const SIGINFO_VALUE: usize = 20;

/// The head of `compat_siginfo_t` for kill/sigqueue, to check the offsets above.
#[repr(C)]
#[allow(dead_code)] // declared only for the offset checks below
struct SiginfoRt {
    signo: i32,
    errno: i32,
    code: i32,
    pid: i32,
    uid: u32,
    value: u32,
}
const_assert_eq!(offset_of!(SiginfoRt, code), SIGINFO_CODE);
const_assert_eq!(offset_of!(SiginfoRt, pid), SIGINFO_PID);
const_assert_eq!(offset_of!(SiginfoRt, uid), SIGINFO_UID);
const_assert_eq!(offset_of!(SiginfoRt, value), SIGINFO_VALUE);

// ---------------------------------------------------------------------------------
// Thread-local storage: the thread pointer is the base of the GDT TLS entry that %gs
// selects (glibc: entry 12 on a 64-bit kernel).

/// The kernel's `struct user_desc` (uapi/asm/ldt.h): entry_number, base_addr, limit,
/// then the bit fields seg_32bit:1, contents:2, read_exec_only:1, limit_in_pages:1,
/// seg_not_present:1, useable:1, lm:1.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct UserDesc {
    entry_number: u32,
    base_addr: u32,
    limit: u32,
    flags: u32,
}
const_assert_eq!(size_of::<UserDesc>(), 16);
const_assert_eq!(offset_of!(UserDesc, base_addr), 4);
const_assert_eq!(offset_of!(UserDesc, limit), 8);
const_assert_eq!(offset_of!(UserDesc, flags), 12);

const UD_SEG_32BIT: u32 = 1 << 0;
const UD_LIMIT_IN_PAGES: u32 = 1 << 4;
const UD_USEABLE: u32 = 1 << 6;

impl UserDesc {
    /// A flat 4 GiB data segment at `base`, as glibc installs for its thread pointer.
    fn tls(entry: u32, base: u32) -> UserDesc {
        UserDesc {
            entry_number: entry,
            base_addr: base,
            limit: 0xfffff,
            flags: UD_SEG_32BIT | UD_LIMIT_IN_PAGES | UD_USEABLE,
        }
    }

    fn as_words(&self) -> [u32; 4] {
        [self.entry_number, self.base_addr, self.limit, self.flags]
    }
}

fn read_gs() -> u32 {
    let gs: u32;
    // SAFETY: reading a segment register has no side effects; `mov r32, sreg`
    // zero-extends the selector.
    unsafe { core::arch::asm!("mov {0:e}, gs", out(reg) gs, options(nomem, nostack, preserves_flags)) };
    gs
}

/// The calling thread's TLS state: (base of the GDT entry behind %gs, its entry
/// number); (0, 0) when %gs selects no GDT entry (a libc-free program).
pub fn read_tls() -> (u64, u64) {
    let gs = read_gs();
    if gs & 4 != 0 || gs >> 3 == 0 {
        return (0, 0); // null selector, or an LDT selector: not a TLS entry
    }
    let mut d = UserDesc {
        entry_number: gs >> 3,
        ..Default::default()
    };
    // SAFETY: get_thread_area reads entry_number and fills the 16-byte struct we pass.
    match unsafe { syscalls::syscall1(Sysno::get_thread_area, &mut d as *mut UserDesc as usize) } {
        Ok(_) => (d.base_addr as u64, (gs >> 3) as u64),
        Err(_) => (0, 0),
    }
}

/// Installs GDT TLS entry `aux` with base `base` for the calling thread and loads %gs
/// with its selector. `aux == 0` means the thread had no TLS: nothing to do.
///
/// # Safety
/// Code that runs afterwards on this thread trusts the new thread pointer.
pub unsafe fn write_tls(base: u64, aux: u64) -> Result<(), Errno> {
    if aux == 0 {
        return Ok(());
    }
    let mut d = UserDesc::tls(aux as u32, base as u32);
    // SAFETY: set_thread_area reads and updates the 16-byte struct we pass.
    unsafe { syscalls::syscall1(Sysno::set_thread_area, &mut d as *mut UserDesc as usize)? };
    let sel = ((aux as u32) << 3) | 3; // GDT, RPL 3
                                       // SAFETY: the entry was just installed for this thread, so the selector is valid; the
                                       // caller vouches for the thread pointer it sets.
    unsafe { core::arch::asm!("mov gs, {0:e}", in(reg) sel, options(nomem, nostack, preserves_flags)) };
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
    // cpuid exists on every CPU the i686 target runs on (and every x86_64 one).
    let r = core::arch::x86::__cpuid_count(leaf, sub);
    (r.ecx, r.ebx)
}

// ---------------------------------------------------------------------------------
// Context switches.

/// Callee-saved state at a `save_and_call`; `resume` makes that call return again.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct JumpContext {
    pub ebx: u32,
    pub esi: u32,
    pub edi: u32,
    pub ebp: u32,
    pub sp: u32,
    pub ip: u32,
    pub mxcsr: u32,
    pub fpucw: u32,
}
const_assert_eq!(size_of::<JumpContext>(), 32);
const_assert_eq!(offset_of!(JumpContext, sp), 16);
const_assert_eq!(offset_of!(JumpContext, ip), 20);
const_assert_eq!(offset_of!(JumpContext, mxcsr), 24);
const_assert_eq!(offset_of!(JumpContext, fpucw), 28);

impl JumpContext {
    pub const fn zeroed() -> JumpContext {
        JumpContext {
            ebx: 0,
            esi: 0,
            edi: 0,
            ebp: 0,
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
/// The tail call reuses our incoming argument area (which cdecl gives the callee): the
/// slot that held `ctx` becomes `f`'s argument, and `f` returns to our return address.
///
/// # Safety
/// `ctx` must be writable. After a `resume`, the frames above the call must hold the
/// bytes they held when it was made (true when the stack was saved and restored).
#[unsafe(naked)]
pub unsafe extern "C" fn save_and_call(ctx: *mut JumpContext, f: extern "C" fn(usize) -> usize, arg: usize) -> usize {
    naked_asm!(
        "mov eax, [esp + 4]", // ctx
        "mov [eax + 0], ebx",
        "mov [eax + 4], esi",
        "mov [eax + 8], edi",
        "mov [eax + 12], ebp",
        "lea ecx, [esp + 4]", // the caller's stack pointer after we return
        "mov [eax + 16], ecx",
        "mov ecx, [esp]", // our return address
        "mov [eax + 20], ecx",
        "stmxcsr [eax + 24]",
        "fnstcw [eax + 28]",
        "mov ecx, [esp + 12]", // arg
        "mov [esp + 4], ecx",  // becomes f's first (only) argument
        "mov eax, [esp + 8]",  // f
        "jmp eax",             // f returns straight to our caller
    )
}

/// Returns `value` from the `save_and_call` that filled `ctx`.
///
/// # Safety
/// See `save_and_call`; the stack `ctx.sp` points into must be intact.
#[unsafe(naked)]
pub unsafe extern "C" fn resume(ctx: *const JumpContext, value: usize) -> ! {
    naked_asm!(
        "mov ecx, [esp + 4]", // ctx
        "mov eax, [esp + 8]", // value
        "mov ebx, [ecx + 0]",
        "mov esi, [ecx + 4]",
        "mov edi, [ecx + 8]",
        "mov ebp, [ecx + 12]",
        "ldmxcsr [ecx + 24]",
        "fldcw [ecx + 28]",
        "mov esp, [ecx + 16]",
        "jmp dword ptr [ecx + 20]",
    )
}

/// Switches to the stack ending at `stack_top` and calls `f(arg)`, which must not return.
///
/// # Safety
/// `stack_top` must be the 16-byte aligned end of writable memory that nothing else uses.
#[unsafe(naked)]
pub unsafe extern "C" fn switch_stack(stack_top: usize, f: unsafe extern "C" fn(usize) -> !, arg: usize) -> ! {
    naked_asm!(
        "mov eax, [esp + 4]",  // stack_top
        "mov ecx, [esp + 8]",  // f
        "mov edx, [esp + 12]", // arg
        "mov esp, eax",
        "and esp, -16",
        "xor ebp, ebp",
        "sub esp, 12", // keep esp 16-byte aligned at the call
        "push edx",
        "call ecx",
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
        "push ebp",
        "mov ebp, esp",
        "mov eax, [ebp + 8]",  // stack_top
        "mov ecx, [ebp + 12]", // f
        "mov edx, [ebp + 16]", // arg
        "mov esp, eax",
        "and esp, -16",
        "sub esp, 12",
        "push edx",
        "call ecx", // f preserves ebp
        "mov esp, ebp",
        "pop ebp",
        "ret",
    )
}

// ---------------------------------------------------------------------------------
// Time: the syscalls that take the 64-bit `struct __kernel_timespec` (the time64
// family; the old ones take 32-bit fields on i386).

pub const SYS_TIMERFD_GETTIME64: Sysno = Sysno::timerfd_gettime64;
pub const SYS_TIMERFD_SETTIME64: Sysno = Sysno::timerfd_settime64;
pub const SYS_CLOCK_GETTIME64: Sysno = Sysno::clock_gettime64;
pub const SYS_TIMER_SETTIME64: Sysno = Sysno::timer_settime64;
pub const SYS_TIMER_GETTIME64: Sysno = Sysno::timer_gettime64;
pub const SYS_FUTEX_TIME64: Sysno = Sysno::futex_time64;

// ---------------------------------------------------------------------------------
// User and group ids: i386's original calls take and return 16-bit ids (a uid above
// 65535 reads as 65534); the *32 ones are the whole id.

pub const SYS_GETUID: Sysno = Sysno::getuid32;
pub const SYS_GETEUID: Sysno = Sysno::geteuid32;
pub const SYS_GETEGID: Sysno = Sysno::getegid32;

// ---------------------------------------------------------------------------------
// glibc's rseq area and errno, found through weak references so that programs without
// glibc (or with an older one) simply have none. i386 has no pc-relative data access:
// the helpers find the GOT with call/pop and read the symbol's GOT slot (0 for an
// unresolved weak symbol). This works in the PIC cdylib, in a static program that links
// libmtcp.a (the linker builds a GOT for it) and in mtcp_restart. (AT&T syntax: LLVM's
// Intel parser does not take `.` in the GOTPC expression.)

core::arch::global_asm!(
    ".pushsection .text.mtcp_rseq_syms,\"ax\",@progbits",
    ".weak __rseq_offset",
    ".weak __rseq_size",
    ".weak __errno_location",
    ".globl mtcp_arch_rseq_offset_ptr",
    ".hidden mtcp_arch_rseq_offset_ptr",
    ".type mtcp_arch_rseq_offset_ptr,@function",
    "mtcp_arch_rseq_offset_ptr:",
    "    call 1f",
    "1:  popl %eax",
    "    addl $_GLOBAL_OFFSET_TABLE_ + (. - 1b), %eax", // R_386_GOTPC: eax = GOT
    "    movl __rseq_offset@GOT(%eax), %eax",
    "    ret",
    ".size mtcp_arch_rseq_offset_ptr, . - mtcp_arch_rseq_offset_ptr",
    ".globl mtcp_arch_rseq_size_ptr",
    ".hidden mtcp_arch_rseq_size_ptr",
    ".type mtcp_arch_rseq_size_ptr,@function",
    "mtcp_arch_rseq_size_ptr:",
    "    call 2f",
    "2:  popl %eax",
    "    addl $_GLOBAL_OFFSET_TABLE_ + (. - 2b), %eax", // R_386_GOTPC: eax = GOT
    "    movl __rseq_size@GOT(%eax), %eax",
    "    ret",
    ".size mtcp_arch_rseq_size_ptr, . - mtcp_arch_rseq_size_ptr",
    ".globl mtcp_arch_errno_fn",
    ".hidden mtcp_arch_errno_fn",
    ".type mtcp_arch_errno_fn,@function",
    "mtcp_arch_errno_fn:",
    "    call 3f",
    "3:  popl %eax",
    "    addl $_GLOBAL_OFFSET_TABLE_ + (. - 3b), %eax", // R_386_GOTPC: eax = GOT
    "    movl __errno_location@GOT(%eax), %eax",
    "    ret",
    ".size mtcp_arch_errno_fn, . - mtcp_arch_errno_fn",
    ".popsection",
    options(att_syntax)
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

/// The rseq signature that x86 kernels (i386 included) check before aborting a critical
/// section.
pub const RSEQ_SIG: u32 = 0x5305_3053;

// ---------------------------------------------------------------------------------
// Threads: the clone system calls, whose child side must run without a stack frame.

/// The value CLONE_SETTLS wants for a thread whose TLS state is (base, entry): on i386
/// a pointer to a `struct user_desc`, built in `scratch` (which must outlive the clone).
/// A thread without TLS (entry 0) gets glibc's TLS entry (12) cleared.
pub fn clone_tls_arg(base: u64, aux: u64, scratch: &mut [u32; 4]) -> usize {
    const GDT_ENTRY_TLS_MIN: u32 = 12; // on a 64-bit kernel
    let d = if aux != 0 {
        UserDesc::tls(aux as u32, base as u32)
    } else {
        // All-zero fields (LDT_zero in the kernel) clear the entry.
        UserDesc {
            entry_number: GDT_ENTRY_TLS_MIN,
            ..Default::default()
        }
    };
    *scratch = d.as_words();
    scratch.as_ptr() as usize
}

/// i386 clone takes (flags, newsp, parent_tid, tls, child_tid) in ebx, ecx, edx, esi,
/// edi; 120 is clone in the i386 table.
///
/// The child pops a function and its argument from `sp` and calls it; it must never
/// return. Returns the raw kernel result.
///
/// # Safety
/// `sp` must point at (f, arg) on writable memory the new thread may use as its stack;
/// `tls` is what `clone_tls_arg` returned, still valid.
#[unsafe(naked)]
pub unsafe extern "C" fn clone_raw(flags: usize, sp: usize, ptid: usize, ctid: usize, tls: usize) -> usize {
    naked_asm!(
        "push ebx",
        "push esi",
        "push edi",
        "mov ebx, [esp + 16]", // flags
        "mov ecx, [esp + 20]", // sp
        "mov edx, [esp + 24]", // ptid
        "mov edi, [esp + 28]", // ctid
        "mov esi, [esp + 32]", // tls (struct user_desc *)
        "mov eax, 120",
        "int 0x80",
        "test eax, eax",
        "jnz 1f",
        // Child: the new stack holds f, arg.
        "xor ebp, ebp",
        "pop eax",
        "pop ecx",
        "and esp, -16",
        "sub esp, 12",
        "push ecx",
        "call eax",
        "ud2",
        "1: pop edi",
        "pop esi",
        "pop ebx",
        "ret",
    )
}

/// clone3(args, size) in ebx, ecx; 435 is clone3 in the i386 table.
///
/// The child starts at `stack + stack_size` of `args`, where it pops a function and its
/// argument; it must never return. Returns the raw kernel result.
///
/// # Safety
/// `args` is a valid `struct clone_args` whose stack top holds (f, arg).
#[unsafe(naked)]
pub unsafe extern "C" fn clone3_raw(args: usize, size: usize) -> usize {
    naked_asm!(
        "push ebx",
        "mov ebx, [esp + 8]",  // args
        "mov ecx, [esp + 12]", // size
        "mov eax, 435",
        "int 0x80",
        "test eax, eax",
        "jnz 1f",
        // Child: its stack pointer is stack + stack_size, where f and arg wait.
        "xor ebp, ebp",
        "pop eax",
        "pop ecx",
        "and esp, -16",
        "sub esp, 12",
        "push ecx",
        "call eax",
        "ud2",
        "1: pop ebx",
        "ret",
    )
}

// ---------------------------------------------------------------------------------
// Another thread's registers, as ptrace reads and writes them.

/// The kernel's `struct user_regs_struct` for i386 tasks (arch/x86/include/asm/
/// user_32.h), which PTRACE_GETREGS fills and PTRACE_SETREGS takes.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct UserRegs {
    pub bx: u32,
    pub cx: u32,
    pub dx: u32,
    pub si: u32,
    pub di: u32,
    pub bp: u32,
    pub ax: u32,
    pub ds: u32,
    pub es: u32,
    pub fs: u32,
    pub gs: u32,
    pub orig_ax: u32,
    pub ip: u32,
    pub cs: u32,
    pub flags: u32,
    pub sp: u32,
    pub ss: u32,
}
const_assert_eq!(size_of::<UserRegs>(), 17 * 4);
const_assert_eq!(offset_of!(UserRegs, orig_ax), 11 * 4);
const_assert_eq!(offset_of!(UserRegs, ip), 12 * 4);
const_assert_eq!(offset_of!(UserRegs, sp), 15 * 4);

impl UserRegs {
    /// The system call the thread is in, if it is in one: (number, return value so far).
    /// The kernel keeps `orig_ax` negative outside system calls.
    pub fn syscall(&self) -> Option<(usize, isize)> {
        let nr = self.orig_ax as i32;
        (nr >= 0).then_some((nr as usize, self.ax as i32 as isize))
    }

    /// Makes the thread execute its system call again when it next runs, as the
    /// kernel's own restart does: the number back in `eax`, the instruction pointer back
    /// over the 2-byte `int $0x80` (the vDSO's `sysenter` path returns just after one,
    /// for exactly this). `orig_ax` becomes -1 so that the kernel applies no restart of
    /// its own on top.
    pub fn rewind_syscall(&mut self) {
        self.ax = self.orig_ax;
        self.ip -= 2;
        self.orig_ax = u32::MAX;
    }

    /// Whether the system call this thread is in (see `syscall`), having returned EINTR,
    /// did nothing and may simply run again (`i386_repeatable_after_eintr`).
    pub fn repeatable_after_eintr(&self) -> bool {
        self.syscall()
            .is_some_and(|(nr, _)| crate::i386_repeatable_after_eintr(nr, self.bx))
    }
}

// ---------------------------------------------------------------------------------
// glibc's pthread_mutex_t and pthread_rwlock_t (sysdeps/x86/nptl/bits/struct_mutex.h
// and struct_rwlock.h, i386 side: `__kind` before `__nusers`, the rwlock's flags before
// its writer): where a held lock names its holder's tid, so that a restart with new ids
// can hand it to the new tid.

#[repr(C)]
#[allow(dead_code)] // declared for its layout only
struct GlibcMutex {
    lock: i32,
    count: u32,
    owner: i32,
    kind: i32,
    nusers: u32,
    list_or_elision: u32,
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
    flags: u8,
    shared: u8,
    rwelision: i8,
    pad2: u8,
    cur_writer: i32,
}
pub const GLIBC_MUTEX_SIZE: usize = 24;
pub const GLIBC_MUTEX_LOCK: usize = 0;
pub const GLIBC_MUTEX_COUNT: usize = 4;
pub const GLIBC_MUTEX_OWNER: usize = 8;
pub const GLIBC_MUTEX_NUSERS: usize = 16;
pub const GLIBC_MUTEX_KIND: usize = 12;
pub const GLIBC_RWLOCK_SIZE: usize = 32;
pub const GLIBC_RWLOCK_READERS: usize = 0;
pub const GLIBC_RWLOCK_WRITERS_FUTEX: usize = 12;
pub const GLIBC_RWLOCK_CUR_WRITER: usize = 28;
/// Both are aligned to this.
pub const GLIBC_LOCK_ALIGN: usize = 4;
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
