/* nolibc32.c: the i386 counterpart of nolibc.c, a counter without any libc, linked
 * statically with the 32-bit libmtcp.a:
 *
 *   gcc -m32 -nostdlib -static -fno-stack-protector -O1 nolibc32.c \
 *       -Wl,--whole-archive target/i686-unknown-linux-gnu/release/libmtcp.a -Wl,--no-whole-archive
 *
 * Its own _start runs the .init_array entries (which start the mtcp runtime, as a crt
 * would) and, if built with -DCALL_INIT, also calls mtcp_init() itself. It makes raw
 * `int $0x80` syscalls for write/nanosleep/brk/getpid/exit_group, grows its own heap with
 * brk, and checks a static buffer, its .data and its brk blocks every step; it prints
 * `count N` every ~50 ms, and `BAD ...` + exit 3 on corruption. argv[1] is the limit
 * (default 100000), then `done N`.
 *
 * Only 32-bit arithmetic is used (no division of 64-bit values): nothing may need libgcc.
 */
typedef unsigned int u32;
typedef int i32;

#define SYS_write 4
#define SYS_getpid 20
#define SYS_brk 45
#define SYS_nanosleep 162
#define SYS_exit_group 252

/* ebx is the PIC register of i386 code: save it by hand instead of naming it. */
static i32 sys1(i32 n, i32 a) {
    i32 r;
    __asm__ volatile("xchg %%ebx, %%edi\n\t"
                     "int $0x80\n\t"
                     "xchg %%ebx, %%edi"
                     : "=a"(r)
                     : "a"(n), "D"(a)
                     : "memory");
    return r;
}
static i32 sys2(i32 n, i32 a, i32 b) {
    i32 r;
    __asm__ volatile("xchg %%ebx, %%edi\n\t"
                     "int $0x80\n\t"
                     "xchg %%ebx, %%edi"
                     : "=a"(r)
                     : "a"(n), "D"(a), "c"(b)
                     : "memory");
    return r;
}
static i32 sys3(i32 n, i32 a, i32 b, i32 c) {
    i32 r;
    __asm__ volatile("xchg %%ebx, %%edi\n\t"
                     "int $0x80\n\t"
                     "xchg %%ebx, %%edi"
                     : "=a"(r)
                     : "a"(n), "D"(a), "c"(b), "d"(c)
                     : "memory");
    return r;
}

static void sys_exit(int code) {
    for (;;)
        sys1(SYS_exit_group, code);
}

static void put(const char *s, u32 n) {
    while (n > 0) {
        i32 w = sys3(SYS_write, 1, (i32)s, (i32)n);
        if (w == -4) /* EINTR */
            continue;
        if (w <= 0)
            sys_exit(4);
        s += w;
        n -= (u32)w;
    }
}

/* Prints `word N\n` in one write. */
static void say(const char *word, u32 n) {
    char line[64];
    u32 len = 0;
    while (*word)
        line[len++] = *word++;
    line[len++] = ' ';
    char digits[16];
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

static void bad(const char *what, u32 detail) {
    char w[32] = "BAD ";
    int i = 4;
    while (*what && i < 30)
        w[i++] = *what++;
    w[i] = 0;
    say(w, detail);
    sys_exit(3);
}

static void sleep_ms(i32 ms) {
    struct {
        i32 sec, nsec; /* the i386 nanosleep takes a 32-bit timespec */
    } ts = {ms / 1000, (ms % 1000) * 1000000};
    while (sys2(SYS_nanosleep, (i32)&ts, (i32)&ts) == -4) {
    }
}

/* sbrk on top of the brk syscall. */
static u32 cur_brk;
static void *my_sbrk(u32 n) {
    if (!cur_brk)
        cur_brk = (u32)sys1(SYS_brk, 0);
    u32 want = cur_brk + n;
    u32 got = (u32)sys1(SYS_brk, (i32)want);
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

static u32 rng_state = 2463534242u;
static u32 rng(void) {
    /* xorshift32 */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static u32 checksum(const unsigned char *p, u32 n) {
    u32 h = 2166136261u; /* FNV-1a, 32-bit */
    for (u32 i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static unsigned char pat(u32 seed, u32 i) {
    return (unsigned char)((seed * 29 + i * 3 + (i >> 9)) & 0xff);
}

static u32 parse(const char *s) {
    u32 v = 0;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (u32)(*s++ - '0');
    return v;
}

extern void (*__init_array_start[])(void) __attribute__((weak));
extern void (*__init_array_end[])(void) __attribute__((weak));
#ifdef CALL_INIT
int mtcp_init(void);
#endif

__attribute__((used)) void cmain(u32 *sp) {
    u32 argc = sp[0];
    char **argv = (char **)(sp + 1);

    for (void (**f)(void) = __init_array_start; f < __init_array_end; f++)
        (*f)();
#ifdef CALL_INIT
    if (mtcp_init() != 0)
        bad("mtcp_init", 0);
#endif

    u32 limit = argc > 1 ? parse(argv[1]) : 100000;

    for (u32 i = 0; i < BUF_SIZE; i++)
        buf[i] = (unsigned char)rng();
    u32 sum = checksum(buf, BUF_SIZE);
    for (u32 i = 0; i < sizeof initialized; i++)
        initialized[i] = pat(5, i);

    say("start", (u32)sys1(SYS_getpid, 0));
    for (u32 count = 1; count <= limit; count++) {
        if (checksum(buf, BUF_SIZE) != sum)
            bad("checksum", count);
        for (int k = 0; k < 4; k++)
            buf[rng() % BUF_SIZE] = (unsigned char)rng();
        sum = checksum(buf, BUF_SIZE);
        for (u32 i = 0; i < sizeof initialized; i++)
            if (initialized[i] != pat(5, i))
                bad("data", i);
        for (int b = 0; b < nblocks; b++)
            for (u32 i = 0; i < 4096; i++)
                if (blocks[b][i] != pat((u32)b + 100, i))
                    bad("brk", (u32)b);
        if (nblocks < BLOCKS_MAX) {
            unsigned char *p = my_sbrk(4096);
            if (p == (void *)-1)
                bad("brk-fail", count);
            for (u32 i = 0; i < 4096; i++)
                p[i] = pat((u32)nblocks + 100, i);
            blocks[nblocks++] = p;
        }
        say("count", count);
        sleep_ms(50);
    }
    say("done", limit);
    sys_exit(0);
}

/* The kernel enters with %esp at argc. cmain(sp) is called with the stack 16-byte
 * aligned at the call, as the i386 System V ABI used by gcc expects. */
__asm__(".text\n"
        ".global _start\n"
        ".type _start,@function\n"
        "_start:\n"
        "    xor %ebp, %ebp\n"
        "    mov %esp, %eax\n"
        "    and $-16, %esp\n"
        "    sub $12, %esp\n"
        "    push %eax\n"
        "    call cmain\n"
        "    hlt\n");
