/* Benchmark subject. Prints `beat N` every millisecond. A watcher thread wakes every
 * 200 us and keeps the longest gap it saw between two wake-ups: the pause the program
 * itself saw. SIGUSR1 prints `gap MICROSECONDS` (and starts a new measurement);
 * SIGURG rewrites 1% of the pages of the dense area (each its own page) and prints
 * `rewrote PAGES`.
 *
 *   subject counter
 *   subject dense MIB                 MIB of pseudo-random data, every page written
 *   subject scattered RESERVE_MIB TOUCHED_PAGES [noreserve]
 *                                     one mapping, TOUCHED_PAGES pages written, evenly spread
 *   subject threads N busy|idle       N more threads, spinning (at nice 19) or asleep
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t want_report, want_rewrite;
static _Atomic long max_gap_ns;
static uint64_t *dense;
static size_t dense_pages;
static uint64_t rng = 88172645463325252ull;

static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static void *watch(void *arg) {
    struct timespec nap = {0, 200000};
    long last = now_ns();
    for (;;) {
        nanosleep(&nap, 0);
        long t = now_ns(), gap = t - last;
        if (gap > atomic_load(&max_gap_ns)) atomic_store(&max_gap_ns, gap);
        last = t;
    }
    return arg;
}

static void *idle(void *arg) {
    for (;;) pause();
    return arg;
}

static void *busy(void *arg) {
    setpriority(PRIO_PROCESS, syscall(SYS_gettid), 19);
    volatile uint64_t *n = arg;
    for (;;) (*n)++;
    return arg;
}

static void fill_page(uint64_t *page) {
    for (size_t i = 0; i < 512; i++) page[i] = next();
}

static void on_usr1(int s) { (void)s; want_report = 1; }
static void on_urg(int s) { (void)s; want_rewrite = 1; }

static void start(void *(*f)(void *), void *arg) {
    pthread_t t;
    if (pthread_create(&t, 0, f, arg)) exit(3);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "counter";
    if (!strcmp(mode, "dense")) {
        size_t mib = argc > 2 ? strtoul(argv[2], 0, 10) : 64;
        dense_pages = (mib << 20) / 4096;
        dense = malloc(mib << 20);
        if (!dense) return 2;
        for (size_t p = 0; p < dense_pages; p++) fill_page(dense + p * 512);
    } else if (!strcmp(mode, "scattered")) {
        size_t reserve = (size_t)strtoull(argv[2], 0, 10) << 20;
        size_t touched = strtoull(argv[3], 0, 10);
        int flags = MAP_PRIVATE | MAP_ANONYMOUS | (argc > 4 ? MAP_NORESERVE : 0);
        char *m = mmap(0, reserve, PROT_READ | PROT_WRITE, flags, -1, 0);
        if (m == MAP_FAILED) return 2;
        size_t stride = reserve / 4096 / touched;
        for (size_t i = 0; i < touched; i++) fill_page((uint64_t *)(m + i * stride * 4096));
    } else if (!strcmp(mode, "threads")) {
        int n = atoi(argv[2]);
        int spin = !strcmp(argv[3], "busy");
        static uint64_t counters[256 * 8];
        for (int i = 0; i < n; i++) start(spin ? busy : idle, &counters[i * 8]);
    } else if (strcmp(mode, "counter")) {
        fprintf(stderr, "subject: unknown mode %s\n", mode);
        return 2;
    }
    struct sigaction sa = {0};
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, 0);
    sa.sa_handler = on_urg;
    sigaction(SIGURG, &sa, 0);
    start(watch, 0);
    for (unsigned long beat = 0;; beat++) {
        if (want_report) {
            want_report = 0;
            printf("gap %ld\n", atomic_exchange(&max_gap_ns, 0) / 1000);
        }
        if (want_rewrite) {
            want_rewrite = 0;
            size_t n = dense_pages / 100, offset = next() % 100;
            for (size_t i = 0; i < n; i++) fill_page(dense + (i * 100 + offset) * 512);
            printf("rewrote %zu\n", n);
        }
        printf("beat %lu\n", beat);
        fflush(stdout);
        usleep(1000);
    }
}
