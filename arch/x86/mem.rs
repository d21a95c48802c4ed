//! memcpy, memmove, memset, memcmp, bcmp and strlen for code built without libc (i386,
//! cdecl: arguments on the stack; esi, edi, ebx and ebp belong to the caller).
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
            // void *memcpy(void *dst, const void *src, size_t n)
            ".weak memcpy",
            ".hidden memcpy",
            ".type memcpy,@function",
            "memcpy:",
            "    push edi",
            "    push esi",
            "    mov edi, [esp + 12]",
            "    mov esi, [esp + 16]",
            "    mov ecx, [esp + 20]",
            "    mov eax, edi",
            "    rep movsb",
            "    pop esi",
            "    pop edi",
            "    ret",
            ".size memcpy, . - memcpy",
            // void *memmove(void *dst, const void *src, size_t n)
            ".weak memmove",
            ".hidden memmove",
            ".type memmove,@function",
            "memmove:",
            "    push edi",
            "    push esi",
            "    mov edi, [esp + 12]",
            "    mov esi, [esp + 16]",
            "    mov ecx, [esp + 20]",
            "    mov eax, edi",
            "    cmp edi, esi",
            "    jbe 1f", // destination below source: copy forwards
            "    lea edx, [esi + ecx]",
            "    cmp edi, edx",
            "    jae 1f", // no overlap: copy forwards
            "    lea esi, [esi + ecx - 1]",
            "    lea edi, [edi + ecx - 1]",
            "    std",
            "    rep movsb",
            "    cld",
            "    jmp 2f",
            "1:  rep movsb",
            "2:  pop esi",
            "    pop edi",
            "    ret",
            ".size memmove, . - memmove",
            // void *memset(void *dst, int c, size_t n)
            ".weak memset",
            ".hidden memset",
            ".type memset,@function",
            "memset:",
            "    push edi",
            "    mov edi, [esp + 8]",
            "    mov eax, [esp + 12]",
            "    mov ecx, [esp + 16]",
            "    mov edx, edi",
            "    rep stosb",
            "    mov eax, edx",
            "    pop edi",
            "    ret",
            ".size memset, . - memset",
            // int memcmp(const void *a, const void *b, size_t n); bcmp likewise
            ".weak memcmp",
            ".hidden memcmp",
            ".type memcmp,@function",
            ".weak bcmp",
            ".hidden bcmp",
            ".type bcmp,@function",
            "memcmp:",
            "bcmp:",
            "    push edi",
            "    push esi",
            "    mov esi, [esp + 12]", // a
            "    mov edi, [esp + 16]", // b
            "    mov ecx, [esp + 20]",
            "    xor eax, eax",
            "    test ecx, ecx",
            "    jz 3f",
            "    repe cmpsb",
            "    je 3f",
            "    movzx eax, byte ptr [esi - 1]",
            "    movzx ecx, byte ptr [edi - 1]",
            "    sub eax, ecx",
            "3:  pop esi",
            "    pop edi",
            "    ret",
            ".size memcmp, . - memcmp",
            ".size bcmp, . - bcmp",
            // size_t strlen(const char *s)
            ".weak strlen",
            ".hidden strlen",
            ".type strlen,@function",
            "strlen:",
            "    mov edx, [esp + 4]",
            "    mov eax, edx",
            "4:  cmp byte ptr [eax], 0",
            "    je 5f",
            "    inc eax",
            "    jmp 4b",
            "5:  sub eax, edx",
            "    ret",
            ".size strlen, . - strlen",
            ".popsection",
        );
    };
}
