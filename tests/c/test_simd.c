/* test_simd.c: the fast kernels (wasm SIMD128: kernels/simd_*.c, reached through kq_matmul /
 * kq_round_acts and the table's gemm / quantize_fast) against the scalar reference dot / quantize,
 * on random and edge-case blocks: results must be bit-identical to the reference compiled with the
 * same KQ_EXACT_FMA (1: fused steps, emulated in SIMD; 0: rounded multiply + add, the wasm build's
 * setting), and within 1e-6 relative for KQ_EXACT_FMA=2 (a measuring mode). Natively the drivers fall back to the scalar code, so the
 * comparisons hold trivially; the wasm build is the real test:
 *   emcc -O2 -msimd128 -DKQ_EXACT_FMA=0 -std=c11 -Wall -Wextra -Werror -Ikernels -Itests/c tests/c/test_simd.c \
 *     kernels/[all].c -o /tmp/ts.js && node /tmp/ts.js   ([all].c: every .c file of kernels/) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "check.h"
#include "matmul.h"
#include "quant.h"
#include "simd_common.h"

static uint64_t rng_state = 0x243F6A8885A308D3ull;

static uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint32_t rng_below(uint32_t n) { return (uint32_t)(rng_next() % n); }

static float rng_unit(void) { return (float)((double)(rng_next() >> 11) * 0x1p-52 - 1.0); }

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Edge-heavy halves, never Inf/NaN: zero (both signs), subnormal, tiny, ordinary, large, negative. */
static uint16_t edge_half(void) {
    const uint16_t sign = rng_below(2) ? 0x8000 : 0;
    switch (rng_below(8)) {
    case 0: return sign;                                        /* +-0 */
    case 1: return (uint16_t)(sign | (1 + rng_below(0x3FF)));   /* subnormal */
    case 2: return (uint16_t)(sign | (rng_below(6) << 10) | rng_below(0x400)); /* tiny normal */
    case 3: return (uint16_t)(sign | ((24 + rng_below(7)) << 10) | rng_below(0x400)); /* large */
    default: return (uint16_t)(sign | ((8 + rng_below(12)) << 10) | rng_below(0x400)); /* ordinary */
    }
}

static uint16_t edge_bf16(void) {
    const uint16_t sign = rng_below(2) ? 0x8000 : 0;
    switch (rng_below(6)) {
    case 0: return sign;
    case 1: return (uint16_t)(sign | (1 + rng_below(0x7F))); /* subnormal */
    default: return (uint16_t)(sign | ((97 + rng_below(60)) << 7) | rng_below(0x80));
    }
}

static float edge_f32(void) {
    switch (rng_below(6)) {
    case 0: return 0.0f;
    case 1: return bits_f32((rng_below(2) << 31) | (1 + rng_below(0x7FFFFF))); /* subnormal */
    default: return ldexpf(rng_unit(), (int)rng_below(40) - 20);
    }
}

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

/* Offsets of the f16 fields of a weight block (scales, mins), -1 terminated. */
static const int *half_fields(uint32_t type) {
    static const int d0[] = {0, -1}, dm[] = {0, 2, -1}, q6[] = {208, -1};
    switch (type) {
    case KQ_Q4_1: case KQ_Q5_1: case KQ_Q4_K: case KQ_Q5_K: case KQ_Q8_1: return dm;
    case KQ_Q6_K: return q6;
    default: return d0;
    }
}

/* Random rows of `type`: mode 0 quantizes random floats with the type's quantizer; mode 1 random
 * bytes (every quant pattern, extreme ones included) with edge-case scales; mode 2 like 1 with
 * some all-zero and all-extreme blocks. */
