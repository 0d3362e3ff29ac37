/* simd_k.c: wasm SIMD128 kernels for the 256-element super-block types Q4_K, Q5_K, Q6_K and IQ4_XS
 * against Q8_K activations. Q4_K / Q5_K / Q6_K: the activations are widened to i16 once per call and
 * a kernel takes one weight row x T (1..4) tokens, so each weight chunk is unpacked once for T tokens;
 * Q6_K against one token (the output head in decoding) has its own row kernel with less unpacking.
 * IQ4_XS: a tile of KQ_TR (4) weight rows x T (1..4) activation rows.
 *
 * Q4_K / Q5_K / Q6_K follow the scalar reference (quant_k.c) exactly: per super-block, the 32-element
 * chunk c gives 8 integer quads (lane j = elements 4j..4j+3 of the chunk), each times its sub-block's
 * integer scale, summed over the 8 chunks into 8 int32 lanes (exact); then one step
 * acc = d * lane + acc on 8 float lanes (kq_acc_fma; fused or not as KQ_EXACT_FMA says), hsum_float_8
 * at the end of the row. Min terms: Q4_K 4 float lanes per row (one step per super-block), Q5_K one
 * scalar per row, both added after the 8 lanes are reduced.
 * IQ4_XS follows its generic scalar order (quant_iq4.c): one integer sum per 32-element sub-block,
 * sum += (d4d8 * (ls - 32)) * sumi with a rounded multiply and add, here 4 rows in the 4 lanes. */
#include <stdlib.h>

#include "simd_common.h"

#ifdef __wasm_simd128__

enum { K_Q4_K, K_Q5_K, K_Q6_K };

KQ_INLINE size_t kbytes(int kind) {
    return kind == K_Q4_K ? sizeof(block_q4_K) : kind == K_Q5_K ? sizeof(block_q5_K) : sizeof(block_q6_K);
}

/* 32 activations -> even / odd elements of 0..15, even / odd elements of 16..31, as i16. */
KQ_INLINE void widen_y(const uint8_t *q8, v128_t y[4]) {
    const v128_t v0 = kq_load(q8), v1 = kq_load(q8 + 16);
    y[0] = kq_even_i8(v0);
    y[1] = kq_odd_i8(v0);
    y[2] = kq_even_i8(v1);
    y[3] = kq_odd_i8(v1);
}

/* Lane r of the result = the sum of the 4 lanes of v[r] (exact integer sums). */
KQ_INLINE v128_t hsum4x4(v128_t a, v128_t b, v128_t c, v128_t d) {
    const v128_t ab = wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 1, 4, 5), wasm_i32x4_shuffle(a, b, 2, 3, 6, 7));
    const v128_t cd = wasm_i32x4_add(wasm_i32x4_shuffle(c, d, 0, 1, 4, 5), wasm_i32x4_shuffle(c, d, 2, 3, 6, 7));
    return wasm_i32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 2, 4, 6), wasm_i32x4_shuffle(ab, cd, 1, 3, 5, 7));
}

