/* bigpipe.c: a pipe inside the process holding more than /proc/sys/fs/pipe-max-size
 * usually lets a user's pipe hold (the test raises that limit while this starts), for the
 * restart's pipe checks.
 *
 * usage: bigpipe MIB   prints `held N` (the bytes in the pipe), then `count N` every
 * 50 ms.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    size_t bytes = (size_t)(argc > 1 ? atoi(argv[1]) : 2) << 20;
    int p[2];
    if (pipe(p) || fcntl(p[1], F_SETPIPE_SZ, (int)(2 * bytes)) < 0) {
        perror("BAD pipe");
        return 3;
    }
    char *buf = malloc(bytes);
    memset(buf, 'x', bytes);
    if (write(p[1], buf, bytes) != (ssize_t)bytes) {
        perror("BAD write");
        return 3;
    }
    printf("held %zu\n", bytes);
    fflush(stdout);
    for (long n = 1;; n++) {
        printf("count %ld\n", n);
        fflush(stdout);
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}
