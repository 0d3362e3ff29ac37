/* attn.h: the f32 vector steps of attention over a KV cache, for the g query heads that share one
 * KV head (grouped-query attention): scores s_j[p] = scale * (q_j . k_p) and the weighted sums
 * o_j = sum_p w_j[p] * v_p, over n cached rows (key / value row p at k + p * stride floats).
 * Query j is at q + j * hd, its scores / weights at s + j * ss, its output at o + j * hd. Doing the
 * g heads together reads each cached row once instead of g times: at long contexts attention is
 * bound by those reads. The cache is f32: at the contexts a tab holds (<= 4096 tokens, 6 attention
 * layers) it costs 100 MB against f16's 50 MB, and these steps stay plain loads with no conversion.
 * Scalar reference in attn.c; wasm SIMD128 in simd_attn.c. */
#ifndef LFM2_ATTN_H
#define LFM2_ATTN_H

#include <stddef.h>
#include <stdint.h>

void kq_attn_scores(const float *q, int64_t g, const float *k, size_t stride, int64_t hd, int64_t n, float scale,
                    float *s, size_t ss);
void kq_attn_mix(const float *w, size_t ss, int64_t g, const float *v, size_t stride, int64_t hd, int64_t n, float *o);

/* The scalar reference (what the functions above run without SIMD128; the test oracle). */
void kq_attn_scores_ref(const float *q, int64_t g, const float *k, size_t stride, int64_t hd, int64_t n, float scale,
                        float *s, size_t ss);
void kq_attn_mix_ref(const float *w, size_t ss, int64_t g, const float *v, size_t stride, int64_t hd, int64_t n,
                     float *o);

#ifdef __wasm_simd128__ /* hd a multiple of 4 (scores) / 8 (mix); called through the functions above */
void kq_attn_scores_simd(const float *q, int64_t g, const float *k, size_t stride, int64_t hd, int64_t n, float scale,
                         float *s, size_t ss);
void kq_attn_mix_simd(const float *w, size_t ss, int64_t g, const float *v, size_t stride, int64_t hd, int64_t n,
                      float *o);
#endif

#endif
