/* rawclone.c: a thread that libc knows nothing about.
 *
 * A thread is created with a raw clone(CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|
 * CLONE_THREAD|CLONE_SYSVSEM) on a malloc'd stack, without CLONE_SETTLS (it shares
 * main's thread pointer and so never touches libc, TLS or errno), with no
 * clear_child_tid and no pthread structure. It counts in a global in bursts, between
 * raw nanosleep(1 ms) syscalls, and checks the count against its own copy in a
 * register or on its stack.
 *
 * Main prints `start PID`, then every ~50 ms `count N` (N = 1, 2, ...) and `raw R` (the
 * raw thread's counter), after checking it never went down and the raw thread reported
 * no mismatch (`BAD ...` and exit 3 otherwise). After LIMIT counts it prints `done LIMIT`
 * (exit 0).
 *
 * usage: rawclone [LIMIT] [--raw-block UNBLOCK]
 *   --raw-block UNBLOCK  the raw thread blocks the checkpoint signal (SIGUSR2, or
 *                        MTCP_SIGNAL's number if it is numeric) with a raw
 *                        rt_sigprocmask syscall, bypassing libc and the runtime; once the
 *                        file UNBLOCK exists it unblocks it the same way, and main prints
 *                        `unblocked`. Main prints `blocked` when the block is in place.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STACK_SIZE (256 * 1024)

/* raw_clone(flags, stack_top, fn, arg): the child calls fn(arg) on the new stack and
 * exits with a raw exit(2). Returns the child's tid or -errno. */
long raw_clone(unsigned long flags, void *stack_top, long (*fn)(void *), void *arg);
__asm__(".text\n"
        ".globl raw_clone\n"
        ".type raw_clone,@function\n"
        "raw_clone:\n"
        "  and $-16, %rsi\n"
        "  sub $16, %rsi\n"
        "  mov %rdx, 0(%rsi)\n"  /* fn */
        "  mov %rcx, 8(%rsi)\n"  /* arg */
        "  mov $56, %eax\n"      /* SYS_clone(flags, newsp, parent_tid, child_tid, tls) */
        "  xor %edx, %edx\n"
        "  xor %r10d, %r10d\n"
        "  xor %r8d, %r8d\n"
        "  syscall\n"
        "  test %rax, %rax\n"
        "  jnz 1f\n"
        "  pop %rax\n"
        "  pop %rdi\n"
        "  xor %ebp, %ebp\n"
        "  call *%rax\n"
        "  mov %rax, %rdi\n"
        "  mov $60, %eax\n"      /* SYS_exit: this thread only */
        "  syscall\n"
        "  hlt\n"
        "1:\n"
        "  ret\n"
        ".size raw_clone, .-raw_clone\n");

static inline long raw_syscall4(long n, long a, long b, long c, long d) {
    long ret;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
    return ret;
}

static _Atomic unsigned long raw_count;
static _Atomic int raw_bad;
static _Atomic unsigned long raw_bad_detail;
static _Atomic int raw_started;
static _Atomic int block_sig;      /* 0: do not block */
static _Atomic int block_state;    /* 0 none, 1 blocked, 2 unblocked */
static _Atomic int unblock_request;

static long raw_thread(void *arg) {
    unsigned long mine = (unsigned long)(uintptr_t)arg;
    raw_count = mine;
    if (block_sig) {
        uint64_t set = 1ull << (block_sig - 1);
        long r = raw_syscall4(14 /* rt_sigprocmask */, 0 /* SIG_BLOCK */, (long)&set, 0, 8);
        if (r != 0) {
            raw_bad_detail = (unsigned long)-r;
            raw_bad = 3;
        }
        block_state = 1;
    }
    raw_started = 1;
    for (;;) {
        for (int k = 0; k < 20000; k++) {
            mine++;
            raw_count = mine;
        }
        if (raw_count != mine) {
            raw_bad_detail = raw_count;
            raw_bad = 1;
        }
        if (block_state == 1 && unblock_request) {
            uint64_t set = 1ull << (block_sig - 1);
            long r = raw_syscall4(14, 1 /* SIG_UNBLOCK */, (long)&set, 0, 8);
            if (r != 0) {
                raw_bad_detail = (unsigned long)-r;
                raw_bad = 4;
            }
            block_state = 2;
        }
        struct timespec ts = {0, 1000000};
        raw_syscall4(35 /* nanosleep */, (long)&ts, 0, 0, 0); /* EINTR is fine */
    }
    return 0;
}

static void bad(const char *what, unsigned long detail) {
    printf("BAD %s %lu\n", what, detail);
    fflush(stdout);
    exit(3);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

int main(int argc, char **argv) {
    long limit = 100000;
    const char *unblock_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--raw-block") && i + 1 < argc)
            unblock_file = argv[++i];
        else
            limit = atol(argv[i]);
    }
    if (unblock_file) {
        const char *s = getenv("MTCP_SIGNAL");
        int sig = SIGUSR2;
        if (s && *s >= '0' && *s <= '9')
            sig = atoi(s);
        block_sig = sig;
    }
    printf("start %d\n", (int)getpid());
    fflush(stdout);

    char *stack = malloc(STACK_SIZE);
    if (!stack)
        bad("malloc", 0);
    memset(stack, 0x5a, STACK_SIZE);
    long tid = raw_clone(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM,
                         stack + STACK_SIZE, raw_thread, (void *)(uintptr_t)1000);
    if (tid < 0)
        bad("clone", (unsigned long)-tid);
    while (!raw_started)
        sleep_ms(1);
    if (block_state == 1) {
        printf("blocked\n");
        fflush(stdout);
    }

    unsigned long last = 0;
    for (long count = 1; count <= limit; count++) {
        unsigned long r = raw_count;
        if (raw_bad)
            bad(raw_bad == 1 ? "raw-count" : raw_bad == 3 ? "raw-block" : "raw-unblock", raw_bad_detail);
        if (r < last)
            bad("raw-went-down", r);
        last = r;
        printf("count %ld\nraw %lu\n", count, r);
        if (unblock_file && block_state == 1 && !unblock_request && access(unblock_file, F_OK) == 0)
            unblock_request = 1;
        if (block_state == 2 && unblock_request == 1) {
            unblock_request = 2;
            printf("unblocked\n");
        }
        fflush(stdout);
        sleep_ms(50);
    }
    printf("done %ld\n", limit);
    fflush(stdout);
    return 0;
}
