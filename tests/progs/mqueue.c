/* mqueue.c: POSIX message queues of every kind the checkpoint keeps.
 *   A  named, O_RDWR|O_NONBLOCK|O_CLOEXEC, mode 0640, 4 messages, no registration;
 *   B  named, O_RDONLY, empty, SIGEV_SIGNAL registration (SIGUSR1, value 0x5eed);
 *   C  unlinked, O_RDWR, 4 messages (one empty, one of 100 binary bytes), SIGEV_THREAD
 *      registration (glibc's helper thread and netlink socket);
 *   D  unlinked, O_RDWR|O_NONBLOCK, plus E, a second open file O_WRONLY|O_CLOEXEC, and
 *      D2 = dup(D); 2 messages; SIGEV_NONE registration.
 * usage: mqueue LIMIT PREFIX — queue names are PREFIX-a, PREFIX-b, ... Every 50 ms it
 * checks what can be checked without changing anything (attributes, flags, each
 * registration as a read of the queue shows it, that no notification fired) and prints
 * `count N`; `BAD ...` on any difference. Once a file `verify` exists in its working
 * directory it takes every message out (order, priorities, bytes), makes B and C fire
 * (B's signal must carry its value, C's thread its parameter), checks D's registration
 * and that D, D2 and E are one queue, prints `verified`, removes A and B, and ends with
 * `done`.
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

static char name_a[200], name_b[200];
static mqd_t qa, qb, qc, qd, qe, qd2;
static atomic_int b_signals, b_code, b_value, c_runs;
static void *_Atomic c_param;
static const char c_param_text[] = "thread-param";
static unsigned char binary[100];
static int bad;

#define BAD(...)                                                                                   \
    do {                                                                                           \
        printf("BAD " __VA_ARGS__);                                                                \
        printf("\n");                                                                              \
        bad = 1;                                                                                   \
    } while (0)

static void on_b(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    atomic_store(&b_code, si->si_code);
    atomic_store(&b_value, si->si_value.sival_int);
    atomic_fetch_add(&b_signals, 1);
}

static void on_c(union sigval v) {
    atomic_store(&c_param, v.sival_ptr);
    atomic_fetch_add(&c_runs, 1);
}

static mqd_t open_q(const char *name, int flags, long maxmsg, long msgsize) {
    struct mq_attr attr = {0, maxmsg, msgsize, 0};
    mqd_t q = mq_open(name, flags, 0640, &attr);
    if (q == (mqd_t)-1) {
        printf("BAD mq_open %s: %s\n", name, strerror(errno));
        exit(1);
    }
    return q;
}

static void send(mqd_t q, const void *msg, size_t len, unsigned prio) {
    if (mq_send(q, msg, len, prio)) {
        printf("BAD mq_send: %s\n", strerror(errno));
        exit(1);
    }
}

static void nap_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* The queue's attributes and the descriptor's flags. */
static void check_attr(const char *what, mqd_t q, long maxmsg, long msgsize, long curmsgs, int access, int nonblock,
                       int cloexec) {
    struct mq_attr a;
    if (mq_getattr(q, &a)) {
        BAD("%s: mq_getattr: %s", what, strerror(errno));
        return;
    }
    if (a.mq_maxmsg != maxmsg || a.mq_msgsize != msgsize || a.mq_curmsgs != curmsgs)
        BAD("%s: attributes %ld %ld %ld, not %ld %ld %ld", what, a.mq_maxmsg, a.mq_msgsize, a.mq_curmsgs, maxmsg,
            msgsize, curmsgs);
    if (!!(a.mq_flags & O_NONBLOCK) != nonblock) BAD("%s: O_NONBLOCK %d, not %d", what, !nonblock, nonblock);
    int fl = fcntl(q, F_GETFL), fd = fcntl(q, F_GETFD);
    if ((fl & O_ACCMODE) != access) BAD("%s: access mode %d, not %d", what, fl & O_ACCMODE, access);
    if (!!(fd & FD_CLOEXEC) != cloexec) BAD("%s: FD_CLOEXEC %d, not %d", what, !cloexec, cloexec);
}

