//! `_start` of mtcp_restart on i386: leave the kernel's stack at once for a static one
//! inside the restart window, so the kernel's stack can be unmapped later.

/// Defines `_start` in the invoking crate (the kernel, not Rust code, calls it): it
/// switches to the stack `$stack` of `$size` bytes and calls `$main(initial_sp)` with the
/// kernel's initial stack pointer (argc, argv, envp, auxv); `$main` must not return.
/// mtcp_restart is linked static and not position-independent, so the stack's address
/// is an absolute constant.
#[macro_export]
macro_rules! define_restart_start {
    ($main:path, $stack:path, $size:expr) => {
        /// # Safety
        /// Entered only by the kernel, at process start.
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C" fn _start() -> ! {
            core::arch::naked_asm!(
                "xor ebp, ebp",
                "mov eax, esp", // the kernel's initial stack pointer
                "mov esp, offset {stack} + {size}",
                "and esp, -16",
                "sub esp, 12", // 16-byte aligned at the call
                "push eax",    // main(initial_sp)
                "call {main}",
                "ud2",
                stack = sym $stack,
                size = const $size,
                main = sym $main,
            )
        }
    };
}
