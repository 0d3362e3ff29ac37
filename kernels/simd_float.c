/* simd_float.c: wasm SIMD128 kernels for F32 / F16 / BF16 weights (activations of the same type).
 * The scalar reference sums float products in double, element after element. Here the 4 rows of a
 * tile are the 4 lanes: each step multiplies element i of the 4 rows by x[i] (f32x4), widens to
 * f64 and adds, so every row sees exactly the reference's sequence of roundings (bit-identical). */
#include "simd_common.h"

#ifdef __wasm_simd128__

enum { K_F32, K_F16, K_BF16 };

KQ_INLINE size_t esize(int kind) { return kind == K_F32 ? 4 : 2; }

/* 4 consecutive elements as f32x4. */
KQ_INLINE v128_t load4(int kind, const uint8_t *p) {
    if (kind == K_F32) return wasm_v128_load(p);
    const v128_t h = wasm_u32x4_extend_low_u16x8(wasm_v128_load64_zero(p));
    return kind == K_F16 ? kq_h2f4(h) : wasm_i32x4_shl(h, 16);
}

KQ_INLINE float load1(int kind, const uint8_t *p) {
    float f;
    uint16_t h;
    if (kind == K_F32) {
        memcpy(&f, p, 4);
        return f;
    }
    memcpy(&h, p, 2);
    return kind == K_F16 ? kq_h2f(h) : kq_bf16_to_f32(h);
}

KQ_INLINE int float_tile(int kind, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int64_t k,
                          float *y, int64_t ldy, int T) {
    const size_t es = esize(kind);
    v128_t lo[KQ_TT], hi[KQ_TT]; /* f64 sums: rows 0,1 and rows 2,3 */
    for (int t = 0; t < T; t++) lo[t] = hi[t] = wasm_f64x2_splat(0.0);
    int64_t i = 0;
    for (; i + 4 <= k; i += 4) {
        const v128_t a0 = load4(kind, w + (size_t)i * es), a1 = load4(kind, w + ws + (size_t)i * es),
                     a2 = load4(kind, w + 2 * ws + (size_t)i * es), a3 = load4(kind, w + 3 * ws + (size_t)i * es);
        const v128_t t0 = wasm_i32x4_shuffle(a0, a1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(a2, a3, 0, 4, 1, 5);
        const v128_t t2 = wasm_i32x4_shuffle(a0, a1, 2, 6, 3, 7), t3 = wasm_i32x4_shuffle(a2, a3, 2, 6, 3, 7);
        v128_t c[4];
        c[0] = wasm_i32x4_shuffle(t0, t1, 0, 1, 4, 5);
        c[1] = wasm_i32x4_shuffle(t0, t1, 2, 3, 6, 7);
        c[2] = wasm_i32x4_shuffle(t2, t3, 0, 1, 4, 5);
        c[3] = wasm_i32x4_shuffle(t2, t3, 2, 3, 6, 7);
        for (int t = 0; t < T; t++) {
            const v128_t xv = load4(kind, x + (size_t)t * xs + (size_t)i * es);
            v128_t xe[4];
            xe[0] = wasm_i32x4_shuffle(xv, xv, 0, 0, 0, 0);
            xe[1] = wasm_i32x4_shuffle(xv, xv, 1, 1, 1, 1);
            xe[2] = wasm_i32x4_shuffle(xv, xv, 2, 2, 2, 2);
            xe[3] = wasm_i32x4_shuffle(xv, xv, 3, 3, 3, 3);
            for (int e = 0; e < 4; e++) {
                const v128_t p = wasm_f32x4_mul(c[e], xe[e]);
                lo[t] = wasm_f64x2_add(lo[t], wasm_f64x2_promote_low_f32x4(p));
                hi[t] = wasm_f64x2_add(hi[t], wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(p, p, 2, 3, 2, 3)));
            }
        }
    }
    for (int t = 0; t < T; t++) {
        double s[4] = {wasm_f64x2_extract_lane(lo[t], 0), wasm_f64x2_extract_lane(lo[t], 1),
                       wasm_f64x2_extract_lane(hi[t], 0), wasm_f64x2_extract_lane(hi[t], 1)};
        for (int r = 0; r < KQ_TR; r++) {
            for (int64_t j = i; j < k; j++)
                s[r] += (double)(load1(kind, w + (size_t)r * ws + (size_t)j * es) *
                                 load1(kind, x + (size_t)t * xs + (size_t)j * es));
            y[t * ldy + r] = (float)s[r];
        }
    }
    return 0;
}

/* nb is the element count here (blck = 1). */
#define FLOAT(NAME, KIND, DOT)                                                                       \
    KQ_INLINE int NAME(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int64_t nb, float *y,  \
                       int64_t ldy, int T) {                                                         \
        return float_tile(KIND, w, ws, x, xs, nb, y, ldy, T);                                        \
    }                                                                                                \
    KQ_TILES(NAME, DOT, 1)                                                                           \
    void kq_gemm_##DOT(KQ_GEMM_ARGS) { kq_drive(NAME##_tiles, kq_dot_##DOT, 1, w, ws, x, xs, k, nr, n, y, ldy); }

FLOAT(tile_f32, K_F32, f32)
FLOAT(tile_f16, K_F16, f16)
FLOAT(tile_bf16, K_BF16, bf16)

#else
typedef int kq_simd_float_unused; /* ISO C wants a declaration in every translation unit */
#endif
