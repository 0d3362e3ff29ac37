/* test_attn.c: the attention steps (kernels/attn.h) against a float64 computation of the same
 * sums, for the dispatching functions (SIMD128 in the wasm build) and the scalar reference, over
 * group sizes around the 4-query passes, head sizes that take each path (multiples of 8, of 4
 * only, odd), key counts around the 4-key passes, strided rows and edge values. Each result must
 * lie within the f32 error bound of its sum in any order; natively both sides are the scalar code.
 *   emcc -O2 -msimd128 -std=c11 -Wall -Wextra -Werror -Ikernels -Itests/c tests/c/test_attn.c \
 *     kernels/[all].c -o /tmp/ta.js && node /tmp/ta.js */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attn.h"
#include "check.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static float rng_val(void) { /* mostly ordinary values, some zeros, tiny and large ones */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    const uint32_t r = (uint32_t)(rng_state >> 33);
    const float u = (float)(r & 0xFFFFF) / (float)0x80000 - 1.0f;
    switch (r >> 28) {
    case 0: return 0.0f;
    case 1: return u * 1e-30f;
    case 2: return u * 1e4f;
    default: return u;
    }
}

/* Within the error bound of summing `terms` f32 products in any order: (terms + 2) * 2^-24 of mag,
 * the sum of the terms' magnitudes (+ the smallest normal, for underflow). */
static int close_to(float got, double want, double mag, int64_t terms) {
    return fabs((double)got - want) <= (double)(terms + 2) * 0x1p-24 * mag + 1e-37;
}

static void check_case(int64_t g, int64_t hd, int64_t n, size_t stride) {
    const size_t ss = (size_t)n + 5; /* score rows longer than n: the gap must stay untouched */
    float *q = malloc((size_t)(g * hd) * sizeof *q), *kv = malloc((size_t)n * stride * sizeof *kv);
    float *s = malloc((size_t)g * ss * sizeof *s), *sr = malloc((size_t)g * ss * sizeof *sr);
    float *o = malloc((size_t)(g * hd) * sizeof *o), *orf = malloc((size_t)(g * hd) * sizeof *orf);
    for (int64_t i = 0; i < g * hd; i++) q[i] = rng_val();
    for (size_t i = 0; i < (size_t)n * stride; i++) kv[i] = rng_val();
    for (size_t i = 0; i < (size_t)g * ss; i++) s[i] = sr[i] = 12345.0f;
    const float scale = 0.125f;
    kq_attn_scores(q, g, kv, stride, hd, n, scale, s, ss);
    kq_attn_scores_ref(q, g, kv, stride, hd, n, scale, sr, ss);
    int bad = 0;
    for (int64_t j = 0; j < g; j++) {
        for (int64_t p = 0; p < n; p++) {
            double want = 0, mag = 0;
            for (int64_t i = 0; i < hd; i++) {
                const double t = (double)q[j * hd + i] * kv[(size_t)p * stride + i];
                want += t;
                mag += fabs(t);
            }
            const size_t at = (size_t)j * ss + (size_t)p;
            bad += !close_to(s[at], want * scale, mag * scale, hd) || !close_to(sr[at], want * scale, mag * scale, hd);
        }
        for (size_t p = (size_t)n; p < ss; p++) bad += s[(size_t)j * ss + p] != 12345.0f;
    }
    CHECK(!bad, "scores g=%lld hd=%lld n=%lld stride=%zu: %d off", (long long)g, (long long)hd, (long long)n, stride, bad);
    for (int64_t j = 0; j < g; j++) /* weights: the scores' slots, made positive */
        for (int64_t p = 0; p < n; p++) s[(size_t)j * ss + (size_t)p] = fabsf(rng_val());
    kq_attn_mix(s, ss, g, kv, stride, hd, n, o);
    kq_attn_mix_ref(s, ss, g, kv, stride, hd, n, orf);
    bad = 0;
    for (int64_t j = 0; j < g; j++)
        for (int64_t i = 0; i < hd; i++) {
            double want = 0, mag = 0;
            for (int64_t p = 0; p < n; p++) {
                const double t = (double)s[(size_t)j * ss + (size_t)p] * kv[(size_t)p * stride + i];
                want += t;
                mag += fabs(t);
            }
            bad += !close_to(o[j * hd + i], want, mag, n) || !close_to(orf[j * hd + i], want, mag, n);
        }
    CHECK(!bad, "mix g=%lld hd=%lld n=%lld stride=%zu: %d off", (long long)g, (long long)hd, (long long)n, stride, bad);
    free(q), free(kv), free(s), free(sr), free(o), free(orf);
}

int main(void) {
    const int64_t gs[] = {1, 4, 2, 3, 5, 8};
    const int64_t hds[] = {64, 128, 32, 16, 8, 12, 4, 7, 1};
    const int64_t ns[] = {1, 2, 3, 4, 5, 7, 8, 9, 31, 64, 257};
    for (size_t e = 0; e < sizeof gs / sizeof *gs; e++)
        for (size_t a = 0; a < sizeof hds / sizeof *hds; a++)
            for (size_t b = 0; b < sizeof ns / sizeof *ns; b++) {
                check_case(gs[e], hds[a], ns[b], (size_t)hds[a]);     /* one head per row */
                check_case(gs[e], hds[a], ns[b], (size_t)hds[a] * 8); /* a head of 8 in each cache row */
            }
    return check_report("test_attn");
}
