/* test_kernels.c: the scalar reference kernels of kernels/: f16/bf16 conversion, every dequantiser
 * on hand-made blocks, quantize round trips, the activation quantizers against an independent
 * computation, and every dot against a float64 dot of the dequantised operands. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "check.h"
#include "quant.h"

/* ---- helpers ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float rng_unit(void) { /* uniform in [-1, 1) */
    return (float)((double)(rng_next() >> 11) * 0x1p-52 - 1.0);
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

#define NMAX 1024
static _Alignas(16) uint8_t wbuf[NMAX * 4], xbuf[NMAX * 4];
static float xf[NMAX], wf[NMAX], tmp[NMAX];

/* Random row with block-to-block magnitudes spanning 10^lo..10, so scales of many sizes are used. */
static void random_row_from(float *x, int n, float lo) {
    for (int b = 0; b < n; b += 32) {
        const float mag = powf(10.0f, lo + (1.0f - lo) * (rng_unit() * 0.5f + 0.5f));
        for (int j = 0; j < 32; j++) x[b + j] = mag * rng_unit();
    }
}

static void random_row(float *x, int n) { random_row_from(x, n, -3.0f); }

/* ---- f16 / bf16 ---- */

static double half_value(uint16_t h) { return (double)kq_f16_to_f32(h); }

static void test_f16(void) {
    CHECK(kq_f16_to_f32(0x0000) == 0.0f && !signbit(kq_f16_to_f32(0x0000)), "+0");
    CHECK(kq_f16_to_f32(0x8000) == 0.0f && signbit(kq_f16_to_f32(0x8000)), "-0");
    CHECK(kq_f16_to_f32(0x3C00) == 1.0f, "1");
    CHECK(kq_f16_to_f32(0xC000) == -2.0f, "-2");
    CHECK(kq_f16_to_f32(0x0001) == 0x1p-24f, "smallest subnormal");
    CHECK(kq_f16_to_f32(0x83FF) == -1023.0f * 0x1p-24f, "largest subnormal");
    CHECK(kq_f16_to_f32(0x0400) == 0x1p-14f, "smallest normal");
    CHECK(kq_f16_to_f32(0x7BFF) == 65504.0f, "max");
    CHECK(isinf(kq_f16_to_f32(0x7C00)) && kq_f16_to_f32(0x7C00) > 0, "+inf");
    CHECK(isinf(kq_f16_to_f32(0xFC00)) && kq_f16_to_f32(0xFC00) < 0, "-inf");
    CHECK(isnan(kq_f16_to_f32(0x7E00)) && isnan(kq_f16_to_f32(0x7C01)), "nan");

    CHECK(kq_f32_to_f16(1.0f) == 0x3C00, "1 -> %04x", kq_f32_to_f16(1.0f));
    CHECK(kq_f32_to_f16(-0.0f) == 0x8000, "-0");
    CHECK(kq_f32_to_f16(65504.0f) == 0x7BFF, "max");
    CHECK(kq_f32_to_f16(65519.0f) == 0x7BFF, "below the tie to inf");
    CHECK(kq_f32_to_f16(65520.0f) == 0x7C00, "tie above max goes to inf");
    CHECK(kq_f32_to_f16(1e10f) == 0x7C00 && kq_f32_to_f16(-1e10f) == 0xFC00, "overflow");
    CHECK(kq_f32_to_f16(INFINITY) == 0x7C00 && kq_f32_to_f16(-INFINITY) == 0xFC00, "inf");
    const uint16_t hn = kq_f32_to_f16(NAN), hs = kq_f32_to_f16(bits_f32(0x7F800001u));
    CHECK((hn & 0x7C00) == 0x7C00 && (hn & 0x3FF), "nan -> %04x", hn);
    CHECK((hs & 0x7C00) == 0x7C00 && (hs & 0x3FF), "nan with low payload stays nan -> %04x", hs);
    CHECK(kq_f32_to_f16(1.0f + 0x1p-11f) == 0x3C00, "tie rounds to even (down)");
    CHECK(kq_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3C02, "tie rounds to even (up)");
    CHECK(kq_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f) == 0x3C01, "just above a tie");
    CHECK(kq_f32_to_f16(0x1p-24f) == 0x0001, "smallest subnormal");
    CHECK(kq_f32_to_f16(0x1p-25f) == 0x0000, "half of it ties to zero");
    CHECK(kq_f32_to_f16(-0x1p-25f) == 0x8000, "negative tie to -0");
    CHECK(kq_f32_to_f16(0x1p-25f * 1.001f) == 0x0001, "above the tie");
    CHECK(kq_f32_to_f16(3 * 0x1p-25f) == 0x0002, "subnormal tie to even (up)");
    CHECK(kq_f32_to_f16(5 * 0x1p-25f) == 0x0002, "subnormal tie to even (down)");
    CHECK(kq_f32_to_f16(1023.5f * 0x1p-24f) == 0x0400, "subnormal rounds up into normal");
    CHECK(kq_f32_to_f16(0x1p-14f) == 0x0400, "smallest normal");
    CHECK(kq_f32_to_f16(1e-10f) == 0x0000, "underflow");

    /* every half survives the round trip (NaNs stay NaN) */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        const float f = kq_f16_to_f32((uint16_t)h);
        const uint16_t back = kq_f32_to_f16(f);
        if (isnan(f) ? !((back & 0x7C00) == 0x7C00 && (back & 0x3FF)) : back != h) bad++;
    }
    CHECK(bad == 0, "%d halves do not round-trip", bad);

    /* random floats over the half range: the result is a nearest half, ties to even */
    bad = 0;
    for (int i = 0; i < 200000; i++) {
        const float mag = ldexpf(1.0f + (rng_unit() * 0.5f + 0.5f), (int)(rng_next() % 42) - 27);
        const float f = (rng_next() & 1) ? -mag : mag;
        if (fabsf(f) >= 65504.0f) continue;
        const uint16_t h = kq_f32_to_f16(f);
        const double err = fabs(half_value(h) - f);
        const double up = fabs(half_value((uint16_t)(h + 1)) - f);
        const double dn = (h & 0x7FFF) ? fabs(half_value((uint16_t)(h - 1)) - f) : INFINITY;
        if (err > up || err > dn || ((err == up || err == dn) && (h & 1))) bad++;
    }
    CHECK(bad == 0, "%d random floats not rounded to nearest-even half", bad);
}