/* The registration as a read of the queue shows it: NOTIFY (-1: none) and SIGNO, and
 * the bytes queued. */
static void check_status(const char *what, mqd_t q, int notify, int signo, long qsize) {
    char line[160];
    ssize_t n = pread(q, line, sizeof line - 1, 0);
    if (n <= 0) {
        BAD("%s: cannot read the queue's status: %s", what, strerror(errno));
        return;
    }
    line[n] = 0;
    long size, kind, sig, pid;
    if (sscanf(line, "QSIZE:%ld NOTIFY:%ld SIGNO:%ld NOTIFY_PID:%ld", &size, &kind, &sig, &pid) != 4) {
        BAD("%s: status line %s", what, line);
        return;
    }
    int want_pid = notify < 0 ? 0 : getpid();
    if (size != qsize || pid != want_pid || (notify >= 0 && (kind != notify || sig != signo)))
        BAD("%s: status %.*s, wanted QSIZE %ld NOTIFY %d SIGNO %d NOTIFY_PID %d", what, (int)strcspn(line, "\n"), line,
            qsize, notify, signo, want_pid);
}

static void check_quietly(void) {
    check_attr("A", qa, 6, 40, 4, O_RDWR, 1, 1);
    check_status("A", qa, -1, 0, 5 + 6 + 5 + 7);
    check_attr("B", qb, 3, 16, 0, O_RDONLY, 0, 0);
    check_status("B", qb, SIGEV_SIGNAL, SIGUSR1, 0);
    check_attr("C", qc, 5, 100, 4, O_RDWR, 0, 0);
    check_status("C", qc, SIGEV_THREAD, 0, 5 + 5 + 0 + 100);
    check_attr("D", qd, 4, 8, 2, O_RDWR, 1, 0);
    check_status("D", qd, SIGEV_NONE, 0, 6);
    check_attr("E", qe, 4, 8, 2, O_WRONLY, 0, 1);
    check_attr("D2", qd2, 4, 8, 2, O_RDWR, 1, 0);
    if (atomic_load(&b_signals) || atomic_load(&c_runs))
        BAD("a notification fired early: B %d, C %d", atomic_load(&b_signals), atomic_load(&c_runs));
}

/* Takes the next message: it must be `want` (len bytes) with priority `prio`. */
static void expect(const char *what, mqd_t q, const void *want, size_t len, unsigned prio, size_t msgsize) {
    char buf[128];
    unsigned got_prio = 0;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 2;
    ssize_t n = mq_timedreceive(q, buf, msgsize, &got_prio, &deadline);
    if (n < 0)
        BAD("%s: no message: %s", what, strerror(errno));
    else if ((size_t)n != len || got_prio != prio || memcmp(buf, want, len))
        BAD("%s: message of %zd bytes, priority %u, not the %zu bytes of priority %u expected", what, n, got_prio, len,
            prio);
}

static int wait_for(atomic_int *counter) {
    for (int i = 0; i < 200 && !atomic_load(counter); i++) nap_ms(10);
    return atomic_load(counter);
}

