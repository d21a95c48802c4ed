/* bigcounter.c: a counter with a large memory footprint, for the failure tests.
 *
 * usage: bigcounter MIB
 * Fills MIB MiB with a pseudo-random pattern (so the image is about that big), then
 * every ~50 ms prints `count N` after re-verifying a sample of the pattern; a mismatch
 * prints `BAD memory` and exits 3.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static uint64_t pattern(uint64_t i) {
    uint64_t x = i * 0x9e3779b97f4a7c15ull + 1;
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    return x ^ (x >> 29);
}

int main(int argc, char **argv) {
    size_t words = (argc > 1 ? strtoul(argv[1], 0, 10) : 64) << 17; /* MiB * 2^20 / 8 */
    uint64_t *mem = malloc(words * sizeof *mem);
    if (!mem) return 2;
    for (size_t i = 0; i < words; i++) mem[i] = pattern(i);
    for (unsigned long n = 1;; n++) {
        for (size_t i = n % 4099; i < words; i += 4099)
            if (mem[i] != pattern(i)) {
                printf("BAD memory at word %zu\n", i);
                fflush(stdout);
                return 3;
            }
        printf("count %lu\n", n);
        fflush(stdout);
        usleep(50000);
    }
}
