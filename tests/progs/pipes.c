/* pipes.c: pipes inside one process across a restart.
 *
 * A pipe holds a message written at start and read only at count READ_AT (so it sits in
 * the pipe through the checkpoint); a thread blocks in read() on a second pipe that main
 * feeds every 5 counts. Prints `count N`, `held <msg>` once, `got <msgK>` per message
 * (in order; a gap prints `BAD order`), and `done N` at the limit.
 * usage: pipes LIMIT READ_AT
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int held[2], feed[2];
static volatile int next_expected;

static void *reader(void *arg) {
    char buf[64];
    size_t have = 0;
    for (;;) {
        ssize_t n = read(feed[0], buf + have, sizeof buf - 1 - have);
        if (n <= 0) {
            printf("BAD read returned %zd\n", n);
            fflush(stdout);
            exit(3);
        }
        have += n;
        buf[have] = 0;
        char *nl;
        while ((nl = strchr(buf, '\n'))) {
            *nl = 0;
            int k = atoi(buf + 3);
            if (k != next_expected) printf("BAD order: got %d expected %d\n", k, next_expected);
            next_expected = k + 1;
            printf("got %s\n", buf);
            fflush(stdout);
            have -= nl + 1 - buf;
            memmove(buf, nl + 1, have + 1);
        }
    }
    return arg;
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 100000, read_at = argc > 2 ? atol(argv[2]) : 40;
    if (pipe(held) || pipe(feed)) return 2;
    const char msg[] = "kept-across-the-restart";
    if (write(held[1], msg, sizeof msg - 1) != sizeof msg - 1) return 2;
    pthread_t t;
    pthread_create(&t, 0, reader, 0);
    int sent = 0;
    for (long n = 1; n <= limit; n++) {
        printf("count %ld\n", n);
        fflush(stdout);
        if (n == read_at) {
            char buf[64] = {0};
            ssize_t got = read(held[0], buf, sizeof buf - 1);
            printf("held %s\n", got > 0 ? buf : "(nothing)");
            fflush(stdout);
        }
        if (n % 5 == 0) {
            char m[32];
            int len = snprintf(m, sizeof m, "msg%d\n", sent++);
            if (write(feed[1], m, len) != len) printf("BAD write\n");
        }
        usleep(50000);
    }
    usleep(100000);
    printf("done %ld\n", limit);
    fflush(stdout);
    return 0;
}
