/* threads.c: a many-threaded program for the thread tests of mtcp, for x86_64 (gcc) and
 * i386 (gcc -m32) alike; only the raw thread's syscall instruction differs.
 *
 * Threads it runs (NTHREADS in all, main included, printed as `threads N`):
 *   - NWORKERS busy workers, each incrementing a __thread counter (checked against a
 *     local copy and its own address, i.e. against a wrong thread pointer), keeping a
 *     __thread array equal to a copy on its own stack and a malloc'd buffer of its own
 *     intact (glibc gives threads their own malloc arenas), and publishing the counter
 *     in a global array; each checks pthread_equal(pthread_self(), the value it had at
 *     start);
 *   - NPARKED threads parked at a cancellation point, with cleanup handlers: a quarter
 *     in pthread_cond_wait on a condvar nobody signals, a quarter in nanosleep (these
 *     also hold a read lock on an rwlock), a quarter in sem_wait, a quarter in pause;
 *   - a thread blocking every signal (pthread_sigmask) and looping in sigwait(SIGUSR1);
 *     main sends it SIGUSR1 with pthread_kill every 10 counts (once the last was taken)
 *     and expects each taken within 5 s;
 *   - a thread in pthread_cond_wait, waiting for a flag;
 *   - a thread holding a robust mutex (PTHREAD_MUTEX_ROBUST), parked in pause;
 *   - two threads waiting in pthread_barrier_wait on a barrier of three;
 *   - a raw clone() thread that libc knows nothing about (no pthread structure, no TLS
 *     of its own: it shares main's, so it never calls libc or touches errno): it makes
 *     raw gettid and nanosleep(5 ms) syscalls and bumps a counter.
 *
 * Main prints `start PID`, `ids PID MAIN W0 .. W7 SIGWAIT RAW` (getpid() and the
 * gettid() of main, the workers, the sigwait thread and the raw thread, as each last
 * published it), `threads N`, `tasks N` (the entries of /proc/self/task), then every
 * ~50 ms `count N` (N = 1, 2, ...) after checking that no worker reported a problem,
 * that no worker's published counter went down, that main's malloc'd buffer is intact
 * and that no worker nor the raw thread went 5 s without progress (a loaded machine may
 * starve one for a while; a stuck one stays stuck); every 10
 * counts `progress MIN MAX` (the smallest and largest published counters), and the
 * `ids` line again when N % 10 == 5. A problem there prints `BAD <what>` and exits 3.
 *
 * Once the file FINALE exists, main runs the finale: it checks that the threads created
 * at the start (before any checkpoint) still work with pthread_kill, getcpuclockid,
 * set/getschedparam, getattr_np, cancel and join, that the sigwait thread receives
 * SIGUSR1, that the condvar, barrier, rwlock and robust mutex still work (the robust
 * mutex's holder is cancelled while holding it: the next locker must get EOWNERDEAD),
 * that the workers keep going, that a new thread can be created and joined; then it
 * stops and joins the workers, stops the raw thread, prints `joined N` (the threads
 * created at start that were joined, and the raw one that ended: NTHREADS - 1 when all
 * went well) and `done OK` (exit 0). Every problem prints one `BAD <what>` line; the
 * finale goes on where it can and then exits 1.
 *
 * usage: threads FINALE [--same-ids]
 *   --same-ids   getpid() and the gettid() of every thread on the `ids` line must stay
 *                what they were at start (for `mtcp restart --same-pid`); `BAD ids ...`
 *                if not
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NWORKERS 8
#define NPARKED 64
#define NTHREADS (1 + NWORKERS + NPARKED + 1 + 1 + 1 + 2 + 1)
#define WORKER_STACK (256 * 1024)
#define MAX_COUNT 4000 /* ~200 s: a test that never triggers the finale must not run forever */

/* The threads on the `ids` line: main, the workers, the sigwait thread, the raw thread. */
#define T_MAIN 0
#define T_SIGWAIT (1 + NWORKERS)
#define T_RAW (2 + NWORKERS)
#define NIDS (3 + NWORKERS)

static int failures;

/* A problem: one line, and the finale goes on. */
static void bad(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("BAD ");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    failures++;
}

