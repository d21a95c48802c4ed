/* sigev.c: glibc's helper threads, which block every signal: two SIGEV_THREAD timers
 * (glibc runs their callbacks from its timer helper thread) and an mq_notify
 * registration (glibc's netlink helper thread).
 * usage: sigev LIMIT — prints `count N` every ~100 ms with `ticks A B` (the two timers'
 * callback runs so far), then `done LIMIT`. Timer A fires every 20 ms, timer B every
 * 35 ms. It registers for a notification on an empty (unlinked) message queue and sends
 * it a message every 5 counts; each notification registers again and empties the queue,
 * and `notified K` is printed each time K, the notifications so far, grows.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_long ticks[2];
static atomic_int notified;
static mqd_t q;
static struct sigevent on_queue;

static void on_tick(union sigval v) { atomic_fetch_add(&ticks[v.sival_int], 1); }
static void on_message(union sigval v) {
    (void)v;
    if (mq_notify(q, &on_queue)) perror("mq_notify again");
    char buf[16];
    while (mq_receive(q, buf, sizeof buf, NULL) >= 0) {
    }
    atomic_fetch_add(&notified, 1);
}

static timer_t make_timer(int which, long period_ms) {
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD;
    sev.sigev_notify_function = on_tick;
    sev.sigev_value.sival_int = which;
    timer_t id;
    if (timer_create(CLOCK_MONOTONIC, &sev, &id)) {
        perror("timer_create");
        exit(1);
    }
    struct itimerspec its = {{0, period_ms * 1000000L}, {0, period_ms * 1000000L}};
    if (timer_settime(id, 0, &its, NULL)) {
        perror("timer_settime");
        exit(1);
    }
    return id;
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 100000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    char name[64];
    snprintf(name, sizeof name, "/mtcp-sigev-%d", getpid());
    struct mq_attr attr = {0, 4, 16, 0};
    q = mq_open(name, O_RDWR | O_NONBLOCK | O_CREAT | O_EXCL, 0600, &attr);
    if (q == (mqd_t)-1) {
        perror("mq_open");
        return 1;
    }
    mq_unlink(name);
    memset(&on_queue, 0, sizeof on_queue);
    on_queue.sigev_notify = SIGEV_THREAD;
    on_queue.sigev_notify_function = on_message;
    if (mq_notify(q, &on_queue)) {
        perror("mq_notify");
        return 1;
    }
    make_timer(0, 20);
    make_timer(1, 35);
    int told = 0;
    for (long n = 1; n <= limit; n++) {
        printf("count %ld\nticks %ld %ld\n", n, atomic_load(&ticks[0]), atomic_load(&ticks[1]));
        if (n % 5 == 3 && mq_send(q, "x", 1, 0) && errno != EAGAIN) {
            perror("mq_send");
            return 1;
        }
        int k = atomic_load(&notified);
        if (k != told) {
            told = k;
            printf("notified %d\n", k);
        }
        struct timespec ts = {0, 100000000L};
        while (nanosleep(&ts, &ts)) {
        }
    }
    printf("done %ld\n", limit);
    return 0;
}
