/* simd_q8.c: wasm SIMD128 multi-row kernels for the 32-element block types Q4_0, Q4_1, Q5_0, Q5_1,
 * Q8_0 and IQ4_NL against Q8_0 / Q8_1 activations. All but IQ4_NL: activations widened once per call,
 * a 4-row tile for one token and a 2-row weights-stationary tile for batches. IQ4_NL: tiles of KQ_TR
 * (4) weight rows x T (1..4) activation rows (each weight block unpacked once for the T tokens, each
 * activation block widened once for the 4 rows). Integer lanes and float steps are those of the
 * scalar reference (quant_legacy.c, quant_iq4.c); see simd_common.h for the FMA step. */
#include <stdlib.h>

#include "simd_common.h"

#ifdef __wasm_simd128__

#ifdef KQ_SIMD_STATS
long kq_simd_redone;
#endif

enum { K_Q4_0, K_Q4_1, K_Q5_0, K_Q5_1, K_Q8_0, K_IQ4_NL };

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
    case K_Q4_1:
    case K_Q5_0:
    case K_Q5_1: {
        const int off = kind == K_Q4_1 ? 4 : 2 * (kind == K_Q5_1) + 6;
        const v128_t v = kq_load(b + off);
        q[0] = wasm_v128_and(v, m4);
        q[1] = wasm_v128_and(wasm_u16x8_shr(v, 8), m4);
        q[2] = wasm_v128_and(wasm_u16x8_shr(v, 4), m4);
        q[3] = wasm_u16x8_shr(v, 12);
        if (kind == K_Q5_0 || kind == K_Q5_1) {
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

/* ---- IQ4_NL: tiles of KQ_TR (4) weight rows x T (1..4) tokens ---- */

/* Block i of the tile's 4 rows against T activation rows, into acc[t][r]. */
KQ_INLINE void iq4nl_block(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int64_t i, int T,
                           kq_acc acc[KQ_TT][KQ_TR]) {
    const uint8_t *wr[KQ_TR];
    v128_t q[KQ_TR][4];
    KQ_UNROLL
    for (int r = 0; r < KQ_TR; r++) {
        wr[r] = w + (size_t)r * ws + (size_t)i * sizeof(block_iq4_nl);
        unpack(K_IQ4_NL, wr[r], q[r]);
    }
    const v128_t dw = kq_h2f4(wasm_i32x4_make(ld16(wr[0]), ld16(wr[1]), ld16(wr[2]), ld16(wr[3])));
    KQ_UNROLL
    for (int t = 0; t < T; t++) {
        const uint8_t *yb = x + (size_t)t * xs + (size_t)i * sizeof(block_q8_0);
        const v128_t v0 = kq_load(yb + 2), v1 = kq_load(yb + 18);
        const v128_t ye0 = kq_even_i8(v0), yo0 = kq_odd_i8(v0), ye1 = kq_even_i8(v1), yo1 = kq_odd_i8(v1);
        const v128_t d = wasm_f32x4_mul(dw, wasm_f32x4_splat(kq_h2f(ld16(yb))));
        const float dr[KQ_TR] = {wasm_f32x4_extract_lane(d, 0), wasm_f32x4_extract_lane(d, 1),
                                 wasm_f32x4_extract_lane(d, 2), wasm_f32x4_extract_lane(d, 3)};
        KQ_UNROLL
        for (int r = 0; r < KQ_TR; r++) {
            const v128_t l0 = kq_quad(q[r][0], q[r][1], ye0, yo0);
            const v128_t l1 = kq_quad(q[r][2], q[r][3], ye1, yo1);
            kq_acc_fma(&acc[t][r], l0, l1, dr[r]);
        }
    }
}

/* One tile; T is a compile-time constant after inlining. Even and odd blocks go to two accumulator
 * sets, added at the end, an odd last block by a scalar fmaf (see kq_dot_iq4_nl). */
KQ_INLINE int iq4nl_tile(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int64_t nb, float *y,
                         int64_t ldy, int T) {
    const int64_t nfull = nb & ~(int64_t)1;
    kq_acc acc0[KQ_TT][KQ_TR], acc1[KQ_TT][KQ_TR];
    KQ_UNROLL
    for (int t = 0; t < T; t++) {
        KQ_UNROLL
        for (int r = 0; r < KQ_TR; r++) {
            kq_acc_zero(&acc0[t][r]);
            kq_acc_zero(&acc1[t][r]);
        }
    }
    for (int64_t i = 0; i < nfull; i += 2) {
        iq4nl_block(w, ws, x, xs, i, T, acc0);
        iq4nl_block(w, ws, x, xs, i + 1, T, acc1);
    }
    KQ_UNROLL
    for (int t = 0; t < T; t++) {
        KQ_UNROLL
        for (int r = 0; r < KQ_TR; r++) {
            float a0[8], a1[8];
            kq_acc_get(&acc0[t][r], a0);
            kq_acc_get(&acc1[t][r], a1);
            KQ_UNROLL
            for (int j = 0; j < 8; j++) a0[j] = a0[j] + a1[j];
            float res = kq_hsum8(a0);
            if (nfull < nb) {
                const uint8_t *wbk = w + (size_t)r * ws + (size_t)nfull * sizeof(block_iq4_nl);
                const uint8_t *yb = x + (size_t)t * xs + (size_t)nfull * sizeof(block_q8_0);
                v128_t q[4];
                unpack(K_IQ4_NL, wbk, q);
                const v128_t v0 = kq_load(yb + 2), v1 = kq_load(yb + 18);
                const int32_t sumi = kq_hsum_i32(wasm_i32x4_add(kq_quad(q[0], q[1], kq_even_i8(v0), kq_odd_i8(v0)),
                                                                kq_quad(q[2], q[3], kq_even_i8(v1), kq_odd_i8(v1))));
                res = KQ_FMA(kq_h2f(ld16(yb)) * kq_h2f(ld16(wbk)), (float)sumi, res);
            }
            y[t * ldy + r] = res;
        }
    }
    return 0;
}

KQ_TILES(iq4nl_tile, iq4_nl, QK32)

void kq_gemm_iq4_nl(KQ_GEMM_ARGS) { kq_drive(iq4nl_tile_tiles, kq_dot_iq4_nl, QK32, w, ws, x, xs, k, nr, n, y, ldy); }

/* ---- Q4_0, Q8_0, Q5_0 against Q8_0 and Q4_1, Q5_1 against Q8_1: activations widened once per call,
 * weights unpacked into scaled i16 in a few instructions, one i32x4 per block and row ----
 * The float order (quant_legacy.c) is one exact integer sum per block, then sum += d * sumi. So a
 * block's four i32 lane vectors are added as integers, and four (row, token) sums are transposed into
 * one vector that takes its four scales in one multiply-add.
 * The activations of a call are prepared once (XP_V i16 vectors per block, block-major so a batch
 * tile reads the tokens of a block in a row), matched to how each kind unpacks, and scaled so every
 * i16 product is 2^s q a:
 * - Q4_0, Q4_1 (s = 8): the weight vector read as i16 is masked four ways (0x000F, 0x00F0, 0x0F00,
 *   >> 12), giving elements 2j, 16+2j, 2j+1, 17+2j times 1, 16, 256, 1; the activations are the same
 *   elements times 256, 16, 1, 256. Q4_0's nibbles are unsigned here: its "- 8" is the exact
 *   correction 8 * 2^s * sum(a) per block and token (yc), subtracted from the integer sum.
 * - Q8_0 (s = 8): an int8 shifted or masked into the high byte is 256 q; even / odd activations.
 * - Q5_0, Q5_1 (s = 0): their usual unpack.
 * Every integer sum is exactly 2^s times the reference's sumi (below 2^31; its float is exact since
 * the reference's is), and the scale is 2^-s smaller to match: the activation scale is stored as
 * d_x * 2^(112 - s) and the weight half is widened from its bits alone (h << 13 reads as h * 2^-112,
 * normals and subnormals alike), so d = d_w * d_x * 2^-s rounds exactly as the reference's d_w * d_x
 * (powers of two; no overflow or underflow for finite halves) and d * sum is the reference's product
 * bit for bit. A weight scale that is Inf / NaN is caught and its rows redone by the scalar
 * reference. Q4_1 / Q5_1 add their min terms fmaf(m, s, summ) per block, m widened the same way. */

#define XP_V 4 /* v128 per prepared activation block */

KQ_INLINE int nib_kind(int kind) { return kind == K_Q4_0 || kind == K_Q4_1; }

/* Activation rows t in [t0, t1) of a chunk of n (Q8_0, or Q8_1 when q81; x: the chunk's row 0), blocks
 * [0, nb), for weights of `kind`, with rows n .. np-1 zero (padding to the batch tile's token pairs)
 * when t1 == n: yp[(b * np + t) * XP_V ..], yd[b * np + t] (the scale), yc (Q4_0's correction) and, for
 * Q8_1, ys (the stored sum term s). */
static void prep_acts(int kind, const uint8_t *x, size_t xs, int64_t nb, int64_t n, int64_t np, int64_t t0,
                      int64_t t1, float dscale, v128_t *yp, float *yd, int32_t *yc, float *ys) {
    const int q81 = has_min(kind);
    const size_t xb = q81 ? sizeof(block_q8_1) : sizeof(block_q8_0), qo = q81 ? 4 : 2;
    const int64_t te = t1 == n ? np : t1;
    for (int64_t i = 0; i < nb; i++) {
        for (int64_t t = t0; t < te; t++) {
            const size_t at = (size_t)(i * np + t);
            v128_t *p = yp + at * XP_V;
            if (t >= n) {
                p[0] = p[1] = p[2] = p[3] = wasm_i32x4_splat(0);
                yd[at] = ys[at] = 0.0f;
                yc[at] = 0;
                continue;
            }
            const uint8_t *b = x + (size_t)t * xs + (size_t)i * xb;
            const v128_t v0 = kq_load(b + qo), v1 = kq_load(b + qo + 16);
            const v128_t e0 = kq_even_i8(v0), o0 = kq_odd_i8(v0), e1 = kq_even_i8(v1), o1 = kq_odd_i8(v1);
            if (nib_kind(kind)) {
                p[0] = wasm_i16x8_shl(e0, 8);
                p[1] = wasm_i16x8_shl(e1, 4);
                p[2] = o0;
                p[3] = wasm_i16x8_shl(o1, 8);
            } else {
                p[0] = e0;
                p[1] = o0;
                p[2] = e1;
                p[3] = o1;
            }
            const v128_t ones = wasm_i16x8_splat(1);
            yc[at] = kind != K_Q4_0 ? 0
                                    : kq_hsum_i32(wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_i16x8_add(e0, o0), ones),
                                                                 wasm_i32x4_dot_i16x8(wasm_i16x8_add(e1, o1), ones))) *
                                          (8 << 8);
            ys[at] = q81 ? kq_h2f(ld16(b + 2)) : 0.0f;
            yd[at] = kq_h2f(ld16(b)) * dscale;
        }
    }
}