/* Q4_K/Q5_K scales[12] -> u[0..1] the 8 scales (bytes), u[2..3] the 8 mins (llama.cpp's unpacking). */
KQ_INLINE void k4_scales(const uint8_t *p, uint32_t u[4]) {
    memcpy(u, p, 12);
    u[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
    const uint32_t aux = u[1] & 0x3f3f3f3fu;
    u[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
    u[2] = aux;
    u[0] &= 0x3f3f3f3fu;
}

/* Activations prepared once per gemm call, per token and super-block: chunk c (elements 32c..32c+31)
 * widened to i16 as 4 vectors (even / odd elements of 0..15, even / odd of 16..31), then the bsums of
 * the 32-element sub-blocks 0,2,4,6 and 1,3,5,7 as i32 (the Q4_K/Q5_K min terms). */
#define KP_V 34

static void prep_q8_K(const uint8_t *x, size_t xs, int64_t nb, int64_t n, v128_t *yp) {
    for (int64_t t = 0; t < n; t++) {
        for (int64_t i = 0; i < nb; i++, yp += KP_V) {
            const uint8_t *b = x + (size_t)t * xs + (size_t)i * sizeof(block_q8_K);
            for (int c = 0; c < 8; c++) widen_y(b + 4 + 32 * c, yp + 4 * c);
            const v128_t pa = wasm_i32x4_extadd_pairwise_i16x8(kq_load(b + 4 + QK_K));
            const v128_t pb = wasm_i32x4_extadd_pairwise_i16x8(kq_load(b + 4 + QK_K + 16));
            yp[32] = wasm_i32x4_shuffle(pa, pb, 0, 2, 4, 6);
            yp[33] = wasm_i32x4_shuffle(pa, pb, 1, 3, 5, 7);
        }
    }
}

/* Q6_K, half h, chunk k of the half (elements 128h + 32k ..), elements 16j..16j+15 of the chunk:
 * (q - 32) * scale as i16, even elements in *e, odd in *o. q's low 4 bits are nibble k / 2 of
 * ql[64h + 32(k & 1) + l], its top 2 bits bits 2k..2k+1 of qh[32h + l]; both are brought to their
 * place in each byte with u16 shifts by constants (bits leaking across bytes are masked off). */
KQ_INLINE void q6k_part(const uint8_t *b, int h, int k, int j, v128_t *e, v128_t *o) {
    const v128_t v = kq_load(b + 64 * h + 32 * (k & 1) + 16 * j), hv = kq_load(b + 128 + 32 * h + 16 * j);
    const v128_t m4 = wasm_i8x16_splat(0x0F), m2 = wasm_i8x16_splat(0x30);
    const v128_t nib = wasm_v128_and(k < 2 ? v : wasm_u16x8_shr(v, 4), m4);
    const v128_t hs = k == 0 ? wasm_i16x8_shl(hv, 4) : k == 1 ? wasm_i16x8_shl(hv, 2) : k == 2 ? hv : wasm_u16x8_shr(hv, 2);
    const v128_t q = wasm_i8x16_sub(wasm_v128_or(nib, wasm_v128_and(hs, m2)), wasm_i8x16_splat(32));
    /* the scale byte in both bytes of every i16 lane, then the high one sign-extended */
    const v128_t s = wasm_i16x8_shr(wasm_v128_load8_splat(b + 192 + 8 * h + 2 * k + j), 8);
    *e = wasm_i16x8_mul(kq_even_i8(q), s);
    *o = wasm_i16x8_mul(kq_odd_i8(q), s);
}

/* Q4_K / Q5_K, group g (sub-blocks 2g and 2g+1, from the low and high nibbles of qs[32g + l]),
 * elements 16j..16j+15 of each: q * scale as i16 (<= 31 * 63), even / odd elements in e[0] / o[0]
 * (sub-block 2g) and e[1] / o[1] (2g+1). Q5_K's 5th bit of element l of sub-block c is bit c of
 * qh[l]; qh is shifted right by 2g (a u16 shift: each byte's bits stay in it) so bits 0 and 1 of
 * each byte are those of the two sub-blocks. */
KQ_INLINE void q45k_part(int kind, const uint8_t *b, int g, int j, const uint8_t sc[8], v128_t e[2], v128_t o[2]) {
    const v128_t v = kq_load(b + (kind == K_Q5_K ? 48 : 16) + 32 * g + 16 * j);
    const v128_t m4 = wasm_i16x8_splat(0x0F);
    e[0] = wasm_v128_and(v, m4);
    o[0] = wasm_v128_and(wasm_u16x8_shr(v, 8), m4);
    e[1] = wasm_v128_and(wasm_u16x8_shr(v, 4), m4);
    o[1] = wasm_u16x8_shr(v, 12);
    if (kind == K_Q5_K) {
        const v128_t hv = wasm_u16x8_shr(kq_load(b + 16 + 16 * j), 2 * g), b4 = wasm_i16x8_splat(0x10);
        e[0] = wasm_v128_or(e[0], wasm_v128_and(wasm_i16x8_shl(hv, 4), b4));
        o[0] = wasm_v128_or(o[0], wasm_v128_and(wasm_u16x8_shr(hv, 4), b4));
        e[1] = wasm_v128_or(e[1], wasm_v128_and(wasm_i16x8_shl(hv, 3), b4));
        o[1] = wasm_v128_or(o[1], wasm_v128_and(wasm_u16x8_shr(hv, 5), b4));
    }
    KQ_UNROLL
    for (int h = 0; h < 2; h++) {
        const v128_t s = wasm_i16x8_splat(sc[2 * g + h]);
        e[h] = wasm_i16x8_mul(e[h], s);
        o[h] = wasm_i16x8_mul(o[h], s);
    }
}

/* One weight row against T tokens (yp: the first token's prepared blocks, x its Q8_K row). Per
 * super-block, chunk c's elements are unpacked once and multiplied by their sub-block's integer scale
 * in i16 (|q * scale| <= 32 * 128), then dotted with each token: lane j of the chunk's first / second
 * 16 elements gets elements 4j..4j+3 (i32x4.dot of the even and of the odd elements, added), summed
 * over the 8 chunks into 8 int32 lanes, exactly the reference's integers. */
KQ_INLINE void k_row(int kind, const uint8_t *w, const uint8_t *x, size_t xs, const v128_t *yp, int64_t nb,
                     float *y, int64_t ldy, int T) {
    const size_t wb = kbytes(kind), xb = sizeof(block_q8_K);
    KQ_PIN_SLOT;
    kq_acc acc[KQ_TT];
    v128_t accm[KQ_TT]; /* min terms: Q4_K 4 lanes; Q5_K lane 0 */
    KQ_UNROLL
    for (int t = 0; t < T; t++) {
        kq_acc_zero(&acc[t]);
        accm[t] = wasm_f32x4_splat(0.0f);
    }
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *b = w + (size_t)i * wb;
        const v128_t *yb[KQ_TT];
        v128_t lane[KQ_TT][2];
        KQ_UNROLL
        for (int t = 0; t < T; t++) {
            yb[t] = yp + ((size_t)t * (size_t)nb + (size_t)i) * KP_V;
            lane[t][0] = lane[t][1] = wasm_i32x4_splat(0);
        }
        if (kind == K_Q6_K) {
            _Pragma("clang loop unroll(disable)")
            for (int h = 0; h < 2; h++) {
                KQ_UNROLL
                for (int k = 0; k < 4; k++) {
                    KQ_UNROLL
                    for (int j = 0; j < 2; j++) {
                        v128_t e, o;
                        q6k_part(b, h, k, j, &e, &o);
                        KQ_UNROLL
                        for (int t = 0; t < T; t++) {
                            const v128_t *p = yb[t] + 16 * h + 4 * k + 2 * j;
                            lane[t][j] = wasm_i32x4_add(lane[t][j], kq_quad(e, o, p[0], p[1]));
                            KQ_PIN(lane[t][j]);
                        }
                    }
                }
            }
        }
        v128_t mne = wasm_i32x4_splat(0), mno = mne; /* mins of sub-blocks 0,2,4,6 and 1,3,5,7 */
        if (kind != K_Q6_K) {
            uint32_t u[4];
            k4_scales(b + 4, u);
            _Pragma("clang loop unroll(disable)")
            for (int g = 0; g < 4; g++) {
                KQ_UNROLL
                for (int j = 0; j < 2; j++) {
                    v128_t e[2], o[2];
                    q45k_part(kind, b, g, j, (const uint8_t *)u, e, o);
                    KQ_UNROLL
                    for (int t = 0; t < T; t++) {
                        const v128_t *p = yb[t] + 8 * g + 2 * j;
                        lane[t][j] = wasm_i32x4_add(lane[t][j], kq_quad(e[0], o[0], p[0], p[1]));
                        lane[t][j] = wasm_i32x4_add(lane[t][j], kq_quad(e[1], o[1], p[4], p[5]));
                        KQ_PIN(lane[t][j]);
                    }
                }
            }
            const v128_t m16 = wasm_u16x8_extend_high_u8x16(wasm_i32x4_make(0, 0, (int32_t)u[2], (int32_t)u[3]));
            mne = wasm_v128_and(m16, wasm_i32x4_splat(0xFFFF));
            mno = wasm_u32x4_shr(m16, 16);
        }
        /* d and (Q4_K / Q5_K) dmin converted together */
        const v128_t dh = kind == K_Q6_K ? wasm_i32x4_make(ld16(b + 208), 0, 0, 0)
                                         : wasm_i32x4_make(ld16(b), ld16(b + 2), 0, 0);
        const v128_t df = kq_h2f4(dh);
        const float dw = wasm_f32x4_extract_lane(df, 0), dmw = wasm_f32x4_extract_lane(df, 1);
        KQ_UNROLL
        for (int t = 0; t < T; t++) {
            const float yd = ldf(x + (size_t)t * xs + (size_t)i * xb);
            kq_acc_fma(&acc[t], lane[t][0], lane[t][1], yd * dw);
            if (kind == K_Q6_K) continue;
            /* min terms: prod[t'] = min(2t') * bsum(2t') + min(2t'+1) * bsum(2t'+1), in i32 */
            const v128_t prod = wasm_i32x4_add(wasm_i32x4_mul(mne, yb[t][32]), wasm_i32x4_mul(mno, yb[t][33]));
            const v128_t dmin = wasm_f32x4_splat(-yd * dmw);
            if (kind == K_Q4_K)
                accm[t] = kq_fma4(dmin, wasm_f32x4_convert_i32x4(prod), accm[t]);
            else
                accm[t] = kq_fma4(dmin, wasm_f32x4_splat((float)kq_hsum_i32(prod)), accm[t]);
        }
    }
    KQ_UNROLL
    for (int t = 0; t < T; t++) {
        float res = kq_acc_hsum(&acc[t]), m[4];
        wasm_v128_store(m, accm[t]);
        if (kind == K_Q4_K) res = res + ((m[0] + m[2]) + (m[1] + m[3]));
        if (kind == K_Q5_K) res = res + m[0];
        y[t * ldy] = res;
    }
}

/* IQ4_XS: 4 rows in the 4 float lanes; sum += dl * sumi per 32-element sub-block, as the scalar. */
KQ_INLINE int iq4xs_tile(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int64_t nb, float *y,
                         int64_t ldy, int T) {
    const size_t wb = sizeof(block_iq4_xs), xb = sizeof(block_q8_K);
    const v128_t tab = wasm_v128_load(kq_iq4nl_values);
    v128_t sum[KQ_TT];
    KQ_UNROLL
    for (int t = 0; t < T; t++) sum[t] = wasm_f32x4_splat(0.0f);
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *wr[KQ_TR];
        KQ_UNROLL
        for (int r = 0; r < KQ_TR; r++) wr[r] = w + (size_t)r * ws + (size_t)i * wb;
        const uint8_t *xr[KQ_TT];
        KQ_UNROLL
        for (int t = 0; t < T; t++) xr[t] = x + (size_t)t * xs + (size_t)i * xb;
        const v128_t dw = kq_h2f4(wasm_i32x4_make(ld16(wr[0]), ld16(wr[1]), ld16(wr[2]), ld16(wr[3])));
        uint32_t sh[KQ_TR], sl[KQ_TR];
        KQ_UNROLL
        for (int r = 0; r < KQ_TR; r++) {
            sh[r] = ld16(wr[r] + 2);
            memcpy(&sl[r], wr[r] + 4, 4);
        }
        v128_t d4d8[KQ_TT];
        KQ_UNROLL
        for (int t = 0; t < T; t++) d4d8[t] = wasm_f32x4_mul(dw, wasm_f32x4_splat(ldf(xr[t])));
        for (int s = 0; s < 8; s++) {
            v128_t q[KQ_TR][4];
            KQ_UNROLL
            for (int r = 0; r < KQ_TR; r++) {
                const v128_t v = kq_load(wr[r] + 8 + 16 * s);
                const v128_t lo = wasm_i8x16_swizzle(tab, wasm_v128_and(v, wasm_i8x16_splat(0xF)));
                const v128_t hi = wasm_i8x16_swizzle(tab, wasm_u8x16_shr(v, 4));
                q[r][0] = kq_even_i8(lo);
                q[r][1] = kq_odd_i8(lo);
                q[r][2] = kq_even_i8(hi);
                q[r][3] = kq_odd_i8(hi);
            }
            v128_t ls = wasm_i32x4_make((int32_t)(((sl[0] >> (4 * s)) & 0xF) | ((sh[0] >> (2 * s)) & 3) << 4),
                                        (int32_t)(((sl[1] >> (4 * s)) & 0xF) | ((sh[1] >> (2 * s)) & 3) << 4),
                                        (int32_t)(((sl[2] >> (4 * s)) & 0xF) | ((sh[2] >> (2 * s)) & 3) << 4),
                                        (int32_t)(((sl[3] >> (4 * s)) & 0xF) | ((sh[3] >> (2 * s)) & 3) << 4));
            const v128_t lsf = wasm_f32x4_convert_i32x4(wasm_i32x4_sub(ls, wasm_i32x4_splat(32)));
            KQ_UNROLL
            for (int t = 0; t < T; t++) {
                v128_t yv[4];
                widen_y(xr[t] + 4 + 32 * s, yv);
                v128_t l[KQ_TR];
                KQ_UNROLL
                for (int r = 0; r < KQ_TR; r++)
                    l[r] = wasm_i32x4_add(kq_quad(q[r][0], q[r][1], yv[0], yv[1]), kq_quad(q[r][2], q[r][3], yv[2], yv[3]));
                const v128_t sumi = hsum4x4(l[0], l[1], l[2], l[3]);
                const v128_t dl = wasm_f32x4_mul(d4d8[t], lsf);
                sum[t] = wasm_f32x4_add(sum[t], wasm_f32x4_mul(dl, wasm_f32x4_convert_i32x4(sumi)));
            }
        }
    }
    KQ_UNROLL
    for (int t = 0; t < T; t++) wasm_v128_store(y + t * ldy, sum[t]);
    return 0;
}

