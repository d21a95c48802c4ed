/* accumulate.c: a computation whose answer depends on every step's state in memory, for
 * comparing an interrupted, checkpointed and resumed run with an uninterrupted one.
 *
 * usage: accumulate STEPS [MS]
 *   prints `start PID`, then `step N HASH` after each of STEPS steps (MS milliseconds
 *   apart, default 100), then `result HASH` and `done STEPS`. Each step stirs a 4 MiB
 *   table (malloc'd) and a static one with a fixed pseudo-random sequence and folds
 *   both into the running hash, so the result is the same on every run and any lost
 *   or changed byte of state changes it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define TABLE_WORDS (4u << 20) / 8
#define SMALL_WORDS 1024

static uint64_t small[SMALL_WORDS];
static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static uint64_t rng(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x9E3779B97F4A7C15ull;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

int main(int argc, char **argv) {
    long steps = argc > 1 ? atol(argv[1]) : 100;
    long ms = argc > 2 ? atol(argv[2]) : 100;
    uint64_t *table = malloc(TABLE_WORDS * 8);
    if (!table) {
        printf("BAD malloc\n");
        return 3;
    }
    for (size_t i = 0; i < TABLE_WORDS; i++)
        table[i] = rng();
    for (size_t i = 0; i < SMALL_WORDS; i++)
        small[i] = rng();
    uint64_t hash = 0xcbf29ce484222325ull;
    printf("start %d\n", (int)getpid());
    fflush(stdout);
    for (long n = 1; n <= steps; n++) {
        for (int k = 0; k < 4096; k++) {
            size_t i = rng() % TABLE_WORDS;
            table[i] = table[i] * 6364136223846793005ull + small[k % SMALL_WORDS];
            small[(k * 7) % SMALL_WORDS] ^= table[i] >> 7;
        }
        for (size_t i = 0; i < TABLE_WORDS; i += 512)
            hash = (hash ^ table[i]) * 0x100000001b3ull;
        for (size_t i = 0; i < SMALL_WORDS; i++)
            hash = (hash ^ small[i]) * 0x100000001b3ull;
        printf("step %ld %016llx\n", n, (unsigned long long)hash);
        fflush(stdout);
        sleep_ms(ms);
    }
    printf("result %016llx\n", (unsigned long long)hash);
    printf("done %ld\n", steps);
    fflush(stdout);
    return 0;
}
