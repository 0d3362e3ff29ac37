/* quant_k.c: the 256-element K-quants Q4_K, Q5_K, Q6_K and their activation type Q8_K.
 * The dots reproduce llama.cpp's x86 AVX2 kernels' float rounding (see blocks.h): per super-block,
 * integer sums go into 8 lanes (element p into lane (p % 32) / 4, times its sub-block scale), one FMA
 * of d into 8 float accumulators kept across the row, hsum_float_8 at the end. The min terms of
 * Q4_K go into 4 float lanes (one FMA per block), those of Q5_K into one scalar (one FMA per block),
 * and are added after the 8 lanes are reduced. */
#include <math.h>
#include <string.h>

#include "blocks.h"

#define H2F kq_f16_to_f32
#define F2H kq_f32_to_f16

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Weight-quantizer helpers (tests only): round to nearest, halves away from zero. */
static int rnd(float v) { return (int)lroundf(v); }

/* ---- shared by Q4_K and Q5_K ---- */

static void unpack_scales_k4(const uint8_t packed[12], uint8_t sc[8], uint8_t mn[8]) {
    for (int j = 0; j < 8; j++)
        kq_scale_min_k4(j, packed, &sc[j], &mn[j]);
}

static void pack_scales_k4(uint8_t packed[12], const uint8_t sc[8], const uint8_t mn[8]) {
    for (int j = 0; j < 4; j++) {
        packed[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        packed[j + 4] = (uint8_t)(mn[j] | (mn[j + 4] >> 4) << 6);
        packed[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | (mn[j + 4] & 0xF) << 4);
    }
}

/* Unsigned q in 0..levels for a super-block with 8 sub-blocks of 32, each value d*sc*q - dmin*m
 * (test quantizer: plain min/max per sub-block, 6-bit scales and mins rounded to nearest). */
static void quantize_k4_super(const float *x, int levels, uint8_t q[QK_K], kq_half *dh,
                              kq_half *dminh, uint8_t packed[12]) {
    float scale[8], minv[8], max_scale = 0.0f, max_min = 0.0f;
    for (int s = 0; s < 8; s++) {
        float lo = 0.0f, hi = 0.0f; /* the min is kept <= 0 because mins are stored unsigned */
        for (int j = 0; j < 32; j++) {
            lo = fminf(lo, x[32 * s + j]);
            hi = fmaxf(hi, x[32 * s + j]);
        }
        scale[s] = (hi - lo) / (float)levels;
        minv[s] = -lo;
        max_scale = fmaxf(max_scale, scale[s]);
        max_min = fmaxf(max_min, minv[s]);
    }
    *dh = F2H(max_scale / 63.0f);
    *dminh = F2H(max_min / 63.0f);
    const float d = H2F(*dh), dmin = H2F(*dminh);
    uint8_t sc[8], mn[8];
    for (int s = 0; s < 8; s++) {
        sc[s] = (uint8_t)(d > 0.0f ? clampi(rnd(scale[s] / d), 0, 63) : 0);
        mn[s] = (uint8_t)(dmin > 0.0f ? clampi(rnd(minv[s] / dmin), 0, 63) : 0);
        const float d1 = d * sc[s], m1 = dmin * mn[s];
        for (int j = 0; j < 32; j++) {
            const int v = d1 > 0.0f ? rnd((x[32 * s + j] + m1) / d1) : 0;
            q[32 * s + j] = (uint8_t)clampi(v, 0, levels);
        }
    }
    pack_scales_k4(packed, sc, mn);
}

/* ---- Q4_K: 4 groups of 64; in group g, qs[32g + l] holds element l (low nibble) and 32 + l
 * (high nibble); sub-block s has scale d*sc[s] and offset dmin*m[s] ---- */

void kq_dequant_q4_K(const void *src, float *dst, int64_t n) {
    const block_q4_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = H2F(b[i].d), dmin = H2F(b[i].dmin);
        uint8_t sc[8], mn[8];
        unpack_scales_k4(b[i].scales, sc, mn);
        const uint8_t *q = b[i].qs;
        for (int g = 0; g < 4; g++, q += 32) {
            const float d1 = d * sc[2 * g], m1 = dmin * mn[2 * g];
            const float d2 = d * sc[2 * g + 1], m2 = dmin * mn[2 * g + 1];
            for (int l = 0; l < 32; l++) *dst++ = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *dst++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

void kq_quantize_q4_K(const float *src, void *dst, int64_t n) {
    block_q4_K *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        uint8_t q[QK_K];
        quantize_k4_super(src, 15, q, &b[i].d, &b[i].dmin, b[i].scales);
        for (int g = 0; g < 4; g++)
            for (int l = 0; l < 32; l++)
                b[i].qs[32 * g + l] = (uint8_t)(q[64 * g + l] | q[64 * g + 32 + l] << 4);
    }
}

/* Weight quants of a Q4_K/Q5_K super-block as plain 0..31 values in element order. */
static void unpack_q45_K(const uint8_t *qs, const uint8_t *qh, int8_t out[QK_K]) {
    for (int g = 0; g < 4; g++) {
        for (int l = 0; l < 32; l++) {
            int lo = qs[32 * g + l] & 0xF, hi = qs[32 * g + l] >> 4;
            if (qh) { /* Q5_K: sub-block s takes its 5th bit from bit s of qh[l] */
                lo |= ((qh[l] >> (2 * g)) & 1) << 4;
                hi |= ((qh[l] >> (2 * g + 1)) & 1) << 4;
            }
            out[64 * g + l] = (int8_t)lo;
            out[64 * g + 32 + l] = (int8_t)hi;
        }
    }
}

/* The lane-wise integer sums shared by Q4_K/Q5_K/Q6_K: element p has integer scale scale[p / sub]
 * and goes to lane (p % 32) / 4, as the AVX2 kernels' maddubs + madd produce them. */
static void lanes_k(const int8_t *a, const int8_t *q8, const int *scale, int sub, int32_t lane[8]) {
    for (int k = 0; k < 8; k++) lane[k] = 0;
    for (int p = 0; p < QK_K; p++)
        lane[(p % 32) / 4] += scale[p / sub] * (q8[p] * a[p]);
}

/* One Q4_K/Q5_K super-block into the row's 8 lane accumulators; returns the block's integer min
 * term partial sums: prod[t] = mn[2t] * (bsums of sub-block 2t) + mn[2t+1] * (sub-block 2t+1),
 * the 4 int32 lanes of the kernels' madd over the mins. */
static void dot_q45_K_block(kq_half dh, const uint8_t scales[12], const uint8_t *qs,
                            const uint8_t *qh, const block_q8_K *y, float acc[8], int32_t prod[4]) {
    int8_t a[QK_K];
    unpack_q45_K(qs, qh, a);
    uint8_t sc[8], mn[8];
    unpack_scales_k4(scales, sc, mn);
    int scale[8];
    for (int s = 0; s < 8; s++) scale[s] = sc[s];
    int32_t lane[8];
    lanes_k(a, y->qs, scale, 32, lane);
    kq_fma8(y->d * H2F(dh), lane, acc);
    for (int t = 0; t < 4; t++) {
        const int s0 = y->bsums[4 * t] + y->bsums[4 * t + 1];
        const int s1 = y->bsums[4 * t + 2] + y->bsums[4 * t + 3];
        prod[t] = mn[2 * t] * s0 + mn[2 * t + 1] * s1;
    }
}

float kq_dot_q4_K(const void *w, const void *x, int64_t n) {
    const block_q4_K *b = w;
    const block_q8_K *y = x;
    float acc[8] = {0}, acc_m[4] = {0};
    for (int64_t i = 0; i < n / QK_K; i++) {
        int32_t prod[4];
        dot_q45_K_block(b[i].d, b[i].scales, b[i].qs, NULL, &y[i], acc, prod);
        const float dmin = -y[i].d * H2F(b[i].dmin);
        for (int t = 0; t < 4; t++) acc_m[t] = KQ_FMA(dmin, (float)prod[t], acc_m[t]);
    }
    return kq_hsum8(acc) + ((acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3]));
}

/* ---- Q5_K: Q4_K plus a 5th bit: element l of sub-block s has it in bit s of qh[l] ---- */

void kq_dequant_q5_K(const void *src, float *dst, int64_t n) {
    const block_q5_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = H2F(b[i].d), dmin = H2F(b[i].dmin);
        uint8_t sc[8], mn[8];
        unpack_scales_k4(b[i].scales, sc, mn);
        int8_t q[QK_K];
        unpack_q45_K(b[i].qs, b[i].qh, q);
        for (int s = 0; s < 8; s++) {
            const float d1 = d * sc[s], m1 = dmin * mn[s];
            for (int l = 0; l < 32; l++) *dst++ = d1 * (float)q[32 * s + l] - m1;
        }
    }
}

