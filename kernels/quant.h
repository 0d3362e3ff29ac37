/* quant.h: GGUF tensor types (ggml's numbering and block layouts) and the one per-type table of
 * kernels. Knows nothing of models, files or JS. */
#ifndef LFM2_QUANT_H
#define LFM2_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ggml type ids as stored in GGUF files. */
enum kq_type {
    KQ_F32 = 0, KQ_F16 = 1, KQ_Q4_0 = 2, KQ_Q4_1 = 3, KQ_Q5_0 = 6, KQ_Q5_1 = 7, KQ_Q8_0 = 8,
    KQ_Q8_1 = 9, KQ_Q4_K = 12, KQ_Q5_K = 13, KQ_Q6_K = 14, KQ_Q8_K = 15, KQ_IQ4_NL = 20,
    KQ_IQ4_XS = 23, KQ_BF16 = 30, KQ_TYPE_MAX = 40
};

/* Activations are rounded to the weight's vec_type before a dot product, as llama.cpp does:
 * F32 for F32 weights, F16 for F16, BF16 for BF16, Q8_0 / Q8_1 / Q8_K for the quantized types. */
typedef struct {
    const char *name;          /* "Q4_K" */
    int blck;                  /* elements per block */
    size_t bytes;              /* bytes per block */
    enum kq_type vec_type;     /* type the activations are rounded to for dot() */
    /* Dequantise n elements (n a multiple of blck) of this type to f32. */
    void (*dequant)(const void *src, float *dst, int64_t n);
    /* Quantise n f32 values into this type (n a multiple of blck). Present for every vec_type
     * (F32 copies, F16, BF16, Q8_0, Q8_1, Q8_K) and, for tests, for every weight type. */
    void (*quantize)(const float *src, void *dst, int64_t n);
    /* Reference dot product of n weights of this type with n activations already rounded to
     * vec_type; the SIMD kernels must keep exactly its float order. The K-quants and IQ4_NL follow
     * llama.cpp's x86 AVX2 kernels bit for bit (their float operation order, FMA contraction and
     * lane layout): per block, the integer products are summed into 8 int32 lanes of 4 consecutive
     * elements, the block's scale is fused-multiply-added into 8 float lanes, and the lanes are
     * reduced at the end of the row in hsum_float_8's fixed order ((0+4)+(2+6))+((1+5)+(3+7)); see
     * blocks.h. Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 follow ggml's portable order instead (one exact
     * integer sum per block, sum = fma(d, sumi, sum)), which lets their SIMD kernels keep four rows
     * in one vector; the two orders differ by ~1e-7 relative. Min terms (Q4_1/Q5_1/Q4_K/Q5_K) are
     * accumulated with FMA apart and added last. The activation quantizers (Q8_0/Q8_1) follow the
     * AVX2 path (x * 127/amax, ties to even). */
    float (*dot)(const void *w, const void *x, int64_t n);
    /* Optional fast kernels (wasm SIMD128 builds; NULL elsewhere or for types without one); the
     * drivers in matmul.c use them when present and fall back to quantize / dot otherwise.
     * quantize_fast: the same bytes as quantize (vec types only).
     * gemm: y[t * ldy + r] = dot(row r, activation row t) for r in [0, nr), t in [0, n); w and x
     * point at the first weight / activation row, ws and xs are their strides in bytes. Same
     * results as dot (bit-identical in the default build; see kernels/simd_common.h). */
    void (*quantize_fast)(const float *src, void *dst, int64_t n);
    void (*gemm)(const void *w, size_t ws, const void *x, size_t xs, int64_t k, int64_t nr, int64_t n,
                 float *y, int64_t ldy);
    /* Optional packed layout (SIMD builds): pack rewrites, in place, every whole group of 8 rows of a
     * matrix (row stride ws; scratch: 8 rows) into the layout gemm_packed reads, rows after the last
     * whole group staying plain; gemm_packed takes w at the start of a group and gives gemm's bits. */
    void (*pack)(void *w, size_t ws, int64_t k, int64_t nr, void *scratch);
    void (*gemm_packed)(const void *w, size_t ws, const void *x, size_t xs, int64_t k, int64_t nr, int64_t n,
                        float *y, int64_t ldy);
} kq_traits;

/* The table entry of a type, or NULL for a type the engine does not support. */
const kq_traits *kq_get(uint32_t type);

/* Bytes of a row of n elements (n must be a multiple of blck). */
size_t kq_row_bytes(uint32_t type, int64_t n);

/* f16 / bf16 conversions (round to nearest even; NaN and Inf kept). */
float kq_f16_to_f32(uint16_t h);
uint16_t kq_f32_to_f16(float f);
float kq_bf16_to_f32(uint16_t h);
uint16_t kq_f32_to_bf16(float f);

#endif
