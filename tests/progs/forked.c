/* forked.c: what a program must never see of a forked checkpoint writer.
 *
 * usage: forked LOCKFILE MIB [subreaper]
 * Holds an flock on LOCKFILE (released on SIGUSR1, printing `unlocked`), has a child of
 * its own (asleep), and every ~50 ms: reaps with waitpid(-1, __WALL | WNOHANG) and
 * wait3 (any pid but its own child's is BAD), checks that every SIGCHLD came from its
 * own child, checks MIB MiB of a pattern and a shared anonymous page that it rewrites
 * each count (its version kept in private memory: an image must hold both as of one
 * moment), and prints `count N`. `subreaper`: it is a child subreaper first (then an
 * orphaned writer would come back to it: the checkpoint must be written in place).
 * After a restart (its start time in /proc/self/stat changes; the pid may not) its
 * child is gone (it is another process); it then stops watching it.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t unlock_wanted, foreign_sigchld;
static volatile pid_t child, sigchld_from;

static void on_usr1(int s) { (void)s; unlock_wanted = 1; }

static void on_chld(int s, siginfo_t *si, void *uc) {
    (void)s;
    (void)uc;
    if (si->si_pid != child) {
        foreign_sigchld = 1;
        sigchld_from = si->si_pid;
    }
}

static unsigned long long start_time(void) {
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long long t = 0;
    /* Field 22; fields 3 on follow the ')' that ends the name. */
    for (int field = 2; p && field < 22; field++) p = strchr(p + 1, ' ');
    if (p) t = strtoull(p + 1, 0, 10);
    return t;
}

static uint64_t pat(uint64_t i, uint64_t v) {
    uint64_t x = i * 0x9e3779b97f4a7c15ull + v * 0xbf58476d1ce4e5b9ull + 1;
    x ^= x >> 31;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 29);
}

static void bad(const char *what, long a, long count) {
    printf("BAD %s (%ld) at count %ld\n", what, a, count);
    fflush(stdout);
    exit(3);
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    size_t words = strtoul(argv[2], 0, 10) << 17;
    if (argc > 3 && !strcmp(argv[3], "subreaper")) prctl(PR_SET_CHILD_SUBREAPER, 1);
    struct sigaction sa = {0};
    sa.sa_flags = SA_RESTART | SA_SIGINFO;
    sa.sa_sigaction = on_chld;
    sigaction(SIGCHLD, &sa, 0);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, 0);
    pid_t me = getpid();
    unsigned long long started = start_time();
    child = fork();
    if (child == 0) {
        for (;;) pause();
    }
    /* Locked after the fork: the lock's open file is the program's alone. */
    int lock = open(argv[1], O_RDWR | O_CREAT, 0600);
    if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) != 0) bad("cannot lock", lock, 0);
    uint64_t *mem = malloc(words * 8);
    for (size_t i = 0; i < words; i++) mem[i] = pat(i, 0);
    uint64_t *shared = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    static uint64_t shared_version;
    for (int i = 0; i < 512; i++) shared[i] = pat(i, shared_version);
    printf("start %d child %d\n", (int)me, (int)child);
    fflush(stdout);
    struct timespec nap = {0, 50 * 1000 * 1000};
    for (long count = 1;; count++) {
        int restarted = start_time() != started;
        int st;
        pid_t r;
        while ((r = waitpid(-1, &st, __WALL | WNOHANG)) > 0)
            if (r != child) bad("waitpid(-1, __WALL) reaped a process not the program's own", r, count);
        struct rusage ru;
        while ((r = wait3(&st, WNOHANG, &ru)) > 0)
            if (r != child) bad("wait3 reaped a process not the program's own", r, count);
        if (!restarted && kill(child, 0) != 0) bad("the program's own child is gone", child, count);
        if (foreign_sigchld) bad("SIGCHLD from a process not the program's child", sigchld_from, count);
        for (size_t i = count % 61; i < words; i += 61)
            if (mem[i] != pat(i, 0)) bad("memory changed at word", (long)i, count);
        for (int i = 0; i < 512; i++)
            if (shared[i] != pat(i, shared_version)) bad("shared page does not match its version", (long)shared_version, count);
        shared_version++;
        for (int i = 0; i < 512; i++) shared[i] = pat(i, shared_version);
        if (unlock_wanted) {
            unlock_wanted = 0;
            close(lock);
            printf("unlocked\n");
        }
        printf("count %ld\n", count);
        fflush(stdout);
        nanosleep(&nap, 0);
    }
}
