/* sched.c: threads with their own scheduling policy, nice value and CPU set.
 *
 * usage: sched LIMIT   a `batch` thread runs SCHED_BATCH at nice 7 on CPU 0, an `idle`
 * thread SCHED_IDLE on every CPU, main stays SCHED_OTHER at nice 3. Every ~50 ms main
 * checks each thread's policy, nice value and CPU set as the kernel reports them (by the
 * tid each thread keeps publishing) and prints `count N`, or `BAD <thread> <what>` and
 * exits 3; `done LIMIT` at the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct want {
    const char *name;
    int policy, nice, cpu0_only;
    volatile pid_t tid;
};

static struct want threads[3] = {
    {"main", SCHED_OTHER, 3, 0, 0},
    {"batch", SCHED_BATCH, 7, 1, 0},
    {"idle", SCHED_IDLE, 0, 0, 0},
};

static void nap(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void become(struct want *w) {
    struct sched_param p = {0};
    if (pthread_setschedparam(pthread_self(), w->policy, &p) ||
        setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), w->nice)) {
        printf("BAD %s setup\n", w->name);
        exit(3);
    }
    if (w->cpu0_only) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        if (pthread_setaffinity_np(pthread_self(), sizeof set, &set)) {
            printf("BAD %s affinity setup\n", w->name);
            exit(3);
        }
    }
    w->tid = (pid_t)syscall(SYS_gettid);
}

static void *worker(void *arg) {
    struct want *w = arg;
    become(w);
    for (;;) {
        /* Published again and again: a restart without --same-pid gives new tids. */
        w->tid = (pid_t)syscall(SYS_gettid);
        nap(10);
    }
    return NULL;
}

static void check(struct want *w, long n) {
    if (w == &threads[0])
        w->tid = (pid_t)syscall(SYS_gettid);
    /* A worker's tid may be the one from before a restart until it publishes its new one. */
    for (int tries = 0; tries < 50 && sched_getscheduler(w->tid) < 0 && errno == ESRCH; tries++)
        nap(10);
    int policy = sched_getscheduler(w->tid) & ~SCHED_RESET_ON_FORK;
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, (id_t)w->tid);
    cpu_set_t set;
    CPU_ZERO(&set);
    sched_getaffinity(w->tid, sizeof set, &set);
    int cpu0_only = CPU_COUNT(&set) == 1 && CPU_ISSET(0, &set);
    if (policy != w->policy || nice != w->nice || (w->cpu0_only && !cpu0_only)) {
        printf("BAD %s policy %d nice %d cpu0_only %d at %ld\n", w->name, policy, nice, cpu0_only, n);
        fflush(stdout);
        exit(3);
    }
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 100;
    become(&threads[0]);
    pthread_t t;
    for (int i = 1; i < 3; i++)
        if (pthread_create(&t, NULL, worker, &threads[i])) {
            puts("BAD pthread_create");
            return 3;
        }
    while (!threads[1].tid || !threads[2].tid)
        nap(5);
    printf("start %d\n", (int)getpid());
    fflush(stdout);
    for (long n = 1; n <= limit; n++) {
        for (int i = 0; i < 3; i++)
            check(&threads[i], n);
        printf("count %ld\n", n);
        fflush(stdout);
        nap(50);
    }
    printf("done %ld\n", limit);
    fflush(stdout);
    return 0;
}