static void test_bf16(void) {
    CHECK(kq_bf16_to_f32(0x3F80) == 1.0f, "1");
    CHECK(kq_bf16_to_f32(0x0001) == bits_f32(0x00010000u), "subnormal");
    CHECK(kq_f32_to_bf16(1.0f) == 0x3F80, "1");
    CHECK(kq_f32_to_bf16(bits_f32(0x3F808000u)) == 0x3F80, "tie to even (down)");
    CHECK(kq_f32_to_bf16(bits_f32(0x3F818000u)) == 0x3F82, "tie to even (up)");
    CHECK(kq_f32_to_bf16(bits_f32(0x3F808001u)) == 0x3F81, "above tie");
    CHECK(kq_f32_to_bf16(bits_f32(0x3F807FFFu)) == 0x3F80, "below tie");
    CHECK(kq_f32_to_bf16(bits_f32(0x00018000u)) == 0x0002, "subnormal tie to even");
    CHECK(kq_f32_to_bf16(bits_f32(0x00008000u)) == 0x0000, "subnormal tie to zero");
    CHECK(kq_f32_to_bf16(bits_f32(0x80010000u)) == 0x8001, "negative subnormal kept");
    CHECK(kq_f32_to_bf16(bits_f32(0x7F7FFFFFu)) == 0x7F80, "max float rounds to inf");
    CHECK(kq_f32_to_bf16(bits_f32(0x7F7F0000u)) == 0x7F7F, "max bf16");
    CHECK(kq_f32_to_bf16(INFINITY) == 0x7F80 && kq_f32_to_bf16(-INFINITY) == 0xFF80, "inf");
    CHECK(kq_f32_to_bf16(bits_f32(0x7FC00000u)) == 0x7FC0, "qnan");
    CHECK(kq_f32_to_bf16(bits_f32(0x7F800001u)) == 0x7FC0, "snan becomes quiet, not inf");
    CHECK(kq_f32_to_bf16(bits_f32(0xFF800001u)) == 0xFFC0, "negative nan");
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        const float f = kq_bf16_to_f32((uint16_t)h);
        if (!isnan(f) && kq_f32_to_bf16(f) != h) bad++;
    }
    CHECK(bad == 0, "%d bf16 values do not round-trip", bad);
}

/* ---- table ---- */

