/* eintr.c: threads that wait in every kind of interruptible system call and treat EINTR
 * as fatal, as many real programs do. A checkpoint must never make one of them fail.
 * usage: eintr LIMIT [nosockets] — prints `count N` every ~100 ms (the main thread sleeps in
 * clock_nanosleep between lines), then `waits W` with the number of timed waits that
 * completed in every thread, and `done LIMIT`. Any call failing with EINTR prints
 * `BAD EINTR in CALL` and exits 3.
 * Threads: poll, ppoll, select, pselect (with a mask blocking SIGUSR2), epoll_wait,
 * epoll_pwait, nanosleep, clock_nanosleep, futex wait, semtimedop, semop, msgrcv, read on
 * a pipe, write into a full pipe, recv on a socket with SO_RCVTIMEO, pause, sigsuspend,
 * sigtimedwait, and one that blocks every signal with a raw rt_sigprocmask and sleeps in
 * nanosleep. `nosockets` leaves out the socket and its recv
 * thread (a restart does not bring sockets back).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define STEP_MS 50
static atomic_long waits;
static int pipe_fds[2], full_fds[2], sock_fds[2], epfd, semid, msqid;
static atomic_int futex_word;
/* Set once main is done: the IPC objects go away and the waits may fail. */
static atomic_int finishing;

static void check(long r, const char *what) {
    if (atomic_load(&finishing))
        for (;;) pause();
    if (r < 0 && errno == EINTR) {
        printf("BAD EINTR in %s\n", what);
        fflush(stdout);
        _exit(3);
    }
    if (r < 0 && errno != EAGAIN && errno != ETIMEDOUT && errno != EWOULDBLOCK) {
        printf("BAD error in %s: %s\n", what, strerror(errno));
        fflush(stdout);
        _exit(4);
    }
    atomic_fetch_add(&waits, 1);
}

static struct timespec step(void) {
    struct timespec ts = {0, STEP_MS * 1000000L};
    return ts;
}

