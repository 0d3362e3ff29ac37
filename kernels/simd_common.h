/* simd_common.h: private to kernels/simd_*.c (and the kernel tests). wasm SIMD128 helpers shared by
 * the multi-row kernels: f16 -> f32 of 4 halves at once, the int8 "even/odd" widening that lets
 * one i32x4.dot_i16x8 + add give llama.cpp's 4-element lanes directly, and the per-block
 * `acc = fma(d, lane, acc)` step on 8 float lanes.
 *
 * Exact FMA (KQ_EXACT_FMA=1, the default): wasm SIMD128 has no FMA, so the step is done in f64x2:
 * d * lane is exact in double (24-bit d times an integer lane below 2^24), the add rounds once to
 * double, and the demotion to f32 rounds again. That double rounding differs from one fused rounding
 * only when the double sum was inexact AND lands exactly halfway between two floats (low 29 bits of
 * its significand == 1 << 28). The step tests for that bit pattern (cheap, vectorised) and, in that
 * rare case, uses TwoSum to get the sum's rounding error and nudges the double one ulp toward the
 * exact value before demoting, so results are bit-identical to the scalar reference's fmaf.
 * (KQ_EXACT_FMA=2: no midpoint test, for measuring only; NOT exact.)
 * KQ_EXACT_FMA=0 uses f32 multiply + add (within ~1e-6 relative; cheaper). */
#ifndef LFM2_SIMD_COMMON_H
#define LFM2_SIMD_COMMON_H

#include <string.h>

#include "blocks.h"

/* KQ_EXACT_FMA comes from blocks.h. */

/* The SIMD kernels the table points at (defined only in SIMD builds). A "gemm" computes
 * y[t * ldy + r] = dot(row r, activation row t) for r in [0, nr), t in [0, n), with w / x the first
 * weight / activation row and ws / xs their strides in bytes; results equal the type's scalar dot. */
#define KQ_GEMM_ARGS                                                                        \
    const void *w, size_t ws, const void *x, size_t xs, int64_t k, int64_t nr, int64_t n, \
        float *y, int64_t ldy

#ifdef __wasm_simd128__
#include <wasm_simd128.h>

void kq_gemm_q4_0(KQ_GEMM_ARGS);
void kq_gemm_q4_0_packed(KQ_GEMM_ARGS);
void kq_pack_q4_0(void *w, size_t ws, int64_t k, int64_t nr, void *scratch);
void kq_gemm_q8_0_packed(KQ_GEMM_ARGS);
void kq_pack_q8_0(void *w, size_t ws, int64_t k, int64_t nr, void *scratch);
void kq_gemm_q4_1(KQ_GEMM_ARGS);
void kq_gemm_q5_0(KQ_GEMM_ARGS);
void kq_gemm_q5_1(KQ_GEMM_ARGS);
void kq_gemm_q8_0(KQ_GEMM_ARGS);
void kq_gemm_iq4_nl(KQ_GEMM_ARGS);
/* Q4_0 / Q8_0 activations prepared once for many gemms (see kq_prep in matmul.h). */
size_t kq_simd_prep_bytes(uint32_t type, int64_t k, int64_t n);
void kq_simd_prep(uint32_t type, const void *x, size_t xs, int64_t k, int64_t n, int64_t t0, int64_t t1, void *pre);
void kq_simd_gemm_prep(uint32_t type, bool packed, const void *pre, KQ_GEMM_ARGS);
void kq_gemm_q4_K(KQ_GEMM_ARGS);
void kq_gemm_q5_K(KQ_GEMM_ARGS);
void kq_gemm_q6_K(KQ_GEMM_ARGS);
void kq_gemm_iq4_xs(KQ_GEMM_ARGS);
void kq_gemm_f32(KQ_GEMM_ARGS);
void kq_gemm_f16(KQ_GEMM_ARGS);
void kq_gemm_bf16(KQ_GEMM_ARGS);
void kq_quantize_q8_0_simd(const float *src, void *dst, int64_t n);
void kq_quantize_q8_1_simd(const float *src, void *dst, int64_t n);
void kq_quantize_q8_K_simd(const float *src, void *dst, int64_t n);

