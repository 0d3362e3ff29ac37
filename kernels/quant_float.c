/* quant_float.c: the unquantized types F32, F16, BF16. Dots follow ggml's scalar path: each product
 * rounded to float, the sum kept in double, the total rounded to float at the end. */
#include <string.h>

#include "blocks.h"

void kq_dequant_f32(const void *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void kq_quantize_f32(const float *src, void *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

float kq_dot_f32(const void *w, const void *x, int64_t n) {
    const float *a = w, *b = x;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)(a[i] * b[i]);
    return (float)sum;
}

void kq_dequant_f16(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = kq_f16_to_f32(h[i]);
}

void kq_quantize_f16(const float *src, void *dst, int64_t n) {
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++)
        h[i] = kq_f32_to_f16(src[i]);
}

float kq_dot_f16(const void *w, const void *x, int64_t n) {
    const uint16_t *a = w, *b = x;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)(kq_f16_to_f32(a[i]) * kq_f16_to_f32(b[i]));
    return (float)sum;
}

void kq_dequant_bf16(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = kq_bf16_to_f32(h[i]);
}

void kq_quantize_bf16(const float *src, void *dst, int64_t n) {
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++)
        h[i] = kq_f32_to_bf16(src[i]);
}

float kq_dot_bf16(const void *w, const void *x, int64_t n) {
    const uint16_t *a = w, *b = x;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)(kq_bf16_to_f32(a[i]) * kq_bf16_to_f32(b[i]));
    return (float)sum;
}
