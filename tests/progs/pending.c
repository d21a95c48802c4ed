/* pending.c: signals pending at checkpoint time must still be pending after a restart.
 *
 * Blocks SIGUSR1 and SIGHUP, raises SIGUSR1 for the main thread and sends SIGHUP to the
 * process, then prints `count N`; at count UNBLOCK_AT it unblocks both and from then
 * on prints `got usr1=A hup=B` each count (each handler must have run exactly once).
 * usage: pending LIMIT UNBLOCK_AT
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static volatile sig_atomic_t usr1, hup;
static void on_usr1(int s) { (void)s; usr1++; }
static void on_hup(int s) { (void)s; hup++; }

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 100000, unblock_at = argc > 2 ? atol(argv[2]) : 40;
    signal(SIGUSR1, on_usr1);
    signal(SIGHUP, on_hup);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGHUP);
    sigprocmask(SIG_BLOCK, &s, 0);
    raise(SIGUSR1);
    kill(getpid(), SIGHUP);
    for (long n = 1; n <= limit; n++) {
        printf("count %ld\n", n);
        if (n == unblock_at) sigprocmask(SIG_UNBLOCK, &s, 0);
        if (n >= unblock_at) printf("got usr1=%d hup=%d\n", (int)usr1, (int)hup);
        if (n < unblock_at && (usr1 || hup)) printf("BAD a blocked signal was delivered\n");
        fflush(stdout);
        usleep(50000);
    }
    printf("done %ld\n", limit);
    fflush(stdout);
    return 0;
}
