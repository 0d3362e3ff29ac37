/* bench_kernels.c: matrix-kernel microbenchmark, scalar reference (the table's dot per row and
 * token) vs the dispatching drivers (kq_matmul: SIMD gemm in a SIMD128 build), in GB/s of weights.
 * Shapes: matvec 2048 rows x 7168, matvec 7168 rows x 2048, and a 64-token batch on 2048 x 7168.
 * Types with a packed layout (kq_pack: Q4_0) are also timed packed ("packed/fast": its speedup).
 * Every kernel is warmed up before it is timed (V8 optimises between calls). With threads=N, N threads
 * (made once, spinning between calls) each take a contiguous share of the rows, as the engine's pool
 * does. Clock: with one thread, the process's CPU time (other load on the machine then matters less;
 * "wall" forces wall time), else wall time. The fast path (and the baseline, below) is timed in
 * interleaved rounds, reporting the median.
 * Build and run (wasm under Node; add -DKQ_EXACT_FMA=0 for the plain f32 multiply-add variant):
 *   export NODE_PATH=/usr/share/nodejs
 *   emcc -O3 -msimd128 -std=c11 -pthread -Ikernels tests/bench/bench_kernels.c kernels/[all].c \
 *     -sALLOW_MEMORY_GROWTH -sMAXIMUM_MEMORY=4GB -sEXIT_RUNTIME -sPTHREAD_POOL_SIZE=2 -o /tmp/bk.js
 *   node --no-experimental-fetch /tmp/bk.js [threads=N]
 *   ([all].c: every .c file of kernels/.) Other arguments: type names to run (default: all), "quick",
 *   "matvec" (skip the batch), "wall".
 * A/B against an older kernels/simd_q8.c (its public functions renamed kq_base_*), e.g. from git:
 *   git show HEAD~1:kernels/simd_q8.c | sed -E 's/\bkq_(gemm|simd|pack)_/kq_base_\1_/g' > /tmp/base_q8.c
 *   emcc -O3 -msimd128 -std=c11 -pthread -Ikernels -c /tmp/base_q8.c -o /tmp/base_q8.o
 *   and add -DKQ_BENCH_BASE /tmp/base_q8.o to the build line above (same -DKQ_EXACT_FMA for both). */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "blocks.h"
#include "matmul.h"
#include "quant.h"
#include "simd_common.h"

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#ifdef __EMSCRIPTEN__
#include <emscripten.h>
/* CPU seconds of the process under Node (wall time elsewhere). */
EM_JS(double, js_cpu_now, (void), {
    if (typeof process == 'object' && process.cpuUsage) {
        const u = process.cpuUsage();
        return (u.user + u.system) * 1e-6;
    }
    return performance.now() * 1e-3;
});
static double cpu_now(void) { return js_cpu_now(); }
#else
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#endif
static double (*now)(void) = cpu_now;

#ifdef KQ_BENCH_BASE
/* The baseline gemms (an older simd_q8.c, renamed; see the top comment). */
void kq_base_gemm_q4_0(KQ_GEMM_ARGS);
void kq_base_gemm_q4_1(KQ_GEMM_ARGS);
void kq_base_gemm_q5_0(KQ_GEMM_ARGS);
void kq_base_gemm_q5_1(KQ_GEMM_ARGS);
void kq_base_gemm_q8_0(KQ_GEMM_ARGS);
void kq_base_gemm_iq4_nl(KQ_GEMM_ARGS);
static void (*base_gemm(uint32_t type))(KQ_GEMM_ARGS) {
    switch (type) {
    case KQ_Q4_0: return kq_base_gemm_q4_0;
    case KQ_Q4_1: return kq_base_gemm_q4_1;
    case KQ_Q5_0: return kq_base_gemm_q5_0;
    case KQ_Q5_1: return kq_base_gemm_q5_1;
    case KQ_Q8_0: return kq_base_gemm_q8_0;
    case KQ_IQ4_NL: return kq_base_gemm_iq4_nl;
    default: return NULL;
    }
}
#endif

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) * 0x1p-53 * 2.0 - 1.0);
}

typedef struct {
    const kq_traits *tr;
    uint32_t type;
    const uint8_t *w, *xq;
    int64_t k, rows, n;
    float *y;
} job;