KQ_TILES(iq4xs_tile, iq4_xs, QK_K)

/* ---- Q6_K matrix-vector: one token, activations prepared per 16-element sub-block ----
 * Per sub-block s: its even and odd elements as i16 and 32 * (sums of 4 consecutive elements) as i32,
 * so a row's lane sums are dot(q, y) - 32 sum(y) with q unsigned: no "- 32" per element. yd: the
 * super-blocks' scales. */
#define K6_V 48

static void prep_q6_mv(const uint8_t *x, int64_t nb, v128_t *yp, float *yd) {
    const v128_t ones = wasm_i16x8_splat(1);
    for (int64_t i = 0; i < nb; i++, x += sizeof(block_q8_K)) {
        yd[i] = ldf(x);
        for (int c = 0; c < 8; c++, yp += 6) {
            v128_t y[4];
            widen_y(x + 4 + 32 * c, y);
            KQ_UNROLL
            for (int j = 0; j < 2; j++) {
                yp[3 * j] = y[2 * j];
                yp[3 * j + 1] = y[2 * j + 1];
                yp[3 * j + 2] = wasm_i32x4_shl(wasm_i32x4_dot_i16x8(wasm_i16x8_add(y[2 * j], y[2 * j + 1]), ones), 5);
            }
        }
    }
}

