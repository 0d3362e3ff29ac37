/* unicode.h: the little Unicode the tokenizer needs: lenient UTF-8 decoding as llama.cpp does it,
 * UTF-8 encoding, and per-code-point category flags (tables generated into unicode_tables.c by
 * tests/tools/gen_unicode_tables.py from the Unicode Character Database). */
#ifndef LFM2_UNICODE_H
#define LFM2_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* Category flags: one General Category class per code point, plus the White_Space property. Same
 * bit values as llama.cpp's unicode_cpt_flags, so the tables can be compared with its own. */
enum {
    UCP_UNDEFINED = 0x0001,   /* Cn: unassigned (also every value >= 0x110000) */
    UCP_NUMBER = 0x0002,      /* \p{N} */
    UCP_LETTER = 0x0004,      /* \p{L} */
    UCP_SEPARATOR = 0x0008,   /* \p{Z} */
    UCP_MARK = 0x0010,        /* \p{M} */
    UCP_PUNCTUATION = 0x0020, /* \p{P} */
    UCP_SYMBOL = 0x0040,      /* \p{S} */
    UCP_CONTROL = 0x0080,     /* \p{C} (Cc Cf Co Cs) */
    UCP_WHITESPACE = 0x0100   /* \s: White_Space */
};

#define UCP_MAX 0x110000u
#define UCP_REPLACEMENT 0xFFFDu

/* Generated tables (unicode_tables.c). */
extern const uint16_t lfm2_ucp_latin1_flags[256];
extern const uint32_t lfm2_ucp_n_ranges;
extern const uint32_t lfm2_ucp_range_first[];
extern const uint16_t lfm2_ucp_range_flags[];

/* Flags of a code point (UCP_UNDEFINED for values >= 0x110000). Never 0. */
uint16_t ucp_flags(uint32_t cp);

/* Decode one code point at s[*pos] (requires *pos < n) and advance *pos, the way llama.cpp's
 * unicode_cpts_from_utf8 does: structurally valid 1-4 byte sequences are accepted as they are
 * (overlong forms and surrogates included); a byte that does not start a complete sequence gives
 * U+FFFD and advances by one byte. One difference: llama.cpp decodes 4-byte sequences above
 * U+10FFFF and then throws when re-encoding them; here they are invalid bytes (U+FFFD each). */
uint32_t utf8_decode_lenient(const unsigned char *s, size_t n, size_t *pos);

/* Length of the UTF-8 encoding of cp (< 0x110000): 1..4. */
static inline size_t utf8_len(uint32_t cp) {
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* Encode cp (< 0x110000) into out; returns the length (1..4). */
size_t utf8_encode(uint32_t cp, unsigned char *out);

/* Length of the strictly valid UTF-8 sequence starting at s[0..n) (1..4), or 0 if s does not start
 * with one (invalid byte, overlong, surrogate, > U+10FFFF, or cut short by n). */
size_t utf8_valid_seq(const unsigned char *s, size_t n);

#endif
