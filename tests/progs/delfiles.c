/* delfiles.c: deleted files still open across a restart.
 *
 * A tmpfile() and an O_TMPFILE file (in the current directory) get one line per count,
 * and are read back whole and checksummed against what was written; a deleted log is
 * appended to through an O_APPEND descriptor and followed through a second, read-only
 * open of it; a dup of the tmpfile must keep sharing its offset. Every file must stay
 * unlinked. Prints `count N`, `grown` once at count GROW_AT (the tmpfile gets 1 MiB
 * more), `done LIMIT`; any problem prints `BAD ...`.
 * usage: delfiles LIMIT [GROW_AT]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static unsigned long sum(const unsigned char *p, size_t n, unsigned long h) {
    for (size_t i = 0; i < n; i++) h = h * 31 + p[i];
    return h;
}

struct tracked {
    int fd;
    const char *name;
    unsigned long hash;
    off_t size;
};

static char big[1 << 20];

static void put(struct tracked *t, const char *s, size_t n) {
    if (write(t->fd, s, n) != (ssize_t)n) printf("BAD %s: short write\n", t->name);
    t->hash = sum((const unsigned char *)s, n, t->hash);
    t->size += n;
}

static void check(struct tracked *t) {
    struct stat st;
    if (fstat(t->fd, &st) || st.st_nlink != 0 || st.st_size != t->size)
        printf("BAD %s: nlink %ld size %lld, expected 0 and %lld\n", t->name, (long)st.st_nlink,
               (long long)st.st_size, (long long)t->size);
    if (lseek(t->fd, 0, SEEK_CUR) != t->size)
        printf("BAD %s: offset %lld, expected %lld\n", t->name, (long long)lseek(t->fd, 0, SEEK_CUR),
               (long long)t->size);
    static unsigned char buf[1 << 16];
    unsigned long h = 0;
    off_t at = 0;
    ssize_t n;
    while ((n = pread(t->fd, buf, sizeof buf, at)) > 0) {
        h = sum(buf, n, h);
        at += n;
    }
    if (at != t->size || h != t->hash) printf("BAD %s: contents changed (%lld bytes read)\n", t->name, (long long)at);
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 100000, grow_at = argc > 2 ? atol(argv[2]) : -1;
    FILE *tmp = tmpfile();
    int o_tmp = open(".", O_TMPFILE | O_RDWR, 0600);
    int log = open("dellog", O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0600);
    int follow = open("dellog", O_RDONLY);
    if (!tmp || o_tmp < 0 || log < 0 || follow < 0 || unlink("dellog")) {
        printf("BAD setup\n");
        return 2;
    }
    struct tracked files[3] = {{fileno(tmp), "tmpfile", 0, 0}, {o_tmp, "O_TMPFILE", 0, 0}, {log, "log", 0, 0}};
    int dup_fd = dup(fileno(tmp));
    memset(big, 'b', sizeof big);
    put(&files[1], big, 4096);
    printf("start\n");
    struct timespec pause = {0, 50 * 1000 * 1000};
    for (long n = 1; n <= limit; n++) {
        char line[64];
        int len = snprintf(line, sizeof line, "line %ld\n", n);
        for (int i = 0; i < 3; i++) put(&files[i], line, len);
        if (n == grow_at) {
            put(&files[0], big, sizeof big);
            printf("grown\n");
        }
        for (int i = 0; i < 2; i++) check(&files[i]);
        struct stat st;
        if (fstat(log, &st) || st.st_nlink != 0 || st.st_size != files[2].size) printf("BAD log: nlink or size\n");
        char got[64] = {0};
        ssize_t r = read(follow, got, sizeof got - 1);
        if (r != len || memcmp(got, line, len)) printf("BAD follow: read %zd `%s`, expected `%.*s`\n", r, got, len - 1, line);
        if (lseek(dup_fd, 0, SEEK_CUR) != files[0].size) printf("BAD dup: offset no longer shared\n");
        printf("count %ld\n", n);
        fflush(stdout);
        nanosleep(&pause, 0);
    }
    printf("done %ld\n", limit);
    return 0;
}