static void test_table(void) {
    CHECK(kq_get(4) == NULL && kq_get(5) == NULL, "removed Q4_2/Q4_3");
    CHECK(kq_get(10) == NULL && kq_get(11) == NULL, "Q2_K/Q3_K unsupported");
    CHECK(kq_get(16) == NULL && kq_get(KQ_TYPE_MAX) == NULL && kq_get(0xFFFFFFFFu) == NULL,
          "unknown");
    static const struct {
        uint32_t type;
        const char *name;
        int blck;
        size_t bytes;
        uint32_t vec;
        bool dot;
    } want[] = {
        {KQ_F32, "F32", 1, 4, KQ_F32, true},          {KQ_F16, "F16", 1, 2, KQ_F16, true},
        {KQ_BF16, "BF16", 1, 2, KQ_BF16, true},       {KQ_Q4_0, "Q4_0", 32, 18, KQ_Q8_0, true},
        {KQ_Q4_1, "Q4_1", 32, 20, KQ_Q8_1, true},     {KQ_Q5_0, "Q5_0", 32, 22, KQ_Q8_0, true},
        {KQ_Q5_1, "Q5_1", 32, 24, KQ_Q8_1, true},     {KQ_Q8_0, "Q8_0", 32, 34, KQ_Q8_0, true},
        {KQ_Q8_1, "Q8_1", 32, 36, KQ_Q8_1, false},    {KQ_Q4_K, "Q4_K", 256, 144, KQ_Q8_K, true},
        {KQ_Q5_K, "Q5_K", 256, 176, KQ_Q8_K, true},   {KQ_Q6_K, "Q6_K", 256, 210, KQ_Q8_K, true},
        {KQ_Q8_K, "Q8_K", 256, 292, KQ_Q8_K, false},  {KQ_IQ4_NL, "IQ4_NL", 32, 18, KQ_Q8_0, true},
        {KQ_IQ4_XS, "IQ4_XS", 256, 136, KQ_Q8_K, true},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const kq_traits *t = kq_get(want[i].type);
        CHECK(t != NULL, "type %u missing", want[i].type);
        if (!t) continue;
        CHECK(strcmp(t->name, want[i].name) == 0 && t->blck == want[i].blck &&
                  t->bytes == want[i].bytes && (uint32_t)t->vec_type == want[i].vec,
              "%s traits", want[i].name);
        CHECK(t->dequant && t->quantize && (t->dot != NULL) == want[i].dot, "%s functions",
              want[i].name);
        CHECK(kq_get(t->vec_type) && kq_get(t->vec_type)->quantize, "%s vec_type quantizable",
              want[i].name);
    }
    CHECK(kq_row_bytes(KQ_F32, 5) == 20, "f32");
    CHECK(kq_row_bytes(KQ_F16, 3) == 6 && kq_row_bytes(KQ_BF16, 7) == 14, "f16/bf16");
    CHECK(kq_row_bytes(KQ_Q4_0, 64) == 36, "q4_0");
    CHECK(kq_row_bytes(KQ_Q5_1, 32) == 24 && kq_row_bytes(KQ_Q8_1, 64) == 72, "q5_1/q8_1");
    CHECK(kq_row_bytes(KQ_Q4_K, 512) == 288 && kq_row_bytes(KQ_Q6_K, 256) == 210, "k");
    CHECK(kq_row_bytes(KQ_IQ4_XS, 256) == 136 && kq_row_bytes(KQ_Q8_K, 768) == 876, "iq4xs/q8k");
    CHECK(kq_row_bytes(KQ_Q8_0, 33) == 0 && kq_row_bytes(KQ_Q4_K, 32) == 0, "partial block");
    CHECK(kq_row_bytes(KQ_Q8_0, 0) == 0 && kq_row_bytes(KQ_Q8_0, -32) == 0, "empty/negative");
    CHECK(kq_row_bytes(10, 256) == 0 && kq_row_bytes(99, 1) == 0, "unknown type");
}

/* ---- dequantisers on hand-made blocks: expected values are worked out from the layouts ---- */

static void dequant(uint32_t type, const void *src, float *dst, int64_t n) {
    kq_get(type)->dequant(src, dst, n);
}

static void test_dequant_legacy(void) {
    float y[32];
    { /* Q4_0: d = 0.5, byte j = j | (15 - j) << 4 */
        block_q4_0 b = {.d = 0x3800};
        for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(j | (15 - j) << 4);
        dequant(KQ_Q4_0, &b, y, 32);
        CHECK(y[0] == -4.0f && y[8] == 0.0f && y[15] == 3.5f, "q4_0 low nibbles");
        CHECK(y[16] == 3.5f && y[31] == -4.0f && y[20] == 1.5f, "q4_0 high nibbles");
    }
    { /* Q4_1: d = 0.25, m = -1, byte j = j | (j ^ 5) << 4 */
        block_q4_1 b = {.d = 0x3400, .m = 0xBC00};
        for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(j | (j ^ 5) << 4);
        dequant(KQ_Q4_1, &b, y, 32);
        CHECK(y[0] == -1.0f && y[15] == 2.75f, "q4_1 low");
        CHECK(y[16] == 0.25f && y[21] == -1.0f && y[31] == 1.5f, "q4_1 high (q 5, 0, 10)");
    }
    /* Q5: byte j = j | ((j + 1) & 15) << 4, qh bytes 01 80 00 FF: bits 0, 15, 24..31 set */
    static const uint8_t qh[4] = {0x01, 0x80, 0x00, 0xFF};
    {
        block_q5_0 b = {.d = 0x4000};
        memcpy(b.qh, qh, 4);
        for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(j | ((j + 1) & 15) << 4);
        dequant(KQ_Q5_0, &b, y, 32);
        CHECK(y[0] == 0.0f, "q5_0 e0: q 0|16 -> 0, got %g", y[0]);
        CHECK(y[1] == -30.0f, "q5_0 e1: q 1 -> -30, got %g", y[1]);
        CHECK(y[15] == 30.0f, "q5_0 e15: q 15|16 -> 30, got %g", y[15]);
        CHECK(y[16] == -30.0f, "q5_0 e16: q 1 -> -30, got %g", y[16]);
        CHECK(y[23] == -16.0f, "q5_0 e23: q 8 -> -16, got %g", y[23]);
        CHECK(y[24] == 18.0f, "q5_0 e24: q 9|16 -> 18, got %g", y[24]);
        CHECK(y[31] == 0.0f, "q5_0 e31: q 0|16 -> 0, got %g", y[31]);
    }
    {
        block_q5_1 b = {.d = 0x3800, .m = 0x4400}; /* d 0.5, m 4 */
        memcpy(b.qh, qh, 4);
        for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(j | ((j + 1) & 15) << 4);
        dequant(KQ_Q5_1, &b, y, 32);
        CHECK(y[0] == 12.0f && y[1] == 4.5f && y[15] == 19.5f, "q5_1 low");
        CHECK(y[16] == 4.5f && y[23] == 8.0f && y[24] == 16.5f && y[31] == 12.0f, "q5_1 high");
    }
    {
        block_q8_0 b = {.d = 0x3000}; /* 0.125 */
        for (int j = 0; j < 32; j++) b.qs[j] = (int8_t)(j - 16);
        dequant(KQ_Q8_0, &b, y, 32);
        CHECK(y[0] == -2.0f && y[16] == 0.0f && y[31] == 1.875f, "q8_0");
        block_q8_1 c = {.d = 0x3000, .s = 0x7C00};
        memcpy(c.qs, b.qs, 32);
        dequant(KQ_Q8_1, &c, y, 32);
        CHECK(y[0] == -2.0f && y[31] == 1.875f, "q8_1 ignores s");
    }
    { /* IQ4_NL: d = 0.5, byte j = j | (15 - j) << 4 */
        block_iq4_nl b = {.d = 0x3800};
        for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(j | (15 - j) << 4);
        dequant(KQ_IQ4_NL, &b, y, 32);
        CHECK(y[0] == -63.5f && y[7] == -5.0f && y[8] == 0.5f && y[15] == 56.5f, "iq4_nl low");
        CHECK(y[16] == 56.5f && y[22] == 6.5f && y[31] == -63.5f, "iq4_nl high");
    }
}

