/* sockets.c: sockets across a restart.
 *
 * Prints `count N` every ~50 ms and, depending on MODE:
 *   tcp4 PORT / tcp6 PORT  listens on 127.0.0.1 / ::1 (SO_REUSEADDR, TCP_NODELAY,
 *                          non-blocking, close-on-exec); answers each connection's
 *                          line with `pong N` and closes it; prints `served N`
 *   udp PORT               bound to 127.0.0.1:PORT; answers each datagram with `pong N`
 *   unix PATH              listens on the Unix path; answers like tcp4
 *   pair READ_AT           Unix stream, datagram and seqpacket socket pairs with bytes
 *                          queued in both directions; at count READ_AT it reads them all
 *                          and prints `held s0=.. s1=.. d0=.. d1=.. q0=.. q1=..`
 *   conn PORT READ_AT      connects to 127.0.0.1:PORT (the test's listener); at count
 *                          READ_AT reads from it and prints `conn reset`, `conn eof`,
 *                          `conn data` or `conn error E`
 *   uconn PATH READ_AT     the same over a Unix stream connection to PATH
 * Then prints the options it sees on its socket as `opts ...` at start and at READ_AT
 * (modes tcp4/tcp6), and `done LIMIT` at LIMIT (400).
 * usage: sockets MODE ARG [READ_AT]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static long count;

static void die(const char *what) {
    printf("BAD %s: %s\n", what, strerror(errno));
    fflush(stdout);
    exit(3);
}

static int listen_on(int family, const char *arg, int type) {
    int s = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) die("socket");
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family != AF_UNIX && type == SOCK_STREAM) setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (family == AF_INET) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(arg))};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(s, (struct sockaddr *)&a, sizeof a)) die("bind");
    } else if (family == AF_INET6) {
        setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(atoi(arg)), .sin6_addr = in6addr_loopback};
        if (bind(s, (struct sockaddr *)&a, sizeof a)) die("bind");
    } else {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        strncpy(a.sun_path, arg, sizeof a.sun_path - 1);
        if (bind(s, (struct sockaddr *)&a, sizeof a)) die("bind");
    }
    if (type == SOCK_STREAM && listen(s, 16)) die("listen");
    return s;
}

static void print_opts(int s) {
    int v = 0, nd = 0, rv = 0;
    socklen_t l = sizeof v;
    getsockopt(s, SOL_SOCKET, SO_REUSEADDR, &rv, &l);
    l = sizeof v;
    getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &nd, &l);
    l = sizeof v;
    getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, &v, &l);
    int fl = fcntl(s, F_GETFL), fd = fcntl(s, F_GETFD);
    printf("opts fd=%d reuseaddr=%d nodelay=%d listening=%d nonblock=%d cloexec=%d\n", s, rv != 0, nd != 0, v != 0,
           (fl & O_NONBLOCK) != 0, (fd & FD_CLOEXEC) != 0);
}

static void serve_stream(int s) {
    int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) return;
    char buf[64];
    struct pollfd p = {c, POLLIN, 0};
    if (poll(&p, 1, 2000) == 1 && read(c, buf, sizeof buf) > 0) {
        char reply[64];
        int n = snprintf(reply, sizeof reply, "pong %ld\n", count);
        if (write(c, reply, n) != n) die("write");
        printf("served %ld\n", count);
    }
    close(c);
}

static void serve_udp(int s) {
    char buf[64];
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    if (recvfrom(s, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &fl) < 0) return;
    char reply[64];
    int n = snprintf(reply, sizeof reply, "pong %ld\n", count);
    sendto(s, reply, n, 0, (struct sockaddr *)&from, fl);
    printf("served %ld\n", count);
}

static int pairs[3][2];

static void queue_pairs(void) {
    int types[3] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET};
    for (int i = 0; i < 3; i++)
        if (socketpair(AF_UNIX, types[i], 0, pairs[i])) die("socketpair");
    /* Stream: two writes each way (one stream). Datagrams: message boundaries kept. */
    if (write(pairs[0][0], "to-one,", 7) != 7 || write(pairs[0][0], "more", 4) != 4) die("write");
    if (write(pairs[0][1], "to-zero", 7) != 7) die("write");
    if (send(pairs[1][0], "d1", 2, 0) != 2 || send(pairs[1][0], "d22", 3, 0) != 3) die("send");
    if (send(pairs[1][1], "d333", 4, 0) != 4) die("send");
    if (send(pairs[2][0], "q1", 2, 0) != 2 || send(pairs[2][0], "", 0, 0) != 0) die("send");
    if (send(pairs[2][1], "q22", 3, 0) != 3) die("send");
}

