/* attn.c: scalar reference of the attention steps, and the dispatch to the SIMD128 versions. */
#include "attn.h"

#include <string.h>

void kq_attn_scores_ref(const float *q, int64_t g, const float *k, size_t stride, int64_t hd, int64_t n, float scale,
                        float *s, size_t ss) {
    for (int64_t j = 0; j < g; j++)
        for (int64_t p = 0; p < n; p++) {
            const float *kp = k + (size_t)p * stride, *qj = q + j * hd;
            float d = 0;
            for (int64_t i = 0; i < hd; i++) d += qj[i] * kp[i];
            s[(size_t)j * ss + (size_t)p] = d * scale;
        }
}

void kq_attn_mix_ref(const float *w, size_t ss, int64_t g, const float *v, size_t stride, int64_t hd, int64_t n,
                     float *o) {
    memset(o, 0, (size_t)(g * hd) * sizeof *o);
    for (int64_t j = 0; j < g; j++)
        for (int64_t p = 0; p < n; p++) {
            const float *vp = v + (size_t)p * stride, wp = w[(size_t)j * ss + (size_t)p];
            for (int64_t i = 0; i < hd; i++) o[j * hd + i] += wp * vp[i];
        }
}

void kq_attn_scores(const float *q, int64_t g, const float *k, size_t stride, int64_t hd, int64_t n, float scale,
                    float *s, size_t ss) {
#ifdef __wasm_simd128__
    if (hd % 4 == 0) {
        kq_attn_scores_simd(q, g, k, stride, hd, n, scale, s, ss);
        return;
    }
#endif
    kq_attn_scores_ref(q, g, k, stride, hd, n, scale, s, ss);
}

void kq_attn_mix(const float *w, size_t ss, int64_t g, const float *v, size_t stride, int64_t hd, int64_t n, float *o) {
#ifdef __wasm_simd128__
    if (hd % 8 == 0) {
        kq_attn_mix_simd(w, ss, g, v, stride, hd, n, o);
        return;
    }
#endif
    kq_attn_mix_ref(w, ss, g, v, stride, hd, n, o);
}
