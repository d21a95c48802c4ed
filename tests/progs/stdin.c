/* stdin.c: input waiting on standard input (a pipe or FIFO) across a restart.
 *
 * Prints `count N` every 50 ms. From count READ_AT on, reads one line every 5 counts, a
 * byte at a time (so the rest stays in the pipe), and prints `line <text>`, or `eof` at
 * the end of input (and reads no more); `done N` at LIMIT.
 * With BIG, first makes its stdin pipe hold 1 MiB and prints `ready`; from READ_AT on
 * reads BIG bytes, prints `total BIG sum S` (S: a checksum), then the rest of the input
 * up to its end, and prints `then K bytes`.
 * usage: stdin LIMIT READ_AT [BIG]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int read_line(char *buf, size_t size) {
    size_t n = 0;
    while (n < size - 1) {
        char c;
        ssize_t got = read(0, &c, 1);
        if (got <= 0) return n > 0 ? (int)n : -1;
        if (c == '\n') break;
        buf[n++] = c;
    }
    buf[n] = 0;
    return (int)n;
}

static void read_big(long big) {
    unsigned long sum = 0;
    long total = 0;
    char buf[8192];
    while (total < big) {
        size_t want = big - total < (long)sizeof buf ? (size_t)(big - total) : sizeof buf;
        ssize_t got = read(0, buf, want);
        if (got <= 0) break;
        for (ssize_t i = 0; i < got; i++) sum = sum * 31 + (unsigned char)buf[i];
        total += got;
    }
    printf("total %ld sum %lu\n", total, sum);
    fflush(stdout);
    long rest = 0;
    ssize_t got;
    while ((got = read(0, buf, sizeof buf)) > 0) rest += got;
    printf("then %ld bytes\n", rest);
    fflush(stdout);
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 100000, read_at = argc > 2 ? atol(argv[2]) : 10;
    long big = argc > 3 ? atol(argv[3]) : 0;
    if (big) {
        if (fcntl(0, F_SETPIPE_SZ, 1 << 20) < 0) printf("BAD F_SETPIPE_SZ\n");
        printf("ready\n");
    }
    printf("start\n");
    fflush(stdout);
    int ended = 0;
    for (long n = 1; n <= limit; n++) {
        printf("count %ld\n", n);
        fflush(stdout);
        if (n == read_at && big) read_big(big);
        if (n >= read_at && !big && !ended && (n - read_at) % 5 == 0) {
            char buf[256];
            if (read_line(buf, sizeof buf) < 0) {
                printf("eof\n");
                ended = 1;
            } else {
                printf("line %s\n", buf);
            }
            fflush(stdout);
        }
        usleep(50000);
    }
    printf("done %ld\n", limit);
    fflush(stdout);
    return 0;
}
