/* simd_q8.c: wasm SIMD128 multi-row kernels for the 32-element block types Q4_0, Q4_1, Q5_0, Q5_1,
 * Q8_0 and IQ4_NL against Q8_0 / Q8_1 activations. A tile is KQ_TR (4) weight rows x T (1..4)
 * activation rows: each weight block is unpacked once for the T tokens and each activation block
 * widened once for the 4 rows. Integer lanes and float steps are those of the scalar reference
 * (quant_legacy.c, quant_iq4.c); see simd_common.h for the FMA step. */
#include <stdlib.h>

#include "simd_common.h"

#ifdef __wasm_simd128__

#ifdef KQ_SIMD_STATS
long kq_simd_redone;
#endif

enum { K_Q4_0, K_Q4_1, K_Q5_0, K_Q5_1, K_Q8_0, K_IQ4_NL };

KQ_INLINE size_t wbytes(int kind) {
    switch (kind) {
    case K_Q4_0: return sizeof(block_q4_0);
    case K_Q4_1: return sizeof(block_q4_1);
    case K_Q5_0: return sizeof(block_q5_0);
    case K_Q5_1: return sizeof(block_q5_1);
    case K_Q8_0: return sizeof(block_q8_0);
    default: return sizeof(block_iq4_nl);
    }
}

KQ_INLINE int has_min(int kind) { return kind == K_Q4_1 || kind == K_Q5_1; }

/* The fifth bits of 16 elements (bits of h, element e at bit e) as i16 masks, even elements and odd
 * elements: -1 where the bit is set. */
KQ_INLINE void q5_bits(uint32_t h, v128_t *ev, v128_t *od) {
    const v128_t hv = wasm_i16x8_splat((int16_t)h);
    const v128_t me = wasm_i16x8_make(1 << 0, 1 << 2, 1 << 4, 1 << 6, 1 << 8, 1 << 10, 1 << 12, 1 << 14);
    const v128_t mo = wasm_i16x8_make(1 << 1, 1 << 3, 1 << 5, 1 << 7, 1 << 9, 1 << 11, 1 << 13, (int16_t)0x8000);
    *ev = wasm_i16x8_eq(wasm_v128_and(hv, me), me);
    *od = wasm_i16x8_eq(wasm_v128_and(hv, mo), mo);
}

/* Weight block -> q[0..3] = even / odd elements of 0..15, even / odd elements of 16..31, as i16. */
KQ_INLINE void unpack(int kind, const uint8_t *b, v128_t q[4]) {
    const v128_t m4 = wasm_i16x8_splat(0xF);
    switch (kind) {
    case K_Q4_0:
    case K_Q4_1:
    case K_Q5_0:
    case K_Q5_1: {
        const int off = kind == K_Q4_0 || kind == K_Q4_1 ? 2 * (kind == K_Q4_1) + 2 : 2 * (kind == K_Q5_1) + 6;
        const v128_t v = kq_load(b + off);
        q[0] = wasm_v128_and(v, m4);
        q[1] = wasm_v128_and(wasm_u16x8_shr(v, 8), m4);
        q[2] = wasm_v128_and(wasm_u16x8_shr(v, 4), m4);
        q[3] = wasm_u16x8_shr(v, 12);
        if (kind == K_Q4_0) {
            const v128_t c8 = wasm_i16x8_splat(8);
            KQ_UNROLL
            for (int j = 0; j < 4; j++) q[j] = wasm_i16x8_sub(q[j], c8);
        } else if (kind == K_Q5_0 || kind == K_Q5_1) {
            const uint32_t qh = ld32(b + 2 * (kind == K_Q5_1) + 2);
            v128_t h[4];
            q5_bits(qh & 0xFFFF, &h[0], &h[1]);
            q5_bits(qh >> 16, &h[2], &h[3]);
            const v128_t c16 = wasm_i16x8_splat(16);
            KQ_UNROLL
            for (int j = 0; j < 4; j++) {
                q[j] = wasm_v128_or(q[j], wasm_v128_and(h[j], c16));
                if (kind == K_Q5_0) q[j] = wasm_i16x8_sub(q[j], c16);
            }
        }
        break;
    }
    case K_Q8_0: {
        const v128_t v0 = kq_load(b + 2), v1 = kq_load(b + 18);
        q[0] = kq_even_i8(v0);
        q[1] = kq_odd_i8(v0);
        q[2] = kq_even_i8(v1);
        q[3] = kq_odd_i8(v1);
        break;
    }
    default: { /* IQ4_NL */
        const v128_t tab = wasm_v128_load(kq_iq4nl_values);
        const v128_t v = kq_load(b + 2);
        const v128_t lo = wasm_i8x16_swizzle(tab, wasm_v128_and(v, wasm_i8x16_splat(0xF)));
        const v128_t hi = wasm_i8x16_swizzle(tab, wasm_u8x16_shr(v, 4));
        q[0] = kq_even_i8(lo);
        q[1] = kq_odd_i8(lo);
        q[2] = kq_even_i8(hi);
        q[3] = kq_odd_i8(hi);
        break;
    }
    }
}

