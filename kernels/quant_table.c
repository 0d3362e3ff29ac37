/* quant_table.c: the one table of per-type kernels, indexed by ggml type id. */
#include "blocks.h"
#include "simd_common.h"

/* The SIMD kernels, where the build has them (see simd_common.h). */
#ifdef __wasm_simd128__
#define GEMM(fn) kq_gemm_##fn
#define QFAST(fn) kq_quantize_##fn##_simd
#else
#define GEMM(fn) 0
#define QFAST(fn) 0
#endif

#define ENTRY(id, nm, bl, by, vt, fn)                                                    \
    [id] = {.name = nm, .blck = bl, .bytes = by, .vec_type = vt,                         \
            .dequant = kq_dequant_##fn, .quantize = kq_quantize_##fn, .dot = kq_dot_##fn, \
            .gemm = G_##fn, .quantize_fast = QF_##fn, .pack = P_##fn, .gemm_packed = GP_##fn}

/* The weight types with a SIMD gemm. */
#define G_f32 GEMM(f32)
#define G_f16 GEMM(f16)
#define G_bf16 GEMM(bf16)
#define G_q4_0 GEMM(q4_0)
#define G_q4_1 GEMM(q4_1)
#define G_q5_0 GEMM(q5_0)
#define G_q5_1 GEMM(q5_1)
#define G_q8_0 GEMM(q8_0)
#define G_q4_K GEMM(q4_K)
#define G_q5_K GEMM(q5_K)
#define G_q6_K GEMM(q6_K)
#define G_iq4_nl GEMM(iq4_nl)
#define G_iq4_xs GEMM(iq4_xs)

/* The weight types with a packed layout (kq_pack). */
#ifdef __wasm_simd128__
#define P_q4_0 kq_pack_q4_0
#define GP_q4_0 kq_gemm_q4_0_packed
#define P_q8_0 kq_pack_q8_0
#define GP_q8_0 kq_gemm_q8_0_packed
#else
#define P_q4_0 0
#define GP_q4_0 0
#define P_q8_0 0
#define GP_q8_0 0
#endif
#define P_f32 0
#define P_f16 0
#define P_bf16 0
#define P_q4_1 0
#define P_q5_0 0
#define P_q5_1 0
#define P_q4_K 0
#define P_q5_K 0
#define P_q6_K 0
#define P_iq4_nl 0
#define P_iq4_xs 0
#define GP_f32 0
#define GP_f16 0
#define GP_bf16 0
#define GP_q4_1 0
#define GP_q5_0 0
#define GP_q5_1 0
#define GP_q4_K 0
#define GP_q5_K 0
#define GP_q6_K 0
#define GP_iq4_nl 0
#define GP_iq4_xs 0

/* The vec types with a fast activation quantizer (Q8_0 is also a weight type). */
#define QF_f32 0
#define QF_f16 0
#define QF_bf16 0
#define QF_q4_0 0
#define QF_q4_1 0
#define QF_q5_0 0
#define QF_q5_1 0
#define QF_q8_0 QFAST(q8_0)
#define QF_q4_K 0
#define QF_q5_K 0
#define QF_q6_K 0
#define QF_iq4_nl 0
#define QF_iq4_xs 0

static const kq_traits table[KQ_TYPE_MAX] = {
    ENTRY(KQ_F32, "F32", 1, sizeof(float), KQ_F32, f32),
    ENTRY(KQ_F16, "F16", 1, sizeof(uint16_t), KQ_F16, f16),
    ENTRY(KQ_BF16, "BF16", 1, sizeof(uint16_t), KQ_BF16, bf16),
    ENTRY(KQ_Q4_0, "Q4_0", QK32, sizeof(block_q4_0), KQ_Q8_0, q4_0),
    ENTRY(KQ_Q4_1, "Q4_1", QK32, sizeof(block_q4_1), KQ_Q8_1, q4_1),
    ENTRY(KQ_Q5_0, "Q5_0", QK32, sizeof(block_q5_0), KQ_Q8_0, q5_0),
    ENTRY(KQ_Q5_1, "Q5_1", QK32, sizeof(block_q5_1), KQ_Q8_1, q5_1),
    ENTRY(KQ_Q8_0, "Q8_0", QK32, sizeof(block_q8_0), KQ_Q8_0, q8_0),
    ENTRY(KQ_Q4_K, "Q4_K", QK_K, sizeof(block_q4_K), KQ_Q8_K, q4_K),
    ENTRY(KQ_Q5_K, "Q5_K", QK_K, sizeof(block_q5_K), KQ_Q8_K, q5_K),
    ENTRY(KQ_Q6_K, "Q6_K", QK_K, sizeof(block_q6_K), KQ_Q8_K, q6_K),
    ENTRY(KQ_IQ4_NL, "IQ4_NL", QK32, sizeof(block_iq4_nl), KQ_Q8_0, iq4_nl),
    ENTRY(KQ_IQ4_XS, "IQ4_XS", QK_K, sizeof(block_iq4_xs), KQ_Q8_K, iq4_xs),
    /* activation-only types: never weights, so no dot */
    [KQ_Q8_1] = {.name = "Q8_1", .blck = QK32, .bytes = sizeof(block_q8_1), .vec_type = KQ_Q8_1,
                 .dequant = kq_dequant_q8_1, .quantize = kq_quantize_q8_1, .dot = 0,
                 .quantize_fast = QFAST(q8_1)},
    [KQ_Q8_K] = {.name = "Q8_K", .blck = QK_K, .bytes = sizeof(block_q8_K), .vec_type = KQ_Q8_K,
                 .dequant = kq_dequant_q8_K, .quantize = kq_quantize_q8_K, .dot = 0,
                 .quantize_fast = QFAST(q8_K)},
};

const kq_traits *kq_get(uint32_t type) {
    if (type >= KQ_TYPE_MAX || !table[type].name)
        return 0;
    return &table[type];
}

/* 0 for an unsupported type or an n that is negative or not a whole number of blocks. */
size_t kq_row_bytes(uint32_t type, int64_t n) {
    const kq_traits *t = kq_get(type);
    if (!t || n < 0 || n % t->blck)
        return 0;
    return (size_t)(n / t->blck) * t->bytes;
}