/* Q4_K/Q5_K test scales: sc = 1 2 3 4 33 47 60 63, mins = 0 1 2 3 17 32 48 63, packed by hand. */
static const uint8_t k4_scales[12] = {0x81, 0x82, 0xC3, 0xC4, 0x40, 0x81,
                                      0xC2, 0xC3, 0x11, 0x0F, 0x0C, 0xFF};

static void test_dequant_k(void) {
    static float y[256];
    { /* Q4_K: d 1, dmin 0.5; qs[32g + l] = (l & 15) | (15 - (l & 15)) << 4 */
        static block_q4_K b = {.d = 0x3C00, .dmin = 0x3800};
        memcpy(b.scales, k4_scales, 12);
        for (int i = 0; i < 128; i++) b.qs[i] = (uint8_t)((i & 15) | (15 - (i & 15)) << 4);
        dequant(KQ_Q4_K, &b, y, 256);
        CHECK(y[0] == 0.0f && y[5] == 5.0f, "q4_K sub 0");
        CHECK(y[32] == 29.5f, "q4_K sub 1: 2*15 - 0.5*1, got %g", y[32]);
        CHECK(y[131] == 90.5f, "q4_K sub 4: 33*3 - 0.5*17, got %g", y[131]);
        CHECK(y[202] == 576.0f, "q4_K sub 6: 60*10 - 0.5*48, got %g", y[202]);
        CHECK(y[225] == 850.5f, "q4_K sub 7: 63*14 - 0.5*63, got %g", y[225]);
        CHECK(y[255] == -31.5f, "q4_K sub 7: 63*0 - 0.5*63, got %g", y[255]);
    }
    { /* Q5_K: as Q4_K plus qh[l] = A5 (l even) / 5A (l odd) */
        static block_q5_K b = {.d = 0x3C00, .dmin = 0x3800};
        memcpy(b.scales, k4_scales, 12);
        for (int i = 0; i < 128; i++) b.qs[i] = (uint8_t)((i & 15) | (15 - (i & 15)) << 4);
        for (int l = 0; l < 32; l++) b.qh[l] = (l & 1) ? 0x5A : 0xA5;
        dequant(KQ_Q5_K, &b, y, 256);
        CHECK(y[0] == 16.0f, "q5_K e0: q 0|16, got %g", y[0]);
        CHECK(y[1] == 1.0f, "q5_K e1: q 1, bit 0 of 5A clear, got %g", y[1]);
        CHECK(y[32] == 29.5f, "q5_K e32: q 15, got %g", y[32]);
        CHECK(y[33] == 59.5f, "q5_K e33: q 14|16 -> 2*30 - 0.5, got %g", y[33]);
        CHECK(y[224] == 1921.5f, "q5_K e224: q 15|16 -> 63*31 - 31.5, got %g", y[224]);
        CHECK(y[225] == 850.5f, "q5_K e225: q 14, got %g", y[225]);
    }
    { /* Q6_K: d 0.5, scales 1 -2 3 -4 ..., ql[i] = i, qh[i] = 0x1B * i */
        static block_q6_K b = {.d = 0x3800};
        for (int i = 0; i < 128; i++) b.ql[i] = (uint8_t)i;
        for (int i = 0; i < 64; i++) b.qh[i] = (uint8_t)(0x1B * i);
        for (int s = 0; s < 16; s++) b.scales[s] = (int8_t)((s & 1) ? -(s + 1) : s + 1);
        dequant(KQ_Q6_K, &b, y, 256);
        CHECK(y[0] == -16.0f, "q6_K e0: q -32 * 1 * 0.5, got %g", y[0]);
        CHECK(y[33] == 1.5f, "q6_K e33: ql[33] lo 1, qh[1] bits 2-3 = 2 -> q 1, scale 3, got %g",
              y[33]);
        CHECK(y[65] == -40.0f, "q6_K e65: ql[1] hi 0, qh[1] bits 4-5 = 1 -> q -16, scale 5, got %g",
              y[65]);
        CHECK(y[226] == 45.0f, "q6_K e226: ql[98] hi 6, qh[34] bits 6-7 = 2 -> q 6, scale 15, got %g",
              y[226]);
        CHECK(y[31] == 1.0f, "q6_K e31: ql[31] lo 15, qh[31] = 0x45 bits 0-1 = 1 -> q -1, scale -2, got %g",
              y[31]);
    }
    { /* IQ4_XS: d 0.25, ls = 0 63 32 33 31 16 48 1, qs[i] = (i & 15) | (3i & 15) << 4 */
        static block_iq4_xs b = {.d = 0x3400, .scales_h = 0x35AC, .scales_l = {0xF0, 0x10, 0x0F, 0x10}};
        for (int i = 0; i < 128; i++) b.qs[i] = (uint8_t)((i & 15) | ((3 * i) & 15) << 4);
        dequant(KQ_IQ4_XS, &b, y, 256);
        CHECK(y[0] == 1016.0f, "iq4_xs e0: 0.25*-32*-127, got %g", y[0]);
        CHECK(y[50] == -170.5f, "iq4_xs e50: 0.25*31*-22, got %g", y[50]);
        CHECK(y[69] == 0.0f, "iq4_xs e69: ls 32, got %g", y[69]);
        CHECK(y[99] == -16.25f, "iq4_xs e99: 0.25*1*-65, got %g", y[99]);
        CHECK(y[140] == -13.25f, "iq4_xs e140: 0.25*-1*53, got %g", y[140]);
        CHECK(y[255] == -534.75f, "iq4_xs e255: 0.25*-31*69, got %g", y[255]);
    }
    { /* Q8_K: d 0.5 (a float), q = p - 128 */
        static block_q8_K b = {.d = 0.5f};
        for (int p = 0; p < 256; p++) b.qs[p] = (int8_t)(p - 128);
        dequant(KQ_Q8_K, &b, y, 256);
        CHECK(y[0] == -64.0f && y[128] == 0.0f && y[255] == 63.5f, "q8_K");
    }
}

