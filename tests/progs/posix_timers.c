/* posix_timers.c: POSIX timers (timer_create, made with the raw syscalls so that the ids
 * are the kernel's) keep their ids, clocks, notifications and times across a restart.
 *
 * Threads: main (blocks the timer signals), `worker` (takes only THREAD_SIG) and `other`
 * (takes PERIODIC_SIG and THREAD_SIG). Timers, made after a few throw-away ones so that
 * the ids have gaps:
 *   periodic  CLOCK_MONOTONIC, SIGEV_SIGNAL PERIODIC_SIG to the process, every 20 ms;
 *             only `other` can take it
 *   thread    CLOCK_MONOTONIC, SIGEV_THREAD_ID THREAD_SIG to `worker`, every 30 ms; the
 *             handler checks it runs on `worker` (a hit elsewhere is `BAD`)
 *   oneshot   CLOCK_REALTIME, SIGEV_SIGNAL, once, in 1000 s
 *   disarmed  CLOCK_BOOTTIME, SIGEV_NONE, never armed
 *   cpu       `worker`'s CPU-time clock (pthread_getcpuclockid), SIGEV_NONE, in 1000 s
 *             then every 500 s
 *
 * Prints `start PID`, `ids P T O D C` (the timer ids) and `tid WORKER` (the worker's
 * tid), then every ~50 ms `count N` and `timers PERIODIC THREAD ONESHOT_MS DISARMED
 * CPU_INTERVAL_S CPU_CLOCK_OK`: the handler runs so far, the one-shot's time left in
 * ms, 1 if the disarmed timer still is, the cpu timer's interval in seconds and 1 if
 * /proc/self/timers shows that timer on the worker's current CPU clock. timer_gettime
 * failing on one of the ids, or a signal with a wrong value, prints `BAD ...` and
 * exits 3.
 * usage: posix_timers LIMIT [--own-thread-clock]
 *   --own-thread-clock  also a timer on CLOCK_THREAD_CPUTIME_ID of main, which a restart
 *                       of this multi-threaded process must refuse
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PERIODIC_SIG (SIGRTMIN + 2)
#define THREAD_SIG (SIGRTMIN + 3)
#define ONESHOT_SIG (SIGRTMIN + 4)

enum { T_PERIODIC, T_THREAD, T_ONESHOT, T_DISARMED, T_CPU, NTIMERS };
static int ids[NTIMERS];
static pthread_t worker, other;
static atomic_int worker_tid;
static atomic_long periodic_runs, thread_runs, wrong;

static void bad(const char *what, long v) {
    printf("BAD %s %ld\n", what, v);
    fflush(stdout);
    exit(3);
}

static void on_timer(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    /* A signal pending at checkpoint time comes back sent by the restart, not SI_TIMER. */
    if (sig == PERIODIC_SIG) {
        if (si->si_code == SI_TIMER && si->si_value.sival_int != 0x1111)
            atomic_fetch_add(&wrong, 1);
        atomic_fetch_add(&periodic_runs, 1);
    } else if (sig == THREAD_SIG) {
        if (!pthread_equal(pthread_self(), worker) ||
            (si->si_code == SI_TIMER && si->si_value.sival_int != 0x2222))
            atomic_fetch_add(&wrong, 1);
        else
            atomic_fetch_add(&thread_runs, 1);
    }
}

static void *idle(void *arg) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, THREAD_SIG);
    if (arg == (void *)2)
        sigaddset(&s, PERIODIC_SIG);
    else
        atomic_store(&worker_tid, (int)syscall(SYS_gettid));
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    for (;;) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static int make_timer(clockid_t clock, int notify, int sig, int value, int tid) {
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = notify;
    ev.sigev_signo = sig;
    ev.sigev_value.sival_int = value;
    ev._sigev_un._tid = tid;
    int id = -1;
    if (syscall(SYS_timer_create, clock, &ev, &id) != 0)
        bad("timer_create", errno);
    return id;
}

static void arm(int id, long value_s, long interval_ms) {
    struct itimerspec its = {{interval_ms / 1000, (interval_ms % 1000) * 1000000}, {value_s, 0}};
    if (value_s == 0)
        its.it_value.tv_nsec = interval_ms * 1000000;
    if (syscall(SYS_timer_settime, id, 0, &its, NULL) != 0)
        bad("timer_settime", errno);
}