/* A vector of nibbles read as i16, masked four ways (see above): nibble m of each lane in place. */
KQ_INLINE void nib_masks(v128_t v, v128_t w[4]) {
    w[0] = wasm_v128_and(v, wasm_i16x8_splat(0x000F));
    w[1] = wasm_v128_and(v, wasm_i16x8_splat(0x00F0));
    w[2] = wasm_v128_and(v, wasm_i16x8_splat(0x0F00));
    w[3] = wasm_u16x8_shr(v, 12);
}

/* Q4_0 / Q4_1's 32 nibbles at qs, masked four ways. */
KQ_INLINE void nibs(const uint8_t *qs, v128_t w[4]) { nib_masks(kq_load(qs), w); }

/* Two vectors of int8 pairs read as i16: even and odd bytes of each, in the high byte of an i16 (256 q). */
KQ_INLINE void byte_masks(v128_t v0, v128_t v1, v128_t w[4]) {
    const v128_t hb = wasm_i16x8_splat((int16_t)0xFF00);
    w[0] = wasm_i16x8_shl(v0, 8);
    w[1] = wasm_v128_and(v0, hb);
    w[2] = wasm_i16x8_shl(v1, 8);
    w[3] = wasm_v128_and(v1, hb);
}

/* Q8_0's 32 quants at qs, as byte_masks gives them. */
KQ_INLINE void bytes8(const uint8_t *qs, v128_t w[4]) { byte_masks(kq_load(qs), kq_load(qs + 16), w); }

/* A packed group's quants (Q4_0 or Q8_0) at qs, as xunpack gives them. */
KQ_INLINE void punpack(int kind, const uint8_t *qs, v128_t w[4]) {
    if (kind == K_Q4_0) nibs(qs, w);
    else bytes8(qs, w);
}