void kq_quantize_q5_K(const float *src, void *dst, int64_t n) {
    block_q5_K *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        uint8_t q[QK_K];
        quantize_k4_super(src, 31, q, &b[i].d, &b[i].dmin, b[i].scales);
        memset(b[i].qh, 0, sizeof b[i].qh);
        for (int g = 0; g < 4; g++) {
            for (int l = 0; l < 32; l++) {
                const int lo = q[64 * g + l], hi = q[64 * g + 32 + l];
                b[i].qs[32 * g + l] = (uint8_t)((lo & 0xF) | (hi & 0xF) << 4);
                b[i].qh[l] |= (uint8_t)((lo >> 4) << (2 * g) | (hi >> 4) << (2 * g + 1));
            }
        }
    }
}

float kq_dot_q5_K(const void *w, const void *x, int64_t n) {
    const block_q5_K *b = w;
    const block_q8_K *y = x;
    float acc[8] = {0}, summs = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int32_t prod[4];
        dot_q45_K_block(b[i].d, b[i].scales, b[i].qs, b[i].qh, &y[i], acc, prod);
        const float dmin = -y[i].d * H2F(b[i].dmin);
        /* the kernel sums the min term in integers, then gcc contracts summs += dmin * sum */
        summs = KQ_FMA(dmin, (float)(prod[0] + prod[1] + prod[2] + prod[3]), summs);
    }
    return kq_hsum8(acc) + summs;
}