/* Block i of the tile's 4 rows against T activation rows, into acc[t][r] (and the min terms). */
KQ_INLINE void legacy_block(int kind, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int64_t i, int T,
                            kq_acc acc[KQ_TT][KQ_TR], v128_t summ[KQ_TT]) {
    const size_t wb = wbytes(kind);
    const int q81 = has_min(kind);
    const size_t xb = q81 ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const size_t xoff = q81 ? 4 : 2;
    const uint8_t *wr[KQ_TR];
    v128_t q[KQ_TR][4];
    KQ_UNROLL
    for (int r = 0; r < KQ_TR; r++) {
        wr[r] = w + (size_t)r * ws + (size_t)i * wb;
        unpack(kind, wr[r], q[r]);
    }
    const v128_t dw = kq_h2f4(wasm_i32x4_make(ld16(wr[0]), ld16(wr[1]), ld16(wr[2]), ld16(wr[3])));
    v128_t mw = dw;
    if (q81) mw = kq_h2f4(wasm_i32x4_make(ld16(wr[0] + 2), ld16(wr[1] + 2), ld16(wr[2] + 2), ld16(wr[3] + 2)));
    KQ_UNROLL
    for (int t = 0; t < T; t++) {
        const uint8_t *yb = x + (size_t)t * xs + (size_t)i * xb;
        const v128_t v0 = kq_load(yb + xoff), v1 = kq_load(yb + xoff + 16);
        const v128_t ye0 = kq_even_i8(v0), yo0 = kq_odd_i8(v0), ye1 = kq_even_i8(v1), yo1 = kq_odd_i8(v1);
        const v128_t d = wasm_f32x4_mul(dw, wasm_f32x4_splat(kq_h2f(ld16(yb))));
        if (q81) summ[t] = kq_fma4(mw, wasm_f32x4_splat(kq_h2f(ld16(yb + 2))), summ[t]);
        const float d0 = wasm_f32x4_extract_lane(d, 0), d1 = wasm_f32x4_extract_lane(d, 1),
                    d2 = wasm_f32x4_extract_lane(d, 2), d3 = wasm_f32x4_extract_lane(d, 3);
        const float dr[KQ_TR] = {d0, d1, d2, d3};
        KQ_UNROLL
        for (int r = 0; r < KQ_TR; r++) {
            const v128_t l0 = kq_quad(q[r][0], q[r][1], ye0, yo0);
            const v128_t l1 = kq_quad(q[r][2], q[r][3], ye1, yo1);
            kq_acc_fma(&acc[t][r], l0, l1, dr[r]);
        }
    }
}

