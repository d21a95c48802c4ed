/* nolibc32.c: the i386 counterpart of nolibc.c, a counter without any libc, linked
 * statically with the 32-bit libmtcp.a:
 *
 *   gcc -m32 -nostdlib -static -fno-stack-protector -O1 nolibc32.c \
 *       -Wl,--whole-archive target/i686-unknown-linux-gnu/release/libmtcp.a -Wl,--no-whole-archive
 *
 * What it does is in nolibc.h, shared with nolibc.c; here is what is i386's own: the
 * syscall numbers, raw `int $0x80` syscalls for write/nanosleep/brk/getpid/exit_group,
 * and _start.
 */
#define SYS_write 4
#define SYS_getpid 20
#define SYS_brk 45
#define SYS_nanosleep 162
#define SYS_exit_group 252

/* ebx is the PIC register of i386 code: save it by hand instead of naming it. */
static long sys1(long n, long a) {
    long r;
    __asm__ volatile("xchg %%ebx, %%edi\n\t"
                     "int $0x80\n\t"
                     "xchg %%ebx, %%edi"
                     : "=a"(r)
                     : "a"(n), "D"(a)
                     : "memory");
    return r;
}
static long sys2(long n, long a, long b) {
    long r;
    __asm__ volatile("xchg %%ebx, %%edi\n\t"
                     "int $0x80\n\t"
                     "xchg %%ebx, %%edi"
                     : "=a"(r)
                     : "a"(n), "D"(a), "c"(b)
                     : "memory");
    return r;
}
static long sys3(long n, long a, long b, long c) {
    long r;
    __asm__ volatile("xchg %%ebx, %%edi\n\t"
                     "int $0x80\n\t"
                     "xchg %%ebx, %%edi"
                     : "=a"(r)
                     : "a"(n), "D"(a), "c"(b), "d"(c)
                     : "memory");
    return r;
}

#include "nolibc.h"

/* The kernel enters with %esp at argc. cmain(sp) is called with the stack 16-byte
 * aligned at the call, as the i386 System V ABI used by gcc expects. */
__asm__(".text\n"
        ".global _start\n"
        ".type _start,@function\n"
        "_start:\n"
        "    xor %ebp, %ebp\n"
        "    mov %esp, %eax\n"
        "    and $-16, %esp\n"
        "    sub $12, %esp\n"
        "    push %eax\n"
        "    call cmain\n"
        "    hlt\n");
