/* simd_quant.c: wasm SIMD128 activation quantizers Q8_0, Q8_1, Q8_K, byte for byte the scalar ones
 * (quant_legacy.c q8_block, quant_k.c kq_quantize_q8_K): same amax, same scale expressions, rounding
 * with f32x4.nearest (ties to even, as rintf). */
#include "simd_common.h"

#ifdef __wasm_simd128__

/* Round 16 floats (4 vectors) already scaled, to int8 (values within +-127.5, so no saturation
 * happens that the scalar (int8_t) cast would not also produce). */
KQ_INLINE v128_t round16(v128_t a, v128_t b, v128_t c, v128_t d) {
    const v128_t ia = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(a));
    const v128_t ib = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(b));
    const v128_t ic = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(c));
    const v128_t id = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(d));
    return wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(ia, ib), wasm_i16x8_narrow_i32x4(ic, id));
}

/* round16 for finite values within +-127.5: adding 1.5 * 2^23 rounds to an integer with ties to even
 * (as rintf) and leaves it in the low bits, so no f32x4.nearest and no saturating conversion (V8: 7
 * instructions per vector) is needed. */
KQ_INLINE v128_t int_of(v128_t a) {
    return wasm_i32x4_sub(wasm_f32x4_add(a, wasm_f32x4_splat(0x1.8p23f)), wasm_i32x4_splat(0x4B400000));
}

KQ_INLINE v128_t round16_finite(v128_t a, v128_t b, v128_t c, v128_t d) {
    return wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(int_of(a), int_of(b)), wasm_i16x8_narrow_i32x4(int_of(c), int_of(d)));
}

KQ_INLINE float hmax4(v128_t m) {
    m = wasm_f32x4_max(m, wasm_i32x4_shuffle(m, m, 2, 3, 0, 1));
    m = wasm_f32x4_max(m, wasm_i32x4_shuffle(m, m, 1, 0, 3, 2));
    return wasm_f32x4_extract_lane(m, 0);
}

/* Sum of 16 int8 (exact). */
KQ_INLINE int32_t sum16(v128_t q) {
    return kq_hsum_i32(wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_extadd_pairwise_i8x16(q)));
}

/* One Q8_0/Q8_1 block: returns d, writes qs, and the sum of the quants. */
KQ_INLINE float q8_block(const float *x, int8_t *qs, int *qsum) {
    v128_t v[8], m = wasm_f32x4_splat(0.0f);
    for (int j = 0; j < 8; j++) {
        v[j] = wasm_v128_load(x + 4 * j);
        m = wasm_f32x4_max(m, wasm_f32x4_abs(v[j]));
    }
    const float amax = hmax4(m);
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    const v128_t vid = wasm_f32x4_splat(id);
    for (int j = 0; j < 8; j++) v[j] = wasm_f32x4_mul(v[j], vid);
    v128_t q0, q1;
    if (amax <= 0x1p127f && id <= 0x1p127f) { /* finite: every |v| <= 127.5 */
        q0 = round16_finite(v[0], v[1], v[2], v[3]);
        q1 = round16_finite(v[4], v[5], v[6], v[7]);
    } else {
        q0 = round16(v[0], v[1], v[2], v[3]);
        q1 = round16(v[4], v[5], v[6], v[7]);
    }
    wasm_v128_store(qs, q0);
    wasm_v128_store(qs + 16, q1);
    *qsum = sum16(q0) + sum16(q1);
    return d;
}

void kq_quantize_q8_0_simd(const float *src, void *dst, int64_t n) {
    block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / QK32; i++, src += QK32) {
        int s;
        b[i].d = kq_f32_to_f16(q8_block(src, b[i].qs, &s));
    }
}

void kq_quantize_q8_1_simd(const float *src, void *dst, int64_t n) {
    block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / QK32; i++, src += QK32) {
        int s;
        const float d = q8_block(src, b[i].qs, &s);
        b[i].d = kq_f32_to_f16(d);
        b[i].s = kq_f32_to_f16((float)s * d);
    }
}

void kq_quantize_q8_K_simd(const float *src, void *dst, int64_t n) {
    block_q8_K *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        v128_t m = wasm_f32x4_splat(0.0f);
        for (int j = 0; j < QK_K; j += 4) m = wasm_f32x4_max(m, wasm_f32x4_abs(wasm_v128_load(src + j)));
        const float amax = hmax4(m);
        if (amax == 0.0f) {
            b[i].d = 0.0f;
            memset(b[i].qs, 0, sizeof b[i].qs);
            memset(b[i].bsums, 0, sizeof b[i].bsums);
            continue;
        }
        /* the first element of largest magnitude gives the sign */
        float max = amax;
        const v128_t va = wasm_f32x4_splat(amax);
        for (int j = 0; j < QK_K; j += 4) {
            if (wasm_v128_any_true(wasm_f32x4_eq(wasm_f32x4_abs(wasm_v128_load(src + j)), va))) {
                int p = j;
                while (fabsf(src[p]) != amax) p++;
                max = src[p];
                break;
            }
        }
        const float iscale = -127.0f / max;
        const v128_t vs = wasm_f32x4_splat(iscale);
        for (int j = 0; j < QK_K; j += 16) {
            const float *s = src + j;
            /* min(v, 127) of the scalar code: the narrowing saturates the same way */
            const v128_t q = round16(wasm_f32x4_mul(vs, wasm_v128_load(s)), wasm_f32x4_mul(vs, wasm_v128_load(s + 4)),
                                     wasm_f32x4_mul(vs, wasm_v128_load(s + 8)), wasm_f32x4_mul(vs, wasm_v128_load(s + 12)));
            wasm_v128_store(b[i].qs + j, q);
            b[i].bsums[j / 16] = (int16_t)sum16(q);
        }
        b[i].d = 1.0f / iscale;
    }
}

#else
typedef int kq_simd_quant_unused; /* ISO C wants a declaration in every translation unit */
#endif