static void fill_rows(uint32_t type, uint8_t *dst, int64_t k, int64_t rows, int mode, float *tmp) {
    const kq_traits *tr = kq_get(type);
    const size_t rb = kq_row_bytes(type, k);
    for (int64_t r = 0; r < rows; r++) {
        uint8_t *row = dst + (size_t)r * rb;
        if (mode == 0) {
            for (int64_t b = 0; b < k; b += 32) {
                const float mag = powf(10.0f, -3.0f + 4.0f * (rng_unit() * 0.5f + 0.5f));
                for (int j = 0; j < 32 && b + j < k; j++) tmp[b + j] = mag * rng_unit();
            }
            for (int64_t j = k - k % 32; j < k; j++) tmp[j] = rng_unit();
            tr->quantize(tmp, row, k);
            continue;
        }
        for (size_t i = 0; i < rb; i++) row[i] = (uint8_t)rng_next();
        if (type == KQ_F32) {
            for (int64_t i = 0; i < k; i++) {
                const float f = edge_f32();
                memcpy(row + 4 * i, &f, 4);
            }
        } else if (type == KQ_F16) {
            for (int64_t i = 0; i < k; i++) put16(row + 2 * i, edge_half());
        } else if (type == KQ_BF16) {
            for (int64_t i = 0; i < k; i++) put16(row + 2 * i, edge_bf16());
        } else {
            for (int64_t b = 0; b < k / tr->blck; b++) {
                uint8_t *blk = row + (size_t)b * tr->bytes;
                if (mode == 2 && rng_below(4) == 0) memset(blk, rng_below(2) ? 0 : 0xFF, tr->bytes);
                if (type == KQ_Q8_K) {
                    const float d = rng_below(8) == 0 ? 0.0f : ldexpf(rng_unit(), -(int)rng_below(12));
                    memcpy(blk, &d, 4);
                    continue;
                }
                for (const int *f = half_fields(type); *f >= 0; f++) put16(blk + *f, edge_half());
            }
        }
    }
}

static int same_bits(float a, float b) { return f32_bits(a) == f32_bits(b); }

#define NMAX_ROWS 13
#define NMAX_TOK 9
#define KMAX 1536

static uint8_t wbuf[NMAX_ROWS * KMAX * 4], xbuf[NMAX_TOK * KMAX * 4 + 64];
static float tmp[KMAX], yref[NMAX_TOK * 32], yfast[NMAX_TOK * 32];

/* |w| . |x| of one row pair, for the relative tolerance of KQ_EXACT_FMA=0. */
static double abs_dot(uint32_t type, const uint8_t *w, const uint8_t *x, int64_t k) {
    static float a[KMAX], b[KMAX];
    kq_get(type)->dequant(w, a, k);
    kq_get(kq_get(type)->vec_type)->dequant(x, b, k);
    double s = 0;
    for (int64_t i = 0; i < k; i++) s += fabs((double)a[i] * b[i]);
    return s;
}

static void test_type(uint32_t type) {
    const kq_traits *tr = kq_get(type), *vt = kq_get(tr->vec_type);
    const int64_t ks[] = {256, 512, 1280, 288, 32, 33, 7};
    int fails = 0, cases = 0;
    for (unsigned ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
        const int64_t k = ks[ki];
        if (k % tr->blck) continue;
        for (int mode = 0; mode < 3; mode++) {
            for (int64_t rows = 1; rows <= NMAX_ROWS; rows += (rows < 9 ? 1 : 4)) {
                const int64_t n = 1 + (rows + mode + ki) % NMAX_TOK;
                fill_rows(type, wbuf, k, rows, mode, tmp);
                fill_rows(tr->vec_type, xbuf, k, n, mode, tmp);
                const size_t wb = kq_row_bytes(type, k), xb = kq_row_bytes(tr->vec_type, k);
                const int64_t ldy = rows + 3, r0 = rows > 4 ? 1 : 0;
                for (int64_t i = 0; i < n * ldy; i++) yfast[i] = yref[i] = -12345.0f;
                for (int64_t t = 0; t < n; t++)
                    for (int64_t r = r0; r < rows; r++)
                        yref[t * ldy + r] = tr->dot(wbuf + r * wb, xbuf + t * xb, k);
                kq_matmul(type, wbuf, k, r0, rows, xbuf, n, yfast, ldy);
                for (int64_t t = 0; t < n; t++) {
                    for (int64_t i = 0; i < ldy; i++) {
                        const float a = yref[t * ldy + i], b = yfast[t * ldy + i];
                        int ok;
                        if (KQ_EXACT_FMA <= 1 || i < r0 || i >= rows) { /* 0 and 1: the scalar reference's bits */
                            ok = same_bits(a, b);
                        } else {
                            const double mag = abs_dot(type, wbuf + i * wb, xbuf + t * xb, k);
                            ok = fabs((double)a - b) <= 1e-6 * (fabs((double)a) + mag) + 1e-30;
                        }
                        cases++;
                        if (!ok && fails++ < 5)
                            CHECK(ok, "%s k=%lld rows=%lld n=%lld mode=%d r=%lld t=%lld: ref %.9g (%08x) fast %.9g (%08x)",
                                  tr->name, (long long)k, (long long)rows, (long long)n, mode, (long long)i,
                                  (long long)t, a, f32_bits(a), b, f32_bits(b));
                    }
                }
            }
        }
    }
    CHECK(fails == 0, "%s: %d of %d results differ", tr->name, fails, cases);
    (void)vt;
}