static void verify(void) {
    expect("A 1", qa, "a-high", 6, 9, 40);
    expect("A 2", qa, "a-high2", 7, 9, 40);
    expect("A 3", qa, "a-mid", 5, 5, 40);
    expect("A 4", qa, "a-low", 5, 1, 40);

    mqd_t writer = mq_open(name_b, O_WRONLY);
    if (writer == (mqd_t)-1) BAD("B: cannot open %s for writing: %s", name_b, strerror(errno));
    send(writer, "ping", 4, 0);
    if (!wait_for(&b_signals))
        BAD("B: no notification signal");
    else if (atomic_load(&b_code) != SI_MESGQ || atomic_load(&b_value) != 0x5eed)
        BAD("B: signal with code %d value %#x, not SI_MESGQ 0x5eed", atomic_load(&b_code), atomic_load(&b_value));
    else
        printf("B notified value %#x\n", atomic_load(&b_value));
    expect("B", qb, "ping", 4, 0, 16);

    expect("C 1", qc, "", 0, 7, 100);
    expect("C 2", qc, "c-one", 5, 3, 100);
    expect("C 3", qc, "c-two", 5, 3, 100);
    expect("C 4", qc, binary, sizeof binary, 1, 100);
    send(qc, "c-new", 5, 0);
    if (!wait_for(&c_runs))
        BAD("C: the notification thread did not run");
    else if (atomic_load(&c_param) != (void *)c_param_text)
        BAD("C: the notification thread got parameter %p, not %p", atomic_load(&c_param), (void *)c_param_text);
    else
        printf("C notified param %s\n", (const char *)atomic_load(&c_param));
    expect("C 5", qc, "c-new", 5, 0, 100);

    struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
    if (mq_notify(qd, &sev) == 0 || errno != EBUSY) BAD("D: its SIGEV_NONE registration is gone");
    expect("D 1", qd, "d-y", 3, 4, 8);
    expect("D 2", qd2, "d-x", 3, 2, 8);
    send(qe, "d-z", 3, 1);
    expect("D 3", qd2, "d-z", 3, 1, 8);
    if (!bad) printf("verified\n");
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 100000;
    const char *prefix = argc > 2 ? argv[2] : "/mtcp-mqueue";
    setvbuf(stdout, NULL, _IOLBF, 0);
    char name_c[200], name_d[200];
    snprintf(name_a, sizeof name_a, "%s-a", prefix);
    snprintf(name_b, sizeof name_b, "%s-b", prefix);
    snprintf(name_c, sizeof name_c, "%s-c", prefix);
    snprintf(name_d, sizeof name_d, "%s-d", prefix);
    for (int i = 0; i < 100; i++) binary[i] = (unsigned char)(i * 37 + 1);

    struct sigaction sa = {.sa_sigaction = on_b, .sa_flags = SA_SIGINFO | SA_RESTART};
    sigaction(SIGUSR1, &sa, NULL);

    qa = open_q(name_a, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_CREAT | O_EXCL, 6, 40);
    send(qa, "a-low", 5, 1);
    send(qa, "a-high", 6, 9);
    send(qa, "a-mid", 5, 5);
    send(qa, "a-high2", 7, 9);

    mq_close(open_q(name_b, O_RDWR | O_CREAT | O_EXCL, 3, 16));
    qb = mq_open(name_b, O_RDONLY);
    struct sigevent sev_b = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
    sev_b.sigev_value.sival_int = 0x5eed;
    if (qb == (mqd_t)-1 || mq_notify(qb, &sev_b)) BAD("B: %s", strerror(errno));

    qc = open_q(name_c, O_RDWR | O_CREAT | O_EXCL, 5, 100);
    mq_unlink(name_c);
    send(qc, "c-one", 5, 3);
    send(qc, "c-two", 5, 3);
    send(qc, "", 0, 7);
    send(qc, binary, sizeof binary, 1);
    struct sigevent sev_c = {.sigev_notify = SIGEV_THREAD, .sigev_notify_function = on_c};
    sev_c.sigev_value.sival_ptr = (void *)c_param_text;
    if (mq_notify(qc, &sev_c)) BAD("C: %s", strerror(errno));

    qd = open_q(name_d, O_RDWR | O_NONBLOCK | O_CREAT | O_EXCL, 4, 8);
    qe = mq_open(name_d, O_WRONLY | O_CLOEXEC);
    mq_unlink(name_d);
    qd2 = dup(qd);
    send(qe, "d-x", 3, 2);
    send(qe, "d-y", 3, 4);
    struct sigevent sev_d = {.sigev_notify = SIGEV_NONE};
    if (mq_notify(qd, &sev_d)) BAD("D: %s", strerror(errno));

    /* glibc opens every queue O_CLOEXEC: B, C and D go without it. */
    fcntl(qb, F_SETFD, 0);
    fcntl(qc, F_SETFD, 0);
    fcntl(qd, F_SETFD, 0);
    printf("start\n");
    for (long n = 1; n <= limit; n++) {
        check_quietly();
        printf("count %ld\n", n);
        if (access("verify", F_OK) == 0) {
            verify();
            break;
        }
        nap_ms(50);
    }
    mq_unlink(name_a);
    mq_unlink(name_b);
    printf("done\n");
    return bad;
}
