/* simd_attn.c: wasm SIMD128 attention steps (see attn.h). Scores take 4 keys per pass, and every
 * query of the group uses those 4 rows while they are in L1; the weighted sums keep 8 output
 * floats of up to 4 queries in 8 registers while one pass over the values reads each row once.
 * Results differ from the scalar reference only in float summation order. */
#include "attn.h"

#ifdef __wasm_simd128__
#include <wasm_simd128.h>

#define INLINE static inline __attribute__((always_inline))

INLINE float hsum(v128_t v) {
    v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
    v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
    return wasm_f32x4_extract_lane(v, 0);
}

INLINE v128_t fmadd(v128_t acc, v128_t a, v128_t b) { return wasm_f32x4_add(acc, wasm_f32x4_mul(a, b)); }

void kq_attn_scores_simd(const float *q, int64_t g, const float *k, size_t stride, int64_t hd, int64_t n, float scale,
                         float *s, size_t ss) {
    const v128_t vs = wasm_f32x4_splat(scale);
    int64_t p = 0;
    for (; p + 4 <= n; p += 4) {
        const float *k0 = k + (size_t)p * stride, *k1 = k0 + stride, *k2 = k1 + stride, *k3 = k2 + stride;
        for (int64_t j = 0; j < g; j++) {
            const float *qj = q + j * hd;
            v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
            for (int64_t i = 0; i < hd; i += 4) {
                const v128_t qv = wasm_v128_load(qj + i);
                a0 = fmadd(a0, qv, wasm_v128_load(k0 + i));
                a1 = fmadd(a1, qv, wasm_v128_load(k1 + i));
                a2 = fmadd(a2, qv, wasm_v128_load(k2 + i));
                a3 = fmadd(a3, qv, wasm_v128_load(k3 + i));
            }
            /* transpose-add: lane m of the result is the sum of a_m's lanes */
            const v128_t t01 = wasm_f32x4_add(wasm_i32x4_shuffle(a0, a1, 0, 4, 1, 5), wasm_i32x4_shuffle(a0, a1, 2, 6, 3, 7));
            const v128_t t23 = wasm_f32x4_add(wasm_i32x4_shuffle(a2, a3, 0, 4, 1, 5), wasm_i32x4_shuffle(a2, a3, 2, 6, 3, 7));
            const v128_t sum = wasm_f32x4_add(wasm_i32x4_shuffle(t01, t23, 0, 1, 4, 5), wasm_i32x4_shuffle(t01, t23, 2, 3, 6, 7));
            wasm_v128_store(s + (size_t)j * ss + (size_t)p, wasm_f32x4_mul(sum, vs));
        }
    }
    for (; p < n; p++) {
        const float *kp = k + (size_t)p * stride;
        for (int64_t j = 0; j < g; j++) {
            v128_t a = wasm_f32x4_splat(0);
            for (int64_t i = 0; i < hd; i += 4) a = fmadd(a, wasm_v128_load(q + j * hd + i), wasm_v128_load(kp + i));
            s[(size_t)j * ss + (size_t)p] = hsum(a) * scale;
        }
    }
}

/* Output floats i..i+7 of G queries (G a constant after inlining). */
INLINE void mix8(int G, const float *w, size_t ss, const float *v, size_t stride, int64_t hd, int64_t n, int64_t i,
                 float *o) {
    v128_t a[4][2];
    for (int j = 0; j < G; j++) a[j][0] = a[j][1] = wasm_f32x4_splat(0);
    for (int64_t p = 0; p < n; p++) {
        const float *vp = v + (size_t)p * stride + i;
        const v128_t v0 = wasm_v128_load(vp), v1 = wasm_v128_load(vp + 4);
        for (int j = 0; j < G; j++) {
            const v128_t wp = wasm_f32x4_splat(w[(size_t)j * ss + (size_t)p]);
            a[j][0] = fmadd(a[j][0], wp, v0);
            a[j][1] = fmadd(a[j][1], wp, v1);
        }
    }
    for (int j = 0; j < G; j++) {
        wasm_v128_store(o + j * hd + i, a[j][0]);
        wasm_v128_store(o + j * hd + i + 4, a[j][1]);
    }
}

void kq_attn_mix_simd(const float *w, size_t ss, int64_t g, const float *v, size_t stride, int64_t hd, int64_t n,
                      float *o) {
    for (int64_t j = 0; j < g; j += 4) {
        const float *wj = w + (size_t)j * ss;
        float *oj = o + j * hd;
        for (int64_t i = 0; i < hd; i += 8) switch (g - j) {
            case 1: mix8(1, wj, ss, v, stride, hd, n, i, oj); break;
            case 2: mix8(2, wj, ss, v, stride, hd, n, i, oj); break;
            case 3: mix8(3, wj, ss, v, stride, hd, n, i, oj); break;
            default: mix8(4, wj, ss, v, stride, hd, n, i, oj); break;
            }
    }
}
#endif
