/* oldsignal.c: handlers installed with signal() (no SA_SIGINFO), which i386 kernels
 * deliver with the old, non-rt signal frame.
 *
 * usage: oldsignal LIMIT   each ~50 ms raises SIGUSR1 and sends itself SIGHUP, whose
 * handlers count; prints `count N` when both were handled once more (`BAD ...` and
 * exit 3 otherwise), then `done LIMIT`.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t usr1, hup;

static void on_usr1(int s) {
    (void)s;
    usr1++;
}

static void on_hup(int s) {
    (void)s;
    hup++;
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 100;
    if (signal(SIGUSR1, on_usr1) == SIG_ERR || signal(SIGHUP, on_hup) == SIG_ERR) {
        puts("BAD signal");
        return 3;
    }
    printf("start %d\n", (int)getpid());
    fflush(stdout);
    for (long n = 1; n <= limit; n++) {
        raise(SIGUSR1);
        kill(getpid(), SIGHUP);
        if (usr1 != n || hup != n) {
            printf("BAD handled usr1=%d hup=%d at %ld\n", (int)usr1, (int)hup, n);
            fflush(stdout);
            return 3;
        }
        printf("count %ld\n", n);
        fflush(stdout);
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    printf("done %ld\n", limit);
    fflush(stdout);
    return 0;
}
