/* nolibc.h: the counter of nolibc.c (x86_64) and nolibc32.c (i386), all but what is each
 * architecture's own. The including file defines, before including it:
 *
 *   SYS_write, SYS_brk, SYS_getpid, SYS_nanosleep, SYS_exit_group   syscall numbers
 *   long sys1(long n, long a), sys2(n, a, b), sys3(n, a, b, c)      raw syscalls
 *                                                                    (-errno on failure)
 *
 * and, after it, the _start that calls cmain(sp) with sp pointing at argc.
 *
 * cmain runs the .init_array entries (which start the mtcp runtime, as a crt would) and,
 * if built with -DCALL_INIT, also calls mtcp_init() itself. It grows its own heap with
 * brk, and checks a static buffer, its .data and its brk blocks every step; it prints
 * `count N` every ~50 ms, and `BAD ...` + exit 3 on corruption. argv[1] is the limit
 * (default 100000), then `done N`.
 *
 * Every value is a machine word (long is 64 bits on x86_64, 32 on i386): no arithmetic
 * is wider than a register, so nothing may need libgcc.
 */
typedef unsigned long uword;

#if __SIZEOF_LONG__ == 8
/* xorshift64, FNV-1a 64 */
#define RNG_SEED 88172645463325252ul
#define RNG_SHIFTS 13, 7, 17
#define FNV_OFFSET 1469598103934665603ul
#define FNV_PRIME 1099511628211ul
#else
/* xorshift32, FNV-1a 32 */
#define RNG_SEED 2463534242ul
#define RNG_SHIFTS 13, 17, 5
#define FNV_OFFSET 2166136261ul
#define FNV_PRIME 16777619ul
#endif

static void sys_exit(int code) {
    for (;;)
        sys1(SYS_exit_group, code);
}

static void put(const char *s, uword n) {
    while (n > 0) {
        long w = sys3(SYS_write, 1, (long)s, (long)n);
        if (w == -4) /* EINTR */
            continue;
        if (w <= 0)
            sys_exit(4);
        s += w;
        n -= (uword)w;
    }
}

/* Prints `word N\n` in one write. */
static void say(const char *word, uword n) {
    char line[64];
    uword len = 0;
    while (*word)
        line[len++] = *word++;
    line[len++] = ' ';
    char digits[24];
    int d = 0;
    do {
        digits[d++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    while (d)
        line[len++] = digits[--d];
    line[len++] = '\n';
    put(line, len);
}

static void bad(const char *what, uword detail) {
    char w[32] = "BAD ";
    int i = 4;
    while (*what && i < 30)
        w[i++] = *what++;
    w[i] = 0;
    say(w, detail);
    sys_exit(3);
}

static void sleep_ms(long ms) {
    struct {
        long sec, nsec; /* the timespec of each architecture's own nanosleep */
    } ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (sys2(SYS_nanosleep, (long)&ts, (long)&ts) == -4) {
    }
}

/* sbrk on top of the brk syscall. */
static uword cur_brk;
static void *my_sbrk(uword n) {
    if (!cur_brk)
        cur_brk = (uword)sys1(SYS_brk, 0);
    uword want = cur_brk + n;
    uword got = (uword)sys1(SYS_brk, (long)want);
    if (got < want)
        return (void *)-1;
    void *old = (void *)cur_brk;
    cur_brk = want;
    return old;
}

#define BUF_SIZE (256 * 1024)
static unsigned char buf[BUF_SIZE];              /* .bss */
static unsigned char initialized[4096] = {7, 7}; /* .data */
#define BLOCKS_MAX 128
static unsigned char *blocks[BLOCKS_MAX];
static int nblocks;

static uword rng_state = RNG_SEED;
static void rng_step(int a, int b, int c) {
    rng_state ^= rng_state << a;
    rng_state ^= rng_state >> b;
    rng_state ^= rng_state << c;
}
static uword rng(void) {
    rng_step(RNG_SHIFTS);
    return rng_state;
}

static uword checksum(const unsigned char *p, uword n) {
    uword h = FNV_OFFSET;
    for (uword i = 0; i < n; i++) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

static unsigned char pat(uword seed, uword i) {
    return (unsigned char)((seed * 29 + i * 3 + (i >> 9)) & 0xff);
}

static uword parse(const char *s) {
    uword v = 0;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (uword)(*s++ - '0');
    return v;
}

extern void (*__init_array_start[])(void) __attribute__((weak));
extern void (*__init_array_end[])(void) __attribute__((weak));
#ifdef CALL_INIT
int mtcp_init(void);
#endif

__attribute__((used)) void cmain(uword *sp) {
    uword argc = sp[0];
    char **argv = (char **)(sp + 1);

    for (void (**f)(void) = __init_array_start; f < __init_array_end; f++)
        (*f)();
#ifdef CALL_INIT
    if (mtcp_init() != 0)
        bad("mtcp_init", 0);
#endif

    uword limit = argc > 1 ? parse(argv[1]) : 100000;

    for (uword i = 0; i < BUF_SIZE; i++)
        buf[i] = (unsigned char)rng();
    uword sum = checksum(buf, BUF_SIZE);
    for (uword i = 0; i < sizeof initialized; i++)
        initialized[i] = pat(5, i);

    say("start", (uword)sys1(SYS_getpid, 0));
    for (uword count = 1; count <= limit; count++) {
        if (checksum(buf, BUF_SIZE) != sum)
            bad("checksum", count);
        for (int k = 0; k < 4; k++)
            buf[rng() % BUF_SIZE] = (unsigned char)rng();
        sum = checksum(buf, BUF_SIZE);
        for (uword i = 0; i < sizeof initialized; i++)
            if (initialized[i] != pat(5, i))
                bad("data", i);
        for (int b = 0; b < nblocks; b++)
            for (uword i = 0; i < 4096; i++)
                if (blocks[b][i] != pat((uword)b + 100, i))
                    bad("brk", (uword)b);
        if (nblocks < BLOCKS_MAX) {
            unsigned char *p = my_sbrk(4096);
            if (p == (void *)-1)
                bad("brk-fail", count);
            for (uword i = 0; i < 4096; i++)
                p[i] = pat((uword)nblocks + 100, i);
            blocks[nblocks++] = p;
        }
        say("count", count);
        sleep_ms(50);
    }
    say("done", limit);
    sys_exit(0);
}
