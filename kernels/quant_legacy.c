/* quant_legacy.c: the 32-element block types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the activation type
 * Q8_1. The activation quantizers round exactly as llama.cpp's do. The dots use ggml's portable float
 * order (its generic C and ARM kernels): per block one exact integer sum, then one multiply-add
 * sum = fma(d_w * d_x, sumi, sum); Q4_1/Q5_1 add their min terms into a second scalar the same way.
 * (llama.cpp's x86 kernels spread each block over 8 float lanes instead; the two orders differ by
 * float rounding only, ~1e-7 relative. One scalar per row lets the SIMD kernels put four rows or
 * tokens side by side in one vector, which is what makes them fast.) */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "blocks.h"

#define H2F kq_f16_to_f32
#define F2H kq_f32_to_f16

/* Q5 high bits: bit j of the little-endian word belongs to element j (built byte by byte so the
 * host's endianness does not matter). */
static uint32_t load_qh(const uint8_t qh[4]) {
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

static void store_qh(uint8_t qh[4], uint32_t v) {
    for (int i = 0; i < 4; i++)
        qh[i] = (uint8_t)(v >> (8 * i));
}

/* The element of largest magnitude, sign kept (the first one on ties): symmetric types map it to
 * their most negative level so that level is used exactly. */
static float signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void min_max(const float *x, int n, float *mn, float *mx) {
    *mn = FLT_MAX;
    *mx = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < *mn) *mn = x[j];
        if (x[j] > *mx) *mx = x[j];
    }
}

static int imin(int a, int b) { return a < b ? a : b; }

/* Signed weights of a 4-bit block in element order (element j in the low nibble of byte j, j + 16
 * in the high nibble), offset by -off. */
static void unpack_q4(const uint8_t qs[16], int off, int8_t q[32]) {
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)((qs[j] & 0xF) - off);
        q[j + 16] = (int8_t)((qs[j] >> 4) - off);
    }
}

/* The same for 5-bit blocks: bit j of qh is element j's fifth bit. */
static void unpack_q5(const uint8_t qs[16], const uint8_t qh4[4], int off, int8_t q[32]) {
    const uint32_t qh = load_qh(qh4);
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)(((qs[j] & 0xF) | (int)((qh >> j) & 1u) << 4) - off);
        q[j + 16] = (int8_t)(((qs[j] >> 4) | (int)((qh >> (j + 16)) & 1u) << 4) - off);
    }
}

/* One block's exact integer dot. */
static int32_t block_dot(const int8_t q[32], const int8_t *y) {
    int32_t s = 0;
    for (int j = 0; j < QK32; j++) s += q[j] * y[j];
    return s;
}

/* ---- Q4_0: q in 0..15, value d * (q - 8); element j in the low nibble of byte j, j+16 high ---- */