/* A (row, token) result must not depend on the tiling: the engine splits rows across threads in
 * multiples of 8 and tokens arbitrarily, and the K-quant drivers prepare tokens in groups (a long
 * row makes several groups). Every split must give the scalar reference's bits. */
static void test_tiling(void) {
    static const uint32_t types[] = {KQ_Q4_K, KQ_Q5_K, KQ_Q6_K, KQ_IQ4_XS, KQ_Q4_0, KQ_Q8_0};
    const int64_t k = 64 * QK_K, rows = 19, n = 11;
    for (unsigned ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const uint32_t type = types[ti];
        const kq_traits *tr = kq_get(type);
        const size_t wb = kq_row_bytes(type, k), xb = kq_row_bytes(tr->vec_type, k);
        uint8_t *w = malloc(wb * rows), *xq = malloc(xb * n);
        float *src = malloc(sizeof(float) * (size_t)k), *ref = malloc(sizeof(float) * rows * n),
              *got = malloc(sizeof(float) * rows * n);
        if (!w || !xq || !src || !ref || !got) {
            CHECK(0, "out of memory");
            return;
        }
        fill_rows(type, w, k, rows, 1, src);
        fill_rows(tr->vec_type, xq, k, n, 0, src);
        for (int64_t t = 0; t < n; t++)
            for (int64_t r = 0; r < rows; r++) ref[t * rows + r] = tr->dot(w + r * wb, xq + t * xb, k);
        /* splits: all at once; rows 0-7 / 8-15 / 16-18 with tokens 0-4 / 5-10; one token at a time */
        static const int64_t rsplit[][2] = {{0, 19}, {0, 8}, {8, 16}, {16, 19}};
        int fails = 0;
        for (int mode = 0; mode < 3; mode++) {
            memset(got, 0, sizeof(float) * rows * n);
            for (unsigned rs = mode == 0 ? 0 : 1; rs < (mode == 0 ? 1u : 4u); rs++) {
                const int64_t r0 = rsplit[rs][0], r1 = rsplit[rs][1];
                for (int64_t t0 = 0; t0 < n;) {
                    const int64_t cnt = mode == 0 ? n : mode == 1 ? (t0 == 0 ? 5 : n - 5) : 1;
                    kq_matmul(type, w, k, r0, r1, xq + t0 * xb, cnt, got + t0 * rows, rows);
                    t0 += cnt;
                }
            }
            for (int64_t i = 0; i < rows * n; i++) fails += !same_bits(ref[i], got[i]);
        }
        CHECK(fails == 0, "%s: %d results depend on the row / token split", tr->name, fails);
        free(w);
        free(xq);
        free(src);
        free(ref);
        free(got);
    }
}

/* Thread-count independence: rows split in multiples of 8 (as the engine's threads do, plus a
 * leftover) and tokens split anyway, more tokens than a batch tile's chunk; every piece must give the
 * bits of the whole call and of the scalar dot. */