/* ---- quantize -> dequantize round trips: max error relative to the block's largest |x| ----
 * Magnitudes start at 0.05 so half scales stay normal (a subnormal half scale loses precision by
 * design). The symmetric types map the largest magnitude to their most negative level, so when
 * that element is negative the positive end clips: 1/8 of the max for Q4_0, 1/16 for Q5_0, 1/32
 * for Q6_K, 14/127 for the IQ4 codebook. */

static void test_round_trip(void) {
    static const struct {
        uint32_t type;
        double bound;
    } types[] = {
        {KQ_Q4_0, 0.126}, {KQ_Q4_1, 0.070}, {KQ_Q5_0, 0.063}, {KQ_Q5_1, 0.035},
        {KQ_Q8_0, 0.0045}, {KQ_Q8_1, 0.0045}, {KQ_Q4_K, 0.08}, {KQ_Q5_K, 0.04},
        {KQ_Q6_K, 0.032}, {KQ_Q8_K, 0.0045}, {KQ_IQ4_NL, 0.112}, {KQ_IQ4_XS, 0.12},
        {KQ_F16, 0x1p-11}, {KQ_BF16, 0x1p-8}, {KQ_F32, 0.0},
    };
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        const kq_traits *tr = kq_get(types[t].type);
        double worst = 0.0;
        for (int rep = 0; rep < 20; rep++) {
            random_row_from(xf, NMAX, -1.3f);
            if (rep == 0) memset(xf, 0, 64 * sizeof(float)); /* all-zero blocks */
            if (rep == 1) for (int j = 0; j < NMAX; j++) xf[j] = fabsf(xf[j]); /* one-signed */
            memset(wbuf, 0xA5, sizeof wbuf);
            tr->quantize(xf, wbuf, NMAX);
            tr->dequant(wbuf, tmp, NMAX);
            /* error relative to the block's (super-block's) largest magnitude */
            for (int b = 0; b < NMAX; b += tr->blck < 32 ? 32 : tr->blck) {
                const int len = tr->blck < 32 ? 32 : tr->blck;
                float amax = 0.0f;
                for (int j = 0; j < len; j++) amax = fmaxf(amax, fabsf(xf[b + j]));
                for (int j = 0; j < len; j++) {
                    const double e = fabs((double)tmp[b + j] - xf[b + j]);
                    const double rel = amax > 0 ? e / amax : e;
                    if (rel > worst) worst = rel;
                }
            }
        }
        if (getenv("KQ_VERBOSE")) printf("%-6s round trip worst %.5f\n", tr->name, worst);
        CHECK(worst <= types[t].bound, "%s round trip: worst error %.5f of block max (bound %.5f)",
              tr->name, worst, types[t].bound);
    }
}

/* ---- activation quantizers against a direct computation ---- */

static int round_even(float v) { /* nearest, ties to even, via double */
    const double fl = floor((double)v), fr = (double)v - fl;
    int r = (int)fl;
    if (fr > 0.5 || (fr == 0.5 && (r & 1))) r++;
    return r;
}

