//! `_start` of mtcp_restart: leave the kernel's stack at once for a static one inside
//! the restart window, so the kernel's stack can be unmapped later.

use core::arch::naked_asm;

/// Entered by the kernel with the initial stack (argc, argv, envp, auxv) at rsp.
///
/// # Safety
/// Entered only by the kernel, at process start.
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn _start() -> ! {
    naked_asm!(
        "xor ebp, ebp",
        "mov rdi, rsp",                                   // restart_main(initial_sp)
        "lea rsp, [rip + {stack} + {size}]",
        "and rsp, -16",
        "call {main}",
        "ud2",
        stack = sym crate::RESTART_STACK,
        size = const crate::RESTART_STACK_SIZE,
        main = sym crate::restart_main,
    )
}