#define KQ_INLINE static inline __attribute__((always_inline))
/* Loops over rows / tokens / lanes of a tile must be unrolled so their arrays live in registers. */
#define KQ_UNROLL _Pragma("clang loop unroll(full)")
/* V8 keeps a function's loads in program order but places the arithmetic on their results as late as
 * possible, so an unrolled body's loads all run first and their values are spilled. Storing a result
 * that the next loads must follow (a volatile store to a stack slot) keeps each step's loads next to
 * their use (Q4_0 4-row matvec: 1.1-1.3x). KQ_PIN_SLOT declares the slot, KQ_PIN(v) stores to it. */
#define KQ_PIN_SLOT volatile v128_t kq_pin_slot
#define KQ_PIN(v) (kq_pin_slot = (v))

#ifdef KQ_SIMD_STATS
extern long kq_simd_redone; /* tiles redone by the scalar reference (benchmarks only; not thread-safe) */
#endif

/* Rows per tile (weight rows sharing each activation load) and the most tokens per tile. */
#define KQ_TR 4
#define KQ_TT 4

/* 4 halves (low 16 bits of each i32 lane) to f32, exactly as kq_f16_to_f32: normals by moving the
 * bits into a float's place and rebasing the exponent, subnormals as their integer mantissa times
 * 2^-24, Inf/NaN rebuilt from the bits. No float operation sees a subnormal operand: on x86 each
 * such operation takes a microcode assist (~100 cycles), which made the Q6_K output head of models
 * with tiny super-block scales (halves below 2^-14, common) twice as slow. */
KQ_INLINE v128_t kq_h2f4(v128_t h) {
    const v128_t em = wasm_v128_and(h, wasm_i32x4_splat(0x7FFF));
    const v128_t sh = wasm_i32x4_shl(em, 13);
    const v128_t nrm = wasm_i32x4_add(sh, wasm_i32x4_splat(112 << 23));
    const v128_t sub = wasm_f32x4_mul(wasm_f32x4_convert_i32x4(em), wasm_f32x4_splat(0x1p-24f));
    v128_t f = wasm_v128_bitselect(sub, nrm, wasm_i32x4_lt(em, wasm_i32x4_splat(0x0400)));
    const v128_t special = wasm_i32x4_gt(em, wasm_i32x4_splat(0x7BFF));
    f = wasm_v128_bitselect(wasm_v128_or(sh, wasm_i32x4_splat(0x7F800000)), f, special);
    return wasm_v128_or(f, wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x8000)), 16));
}

/* Scalar f16 -> f32, inline (same bits as kq_f16_to_f32). */
KQ_INLINE float kq_h2f(uint16_t h) { return wasm_f32x4_extract_lane(kq_h2f4(wasm_i32x4_splat(h)), 0); }

/* Unaligned little-endian loads from packed blocks. */
KQ_INLINE uint16_t ld16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

KQ_INLINE uint32_t ld32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

KQ_INLINE float ldf(const uint8_t *p) {
    float v;
    memcpy(&v, p, 4);
    return v;
}

KQ_INLINE v128_t kq_load(const void *p) { return wasm_v128_load(p); }

/* Signed int8 x16 -> its even elements and odd elements as i16x8. */
KQ_INLINE v128_t kq_even_i8(v128_t v) { return wasm_i16x8_shr(wasm_i16x8_shl(v, 8), 8); }
KQ_INLINE v128_t kq_odd_i8(v128_t v) { return wasm_i16x8_shr(v, 8); }

/* Lane l (a constant after unrolling) of v in all four lanes. */
KQ_INLINE v128_t kq_splat_lane(v128_t v, int l) {
    switch (l) {
    case 0: return wasm_i32x4_shuffle(v, v, 0, 0, 0, 0);
    case 1: return wasm_i32x4_shuffle(v, v, 1, 1, 1, 1);
    case 2: return wasm_i32x4_shuffle(v, v, 2, 2, 2, 2);
    default: return wasm_i32x4_shuffle(v, v, 3, 3, 3, 3);
    }
}

/* The 4 lanes (sums of 4 consecutive elements) of 8 elements given as even/odd i16 vectors of
 * weights (we, wo) and activations (ye, yo): lane j = w[4j..4j+3] . y[4j..4j+3]. */