/* Each kernel computes rows [r0, r1) of the job. */
typedef void (*kernel)(const job *, int64_t, int64_t);

static void run_scalar(const job *j, int64_t r0, int64_t r1) {
    const size_t wb = kq_row_bytes(j->type, j->k), xb = kq_row_bytes(j->tr->vec_type, j->k);
    for (int64_t t = 0; t < j->n; t++)
        for (int64_t r = r0; r < r1; r++) j->y[t * j->rows + r] = j->tr->dot(j->w + r * wb, j->xq + t * xb, j->k);
}

static void run_fast(const job *j, int64_t r0, int64_t r1) {
    kq_matmul(j->type, j->w, j->k, r0, r1, j->xq, j->n, j->y, j->rows);
}

#ifdef KQ_BENCH_BASE
static void run_base(const job *j, int64_t r0, int64_t r1) {
    const size_t wb = kq_row_bytes(j->type, j->k), xb = kq_row_bytes(j->tr->vec_type, j->k);
    base_gemm(j->type)(j->w + r0 * wb, wb, j->xq, xb, j->k, r1 - r0, j->n, j->y + r0, j->rows);
}
#endif

/* The threads: workers spin on `gen` (they are dedicated to the benchmark), run their share of the
 * published call and count themselves in `done`; a NULL kernel stops them. */
#define MAX_THREADS 8
static int nthreads = 1;
static pthread_t workers[MAX_THREADS];
static struct { kernel f; const job *j; } call;
static atomic_int gen, done;

/* Thread i's rows: contiguous shares, multiples of 32 rows (packed layouts want multiples of 8). */
static void share(const job *j, int i, int64_t *r0, int64_t *r1) {
    const int64_t units = (j->rows + 31) / 32;
    *r0 = units * i / nthreads * 32;
    *r1 = units * (i + 1) / nthreads * 32;
    if (*r1 > j->rows) *r1 = j->rows;
}

static void *worker(void *arg) {
    const int id = (int)(intptr_t)arg;
    int seen = 0;
    for (;;) {
        while (atomic_load_explicit(&gen, memory_order_acquire) == seen) {
        }
        seen++;
        if (!call.f) return NULL;
        int64_t r0, r1;
        share(call.j, id, &r0, &r1);
        call.f(call.j, r0, r1);
        atomic_fetch_add_explicit(&done, 1, memory_order_release);
    }
}

/* f over all rows of j, split over the threads. */
static void par(kernel f, const job *j) {
    if (nthreads == 1) {
        f(j, 0, j->rows);
        return;
    }
    call.f = f;
    call.j = j;
    atomic_store(&done, 0);
    atomic_fetch_add_explicit(&gen, 1, memory_order_release);
    int64_t r0, r1;
    share(j, 0, &r0, &r1);
    f(j, r0, r1);
    while (atomic_load_explicit(&done, memory_order_acquire) < nthreads - 1) {
    }
}

static int start_threads(void) {
    for (int i = 1; i < nthreads; i++)
        if (pthread_create(&workers[i], NULL, worker, (void *)(intptr_t)i)) {
            nthreads = i;
            return 0;
        }
    return 1;
}

static void stop_threads(void) {
    if (nthreads == 1) return;
    call.f = NULL;
    atomic_fetch_add_explicit(&gen, 1, memory_order_release);
    for (int i = 1; i < nthreads; i++) pthread_join(workers[i], NULL);
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Seconds per call of each of nf kernels: warmed up, then ROUNDS interleaved rounds of at least
 * budget / ROUNDS seconds each per kernel; the median round. */
#define ROUNDS 9
static void timeit_ab(const kernel f[], int nf, const job *j, double budget, double *out) {
    double t[4][ROUNDS];
    for (int i = 0; i < nf; i++) {
        par(f[i], j);
        par(f[i], j);
    }
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < nf; i++) {
            int calls = 0;
            const double t0 = now();
            double dt;
            do {
                par(f[i], j);
                calls++;
                dt = now() - t0;
            } while (dt < budget / ROUNDS);
            t[i][round] = dt / calls;
        }
    }
    for (int i = 0; i < nf; i++) {
        qsort(t[i], ROUNDS, sizeof(double), cmp_double);
        out[i] = t[i][ROUNDS / 2];
    }
}

