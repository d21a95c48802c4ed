//! memcpy, memmove, memset, memcmp, bcmp and strlen for code built without libc.
//!
//! They are weak and hidden: inside libmtcp.so they bind locally and are never exported
//! (so the runtime never calls through a lazily bound PLT entry during restore); in a
//! static program any libc definition that gets linked wins over them.
//!
//! They are defined by a macro that the runtime and mtcp_restart invoke, so the symbols
//! sit in each final artifact's own object code: the linker and the compiler reach
//! them, never Rust code, so nothing would otherwise pull them out of a dependency.

/// Defines the functions above in the invoking crate.
#[macro_export]
macro_rules! define_mem_functions {
    () => {
        core::arch::global_asm!(
            ".pushsection .text.mtcp_mem,\"ax\",@progbits",
            ".weak memcpy",
            ".hidden memcpy",
            ".type memcpy,@function",
            "memcpy:",
            "    mov rax, rdi",
            "    mov rcx, rdx",
            "    rep movsb",
            "    ret",
            ".size memcpy, . - memcpy",
            ".weak memmove",
            ".hidden memmove",
            ".type memmove,@function",
            "memmove:",
            "    mov rax, rdi",
            "    mov rcx, rdx",
            "    cmp rdi, rsi",
            "    jbe 1f", // destination below source: copy forwards
            "    lea r8, [rsi + rdx]",
            "    cmp rdi, r8",
            "    jae 1f", // no overlap: copy forwards
            "    lea rsi, [rsi + rdx - 1]",
            "    lea rdi, [rdi + rdx - 1]",
            "    std",
            "    rep movsb",
            "    cld",
            "    ret",
            "1:  rep movsb",
            "    ret",
            ".size memmove, . - memmove",
            ".weak memset",
            ".hidden memset",
            ".type memset,@function",
            "memset:",
            "    mov r8, rdi",
            "    mov eax, esi",
            "    mov rcx, rdx",
            "    rep stosb",
            "    mov rax, r8",
            "    ret",
            ".size memset, . - memset",
            ".weak memcmp",
            ".hidden memcmp",
            ".type memcmp,@function",
            ".weak bcmp",
            ".hidden bcmp",
            ".type bcmp,@function",
            "memcmp:",
            "bcmp:",
            "    xor eax, eax",
            "    test rdx, rdx",
            "    jz 2f",
            "    mov rcx, rdx",
            "    repe cmpsb",
            "    je 2f",
            "    movzx eax, byte ptr [rdi - 1]",
            "    movzx ecx, byte ptr [rsi - 1]",
            "    sub eax, ecx",
            "2:  ret",
            ".size memcmp, . - memcmp",
            ".size bcmp, . - bcmp",
            ".weak strlen",
            ".hidden strlen",
            ".type strlen,@function",
            "strlen:",
            "    mov rax, rdi",
            "3:  cmp byte ptr [rax], 0",
            "    je 4f",
            "    inc rax",
            "    jmp 3b",
            "4:  sub rax, rdi",
            "    ret",
            ".size strlen, . - strlen",
            ".popsection",
        );
    };
}
