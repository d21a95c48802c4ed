/* allkinds.c: one descriptor of every kind an image records, each with some state: a
 * regular file, a directory, /dev/null, a pipe holding 5 bytes, an eventfd counting 7,
 * three timerfds never read (one every 30 ms, a one-shot that fired at
 * once, one that fired at once and then fires every 10 s), a signalfd for SIGUSR1, an epoll instance watching the
 * eventfd, a TCP listener on 127.0.0.1, a deleted file of 11 bytes, a FIFO holding 3
 * bytes, an inotify watch on the directory and an unlinked message queue holding one
 * message. Prints `count N` every 50 ms (`BAD ...` if a setup call fails); once a file
 * `read-timers` exists in DIR it reads the one-shot and the 10 s timers without
 * waiting, once: `timers A B` (1 and 1).
 * usage: allkinds DIR LIMIT
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static void check(int ok, const char *what) {
    if (!ok) {
        printf("BAD %s\n", what);
        exit(1);
    }
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : ".";
    long limit = argc > 2 ? atol(argv[2]) : 1000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    char path[4096];

    snprintf(path, sizeof path, "%s/regular.txt", dir);
    int file = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    check(file >= 0 && write(file, "hello", 5) == 5, "regular file");
    check(open(dir, O_RDONLY | O_DIRECTORY) >= 0, "directory");
    check(open("/dev/null", O_RDONLY) >= 0, "/dev/null");
    int p[2];
    check(pipe(p) == 0 && write(p[1], "bytes", 5) == 5, "pipe");
    int ev = eventfd(7, EFD_NONBLOCK);
    check(ev >= 0, "eventfd");
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec often = {{0, 30000000L}, {0, 30000000L}};
    check(tfd >= 0 && timerfd_settime(tfd, 0, &often, NULL) == 0, "timerfd");
    int once = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct itimerspec at_once = {{0, 0}, {0, 1000}};
    check(once >= 0 && timerfd_settime(once, 0, &at_once, NULL) == 0, "one-shot timerfd");
    int slow = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct itimerspec rarely = {{10, 0}, {0, 1000}};
    check(slow >= 0 && timerfd_settime(slow, 0, &rarely, NULL) == 0, "slow timerfd");
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    check(signalfd(-1, &set, 0) >= 0, "signalfd");
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = 42};
    check(ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e) == 0, "epoll");
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    check(l >= 0 && bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 5) == 0, "listener");
    snprintf(path, sizeof path, "%s/deleted.txt", dir);
    int del = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    check(del >= 0 && write(del, "hello world", 11) == 11 && unlink(path) == 0, "deleted file");
    snprintf(path, sizeof path, "%s/fifo", dir);
    check(mkfifo(path, 0600) == 0, "mkfifo");
    int fifo = open(path, O_RDWR);
    check(fifo >= 0 && write(fifo, "abc", 3) == 3, "fifo");
    int in = inotify_init1(0);
    check(in >= 0 && inotify_add_watch(in, dir, IN_CREATE | IN_DELETE) == 1, "inotify");
    char name[64];
    snprintf(name, sizeof name, "/mtcp-allkinds-%d", getpid());
    struct mq_attr attr = {0, 4, 32, 0};
    mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
    check(q != (mqd_t)-1 && mq_unlink(name) == 0 && mq_send(q, "queued", 6, 3) == 0, "message queue");

    char trigger[4096];
    snprintf(trigger, sizeof trigger, "%s/read-timers", dir);
    int timers_read = 0;
    for (long n = 1; n <= limit; n++) {
        printf("count %ld\n", n);
        if (!timers_read && access(trigger, F_OK) == 0) {
            timers_read = 1;
            uint64_t a = 0, b = 0;
            if (read(once, &a, 8) != 8 || read(slow, &b, 8) != 8) printf("BAD a timer did not expire\n");
            printf("timers %llu %llu\n", (unsigned long long)a, (unsigned long long)b);
        }
        struct timespec ts = {0, 50000000L};
        nanosleep(&ts, NULL);
    }
    printf("done %ld\n", limit);
    return 0;
}