/* Seconds per call (the scalar reference): warm up, then repeat for at least `budget` seconds; the
 * best of 3 rounds. */
static double timeit(kernel f, const job *j, double budget) {
    par(f, j);
    par(f, j);
    double best = 1e30;
    for (int round = 0; round < 3; round++) {
        int calls = 0;
        const double t0 = now();
        double t;
        do {
            par(f, j);
            calls++;
            t = now() - t0;
        } while (t < budget / 3);
        if (t / calls < best) best = t / calls;
    }
    return best;
}

int main(int argc, char **argv) {
    static const uint32_t all[] = {KQ_Q4_0, KQ_Q8_0, KQ_Q4_K, KQ_Q5_K, KQ_Q6_K, KQ_IQ4_XS, KQ_Q4_1,
                                   KQ_Q5_0, KQ_Q5_1, KQ_IQ4_NL, KQ_F16, KQ_BF16, KQ_F32};
    int quick = 0, nsel = 0, matvec_only = 0, wall = 0;
    const char *sel[32];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "quick")) quick = 1;
        else if (!strcmp(argv[i], "matvec")) matvec_only = 1;
        else if (!strcmp(argv[i], "wall")) wall = 1;
        else if (!strncmp(argv[i], "threads=", 8)) {
            nthreads = atoi(argv[i] + 8);
            if (nthreads < 1 || nthreads > MAX_THREADS) {
                fprintf(stderr, "threads must be 1 to %d\n", MAX_THREADS);
                return 2;
            }
        } else if (nsel < 32) sel[nsel++] = argv[i];
    }
    if (!start_threads()) {
        fprintf(stderr, "could not start %d threads\n", nthreads);
        return 1;
    }
    if (nthreads > 1 || wall) now = wall_now;
    const double budget = quick ? 0.3 : 1.0;
    struct { int64_t rows, k, n; const char *name; } shapes[] = {
        {2048, 7168, 1, "matvec 2048x7168"}, {7168, 2048, 1, "matvec 7168x2048"}, {2048, 7168, 64, "batch64 2048x7168"}};
#ifdef __wasm_simd128__
    const char *build = "wasm SIMD128";
#else
    const char *build = "no SIMD (scalar both)";