/* One Q6_K row against the prepared token. Elements 16j..16j+15 of the four chunks k of half h are
 * built as unsigned 6-bit bytes from two ql vectors (low and high nibbles) and one qh vector (bit
 * pair k), split into even / odd i16 and dotted; lane sums of sub-block 8h + 2k + j, less the
 * activations' 32 * sum, times its scale, go to lane vector j (lanes 4j..4j+3), as the reference's. */
static float q6k_mv_row(const uint8_t *w, const v128_t *yp, const float *yd, int64_t nb) {
    kq_acc acc;
    kq_acc_zero(&acc);
    KQ_PIN_SLOT;
    const v128_t m4 = wasm_i8x16_splat(0x0F), m30 = wasm_i8x16_splat(0x30), lo = wasm_i16x8_splat(0xFF);
    for (int64_t i = 0; i < nb; i++, w += sizeof(block_q6_K), yp += K6_V) {
        const v128_t sc8 = kq_load(w + 192), s16l = wasm_i16x8_extend_low_i8x16(sc8),
                     s16h = wasm_i16x8_extend_high_i8x16(sc8);
        const v128_t sv[4] = {wasm_i32x4_extend_low_i16x8(s16l), wasm_i32x4_extend_high_i16x8(s16l),
                              wasm_i32x4_extend_low_i16x8(s16h), wasm_i32x4_extend_high_i16x8(s16h)};
        v128_t lane[2] = {wasm_i32x4_splat(0), wasm_i32x4_splat(0)};
        KQ_UNROLL
        for (int h = 0; h < 2; h++) {
            KQ_UNROLL
            for (int j = 0; j < 2; j++) {
                const v128_t v0 = kq_load(w + 64 * h + 16 * j), v1 = kq_load(w + 64 * h + 32 + 16 * j);
                const v128_t qh = kq_load(w + 128 + 32 * h + 16 * j);
                /* u16 shifts: a bit leaking into the next byte lands outside the byte's mask */
                const v128_t q[4] = {
                    wasm_v128_or(wasm_v128_and(v0, m4), wasm_v128_and(wasm_i16x8_shl(qh, 4), m30)),
                    wasm_v128_or(wasm_v128_and(v1, m4), wasm_v128_and(wasm_i16x8_shl(qh, 2), m30)),
                    wasm_v128_or(wasm_v128_and(wasm_u16x8_shr(v0, 4), m4), wasm_v128_and(qh, m30)),
                    wasm_v128_or(wasm_v128_and(wasm_u16x8_shr(v1, 4), m4), wasm_v128_and(wasm_u16x8_shr(qh, 2), m30))};
                KQ_UNROLL
                for (int k = 0; k < 4; k++) {
                    const int sub = 8 * h + 2 * k + j;
                    const v128_t *p = yp + 3 * sub;
                    const v128_t d = wasm_i32x4_sub(wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_v128_and(q[k], lo), p[0]),
                                                                   wasm_i32x4_dot_i16x8(wasm_u16x8_shr(q[k], 8), p[1])),
                                                    p[2]);
                    const v128_t s = kq_splat_lane(sv[sub / 4], sub % 4);
                    lane[j] = wasm_i32x4_add(lane[j], wasm_i32x4_mul(d, s));
                    KQ_PIN(lane[j]);
                }
            }
        }
        kq_acc_fma(&acc, lane[0], lane[1], yd[i] * kq_h2f(ld16(w + 208)));
    }
    return kq_acc_hsum(&acc);
}

