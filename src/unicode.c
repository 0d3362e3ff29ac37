/* unicode.c: UTF-8 decoding/encoding and code point category lookup (see unicode.h). */
#include "unicode.h"

uint16_t ucp_flags(uint32_t cp) {
    if (cp < 256) return lfm2_ucp_latin1_flags[cp];
    if (cp >= UCP_MAX) return UCP_UNDEFINED;
    /* last range whose first code point is <= cp (range 0 starts at 0) */
    uint32_t lo = 0, hi = lfm2_ucp_n_ranges;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (lfm2_ucp_range_first[mid] <= cp) lo = mid;
        else hi = mid;
    }
    return lfm2_ucp_range_flags[lo];
}

uint32_t utf8_decode_lenient(const unsigned char *s, size_t n, size_t *pos) {
    size_t i = *pos;
    unsigned b0 = s[i];
    if (b0 < 0x80) {
        *pos = i + 1;
        return b0;
    }
    size_t len;
    uint32_t cp;
    if ((b0 & 0xE0) == 0xC0) { len = 2; cp = b0 & 0x1F; }
    else if ((b0 & 0xF0) == 0xE0) { len = 3; cp = b0 & 0x0F; }
    else if ((b0 & 0xF8) == 0xF0) { len = 4; cp = b0 & 0x07; }
    else { len = 0; cp = 0; } /* continuation byte or 0xF8..0xFF */
    if (len == 0 || n - i < len) goto invalid;
    for (size_t k = 1; k < len; k++) {
        unsigned b = s[i + k];
        if ((b & 0xC0) != 0x80) goto invalid;
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp >= UCP_MAX) goto invalid;
    *pos = i + len;
    return cp;
invalid:
    *pos = i + 1;
    return UCP_REPLACEMENT;
}

size_t utf8_encode(uint32_t cp, unsigned char *out) {
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t utf8_valid_seq(const unsigned char *s, size_t n) {
    if (n == 0) return 0;
    unsigned b0 = s[0];
    if (b0 < 0x80) return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (b0 >= 0xC2 && b0 <= 0xDF) len = 2;
    else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3;
        if (b0 == 0xE0) lo = 0xA0;      /* no overlongs */
        else if (b0 == 0xED) hi = 0x9F; /* no surrogates */
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4;
        if (b0 == 0xF0) lo = 0x90;
        else if (b0 == 0xF4) hi = 0x8F; /* <= U+10FFFF */
    } else return 0;
    if (n < len) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t k = 2; k < len; k++)
        if ((s[k] & 0xC0) != 0x80) return 0;
    return len;
}