#endif
    printf("# bench_kernels: %s, KQ_EXACT_FMA=%d, %d thread(s), %s clock, GB/s of weights (scalar = table dot per "
           "row x token; fast = kq_matmul)\n\n",
           build, KQ_EXACT_FMA, nthreads, now == wall_now ? "wall" : "CPU");
    printf("| type | shape | scalar GB/s | fast GB/s | speedup | fast ms/call |\n|---|---|---|---|---|---|\n");
    char json[16384];
    size_t jl = (size_t)snprintf(json, sizeof json, "{\"build\":\"%s\",\"exact_fma\":%d,\"threads\":%d,\"clock\":\"%s\",\"results\":[",
                                 build, KQ_EXACT_FMA, nthreads, now == wall_now ? "wall" : "cpu");
    int first = 1;
    for (unsigned ti = 0; ti < sizeof all / sizeof all[0]; ti++) {
        const uint32_t type = all[ti];
        const kq_traits *tr = kq_get(type);
        int want = nsel == 0;
        for (int s = 0; s < nsel; s++) want |= !strcasecmp(sel[s], tr->name);
        if (!want) continue;
        const int64_t maxel = 2048 * 7168;
        float *src = malloc(sizeof(float) * 7168 * 64);
        uint8_t *w = malloc(kq_row_bytes(type, maxel));
        uint8_t *xq = malloc(kq_act_bytes(type, 7168, 64));
        float *y = malloc(sizeof(float) * 7168 * 64);
        if (!src || !w || !xq || !y) { fprintf(stderr, "out of memory\n"); return 1; }
        /* weights: random floats quantized block-row by block-row, scales varying per block */
        for (int64_t off = 0; off < maxel; off += 7168 * 64) {
            for (int64_t i = 0; i < 7168 * 64; i += 32) {
                const float mag = powf(10.0f, -2.0f * (frand() * 0.5f + 0.5f));
                for (int j = 0; j < 32; j++) src[i + j] = mag * frand();
            }
            tr->quantize(src, w + kq_row_bytes(type, off), 7168 * 64);
        }
        for (int si = 0; si < 3; si++) {
            const int64_t rows = shapes[si].rows, k = shapes[si].k, n = shapes[si].n;
            if (matvec_only && n > 1) continue;
            for (int64_t i = 0; i < k * n; i++) src[i] = frand();
            kq_round_acts(type, src, k, n, xq);
            job j = {tr, type, w, xq, k, rows, n, y};
            const double bytes = (double)kq_row_bytes(type, k) * (double)rows;
            const double ts = timeit(run_scalar, &j, n > 1 ? budget * 2 : budget);
            kernel fs[2] = {run_fast, run_fast};
            int nf = 1;
#ifdef KQ_BENCH_BASE
            if (base_gemm(type)) fs[nf++] = run_base;
#endif
            double tt[2] = {0, 0};
            timeit_ab(fs, nf, &j, budget * nf, tt);
            const double tf = tt[0];
            /* the packed layout (kq_pack), where the type has one: same bits, its own speed */
            double tp = 0;
            int packed_same = 1;
            if (kq_packed(type)) {
                uint8_t *wp = malloc(kq_row_bytes(type, k) * (size_t)rows), *scr = malloc(kq_pack_scratch(type, k));
                float *yp = malloc(sizeof(float) * (size_t)(rows * n));
                if (!wp || !scr || !yp) { fprintf(stderr, "out of memory\n"); return 1; }
                memcpy(wp, w, kq_row_bytes(type, k) * (size_t)rows);
                kq_pack(type, wp, k, rows, scr);
                job jp = {tr, kq_packed(type), wp, xq, k, rows, n, yp};
                tp = timeit(run_fast, &jp, budget);
                par(run_fast, &j);
                packed_same = memcmp(y, yp, sizeof(float) * (size_t)(rows * n)) == 0;
                free(wp), free(scr), free(yp);
            }
            /* the fast path must agree with the scalar one (the unit test checks the bits) */
            float *ys = malloc(sizeof(float) * (size_t)(rows * n));
            j.y = ys;
            par(run_scalar, &j);
            j.y = y;
            par(run_fast, &j);
            double maxrel = 0;
            for (int64_t i = 0; i < rows * n; i++) {
                const double d = fabs((double)ys[i] - y[i]) / (fabs((double)ys[i]) + 1e-30);
                if (d > maxrel) maxrel = d;
            }
            free(ys);
            printf("| %s | %s | %.2f | %.2f | %.1fx | %.3f |", tr->name, shapes[si].name, bytes / ts * 1e-9,
                   bytes / tf * 1e-9, ts / tf, tf * 1e3);
            if (nf > 1) printf(" base %.2f GB/s, fast/base %.2fx |", bytes / tt[1] * 1e-9, tt[1] / tf);
            if (tp > 0) printf(" packed %.2f GB/s, packed/fast %.2fx%s |", bytes / tp * 1e-9, tf / tp, packed_same ? "" : " MISMATCH");
            printf("%s\n", KQ_EXACT_FMA <= 1 && maxrel > 0 ? " MISMATCH (must be bit-identical to the scalar dot)" : "");
            fflush(stdout);
            jl += (size_t)snprintf(json + jl, sizeof json - jl,
                                   "%s{\"type\":\"%s\",\"shape\":\"%s\",\"rows\":%lld,\"k\":%lld,\"n\":%lld,"
                                   "\"scalar_gbs\":%.3f,\"fast_gbs\":%.3f,\"fast_ms\":%.4f,\"max_rel_diff\":%.3g,"
                                   "\"packed_gbs\":%.3f}",
                                   first ? "" : ",", tr->name, shapes[si].name, (long long)rows, (long long)k,
                                   (long long)n, bytes / ts * 1e-9, bytes / tf * 1e-9, tf * 1e3, maxrel,
                                   tp > 0 ? bytes / tp * 1e-9 : 0.0);
            first = 0;
        }
        free(src);
        free(w);
        free(xq);
        free(y);
    }
    printf("\n%s]}\n", json);
    stop_threads();
    return 0;
}
