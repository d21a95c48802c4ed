/* altstack.c: every thread has a 32 KiB alternate signal stack (as each thread of a Go
 * program has), so every handler installed with SA_ONSTACK, the checkpoint handler
 * included, must run there and never on the thread's own stack. Each thread fills
 * 14 KiB of its own stack, from 768 bytes below where it sleeps with a pattern, sleeps, and checks the
 * pattern: a handler that ran on that stack meanwhile overwrote it (`BAD ...`). Main
 * prints `count N` every 50 ms and `done N` at the end. Build it with -Wl,-z,now: the
 * lazy binder's frame on a function's first call is no handler's but would look like one.
 * usage: altstack LIMIT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ALT_SIZE (32 * 1024)
#define GAP 768            /* room left for the sleeping call itself */
#define PAINTED (14 * 1024) /* checked below that */

static void on_alt_stack(void) {
    stack_t ss = {.ss_sp = malloc(ALT_SIZE), .ss_size = ALT_SIZE, .ss_flags = 0};
    if (!ss.ss_sp || sigaltstack(&ss, 0)) {
        printf("BAD sigaltstack\n");
        exit(1);
    }
}

static void nap_ms(long ms) {
    struct timespec ts = {0, ms * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* Sleeps `ms` with the PAINTED bytes below this frame (minus GAP) filled with `v`;
 * returns how many of them changed meanwhile. */
static __attribute__((noinline)) long sleep_painted(long ms, unsigned char v) {
    volatile unsigned char *below = (unsigned char *)__builtin_frame_address(0) - GAP - PAINTED;
    for (long i = 0; i < PAINTED; i++) below[i] = v;
    nap_ms(ms);
    long changed = 0;
    for (long i = 0; i < PAINTED; i++) changed += below[i] != v;
    return changed;
}

static void *worker(void *arg) {
    long id = (long)arg;
    on_alt_stack();
    nap_ms(1);
    for (unsigned v = 1;; v++) {
        long changed = sleep_painted(2, (unsigned char)(v | 1));
        if (changed) {
            printf("BAD thread %ld: %ld bytes of its own stack were overwritten while it slept\n", id, changed);
            fflush(stdout);
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 100000;
    on_alt_stack();
    nap_ms(1);
    pthread_t t;
    for (long i = 1; i <= 3; i++)
        if (pthread_create(&t, 0, worker, (void *)i)) return 2;
    for (long n = 1; n <= limit; n++) {
        long changed = sleep_painted(50, (unsigned char)(n | 1));
        if (changed) printf("BAD main thread: %ld bytes of its own stack were overwritten while it slept\n", changed);
        printf("count %ld\n", n);
        fflush(stdout);
    }
    printf("done %ld\n", limit);
    fflush(stdout);
    return 0;
}
