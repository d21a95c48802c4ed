/* churn.c: threads start and end all the time.
 *
 * SPAWNERS pairs of spawner threads run for ever: in each pair one creates batches of
 * NJOIN joinable threads and joins them (checking each one's return value), the other
 * creates detached threads, keeping at most MAX_DETACHED of its own alive (every third
 * one is created joinable and detached with pthread_detach right after). Every
 * short-lived thread does a little work with a __thread value, malloc and free, then
 * ends (joinable ones by returning, half of the detached ones with pthread_exit).
 *
 * Main prints `start PID`, then every ~50 ms `count N` (N = 1, 2, ...) and
 * `churn JOINED DETACHED` (the threads that ended so far of each kind), after checking
 * that no thread reported a problem and that the totals never went down (`BAD ...` and
 * exit 3 otherwise). After LIMIT counts: `done LIMIT`, exit 0.
 *
 * usage: churn [LIMIT]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef NJOIN
#define NJOIN 4 /* threads per batch of a joining spawner */
#endif
#ifndef MAX_DETACHED
#define MAX_DETACHED 6 /* detached threads alive at most, per detaching spawner */
#endif
#ifndef SPAWNERS
#define SPAWNERS 3 /* spawners of each kind */
#endif

static _Atomic unsigned long joined, detached_done, serial;
static _Atomic int live_detached[SPAWNERS];
static _Atomic int bad_code;
static _Atomic unsigned long bad_detail;
static __thread unsigned long tls_value = 11;

static void report(int code, unsigned long detail) {
    bad_detail = detail;
    bad_code = code;
}

static unsigned long work(unsigned long seed) {
    if (tls_value != 11)
        report(1, tls_value);
    tls_value = seed;
    size_t n = 64 + seed % 4000;
    unsigned char *p = malloc(n);
    if (!p) {
        report(2, n);
        return 0;
    }
    memset(p, (int)(seed & 0xff), n);
    unsigned long sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += p[i];
    free(p);
    if (sum != (seed & 0xff) * n)
        report(3, sum);
    if (tls_value != seed)
        report(4, tls_value);
    return seed * 3 + 1;
}

static void *joinable(void *arg) {
    unsigned long seed = (unsigned long)(uintptr_t)arg;
    return (void *)(uintptr_t)work(seed);
}

static void *detached(void *arg) {
    unsigned long seed = (unsigned long)(uintptr_t)arg;
    work(seed);
    detached_done++;
    live_detached[seed % SPAWNERS]--;
    if ((seed / SPAWNERS) & 1)
        pthread_exit(NULL);
    return NULL;
}

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static void *join_spawner(void *arg) {
    (void)arg;
    for (;;) {
        pthread_t t[NJOIN];
        unsigned long seeds[NJOIN];
        for (int i = 0; i < NJOIN; i++) {
            seeds[i] = ++serial;
            int r = pthread_create(&t[i], NULL, joinable, (void *)(uintptr_t)seeds[i]);
            if (r != 0) {
                report(10, (unsigned long)r);
                t[i] = 0;
            }
        }
        for (int i = 0; i < NJOIN; i++) {
            if (!t[i])
                continue;
            void *ret = NULL;
            int r = pthread_join(t[i], &ret);
            if (r != 0)
                report(11, (unsigned long)r);
            else if ((uintptr_t)ret != seeds[i] * 3 + 1)
                report(12, (uintptr_t)ret);
            else
                joined++;
        }
        sleep_us(500);
    }
    return NULL;
}

static void *detach_spawner(void *arg) {
    int me = (int)(intptr_t)arg;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    for (unsigned long k = 0;; k++) {
        if (live_detached[me] >= MAX_DETACHED) {
            sleep_us(200);
            continue;
        }
        live_detached[me]++;
        pthread_t t;
        /* A seed that tells the thread which spawner counts it. */
        unsigned long seed = (++serial / SPAWNERS) * SPAWNERS + me;
        /* Every third one is created joinable and detached afterwards. */
        int late = k % 3 == 0;
        int r = pthread_create(&t, late ? NULL : &a, detached, (void *)(uintptr_t)seed);
        if (r != 0) {
            live_detached[me]--;
            report(20, (unsigned long)r);
        } else if (late && (r = pthread_detach(t)) != 0) {
            report(21, (unsigned long)r);
        }
        if (late)
            sleep_us(300);
    }
    return NULL;
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 100000;
    printf("start %d\n", (int)getpid());
    fflush(stdout);
    for (int i = 0; i < SPAWNERS; i++) {
        pthread_t a, b;
        if (pthread_create(&a, NULL, join_spawner, NULL) || pthread_create(&b, NULL, detach_spawner, (void *)(intptr_t)i)) {
            printf("BAD pthread_create spawner\n");
            return 3;
        }
    }
    unsigned long last_j = 0, last_d = 0;
    for (long count = 1; count <= limit; count++) {
        unsigned long j = joined, d = detached_done;
        if (bad_code) {
            printf("BAD thread problem %d (%lu) at count %ld\n", (int)bad_code, (unsigned long)bad_detail, count);
            fflush(stdout);
            exit(3);
        }
        if (j < last_j || d < last_d) {
            printf("BAD totals went down: %lu %lu after %lu %lu\n", j, d, last_j, last_d);
            fflush(stdout);
            exit(3);
        }
        last_j = j;
        last_d = d;
        printf("count %ld\nchurn %lu %lu\n", count, j, d);
        fflush(stdout);
        sleep_us(50000);
    }
    printf("done %ld\n", limit);
    fflush(stdout);
    return 0;
}
