/* memory.c: memory of every shape a checkpoint must find and save, checked every count.
 *
 * usage: memory [LIMIT]
 * - dense: 4 MiB of a pseudo-random pattern, one page rewritten (a new version) every
 *   count;
 * - sparse: a large MAP_NORESERVE reservation (64 GiB, 1 GiB for i386) with 300 pages
 *   written far apart, the rest never touched;
 * - zero pages: 1 MiB read everywhere (the kernel's zero page) with a few pages written,
 *   and 1 MiB written and then cleared again (present pages of zeros);
 * - hidden: 64 KiB of data made PROT_NONE (read back under PROT_READ for each check);
 * - not forked: 64 KiB under MADV_DONTFORK and 64 KiB under MADV_WIPEONFORK (a forked
 *   writer has none of the first and zeros for the second);
 * - shared: a shared anonymous page rewritten every count, its version kept in private
 *   memory (an image must hold both as of one moment).
 * Prints `start PID`, then `count N` every ~50 ms after checking everything; a mismatch
 * prints `BAD ...` and exits 3; `done LIMIT` at the end.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define DENSE_PAGES 1024
#define SPARSE_PAGES 300
#define ZERO_BYTES (1 << 20)
#define HIDDEN_BYTES (64 << 10)

static uint64_t pat(uint64_t where, uint64_t version) {
    uint64_t x = where * 0x9e3779b97f4a7c15ull + version * 0xbf58476d1ce4e5b9ull + 1;
    x ^= x >> 31;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 29);
}

static void fill(uint64_t *page, uint64_t where, uint64_t version) {
    for (int i = 0; i < PAGE / 8; i++) page[i] = pat(where * 512 + i, version);
}

static void bad(const char *what, size_t at, long count) {
    printf("BAD %s at %zu (count %ld)\n", what, at, count);
    fflush(stdout);
    exit(3);
}

static void check(const uint64_t *page, uint64_t where, uint64_t version, const char *what, long count) {
    for (int i = 0; i < PAGE / 8; i++)
        if (page[i] != pat(where * 512 + i, version)) bad(what, where, count);
}

static void check_zero(const unsigned char *p, size_t n, const char *what, long count) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) bad(what, i, count);
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 1000000;
    size_t reserve = sizeof(void *) == 8 ? (size_t)64 << 30 : (size_t)1 << 30;
    int anon = MAP_PRIVATE | MAP_ANONYMOUS;

    uint64_t *dense = mmap(0, DENSE_PAGES * PAGE, PROT_READ | PROT_WRITE, anon, -1, 0);
    static uint32_t version[DENSE_PAGES];
    char *sparse = mmap(0, reserve, PROT_READ | PROT_WRITE, anon | MAP_NORESERVE, -1, 0);
    unsigned char *zeros = mmap(0, ZERO_BYTES, PROT_READ | PROT_WRITE, anon, -1, 0);
    unsigned char *cleared = mmap(0, ZERO_BYTES, PROT_READ | PROT_WRITE, anon, -1, 0);
    uint64_t *hidden = mmap(0, HIDDEN_BYTES, PROT_READ | PROT_WRITE, anon, -1, 0);
    if (dense == MAP_FAILED || sparse == MAP_FAILED || zeros == MAP_FAILED || cleared == MAP_FAILED ||
        hidden == MAP_FAILED) {
        printf("BAD mmap\n");
        return 3;
    }
    size_t stride = reserve / PAGE / SPARSE_PAGES;
    for (size_t p = 0; p < DENSE_PAGES; p++) fill(dense + p * 512, p, 0);
    for (size_t i = 0; i < SPARSE_PAGES; i++) fill((uint64_t *)(sparse + i * stride * PAGE), 1000 + i, 0);
    volatile unsigned char sink = 0;
    for (size_t i = 0; i < ZERO_BYTES; i += PAGE) sink += zeros[i]; /* the zero page, read */
    for (size_t i = 0; i < 4; i++) fill((uint64_t *)(zeros + i * 64 * PAGE), 5000 + i, 0);
    memset(cleared, 0xa5, ZERO_BYTES);
    memset(cleared, 0, ZERO_BYTES);
    for (size_t p = 0; p < HIDDEN_BYTES / PAGE; p++) fill(hidden + p * 512, 7000 + p, 0);
    mprotect(hidden, HIDDEN_BYTES, PROT_NONE);
    uint64_t *dontfork = mmap(0, HIDDEN_BYTES, PROT_READ | PROT_WRITE, anon, -1, 0);
    uint64_t *wipeonfork = mmap(0, HIDDEN_BYTES, PROT_READ | PROT_WRITE, anon, -1, 0);
    uint64_t *shared = mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (dontfork == MAP_FAILED || wipeonfork == MAP_FAILED || shared == MAP_FAILED ||
        madvise(dontfork, HIDDEN_BYTES, MADV_DONTFORK) || madvise(wipeonfork, HIDDEN_BYTES, MADV_WIPEONFORK)) {
        printf("BAD mmap or madvise\n");
        return 3;
    }
    for (size_t p = 0; p < HIDDEN_BYTES / PAGE; p++) {
        fill(dontfork + p * 512, 8000 + p, 0);
        fill(wipeonfork + p * 512, 9000 + p, 0);
    }
    static uint64_t shared_version;
    fill(shared, 10000, shared_version);

    printf("start %d\n", (int)getpid());
    fflush(stdout);
    struct timespec nap = {0, 50 * 1000 * 1000};
    for (long count = 1; count <= limit; count++) {
        for (size_t p = 0; p < DENSE_PAGES; p++) check(dense + p * 512, p, version[p], "dense", count);
        for (size_t i = 0; i < SPARSE_PAGES; i++)
            check((uint64_t *)(sparse + i * stride * PAGE), 1000 + i, 0, "sparse", count);
        for (size_t i = 0; i < SPARSE_PAGES - 1; i += 37) /* between them: never touched */
            check_zero((unsigned char *)sparse + (i * stride + stride / 2) * PAGE, PAGE, "sparse gap", count);
        for (size_t i = 0; i < ZERO_BYTES / PAGE; i++) {
            if (i % 64 == 0 && i / 64 < 4)
                check((uint64_t *)(zeros + i * PAGE), 5000 + i / 64, 0, "zero-page region", count);
            else
                check_zero(zeros + i * PAGE, PAGE, "zero page", count);
        }
        check_zero(cleared, ZERO_BYTES, "cleared page", count);
        mprotect(hidden, HIDDEN_BYTES, PROT_READ);
        for (size_t p = 0; p < HIDDEN_BYTES / PAGE; p++) check(hidden + p * 512, 7000 + p, 0, "hidden", count);
        mprotect(hidden, HIDDEN_BYTES, PROT_NONE);
        for (size_t p = 0; p < HIDDEN_BYTES / PAGE; p++) {
            check(dontfork + p * 512, 8000 + p, 0, "MADV_DONTFORK", count);
            check(wipeonfork + p * 512, 9000 + p, 0, "MADV_WIPEONFORK", count);
        }
        check(shared, 10000, shared_version, "shared page", count);
        fill(shared, 10000, ++shared_version);
        /* One page gets a new version each count. */
        size_t p = (size_t)(count * 7919) % DENSE_PAGES;
        fill(dense + p * 512, p, ++version[p]);
        printf("count %ld\n", count);
        fflush(stdout);
        nanosleep(&nap, 0);
    }
    printf("done %ld\n", limit);
    fflush(stdout);
    return 0;
}
