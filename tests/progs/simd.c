/* simd.c: a thread whose values live in SIMD registers across a tight loop.
 *
 * Built with -mavx512f: 28 __m512 values (so zmm16-31 are used); with -mavx2 (or -mavx):
 * 12 __m256 values (ymm0-15); otherwise 12 __m128 values (xmm, SSE). Each value starts
 * as a distinct constant per lane; the loop adds 1.0 then subtracts 1.0 (exact for these
 * values, never folded by the compiler), and every 2^16 iterations compares every lane
 * with its constant. The thread also rounds toward zero (MXCSR and the x87 control
 * word) and checks that it stays so: the control registers are restored too.
 *
 * Main prints `start PID`, `simd KIND` (avx512, avx or sse), then every ~50 ms
 * `count N` (N = 1, 2, ...) and `iters I` (the thread's checks so far), after checking
 * that the thread reported no mismatch and that I never went down; `BAD ...` and exit 3
 * otherwise. After LIMIT counts: `done LIMIT`, exit 0.
 *
 * usage: simd [LIMIT]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__AVX512F__)
#define KIND "avx512"
#define NV 28
typedef __m512 vec;
#define LANES 16
#define VSET(b) _mm512_set_ps(b + 15, b + 14, b + 13, b + 12, b + 11, b + 10, b + 9, b + 8, b + 7, b + 6, b + 5, b + 4, b + 3, b + 2, b + 1, b + 0.5f)
#define VADD _mm512_add_ps
#define VSUB _mm512_sub_ps
#define VONE _mm512_set1_ps(1.0f)
#define VEQ(a, b) (_mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ) == 0xffff)
#define VCONSTRAINT "+v"
#elif defined(__AVX__)
#define KIND "avx"
#define NV 12
typedef __m256 vec;
#define LANES 8
#define VSET(b) _mm256_set_ps(b + 7, b + 6, b + 5, b + 4, b + 3, b + 2, b + 1, b + 0.5f)
#define VADD _mm256_add_ps
#define VSUB _mm256_sub_ps
#define VONE _mm256_set1_ps(1.0f)
#define VEQ(a, b) (_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_EQ_OQ)) == 0xff)
#define VCONSTRAINT "+x"
#else
#define KIND "sse"
#define NV 12
typedef __m128 vec;
#define LANES 4
#define VSET(b) _mm_set_ps(b + 3, b + 2, b + 1, b + 0.5f)
#define VADD _mm_add_ps
#define VSUB _mm_sub_ps
#define VONE _mm_set1_ps(1.0f)
#define VEQ(a, b) (_mm_movemask_ps(_mm_cmpeq_ps(a, b)) == 0xf)
#define VCONSTRAINT "+x"
#endif

static _Atomic unsigned long iters;
static _Atomic int simd_bad;
static _Atomic int simd_bad_which;
static _Atomic int ready;

/* Rounding toward zero in both MXCSR and the x87 control word (fesetround without libm). */
static void set_round_toward_zero(void) {
    unsigned int mxcsr;
    unsigned short cw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    mxcsr |= 3u << 13;
    __asm__ volatile("ldmxcsr %0" : : "m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    cw |= 3u << 10;
    __asm__ volatile("fldcw %0" : : "m"(cw));
}

static int round_toward_zero(void) {
    unsigned int mxcsr;
    unsigned short cw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    return ((mxcsr >> 13) & 3) == 3 && ((cw >> 10) & 3) == 3;
}

/* Keeps v in a register, opaque to the optimiser. */
#define KEEP(v) __asm__ volatile("" : VCONSTRAINT(v))

static void *simd_thread(void *arg) {
    (void)arg;
    set_round_toward_zero();
    if (!round_toward_zero()) {
        simd_bad = 3;
        return NULL;
    }
    vec e[NV], v[NV];
    for (int k = 0; k < NV; k++)
        e[k] = VSET(100.0f * (k + 1));
    /* One variable per value, so that each lives in its own register. */
#define EACH12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#if NV == 28
#define EACH(X) EACH12(X) X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23) X(24) X(25) X(26) X(27)
#else
#define EACH(X) EACH12(X)
#endif
#define DECL(k) vec v##k = e[k];
#define STEP(k) v##k = VADD(v##k, one); KEEP(v##k); v##k = VSUB(v##k, one); KEEP(v##k);
#define STORE(k) v[k] = v##k;
    EACH(DECL)
    vec one = VONE;
    ready = 1;
    for (;;) {
        for (int n = 0; n < 65536; n++) {
            EACH(STEP)
            KEEP(one);
        }
        EACH(STORE)
        for (int k = 0; k < NV; k++) {
            if (!VEQ(v[k], e[k])) {
                simd_bad_which = k;
                simd_bad = 1;
            }
        }
        if (!round_toward_zero())
            simd_bad = 2;
        iters++;
    }
    return NULL;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 100000;
    printf("start %d\nsimd %s\n", (int)getpid(), KIND);
    fflush(stdout);
    pthread_t t;
    if (pthread_create(&t, NULL, simd_thread, NULL) != 0) {
        printf("BAD pthread_create\n");
        return 3;
    }
    while (!ready)
        sleep_ms(1);
    unsigned long last = 0;
    for (long count = 1; count <= limit; count++) {
        unsigned long i = iters;
        if (simd_bad) {
            printf("BAD %s register %d at check %lu\n",
                   simd_bad == 1 ? "simd-mismatch" : simd_bad == 2 ? "rounding-mode-changed" : "set-rounding",
                   (int)simd_bad_which, i);
            fflush(stdout);
            exit(3);
        }
        if (i < last) {
            printf("BAD iters went down %lu -> %lu\n", last, i);
            fflush(stdout);
            exit(3);
        }
        last = i;
        printf("count %ld\niters %lu\n", count, i);
        fflush(stdout);
        sleep_ms(50);
    }
    printf("done %ld\n", limit);
    fflush(stdout);
    return 0;
}