/* ---- Q6_K: two halves of 128; in half h, element 32k + l (k = 0..3, l = 0..31) has its low 4 bits
 * in ql[64h + l + 32(k & 1)] (low nibble for k < 2, high for k >= 2) and its top 2 bits at bits
 * 2k..2k+1 of qh[32h + l]; q - 32 is scaled by d * scales[element / 16] ---- */

static void unpack_q6_K(const block_q6_K *b, int8_t out[QK_K]) {
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        for (int k = 0; k < 4; k++) {
            for (int l = 0; l < 32; l++) {
                const uint8_t byte = ql[l + 32 * (k & 1)];
                const int lo = k < 2 ? byte & 0xF : byte >> 4;
                const int hi = (qh[l] >> (2 * k)) & 3;
                out[128 * h + 32 * k + l] = (int8_t)((lo | hi << 4) - 32);
            }
        }
    }
}

void kq_dequant_q6_K(const void *src, float *dst, int64_t n) {
    const block_q6_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++, dst += QK_K) {
        const float d = H2F(b[i].d);
        int8_t q[QK_K];
        unpack_q6_K(&b[i], q);
        for (int p = 0; p < QK_K; p++)
            dst[p] = d * (float)b[i].scales[p / 16] * (float)q[p];
    }
}

void kq_quantize_q6_K(const float *src, void *dst, int64_t n) {
    block_q6_K *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        float scale[16], max_abs = 0.0f;
        for (int s = 0; s < 16; s++) {
            float amax = 0.0f, max = 0.0f; /* the largest magnitude maps to level -32 */
            for (int j = 0; j < 16; j++) {
                if (fabsf(src[16 * s + j]) > amax) {
                    amax = fabsf(src[16 * s + j]);
                    max = src[16 * s + j];
                }
            }
            scale[s] = max / -32.0f;
            max_abs = fmaxf(max_abs, fabsf(scale[s]));
        }
        b[i].d = F2H(max_abs / 127.0f);
        const float d = H2F(b[i].d);
        uint8_t q[QK_K];
        for (int s = 0; s < 16; s++) {
            const int sc = d > 0.0f ? clampi(rnd(scale[s] / d), -127, 127) : 0;
            b[i].scales[s] = (int8_t)sc;
            const float ds = d * (float)sc;
            for (int j = 0; j < 16; j++) {
                const int v = ds != 0.0f ? rnd(src[16 * s + j] / ds) : 0;
                q[16 * s + j] = (uint8_t)(clampi(v, -32, 31) + 32);
            }
        }
        memset(b[i].ql, 0, sizeof b[i].ql);
        memset(b[i].qh, 0, sizeof b[i].qh);
        for (int h = 0; h < 2; h++) {
            for (int k = 0; k < 4; k++) {
                for (int l = 0; l < 32; l++) {
                    const int v = q[128 * h + 32 * k + l];
                    b[i].ql[64 * h + l + 32 * (k & 1)] |= (uint8_t)((v & 0xF) << (k < 2 ? 0 : 4));
                    b[i].qh[32 * h + l] |= (uint8_t)((v >> 4) << (2 * k));
                }
            }
        }
    }
}

