/* nolibc.c: a counter without any libc, linked statically with libmtcp.a:
 *
 *   gcc -nostdlib -static -fno-stack-protector -O1 nolibc.c \
 *       -Wl,--whole-archive libmtcp.a -Wl,--no-whole-archive
 *
 * Its own _start runs the .init_array entries (which start the mtcp runtime, as a crt
 * would) and, if built with -DCALL_INIT, also calls mtcp_init() itself. It uses raw
 * syscalls for write/nanosleep/brk/exit, grows its own heap with brk, and checks a
 * static buffer and its brk blocks every step; it prints `count N` every ~50 ms, and
 * `BAD ...` + exit 3 on corruption. argv[1] is the limit (default 100000), then
 * `done N`.
 */
typedef unsigned long u64;
typedef long i64;

#define SYS_write 1
#define SYS_brk 12
#define SYS_getpid 39
#define SYS_nanosleep 35
#define SYS_exit_group 231

static i64 sys1(i64 n, i64 a) {
    i64 r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a) : "rcx", "r11", "memory");
    return r;
}
static i64 sys2(i64 n, i64 a, i64 b) {
    i64 r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b) : "rcx", "r11", "memory");
    return r;
}
static i64 sys3(i64 n, i64 a, i64 b, i64 c) {
    i64 r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

static void sys_exit(int code) {
    for (;;)
        sys1(SYS_exit_group, code);
}

static void put(const char *s, u64 n) {
    while (n > 0) {
        i64 w = sys3(SYS_write, 1, (i64)s, (i64)n);
        if (w == -4) /* EINTR */
            continue;
        if (w <= 0)
            sys_exit(4);
        s += w;
        n -= (u64)w;
    }
}

/* Prints `word N\n` in one write. */
static void say(const char *word, u64 n) {
    char line[64];
    u64 len = 0;
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

static void bad(const char *what, u64 detail) {
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
        i64 sec, nsec;
    } ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (sys2(SYS_nanosleep, (i64)&ts, (i64)&ts) == -4) {
    }
}

/* sbrk on top of the brk syscall. */
static u64 cur_brk;
static void *my_sbrk(u64 n) {
    if (!cur_brk)
        cur_brk = (u64)sys1(SYS_brk, 0);
    u64 want = cur_brk + n;
    u64 got = (u64)sys1(SYS_brk, (i64)want);
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

static u64 rng_state = 88172645463325252ull;
static u64 rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static u64 checksum(const unsigned char *p, u64 n) {
    u64 h = 1469598103934665603ull;
    for (u64 i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static unsigned char pat(u64 seed, u64 i) {
    return (unsigned char)((seed * 29 + i * 3 + (i >> 9)) & 0xff);
}

static u64 parse(const char *s) {
    u64 v = 0;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (u64)(*s++ - '0');
    return v;
}

extern void (*__init_array_start[])(void) __attribute__((weak));
extern void (*__init_array_end[])(void) __attribute__((weak));
#ifdef CALL_INIT
int mtcp_init(void);
#endif

__attribute__((used)) void cmain(u64 *sp) {
    u64 argc = sp[0];
    char **argv = (char **)(sp + 1);

    for (void (**f)(void) = __init_array_start; f < __init_array_end; f++)
        (*f)();
#ifdef CALL_INIT
    if (mtcp_init() != 0)
        bad("mtcp_init", 0);
#endif

    u64 limit = argc > 1 ? parse(argv[1]) : 100000;

    for (u64 i = 0; i < BUF_SIZE; i++)
        buf[i] = (unsigned char)rng();
    u64 sum = checksum(buf, BUF_SIZE);
    for (u64 i = 0; i < sizeof initialized; i++)
        initialized[i] = pat(5, i);

    say("start", (u64)sys1(SYS_getpid, 0));
    for (u64 count = 1; count <= limit; count++) {
        if (checksum(buf, BUF_SIZE) != sum)
            bad("checksum", count);
        for (int k = 0; k < 4; k++)
            buf[rng() % BUF_SIZE] = (unsigned char)rng();
        sum = checksum(buf, BUF_SIZE);
        for (u64 i = 0; i < sizeof initialized; i++)
            if (initialized[i] != pat(5, i))
                bad("data", i);
        for (int b = 0; b < nblocks; b++)
            for (u64 i = 0; i < 4096; i++)
                if (blocks[b][i] != pat(b + 100, i))
                    bad("brk", (u64)b);
        if (nblocks < BLOCKS_MAX) {
            unsigned char *p = my_sbrk(4096);
            if (p == (void *)-1)
                bad("brk-fail", count);
            for (u64 i = 0; i < 4096; i++)
                p[i] = pat(nblocks + 100, i);
            blocks[nblocks++] = p;
        }
        say("count", count);
        sleep_ms(50);
    }
    say("done", limit);
    sys_exit(0);
}

__asm__(".text\n"
        ".global _start\n"
        ".type _start,@function\n"
        "_start:\n"
        "    xor %rbp, %rbp\n"
        "    mov %rsp, %rdi\n"
        "    and $-16, %rsp\n"
        "    call cmain\n"
        "    hlt\n");