void kq_dequant_q4_0(const void *src, float *dst, int64_t n) {
    const block_q4_0 *b = src;
    for (int64_t i = 0; i < n / QK32; i++, dst += QK32) {
        const float d = H2F(b[i].d);
        for (int j = 0; j < QK32 / 2; j++) {
            dst[j] = (float)((b[i].qs[j] & 0xF) - 8) * d;
            dst[j + QK32 / 2] = (float)((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void kq_quantize_q4_0(const float *src, void *dst, int64_t n) {
    block_q4_0 *b = dst;
    for (int64_t i = 0; i < n / QK32; i++, src += QK32) {
        const float d = signed_absmax(src, QK32) / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = F2H(d);
        for (int j = 0; j < QK32 / 2; j++) {
            const int q0 = imin(15, (int)(src[j] * id + 8.5f));
            const int q1 = imin(15, (int)(src[j + QK32 / 2] * id + 8.5f));
            b[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

float kq_dot_q4_0_strided(const uint8_t *d, const uint8_t *qs, size_t bs, const void *x, int64_t n) {
    const block_q8_0 *y = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK32; i++) {
        int8_t q[QK32];
        uint16_t h;
        memcpy(&h, d + (size_t)i * bs, sizeof h);
        unpack_q4(qs + (size_t)i * bs, 8, q);
        sum = KQ_FMA(H2F(h) * H2F(y[i].d), (float)block_dot(q, y[i].qs), sum);
    }
    return sum;
}

float kq_dot_q4_0(const void *w, const void *x, int64_t n) {
    return kq_dot_q4_0_strided(w, (const uint8_t *)w + offsetof(block_q4_0, qs), sizeof(block_q4_0), x, n);
}

/* ---- Q4_1: q in 0..15, value d * q + m ---- */

void kq_dequant_q4_1(const void *src, float *dst, int64_t n) {
    const block_q4_1 *b = src;
    for (int64_t i = 0; i < n / QK32; i++, dst += QK32) {
        const float d = H2F(b[i].d), m = H2F(b[i].m);
        for (int j = 0; j < QK32 / 2; j++) {
            dst[j] = (float)(b[i].qs[j] & 0xF) * d + m;
            dst[j + QK32 / 2] = (float)(b[i].qs[j] >> 4) * d + m;
        }
    }
}

void kq_quantize_q4_1(const float *src, void *dst, int64_t n) {
    block_q4_1 *b = dst;
    for (int64_t i = 0; i < n / QK32; i++, src += QK32) {
        float mn, mx;
        min_max(src, QK32, &mn, &mx);
        const float d = (mx - mn) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = F2H(d);
        b[i].m = F2H(mn);
        for (int j = 0; j < QK32 / 2; j++) {
            const int q0 = imin(15, (int)((src[j] - mn) * id + 0.5f));
            const int q1 = imin(15, (int)((src[j + QK32 / 2] - mn) * id + 0.5f));
            b[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

float kq_dot_q4_1(const void *w, const void *x, int64_t n) {
    const block_q4_1 *a = w;
    const block_q8_1 *y = x;
    float sum = 0.0f, summs = 0.0f;
    for (int64_t i = 0; i < n / QK32; i++) {
        /* the min term uses the activation block's stored sum s */
        summs = KQ_FMA(H2F(a[i].m), H2F(y[i].s), summs);
        int8_t q[QK32];
        unpack_q4(a[i].qs, 0, q);
        sum = KQ_FMA(H2F(a[i].d) * H2F(y[i].d), (float)block_dot(q, y[i].qs), sum);
    }
    return sum + summs;
}

/* ---- Q5_0: 5-bit q = low nibble | high bit << 4, value d * (q - 16) ---- */

void kq_dequant_q5_0(const void *src, float *dst, int64_t n) {
    const block_q5_0 *b = src;
    for (int64_t i = 0; i < n / QK32; i++, dst += QK32) {
        const float d = H2F(b[i].d);
        const uint32_t qh = load_qh(b[i].qh);
        for (int j = 0; j < QK32 / 2; j++) {
            const int q0 = (b[i].qs[j] & 0xF) | (int)((qh >> j) & 1u) << 4;
            const int q1 = (b[i].qs[j] >> 4) | (int)((qh >> (j + 16)) & 1u) << 4;
            dst[j] = (float)(q0 - 16) * d;
            dst[j + QK32 / 2] = (float)(q1 - 16) * d;
        }
    }
}

void kq_quantize_q5_0(const float *src, void *dst, int64_t n) {
    block_q5_0 *b = dst;
    for (int64_t i = 0; i < n / QK32; i++, src += QK32) {
        const float d = signed_absmax(src, QK32) / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = F2H(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK32 / 2; j++) {
            const int q0 = imin(31, (int)(src[j] * id + 16.5f));
            const int q1 = imin(31, (int)(src[j + QK32 / 2] * id + 16.5f));
            b[i].qs[j] = (uint8_t)((q0 & 0xF) | (q1 & 0xF) << 4);
            qh |= (uint32_t)(q0 >> 4) << j;
            qh |= (uint32_t)(q1 >> 4) << (j + 16);
        }
        store_qh(b[i].qh, qh);
    }
}

float kq_dot_q5_0(const void *w, const void *x, int64_t n) {
    const block_q5_0 *a = w;
    const block_q8_0 *y = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK32; i++) {
        int8_t q[QK32];
        unpack_q5(a[i].qs, a[i].qh, 16, q);
        sum = KQ_FMA(H2F(a[i].d) * H2F(y[i].d), (float)block_dot(q, y[i].qs), sum);
    }
    return sum;
}

/* ---- Q5_1: 5-bit q, value d * q + m ---- */

void kq_dequant_q5_1(const void *src, float *dst, int64_t n) {
    const block_q5_1 *b = src;
    for (int64_t i = 0; i < n / QK32; i++, dst += QK32) {
        const float d = H2F(b[i].d), m = H2F(b[i].m);
        const uint32_t qh = load_qh(b[i].qh);
        for (int j = 0; j < QK32 / 2; j++) {
            const int q0 = (b[i].qs[j] & 0xF) | (int)((qh >> j) & 1u) << 4;
            const int q1 = (b[i].qs[j] >> 4) | (int)((qh >> (j + 16)) & 1u) << 4;
            dst[j] = (float)q0 * d + m;
            dst[j + QK32 / 2] = (float)q1 * d + m;
        }
    }
}

void kq_quantize_q5_1(const float *src, void *dst, int64_t n) {
    block_q5_1 *b = dst;
    for (int64_t i = 0; i < n / QK32; i++, src += QK32) {
        float mn, mx;
        min_max(src, QK32, &mn, &mx);
        const float d = (mx - mn) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = F2H(d);
        b[i].m = F2H(mn);
        uint32_t qh = 0;
        for (int j = 0; j < QK32 / 2; j++) {
            const int q0 = imin(31, (int)((src[j] - mn) * id + 0.5f));
            const int q1 = imin(31, (int)((src[j + QK32 / 2] - mn) * id + 0.5f));
            b[i].qs[j] = (uint8_t)((q0 & 0xF) | (q1 & 0xF) << 4);
            qh |= (uint32_t)(q0 >> 4) << j;
            qh |= (uint32_t)(q1 >> 4) << (j + 16);
        }
        store_qh(b[i].qh, qh);
    }
}

float kq_dot_q5_1(const void *w, const void *x, int64_t n) {
    const block_q5_1 *a = w;
    const block_q8_1 *y = x;
    float sum = 0.0f, summs = 0.0f;
    for (int64_t i = 0; i < n / QK32; i++) {
        summs = KQ_FMA(H2F(a[i].m), H2F(y[i].s), summs);
        int8_t q[QK32];
        unpack_q5(a[i].qs, a[i].qh, 0, q);
        sum = KQ_FMA(H2F(a[i].d) * H2F(y[i].d), (float)block_dot(q, y[i].qs), sum);
    }
    return sum + summs;
}

/* ---- Q8_0 (weights and activations) and Q8_1 (activations): value d * q ---- */

void kq_dequant_q8_0(const void *src, float *dst, int64_t n) {
    const block_q8_0 *b = src;
    for (int64_t i = 0; i < n / QK32; i++, dst += QK32) {
        const float d = H2F(b[i].d);
        for (int j = 0; j < QK32; j++)
            dst[j] = (float)b[i].qs[j] * d;
    }
}

/* llama.cpp's x86 (AVX/AVX2) quantize_row_q8_0/q8_1: d = amax/127 (stored as a half), the quants
 * are x * (127/amax) rounded to nearest with ties to even (_mm256_round_ps; rintf in the default
 * rounding mode is the same). */
static float q8_block(const float *x, int8_t *qs, int *qsum) {
    float amax = 0.0f;
    for (int j = 0; j < QK32; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int s = 0;
    for (int j = 0; j < QK32; j++) {
        /* |x * id| <= 127 for finite activations and a finite id; a NaN (from NaN or Inf weights)
         * becomes 0, as the SIMD path's trunc_sat gives, and an Inf (id overflows when amax is
         * tiny) is clamped, so the float -> int8 conversion is never undefined */
        const float v = x[j] * id;
        qs[j] = v == v ? (int8_t)rintf(fmaxf(-127.0f, fminf(127.0f, v))) : 0;
        s += qs[j];
    }
    *qsum = s;
    return d;
}

void kq_quantize_q8_0(const float *src, void *dst, int64_t n) {
    block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / QK32; i++, src += QK32) {
        int s;
        b[i].d = F2H(q8_block(src, b[i].qs, &s));
    }
}

float kq_dot_q8_0_strided(const uint8_t *d, const uint8_t *qs, size_t bs, const void *x, int64_t n) {
    const block_q8_0 *y = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK32; i++) {
        uint16_t h;
        memcpy(&h, d + (size_t)i * bs, sizeof h);
        sum = KQ_FMA(H2F(h) * H2F(y[i].d), (float)block_dot((const int8_t *)qs + (size_t)i * bs, y[i].qs), sum);
    }
    return sum;
}

float kq_dot_q8_0(const void *w, const void *x, int64_t n) {
    return kq_dot_q8_0_strided(w, (const uint8_t *)w + offsetof(block_q8_0, qs), sizeof(block_q8_0), x, n);
}

void kq_dequant_q8_1(const void *src, float *dst, int64_t n) {
    const block_q8_1 *b = src;
    for (int64_t i = 0; i < n / QK32; i++, dst += QK32) {
        const float d = H2F(b[i].d);
        for (int j = 0; j < QK32; j++)
            dst[j] = (float)b[i].qs[j] * d;
    }
}

void kq_quantize_q8_1(const float *src, void *dst, int64_t n) {
    block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / QK32; i++, src += QK32) {
        int s;
        const float d = q8_block(src, b[i].qs, &s);
        b[i].d = F2H(d);
        b[i].s = F2H((float)s * d);
    }
}
