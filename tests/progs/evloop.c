/* evloop.c: an event loop on epoll over an eventfd (written by a worker thread, watched
 * edge-triggered and read only every fifth timer tick, so it usually holds a count), a
 * periodic timerfd (behind a second, nested epoll instance) and a signalfd (SIGUSR1,
 * sent by another thread). Every fifth tick it prints
 *   state ev=E ew=W tm=T sg=S ms=M
 *   count N
 * where E is what it read from the eventfd, W how often epoll woke it for the eventfd,
 * T the timer expirations, S the signals and M the CLOCK_MONOTONIC time in ms.
 * At the end it stops the writer, drains the eventfd and checks that it read exactly
 * what was written (`balance ok`, or `BAD ...`). Anything unexpected prints `BAD ...`.
 * usage: evloop LIMIT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

enum { EV = 1, INNER = 2, SIG = 3, TIMER = 20 };

static int efd;
static volatile int stop_writer;
static volatile uint64_t written;

static void nap_ms(long ms) {
    struct timespec ts = {0, ms * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static void *writer(void *arg) {
    (void)arg;
    while (!stop_writer) {
        uint64_t one = 1;
        if (write(efd, &one, 8) != 8) {
            printf("BAD eventfd write: %s\n", strerror(errno));
            fflush(stdout);
        } else {
            __atomic_add_fetch(&written, 1, __ATOMIC_SEQ_CST);
        }
        nap_ms(7);
    }
    return 0;
}

static void *signaller(void *arg) {
    (void)arg;
    for (;;) {
        kill(getpid(), SIGUSR1);
        nap_ms(30);
    }
    return 0;
}

static void add(int ep, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev = {.events = events, .data.u64 = data};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
        printf("BAD epoll_ctl %d: %s\n", fd, strerror(errno));
        exit(1);
    }
}

/* Reads 8 bytes; 0 if nothing was there. */
static uint64_t read_u64(int fd, const char *what) {
    uint64_t v = 0;
    ssize_t n = read(fd, &v, 8);
    if (n == 8) return v;
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    printf("BAD read %s: %zd %s\n", what, n, n < 0 ? strerror(errno) : "");
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 100000;
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, 0); /* before any thread: all inherit it */

    efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    int sfd = signalfd(-1, &usr1, SFD_NONBLOCK | SFD_CLOEXEC);
    int inner = epoll_create1(EPOLL_CLOEXEC);
    int outer = epoll_create1(EPOLL_CLOEXEC);
    if (efd < 0 || tfd < 0 || sfd < 0 || inner < 0 || outer < 0) {
        printf("BAD setup: %s\n", strerror(errno));
        return 1;
    }
    struct itimerspec every = {{0, 20000000}, {0, 20000000}};
    timerfd_settime(tfd, 0, &every, 0);
    add(inner, tfd, EPOLLIN, TIMER);
    add(outer, inner, EPOLLIN, INNER);
    add(outer, efd, EPOLLIN | EPOLLET, EV);
    add(outer, sfd, EPOLLIN, SIG);

    pthread_t t;
    pthread_create(&t, 0, writer, 0);
    pthread_create(&t, 0, signaller, 0);

    uint64_t ev = 0, tm = 0, sg = 0, ev_wakeups = 0;
    long n = 0;
    while (n < limit) {
        struct epoll_event got[8];
        int k = epoll_wait(outer, got, 8, 2000);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            printf("BAD epoll_wait: %s\n", strerror(errno));
            return 1;
        }
        if (k == 0) {
            printf("BAD no event for 2 s\n");
            fflush(stdout);
        }
        for (int i = 0; i < k; i++) {
            switch (got[i].data.u64) {
            case EV:
                ev_wakeups++;
                break;
            case SIG: {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) == sizeof si) {
                    if (si.ssi_signo != SIGUSR1) printf("BAD signal %u\n", si.ssi_signo);
                    sg++;
                }
                break;
            }
            case INNER: {
                struct epoll_event e;
                int m = epoll_wait(inner, &e, 1, 0);
                if (m == 1 && e.data.u64 != TIMER) printf("BAD inner data %llu\n", (unsigned long long)e.data.u64);
                uint64_t ticks = read_u64(tfd, "timerfd");
                for (uint64_t j = 0; j < ticks; j++) {
                    tm++;
                    if (tm % 5 == 0) ev += read_u64(efd, "eventfd");
                    if (tm % 5 == 0 && n < limit) {
                        n++;
                        struct timespec now;
                        clock_gettime(CLOCK_MONOTONIC, &now);
                        printf("state ev=%llu ew=%llu tm=%llu sg=%llu ms=%lld\ncount %ld\n", (unsigned long long)ev,
                               (unsigned long long)ev_wakeups, (unsigned long long)tm, (unsigned long long)sg,
                               (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000, n);
                        fflush(stdout);
                    }
                }
                break;
            }
            default:
                printf("BAD data %llu\n", (unsigned long long)got[i].data.u64);
            }
        }
    }
    stop_writer = 1;
    nap_ms(50);
    ev += read_u64(efd, "eventfd");
    uint64_t w = __atomic_load_n(&written, __ATOMIC_SEQ_CST);
    if (ev == w)
        printf("balance ok %llu\n", (unsigned long long)ev);
    else
        printf("BAD balance: wrote %llu, read %llu\n", (unsigned long long)w, (unsigned long long)ev);
    if (ev_wakeups == 0) printf("BAD no eventfd wake-up\n");
    printf("done %ld\n", n);
    fflush(stdout);
    return 0;
}