#define SPLIT_ROWS 27
#define SPLIT_TOK 41
#define SPLIT_K 320
static void test_split(uint32_t type) {
    static uint8_t w[SPLIT_ROWS * SPLIT_K * 4], x[SPLIT_TOK * SPLIT_K * 4];
    static float whole[SPLIT_TOK * SPLIT_ROWS], part[SPLIT_TOK * SPLIT_ROWS];
    const kq_traits *tr = kq_get(type);
    const size_t wb = kq_row_bytes(type, SPLIT_K), xb = kq_row_bytes(tr->vec_type, SPLIT_K);
    fill_rows(type, w, SPLIT_K, SPLIT_ROWS, 0, tmp);
    fill_rows(tr->vec_type, x, SPLIT_K, SPLIT_TOK, 0, tmp);
    kq_matmul(type, w, SPLIT_K, 0, SPLIT_ROWS, x, SPLIT_TOK, whole, SPLIT_ROWS);
    static const int64_t rcut[] = {0, 8, 24, SPLIT_ROWS}, tcut[] = {0, 1, 3, 8, 40, SPLIT_TOK};
    for (int ri = 0; ri < 3; ri++)
        for (int ti = 0; ti < 5; ti++)
            kq_matmul(type, w, SPLIT_K, rcut[ri], rcut[ri + 1], x + (size_t)tcut[ti] * xb, tcut[ti + 1] - tcut[ti],
                      part + tcut[ti] * SPLIT_ROWS, SPLIT_ROWS);
    int fails = 0;
    for (int64_t t = 0; t < SPLIT_TOK; t++) {
        for (int64_t r = 0; r < SPLIT_ROWS; r++) {
            const float ref = tr->dot(w + r * wb, x + t * xb, SPLIT_K), a = whole[t * SPLIT_ROWS + r],
                        b = part[t * SPLIT_ROWS + r];
            const int ok = same_bits(a, b) && (KQ_EXACT_FMA > 1 || same_bits(a, ref));
            if (!ok && fails++ < 3)
                CHECK(ok, "%s split r=%lld t=%lld: whole %a part %a ref %a", tr->name, (long long)r, (long long)t, a, b, ref);
        }
    }
    CHECK(fails == 0, "%s: %d split results differ", tr->name, fails);
}

/* A weight scale that is Inf or NaN (f16 exponent 31) in one block of one row: every result, that
 * row's and its tile neighbours', is still the scalar dot's. */
static void test_special_scale(uint32_t type) {
    static uint8_t w[8 * 256 * 2], x[5 * 256 * 2];
    static float y[5 * 8];
    const kq_traits *tr = kq_get(type);
    const int64_t k = 256, rows = 8;
    const size_t wb = kq_row_bytes(type, k), xb = kq_row_bytes(tr->vec_type, k);
    static const uint16_t specials[] = {0x7C00, 0xFC00, 0x7E00, 0x7C01};
    for (unsigned si = 0; si < sizeof specials / sizeof specials[0]; si++) {
        for (int64_t n = 1; n <= 5; n += 4) {
            fill_rows(type, w, k, rows, 0, tmp);
            fill_rows(tr->vec_type, x, k, n, 0, tmp);
            put16(w + 5 * wb + 3 * tr->bytes, specials[si]); /* row 5, block 3 */
            kq_matmul(type, w, k, 0, rows, x, n, y, rows);
            int fails = 0;
            for (int64_t t = 0; t < n; t++)
                for (int64_t r = 0; r < rows; r++)
                    fails += KQ_EXACT_FMA <= 1 && !same_bits(y[t * rows + r], tr->dot(w + r * wb, x + t * xb, k));
            CHECK(fails == 0, "%s scale %04x n=%lld: %d results differ", tr->name, specials[si], (long long)n, fails);
        }
    }
}

/* Packed weights (kq_pack; Q4_0 and Q8_0 in SIMD builds): whole groups of 8 rows rewritten, the rest left as
 * they were, and kq_matmul on the packed matrix giving the scalar dot's bits on the plain one for any
 * split of rows (at multiples of 8, as the engine's threads cut) and tokens, with edge-case scales and
 * an Inf / NaN scale in one block (that group's rows go to the scalar reference). */
/* How many of got[t * rows + r] differ in bits from the scalar dot of weight row r (w, stride wb) and
 * activation row t (xq, stride xb); *at: the first such index. */
