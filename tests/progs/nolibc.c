/* nolibc.c: a counter without any libc, linked statically with libmtcp.a:
 *
 *   gcc -nostdlib -static -fno-stack-protector -O1 nolibc.c \
 *       -Wl,--whole-archive libmtcp.a -Wl,--no-whole-archive
 *
 * What it does is in nolibc.h, shared with its i386 counterpart nolibc32.c; here is what
 * is x86_64's own: the syscall numbers, raw `syscall`s for write/nanosleep/brk/getpid/
 * exit_group, and _start.
 */
#define SYS_write 1
#define SYS_brk 12
#define SYS_getpid 39
#define SYS_nanosleep 35
#define SYS_exit_group 231

static long sys1(long n, long a) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a) : "rcx", "r11", "memory");
    return r;
}
static long sys2(long n, long a, long b) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b) : "rcx", "r11", "memory");
    return r;
}
static long sys3(long n, long a, long b, long c) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

#include "nolibc.h"

__asm__(".text\n"
        ".global _start\n"
        ".type _start,@function\n"
        "_start:\n"
        "    xor %rbp, %rbp\n"
        "    mov %rsp, %rdi\n"
        "    and $-16, %rsp\n"
        "    call cmain\n"
        "    hlt\n");