/* Weight block -> w[0..3], 2^s * the elements prep_acts pairs them with, as i16. */
KQ_INLINE void xunpack(int kind, const uint8_t *b, v128_t w[4]) {
    if (nib_kind(kind)) {
        nibs(b + (kind == K_Q4_1 ? 4 : 2), w);
    } else if (kind == K_Q8_0) {
        bytes8(b + 2, w);
    } else { /* Q5_0, Q5_1: unpack's values (s = 0) */
        unpack(kind, b, w);
    }
}

KQ_INLINE size_t xbytes(int kind) {
    switch (kind) {
    case K_Q4_0: return sizeof(block_q4_0);
    case K_Q4_1: return sizeof(block_q4_1);
    case K_Q5_0: return sizeof(block_q5_0);
    case K_Q5_1: return sizeof(block_q5_1);
    default: return sizeof(block_q8_0);
    }
}

/* 2^(112 - s) for the activation scales (finite: a half is below 2^16). */
KQ_INLINE float xdscale(int kind) { return kind == K_Q5_0 || kind == K_Q5_1 ? 0x1p112f : 0x1p104f; }

/* Weight halves given in the top 16 bits of i32 lanes (low bits ignored) -> h * 2^-112 as f32; the
 * running max *sp of (x << 1) reaches 0xF8000000 when a half is Inf / NaN. */
KQ_INLINE v128_t xhalf(v128_t x, v128_t *sp) {
    *sp = wasm_u32x4_max(*sp, wasm_i32x4_shl(x, 1));
    return wasm_v128_and(wasm_i32x4_shr(x, 3), wasm_i32x4_splat((int32_t)0x8FFFE000));
}

KQ_INLINE int xspecial(v128_t sp) {
    sp = wasm_u32x4_max(sp, wasm_i32x4_shuffle(sp, sp, 2, 3, 0, 1));
    sp = wasm_u32x4_max(sp, wasm_i32x4_shuffle(sp, sp, 1, 0, 3, 2));
    return wasm_u32x4_extract_lane(sp, 0) >= 0xF8000000u;
}

/* One weight block (unpacked) against one prepared activation block: i32 lanes summing to 2^s sumi
 * (before Q4_0's correction). */
KQ_INLINE v128_t xsum(const v128_t q[4], const v128_t *p) {
    return wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_dot_i16x8(q[0], p[0]), wasm_i32x4_dot_i16x8(q[1], p[1])),
                          wasm_i32x4_add(wasm_i32x4_dot_i16x8(q[2], p[2]), wasm_i32x4_dot_i16x8(q[3], p[3])));
}

/* [sum(a), sum(b), sum(c), sum(d)]: four blocks' integer sums side by side. */
KQ_INLINE v128_t xsum4(v128_t a, v128_t b, v128_t c, v128_t d) {
    const v128_t ab = wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 1, 4, 5), wasm_i32x4_shuffle(a, b, 2, 3, 6, 7));
    const v128_t cd = wasm_i32x4_add(wasm_i32x4_shuffle(c, d, 0, 1, 4, 5), wasm_i32x4_shuffle(c, d, 2, 3, 6, 7));
    return wasm_i32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 2, 4, 6), wasm_i32x4_shuffle(ab, cd, 1, 3, 5, 7));
}

/* acc + d * (float)s on four lanes, fused or not as KQ_EXACT_FMA says. */
KQ_INLINE v128_t xstep(v128_t acc, v128_t d, v128_t s) {
    return kq_fma4(d, wasm_f32x4_convert_i32x4(s), acc);
}

/* Matrix-vector tile: G groups of 4 rows, one token (yp / yd / yc / ys: its nb prepared blocks), each
 * group's sums side by side in one accumulator. */
#define XG 2 /* groups of 4 rows in a full tile */
KQ_INLINE int xtile_mv(int kind, const uint8_t *w, size_t ws, const v128_t *yp, const float *yd, const int32_t *yc,
                       const float *ys, int64_t nb, float *y, int G) {
    const size_t wb = xbytes(kind);
    v128_t acc[XG], summ[XG], sp = wasm_i32x4_splat(0);
    KQ_UNROLL
    for (int g = 0; g < G; g++) acc[g] = summ[g] = wasm_f32x4_splat(0.0f);
    KQ_PIN_SLOT;
    for (int64_t i = 0; i < nb; i++) {
        const v128_t *p = yp + (size_t)i * XP_V;
        KQ_UNROLL
        for (int g = 0; g < G; g++) {
            const uint8_t *b0 = w + (size_t)(4 * g) * ws + (size_t)i * wb;
            v128_t s[4];
            KQ_UNROLL
            for (int r = 0; r < 4; r++) {
                v128_t q[4];
                xunpack(kind, b0 + (size_t)r * ws, q);
                s[r] = xsum(q, p);
                KQ_PIN(s[r]);
            }
            v128_t si = xsum4(s[0], s[1], s[2], s[3]);
            if (kind == K_Q4_0) si = wasm_i32x4_sub(si, wasm_v128_load32_splat(yc + i));
            v128_t x = wasm_v128_load16_splat(b0);
            x = wasm_v128_load16_lane(b0 + ws, x, 3);
            x = wasm_v128_load16_lane(b0 + 2 * ws, x, 5);
            x = wasm_v128_load16_lane(b0 + 3 * ws, x, 7);
            acc[g] = xstep(acc[g], wasm_f32x4_mul(xhalf(x, &sp), wasm_v128_load32_splat(yd + i)), si);
            if (has_min(kind)) { /* the 4 rows' min terms: fmaf(m, s, summ), m exact from its bits */
                v128_t xm = wasm_v128_load16_splat(b0 + 2);
                xm = wasm_v128_load16_lane(b0 + 2 + ws, xm, 3);
                xm = wasm_v128_load16_lane(b0 + 2 + 2 * ws, xm, 5);
                xm = wasm_v128_load16_lane(b0 + 2 + 3 * ws, xm, 7);
                const v128_t m = wasm_f32x4_mul(xhalf(xm, &sp), wasm_f32x4_splat(0x1p112f));
                summ[g] = kq_fma4(m, wasm_v128_load32_splat(ys + i), summ[g]);
            }
        }
    }
    KQ_UNROLL
    for (int g = 0; g < G; g++) wasm_v128_store(y + 4 * g, has_min(kind) ? wasm_f32x4_add(acc[g], summ[g]) : acc[g]);
    return xspecial(sp);
}