KQ_INLINE v128_t kq_quad(v128_t we, v128_t wo, v128_t ye, v128_t yo) {
    return wasm_i32x4_add(wasm_i32x4_dot_i16x8(we, ye), wasm_i32x4_dot_i16x8(wo, yo));
}

/* Horizontal sum of an i32x4 (exact). */
KQ_INLINE int32_t kq_hsum_i32(v128_t v) {
    v = wasm_i32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
    v = wasm_i32x4_add(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
    return wasm_i32x4_extract_lane(v, 0);
}

/* The 8 float accumulators of one dot. */
#if KQ_EXACT_FMA
typedef struct { v128_t v[4]; } kq_acc; /* f64x2 x 4, every value a float */
#define KQ_ACC_N 4
#else
typedef struct { v128_t v[2]; } kq_acc; /* f32x4 x 2 */
#define KQ_ACC_N 2
#endif

KQ_INLINE void kq_acc_zero(kq_acc *a) {
    KQ_UNROLL
    for (int i = 0; i < KQ_ACC_N; i++) a->v[i] = wasm_f64x2_splat(0.0);
}

/* The 8 lanes as floats. */
KQ_INLINE void kq_acc_get(const kq_acc *a, float out[8]) {
#if KQ_EXACT_FMA
    for (int i = 0; i < 4; i++) {
        out[2 * i] = (float)wasm_f64x2_extract_lane(a->v[i], 0);
        out[2 * i + 1] = (float)wasm_f64x2_extract_lane(a->v[i], 1);
    }
#else
    wasm_v128_store(out, a->v[0]);
    wasm_v128_store(out + 4, a->v[1]);
#endif
}

KQ_INLINE void kq_acc_set(kq_acc *a, const float in[8]) {
#if KQ_EXACT_FMA
    for (int i = 0; i < 4; i++) a->v[i] = wasm_f64x2_make(in[2 * i], in[2 * i + 1]);
#else
    a->v[0] = wasm_v128_load(in);
    a->v[1] = wasm_v128_load(in + 4);
#endif
}

#if KQ_EXACT_FMA
/* True where a double, rounded to float, may differ from the correctly rounded fused result. */
KQ_INLINE v128_t kq_midpoint(v128_t s) {
    return wasm_i64x2_eq(wasm_v128_and(s, wasm_i64x2_splat(0x1FFFFFFF)), wasm_i64x2_splat(0x10000000));
}
/* s rounded to float and widened back. The empty asm keeps clang-14 from fusing the pair into
 * scalar code (it folds fpext(fptrunc(<2 x double>)) and then scalarises it, 5x slower). */
KQ_INLINE v128_t kq_round_f32(v128_t s) {
    v128_t f = wasm_f32x4_demote_f64x2_zero(s);
    __asm__("" : "+r"(f));
    return wasm_f64x2_promote_low_f32x4(f);
}
#endif

#if KQ_EXACT_FMA
/* s = p + c rounded to double; where s sits exactly on a float midpoint (low 29 bits of its
 * significand 1 << 28) but was inexact, move s one double ulp toward the exact sum so that the
 * demotion rounds as a fused operation would. (TwoSum gives the rounding error e.) */
KQ_INLINE v128_t kq_fix(v128_t s, v128_t p, v128_t c) {
    const v128_t bb = wasm_f64x2_sub(s, p);
    const v128_t e = wasm_f64x2_add(wasm_f64x2_sub(p, wasm_f64x2_sub(s, bb)), wasm_f64x2_sub(c, bb));
    const v128_t mid =
        wasm_i64x2_eq(wasm_v128_and(s, wasm_i64x2_splat(0x1FFFFFFF)), wasm_i64x2_splat(0x10000000));
    const v128_t need = wasm_v128_and(mid, wasm_f64x2_ne(e, wasm_f64x2_splat(0.0)));
    /* +1 when e has the sign of s (the exact value is farther from zero), else -1 */
    const v128_t delta = wasm_v128_or(wasm_i64x2_shr(wasm_v128_xor(e, s), 63), wasm_i64x2_splat(1));
    return wasm_i64x2_add(s, wasm_v128_and(delta, need));
}

/* Any lane of the 4 f64x2 sums on a float midpoint? (low 32 bits of the 8 doubles, one test) */
KQ_INLINE int kq_any_mid(v128_t s0, v128_t s1, v128_t s2, v128_t s3) {
    const v128_t m = wasm_i32x4_splat(0x1FFFFFFF), p = wasm_i32x4_splat(0x10000000);
    const v128_t b01 = wasm_v128_and(wasm_i32x4_shuffle(s0, s1, 0, 2, 4, 6), m);
    const v128_t b23 = wasm_v128_and(wasm_i32x4_shuffle(s2, s3, 0, 2, 4, 6), m);
    return wasm_v128_any_true(wasm_v128_or(wasm_i32x4_eq(b01, p), wasm_i32x4_eq(b23, p)));
}
#endif

/* acc[j] = fmaf(d, (float)lane[j], acc[j]) for lanes l0 (0..3) and l1 (4..7). The lanes must be
 * below 2^24 in magnitude (then (float)lane is exact; true for every type here). */
KQ_INLINE void kq_acc_fma(kq_acc *a, v128_t l0, v128_t l1, float d) {
#if KQ_EXACT_FMA
    const v128_t dd = wasm_f64x2_splat((double)d);
    const v128_t p0 = wasm_f64x2_mul(wasm_f64x2_convert_low_i32x4(l0), dd);
    const v128_t p1 = wasm_f64x2_mul(wasm_f64x2_convert_low_i32x4(wasm_i32x4_shuffle(l0, l0, 2, 3, 2, 3)), dd);
    const v128_t p2 = wasm_f64x2_mul(wasm_f64x2_convert_low_i32x4(l1), dd);
    const v128_t p3 = wasm_f64x2_mul(wasm_f64x2_convert_low_i32x4(wasm_i32x4_shuffle(l1, l1, 2, 3, 2, 3)), dd);
    v128_t s0 = wasm_f64x2_add(p0, a->v[0]), s1 = wasm_f64x2_add(p1, a->v[1]);
    v128_t s2 = wasm_f64x2_add(p2, a->v[2]), s3 = wasm_f64x2_add(p3, a->v[3]);
    if (KQ_EXACT_FMA == 1 && __builtin_expect(kq_any_mid(s0, s1, s2, s3), 0)) {
        /* the asm keeps clang from hoisting the fix out of the rare branch (running it always) */
        __asm__ volatile("" : "+r"(s0), "+r"(s1), "+r"(s2), "+r"(s3));
        s0 = kq_fix(s0, p0, a->v[0]);
        s1 = kq_fix(s1, p1, a->v[1]);
        s2 = kq_fix(s2, p2, a->v[2]);
        s3 = kq_fix(s3, p3, a->v[3]);
    }
    a->v[0] = kq_round_f32(s0);
    a->v[1] = kq_round_f32(s1);
    a->v[2] = kq_round_f32(s2);
    a->v[3] = kq_round_f32(s3);
#else
    const v128_t dd = wasm_f32x4_splat(d);
    a->v[0] = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(l0), dd), a->v[0]);
    a->v[1] = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(l1), dd), a->v[1]);
