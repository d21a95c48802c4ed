/* threads32.c: a multi-threaded counter for the i386 tests (built with gcc -m32; it is
 * plain C and would build for x86_64 too, except for the raw thread's int $0x80 calls).
 *
 * Threads:
 *   - main: prints `count N` every ~50 ms (N = 1, 2, ...), checks a malloc'd buffer and
 *     that every other thread keeps making progress, and prints
 *     `ids PID MAIN W0 W1 W2 W3 SIGWAIT RAW` (getpid() and each thread's gettid()) when
 *     N % 10 == 5 (and once at start);
 *   - 4 pthread workers, each with a __thread counter and a __thread array that it
 *     checks against its own stack copy every ~5 ms (a wrong TLS base after a restart
 *     shows as `BAD tls`), and a malloc'd buffer of its own (glibc gives threads their
 *     own malloc arenas);
 *   - a pthread that blocks every signal and sits in sigwait({SIGUSR1}); main sends it
 *     SIGUSR1 with pthread_kill when N % 10 == 0 and expects it counted by N % 10 == 9;
 *   - a raw clone() thread (no pthread, no TLS of its own) that only makes int $0x80
 *     syscalls and bumps a counter.
 * At LIMIT it stops every thread, joins the pthreads (checking each worker's result),
 * waits for the raw thread and prints `joined 6`, then `done LIMIT`.
 * Any problem prints `BAD <what> <detail>` and exits 3.
 *
 * usage: threads32 [LIMIT]   (default 100000)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NWORKERS 4
#define T_MAIN 0
#define T_SIGWAIT (1 + NWORKERS)
#define T_RAW (2 + NWORKERS)
#define NIDS (3 + NWORKERS)

static volatile int stop;
static volatile int tids[NIDS];
static volatile uint32_t progress[NWORKERS];
static volatile uint32_t sigwait_hits;
static volatile uint32_t raw_progress;
static volatile int raw_done;

static __thread uint32_t tls_counter;
static __thread uint32_t tls_array[64];

static void bad(const char *what, long detail) {
    printf("BAD %s %ld\n", what, detail);
    fflush(stdout);
    exit(3);
}

static int my_gettid(void) {
    return (int)gettid();
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static uint32_t pat(uint32_t seed, uint32_t i) {
    return seed * 2654435761u + i * 40503u + 7;
}

static void *worker(void *arg) {
    uint32_t idx = (uint32_t)(uintptr_t)arg;
    uint32_t expected = 0;
    uint32_t local[64];
    uint32_t *my_tls = &tls_counter;
    size_t n = 65536 + idx * 4096;
    unsigned char *mem = malloc(n);
    if (!mem)
        bad("worker-malloc", idx);
    for (size_t i = 0; i < n; i++)
        mem[i] = (unsigned char)pat(idx + 50, (uint32_t)i);
    for (int i = 0; i < 64; i++)
        local[i] = tls_array[i] = pat(idx, (uint32_t)i);
    tids[1 + idx] = my_gettid();
    while (!stop) {
        if (&tls_counter != my_tls)
            bad("tls-address", idx);
        if (tls_counter != expected)
            bad("tls", idx);
        for (int i = 0; i < 64; i++)
            if (tls_array[i] != local[i])
                bad("tls-array", idx);
        for (size_t i = 0; i < n; i += 61)
            if (mem[i] != (unsigned char)pat(idx + 50, (uint32_t)i))
                bad("worker-mem", idx);
        tls_counter++;
        expected++;
        tls_array[expected % 64] = local[expected % 64] = pat(idx + expected, expected);
        progress[idx] = tls_counter;
        tids[1 + idx] = my_gettid();
        sleep_ms(5);
    }
    free(mem);
    return (void *)(uintptr_t)tls_counter;
}

static void *sigwaiter(void *arg) {
    (void)arg;
    sigset_t all, wanted;
    sigfillset(&all);
    if (pthread_sigmask(SIG_BLOCK, &all, NULL) != 0)
        bad("sigmask", 0);
    sigemptyset(&wanted);
    sigaddset(&wanted, SIGUSR1);
    tids[T_SIGWAIT] = my_gettid();
    for (;;) {
        int sig = 0;
        int r = sigwait(&wanted, &sig);
        if (r != 0)
            bad("sigwait", r);
        if (sig != SIGUSR1)
            bad("sigwait-signal", sig);
        tids[T_SIGWAIT] = my_gettid();
        sigwait_hits++;
        if (stop)
            return (void *)(uintptr_t)0x5157;
    }
}

/* Raw i386 syscalls for the clone thread, which has no TLS of its own (it shares the
 * main thread's, so it must not touch errno). ebx is the PIC register: swap by hand. */