/* Batch tile: 2 rows x np tokens (np even, <= XT). Weights stay put: each block of the two rows is
 * unpacked once into 8 vectors and run over the tokens two at a time; accumulator j holds rows 0, 0,
 * 1, 1 x tokens 2j, 2j+1, 2j, 2j+1 and lives in memory (the unpack is the costly part). w is the
 * first of two plain rows, ws apart. */
#define XT 32
KQ_INLINE int xtile_ws(int kind, const uint8_t *w, size_t ws, const v128_t *yp, const float *yd, const int32_t *yc,
                       const float *ys, int64_t nb, int64_t n, int64_t np, float *y, int64_t ldy) {
    const size_t bs = xbytes(kind);
    v128_t acc[XT / 2], summ[XT / 2], sp = wasm_i32x4_splat(0);
    for (int64_t j = 0; j < np / 2; j++) acc[j] = summ[j] = wasm_f32x4_splat(0.0f);
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *b0 = w + (size_t)i * bs, *d0 = b0, *d1 = b0 + ws;
        v128_t q0[4], q1[4];
        xunpack(kind, b0, q0);
        xunpack(kind, b0 + ws, q1);
        v128_t x = wasm_v128_load16_splat(d0);
        x = wasm_v128_load16_lane(d1, x, 5);
        const v128_t dw = xhalf(wasm_v128_load16_lane(d1, x, 7), &sp);
        const v128_t *p = yp + (size_t)i * (size_t)np * XP_V;
        const size_t o = (size_t)i * (size_t)np;
        if (has_min(kind)) { /* min terms of the two rows */
            v128_t xm = wasm_v128_load16_splat(b0 + 2);
            xm = wasm_v128_load16_lane(b0 + 2 + ws, xm, 5);
            xm = wasm_v128_load16_lane(b0 + 2 + ws, xm, 7);
            const v128_t m = wasm_f32x4_mul(xhalf(xm, &sp), wasm_f32x4_splat(0x1p112f));
            for (int64_t j = 0; j < np / 2; j++)
                summ[j] = kq_fma4(m, wasm_v128_load64_splat(ys + o + 2 * j), summ[j]);
        }
        for (int64_t j = 0; j < np / 2; j++, p += 2 * XP_V) {
            v128_t si = xsum4(xsum(q0, p), xsum(q0, p + XP_V), xsum(q1, p), xsum(q1, p + XP_V));
            if (kind == K_Q4_0) si = wasm_i32x4_sub(si, wasm_v128_load64_splat(yc + o + 2 * j));
            acc[j] = xstep(acc[j], wasm_f32x4_mul(dw, wasm_v128_load64_splat(yd + o + 2 * j)), si);
        }
    }
    for (int64_t t = 0; t < n; t++) {
        const v128_t a = has_min(kind) ? wasm_f32x4_add(acc[t / 2], summ[t / 2]) : acc[t / 2];
        float f[4];
        wasm_v128_store(f, a);
        y[t * ldy] = f[t % 2];
        y[t * ldy + 1] = f[2 + t % 2];
    }
    return xspecial(sp);
}

/* ---- Q4_0 and Q8_0 packed by 8 rows (kq_pack_*): block i of a group is the 8 rows' scales (16 bytes)
 * then their quants (8 x 16 or 8 x 32 bytes), so a matrix-vector pass reads one sequential stream
 * instead of 8 (hardware prefetch keeps up: 1.25-1.35x from memory) and takes the 8 scales in one
 * load. ---- */
#define PK_ROWS 8

static void pack_rows8(int kind, void *w, size_t ws, int64_t k, int64_t nr, void *scratch) {
    const int64_t nb = k / QK32;
    const size_t bb = xbytes(kind), qb = bb - 2;
    uint8_t *tmp = scratch;
    for (int64_t g = 0; g + PK_ROWS <= nr; g += PK_ROWS) {
        uint8_t *grp = (uint8_t *)w + (size_t)g * ws;
        memcpy(tmp, grp, PK_ROWS * ws);
        for (int64_t i = 0; i < nb; i++) {
            const uint8_t *src = tmp + (size_t)i * bb;
            uint8_t *dst = grp + (size_t)i * PK_ROWS * bb;
            v128_t d = wasm_v128_load16_splat(src);
            d = wasm_v128_load16_lane(src + ws, d, 1);
            d = wasm_v128_load16_lane(src + 2 * ws, d, 2);
            d = wasm_v128_load16_lane(src + 3 * ws, d, 3);
            d = wasm_v128_load16_lane(src + 4 * ws, d, 4);
            d = wasm_v128_load16_lane(src + 5 * ws, d, 5);
            d = wasm_v128_load16_lane(src + 6 * ws, d, 6);
            d = wasm_v128_load16_lane(src + 7 * ws, d, 7);
            wasm_v128_store(dst, d);
            for (int r = 0; r < PK_ROWS; r++)
                for (size_t c = 0; c < qb; c += 16)
                    wasm_v128_store(dst + 16 + qb * (size_t)r + c, kq_load(src + (size_t)r * ws + 2 + c));
        }
    }
}

void kq_pack_q4_0(void *w, size_t ws, int64_t k, int64_t nr, void *scratch) { pack_rows8(K_Q4_0, w, ws, k, nr, scratch); }
void kq_pack_q8_0(void *w, size_t ws, int64_t k, int64_t nr, void *scratch) { pack_rows8(K_Q8_0, w, ws, k, nr, scratch); }

/* The scalar reference for rows [r, r + R) of the packed group at grp, tokens [0, n). */
static void redo_packed(int kind, const uint8_t *grp, int r, int R, const uint8_t *x, size_t xs, int64_t k, int64_t n,
                        float *y, int64_t ldy) {
#ifdef KQ_SIMD_STATS
    kq_simd_redone++;
#endif
    const size_t bb = xbytes(kind), qb = bb - 2;
    float (*dot)(const uint8_t *, const uint8_t *, size_t, const void *, int64_t) =
        kind == K_Q4_0 ? kq_dot_q4_0_strided : kq_dot_q8_0_strided;
    for (int64_t t = 0; t < n; t++)
        for (int j = 0; j < R; j++)
            y[t * ldy + j] = dot(grp + 2 * (r + j), grp + 2 * PK_ROWS + qb * (size_t)(r + j), PK_ROWS * bb,
                                 x + (size_t)t * xs, k);
}

/* Matrix-vector tile of a packed group: rows 0, 2, 4, 6 in one accumulator, 1, 3, 5, 7 in the other
 * (the scales' even and odd halves), with the steps of xtile_mv. */