#endif
}

/* fmaf on 4 independent float lanes (f32x4 in, f32x4 out), e.g. min terms. */
KQ_INLINE v128_t kq_fma4(v128_t a, v128_t b, v128_t c) {
#if KQ_EXACT_FMA
    const v128_t ah = wasm_i32x4_shuffle(a, a, 2, 3, 2, 3), bh = wasm_i32x4_shuffle(b, b, 2, 3, 2, 3),
                 ch = wasm_i32x4_shuffle(c, c, 2, 3, 2, 3);
    const v128_t p0 = wasm_f64x2_mul(wasm_f64x2_promote_low_f32x4(a), wasm_f64x2_promote_low_f32x4(b));
    const v128_t p1 = wasm_f64x2_mul(wasm_f64x2_promote_low_f32x4(ah), wasm_f64x2_promote_low_f32x4(bh));
    const v128_t c0 = wasm_f64x2_promote_low_f32x4(c), c1 = wasm_f64x2_promote_low_f32x4(ch);
    v128_t s0 = wasm_f64x2_add(p0, c0), s1 = wasm_f64x2_add(p1, c1);
    if (KQ_EXACT_FMA == 1 && __builtin_expect(kq_any_mid(s0, s1, s0, s1), 0)) {
        __asm__ volatile("" : "+r"(s0), "+r"(s1));
        s0 = kq_fix(s0, p0, c0);
        s1 = kq_fix(s1, p1, c1);
    }
    return wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(s0), wasm_f32x4_demote_f64x2_zero(s1), 0, 1, 4, 5);