/* A problem outside the finale: stop here. */
static void fatal(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("BAD ");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    exit(3);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A pattern for the memory checks. */
static uint32_t pat(uint32_t seed, uint32_t i) {
    return seed * 2654435761u + i * 40503u + 7;
}

static int same_ids;
static pid_t pid0;
static _Atomic int tid0[NIDS]; /* each listed thread's gettid() at start */
static _Atomic int tids[NIDS]; /* ... and as it last published it */

/* ---- busy workers ---- */
/* 64-bit counters on both widths: a 32-bit one would wrap within seconds. */
static __thread volatile uint64_t tls_count;
static __thread uint32_t tls_array[64];
static _Atomic uint64_t published[NWORKERS];
static uint64_t final_count[NWORKERS];
static _Atomic int worker_bad[NWORKERS]; /* 0, or a code of what went wrong */
static _Atomic unsigned long long worker_bad_detail[NWORKERS];
static _Atomic int stop_workers;
static _Atomic int barrier_phase;
static pthread_barrier_t worker_barrier; /* NWORKERS + main */
static pthread_t workers[NWORKERS];

enum { WB_TLS = 1, WB_TLS_ADDR, WB_SELF, WB_TID, WB_BARRIER, WB_TLS_ARRAY, WB_MEM, WB_MALLOC };

#define WORKER_RET(i) ((void *)(intptr_t)(0x1000 + (i)))

static void *worker(void *arg) {
    int i = (int)(intptr_t)arg;
    pthread_t self = pthread_self();
    volatile uint64_t *addr = &tls_count;
    uint64_t mine = 0;
    uint32_t local[64];
    int did_barrier = 0;
    size_t n = 65536 + (size_t)i * 4096;
    unsigned char *mem = malloc(n);
    if (!mem) {
        worker_bad[i] = WB_MALLOC;
        return NULL;
    }
    for (size_t k = 0; k < n; k++)
        mem[k] = (unsigned char)pat(i + 50, (uint32_t)k);
    for (int k = 0; k < 64; k++)
        local[k] = tls_array[k] = pat(i, (uint32_t)k);
    int tid = gettid();
    tids[1 + i] = tid;
    tid0[1 + i] = tid; /* last: main waits for every tid0 */
    tls_count = 0;
    for (;;) {
        tls_count++;
        mine++;
        if ((mine & 0x3fff) == 0) {
            volatile uint64_t *now = &tls_count;
            __asm__ volatile("" : "+r"(now));
            int k;
            size_t m;
            for (k = 0; k < 64 && tls_array[k] == local[k]; k++) {
            }
            for (m = 0; m < n && mem[m] == (unsigned char)pat(i + 50, (uint32_t)m); m += 61) {
            }
            if (tls_count != mine) {
                worker_bad_detail[i] = tls_count;
                worker_bad[i] = WB_TLS;
            } else if (now != addr) {
                worker_bad_detail[i] = (uintptr_t)now;
                worker_bad[i] = WB_TLS_ADDR;
            } else if (!pthread_equal(pthread_self(), self)) {
                worker_bad_detail[i] = (unsigned long)pthread_self();
                worker_bad[i] = WB_SELF;
            } else if (same_ids && gettid() != tid0[1 + i]) {
                worker_bad_detail[i] = (unsigned long long)gettid();
                worker_bad[i] = WB_TID;
            } else if (k < 64) {
                worker_bad_detail[i] = (unsigned long long)k;
                worker_bad[i] = WB_TLS_ARRAY;
            } else if (m < n) {
                worker_bad_detail[i] = (unsigned long long)m;
                worker_bad[i] = WB_MEM;
            }
            k = (int)((mine >> 14) % 64);
            tls_array[k] = local[k] = pat((uint32_t)i + (uint32_t)mine, (uint32_t)k);
            tids[1 + i] = gettid();
            published[i] = mine;
            if (barrier_phase && !did_barrier) {
                did_barrier = 1;
                int r = pthread_barrier_wait(&worker_barrier);
                if (r != 0 && r != PTHREAD_BARRIER_SERIAL_THREAD) {
                    worker_bad_detail[i] = (unsigned long)r;
                    worker_bad[i] = WB_BARRIER;
                }
            }
            if (stop_workers)
                break;
        }
    }
    final_count[i] = mine;
    free(mem);
    return WORKER_RET(i);
}

/* ---- threads parked at cancellation points ---- */
static pthread_mutex_t park_mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cv = PTHREAD_COND_INITIALIZER; /* never signalled */
static sem_t park_sem;                                   /* never posted */
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static _Atomic int parked_ready, cleanups, rd_held;
static pthread_t parked[NPARKED];

static void cleanup_unlock(void *m) {
    pthread_mutex_unlock(m);
    cleanups++;
}
static void cleanup_rdunlock(void *unused) {
    (void)unused;
    pthread_rwlock_unlock(&rw);
    rd_held--;
    cleanups++;
}
static void cleanup_count(void *unused) {
    (void)unused;
    cleanups++;
}

static void *parked_cond(void *arg) {
    (void)arg;
    pthread_mutex_lock(&park_mx);
    pthread_cleanup_push(cleanup_unlock, &park_mx);
    parked_ready++;
    for (;;)
        pthread_cond_wait(&park_cv, &park_mx);
    pthread_cleanup_pop(0);
    return NULL;
}

static void *parked_sleep(void *arg) {
    (void)arg;
    if (pthread_rwlock_rdlock(&rw) != 0)
        fatal("rwlock rdlock");
    rd_held++;
    pthread_cleanup_push(cleanup_rdunlock, NULL);
    parked_ready++;
    for (;;) {
        struct timespec ts = {1000, 0};
        nanosleep(&ts, NULL);
    }
    pthread_cleanup_pop(0);
    return NULL;
}

static void *parked_sem(void *arg) {
    (void)arg;
    pthread_cleanup_push(cleanup_count, NULL);
    parked_ready++;
    for (;;)
        sem_wait(&park_sem);
    pthread_cleanup_pop(0);
    return NULL;
}

static void *parked_pause(void *arg) {
    (void)arg;
    pthread_cleanup_push(cleanup_count, NULL);
    parked_ready++;
    for (;;)
        pause();
    pthread_cleanup_pop(0);
    return NULL;
}

/* ---- sigwait thread ---- */
static _Atomic int sw_ready, sw_got, sw_bad, sw_stop;
static pthread_t sigwaiter;

static void *sigwait_thread(void *arg) {
    (void)arg;
    sigset_t all, w;
    sigfillset(&all);
    if (pthread_sigmask(SIG_BLOCK, &all, NULL) != 0)
        fatal("pthread_sigmask block all");
    sigemptyset(&w);
    sigaddset(&w, SIGUSR1);
    int tid = gettid();
    tids[T_SIGWAIT] = tid;
    tid0[T_SIGWAIT] = tid; /* last: main waits for every tid0 */
    sw_ready = 1;
    for (;;) {
        int sig = 0;
        int r = sigwait(&w, &sig);
        tids[T_SIGWAIT] = gettid();
        if (r != 0)
            sw_bad = r;
        else if (sig != SIGUSR1)
            sw_bad = 1000 + sig;
        else
            sw_got++;
        if (sw_stop)
            break;
    }
    return (void *)0x5157;
}

/* ---- condvar waiter ---- */
static pthread_mutex_t cw_mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cw_cv = PTHREAD_COND_INITIALIZER;
static int cw_flag, cw_ready;
static pthread_t cond_waiter;

static void *cond_wait_thread(void *arg) {
    (void)arg;
    pthread_mutex_lock(&cw_mx);
    cw_ready = 1;
    while (!cw_flag)
        pthread_cond_wait(&cw_cv, &cw_mx);
    int v = cw_flag;
    pthread_mutex_unlock(&cw_mx);
    return (void *)(intptr_t)(v * 10 + 1);
}

/* ---- robust mutex holder ---- */
static pthread_mutex_t robust_mx;
static _Atomic int robust_locked;
static pthread_t robust_holder;

static void *robust_thread(void *arg) {
    (void)arg;
    int r = pthread_mutex_lock(&robust_mx);
    if (r != 0)
        fatal("robust lock at start: %d", r);
    robust_locked = 1;
    for (;;)
        pause(); /* cancelled in the finale while holding the mutex */
    return NULL;
}

/* ---- barrier waiters ---- */
static pthread_barrier_t bar3;
static _Atomic int bar_arrived;
static pthread_t bar_waiters[2];

static void *barrier_thread(void *arg) {
    (void)arg;
    bar_arrived++;
    int r = pthread_barrier_wait(&bar3);
    return (void *)(intptr_t)(r == PTHREAD_BARRIER_SERIAL_THREAD ? 2 : r == 0 ? 1 : 100 + r);
}

/* ---- the raw clone thread ---- */
/* Raw syscalls with up to two arguments, for the thread that must not call libc. */
#if defined(__x86_64__)
static long raw_syscall2(long n, long a, long b) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b) : "rcx", "r11", "memory");
    return r;
}
#elif defined(__i386__)
/* ebx is the PIC register: swap the first argument in by hand. */
static long raw_syscall2(long n, long a, long b) {
    long r;
    __asm__ volatile("xchg %%ebx, %%edi\n\t"
                     "int $0x80\n\t"
                     "xchg %%ebx, %%edi"
                     : "=a"(r)
                     : "a"(n), "D"(a), "c"(b)
                     : "memory");
    return r;
}
#else
#error "threads.c is for x86_64 and i386"
#endif

