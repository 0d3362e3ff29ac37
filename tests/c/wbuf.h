/* wbuf.h: a growable byte buffer with little-endian writers, for the tests that build GGUF files
 * in memory (test_gguf.c, test_model.c). */
#ifndef LFM2_TEST_WBUF_H
#define LFM2_TEST_WBUF_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *d;
    size_t n, cap;
} wbuf;

static inline void wr32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void wr64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static inline void wb_put(wbuf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 256;
        b->d = realloc(b->d, b->cap);
        if (!b->d) abort();
    }
    memcpy(b->d + b->n, p, n);
    b->n += n;
}
static inline void wb_u8(wbuf *b, uint8_t v) { wb_put(b, &v, 1); }
static inline void wb_u32(wbuf *b, uint32_t v) {
    uint8_t t[4];
    wr32(t, v);
    wb_put(b, t, 4);
}
static inline void wb_u64(wbuf *b, uint64_t v) {
    uint8_t t[8];
    wr64(t, v);
    wb_put(b, t, 8);
}
/* A GGUF string: u64 length, then the bytes. */
static inline void wb_strn(wbuf *b, const char *s, size_t n) {
    wb_u64(b, n);
    wb_put(b, s, n);
}
static inline void wb_str(wbuf *b, const char *s) { wb_strn(b, s, strlen(s)); }
static inline void wb_zeros(wbuf *b, size_t n) {
    for (size_t i = 0; i < n; i++) wb_u8(b, 0);
}
static inline void wb_pad(wbuf *b, size_t align) {
    if (b->n % align) wb_zeros(b, align - b->n % align);
}

#endif