static void test_act_quant(void) {
    /* exact ties: amax 127 gives d = 1 so x * id is x itself */
    float x[256] = {127.0f, 2.5f, -3.5f, 0.5f, -0.5f, 1.4999f, -126.5f};
    block_q8_0 q0[8];
    kq_get(KQ_Q8_0)->quantize(x, q0, 32);
    CHECK(q0[0].d == 0x3C00, "q8_0 d = 1");
    /* llama.cpp's x86 AVX2 quantizer: x * (127 / amax), rounded to nearest with ties to even */
    CHECK(q0[0].qs[0] == 127 && q0[0].qs[1] == 2 && q0[0].qs[2] == -4 && q0[0].qs[3] == 0 &&
              q0[0].qs[4] == 0 && q0[0].qs[5] == 1 && q0[0].qs[6] == -126,
          "q8_0 rounds halves to even");
    static block_q8_K qk[4];
    kq_get(KQ_Q8_K)->quantize(x, qk, 256);
    CHECK(qk[0].d == -1.0f, "q8_K d = 1/(-127/127) = -1, got %g", qk[0].d);
    CHECK(qk[0].qs[0] == -127 && qk[0].qs[1] == -2 && qk[0].qs[2] == 4 && qk[0].qs[3] == 0 &&
              qk[0].qs[4] == 0 && qk[0].qs[5] == -1 && qk[0].qs[6] == 126,
          "q8_K rounds halves to even");
    CHECK(qk[0].bsums[0] == -127 - 2 + 4 - 1 + 126 && qk[0].bsums[1] == 0, "q8_K bsums");
    float z[256] = {0};
    kq_get(KQ_Q8_K)->quantize(z, qk, 256);
    CHECK(qk[0].d == 0.0f && qk[0].qs[7] == 0 && qk[0].bsums[3] == 0, "q8_K zero block");
    block_q8_1 q1[8];
    kq_get(KQ_Q8_1)->quantize(z, q1, 32);
    CHECK(q1[0].d == 0 && q1[0].s == 0 && q1[0].qs[3] == 0, "q8_1 zero block");

    int bad0 = 0, bad1 = 0, badk = 0;
    for (int rep = 0; rep < 50; rep++) {
        random_row(xf, NMAX);
        block_q8_0 *a = (block_q8_0 *)xbuf;
        kq_get(KQ_Q8_0)->quantize(xf, a, NMAX);
        for (int b = 0; b < NMAX / 32; b++) {
            float amax = 0.0f;
            for (int j = 0; j < 32; j++)
                if (fabsf(xf[32 * b + j]) > amax) amax = fabsf(xf[32 * b + j]);
            const float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
            if (a[b].d != kq_f32_to_f16(d)) bad0++;
            for (int j = 0; j < 32; j++)
                if (a[b].qs[j] != round_even(xf[32 * b + j] * id)) bad0++;
        }
        block_q8_1 *c = (block_q8_1 *)xbuf;
        kq_get(KQ_Q8_1)->quantize(xf, c, NMAX);
        for (int b = 0; b < NMAX / 32; b++) {
            float amax = 0.0f;
            for (int j = 0; j < 32; j++)
                if (fabsf(xf[32 * b + j]) > amax) amax = fabsf(xf[32 * b + j]);
            const float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
            int s = 0;
            for (int j = 0; j < 32; j++) {
                const int q = round_even(xf[32 * b + j] * id);
                s += q;
                if (c[b].qs[j] != q) bad1++;
            }
            if (c[b].d != kq_f32_to_f16(d) || c[b].s != kq_f32_to_f16((float)s * d)) bad1++;
        }
        block_q8_K *k = (block_q8_K *)xbuf;
        kq_get(KQ_Q8_K)->quantize(xf, k, NMAX);
        for (int b = 0; b < NMAX / 256; b++) {
            const float *v = xf + 256 * b;
            int imax = 0;
            for (int p = 1; p < 256; p++)
                if (fabsf(v[p]) > fabsf(v[imax])) imax = p;
            const float iscale = -127.0f / v[imax];
            if (k[b].d != 1.0f / iscale) badk++;
            for (int p = 0; p < 256; p++) {
                int q = round_even(iscale * v[p]);
                if (q > 127) q = 127;
                if (k[b].qs[p] != q) badk++;
            }
            for (int j = 0; j < 16; j++) {
                int s = 0;
                for (int l = 0; l < 16; l++) s += k[b].qs[16 * j + l];
                if (k[b].bsums[j] != s) badk++;
            }
        }
    }
    CHECK(bad0 == 0, "q8_0 mismatches: %d", bad0);
    CHECK(bad1 == 0, "q8_1 mismatches: %d", bad1);
    CHECK(badk == 0, "q8_K mismatches: %d", badk);
}

/* ---- dots against float64 over the dequantised operands ---- */

static uint16_t rand_half(float lo, float hi) {
    const float v = lo + (hi - lo) * (rng_unit() * 0.5f + 0.5f);
    return kq_f32_to_f16((rng_next() & 1) ? -v : v);
}

