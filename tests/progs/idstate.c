/* idstate.c: what glibc and a program remember of process and thread ids, held across
 * checkpoints and restarts.
 *
 * Threads:
 *   - a loader thread that loops dlopen(PLUGIN) / dlsym / call / dlclose, so that a
 *     checkpoint often finds it inside the loader holding glibc's _dl_load_lock;
 *   - a holder thread that locks a recursive mutex (twice), an error-checking mutex and
 *     an rwlock for writing at start, then waits until the file RELEASE exists, then
 *     unlocks all of them and checks every unlock returned 0 (a stale owner makes them
 *     fail with EPERM, or corrupts the rwlock);
 *   - a clocked thread that spins; main took its CPU-time clock with
 *     pthread_getcpuclockid at start and reads it every count (EINVAL once the clock's
 *     thread id is stale), checking it only goes up.
 * Main caches getpid() and every thread's gettid() at start and checks them against
 * the live values every count.
 *
 * With `new-ids` (a restart that could not give the ids back) the id and CPU-clock
 * checks are left out: only the locks and the loader must still work.
 *
 * Prints `start PID`, then every ~50 ms `count N` (after the checks), `loads N` (the
 * loader's dlopen count) every 10 counts, `usr1 N` when SIGUSR1 has been caught N
 * times in all, `released` once the holder has unlocked everything (then main locks
 * each lock itself, with a timed lock, to prove it is free), and `done LIMIT`, then
 * exits 23. Any problem prints `BAD ...` and exits 3.
 *
 * usage: idstate PLUGIN RELEASE [LIMIT [new-ids]]
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char *plugin_path, *release_path;
static pthread_mutex_t recursive, errorcheck;
static pthread_rwlock_t rwlock = PTHREAD_RWLOCK_INITIALIZER;
static volatile long loads, spins;
static volatile int held, released;
static volatile sig_atomic_t usr1;

static void on_usr1(int sig) {
    (void)sig;
    usr1++;
}
static volatile pid_t tids[4]; /* main, loader, holder, clocked */

static void bad(const char *what, long detail) {
    printf("BAD %s %ld\n", what, detail);
    fflush(stdout);
    exit(3);
}

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static void *loader(void *arg) {
    (void)arg;
    tids[1] = gettid_();
    for (;;) {
        void *h = dlopen(plugin_path, RTLD_NOW | RTLD_LOCAL);
        if (!h) bad("dlopen", 0);
        int (*answer)(int) = (int (*)(int))dlsym(h, "plugin_answer");
        if (!answer) bad("dlsym", 0);
        if (answer(20) != 1120) bad("plugin_answer", answer(20));
        if (dlclose(h)) bad("dlclose", 0);
        loads++;
    }
    return NULL;
}

static void *holder(void *arg) {
    (void)arg;
    tids[2] = gettid_();
    if (pthread_mutex_lock(&recursive) || pthread_mutex_lock(&recursive) || pthread_mutex_lock(&errorcheck) ||
        pthread_rwlock_wrlock(&rwlock))
        bad("lock at start", 0);
    held = 1;
    while (access(release_path, F_OK) != 0) {
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    int r;
    if ((r = pthread_mutex_unlock(&recursive)) || (r = pthread_mutex_unlock(&recursive))) bad("recursive unlock", r);
    if ((r = pthread_mutex_unlock(&errorcheck))) bad("errorcheck unlock", r);
    if ((r = pthread_rwlock_unlock(&rwlock))) bad("rwlock unlock", r);
    released = 1;
    return NULL;
}

static void *clocked(void *arg) {
    (void)arg;
    tids[3] = gettid_();
    for (;;) spins++;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: idstate PLUGIN RELEASE [LIMIT]\n");
        return 2;
    }
    plugin_path = argv[1];
    release_path = argv[2];
    long limit = argc > 3 ? atol(argv[3]) : 100000;
    int check_ids = !(argc > 4 && !strcmp(argv[4], "new-ids"));
    signal(SIGUSR1, on_usr1);
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&recursive, &a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&errorcheck, &a);
    pid_t pid = getpid();
    tids[0] = gettid_();
    pthread_t t[3];
    pthread_create(&t[0], NULL, loader, NULL);
    pthread_create(&t[1], NULL, holder, NULL);
    pthread_create(&t[2], NULL, clocked, NULL);
    while (!held || !tids[1] || !tids[3]) usleep(1000);
    clockid_t cpu;
    if (pthread_getcpuclockid(t[2], &cpu)) bad("pthread_getcpuclockid", 0);
    printf("start %d\n", (int)pid);
    double last_cpu = -1;
    long cpu_changed_at = 0;
    int said_released = 0, said_usr1 = 0;
    for (long n = 1; n <= limit; n++) {
        struct timespec pause = {0, 50 * 1000 * 1000}, ts;
        while (nanosleep(&pause, &pause)) {
        }
        if (usr1 != said_usr1) printf("usr1 %d\n", said_usr1 = usr1);
        if (!check_ids) goto locks;
        if (getpid() != pid) bad("getpid changed from", pid);
        if (gettid_() != tids[0]) bad("main tid changed from", tids[0]);
        if (clock_gettime(cpu, &ts)) bad("clock_gettime of the clocked thread's CPU clock, errno", errno);
        double now = ts.tv_sec + ts.tv_nsec / 1e9;
        /* It spins: its clock moves on (from 0 again in a restarted process), unless the
         * machine is very busy for a while. */
        if (now != last_cpu) cpu_changed_at = n;
        if (n - cpu_changed_at > 60) bad("CPU clock of the spinning thread stood still at ms", (long)(now * 1000));
        last_cpu = now;
        /* Every thread's tid, as the kernel has it, is the one cached at start. */
        for (int i = 1; i < 4; i++) {
            char path[64];
            snprintf(path, sizeof path, "/proc/self/task/%d", (int)tids[i]);
            if (!released || i != 2)
                if (access(path, F_OK)) bad("no such thread any more", tids[i]);
        }
    locks:
        if (released && !said_released) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 2;
            int r;
            if ((r = pthread_mutex_timedlock(&recursive, &until)) || (r = pthread_mutex_unlock(&recursive)))
                bad("recursive mutex after release", r);
            if ((r = pthread_mutex_timedlock(&errorcheck, &until)) || (r = pthread_mutex_unlock(&errorcheck)))
                bad("errorcheck mutex after release", r);
            if ((r = pthread_rwlock_timedwrlock(&rwlock, &until)) || (r = pthread_rwlock_unlock(&rwlock)))
                bad("rwlock after release", r);
            pthread_join(t[1], NULL);
            printf("released\n");
            said_released = 1;
        }
        printf("count %ld\n", n);
        if (n % 10 == 0) printf("loads %ld\n", loads);
    }
    printf("done %ld\n", limit);
    return 23;
}
