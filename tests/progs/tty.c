/* tty.c: a program on a terminal across a restart.
 *
 * Sets its terminal (fd 0) to -icanon -echo -onlcr and catches SIGWINCH. Prints
 * `count N` every 100 ms; every 5 counts `tty icanon=X echo=Y onlcr=Z` as tcgetattr
 * says now (`tty none` if fd 0 is no terminal); `winch K ROWSxCOLS` after the K-th
 * SIGWINCH; from count READ_AT on, whatever was typed, as `typed <line>` per line; and
 * `done N` at LIMIT.
 * usage: tty LIMIT READ_AT
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static volatile sig_atomic_t winches;

static void on_winch(int sig) {
    (void)sig;
    winches++;
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 100000, read_at = argc > 2 ? atol(argv[2]) : 30;
    struct termios t;
    if (tcgetattr(0, &t) == 0) {
        t.c_lflag &= ~(ICANON | ECHO);
        t.c_oflag &= ~ONLCR;
        t.c_cc[VMIN] = 1;
        t.c_cc[VTIME] = 0;
        tcsetattr(0, TCSANOW, &t);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_winch;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGWINCH, &sa, 0);
    printf("start\n");
    fflush(stdout);
    char line[4096];
    size_t have = 0;
    int seen = 0;
    for (long n = 1; n <= limit; n++) {
        printf("count %ld\n", n);
        if (n % 5 == 0) {
            if (tcgetattr(0, &t) == 0)
                printf("tty icanon=%d echo=%d onlcr=%d\n", !!(t.c_lflag & ICANON), !!(t.c_lflag & ECHO),
                       !!(t.c_oflag & ONLCR));
            else
                printf("tty none\n");
        }
        if (winches != seen) {
            seen = winches;
            struct winsize w = {0};
            ioctl(1, TIOCGWINSZ, &w);
            printf("winch %d %dx%d\n", seen, w.ws_row, w.ws_col);
        }
        int waiting = 0;
        if (n >= read_at && ioctl(0, FIONREAD, &waiting) == 0 && waiting > 0) {
            if (waiting > (int)(sizeof line - 1 - have)) waiting = sizeof line - 1 - have;
            ssize_t got = read(0, line + have, waiting);
            if (got > 0) have += got;
            line[have] = 0;
            char *nl;
            while ((nl = strchr(line, '\n'))) {
                *nl = 0;
                printf("typed %s\n", line);
                have -= nl + 1 - line;
                memmove(line, nl + 1, have + 1);
            }
        }
        fflush(stdout);
        usleep(100000);
    }
    printf("done %ld\n", limit);
    fflush(stdout);
    return 0;
}