static void q6k_mv(const uint8_t *w, size_t ws, const uint8_t *x, int64_t k, int64_t nr, float *y) {
    const int64_t nb = k / QK_K;
    v128_t *yp = malloc((size_t)nb * (K6_V * sizeof(v128_t) + sizeof(float)));
    if (!yp) {
        kq_redo(kq_dot_q6_K, w, ws, x, 0, k, nr, 1, y, 1);
        return;
    }
    float *yd = (float *)(yp + (size_t)nb * K6_V);
    prep_q6_mv(x, nb, yp, yd);
    for (int64_t r = 0; r < nr; r++) y[r] = q6k_mv_row(w + (size_t)r * ws, yp, yd, nb);
    free(yp);
}

/* Row kernels for T = 1..KQ_TT tokens. */
typedef void (*k_row_fn)(const uint8_t *w, const uint8_t *x, size_t xs, const v128_t *yp, int64_t nb, float *y,
                         int64_t ldy);
#define KROWS(NAME, KIND)                                                                                     \
    static void NAME##_1(const uint8_t *w, const uint8_t *x, size_t xs, const v128_t *yp, int64_t nb, float *y, \
                         int64_t ldy) { k_row(KIND, w, x, xs, yp, nb, y, ldy, 1); }                             \
    static void NAME##_2(const uint8_t *w, const uint8_t *x, size_t xs, const v128_t *yp, int64_t nb, float *y, \
                         int64_t ldy) { k_row(KIND, w, x, xs, yp, nb, y, ldy, 2); }                             \
    static void NAME##_3(const uint8_t *w, const uint8_t *x, size_t xs, const v128_t *yp, int64_t nb, float *y, \
                         int64_t ldy) { k_row(KIND, w, x, xs, yp, nb, y, ldy, 3); }                             \
    static void NAME##_4(const uint8_t *w, const uint8_t *x, size_t xs, const v128_t *yp, int64_t nb, float *y, \
                         int64_t ldy) { k_row(KIND, w, x, xs, yp, nb, y, ldy, 4); }                             \
    static const k_row_fn NAME##_rows[KQ_TT + 1] = {0, NAME##_1, NAME##_2, NAME##_3, NAME##_4};