KQ_INLINE int xtile_mv_packed(int kind, const uint8_t *w, const v128_t *yp, const float *yd, const int32_t *yc,
                              int64_t nb, float *y) {
    const size_t bs = PK_ROWS * xbytes(kind), qb = xbytes(kind) - 2;
    const v128_t mask = wasm_i32x4_splat((int32_t)0x8FFFE000);
    v128_t acc0 = wasm_f32x4_splat(0.0f), acc1 = acc0, sp = wasm_i32x4_splat(0);
    KQ_PIN_SLOT;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *b = w + (size_t)i * bs;
        const v128_t *p = yp + (size_t)i * XP_V;
        v128_t s[PK_ROWS];
        KQ_UNROLL
        for (int r = 0; r < PK_ROWS; r++) {
            v128_t q[4];
            punpack(kind, b + 2 * PK_ROWS + qb * (size_t)r, q);
            s[r] = xsum(q, p);
            KQ_PIN(s[r]);
        }
        /* halves in the top 16 bits of i32 lanes, as xhalf wants; (h << 1) >= 0xF800 is Inf / NaN */
        const v128_t h = wasm_v128_load(b);
        sp = wasm_u16x8_max(sp, wasm_i16x8_shl(h, 1));
        const v128_t de = wasm_v128_and(wasm_i32x4_shr(wasm_i32x4_shl(h, 16), 3), mask);
        const v128_t dd = wasm_v128_and(wasm_i32x4_shr(h, 3), mask);
        const v128_t dx = wasm_v128_load32_splat(yd + i);
        v128_t se = xsum4(s[0], s[2], s[4], s[6]), so = xsum4(s[1], s[3], s[5], s[7]);
        if (kind == K_Q4_0) {
            const v128_t c = wasm_v128_load32_splat(yc + i);
            se = wasm_i32x4_sub(se, c);
            so = wasm_i32x4_sub(so, c);
        }
        acc0 = xstep(acc0, wasm_f32x4_mul(de, dx), se);
        acc1 = xstep(acc1, wasm_f32x4_mul(dd, dx), so);
    }
    wasm_v128_store(y, wasm_i32x4_shuffle(acc0, acc1, 0, 4, 1, 5));
    wasm_v128_store(y + 4, wasm_i32x4_shuffle(acc0, acc1, 2, 6, 3, 7));
    /* each 16-bit lane into the top of an i32 lane, as xspecial reads them */
    return xspecial(wasm_u32x4_max(wasm_i32x4_shl(sp, 16), wasm_v128_and(sp, wasm_i32x4_splat((int32_t)0xFFFF0000))));
}

/* Batch tile of packed Q4_0 / Q8_0 with rows as lanes (xtile_lanes). Each quad (4 rows) of a block has
 * its quant runs transposed so that vector v holds bytes 4v..4v+3 of each row (i16 lanes 2r, 2r + 1 are
 * row r). Masked as nibs (four ways) or bytes8 (two) does, each i32x4.dot against an activation pair
 * splat over the lanes adds to the 4 rows' sums in place: no horizontal reduction (xsum4). The pairs
 * are i32 lanes of prep_acts' vectors; splat_acts writes the splats out (QS_V vectors per token and
 * block) because V8 gives load32_splat no address offset (each would cost an address register). */
#define QS_V 16 /* splat vectors per token and block */
#define QB 32   /* blocks per pass over all rows, so that their splats (QB x 32 tokens x 256 bytes) stay in L2 */

/* The splats of tokens [t0, t1) of prep_acts' chunk (np tokens, nb blocks), splat j = the pair that
 * transposed vector j / 4 (Q4_0) or j / 2 (Q8_0) meets in its masked copy j % 4 or j % 2. */
static void splat_acts(int kind, const v128_t *yp, int64_t nb, int64_t np, int64_t t0, int64_t t1, v128_t *yq) {
    for (int64_t i = 0; i < nb; i++)
        for (int64_t t = t0; t < t1; t++) {
            const v128_t *p = yp + (size_t)(i * np + t) * XP_V;
            v128_t *q = yq + (size_t)(i * np + t) * QS_V;
            if (kind == K_Q4_0) {
                KQ_UNROLL
                for (int v = 0; v < 4; v++) {
                    KQ_UNROLL
                    for (int m = 0; m < 4; m++) q[4 * v + m] = kq_splat_lane(p[m], v);
                }
            } else { /* Q8_0: p = even / odd elements of 0..15, then of 16..31 */
                KQ_UNROLL
                for (int v = 0; v < 8; v++) {
                    KQ_UNROLL
                    for (int m = 0; m < 2; m++) q[2 * v + m] = kq_splat_lane(p[2 * (v / 4) + m], v % 4);
                }
            }
        }
}

/* Batch tile of a packed Q4_0 / Q8_0 group, rows as lanes: 8 rows (two quads) x np tokens, in four
 * passes over the transposed vectors (Q4_0: one per pass, masked four ways; Q8_0: two per pass, each
 * split into even and odd bytes, in the high byte of i16 lanes as bytes8 does). Per pass, the two
 * quads' 4 masked copies each (8 registers) stay put while every token passes: 4 splat loads feed 8
 * dots. The integer sums of (quad, token) wait in S between passes, and those stores order V8's loads,
 * so nothing is pinned and nothing spills. On expert and dense shapes, Q4_0 runs 1.12-1.19x the 4-row
 * tile this replaced (a token group of 4 sharing one quad's masks: 1 splat load per dot) for n = 5 to
 * 64, and Q8_0 1.25-1.30x the 2-row tile (xtile_ws) for n >= 16. */
