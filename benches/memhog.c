/* Benchmark subject: touches MiB of memory (dense pseudo-random data, or sparse: one
 * page in `stride` written), starts `threads` idle threads, then prints a heartbeat. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *idle(void *arg) { for (;;) pause(); return arg; }

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], 0, 10) : 64;
    size_t stride = argc > 2 ? strtoul(argv[2], 0, 10) : 1;
    int threads = argc > 3 ? atoi(argv[3]) : 0;
    size_t len = mib << 20;
    uint64_t *mem = malloc(len);
    if (!mem) return 2;
    uint64_t x = 88172645463325252ull;
    for (size_t page = 0; page < len / 4096; page += stride)
        for (size_t i = 0; i < 512; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            mem[page * 512 + i] = x;
        }
    for (int i = 0; i < threads; i++) { pthread_t t; pthread_create(&t, 0, idle, 0); }
    for (unsigned long beat = 0;; beat++) {
        printf("beat %lu\n", beat);
        fflush(stdout);
        usleep(2000);
    }
}