float kq_dot_q6_K(const void *w, const void *x, int64_t n) {
    const block_q6_K *b = w;
    const block_q8_K *y = x;
    float acc[8] = {0};
    for (int64_t i = 0; i < n / QK_K; i++) {
        int8_t a[QK_K];
        unpack_q6_K(&b[i], a);
        int scale[16];
        for (int s = 0; s < 16; s++) scale[s] = b[i].scales[s];
        int32_t lane[8];
        lanes_k(a, y[i].qs, scale, 16, lane);
        kq_fma8(y[i].d * H2F(b[i].d), lane, acc);
    }
    return kq_hsum8(acc);
}

/* ---- Q8_K: float d, value d * q ---- */

void kq_dequant_q8_K(const void *src, float *dst, int64_t n) {
    const block_q8_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++, dst += QK_K)
        for (int p = 0; p < QK_K; p++)
            dst[p] = b[i].d * (float)b[i].qs[p];
}

/* ggml's reference: the element of largest magnitude (first on ties, sign kept) maps to -127 via
 * iscale = -127/max; quants round to nearest with ties to even (ggml's nearest_int; rintf in the
 * default rounding mode is the same), capped at 127; d = 1/iscale kept as a float. */
void kq_quantize_q8_K(const float *src, void *dst, int64_t n) {
    block_q8_K *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        float amax = 0.0f, max = 0.0f;
        for (int p = 0; p < QK_K; p++) {
            if (fabsf(src[p]) > amax) {
                amax = fabsf(src[p]);
                max = src[p];
            }
        }
        if (amax == 0.0f) {
            b[i].d = 0.0f;
            memset(b[i].qs, 0, sizeof b[i].qs);
            memset(b[i].bsums, 0, sizeof b[i].bsums);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int p = 0; p < QK_K; p++) {
            /* NaN/Inf inputs make iscale * src NaN: 0 (as the SIMD path), not an undefined cast;
             * an Inf (iscale overflows when max is tiny) is clamped first */
            const float f = iscale * src[p];
            const int v = f == f ? (int)rintf(fmaxf(-128.0f, fminf(127.0f, f))) : 0;
            b[i].qs[p] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += b[i].qs[16 * j + l];
            b[i].bsums[j] = (int16_t)s;
        }
        b[i].d = 1.0f / iscale;
    }
}