static int64_t diff_vs_dot(const kq_traits *tr, const uint8_t *w, size_t wb, const uint8_t *xq, size_t xb, int64_t k,
                           int64_t rows, int64_t n, const float *got, int64_t *at) {
    int64_t bad = 0;
    for (int64_t i = 0; i < rows * n; i++)
        if (KQ_EXACT_FMA <= 1 && !same_bits(tr->dot(w + (i % rows) * wb, xq + (i / rows) * xb, k), got[i]) && !bad++) *at = i;
    return bad;
}

static void test_packed(uint32_t type) {
    const uint32_t packed = kq_packed(type);
#ifdef __wasm_simd128__
    CHECK(packed == (type | KQ_PACKED), "%s has a packed layout", kq_get(type)->name);
#endif
    CHECK(!kq_packed(KQ_Q6_K) && !kq_packed(KQ_F32), "no packed layout for Q6_K / F32");
    if (!packed) return;
    const kq_traits *tr = kq_get(type);
    static const int64_t ks[] = {32, 288, 1280}, rowss[] = {8, 19, 27};
    static const uint16_t specials[] = {0, 0x7C00, 0xFE00};
    int fails = 0, cases = 0;
    for (unsigned ki = 0; ki < 3; ki++)
        for (unsigned ri = 0; ri < 3; ri++)
            for (int mode = 0; mode < 3; mode++) {
                const int64_t k = ks[ki], rows = rowss[ri], n = 1 + (ki * 7 + ri * 3 + (unsigned)mode * 11) % 41;
                const size_t wb = kq_row_bytes(type, k), xb = kq_row_bytes(tr->vec_type, k);
                uint8_t *w = malloc(wb * rows), *wp = malloc(wb * rows), *xq = malloc(xb * n),
                        *scratch = malloc(kq_pack_scratch(type, k));
                float *src = malloc(sizeof(float) * (size_t)k), *got = malloc(sizeof(float) * rows * n);
                if (!w || !wp || !xq || !scratch || !src || !got) {
                    CHECK(0, "out of memory");
                    return;
                }
                fill_rows(type, w, k, rows, mode, src);
                fill_rows(tr->vec_type, xq, k, n, 0, src);
                if (specials[mode]) put16(w + 5 * wb + (size_t)(k / 64) * tr->bytes, specials[mode]);
                memcpy(wp, w, wb * rows);
                kq_pack(type, wp, k, rows, scratch);
                const int64_t whole = rows - rows % 8;
                CHECK(memcmp(w + whole * wb, wp + whole * wb, (size_t)(rows - whole) * wb) == 0,
                      "k=%lld rows=%lld: the rows after the last group of 8 stay plain", (long long)k, (long long)rows);
                CHECK(memcmp(w, wp, wb * 8) != 0, "k=%lld: a group is rewritten", (long long)k);
                static const int64_t rcut[] = {0, 8, 16, 64};
                for (int split = 0; split < 2; split++) {
                    for (int64_t i = 0; i < rows * n; i++) got[i] = -1.0f;
                    if (split == 0) {
                        kq_matmul(packed, wp, k, 0, rows, xq, n, got, rows);
                    } else { /* rows in pieces of 8 (the last one short), tokens one at a time then the rest */
                        for (int c = 0; c < 3 && rcut[c] < rows; c++) {
                            const int64_t r1 = rcut[c + 1] < rows ? rcut[c + 1] : rows;
                            kq_matmul(packed, wp, k, rcut[c], r1, xq, 1, got, rows);
                            kq_matmul(packed, wp, k, rcut[c], r1, xq + xb, n - 1, got + rows, rows);
                        }
                    }
                    int64_t at = 0;
                    const int64_t bad = diff_vs_dot(tr, w, wb, xq, xb, k, rows, n, got, &at);
                    cases++;
                    if (bad && fails++ < 5)
                        CHECK(!bad, "packed %s k=%lld rows=%lld n=%lld mode=%d split=%d: %lld differ, first r=%lld t=%lld",
                              tr->name, (long long)k, (long long)rows, (long long)n, mode, split, (long long)bad,
                              (long long)(at % rows), (long long)(at / rows));
                }
                free(w), free(wp), free(xq), free(scratch), free(src), free(got);
            }
    CHECK(fails == 0, "packed %s: %d of %d cases differ", tr->name, fails, cases);
}