KQ_INLINE int xtile_lanes(int kind, const uint8_t *w, const v128_t *yq, const float *yd, const int32_t *yc,
                          int64_t nb, int64_t n, int64_t np, float *y, int64_t ldy, int first) {
    const size_t bs = PK_ROWS * xbytes(kind), qb = xbytes(kind) - 2;
    const int nv = kind == K_Q4_0 ? 4 : 8; /* transposed vectors per quad */
    v128_t acc[2 * XT], S[2 * XT], sp = wasm_i32x4_splat(0);
    for (int64_t t = 0; t < np; t++) {
        const bool z = first || t >= n;
        acc[2 * t] = z ? wasm_f32x4_splat(0.0f) : wasm_v128_load(y + t * ldy);
        acc[2 * t + 1] = z ? wasm_f32x4_splat(0.0f) : wasm_v128_load(y + t * ldy + 4);
    }
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *b = w + (size_t)i * bs;
        volatile v128_t R[2][8]; /* R[q][v]: quad q's transposed vector v (bytes 4v..4v+3 of each row) */
        KQ_UNROLL
        for (int q = 0; q < 2; q++) {
            KQ_UNROLL
            for (int hh = 0; hh < nv / 4; hh++) {
                const uint8_t *qs = b + 2 * PK_ROWS + 4 * qb * (size_t)q + 16 * (size_t)hh;
                const v128_t A = kq_load(qs), B = kq_load(qs + qb), C = kq_load(qs + 2 * qb), D = kq_load(qs + 3 * qb);
                const v128_t t0 = wasm_i32x4_shuffle(A, B, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(C, D, 0, 4, 1, 5);
                const v128_t t2 = wasm_i32x4_shuffle(A, B, 2, 6, 3, 7), t3 = wasm_i32x4_shuffle(C, D, 2, 6, 3, 7);
                R[q][4 * hh] = wasm_i64x2_shuffle(t0, t1, 0, 2);
                R[q][4 * hh + 1] = wasm_i64x2_shuffle(t0, t1, 1, 3);
                R[q][4 * hh + 2] = wasm_i64x2_shuffle(t2, t3, 0, 2);
                R[q][4 * hh + 3] = wasm_i64x2_shuffle(t2, t3, 1, 3);
            }
        }
        /* each quad's halves into the top 16 bits of i32 lanes, as xhalf wants */
        const v128_t h = wasm_v128_load(b), z = wasm_i32x4_splat(0);
        const v128_t dw0 = xhalf(wasm_i16x8_shuffle(z, h, 0, 8, 0, 9, 0, 10, 0, 11), &sp);
        const v128_t dw1 = xhalf(wasm_i16x8_shuffle(z, h, 0, 12, 0, 13, 0, 14, 0, 15), &sp);
        const v128_t *pq = yq + (size_t)i * (size_t)np * QS_V;
        const float *d = yd + (size_t)i * (size_t)np;
        const int32_t *c = yc + (size_t)i * (size_t)np;
        KQ_UNROLL
        for (int v = 0; v < 4; v++) {
            v128_t q0[4], q1[4];
            if (kind == K_Q4_0) {
                nib_masks(R[0][v], q0);
                nib_masks(R[1][v], q1);
            } else {
                byte_masks(R[0][2 * v], R[0][2 * v + 1], q0);
                byte_masks(R[1][2 * v], R[1][2 * v + 1], q1);
            }
            v128_t *s = S;
            for (const v128_t *a = pq + 4 * v, *const end = a + np * QS_V; a < end; a += 2 * QS_V, s += 4) {
                KQ_UNROLL
                for (int u = 0; u < 2; u++) { /* np is even */
                    const v128_t *au = a + u * QS_V;
                    /* one chain per quad, each splat feeding both in turn: 8 masks, 4 splats, 2 sums live */
                    v128_t s0 = wasm_i32x4_dot_i16x8(q0[0], au[0]), s1 = wasm_i32x4_dot_i16x8(q1[0], au[0]);
                    if (v) s0 = wasm_i32x4_add(s[2 * u], s0), s1 = wasm_i32x4_add(s[2 * u + 1], s1);
                    KQ_UNROLL
                    for (int m = 1; m < 4; m++) {
                        s0 = wasm_i32x4_add(s0, wasm_i32x4_dot_i16x8(q0[m], au[m]));
                        s1 = wasm_i32x4_add(s1, wasm_i32x4_dot_i16x8(q1[m], au[m]));
                    }
                    s[2 * u] = s0, s[2 * u + 1] = s1;
                }
            }
        }
        /* acc += (d_w * d_x) * (S - yc), each (row, token) as in xtile_ws */
        const v128_t *s = S;
        v128_t *f = acc;
        for (int64_t t = 0; t < np; t += 2, s += 4, f += 4)
            KQ_UNROLL
            for (int u = 0; u < 2; u++) {
                const v128_t dx = wasm_v128_load32_splat(d + t + u);
                const v128_t s0 = kind == K_Q4_0 ? wasm_i32x4_sub(s[2 * u], wasm_v128_load32_splat(c + t + u)) : s[2 * u];
                const v128_t s1 = kind == K_Q4_0 ? wasm_i32x4_sub(s[2 * u + 1], wasm_v128_load32_splat(c + t + u)) : s[2 * u + 1];
                f[2 * u] = xstep(f[2 * u], wasm_f32x4_mul(dw0, dx), s0);
                f[2 * u + 1] = xstep(f[2 * u + 1], wasm_f32x4_mul(dw1, dx), s1);
            }
    }
    for (int64_t t = 0; t < n; t++) {
        float f[8];
        wasm_v128_store(f, acc[2 * t]);
        wasm_v128_store(f + 4, acc[2 * t + 1]);
        memcpy(y + t * ldy, f, sizeof f);
    }
    return xspecial(sp);
}

/* Not inlined: inside xdrive, V8's code for such loops ran slower. */
typedef int (*xlanes_fn)(const uint8_t *, const v128_t *, const float *, const int32_t *, int64_t, int64_t, int64_t,
                         float *, int64_t, int);
__attribute__((noinline)) static int xlanes_q4_0(const uint8_t *w, const v128_t *yq, const float *yd, const int32_t *yc,
                                                 int64_t nb, int64_t n, int64_t np, float *y, int64_t ldy, int first) {
    return xtile_lanes(K_Q4_0, w, yq, yd, yc, nb, n, np, y, ldy, first);
}
__attribute__((noinline)) static int xlanes_q8_0(const uint8_t *w, const v128_t *yq, const float *yd, const int32_t *yc,
                                                 int64_t nb, int64_t n, int64_t np, float *y, int64_t ldy, int first) {
    return xtile_lanes(K_Q8_0, w, yq, yd, yc, nb, n, np, y, ldy, first);
}

typedef int (*xmv_fn)(const uint8_t *, size_t, const v128_t *, const float *, const int32_t *, const float *,
                      int64_t, float *);
typedef int (*xws_fn)(const uint8_t *, size_t, const v128_t *, const float *, const int32_t *, const float *, int64_t,
                      int64_t, int64_t, float *, int64_t);

