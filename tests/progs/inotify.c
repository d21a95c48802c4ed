/* inotify.c: an inotify watcher across a restart.
 *
 * Watches `gone` (removed at once, so wd 1 is a gap), `watched` for IN_CREATE (wd 2)
 * and `other` for IN_DELETE (wd 3), on a non-blocking, close-on-exec instance; every
 * count it reads what events there are and prints `event wd W mask M name N` for each.
 * Prints `wds 2 3` at start, `count N`, `done LIMIT`; a failing read or changed flags
 * print `BAD ...`.
 * usage: inotify LIMIT
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 100000;
    mkdir("gone", 0700);
    mkdir("watched", 0700);
    mkdir("other", 0700);
    int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (in < 0) return 2;
    int gone = inotify_add_watch(in, "gone", IN_CREATE);
    int watched = inotify_add_watch(in, "watched", IN_CREATE);
    int other = inotify_add_watch(in, "other", IN_DELETE);
    if (gone != 1 || inotify_rm_watch(in, gone)) return 2;
    printf("wds %d %d\n", watched, other);
    struct timespec pause = {0, 50 * 1000 * 1000};
    for (long n = 1; n <= limit; n++) {
        char buf[4096] __attribute__((aligned(8)));
        ssize_t got = read(in, buf, sizeof buf);
        if (got < 0 && errno != EAGAIN) printf("BAD read: %s\n", strerror(errno));
        for (char *p = buf; got > 0 && p < buf + got;) {
            struct inotify_event *e = (struct inotify_event *)p;
            if (e->mask != IN_IGNORED) printf("event wd %d mask %x name %s\n", e->wd, e->mask, e->len ? e->name : "");
            p += sizeof *e + e->len;
        }
        if (!(fcntl(in, F_GETFL) & O_NONBLOCK) || !(fcntl(in, F_GETFD) & FD_CLOEXEC)) printf("BAD flags\n");
        printf("count %ld\n", n);
        fflush(stdout);
        nanosleep(&pause, 0);
    }
    printf("done %ld\n", limit);
    return 0;
}