/* One tile; kind and T are compile-time constants after inlining. */
KQ_INLINE int legacy_tile(int kind, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int64_t nb,
                          float *y, int64_t ldy, int T) {
    const size_t wb = wbytes(kind);
    const int q81 = has_min(kind);
    const size_t xb = q81 ? sizeof(block_q8_1) : sizeof(block_q8_0);
    /* IQ4_NL keeps even and odd blocks in two accumulator sets (see kq_dot_iq4_nl) */
    const int64_t nfull = kind == K_IQ4_NL ? nb & ~(int64_t)1 : nb;
    kq_acc acc0[KQ_TT][KQ_TR], acc1[KQ_TT][KQ_TR];
    v128_t summ[KQ_TT];
    KQ_UNROLL
    for (int t = 0; t < T; t++) {
        summ[t] = wasm_f32x4_splat(0.0f);
        KQ_UNROLL
        for (int r = 0; r < KQ_TR; r++) {
            kq_acc_zero(&acc0[t][r]);
            kq_acc_zero(&acc1[t][r]);
        }
    }
    if (kind == K_IQ4_NL) {
        for (int64_t i = 0; i < nfull; i += 2) {
            legacy_block(kind, w, ws, x, xs, i, T, acc0, summ);
            legacy_block(kind, w, ws, x, xs, i + 1, T, acc1, summ);
        }
    } else {
        for (int64_t i = 0; i < nb; i++) legacy_block(kind, w, ws, x, xs, i, T, acc0, summ);
    }

    KQ_UNROLL

    for (int t = 0; t < T; t++) {
        float sm[KQ_TR];
        wasm_v128_store(sm, summ[t]);
        KQ_UNROLL
        for (int r = 0; r < KQ_TR; r++) {
            float res;
            if (kind == K_IQ4_NL) {
                float a0[8], a1[8];
                kq_acc_get(&acc0[t][r], a0);
                kq_acc_get(&acc1[t][r], a1);
                KQ_UNROLL
                for (int j = 0; j < 8; j++) a0[j] = a0[j] + a1[j];
                res = kq_hsum8(a0);
                if (nfull < nb) { /* odd last block: scalar sum, one fmaf */
                    const uint8_t *wbk = w + (size_t)r * ws + (size_t)nfull * wb;
                    const uint8_t *yb = x + (size_t)t * xs + (size_t)nfull * xb;
                    v128_t q[4];
                    unpack(kind, wbk, q);
                    const v128_t v0 = kq_load(yb + 2), v1 = kq_load(yb + 18);
                    const int32_t sumi = kq_hsum_i32(wasm_i32x4_add(
                        kq_quad(q[0], q[1], kq_even_i8(v0), kq_odd_i8(v0)),
                        kq_quad(q[2], q[3], kq_even_i8(v1), kq_odd_i8(v1))));
                    res = KQ_FMA(kq_h2f(ld16(yb)) * kq_h2f(ld16(wbk)), (float)sumi, res);
                }
            } else {
                res = kq_acc_hsum(&acc0[t][r]);
                if (q81) res = res + sm[r];
            }
            y[t * ldy + r] = res;
        }
    }
    return 0;
}

#define LEGACY(NAME, KIND, DOT)                                                                      \
    KQ_INLINE int NAME(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int64_t nb, float *y,  \
                       int64_t ldy, int T) {                                                         \
        return legacy_tile(KIND, w, ws, x, xs, nb, y, ldy, T);                                       \
    }                                                                                                \
    KQ_TILES(NAME, DOT, QK32)                                                                        \
    void kq_gemm_##DOT(KQ_GEMM_ARGS) { kq_drive(NAME##_tiles, kq_dot_##DOT, QK32, w, ws, x, xs, k, nr, n, y, ldy); }

/* ---- Q4_0: activations widened once per call (+15-20% over legacy_tile in matvec) ----
 * Every Q8_0 activation block is widened once (even / odd i16 of both halves, and 8 x its quad sums)
 * into a scratch buffer; a tile of R weight rows x T tokens then only loads them. Q4_0 keeps its
 * nibbles unsigned (0..15) and subtracts 8 * quad(y) from each integer lane: the same integers as
 * (q - 8) . y. Float steps as in legacy_block. */

#define PREP_V 6 /* v128 per activation block: ye0, yo0, ye1, yo1, 8*quad0, 8*quad1 */

static void prep_q8_0(const uint8_t *x, size_t xs, int64_t nb, int64_t n, v128_t *yp, float *yd) {
    for (int64_t t = 0; t < n; t++) {
        for (int64_t i = 0; i < nb; i++, yp += PREP_V) {
            const uint8_t *b = x + (size_t)t * xs + (size_t)i * sizeof(block_q8_0);
            const v128_t v0 = kq_load(b + 2), v1 = kq_load(b + 18);
            yp[0] = kq_even_i8(v0);
            yp[1] = kq_odd_i8(v0);
            yp[2] = kq_even_i8(v1);
            yp[3] = kq_odd_i8(v1);
            yp[4] = wasm_i32x4_shl(wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_extadd_pairwise_i8x16(v0)), 3);
            yp[5] = wasm_i32x4_shl(wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_extadd_pairwise_i8x16(v1)), 3);
            *yd++ = kq_h2f(ld16(b));
        }
    }
}

