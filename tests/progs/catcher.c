/* catcher.c: a program WITHOUT the mtcp runtime that nevertheless catches SIGUSR2 (as
 * bash does for its own clean-up) and dies when it arrives. `mtcp checkpoint` must not
 * mistake it for an mtcp process: sending it the checkpoint signal would kill it. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void on_usr2(int sig) {
    static const char msg[] = "caught SIGUSR2: exiting\n";
    (void)sig;
    write(1, msg, sizeof msg - 1);
    _exit(5);
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}