static int raw_sys2(int n, int a, int b) {
    int r;
    __asm__ volatile("xchg %%ebx, %%edi\n\t"
                     "int $0x80\n\t"
                     "xchg %%ebx, %%edi"
                     : "=a"(r)
                     : "a"(n), "D"(a), "c"(b)
                     : "memory");
    return r;
}

#define RAW_SYS_nanosleep 162
#define RAW_SYS_gettid 224

static int raw_thread(void *arg) {
    (void)arg;
    struct {
        int32_t sec, nsec;
    } ts;
    while (!stop) {
        tids[T_RAW] = raw_sys2(RAW_SYS_gettid, 0, 0);
        raw_progress++;
        ts.sec = 0;
        ts.nsec = 5000000;
        raw_sys2(RAW_SYS_nanosleep, (int)&ts, 0);
    }
    raw_done = 1;
    return 0; /* glibc's clone() then makes the exit syscall for this thread alone */
}

static char raw_stack[256 * 1024] __attribute__((aligned(16)));

static void print_ids(void) {
    printf("ids %d %d", (int)getpid(), my_gettid());
    for (int i = 1; i < NIDS; i++)
        printf(" %d", tids[i]);
    printf("\n");
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 100000;
    pthread_t workers[NWORKERS], waiter;

    tids[T_MAIN] = my_gettid();
    for (int i = 0; i < NWORKERS; i++)
        if (pthread_create(&workers[i], NULL, worker, (void *)(uintptr_t)i) != 0)
            bad("pthread_create", i);
    if (pthread_create(&waiter, NULL, sigwaiter, NULL) != 0)
        bad("pthread_create", NWORKERS);
    int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
    if (clone(raw_thread, raw_stack + sizeof raw_stack, flags, NULL) == -1)
        bad("clone", errno);

    size_t n = 256 * 1024;
    uint32_t *buf = malloc(n);
    if (!buf)
        bad("malloc", 0);
    for (size_t i = 0; i < n / 4; i++)
        buf[i] = pat(99, (uint32_t)i);

    /* Every thread has said who it is. */
    for (int tries = 0;; tries++) {
        int all = 1;
        for (int i = 0; i < NIDS; i++)
            all &= tids[i] != 0;
        if (all)
            break;
        if (tries > 2000)
            bad("threads-start", 0);
        sleep_ms(5);
    }
    printf("start %d\n", (int)getpid());
    print_ids();
    fflush(stdout);

    uint32_t seen[NWORKERS + 1];
    for (int i = 0; i < NWORKERS; i++)
        seen[i] = progress[i];
    seen[NWORKERS] = raw_progress;
    uint32_t sent = 0;

    for (long count = 1; count <= limit; count++) {
        for (size_t i = 0; i < n / 4; i += 7)
            if (buf[i] != pat(99, (uint32_t)i))
                bad("main-mem", (long)i);
        /* Everyone moves: checked every 10 counts (~0.5 s; 5 ms steps). */
        if (count % 10 == 3) {
            for (int i = 0; i < NWORKERS; i++) {
                if (progress[i] == seen[i])
                    bad("stuck-worker", i);
                seen[i] = progress[i];
            }
            if (raw_progress == seen[NWORKERS])
                bad("stuck-raw-thread", 0);
            seen[NWORKERS] = raw_progress;
        }
        if (count % 10 == 0) {
            int r = pthread_kill(waiter, SIGUSR1);
            if (r != 0)
                bad("pthread_kill", r);
            sent++;
        }
        if (count % 10 == 9 && sigwait_hits != sent)
            bad("sigwait-hits", (long)sigwait_hits * 1000 + sent);
        printf("count %ld\n", count);
        if (count % 10 == 5)
            print_ids();
        fflush(stdout);
        sleep_ms(50);
    }

    stop = 1;
    int joined = 0;
    for (int i = 0; i < NWORKERS; i++) {
        void *res = NULL;
        int r = pthread_join(workers[i], &res);
        if (r != 0)
            bad("pthread_join", r);
        if ((uint32_t)(uintptr_t)res != progress[i])
            bad("worker-result", i);
        joined++;
    }
    if (pthread_kill(waiter, SIGUSR1) != 0)
        bad("pthread_kill-last", 0);
    void *res = NULL;
    if (pthread_join(waiter, &res) != 0 || (uintptr_t)res != 0x5157)
        bad("sigwait-join", 0);
    joined++;
    for (int tries = 0; !raw_done; tries++) {
        if (tries > 2000)
            bad("raw-thread-exit", 0);
        sleep_ms(1);
    }
    joined++;
    printf("joined %d\n", joined);
    printf("done %ld\n", limit);
    fflush(stdout);
    return 0;
}