#else
    return wasm_f32x4_add(wasm_f32x4_mul(a, b), c);
#endif
}

/* hsum_float_8 of the accumulators. */
KQ_INLINE float kq_acc_hsum(const kq_acc *a) {
    float f[8];
    kq_acc_get(a, f);
    return kq_hsum8(f);
}

/* A tile: KQ_TR weight rows (w, stride ws) x T activation rows (x, stride xs), nb blocks each;
 * writes y[t * ldy + r]. tiles[T] handles T = 1..KQ_TT tokens. Returns nonzero when the tile hit
 * the rare double-rounding case (exact mode), and must be redone by the scalar reference. */
typedef int (*kq_tile_fn)(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int64_t nb,
                           float *y, int64_t ldy);

/* Tiles KQ_TR rows x KQ_TT tokens, rows outermost so a tile's weight rows stay in cache while every
 * token uses them; rows left over (nr not a multiple of KQ_TR) use the scalar reference dot. */
static inline void kq_redo(float (*dot)(const void *, const void *, int64_t), const uint8_t *w, size_t ws,
                           const uint8_t *x, size_t xs, int64_t k, int64_t nr, int64_t n, float *y, int64_t ldy) {
#ifdef KQ_SIMD_STATS
    kq_simd_redone++;
#endif
    for (int64_t t = 0; t < n; t++)
        for (int64_t r = 0; r < nr; r++) y[t * ldy + r] = dot(w + (size_t)r * ws, x + (size_t)t * xs, k);
}

static inline void kq_drive(const kq_tile_fn tiles[KQ_TT + 1], float (*dot)(const void *, const void *, int64_t),
                            int blck, KQ_GEMM_ARGS) {
    const uint8_t *wb = w, *xb = x;
    const int64_t nb = k / blck;
    int64_t r = 0;
    for (; r + KQ_TR <= nr; r += KQ_TR) {
        for (int64_t t = 0; t < n; t += KQ_TT) {
            const int64_t T = n - t < KQ_TT ? n - t : KQ_TT;
            const uint8_t *wt = wb + (size_t)r * ws, *xt = xb + (size_t)t * xs;
            if (tiles[T](wt, ws, xt, xs, nb, y + t * ldy + r, ldy))
                kq_redo(dot, wt, ws, xt, xs, k, KQ_TR, T, y + t * ldy + r, ldy);
        }
    }
    if (r < nr) kq_redo(dot, wb + (size_t)r * ws, ws, xb, xs, k, nr - r, n, y + r, ldy);
}

/* Instantiate tiles 1..4 of an always-inline `NAME(w, ws, x, xs, nb, y, ldy, T)` and its gemm. */
#define KQ_TILES(NAME, DOT, BLCK)                                                                  \
    static int NAME##_1(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int64_t nb,   \
                        float *y, int64_t ldy) { return NAME(w, ws, x, xs, nb, y, ldy, 1); }    \
    static int NAME##_2(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int64_t nb,   \
                        float *y, int64_t ldy) { return NAME(w, ws, x, xs, nb, y, ldy, 2); }    \
    static int NAME##_3(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int64_t nb,   \
                        float *y, int64_t ldy) { return NAME(w, ws, x, xs, nb, y, ldy, 3); }    \
    static int NAME##_4(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int64_t nb,   \
                        float *y, int64_t ldy) { return NAME(w, ws, x, xs, nb, y, ldy, 4); }    \
    static const kq_tile_fn NAME##_tiles[KQ_TT + 1] = {0, NAME##_1, NAME##_2, NAME##_3, NAME##_4};

#endif /* __wasm_simd128__ */
#endif