static void *t_poll(void *a) {
    (void)a;
    struct pollfd p = {pipe_fds[0], 0, 0}; /* no events asked: only the timeout ends it */
    for (;;) check(poll(&p, 1, STEP_MS), "poll");
}
static void *t_ppoll(void *a) {
    (void)a;
    struct pollfd p = {pipe_fds[0], 0, 0};
    for (;;) {
        struct timespec ts = step();
        check(ppoll(&p, 1, &ts, NULL), "ppoll");
    }
}
static void *t_select(void *a) {
    (void)a;
    for (;;) {
        struct timeval tv = {0, STEP_MS * 1000};
        check(select(0, NULL, NULL, NULL, &tv), "select");
    }
}
static void *t_pselect(void *a) {
    (void)a;
    sigset_t blocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGUSR2);
    for (;;) {
        struct timespec ts = step();
        check(pselect(0, NULL, NULL, NULL, &ts, &blocked), "pselect");
    }
}
static void *t_epoll_wait(void *a) {
    (void)a;
    struct epoll_event ev;
    for (;;) check(epoll_wait(epfd, &ev, 1, STEP_MS), "epoll_wait");
}
static void *t_epoll_pwait(void *a) {
    (void)a;
    struct epoll_event ev;
    sigset_t none;
    sigemptyset(&none);
    for (;;) check(epoll_pwait(epfd, &ev, 1, STEP_MS, &none), "epoll_pwait");
}
static void *t_nanosleep(void *a) {
    (void)a;
    for (;;) {
        struct timespec ts = step();
        check(nanosleep(&ts, NULL), "nanosleep");
    }
}
static void *t_clock_nanosleep(void *a) {
    (void)a;
    for (;;) {
        struct timespec ts = step();
        int r = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
        if (r) errno = r;
        check(r ? -1 : 0, "clock_nanosleep");
    }
}
static void *t_futex(void *a) {
    (void)a;
    for (;;) {
        struct timespec ts = step();
        check(syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0), "futex");
    }
}
static void *t_semtimedop(void *a) {
    (void)a;
    for (;;) {
        struct sembuf op = {0, -1, 0};
        struct timespec ts = step();
        check(semtimedop(semid, &op, 1, &ts), "semtimedop");
    }
}
static void *t_semop(void *a) {
    (void)a;
    for (;;) {
        struct sembuf op = {1, -1, 0}; /* posted by the feeder */
        check(semop(semid, &op, 1), "semop");
    }
}
static void *t_msgrcv(void *a) {
    (void)a;
    struct {
        long type;
        char text[8];
    } m;
    for (;;) check(msgrcv(msqid, &m, sizeof m.text, 0, 0), "msgrcv");
}
static void *t_read(void *a) {
    (void)a;
    char c;
    for (;;) check(read(pipe_fds[0], &c, 1), "read");
}
static void *t_recv(void *a) {
    (void)a;
    struct timeval tv = {0, STEP_MS * 1000};
    setsockopt(sock_fds[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c;
    for (;;) check(recv(sock_fds[0], &c, 1, 0), "recv");
}
static void *t_blocks_all(void *a) {
    (void)a;
    unsigned long all = ~0UL;
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, NULL, 8);
    for (;;) {
        struct timespec ts = step();
        check(syscall(SYS_nanosleep, &ts, NULL), "nanosleep with every signal blocked");
    }
}
static void *t_pause(void *a) {
    (void)a;
    for (;;) {
        pause(); /* only a handler ends it, and none runs in this program */
        check(-1, "pause");
    }
}
static void *t_sigsuspend(void *a) {
    (void)a;
    sigset_t none;
    sigemptyset(&none);
    for (;;) {
        sigsuspend(&none);
        check(-1, "sigsuspend");
    }
}
static void *t_sigtimedwait(void *a) {
    (void)a;
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    for (;;) {
        struct timespec ts = step();
        check(sigtimedwait(&usr1, NULL, &ts), "sigtimedwait");
    }
}
/* Writes into a full pipe: each write waits until the feeder takes a byte out. */
static void *t_write(void *a) {
    (void)a;
    for (;;) check(write(full_fds[1], "y", 1), "write");
}
/* Feeds the blocking readers every STEP_MS. */
static void *t_feeder(void *a) {
    (void)a;
    struct {
        long type;
        char text[8];
    } m = {1, "x"};
    for (;;) {
        struct timespec ts = step();
        while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR) {
        }
        if (write(pipe_fds[1], "x", 1) != 1) _exit(5);
        char y;
        if (read(full_fds[0], &y, 1) != 1) _exit(6);
        struct sembuf post = {1, 1, 0};
        semop(semid, &post, 1);
        msgsnd(msqid, &m, 2, 0);
    }
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 100000;
    int sockets = !(argc > 2 && strcmp(argv[2], "nosockets") == 0);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (pipe(pipe_fds) || pipe(full_fds) || (sockets && socketpair(AF_UNIX, SOCK_STREAM, 0, sock_fds))) return 1;
    /* Fill the second pipe, so that t_write waits. */
    fcntl(full_fds[1], F_SETFL, O_NONBLOCK);
    while (write(full_fds[1], "y", 1) == 1) {
    }
    fcntl(full_fds[1], F_SETFL, 0);
    epfd = epoll_create1(0);
    struct epoll_event ev = {EPOLLIN, {0}};
    epoll_ctl(epfd, EPOLL_CTL_ADD, pipe_fds[1], &ev); /* a write end: never readable */
    semid = semget(IPC_PRIVATE, 2, 0600);
    msqid = msgget(IPC_PRIVATE, 0600);
    if (epfd < 0 || semid < 0 || msqid < 0) {
        perror("setup");
        return 1;
    }
    void *(*bodies[])(void *) = {t_poll,     t_ppoll,     t_select,  t_pselect,   t_epoll_wait,
                                 t_epoll_pwait, t_nanosleep, t_clock_nanosleep, t_futex, t_semtimedop,
                                 t_semop,    t_msgrcv,    t_read,    t_recv,      t_blocks_all, t_pause,
                                 t_sigsuspend, t_sigtimedwait, t_write, t_feeder};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        pthread_t t;
        if (bodies[i] == t_recv && !sockets) continue;
        if (pthread_create(&t, NULL, bodies[i], NULL)) return 1;
    }
    for (long n = 1; n <= limit; n++) {
        printf("count %ld\n", n);
        struct timespec ts = {0, 100000000L};
        int r = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
        if (r) errno = r;
        check(r ? -1 : 0, "clock_nanosleep (main thread)");
    }
    printf("waits %ld\n", atomic_load(&waits));
    atomic_store(&finishing, 1);
    semctl(semid, 0, IPC_RMID);
    msgctl(msqid, IPC_RMID, NULL);
    printf("done %ld\n", limit);
    return 0;
}