/* The kernel's timespec of SYS_nanosleep: two longs on both (32-bit ones on i386). */
struct raw_timespec {
    long sec, nsec;
};

static _Atomic unsigned raw_progress;
static _Atomic int raw_stop, raw_done;
static char raw_stack[256 * 1024] __attribute__((aligned(16)));

static int raw_thread(void *arg) {
    (void)arg;
    struct raw_timespec ts;
    int tid = (int)raw_syscall2(SYS_gettid, 0, 0);
    tids[T_RAW] = tid;
    tid0[T_RAW] = tid; /* last: main waits for every tid0 */
    while (!raw_stop) {
        tids[T_RAW] = (int)raw_syscall2(SYS_gettid, 0, 0);
        raw_progress++;
        ts.sec = 0;
        ts.nsec = 5000000;
        raw_syscall2(SYS_nanosleep, (long)&ts, 0);
    }
    raw_done = 1;
    return 0; /* glibc's clone() then makes the exit syscall for this thread alone */
}

static void start(pthread_t *t, void *(*fn)(void *), void *arg, size_t stack) {
    pthread_attr_t a;
    pthread_attr_init(&a);
    if (stack)
        pthread_attr_setstacksize(&a, stack);
    int r = pthread_create(t, &a, fn, arg);
    if (r != 0)
        fatal("pthread_create %d", r);
    pthread_attr_destroy(&a);
}

