/* blocks.h: private to kernels/ (and the kernel tests). ggml's block layouts, byte for byte, and
 * the per-type functions the table in quant_table.c points at. */
#ifndef LFM2_BLOCKS_H
#define LFM2_BLOCKS_H

#include <assert.h>
#include <math.h>
#include <stdint.h>

#include "quant.h"

/* Clang may fuse a*b+c into an FMA within one expression; the reference kernels must round every
 * step exactly as written (fused steps are spelled fmaf), so forbid it. (GCC in ISO C mode never
 * contracts.) */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* KQ_EXACT_FMA=1: the per-block multiply-adds are fused (fmaf), as llama.cpp's x86 code does;
 * 0: a rounded multiply then an add (at most an ulp apart per step; much cheaper in wasm, which
 * has no FMA instruction). */
#ifndef KQ_EXACT_FMA
#define KQ_EXACT_FMA 1
#endif
#if KQ_EXACT_FMA
#define KQ_FMA(a, b, c) fmaf((a), (b), (c))
#else
#define KQ_FMA(a, b, c) ((a) * (b) + (c))
#endif

#define QK32 32   /* elements per legacy block (Q4_0 .. Q8_1, IQ4_NL) */
#define QK_K 256  /* elements per K-quant super-block (Q4_K .. Q8_K, IQ4_XS) */

/* Halves are kept as raw bits: GGUF stores them little-endian, as do all our targets. */
typedef uint16_t kq_half;

typedef struct { kq_half d; uint8_t qs[QK32 / 2]; } block_q4_0;
typedef struct { kq_half d, m; uint8_t qs[QK32 / 2]; } block_q4_1;
typedef struct { kq_half d; uint8_t qh[4]; uint8_t qs[QK32 / 2]; } block_q5_0;
typedef struct { kq_half d, m; uint8_t qh[4]; uint8_t qs[QK32 / 2]; } block_q5_1;
typedef struct { kq_half d; int8_t qs[QK32]; } block_q8_0;
/* s = d * sum(qs), precomputed so Q4_1/Q5_1 dots get the min term from one multiply. */
typedef struct { kq_half d, s; int8_t qs[QK32]; } block_q8_1;

/* 8 sub-blocks of 32; scales[12] packs 8 six-bit scales and 8 six-bit mins. */
typedef struct { kq_half d, dmin; uint8_t scales[12]; uint8_t qs[QK_K / 2]; } block_q4_K;
typedef struct { kq_half d, dmin; uint8_t scales[12]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } block_q5_K;
/* 16 sub-blocks of 16 with signed 8-bit scales; 4 low bits in ql, 2 high bits in qh. */
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; kq_half d; } block_q6_K;
/* Activation super-block: float scale, and sums of each 16 quants for the K-quants' min terms. */
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K;

typedef struct { kq_half d; uint8_t qs[QK32 / 2]; } block_iq4_nl;
/* 8 sub-blocks of 32, each with a 6-bit scale: low 4 bits in scales_l, high 2 in scales_h. */
typedef struct { kq_half d; uint16_t scales_h; uint8_t scales_l[QK_K / 64]; uint8_t qs[QK_K / 2]; } block_iq4_xs;

static_assert(sizeof(block_q4_0) == 18, "q4_0 size");
static_assert(sizeof(block_q4_1) == 20, "q4_1 size");
static_assert(sizeof(block_q5_0) == 22, "q5_0 size");
static_assert(sizeof(block_q5_1) == 24, "q5_1 size");
static_assert(sizeof(block_q8_0) == 34, "q8_0 size");
static_assert(sizeof(block_q8_1) == 36, "q8_1 size");
static_assert(sizeof(block_q4_K) == 144, "q4_K size");
static_assert(sizeof(block_q5_K) == 176, "q5_K size");
static_assert(sizeof(block_q6_K) == 210, "q6_K size");
static_assert(sizeof(block_q8_K) == 292, "q8_K size");
static_assert(sizeof(block_iq4_nl) == 18, "iq4_nl size");
static_assert(sizeof(block_iq4_xs) == 136, "iq4_xs size");