/* R rows (2 or 4) x T tokens; yp / yd point at the first token's prepared blocks (stride nb). */
KQ_INLINE void prep_tile(int kind, int R, const uint8_t *w, size_t ws, const v128_t *yp, const float *yd,
                         int64_t nb, float *y, int64_t ldy, int T) {
    const size_t wb = wbytes(kind);
    kq_acc acc[KQ_TT][KQ_TR];
    KQ_UNROLL
    for (int t = 0; t < T; t++) {
        KQ_UNROLL
        for (int r = 0; r < R; r++) kq_acc_zero(&acc[t][r]);
    }
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *wr[KQ_TR];
        v128_t q[KQ_TR][4];
        KQ_UNROLL
        for (int r = 0; r < R; r++) {
            wr[r] = w + (size_t)r * ws + (size_t)i * wb;
            if (kind == K_Q4_0) { /* unsigned nibbles */
                const v128_t v = kq_load(wr[r] + 2), m4 = wasm_i16x8_splat(0xF);
                q[r][0] = wasm_v128_and(v, m4);
                q[r][1] = wasm_v128_and(wasm_u16x8_shr(v, 8), m4);
                q[r][2] = wasm_v128_and(wasm_u16x8_shr(v, 4), m4);
                q[r][3] = wasm_u16x8_shr(v, 12);
            } else {
                unpack(kind, wr[r], q[r]);
            }
        }
        v128_t dw;
        if (R == 4)
            dw = kq_h2f4(wasm_i32x4_make(ld16(wr[0]), ld16(wr[1]), ld16(wr[2]), ld16(wr[3])));
        else
            dw = kq_h2f4(wasm_i32x4_make(ld16(wr[0]), ld16(wr[1]), 0, 0));
        KQ_UNROLL
        for (int t = 0; t < T; t++) {
            const v128_t *p = yp + ((size_t)t * (size_t)nb + (size_t)i) * PREP_V;
            const v128_t d = wasm_f32x4_mul(dw, wasm_v128_load32_splat(yd + (size_t)t * (size_t)nb + (size_t)i));
            const float dr[KQ_TR] = {wasm_f32x4_extract_lane(d, 0), wasm_f32x4_extract_lane(d, 1),
                                     wasm_f32x4_extract_lane(d, 2), wasm_f32x4_extract_lane(d, 3)};
            KQ_UNROLL
            for (int r = 0; r < R; r++) {
                v128_t l0 = kq_quad(q[r][0], q[r][1], p[0], p[1]);
                v128_t l1 = kq_quad(q[r][2], q[r][3], p[2], p[3]);
                if (kind == K_Q4_0) {
                    l0 = wasm_i32x4_sub(l0, p[4]);
                    l1 = wasm_i32x4_sub(l1, p[5]);
                }
                kq_acc_fma(&acc[t][r], l0, l1, dr[r]);
            }
        }
    }
    KQ_UNROLL
    for (int t = 0; t < T; t++) {
        KQ_UNROLL
        for (int r = 0; r < R; r++) y[t * ldy + r] = kq_acc_hsum(&acc[t][r]);
    }
}

#ifndef KQ_PREP_ROWS
#define KQ_PREP_ROWS 4
#endif