/* Activations prepared once (kq_prep, token slices in any order) and shared by kq_matmul_prep calls on
 * any row ranges: the bits of the scalar dot, packed or plain, for token counts around the kernels'
 * chunk (32) and pair sizes, with an Inf / NaN weight scale in some cases. */
static void test_prep(uint32_t type) {
    const kq_traits *tr = kq_get(type);
    static const int64_t ns[] = {1, 2, 7, 32, 33, 45}, ks[] = {64, 1280};
    int fails = 0, cases = 0;
    for (unsigned ki = 0; ki < 2; ki++)
        for (unsigned ni = 0; ni < 6; ni++)
            for (int packed = 0; packed < 2; packed++) {
                const int64_t k = ks[ki], n = ns[ni], rows = 27;
                const uint32_t id = packed ? kq_packed(type) : type;
                const size_t wb = kq_row_bytes(type, k), xb = kq_row_bytes(tr->vec_type, k);
                const size_t pb = kq_prep_bytes(id, k, n);
#ifdef __wasm_simd128__
                CHECK(pb > 0, "%s k=%lld n=%lld: a prepared form", tr->name, (long long)k, (long long)n);
#endif
                if (!id || !pb) continue;
                uint8_t *w = malloc(wb * rows), *xq = malloc(xb * (size_t)n), *scratch = malloc(kq_pack_scratch(type, k));
                uint8_t *raw = malloc(pb + 16);
                float *src = malloc(sizeof(float) * (size_t)k), *got = malloc(sizeof(float) * (size_t)(rows * n));
                if (!w || !xq || !scratch || !raw || !src || !got) {
                    CHECK(0, "out of memory");
                    return;
                }
                fill_rows(type, w, k, rows, 0, src);
                if (ni % 3 == 2) put16(w + 9 * wb + (size_t)(k / 64) * tr->bytes, ni % 2 ? 0x7C00 : 0xFE00);
                fill_rows(tr->vec_type, xq, k, n, 0, src);
                uint8_t *wp = malloc(wb * rows);
                if (!wp) {
                    CHECK(0, "out of memory");
                    return;
                }
                memcpy(wp, w, wb * rows);
                if (packed) kq_pack(type, wp, k, rows, scratch);
                void *prep = (void *)(((uintptr_t)raw + 15) & ~(uintptr_t)15);
                /* slices of 3 tokens, last one first */
                for (int64_t t0 = (n - 1) / 3 * 3; t0 >= 0; t0 -= 3) kq_prep(id, xq, k, n, t0, t0 + 3 < n ? t0 + 3 : n, prep);
                for (int64_t i = 0; i < rows * n; i++) got[i] = -1.0f;
                kq_matmul_prep(id, wp, k, 8, 24, xq, prep, n, got, rows); /* rows in three calls */
                kq_matmul_prep(id, wp, k, 0, 8, xq, prep, n, got, rows);
                kq_matmul_prep(id, wp, k, 24, rows, xq, prep, n, got, rows);
                int64_t at = 0;
                const int64_t bad = diff_vs_dot(tr, w, wb, xq, xb, k, rows, n, got, &at);
                cases++;
                if (bad && fails++ < 5)
                    CHECK(!bad, "prep %s k=%lld n=%lld packed=%d: %lld differ, first r=%lld t=%lld", tr->name, (long long)k,
                          (long long)n, packed, (long long)bad, (long long)(at % rows), (long long)(at / rows));
                free(w), free(wp), free(xq), free(scratch), free(raw), free(src), free(got);
            }
    CHECK(fails == 0, "prep %s: %d of %d cases differ", tr->name, fails, cases);
}