#define XTILES(NAME, KIND)                                                                                   \
    static int NAME##_mv(const uint8_t *w, size_t ws, const v128_t *yp, const float *yd, const int32_t *yc,   \
                         const float *ys, int64_t nb, float *y) {                                             \
        return xtile_mv(KIND, w, ws, yp, yd, yc, ys, nb, y, XG);                                              \
    }                                                                                                         \
    static int NAME##_mv4(const uint8_t *w, size_t ws, const v128_t *yp, const float *yd, const int32_t *yc,  \
                          const float *ys, int64_t nb, float *y) {                                            \
        return xtile_mv(KIND, w, ws, yp, yd, yc, ys, nb, y, 1);                                               \
    }                                                                                                         \
    static int NAME##_ws(const uint8_t *w, size_t ws, const v128_t *yp, const float *yd, const int32_t *yc,   \
                         const float *ys, int64_t nb, int64_t n, int64_t np, float *y, int64_t ldy) {         \
        return xtile_ws(KIND, w, ws, yp, yd, yc, ys, nb, n, np, y, ldy);                                      \
    }

XTILES(xq4_0, K_Q4_0)
XTILES(xq8_0, K_Q8_0)
XTILES(xq5_0, K_Q5_0)
XTILES(xq4_1, K_Q4_1)
XTILES(xq5_1, K_Q5_1)

#define XTILES_PACKED(NAME, KIND)                                                                            \
    static int NAME##_mv_packed(const uint8_t *w, size_t ws, const v128_t *yp, const float *yd,               \
                                const int32_t *yc, const float *ys, int64_t nb, float *y) {                   \
        (void)ws, (void)ys;                                                                                   \
        return xtile_mv_packed(KIND, w, yp, yd, yc, nb, y);                                                   \
    }

XTILES_PACKED(xq4_0, K_Q4_0)
XTILES_PACKED(xq8_0, K_Q8_0)

/* The tiles of a layout: plain rows, or (mv8 non-NULL) packed groups of 8 rows first, whose batches take
 * the rows-as-lanes tile. */
typedef struct {
    xmv_fn mv, mv4, mv8;
    xws_fn ws;
    xlanes_fn lanes;
} xtiles;

/* Prepared activations, the form every tile reads: chunks of up to XT tokens, each np tokens (n == 1: 1;
 * else the chunk's count rounded up to even) by nb blocks of XP_V vectors (yp), for Q4_0 batches the
 * splats (yq), then the scales (yd), sum terms (ys) and corrections (yc). */
typedef struct {
    v128_t *yp, *yq;
    float *yd, *ys;
    int32_t *yc;
} xacts;

/* Whether shared preparation (xprep) makes splats: a Q4_0 / Q8_0 batch may meet packed rows (xtile_lanes). */
KQ_INLINE bool xsplats(int kind, int64_t n) { return (kind == K_Q4_0 || kind == K_Q8_0) && n > 1; }

/* Bytes of one chunk (room for XT tokens; 1 when n == 1), with or without splats. */
KQ_INLINE size_t xchunk_bytes(int64_t nb, int64_t n, bool splats) {
    const size_t per = XP_V * sizeof(v128_t) + (splats ? QS_V * sizeof(v128_t) : 0) + 2 * sizeof(float) + sizeof(int32_t);
    return (size_t)(nb * (n == 1 ? 1 : XT)) * per;
}

KQ_INLINE size_t xprep_bytes(int kind, int64_t nb, int64_t n) {
    return (size_t)((n + XT - 1) / XT) * xchunk_bytes(nb, n, xsplats(kind, n));
}

/* The arrays of a chunk of np tokens at base. */
static xacts xlayout(void *base, int64_t nb, int64_t np, bool splats) {
    const size_t cnt = (size_t)(nb * np);
    xacts a;
    a.yp = base;
    a.yq = a.yp + cnt * XP_V;
    a.yd = (float *)(a.yq + (splats ? cnt * QS_V : 0));
    a.ys = a.yd + cnt;
    a.yc = (int32_t *)(a.ys + cnt);
    return a;
}

/* Prepare tokens [lo, hi) of a chunk of T tokens (x: its row 0), padded to np, into its arrays a. */
static void prep_chunk(int kind, const uint8_t *x, size_t xs, int64_t nb, int64_t T, int64_t np, int64_t lo,
                       int64_t hi, bool splats, const xacts *a) {
    prep_acts(kind, x, xs, nb, T, np, lo, hi, xdscale(kind), a->yp, a->yd, a->yc, a->ys);
    if (splats) splat_acts(kind, a->yp, nb, np, lo, hi == T ? np : hi, a->yq);
}

KQ_INLINE int64_t xchunk_tokens(int64_t n, int64_t c) { return n - c * XT < XT ? n - c * XT : XT; }
KQ_INLINE int64_t xpadded(int64_t n, int64_t T) { return n == 1 ? 1 : T + (T & 1); }

/* Prepare tokens [t0, t1) of n activation rows x (row stride xs) into pre (xprep_bytes, 16-byte aligned). */
static void xprep(int kind, const uint8_t *x, size_t xs, int64_t nb, int64_t n, int64_t t0, int64_t t1, void *pre) {
    for (int64_t t = t0; t < t1;) {
        const int64_t c = t / XT, T = xchunk_tokens(n, c), np = xpadded(n, T);
        const int64_t lo = t - c * XT, hi = t1 - c * XT < T ? t1 - c * XT : T;
        const xacts a = xlayout((uint8_t *)pre + (size_t)c * xchunk_bytes(nb, n, xsplats(kind, n)), nb, np, xsplats(kind, n));
        prep_chunk(kind, x + (size_t)(c * XT) * xs, xs, nb, T, np, lo, hi, xsplats(kind, n), &a);
        t = c * XT + hi;
    }
}

/* One token: 4 * XG-row tiles, then 4-row ones; several: tokens in chunks of up to XT (their prepared
 * blocks stay in cache while every 2-row tile runs over them). Rows left over, and tiles with an Inf /
 * NaN weight scale, use the scalar reference. Every (row, token) gets the same operations in any tile,
 * so results do not depend on how rows and tokens are split. Packed (tl->mv8): rows [0, nr - nr % 8)
 * are groups of 8 (pack_rows8; w starts a group), the rest plain. pre: the activations prepared by
 * xprep (shared by calls on other rows), or NULL to prepare them here. */
