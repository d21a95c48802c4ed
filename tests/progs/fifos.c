/* fifos.c: FIFOs opened by path across a restart.
 *
 * FIFO `ff_both` is opened O_RDWR: a message written at start is read at count READ_AT
 * (so it waits in the FIFO through a checkpoint), and each count a byte goes through
 * it. FIFO `ff_lonely` is opened O_RDONLY|O_NONBLOCK with no writer: a read must keep
 * returning 0 (end of file) or EAGAIN, and its flags must stay. Prints `count N`,
 * `held MSG` once and `done LIMIT`; any problem prints `BAD ...`.
 * usage: fifos LIMIT READ_AT
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 100000, read_at = argc > 2 ? atol(argv[2]) : 40;
    unlink("ff_both");
    unlink("ff_lonely");
    if (mkfifo("ff_both", 0600) || mkfifo("ff_lonely", 0600)) return 2;
    int both = open("ff_both", O_RDWR);
    int lonely = open("ff_lonely", O_RDONLY | O_NONBLOCK);
    if (both < 0 || lonely < 0) return 2;
    const char msg[] = "kept-in-the-fifo";
    if (write(both, msg, sizeof msg - 1) != sizeof msg - 1) return 2;
    printf("start\n");
    struct timespec pause = {0, 50 * 1000 * 1000};
    for (long n = 1; n <= limit; n++) {
        if (n == read_at) {
            char buf[64] = {0};
            ssize_t got = read(both, buf, sizeof msg - 1);
            printf("held %s\n", got > 0 ? buf : "(nothing)");
        } else if (n > read_at) {
            char c = 'a' + n % 26, back = 0;
            if (write(both, &c, 1) != 1 || read(both, &back, 1) != 1 || back != c)
                printf("BAD both: byte did not come through (%s)\n", strerror(errno));
        }
        char c;
        ssize_t r = read(lonely, &c, 1);
        if (r > 0 || (r < 0 && errno != EAGAIN)) printf("BAD lonely: read %zd (%s)\n", r, strerror(errno));
        if ((fcntl(lonely, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) != (O_RDONLY | O_NONBLOCK))
            printf("BAD lonely: flags %o\n", fcntl(lonely, F_GETFL));
        if ((fcntl(both, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) != O_RDWR) printf("BAD both: flags %o\n", fcntl(both, F_GETFL));
        printf("count %ld\n", n);
        fflush(stdout);
        nanosleep(&pause, 0);
    }
    printf("done %ld\n", limit);
    return 0;
}