/* Every message waiting on s, joined with '|'. */
static void drain(int s, char *out, size_t cap) {
    char buf[256];
    size_t at = 0;
    out[0] = 0;
    for (;;) {
        ssize_t n = recv(s, buf, sizeof buf - 1, MSG_DONTWAIT);
        if (n < 0) break;
        buf[n] = 0;
        at += snprintf(out + at, cap - at, "%s%s", at ? "|" : "", buf);
        if (n == 0) {
            int type;
            socklen_t l = sizeof type;
            getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &l);
            if (type == SOCK_STREAM) break;
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    const char *mode = argv[1];
    long read_at = argc > 3 ? atol(argv[3]) : (argc > 2 && !strcmp(mode, "pair") ? atol(argv[2]) : 0);
    int s = -1, stream = 1;
    if (!strcmp(mode, "tcp4")) s = listen_on(AF_INET, argv[2], SOCK_STREAM);
    else if (!strcmp(mode, "tcp6")) s = listen_on(AF_INET6, argv[2], SOCK_STREAM);
    else if (!strcmp(mode, "unix")) s = listen_on(AF_UNIX, argv[2], SOCK_STREAM);
    else if (!strcmp(mode, "udp")) s = listen_on(AF_INET, argv[2], SOCK_DGRAM), stream = 0;
    else if (!strcmp(mode, "pair")) queue_pairs();
    else if (!strcmp(mode, "conn")) {
        s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(s, (struct sockaddr *)&a, sizeof a)) die("connect");
        printf("connected\n");
    } else if (!strcmp(mode, "uconn")) {
        s = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        strncpy(a.sun_path, argv[2], sizeof a.sun_path - 1);
        if (connect(s, (struct sockaddr *)&a, sizeof a)) die("connect");
        printf("connected\n");
        mode = "conn";
    } else return 2;
    if (s >= 0 && strcmp(mode, "conn") && strcmp(mode, "udp")) print_opts(s);
    printf("start\n");
    fflush(stdout);
    for (count = 1; count <= 400; count++) {
        printf("count %ld\n", count);
        if (count == read_at && !strcmp(mode, "pair")) {
            char v[6][128];
            for (int i = 0; i < 3; i++) {
                drain(pairs[i][0], v[2 * i], sizeof v[0]);
                drain(pairs[i][1], v[2 * i + 1], sizeof v[0]);
            }
            printf("held s0=%s s1=%s d0=%s d1=%s q0=%s q1=%s\n", v[0], v[1], v[2], v[3], v[4], v[5]);
        }
        if (count == read_at && !strcmp(mode, "conn")) {
            char buf[16];
            ssize_t n = read(s, buf, sizeof buf);
            if (n < 0 && errno == ECONNRESET) printf("conn reset\n");
            else if (n == 0) printf("conn eof\n");
            else if (n > 0) printf("conn data\n");
            else printf("conn error %d\n", errno);
        }
        fflush(stdout);
        if (s >= 0 && strcmp(mode, "conn")) {
            struct pollfd p = {s, POLLIN, 0};
            if (poll(&p, 1, 50) == 1) {
                if (stream) serve_stream(s);
                else serve_udp(s);
                print_opts(s);
                fflush(stdout);
            }
        } else {
            usleep(50000);
        }
    }
    printf("done 400\n");
    return 0;
}