/* Random quant bits with sane scales, so every bit pattern of the quants gets used. */
static void random_weights(uint32_t type, void *w, int n) {
    const kq_traits *t = kq_get(type);
    if (t->blck == 1) { /* float types: random values of the type */
        random_row(xf, n);
        t->quantize(xf, w, n);
        return;
    }
    uint8_t *p = w;
    for (size_t i = 0; i < kq_row_bytes(type, n); i++) p[i] = (uint8_t)rng_next();
    for (int b = 0; b < n / t->blck; b++) {
        switch (type) {
        case KQ_Q4_0: ((block_q4_0 *)w)[b].d = rand_half(1e-3f, 1.0f); break;
        case KQ_Q5_0: ((block_q5_0 *)w)[b].d = rand_half(1e-3f, 1.0f); break;
        case KQ_Q8_0: ((block_q8_0 *)w)[b].d = rand_half(1e-3f, 1.0f); break;
        case KQ_IQ4_NL: ((block_iq4_nl *)w)[b].d = rand_half(1e-3f, 1.0f); break;
        case KQ_Q4_1:
            ((block_q4_1 *)w)[b].d = rand_half(1e-3f, 1.0f);
            ((block_q4_1 *)w)[b].m = rand_half(1e-3f, 4.0f);
            break;
        case KQ_Q5_1:
            ((block_q5_1 *)w)[b].d = rand_half(1e-3f, 1.0f);
            ((block_q5_1 *)w)[b].m = rand_half(1e-3f, 4.0f);
            break;
        case KQ_Q4_K:
            ((block_q4_K *)w)[b].d = rand_half(1e-4f, 0.1f);
            ((block_q4_K *)w)[b].dmin = rand_half(1e-4f, 0.1f);
            break;
        case KQ_Q5_K:
            ((block_q5_K *)w)[b].d = rand_half(1e-4f, 0.1f);
            ((block_q5_K *)w)[b].dmin = rand_half(1e-4f, 0.1f);
            break;
        case KQ_Q6_K: ((block_q6_K *)w)[b].d = rand_half(1e-4f, 0.1f); break;
        case KQ_IQ4_XS: ((block_iq4_xs *)w)[b].d = rand_half(1e-4f, 0.1f); break;
        default: CHECK(0, "no random weights for type %u", type);
        }
    }
}

static void test_dots(void) {
    static const uint32_t types[] = {KQ_F32, KQ_F16, KQ_BF16, KQ_Q4_0, KQ_Q4_1, KQ_Q5_0,
                                     KQ_Q5_1, KQ_Q8_0, KQ_Q4_K, KQ_Q5_K, KQ_Q6_K, KQ_IQ4_NL,
                                     KQ_IQ4_XS};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        const kq_traits *tw = kq_get(types[t]), *tx = kq_get(tw->vec_type);
        double worst = 0.0;
        for (int rep = 0; rep < 40; rep++) {
            const int n = rep % 4 == 3 ? tw->blck * (tw->blck == 1 ? 37 : 1) : NMAX;
            if (rep & 1) {
                random_weights(types[t], wbuf, n);
            } else { /* weights from the quantizer: realistic scale patterns */
                random_row(xf, n);
                tw->quantize(xf, wbuf, n);
            }
            random_row(xf, n);
            if (rep == 2) for (int j = 0; j < 32; j++) xf[j] = 0.0f; /* a zero activation block */
            tx->quantize(xf, xbuf, n);
            tw->dequant(wbuf, wf, n);
            tx->dequant(xbuf, tmp, n);
            double want = 0.0, mag = 0.0;
            for (int i = 0; i < n; i++) {
                want += (double)wf[i] * tmp[i];
                mag += fabs((double)wf[i] * tmp[i]);
            }
            if (tw->vec_type == KQ_Q8_1) {
                /* the min term uses the block's stored half sum s, not d * sum(q) */
                const block_q8_1 *y = (const block_q8_1 *)xbuf;
                for (int b = 0; b < n / 32; b++) {
                    const float m = kq_f16_to_f32(types[t] == KQ_Q4_1 ? ((block_q4_1 *)wbuf)[b].m
                                                                      : ((block_q5_1 *)wbuf)[b].m);
                    int s = 0;
                    for (int j = 0; j < 32; j++) s += y[b].qs[j];
                    const double exact = (double)kq_f16_to_f32(y[b].d) * s;
                    want += (double)m * ((double)kq_f16_to_f32(y[b].s) - exact);
                    mag += fabs((double)m * kq_f16_to_f32(y[b].s));
                }
            }
            const double got = tw->dot(wbuf, xbuf, n);
            const double rel = mag > 0 ? fabs(got - want) / mag : fabs(got - want);
            if (rel > worst) worst = rel;
        }
        if (getenv("KQ_VERBOSE")) printf("%-6s dot worst rel %.3g\n", tw->name, worst);
        CHECK(worst <= 1e-5, "%s dot: worst relative error %.3g", tw->name, worst);
    }
}