static int count_tasks(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    if (!d)
        return -1;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* ---- after the checkpoint ---- */
static __thread int new_thread_tls = 5;
static void *new_thread(void *arg) {
    new_thread_tls += (int)(intptr_t)arg;
    clockid_t c;
    struct timespec ts;
    if (pthread_getcpuclockid(pthread_self(), &c) != 0 || clock_gettime(c, &ts) != 0)
        return (void *)-1;
    return (void *)(intptr_t)new_thread_tls;
}

static void check_thread(const char *what, int i, pthread_t t, int busy) {
    int r = pthread_kill(t, 0);
    if (r != 0)
        bad("pthread_kill(%s %d, 0) = %d", what, i, r);
    clockid_t c;
    r = pthread_getcpuclockid(t, &c);
    if (r != 0) {
        bad("pthread_getcpuclockid(%s %d) = %d", what, i, r);
    } else {
        struct timespec ts;
        if (clock_gettime(c, &ts) != 0)
            bad("clock_gettime(cpu clock of %s %d): %s", what, i, strerror(errno));
        else if (busy && ts.tv_sec == 0 && ts.tv_nsec == 0)
            bad("cpu time of busy %s %d is 0", what, i);
    }
    struct sched_param sp = {0};
    r = pthread_setschedparam(t, SCHED_OTHER, &sp);
    if (r != 0)
        bad("pthread_setschedparam(%s %d) = %d", what, i, r);
    int pol = -1;
    r = pthread_getschedparam(t, &pol, &sp);
    if (r != 0 || pol != SCHED_OTHER)
        bad("pthread_getschedparam(%s %d) = %d, policy %d", what, i, r, pol);
    pthread_attr_t a;
    r = pthread_getattr_np(t, &a);
    if (r != 0) {
        bad("pthread_getattr_np(%s %d) = %d", what, i, r);
    } else {
        size_t ss = 0;
        void *addr = NULL;
        if (pthread_attr_getstack(&a, &addr, &ss) != 0 || ss == 0)
            bad("pthread_attr_getstack(%s %d)", what, i);
        else if (busy && ss != WORKER_STACK)
            bad("stack size of %s %d is %zu, not %d", what, i, ss, WORKER_STACK);
        pthread_attr_destroy(&a);
    }
}

static int joined; /* threads created at start that were joined, and the raw one that ended */

static void join_expect(const char *what, int i, pthread_t t, void *expected) {
    void *ret = (void *)0xdead;
    int r = pthread_join(t, &ret);
    if (r != 0) {
        bad("pthread_join(%s %d) = %d", what, i, r);
        return;
    }
    joined++;
    if (ret != expected)
        bad("pthread_join(%s %d) returned %p, expected %p", what, i, ret, expected);
}

static void print_ids(void) {
    tids[T_MAIN] = gettid();
    printf("ids %d", (int)getpid());
    for (int i = 0; i < NIDS; i++)
        printf(" %d", (int)tids[i]);
    printf("\n");
}

static unsigned sigusr1_sent; /* by main to the sigwait thread */

static void finale(void) {
    printf("finale\n");
    fflush(stdout);

    /* Every thread created at start is still there and answers. */
    for (int i = 0; i < NWORKERS; i++)
        check_thread("worker", i, workers[i], 1);
    for (int i = 0; i < NPARKED; i++)
        check_thread("parked", i, parked[i], 0);
    check_thread("sigwaiter", 0, sigwaiter, 0);
    check_thread("condwaiter", 0, cond_waiter, 0);
    check_thread("robustholder", 0, robust_holder, 0);
    check_thread("barrierwaiter", 0, bar_waiters[0], 0);
    check_thread("barrierwaiter", 1, bar_waiters[1], 0);
    {
        pthread_attr_t a;
        int r = pthread_getattr_np(pthread_self(), &a);
        if (r != 0)
            bad("pthread_getattr_np(main) = %d", r);
        else
            pthread_attr_destroy(&a);
    }
    printf("finale threads answer\n");
    fflush(stdout);

    /* The sigwait thread gets a SIGUSR1 sent to it (once it has taken the earlier ones:
     * a second SIGUSR1 sent while one is pending would merge with it). */
    double end = now_s() + 5;
    while (sw_got < (int)sigusr1_sent && now_s() < end)
        sleep_ms(5);
    int r = pthread_kill(sigwaiter, SIGUSR1);
    if (r != 0)
        bad("pthread_kill(sigwaiter, SIGUSR1) = %d", r);
    end = now_s() + 5;
    while (sw_got < (int)sigusr1_sent + 1 && now_s() < end)
        sleep_ms(5);
    if (sw_got != (int)sigusr1_sent + 1)
        bad("sigwait thread got %d SIGUSR1 (expected %u), error %d", (int)sw_got, sigusr1_sent + 1, (int)sw_bad);
    else
        printf("finale sigwait got SIGUSR1\n");
    if (sw_bad)
        bad("sigwait thread error %d", (int)sw_bad);
    sw_stop = 1;
    pthread_kill(sigwaiter, SIGUSR1);
    join_expect("sigwaiter", 0, sigwaiter, (void *)0x5157);

    /* The condvar waiter wakes up. */
    pthread_mutex_lock(&cw_mx);
    cw_flag = 7;
    pthread_cond_signal(&cw_cv);
    pthread_mutex_unlock(&cw_mx);
    join_expect("condwaiter", 0, cond_waiter, (void *)71);

    /* The barrier the two waiters sit in opens when main arrives. */
    r = pthread_barrier_wait(&bar3);
    if (r != 0 && r != PTHREAD_BARRIER_SERIAL_THREAD)
        bad("pthread_barrier_wait(bar3) = %d", r);
    {
        int serial = r == PTHREAD_BARRIER_SERIAL_THREAD;
        for (int i = 0; i < 2; i++) {
            void *ret = NULL;
            int jr = pthread_join(bar_waiters[i], &ret);
            if (jr == 0)
                joined++;
            if (jr != 0)
                bad("pthread_join(barrierwaiter %d) = %d", i, jr);
            else if ((intptr_t)ret == 2)
                serial++;
            else if ((intptr_t)ret != 1)
                bad("barrier waiter %d: pthread_barrier_wait gave %ld", i, (long)(intptr_t)ret - 100);
        }
        if (serial != 1)
            bad("barrier: %d threads got PTHREAD_BARRIER_SERIAL_THREAD, expected 1", serial);
    }

    /* The rwlock is read-held by the sleeping threads. */
    r = pthread_rwlock_trywrlock(&rw);
    if (r != EBUSY)
        bad("pthread_rwlock_trywrlock while %d readers hold it = %d (expected EBUSY)", (int)rd_held, r);
    r = pthread_rwlock_tryrdlock(&rw);
    if (r != 0)
        bad("pthread_rwlock_tryrdlock = %d", r);
    else
        pthread_rwlock_unlock(&rw);

    /* The robust mutex: its holder dies holding it; the next locker must hear of it. */
    r = pthread_mutex_trylock(&robust_mx);
    if (r != EBUSY)
        bad("robust mutex trylock while held = %d (expected EBUSY)", r);
    r = pthread_cancel(robust_holder);
    if (r != 0)
        bad("pthread_cancel(robustholder) = %d", r);
    join_expect("robustholder", 0, robust_holder, PTHREAD_CANCELED);
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 3;
        r = pthread_mutex_timedlock(&robust_mx, &ts);
        if (r == EOWNERDEAD) {
            if (pthread_mutex_consistent(&robust_mx) != 0)
                bad("pthread_mutex_consistent");
            if ((r = pthread_mutex_unlock(&robust_mx)) != 0)
                bad("robust mutex unlock after EOWNERDEAD = %d", r);
            if ((r = pthread_mutex_lock(&robust_mx)) != 0)
                bad("robust mutex lock again = %d", r);
            else if ((r = pthread_mutex_unlock(&robust_mx)) != 0)
                bad("robust mutex unlock again = %d", r);
            else
                printf("finale robust mutex EOWNERDEAD\n");
        } else {
            bad("robust mutex: the thread holding it was cancelled and joined, but pthread_mutex_timedlock gave %d (%s), "
                "expected EOWNERDEAD (likely: the mutex word still holds the holder's tid from checkpoint time, so the kernel's "
                "robust-list cleanup at the holder's exit did not recognise it as the owner)",
                r, r == ETIMEDOUT ? "ETIMEDOUT" : strerror(r));
            if (r == 0)
                pthread_mutex_unlock(&robust_mx);
        }
    }

    /* Cancel and join every parked thread. */
    for (int i = 0; i < NPARKED; i++) {
        r = pthread_cancel(parked[i]);
        if (r != 0)
            bad("pthread_cancel(parked %d) = %d", i, r);
    }
    for (int i = 0; i < NPARKED; i++)
        join_expect("parked", i, parked[i], PTHREAD_CANCELED);
    if (cleanups != NPARKED)
        bad("%d cleanup handlers ran for %d cancelled threads", (int)cleanups, NPARKED);
    else
        printf("finale cancelled %d\n", NPARKED);

    /* Readers gone: a writer gets in. */
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 3;
        r = pthread_rwlock_timedwrlock(&rw, &ts);
        if (r != 0)
            bad("pthread_rwlock_timedwrlock after the readers were cancelled = %d (%d readers left)", r, (int)rd_held);
        else
            pthread_rwlock_unlock(&rw);
    }
    /* The park mutex is free again (the cleanup handlers unlocked it). */
    r = pthread_mutex_trylock(&park_mx);
    if (r != 0)
        bad("park mutex trylock after cancelling its waiters = %d", r);
    else
        pthread_mutex_unlock(&park_mx);

    /* The workers go on. */
    uint64_t snap[NWORKERS];
    for (int i = 0; i < NWORKERS; i++)
        snap[i] = published[i];
    end = now_s() + 5;
    for (int i = 0; i < NWORKERS; i++)
        while (published[i] <= snap[i] && now_s() < end)
            sleep_ms(5);
    for (int i = 0; i < NWORKERS; i++)
        if (published[i] <= snap[i])
            bad("worker %d made no progress in 5 s (%llu)", i, (unsigned long long)snap[i]);

    /* A new thread. */
    {
        pthread_t t;
        void *ret = NULL;
        r = pthread_create(&t, NULL, new_thread, (void *)(intptr_t)37);
        if (r != 0)
            bad("pthread_create after restart = %d", r);
        else if ((r = pthread_join(t, &ret)) != 0)
            bad("pthread_join(new thread) = %d", r);
        else if ((intptr_t)ret != 42)
            bad("new thread returned %ld, expected 42", (long)(intptr_t)ret);
    }

    /* All workers meet main at a barrier, then stop. */
    barrier_phase = 1;
    r = pthread_barrier_wait(&worker_barrier);
    if (r != 0 && r != PTHREAD_BARRIER_SERIAL_THREAD)
        bad("pthread_barrier_wait(workers) = %d", r);
    stop_workers = 1;
    for (int i = 0; i < NWORKERS; i++)
        join_expect("worker", i, workers[i], WORKER_RET(i));
    for (int i = 0; i < NWORKERS; i++) {
        if (final_count[i] < snap[i] || final_count[i] != published[i])
            bad("worker %d ended at %llu, below %llu seen earlier or not its last published %llu", i,
                (unsigned long long)final_count[i], (unsigned long long)snap[i], (unsigned long long)published[i]);
        if (worker_bad[i])
            bad("worker %d: problem %d (%llu)", i, (int)worker_bad[i], (unsigned long long)worker_bad_detail[i]);
    }

    /* The raw thread stops when told and ends (glibc's clone() makes its exit). */
    raw_stop = 1;
    end = now_s() + 5;
    while (!raw_done && now_s() < end)
        sleep_ms(1);
    if (!raw_done)
        bad("the raw thread did not stop within 5 s");
    else
        joined++;
    printf("joined %d\n", joined);

    if (failures) {
        printf("done BAD %d\n", failures);
        fflush(stdout);
        exit(1);
    }
    printf("done OK\n");
    fflush(stdout);
    exit(0);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: threads FINALE [--same-ids]\n");
        return 2;
    }
    const char *finale_file = argv[1];
    same_ids = argc > 2 && !strcmp(argv[2], "--same-ids");
    pid0 = getpid();
    tids[T_MAIN] = gettid();
    tid0[T_MAIN] = tids[T_MAIN];

    /* SIGUSR1 is only ever taken by sigwait. */
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);

    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    if (pthread_mutex_init(&robust_mx, &ma) != 0)
        fatal("robust mutex init");
    pthread_barrier_init(&worker_barrier, NULL, NWORKERS + 1);
    pthread_barrier_init(&bar3, NULL, 3);
    sem_init(&park_sem, 0, 0);

    printf("start %d\n", (int)getpid());
    fflush(stdout);

    for (int i = 0; i < NWORKERS; i++)
        start(&workers[i], worker, (void *)(intptr_t)i, WORKER_STACK);
    void *(*kinds[4])(void *) = {parked_cond, parked_sleep, parked_sem, parked_pause};
    for (int i = 0; i < NPARKED; i++)
        start(&parked[i], kinds[i % 4], NULL, 64 * 1024);
    start(&sigwaiter, sigwait_thread, NULL, 64 * 1024);
    start(&cond_waiter, cond_wait_thread, NULL, 64 * 1024);
    start(&robust_holder, robust_thread, NULL, 64 * 1024);
    for (int i = 0; i < 2; i++)
        start(&bar_waiters[i], barrier_thread, NULL, 64 * 1024);
    int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
    if (clone(raw_thread, raw_stack + sizeof raw_stack, flags, NULL) == -1)
        fatal("clone: %s", strerror(errno));

    size_t buf_words = 256 * 1024 / 4;
    uint32_t *buf = malloc(buf_words * 4);
    if (!buf)
        fatal("malloc");
    for (size_t i = 0; i < buf_words; i++)
        buf[i] = pat(99, (uint32_t)i);

    /* Wait until every thread is where it should be. */
    double end = now_s() + 20;
    for (;;) {
        int ready = parked_ready == NPARKED && sw_ready && robust_locked && bar_arrived == 2;
        for (int i = 0; i < NIDS; i++)
            ready = ready && tid0[i] != 0;
        pthread_mutex_lock(&cw_mx); /* the waiter holds it until it is in pthread_cond_wait */
        ready = ready && cw_ready;
        pthread_mutex_unlock(&cw_mx);
        if (ready)
            break;
        if (now_s() > end)
            fatal("threads did not get ready");
        sleep_ms(5);
    }
    sleep_ms(20); /* the last ones reach their waits */
    print_ids();
    printf("threads %d\n", NTHREADS);
    printf("tasks %d\n", count_tasks());
    fflush(stdout);

    uint64_t last[NWORKERS] = {0};
    /* Everyone moves: a thread that makes no progress for STUCK_S seconds is stuck (a
     * busy machine may well starve one for a count or ten). */
    const double STUCK_S = 5;
    uint64_t seen[NWORKERS];
    double moved[NWORKERS], start = now_s();
    for (int i = 0; i < NWORKERS; i++) {
        seen[i] = published[i];
        moved[i] = start;
    }
    unsigned raw_seen = raw_progress;
    double raw_moved = start, usr1_sent_at = start;
    for (long count = 1; count <= MAX_COUNT; count++) {
        uint64_t lo = ~(uint64_t)0, hi = 0;
        if (same_ids && (getpid() != pid0 || gettid() != tid0[T_MAIN]))
            fatal("ids: pid %d tid %d, expected pid %d tid %d at count %ld", (int)getpid(), (int)gettid(), (int)pid0, (int)tid0[T_MAIN], count);
        if (same_ids)
            for (int i = 1; i < NIDS; i++)
                if (tids[i] != tid0[i])
                    fatal("ids: thread %d has tid %d, expected %d at count %ld", i, (int)tids[i], (int)tid0[i], count);
        for (size_t i = 0; i < buf_words; i += 7)
            if (buf[i] != pat(99, (uint32_t)i))
                fatal("main's malloc'd buffer changed at word %zu at count %ld", i, count);
        for (int i = 0; i < NWORKERS; i++) {
            uint64_t v = published[i];
            if (worker_bad[i])
                fatal("worker %d: problem %d (%llu) at count %ld", i, (int)worker_bad[i], (unsigned long long)worker_bad_detail[i], count);
            if (v < last[i])
                fatal("worker %d counter went down from %llu to %llu at count %ld", i, (unsigned long long)last[i], (unsigned long long)v, count);
            last[i] = v;
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        double now = now_s();
        for (int i = 0; i < NWORKERS; i++) {
            if (published[i] != seen[i]) {
                seen[i] = published[i];
                moved[i] = now;
            } else if (now - moved[i] > STUCK_S) {
                fatal("worker %d made no progress in %g s (%llu) at count %ld", i, STUCK_S, (unsigned long long)seen[i], count);
            }
        }
        if (raw_progress != raw_seen) {
            raw_seen = raw_progress;
            raw_moved = now;
        } else if (now - raw_moved > STUCK_S) {
            fatal("the raw thread made no progress in %g s (%u) at count %ld", STUCK_S, raw_seen, count);
        }
        /* One SIGUSR1 at a time, every 10 counts once the last was taken. */
        if (count % 10 == 0 && sw_got == (int)sigusr1_sent) {
            int r = pthread_kill(sigwaiter, SIGUSR1);
            if (r != 0)
                fatal("pthread_kill(sigwaiter, SIGUSR1) = %d at count %ld", r, count);
            sigusr1_sent++;
            usr1_sent_at = now;
        }
        if (sw_got != (int)sigusr1_sent && now - usr1_sent_at > STUCK_S)
            fatal("the sigwait thread took %d SIGUSR1 of the %u sent at count %ld", (int)sw_got, sigusr1_sent, count);
        if (sw_bad)
            fatal("sigwait thread error %d at count %ld", (int)sw_bad, count);
        printf("count %ld\n", count);
        if (count % 10 == 0)
            printf("progress %llu %llu\n", (unsigned long long)lo, (unsigned long long)hi);
        if (count % 10 == 5)
            print_ids();
        fflush(stdout);
        if (access(finale_file, F_OK) == 0)
            finale();
        sleep_ms(50);
    }
    fatal("no finale after %d counts", MAX_COUNT);
}
