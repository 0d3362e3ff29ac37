/* matmul.h: matrix drivers over the per-type table. Y[t][r] = W[r] . X[t] for weight rows r in
 * [r0, r1) and n activation rows t. The fast path rounds each activation row once to the weight's
 * vec_type (as llama.cpp does) and dots it with every weight row; the reference path dequantises
 * each weight row and computes in f32. */
#ifndef LFM2_MATMUL_H
#define LFM2_MATMUL_H

#include <stddef.h>
#include <stdint.h>

#include "quant.h"

/* Bytes of scratch needed to hold n activation rows of k values rounded for weights of `type`. */
size_t kq_act_bytes(uint32_t type, int64_t k, int64_t n);

/* Round n rows of k activations (row stride k) for weights of `type` into xq (row stride
 * kq_row_bytes(vec_type, k)). */
void kq_round_acts(uint32_t type, const float *x, int64_t k, int64_t n, void *xq);

/* Fast path: xq as produced by kq_round_acts. W holds rows of k elements of `type`. */
void kq_matmul(uint32_t type, const void *w, int64_t k, int64_t r0, int64_t r1,
               const void *xq, int64_t n, float *y, int64_t ldy);

/* Packed weights: a type with a faster row layout for its SIMD kernels (Q4_0, Q8_0 in SIMD builds: groups
 * of 8 rows interleaved) has kq_packed(type) = type | KQ_PACKED, else 0. kq_pack rewrites a matrix of
 * `rows` rows in place into that layout (scratch: kq_pack_scratch bytes); kq_matmul then takes the
 * packed id, with r0 a multiple of 8, and gives the same bits as on the plain matrix. The reference
 * path and the type table know plain layouts only. */
#define KQ_PACKED 0x100u
uint32_t kq_packed(uint32_t type);
size_t kq_pack_scratch(uint32_t type, int64_t k);
void kq_pack(uint32_t type, void *w, int64_t k, int64_t rows, void *scratch);

/* Activations prepared once for many kq_matmul_prep calls (any row ranges, any threads), for types
 * whose kernels widen them first (Q4_0, Q8_0 in SIMD builds; kq_prep_bytes 0 otherwise): xq as from
 * kq_round_acts, prepared token range by token range into prep (kq_prep_bytes, 16-byte aligned), then
 * read by kq_matmul_prep, which gives kq_matmul's bits. */
size_t kq_prep_bytes(uint32_t type, int64_t k, int64_t n);
void kq_prep(uint32_t type, const void *xq, int64_t k, int64_t n, int64_t t0, int64_t t1, void *prep);
void kq_matmul_prep(uint32_t type, const void *w, int64_t k, int64_t r0, int64_t r1, const void *xq,
                    const void *prep, int64_t n, float *y, int64_t ldy);

/* Reference path: f32 activations, each weight row dequantised into `row` (k floats). */
void kq_matmul_ref(uint32_t type, const void *w, int64_t k, int64_t r0, int64_t r1,
                   const float *x, int64_t n, float *y, int64_t ldy, float *row);

#endif