/* ---- llama.cpp's x86 float order (AVX2 + FMA kernels; the AVX-512 / VNNI builds run the same
 * float steps for these dots, only the integer products are formed differently) ----
 * A 32-byte int8 x int8 product is split into 8 int32 lanes, lane k holding the sum of elements
 * 4k..4k+3 (maddubs + madd, or dpbusd); integer sums are exact, so only this grouping matters. Each
 * block then adds its scale times every lane into 8 float accumulators with one fused multiply-add
 * (_mm256_fmadd_ps), and at the end of the row the 8 lanes are reduced in hsum_float_8's fixed order. */

/* lane[k] += sum over e = 4k..4k+3 of a[e] * b[e], for 32 elements. */
static inline void kq_lanes32(const int8_t *a, const int8_t *b, int32_t lane[8]) {
    for (int k = 0; k < 8; k++)
        lane[k] += a[4 * k] * b[4 * k] + a[4 * k + 1] * b[4 * k + 1] + a[4 * k + 2] * b[4 * k + 2] +
                   a[4 * k + 3] * b[4 * k + 3];
}

/* acc[k] = fma(d, lane[k], acc[k]) for the 8 lanes. */
static inline void kq_fma8(float d, const int32_t lane[8], float acc[8]) {
    for (int k = 0; k < 8; k++)
        acc[k] = KQ_FMA(d, (float)lane[k], acc[k]);
}

/* hsum_float_8: high half onto low half, then pairs, then the last two. */
static inline float kq_hsum8(const float a[8]) {
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

/* The IQ4 codebook (non-linear 4-bit levels). */
extern const int8_t kq_iq4nl_values[16];

/* Unpack scale j (0..7) and min j of a Q4_K/Q5_K scales[12]: bytes 0-3 hold scales 0-3 and bytes
 * 4-7 mins 0-3 in their low 6 bits; entries 4-7 take their low 4 bits from bytes 8-11 and their top
 * 2 bits from the spare top bits of bytes 0-7. */
static inline void kq_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *mn) {
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *mn = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

#define KQ_DECLARE(t)                                                   \
    void kq_dequant_##t(const void *src, float *dst, int64_t n);        \
    void kq_quantize_##t(const float *src, void *dst, int64_t n);       \
    float kq_dot_##t(const void *w, const void *x, int64_t n);

KQ_DECLARE(f32)
KQ_DECLARE(f16)
KQ_DECLARE(bf16)
KQ_DECLARE(q4_0)
KQ_DECLARE(q4_1)
KQ_DECLARE(q5_0)
KQ_DECLARE(q5_1)
KQ_DECLARE(q8_0)
KQ_DECLARE(q4_K)
KQ_DECLARE(q5_K)
KQ_DECLARE(q6_K)
KQ_DECLARE(iq4_nl)
KQ_DECLARE(iq4_xs)
#undef KQ_DECLARE

/* The Q4_0 / Q8_0 dot of a row whose block i has its scale at d + i * bs and its quants at qs + i * bs
 * (plain rows: bs = the block size; rows packed by kq_pack: see kernels/simd_q8.c). */
float kq_dot_q4_0_strided(const uint8_t *d, const uint8_t *qs, size_t bs, const void *x, int64_t n);
float kq_dot_q8_0_strided(const uint8_t *d, const uint8_t *qs, size_t bs, const void *x, int64_t n);

/* Activation-only types: no dot of their own. */
void kq_dequant_q8_1(const void *src, float *dst, int64_t n);
void kq_quantize_q8_1(const float *src, void *dst, int64_t n);
void kq_dequant_q8_K(const void *src, float *dst, int64_t n);
void kq_quantize_q8_K(const float *src, void *dst, int64_t n);

#endif
