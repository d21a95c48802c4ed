/* timers.c: an alarm() and a lowered resource limit set before the checkpoint are still
 * in force after a restart.
 * usage: timers LIMIT — arms alarm(2) at start (the handler prints `alarm`), lowers
 * RLIMIT_NOFILE's soft limit to 123, then prints `count N` and `nofile SOFT` every ~50 ms.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

static volatile sig_atomic_t rang;
static void on_alarm(int s) { (void)s; rang++; }

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 100000;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 123;
    setrlimit(RLIMIT_NOFILE, &rl);
    signal(SIGALRM, on_alarm);
    alarm(2);
    int reported = 0;
    for (long n = 1; n <= limit; n++) {
        getrlimit(RLIMIT_NOFILE, &rl);
        printf("count %ld\nnofile %ld\n", n, (long)rl.rlim_cur);
        if (rang != reported) {
            reported = rang;
            printf("alarm %d\n", reported);
        }
        fflush(stdout);
        usleep(50000);
    }
    printf("done %ld\n", limit);
    fflush(stdout);
    return 0;
}