static void xdrive(int kind, const xtiles *tl, float (*dot)(const void *, const void *, int64_t), const void *pre,
                   KQ_GEMM_ARGS) {
    const uint8_t *wb = w, *xb = x;
    const int64_t nb = k / QK32;
    const int64_t npk = tl->mv8 ? nr - nr % PK_ROWS : 0; /* packed rows */
    const bool lanes = tl->lanes && n > 1 && npk > 0;
    const bool splats = pre ? xsplats(kind, n) : lanes; /* in a shared buffer, or only if used */
    void *heap = NULL;
    if (!pre) { /* one chunk at a time */
        heap = malloc(xchunk_bytes(nb, n, splats) + 16);
        if (!heap) {
            for (int64_t r = 0; r < npk; r += PK_ROWS) redo_packed(kind, wb + (size_t)r * ws, 0, PK_ROWS, xb, xs, k, n, y + r, ldy);
            kq_redo(dot, wb + (size_t)npk * ws, ws, xb, xs, k, nr - npk, n, y + npk, ldy);
            return;
        }
    }
    int64_t r = 0;
    bool bad_lanes = false;
    for (int64_t t = 0; t < n; t += XT) {
        const int64_t T = xchunk_tokens(n, t / XT), TP = xpadded(n, T);
        xacts a;
        if (pre) {
            a = xlayout((uint8_t *)pre + (size_t)(t / XT) * xchunk_bytes(nb, n, splats), nb, TP, splats);
        } else {
            a = xlayout((void *)(((uintptr_t)heap + 15) & ~(uintptr_t)15), nb, TP, splats);
            prep_chunk(kind, xb + (size_t)t * xs, xs, nb, T, TP, 0, T, splats, &a);
        }
        if (lanes) /* blocks outermost, QB at a time, so that their splats stay in cache over all rows */
            for (int64_t b0 = 0; b0 < nb; b0 += QB)
                for (r = 0; r < npk; r += PK_ROWS)
                    bad_lanes |= tl->lanes(wb + (size_t)r * ws + (size_t)b0 * PK_ROWS * xbytes(kind),
                                           a.yq + (size_t)(b0 * TP) * QS_V, a.yd + b0 * TP, a.yc + b0 * TP,
                                           nb - b0 < QB ? nb - b0 : QB, T, TP, y + t * ldy + r, ldy, b0 == 0);
        for (r = lanes ? npk : 0;;) {
            const bool pk = r < npk;
            const int R = n > 1 ? 2 : pk ? PK_ROWS : nr - r >= 4 * XG ? 4 * XG : 4;
            if (r + R > nr) break;
            const uint8_t *wt = wb + (size_t)(pk ? r - r % PK_ROWS : r) * ws;
            float *yt = y + t * ldy + r;
            const int bad = n > 1 ? tl->ws(wt, ws, a.yp, a.yd, a.yc, a.ys, nb, T, TP, yt, ldy)
                                  : (pk ? tl->mv8 : R == 4 ? tl->mv4 : tl->mv)(wt, ws, a.yp, a.yd, a.yc, a.ys, nb, yt);
            if (bad && pk) redo_packed(kind, wt, (int)(r % PK_ROWS), R, xb + (size_t)t * xs, xs, k, T, yt, ldy);
            else if (bad) kq_redo(dot, wt, ws, xb + (size_t)t * xs, xs, k, R, T, yt, ldy);
            r += R;
        }
    }
    if (r < nr) kq_redo(dot, wb + (size_t)r * ws, ws, xb, xs, k, nr - r, n, y + r, ldy);
    if (bad_lanes) /* an Inf / NaN weight scale (rare): its sums are lost in y, so all packed rows again */
        for (r = 0; r < npk; r += PK_ROWS) redo_packed(kind, wb + (size_t)r * ws, 0, PK_ROWS, xb, xs, k, n, y + r, ldy);
    free(heap);
}

#define XGEMM(NAME, KIND, DOT)                                                                                \
    static const xtiles x##NAME##_plain = {x##NAME##_mv, x##NAME##_mv4, 0, x##NAME##_ws, NULL};               \
    void kq_gemm_##NAME(KQ_GEMM_ARGS) { xdrive(KIND, &x##NAME##_plain, DOT, NULL, w, ws, x, xs, k, nr, n, y, ldy); }
XGEMM(q4_0, K_Q4_0, kq_dot_q4_0)
XGEMM(q8_0, K_Q8_0, kq_dot_q8_0)
XGEMM(q5_0, K_Q5_0, kq_dot_q5_0)
XGEMM(q4_1, K_Q4_1, kq_dot_q4_1)
XGEMM(q5_1, K_Q5_1, kq_dot_q5_1)

static const xtiles xq4_0_packed = {xq4_0_mv, xq4_0_mv4, xq4_0_mv_packed, xq4_0_ws, xlanes_q4_0};
static const xtiles xq8_0_packed = {xq8_0_mv, xq8_0_mv4, xq8_0_mv_packed, xq8_0_ws, xlanes_q8_0};

void kq_gemm_q4_0_packed(KQ_GEMM_ARGS) { xdrive(K_Q4_0, &xq4_0_packed, kq_dot_q4_0, NULL, w, ws, x, xs, k, nr, n, y, ldy); }
void kq_gemm_q8_0_packed(KQ_GEMM_ARGS) { xdrive(K_Q8_0, &xq8_0_packed, kq_dot_q8_0, NULL, w, ws, x, xs, k, nr, n, y, ldy); }

/* Activations prepared once for many calls (kq_prep in matmul.h): Q4_0 and Q8_0, plain or packed. */
size_t kq_simd_prep_bytes(uint32_t type, int64_t k, int64_t n) {
    return type == KQ_Q4_0 || type == KQ_Q8_0 ? xprep_bytes(type == KQ_Q4_0 ? K_Q4_0 : K_Q8_0, k / QK32, n) : 0;
}

void kq_simd_prep(uint32_t type, const void *x, size_t xs, int64_t k, int64_t n, int64_t t0, int64_t t1, void *pre) {
    if (type == KQ_Q4_0 || type == KQ_Q8_0) xprep(type == KQ_Q4_0 ? K_Q4_0 : K_Q8_0, x, xs, k / QK32, n, t0, t1, pre);
}

void kq_simd_gemm_prep(uint32_t type, bool packed, const void *pre, KQ_GEMM_ARGS) {
    if (type == KQ_Q4_0)
        xdrive(K_Q4_0, packed ? &xq4_0_packed : &xq4_0_plain, kq_dot_q4_0, pre, w, ws, x, xs, k, nr, n, y, ldy);
    else
        xdrive(K_Q8_0, packed ? &xq8_0_packed : &xq8_0_plain, kq_dot_q8_0, pre, w, ws, x, xs, k, nr, n, y, ldy);
}

#else
typedef int kq_simd_q8_unused; /* ISO C wants a declaration in every translation unit */
#endif
