/* fp16.c: IEEE half and bfloat16 <-> float, by bit manipulation so the result never depends on the
 * compiler or the target having native half support. */
#include <string.h>

#include "quant.h"

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float kq_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1Fu;
    const uint32_t mant = h & 0x3FFu;
    if (exp == 0x1F) /* Inf / NaN: widen the payload, keep it quiet or not as it was */
        return bits_f32(sign | 0x7F800000u | (mant << 13));
    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24 is exact in float */
        const float v = (float)mant * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13)); /* rebias 15 -> 127 */
}

uint16_t kq_f32_to_f16(float f) {
    const uint32_t u = f32_bits(f);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) /* NaN: force quiet so a payload in the dropped bits cannot make it Inf */
        return (uint16_t)(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
    if (a >= 0x477FF000u) /* >= 65520, halfway above the largest half 65504: ties go to Inf */
        return (uint16_t)(sign | 0x7C00u);
    if (a >= 0x38800000u) { /* normal half (>= 2^-14) */
        uint32_t h = (a - 0x38000000u) >> 13; /* rebias 127 -> 15, drop 13 mantissa bits */
        const uint32_t rem = a & 0x1FFFu;
        if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
            h++; /* a mantissa carry correctly bumps the exponent */
        return (uint16_t)(sign | h);
    }
    if (a <= 0x33000000u) /* <= 2^-25: rounds to zero (2^-25 itself is a tie, to even 0) */
        return sign;
    /* subnormal half: the value in units of 2^-24 is mant * 2^(exp - 126) */
    const uint32_t exp = a >> 23;
    const uint32_t mant = (a & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126u - exp; /* 14..24 here */
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (h & 1u)))
        h++; /* may reach 0x400, which is exactly the smallest normal */
    return (uint16_t)(sign | h);
}

float kq_bf16_to_f32(uint16_t h) {
    return bits_f32((uint32_t)h << 16);
}

uint16_t kq_f32_to_bf16(float f) {
    const uint32_t u = f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) /* NaN: truncate and force quiet, as ggml does */
        return (uint16_t)((u >> 16) | 0x40u);
    /* round to nearest even on the dropped 16 bits; overflow carries into Inf as it should */
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}
