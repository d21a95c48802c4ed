//! `_start` of mtcp_restart on i386: leave the kernel's stack at once for a static one
//! inside the restart window, so the kernel's stack can be unmapped later.

use core::arch::naked_asm;

/// Entered by the kernel with the initial stack (argc, argv, envp, auxv) at esp.
/// mtcp_restart is linked static and not position-independent (linker/restart-x86.ld),
/// so the stack's address is an absolute constant.
///
/// # Safety
/// Entered only by the kernel, at process start.
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn _start() -> ! {
    naked_asm!(
        "xor ebp, ebp",
        "mov eax, esp",                       // the kernel's initial stack pointer
        "mov esp, offset {stack} + {size}",
        "and esp, -16",
        "sub esp, 12",                        // 16-byte aligned at the call
        "push eax",                           // restart_main(initial_sp)
        "call {main}",
        "ud2",
        stack = sym crate::RESTART_STACK,
        size = const crate::RESTART_STACK_SIZE,
        main = sym crate::restart_main,
    )
}