KROWS(row_q4_K, K_Q4_K)
KROWS(row_q5_K, K_Q5_K)
KROWS(row_q6_K, K_Q6_K)

/* Tokens in groups whose prepared activations stay in L2 (~256 KB); inside a group, rows outermost
 * so a weight row stays in L1 while its tokens use it, KQ_TT tokens at a time. Each (row, token)
 * result is computed the same way whatever the grouping. */
static void k_drive(const k_row_fn rows[KQ_TT + 1], float (*dot)(const void *, const void *, int64_t),
                    KQ_GEMM_ARGS) {
    const int64_t nb = k / QK_K;
    const size_t per_tok = (size_t)nb * KP_V * sizeof(v128_t);
    int64_t group = (int64_t)((256u << 10) / per_tok) / KQ_TT * KQ_TT;
    if (group < KQ_TT) group = KQ_TT;
    if (group > n) group = n;
    v128_t *yp = malloc(per_tok * (size_t)group);
    if (!yp) {
        kq_redo(dot, w, ws, x, xs, k, nr, n, y, ldy);
        return;
    }
    const uint8_t *wb = w, *xb = x;
    for (int64_t t0 = 0; t0 < n; t0 += group) {
        const int64_t g = n - t0 < group ? n - t0 : group;
        prep_q8_K(xb + (size_t)t0 * xs, xs, nb, g, yp);
        for (int64_t r = 0; r < nr; r++) {
            for (int64_t t = 0; t < g; t += KQ_TT) {
                const int64_t T = g - t < KQ_TT ? g - t : KQ_TT;
                rows[T](wb + (size_t)r * ws, xb + (size_t)(t0 + t) * xs, xs, yp + (size_t)t * (size_t)nb * KP_V, nb,
                        y + (t0 + t) * ldy + r, ldy);
            }
        }
    }
    free(yp);
}

void kq_gemm_q4_K(KQ_GEMM_ARGS) { k_drive(row_q4_K_rows, kq_dot_q4_K, w, ws, x, xs, k, nr, n, y, ldy); }
void kq_gemm_q5_K(KQ_GEMM_ARGS) { k_drive(row_q5_K_rows, kq_dot_q5_K, w, ws, x, xs, k, nr, n, y, ldy); }
void kq_gemm_q6_K(KQ_GEMM_ARGS) {
    if (n == 1)
        q6k_mv(w, ws, x, k, nr, y);
    else
        k_drive(row_q6_K_rows, kq_dot_q6_K, w, ws, x, xs, k, nr, n, y, ldy);
}
void kq_gemm_iq4_xs(KQ_GEMM_ARGS) { kq_drive(iq4xs_tile_tiles, kq_dot_iq4_xs, QK_K, w, ws, x, xs, k, nr, n, y, ldy); }

#else
typedef int kq_simd_k_unused; /* ISO C wants a declaration in every translation unit */
#endif