/* The activation quantizers: kq_round_acts (fast path) vs the table's scalar quantize. */
static void test_quantizers(void) {
    static const uint32_t wtypes[] = {KQ_Q4_0, KQ_Q4_1, KQ_Q4_K};
    static float x[4 * KMAX];
    static uint8_t a[4 * KMAX * 2], b[4 * KMAX * 2];
    for (unsigned wi = 0; wi < 3; wi++) {
        const kq_traits *vt = kq_get(kq_get(wtypes[wi])->vec_type);
        int fails = 0;
        for (int iter = 0; iter < 40; iter++) {
            const int64_t k = 1024, n = 1 + iter % 4;
            for (int64_t i = 0; i < n * k; i++) x[i] = ldexpf(rng_unit(), (int)rng_below(30) - 15);
            if (iter % 5 == 1) /* all-zero and signed-zero blocks */
                for (int64_t i = 0; i < 300; i++) x[i] = (i & 1) ? -0.0f : 0.0f;
            if (iter % 5 == 2) /* exact ties after scaling: amax 127 gives id = 1 */
                for (int64_t i = 0; i < n * k; i++) x[i] = (float)((int)rng_below(255) - 127) + (rng_below(2) ? 0.5f : 0.0f);
            if (iter % 5 == 3) /* +amax and -amax in one block: the first decides the sign (Q8_K) */
                for (int64_t i = 0; i < n * k; i += 16) { x[i] = 3.0f; x[i + 5] = -3.0f; }
            if (iter % 5 == 4) /* subnormal and huge inputs */
                for (int64_t i = 0; i < n * k; i++) x[i] = rng_below(2) ? bits_f32(1 + rng_below(1000)) : ldexpf(rng_unit(), 100);
            memset(a, 0x55, sizeof a);
            memset(b, 0x55, sizeof b);
            kq_round_acts(wtypes[wi], x, k, n, a);
            for (int64_t t = 0; t < n; t++) vt->quantize(x + t * k, b + t * kq_row_bytes(kq_get(wtypes[wi])->vec_type, k), k);
            if (memcmp(a, b, kq_act_bytes(wtypes[wi], k, n)) != 0) fails++;
        }
        CHECK(fails == 0, "%s quantizer: %d of 40 differ", vt->name, fails);
    }
}

/* The double-rounding case of the emulated FMA, end to end: 4 rows of two Q8_0 blocks. Block 1
 * leaves lane 0 at 2^-48 (d = 2^-24 * 2^-24, lane 1); block 2 adds d = 673 * 2^-18 times lane 24929
 * = 127*127 + 80*110, i.e. 64 + 2^-18 exactly: the fused result rounds the exact sum 64 + 2^-18 +
 * 2^-48 up to 64 + 2^-17, while rounding to double first lands on the midpoint 64 + 2^-18 and then
 * ties to even 64. */
