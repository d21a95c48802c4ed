/* bigdeleted.c: a process holding one large deleted file.
 *
 * A tmpfile() of MIB MiB (each MiB filled with its own letter), optionally also mapped
 * MAP_SHARED; prints `count N` every 50 ms, checking the file's first byte of each MiB
 * (`BAD ...` if one changed).
 * usage: bigdeleted MIB [shared]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long mib = argc > 1 ? atol(argv[1]) : 1;
    FILE *f = tmpfile();
    static char buf[1 << 20];
    for (long i = 0; i < mib; i++) {
        memset(buf, 'a' + i % 26, sizeof buf);
        if (fwrite(buf, 1, sizeof buf, f) != sizeof buf) return 2;
    }
    fflush(f);
    if (argc > 2 && mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fileno(f), 0) == MAP_FAILED) return 2;
    struct timespec pause = {0, 50 * 1000 * 1000};
    for (long n = 1;; n++) {
        for (long i = 0; i < mib; i++) {
            char c = 0;
            if (pread(fileno(f), &c, 1, i << 20) != 1 || c != 'a' + i % 26) printf("BAD MiB %ld\n", i);
        }
        printf("count %ld\n", n);
        fflush(stdout);
        nanosleep(&pause, 0);
    }
}