/* A few dots worked out by hand, so the block-level formulas are pinned exactly. */
static void test_dot_by_hand(void) {
    { /* Q4_0 (d 0.5) x Q8_0 (d 2): weights q - 8 = -8..7 and 7..-8; activations all 1 */
        block_q4_0 w = {.d = 0x3800};
        for (int j = 0; j < 16; j++) w.qs[j] = (uint8_t)(j | (15 - j) << 4);
        block_q8_0 x = {.d = 0x4000};
        for (int j = 0; j < 32; j++) x.qs[j] = (int8_t)(j < 16 ? 1 : 3);
        /* sum (j-8) = -8, sum 3*(7-j) = 3*(-8) = -24; (-32) * 0.5 * 2 = -32 */
        CHECK(kq_dot_q4_0(&w, &x, 32) == -32.0f, "q4_0 dot by hand: %g", kq_dot_q4_0(&w, &x, 32));
    }
    { /* Q4_1 d 1 m 2 x Q8_1 d 1, s = 8 (deliberately not d*sum(q)) */
        block_q4_1 w = {.d = 0x3C00, .m = 0x4000};
        for (int j = 0; j < 16; j++) w.qs[j] = 0x21; /* q 1 low, 2 high */
        block_q8_1 x = {.d = 0x3C00, .s = 0x4800};
        for (int j = 0; j < 32; j++) x.qs[j] = 1;
        /* 16*1 + 16*2 = 48; + m*s = 2*8 = 16 -> 64 */
        CHECK(kq_dot_q4_1(&w, &x, 32) == 64.0f, "q4_1 dot by hand: %g", kq_dot_q4_1(&w, &x, 32));
    }
    { /* Q4_K x Q8_K: min term comes from bsums, not from the quants */
        static block_q4_K w = {.d = 0x3C00, .dmin = 0x3C00};
        memcpy(w.scales, k4_scales, 12);
        memset(w.qs, 0, sizeof w.qs); /* all weight quants 0: only the mins remain */
        static block_q8_K x = {.d = 2.0f};
        for (int j = 0; j < 16; j++) x.bsums[j] = (int16_t)(j + 1);
        /* sum_j bsums[j] * min[j/2] = (1+2)*0 + (3+4)*1 + (5+6)*2 + (7+8)*3 + (9+10)*17
         * + (11+12)*32 + (13+14)*48 + (15+16)*63 = 0+7+22+45+323+736+1296+1953 = 4382 */
        CHECK(kq_dot_q4_K(&w, &x, 256) == -2.0f * 4382.0f, "q4_K dot by hand: %g",
              kq_dot_q4_K(&w, &x, 256));
    }
}

/* The float order of the 32-element types is ggml's portable one, bit for bit: per block one exact
 * integer sum, then sum = fma(d_w * d_x, sumi, sum). Written out independently here for Q8_0 and
 * Q4_0 (unsigned nibbles minus 8) and compared for exact equality. */
static void test_dot_order(void) {
    int bad = 0;
    for (int rep = 0; rep < 20; rep++) {
        for (int q4 = 0; q4 < 2; q4++) {
            random_row(xf, NMAX);
            kq_get(q4 ? KQ_Q4_0 : KQ_Q8_0)->quantize(xf, wbuf, NMAX);
            random_row(xf, NMAX);
            block_q8_0 *x = (block_q8_0 *)xbuf;
            kq_get(KQ_Q8_0)->quantize(xf, x, NMAX);
            float sum = 0.0f;
            for (int b = 0; b < NMAX / 32; b++) {
                const block_q4_0 *w4 = (const block_q4_0 *)wbuf + b;
                const block_q8_0 *w8 = (const block_q8_0 *)wbuf + b;
                int s = 0;
                for (int e = 0; e < 32; e++) {
                    const int q = q4 ? (e < 16 ? w4->qs[e] & 0xF : w4->qs[e - 16] >> 4) - 8 : w8->qs[e];
                    s += q * x[b].qs[e];
                }
                const float d = kq_f16_to_f32(q4 ? w4->d : w8->d) * kq_f16_to_f32(x[b].d);
                sum = KQ_FMA(d, (float)s, sum) /* fused or not, as the build says */;
            }
            if (kq_get(q4 ? KQ_Q4_0 : KQ_Q8_0)->dot(wbuf, x, NMAX) != sum) bad++;
        }
    }
    CHECK(bad == 0, "q8_0 / q4_0 dot not in ggml's portable order: %d of 40", bad);
}

/* Activations too small for 127/amax (or -127/max) to be finite, and NaN/Inf ones: the quantizers
 * stay defined (the sanitizer's float-cast-overflow check would stop here) and give bounded quants. */
static void test_quantize_extremes(void) {
    const uint32_t types[] = {KQ_Q8_0, KQ_Q8_1, KQ_Q8_K};
    for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
        const kq_traits *tr = kq_get(types[t]);
        float x[256];
        uint8_t q[512];
        for (int i = 0; i < 256; i++) x[i] = (i % 3 ? 1 : -1) * 1e-45f * (float)(i % 5); /* subnormals */
        tr->quantize(x, q, 256);
        float back[256];
        tr->dequant(q, back, 256);
        bool finite = true;
        for (int i = 0; i < 256; i++) finite &= isfinite(back[i]);
        CHECK(finite, "%s: tiny activations dequantise to non-finite values", tr->name);
        x[3] = NAN, x[7] = INFINITY, x[9] = -INFINITY;
        tr->quantize(x, q, 256); /* must not be undefined behaviour */
    }
}

int main(void) {
    test_quantize_extremes();
    test_f16();
    test_bf16();
    test_table();
    test_dequant_legacy();
    test_dequant_k();
    test_round_trip();
    test_act_quant();
    test_dots();
    test_dot_by_hand();
    test_dot_order();
    return check_report("kernels");
}
