/* matmul.c: matrix drivers over the per-type table. When the type has a fast kernel (the wasm
 * SIMD128 build: kq_traits.gemm / quantize_fast) it is used; otherwise, and as the reference, the
 * scalar quantize / dot. Both give the same bits (see kernels/simd_common.h). */
#include "matmul.h"
#include "simd_common.h"

/* The table entry of a type, packed or not. */
static const kq_traits *traits(uint32_t type) { return kq_get(type & ~KQ_PACKED); }

static const kq_traits *vec_of(uint32_t type) { return kq_get(traits(type)->vec_type); }

size_t kq_act_bytes(uint32_t type, int64_t k, int64_t n) {
    return kq_row_bytes(traits(type)->vec_type, k) * (size_t)n;
}

uint32_t kq_packed(uint32_t type) {
    const kq_traits *tr = kq_get(type);
    return tr && tr->pack ? type | KQ_PACKED : 0;
}

size_t kq_pack_scratch(uint32_t type, int64_t k) { return 8 * kq_row_bytes(type, k); }

void kq_pack(uint32_t type, void *w, int64_t k, int64_t rows, void *scratch) {
    kq_get(type)->pack(w, kq_row_bytes(type, k), k, rows, scratch);
}

void kq_round_acts(uint32_t type, const float *x, int64_t k, int64_t n, void *xq) {
    const kq_traits *v = vec_of(type);
    const size_t rb = kq_row_bytes(traits(type)->vec_type, k);
    void (*q)(const float *, void *, int64_t) = v->quantize_fast ? v->quantize_fast : v->quantize;
    for (int64_t t = 0; t < n; t++) q(x + t * k, (uint8_t *)xq + t * rb, k);
}

void kq_matmul(uint32_t type, const void *w, int64_t k, int64_t r0, int64_t r1,
               const void *xq, int64_t n, float *y, int64_t ldy) {
    const kq_traits *tr = traits(type);
    const size_t wb = kq_row_bytes(type & ~KQ_PACKED, k), xb = kq_row_bytes(tr->vec_type, k);
    if (r1 <= r0 || n <= 0)
        return;
    if (type & KQ_PACKED) {
        tr->gemm_packed((const uint8_t *)w + r0 * wb, wb, xq, xb, k, r1 - r0, n, y + r0, ldy);
        return;
    }
    if (tr->gemm) {
        /* the kernel tiles rows x tokens itself (weight rows outermost, so a few rows stay in cache
         * while every token uses them) */
        tr->gemm((const uint8_t *)w + r0 * wb, wb, xq, xb, k, r1 - r0, n, y + r0, ldy);
        return;
    }
    for (int64_t t = 0; t < n; t++)
        for (int64_t r = r0; r < r1; r++)
            y[t * ldy + r] = tr->dot((const uint8_t *)w + r * wb, (const uint8_t *)xq + t * xb, k);
}

size_t kq_prep_bytes(uint32_t type, int64_t k, int64_t n) {
#ifdef __wasm_simd128__
    return kq_simd_prep_bytes(type & ~KQ_PACKED, k, n);
#else
    (void)type, (void)k, (void)n;
    return 0;
#endif
}

void kq_prep(uint32_t type, const void *xq, int64_t k, int64_t n, int64_t t0, int64_t t1, void *prep) {
#ifdef __wasm_simd128__
    kq_simd_prep(type & ~KQ_PACKED, xq, kq_row_bytes(traits(type)->vec_type, k), k, n, t0, t1, prep);
#else
    (void)type, (void)xq, (void)k, (void)n, (void)t0, (void)t1, (void)prep;
#endif
}

void kq_matmul_prep(uint32_t type, const void *w, int64_t k, int64_t r0, int64_t r1, const void *xq,
                    const void *prep, int64_t n, float *y, int64_t ldy) {
#ifdef __wasm_simd128__
    if (prep && r1 > r0 && n > 0) {
        const size_t wb = kq_row_bytes(type & ~KQ_PACKED, k);
        kq_simd_gemm_prep(type & ~KQ_PACKED, type & KQ_PACKED, prep, (const uint8_t *)w + r0 * wb, wb, xq,
                          kq_row_bytes(traits(type)->vec_type, k), k, r1 - r0, n, y + r0, ldy);
        return;
    }
#endif
    (void)prep;
    kq_matmul(type, w, k, r0, r1, xq, n, y, ldy);
}

void kq_matmul_ref(uint32_t type, const void *w, int64_t k, int64_t r0, int64_t r1,
                   const float *x, int64_t n, float *y, int64_t ldy, float *row) {
    const kq_traits *tr = kq_get(type);
    const size_t wb = kq_row_bytes(type, k);
    for (int64_t r = r0; r < r1; r++) {
        tr->dequant((const uint8_t *)w + r * wb, row, k);
        for (int64_t t = 0; t < n; t++) {
            const float *xt = x + t * k;
            double s = 0; /* the ground truth: accumulate in double */
            for (int64_t i = 0; i < k; i++) s += (double)row[i] * xt[i];
            y[t * ldy + r] = (float)s;
        }
    }
}