static void test_fma_midpoint(void) {
    static block_q8_0 w[4][2], x[2];
    memset(w, 0, sizeof w);
    memset(x, 0, sizeof x);
    const uint16_t d2 = kq_f32_to_f16(673.0f * 0x1p-18f);
    CHECK(kq_f16_to_f32(d2) == 673.0f * 0x1p-18f, "673 * 2^-18 is a half");
    for (int r = 0; r < 4; r++) {
        w[r][0].d = 0x0001; /* 2^-24 */
        w[r][0].qs[0] = 1;
        w[r][1].d = d2;
        w[r][1].qs[0] = 127;
        w[r][1].qs[1] = 80;
    }
    x[0].d = 0x0001;
    x[0].qs[0] = 1;
    x[1].d = 0x3C00; /* 1 */
    x[1].qs[0] = 127;
    x[1].qs[1] = 110;
    float y[4] = {0};
    kq_matmul(KQ_Q8_0, w, 64, 0, 4, x, 1, y, 4);
    const float want = kq_dot_q8_0(w[0], x, 64);
    CHECK(!KQ_EXACT_FMA || want == 64.0f + 0x1p-17f, "reference: %a", want); /* fused reference only */
    for (int r = 0; r < 4; r++) /* want is the reference of this build (rounded twice when 0) */
        CHECK(KQ_EXACT_FMA > 1 || same_bits(y[r], want), "row %d: %a vs %a", r, y[r], want);
#ifdef __wasm_simd128__
    /* the step itself: a midpoint that is exact must stay (ties to even), an inexact one not */
    const float one[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    kq_acc a;
    kq_acc_set(&a, one);
    kq_acc_fma(&a, wasm_i32x4_make(0, 4097, -4097, 0), wasm_i32x4_make(1, 2, 3, 8388608), ldexpf(16773121.0f, -60));
    float got[8];
    kq_acc_get(&a, got);
    const int32_t lanes[8] = {0, 4097, -4097, 0, 1, 2, 3, 8388608};
    for (int j = 0; j < 8; j++)
        CHECK(KQ_EXACT_FMA != 1 || same_bits(got[j], fmaf(ldexpf(16773121.0f, -60), (float)lanes[j], 1.0f)),
              "lane %d: %a", j, got[j]);
    kq_acc_set(&a, one);
    kq_acc_fma(&a, wasm_i32x4_make(1, 3, 5, -1), wasm_i32x4_make(-3, 2, 0, 7), 0x1p-24f); /* exact midpoints */
    kq_acc_get(&a, got);
    const int32_t l2[8] = {1, 3, 5, -1, -3, 2, 0, 7};
    for (int j = 0; j < 8; j++)
        CHECK(KQ_EXACT_FMA != 1 || same_bits(got[j], fmaf(0x1p-24f, (float)l2[j], 1.0f)),
              "exact midpoint lane %d: %a", j, got[j]);
#endif
}

#ifdef __wasm_simd128__
static void test_table(void) {
    static const uint32_t with[] = {KQ_F32,  KQ_F16,  KQ_BF16,   KQ_Q4_0, KQ_Q4_1, KQ_Q5_0,  KQ_Q5_1,
                                    KQ_Q8_0, KQ_IQ4_NL, KQ_Q4_K, KQ_Q5_K, KQ_Q6_K, KQ_IQ4_XS};
    for (unsigned i = 0; i < sizeof with / sizeof with[0]; i++)
        CHECK(kq_get(with[i])->gemm != 0, "%s has a SIMD gemm", kq_get(with[i])->name);
    CHECK(kq_get(KQ_Q8_0)->quantize_fast && kq_get(KQ_Q8_1)->quantize_fast && kq_get(KQ_Q8_K)->quantize_fast,
          "fast activation quantizers");
}

/* The kernels' vector f16 -> f32 against the scalar one, on every half (subnormals, Inf, NaN). */
static void test_h2f4(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h += 4) {
        float got[4];
        wasm_v128_store(got, kq_h2f4(wasm_i32x4_make((int32_t)h, (int32_t)h + 1, (int32_t)h + 2, (int32_t)h + 3)));
        for (uint32_t j = 0; j < 4; j++) bad += !same_bits(got[j], kq_f16_to_f32((kq_half)(h + j)));
    }
    CHECK(bad == 0, "kq_h2f4 differs from kq_f16_to_f32 on %d halves", bad);
}
#endif

int main(void) {
#ifdef __wasm_simd128__
    printf("test_simd: wasm SIMD128 kernels, KQ_EXACT_FMA=%d\n", KQ_EXACT_FMA);
    test_table();
    test_h2f4();
#else
    printf("test_simd: no SIMD128 in this build; checking the scalar fallback of the drivers only\n");
#endif
    static const uint32_t types[] = {KQ_Q4_0, KQ_Q4_1, KQ_Q5_0, KQ_Q5_1, KQ_Q8_0, KQ_IQ4_NL, KQ_Q4_K,
                                     KQ_Q5_K, KQ_Q6_K, KQ_IQ4_XS, KQ_F32, KQ_F16, KQ_BF16};
    for (unsigned i = 0; i < sizeof types / sizeof types[0]; i++) {
        test_type(types[i]);
        if (SPLIT_K % kq_get(types[i])->blck == 0) test_split(types[i]);
    }
    test_tiling(); /* the 256-element block types, with rows long enough for several token groups */
    for (unsigned i = 0; i < 6; i++) test_special_scale(types[i]); /* the 32-element block types */
    test_packed(KQ_Q4_0);
    test_packed(KQ_Q8_0);
    test_prep(KQ_Q4_0);
    test_prep(KQ_Q8_0);
    test_quantizers();
    test_fma_midpoint();
    return check_report("test_simd");
}
