/* counter.c: the workhorse of the end-to-end tests.
 *
 * Every ~50 ms it prints `count N` (N = 1, 2, ...), and between two counts it checks that
 * its memory is intact:
 *   - a 1 MiB malloc'd buffer holding a pseudo-random pattern, whose checksum it
 *     re-verifies and then updates after mutating a few bytes;
 *   - blocks obtained with sbrk(4096) (up to SBRK_MAX of them), each filled with a
 *     pattern that depends on its index, all re-verified every step;
 *   - malloc'd blocks of varying sizes (some large enough to be mmap'd by glibc) kept in
 *     a ring, each with a pattern from its own seed, all re-verified every step;
 *   - a static (.data/.bss) array and a value on the stack.
 * Any mismatch prints `BAD <what>` and exits 3.
 *
 * usage: counter [LIMIT] [--api-at N] [--dlopen-file TRIGGER PLUGIN]
 *   LIMIT           stop after count LIMIT, printing `done LIMIT` (default 100000)
 *   --api-at N      (built with -DUSE_API and libmtcp) call mtcp_checkpoint() once, at
 *                   count N; print `api checkpointed PATH`, `api restarted PATH` or
 *                   `api error R`
 *   --dlopen-file TRIGGER PLUGIN
 *                   once the file TRIGGER exists, dlopen PLUGIN (built from plugin.c),
 *                   call plugin_answer(count) and print `plugin ANSWER NAME`
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef USE_API
#include "mtcp.h"
#endif
#ifdef USE_DLOPEN
#include <dlfcn.h>
#endif

#define BUF_SIZE (1u << 20)
#define SBRK_MAX 256
#define MALLOC_RING 64

static void bad(const char *what, long detail) {
    printf("BAD %s %ld\n", what, detail);
    fflush(stdout);
    exit(3);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void) {
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static uint64_t checksum(const unsigned char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, 8 bytes at a time */
    const uint64_t *q = (const uint64_t *)p;
    for (size_t i = 0; i < n / 8; i++) {
        h ^= q[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static unsigned char pattern_byte(uint64_t seed, size_t i) {
    return (unsigned char)((seed * 131 + i * 7 + (i >> 8) * 13) & 0xff);
}

static void fill(unsigned char *p, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++)
        p[i] = pattern_byte(seed, i);
}

static int check(const unsigned char *p, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != pattern_byte(seed, i))
            return 0;
    return 1;
}

/* .data and .bss */
static unsigned char static_data[8192] = {1, 2, 3};
static uint64_t static_sum;

static unsigned char *sbrk_blocks[SBRK_MAX];
static int sbrk_count;

struct mblock {
    unsigned char *p;
    size_t n;
    uint64_t seed;
};
static struct mblock ring[MALLOC_RING];
static long malloc_serial;

static size_t malloc_size(long serial) {
    /* mostly small, sometimes over glibc's mmap threshold (128 KiB) */
    if (serial % 16 == 5)
        return 200000 + (size_t)(serial % 7) * 4096;
    return 16 + (size_t)((serial * 2654435761u) % 20000);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

int main(int argc, char **argv) {
    long limit = 100000;
    long api_at = -1;
    const char *trigger = NULL, *plugin = NULL;
    int plugin_done = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--api-at") && i + 1 < argc) {
            api_at = atol(argv[++i]);
        } else if (!strcmp(argv[i], "--dlopen-file") && i + 2 < argc) {
            trigger = argv[++i];
            plugin = argv[++i];
        } else {
            limit = atol(argv[i]);
        }
    }
#ifndef USE_API
    if (api_at >= 0) {
        fprintf(stderr, "counter: built without -DUSE_API\n");
        return 2;
    }
#endif
#ifndef USE_DLOPEN
    if (trigger) {
        fprintf(stderr, "counter: built without -DUSE_DLOPEN\n");
        return 2;
    }
#endif

    unsigned char *buf = malloc(BUF_SIZE);
    if (!buf)
        bad("malloc", 0);
    for (size_t i = 0; i < BUF_SIZE / 8; i++)
        ((uint64_t *)buf)[i] = rng();
    uint64_t buf_sum = checksum(buf, BUF_SIZE);

    for (size_t i = 0; i < sizeof static_data; i++)
        static_data[i] = pattern_byte(99, i);
    static_sum = checksum(static_data, sizeof static_data);

    volatile uint64_t stack_canary = 0x1234567887654321ull;
    char stack_buf[4096];
    fill((unsigned char *)stack_buf, sizeof stack_buf, 42);

    printf("start %d\n", (int)getpid());
    fflush(stdout);

    for (long count = 1; count <= limit; count++) {
        /* 1 MiB buffer */
        if (checksum(buf, BUF_SIZE) != buf_sum)
            bad("checksum", count);
        for (int k = 0; k < 8; k++)
            ((uint64_t *)buf)[rng() % (BUF_SIZE / 8)] = rng();
        buf_sum = checksum(buf, BUF_SIZE);

        /* static data and stack */
        if (checksum(static_data, sizeof static_data) != static_sum)
            bad("static", count);
        if (stack_canary != 0x1234567887654321ull || !check((unsigned char *)stack_buf, sizeof stack_buf, 42))
            bad("stack", count);

        /* sbrk blocks */
        for (int i = 0; i < sbrk_count; i++)
            if (!check(sbrk_blocks[i], 4096, 1000 + i))
                bad("sbrk", i);
        if (sbrk_count < SBRK_MAX) {
            void *p = sbrk(4096);
            if (p == (void *)-1)
                bad("sbrk-fail", count);
            fill(p, 4096, 1000 + sbrk_count);
            sbrk_blocks[sbrk_count++] = p;
        }

        /* malloc ring */
        for (int i = 0; i < MALLOC_RING; i++)
            if (ring[i].p && !check(ring[i].p, ring[i].n, ring[i].seed))
                bad("malloc", i);
        {
            struct mblock *b = &ring[malloc_serial % MALLOC_RING];
            free(b->p);
            b->n = malloc_size(malloc_serial);
            b->seed = (uint64_t)malloc_serial * 17 + 3;
            b->p = malloc(b->n);
            if (!b->p)
                bad("malloc-fail", count);
            fill(b->p, b->n, b->seed);
            malloc_serial++;
        }

        printf("count %ld\n", count);
        fflush(stdout);

#ifdef USE_API
        if (count == api_at) {
            int r = mtcp_checkpoint();
            if (r == MTCP_CHECKPOINTED)
                printf("api checkpointed %s\n", mtcp_image_path());
            else if (r == MTCP_RESTARTED)
                printf("api restarted %s\n", mtcp_image_path());
            else
                printf("api error %d\n", r);
            fflush(stdout);
        }
#endif
#ifdef USE_DLOPEN
        if (trigger && !plugin_done && access(trigger, F_OK) == 0) {
            plugin_done = 1;
            void *h = dlopen(plugin, RTLD_NOW);
            if (!h) {
                printf("BAD dlopen %s\n", dlerror());
                fflush(stdout);
                exit(3);
            }
            int (*answer)(int) = (int (*)(int))dlsym(h, "plugin_answer");
            const char *(*name)(void) = (const char *(*)(void))dlsym(h, "plugin_name");
            if (!answer || !name) {
                printf("BAD dlsym %s\n", dlerror());
                fflush(stdout);
                exit(3);
            }
            printf("plugin %d %s\n", answer((int)count), name());
            fflush(stdout);
        }
#endif
        (void)plugin_done;
        (void)plugin;
        sleep_ms(50);
    }
    printf("done %ld\n", limit);
    fflush(stdout);
    return 0;
}