static struct itimerspec get(int t) {
    struct itimerspec its;
    if (syscall(SYS_timer_gettime, ids[t], &its) != 0)
        bad("timer_gettime of id", ids[t]);
    return its;
}

/* Whether /proc/self/timers lists the cpu timer on the worker's CPU clock as it is now. */
static int cpu_clock_ok(void) {
    clockid_t want;
    if (pthread_getcpuclockid(worker, &want) != 0)
        return 0;
    FILE *f = fopen("/proc/self/timers", "r");
    if (!f)
        return 0;
    char line[256];
    int id = -1, ok = 0;
    while (fgets(line, sizeof line, f)) {
        int v;
        if (sscanf(line, "ID: %d", &v) == 1)
            id = v;
        else if (sscanf(line, "ClockID: %d", &v) == 1 && id == ids[T_CPU])
            ok = v == (int)want;
    }
    fclose(f);
    return ok;
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 100000;
    printf("start %d\n", getpid());
    fflush(stdout);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_timer;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(PERIODIC_SIG, &sa, NULL);
    sigaction(THREAD_SIG, &sa, NULL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, PERIODIC_SIG);
    sigaddset(&s, THREAD_SIG);
    sigaddset(&s, ONESHOT_SIG);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    pthread_create(&worker, NULL, idle, (void *)1);
    pthread_create(&other, NULL, idle, (void *)2);
    while (atomic_load(&worker_tid) == 0)
        usleep(1000);

    /* Gaps in the ids: the restart must give each its own, not the next free one. */
    int gap1 = make_timer(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, 0);
    int gap2 = make_timer(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, 0);
    ids[T_PERIODIC] = make_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL, PERIODIC_SIG, 0x1111, 0);
    int gap3 = make_timer(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, 0);
    ids[T_THREAD] = make_timer(CLOCK_MONOTONIC, SIGEV_THREAD_ID, THREAD_SIG, 0x2222, atomic_load(&worker_tid));
    ids[T_ONESHOT] = make_timer(CLOCK_REALTIME, SIGEV_SIGNAL, ONESHOT_SIG, 0x3333, 0);
    ids[T_DISARMED] = make_timer(CLOCK_BOOTTIME, SIGEV_NONE, 0, 0, 0);
    clockid_t cpu;
    if (pthread_getcpuclockid(worker, &cpu) != 0)
        bad("pthread_getcpuclockid", 0);
    ids[T_CPU] = make_timer(cpu, SIGEV_NONE, 0, 0, 0);
    syscall(SYS_timer_delete, gap1);
    syscall(SYS_timer_delete, gap2);
    syscall(SYS_timer_delete, gap3);
    arm(ids[T_PERIODIC], 0, 20);
    arm(ids[T_THREAD], 0, 30);
    arm(ids[T_ONESHOT], 1000, 0);
    arm(ids[T_CPU], 1000, 500000);
    if (argc > 2 && strcmp(argv[2], "--own-thread-clock") == 0)
        arm(make_timer(CLOCK_THREAD_CPUTIME_ID, SIGEV_NONE, 0, 0, 0), 1000, 0);
    printf("ids %d %d %d %d %d\ntid %d\n", ids[0], ids[1], ids[2], ids[3], ids[4], atomic_load(&worker_tid));
    fflush(stdout);

    for (long n = 1; n <= limit; n++) {
        struct itimerspec oneshot = get(T_ONESHOT), disarmed = get(T_DISARMED), cpu_t = get(T_CPU);
        get(T_PERIODIC);
        get(T_THREAD);
        if (atomic_load(&wrong))
            bad("timer signal on the wrong thread or with the wrong value", atomic_load(&wrong));
        printf("count %ld\ntimers %ld %ld %ld %d %ld %d\n", n, atomic_load(&periodic_runs),
               atomic_load(&thread_runs), oneshot.it_value.tv_sec * 1000 + oneshot.it_value.tv_nsec / 1000000,
               disarmed.it_value.tv_sec == 0 && disarmed.it_value.tv_nsec == 0 && disarmed.it_interval.tv_sec == 0,
               (long)cpu_t.it_interval.tv_sec, cpu_clock_ok());
        fflush(stdout);
        usleep(50000);
    }
    printf("done %ld\n", limit);
    fflush(stdout);
    return 0;
}
