//! `_start` of mtcp_restart: leave the kernel's stack at once for a static one inside
//! the restart window, so the kernel's stack can be unmapped later.

/// Defines `_start` in the invoking crate (the kernel, not Rust code, calls it): it
/// switches to the stack `$stack` of `$size` bytes and calls `$main(initial_sp)` with the
/// kernel's initial stack pointer (argc, argv, envp, auxv); `$main` must not return.
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
                "mov rdi, rsp", // main(initial_sp)
                "lea rsp, [rip + {stack} + {size}]",
                "and rsp, -16",
                "call {main}",
                "ud2",
                stack = sym $stack,
                size = const $size,
                main = sym $main,
            )
        }
    };
}
