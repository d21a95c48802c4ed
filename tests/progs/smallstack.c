/* smallstack.c: the checkpoint runs on whichever thread takes it; here that is a thread
 * with the smallest stack pthreads allows (PTHREAD_STACK_MIN), calling mtcp_checkpoint().
 * Main prints `count N`; at count CKPT_AT the small thread checkpoints and prints
 * `api checkpointed` or, after a restart, `api restarted`; eight more small-stack
 * threads keep counting and must go on after the restart (`BAD` if one stalls 0.5 s).
 * usage: smallstack LIMIT CKPT_AT (build with libmtcp.a)
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mtcp.h"

static volatile long progress[8];
static volatile long ckpt_at, current;

static void *worker(void *arg) {
    long i = (long)arg;
    for (;;) {
        progress[i]++;
        usleep(1000);
    }
    return 0;
}

static void *checkpointer(void *arg) {
    (void)arg;
    while (current < ckpt_at) usleep(1000);
    int r = mtcp_checkpoint();
    printf(r == MTCP_CHECKPOINTED ? "api checkpointed\n" : r == MTCP_RESTARTED ? "api restarted\n" : "BAD api %d\n", r);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 100000;
    ckpt_at = argc > 2 ? atol(argv[2]) : 5;
    pthread_attr_t small;
    pthread_attr_init(&small);
    pthread_attr_setstacksize(&small, PTHREAD_STACK_MIN);
    pthread_t t;
    for (long i = 0; i < 8; i++)
        if (pthread_create(&t, &small, worker, (void *)i)) return 2;
    if (pthread_create(&t, &small, checkpointer, 0)) return 2;
    long seen[8] = {0}, still[8] = {0};
    for (long n = 1; n <= limit; n++) {
        current = n;
        usleep(50000);
        for (int i = 0; i < 8; i++) {
            /* A checkpoint stops every thread for a moment; half a second is a stall. */
            still[i] = progress[i] == seen[i] ? still[i] + 1 : 0;
            if (still[i] == 10) printf("BAD worker %d stalled\n", i);
            seen[i] = progress[i];
        }
        printf("count %ld\n", n);
        fflush(stdout);
    }
    printf("done %ld\n", limit);
    fflush(stdout);
    return 0;
}