#define PREP_TILES(NAME, KIND)                                                                             \
    static void NAME##_1(const uint8_t *w, size_t ws, const v128_t *yp, const float *yd, int64_t nb, float *y, \
                         int64_t ldy) { prep_tile(KIND, KQ_PREP_ROWS, w, ws, yp, yd, nb, y, ldy, 1); }     \
    static void NAME##_2(const uint8_t *w, size_t ws, const v128_t *yp, const float *yd, int64_t nb, float *y, \
                         int64_t ldy) { prep_tile(KIND, KQ_PREP_ROWS, w, ws, yp, yd, nb, y, ldy, 2); }     \
    static void NAME##_3(const uint8_t *w, size_t ws, const v128_t *yp, const float *yd, int64_t nb, float *y, \
                         int64_t ldy) { prep_tile(KIND, KQ_PREP_ROWS, w, ws, yp, yd, nb, y, ldy, 3); }     \
    static void NAME##_4(const uint8_t *w, size_t ws, const v128_t *yp, const float *yd, int64_t nb, float *y, \
                         int64_t ldy) { prep_tile(KIND, KQ_PREP_ROWS, w, ws, yp, yd, nb, y, ldy, 4); }     \
    static void (*const NAME##_tiles[KQ_TT + 1])(const uint8_t *, size_t, const v128_t *, const float *, int64_t, \
                                                float *, int64_t) = {0, NAME##_1, NAME##_2, NAME##_3, NAME##_4};

PREP_TILES(ptile_q4_0, K_Q4_0)

static void prep_drive(void (*const tiles[KQ_TT + 1])(const uint8_t *, size_t, const v128_t *, const float *, int64_t,
                                                      float *, int64_t),
                       const kq_tile_fn old[KQ_TT + 1], float (*dot)(const void *, const void *, int64_t),
                       KQ_GEMM_ARGS) {
    const int64_t nb = k / QK32;
    const int R = KQ_PREP_ROWS;
    /* scratch: PREP_V vectors and a float per activation block; on the stack when small */
    const size_t nblk = (size_t)nb * (size_t)n;
    v128_t stack_buf[PREP_V * 64]; /* 6 KB: small for pthread stacks */
    float stack_d[64];
    v128_t *yp = stack_buf;
    float *yd = stack_d;
    void *heap = 0;
    if (nblk > 64) {
        heap = malloc(nblk * (PREP_V * sizeof(v128_t) + sizeof(float)) + 16);
        if (!heap) {
            kq_drive(old, dot, QK32, w, ws, x, xs, k, nr, n, y, ldy);
            return;
        }
        yp = (v128_t *)(((uintptr_t)heap + 15) & ~(uintptr_t)15);
        yd = (float *)(yp + PREP_V * nblk);
    }
    prep_q8_0(x, xs, nb, n, yp, yd);
    const uint8_t *wb = w;
    int64_t r = 0;
    for (; r + R <= nr; r += R) {
        for (int64_t t = 0; t < n; t += KQ_TT) {
            const int64_t T = n - t < KQ_TT ? n - t : KQ_TT;
            tiles[T](wb + (size_t)r * ws, ws, yp + (size_t)t * (size_t)nb * PREP_V, yd + (size_t)t * (size_t)nb, nb,
                     y + t * ldy + r, ldy);
        }
    }
    if (r < nr) kq_redo(dot, wb + (size_t)r * ws, ws, x, xs, k, nr - r, n, y + r, ldy);
    free(heap);
}

#define LEGACY_TILES(NAME, KIND, DOT)                                                                \
    KQ_INLINE int NAME(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int64_t nb, float *y,  \
                       int64_t ldy, int T) {                                                         \
        return legacy_tile(KIND, w, ws, x, xs, nb, y, ldy, T);                                       \
    }                                                                                                \
    KQ_TILES(NAME, DOT, QK32)

LEGACY_TILES(tile_q4_0, K_Q4_0, q4_0)

void kq_gemm_q4_0(KQ_GEMM_ARGS) { prep_drive(ptile_q4_0_tiles, tile_q4_0_tiles, kq_dot_q4_0, w, ws, x, xs, k, nr, n, y, ldy); }

LEGACY(tile_q4_1, K_Q4_1, q4_1)
LEGACY(tile_q5_0, K_Q5_0, q5_0)
LEGACY(tile_q5_1, K_Q5_1, q5_1)
LEGACY(tile_q8_0, K_Q8_0, q8_0) /* the prepared path measured no faster for Q8_0 */
LEGACY(tile_iq4_nl, K_IQ4_NL, iq4_nl)

#else
typedef int kq_simd_q8_unused; /* ISO C wants a declaration in every translation unit */
#endif
