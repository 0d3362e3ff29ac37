/* gguf.c: GGUF v2/v3 reader over one read callback.
 *
 * The header is read through a small buffered cursor (64 KiB per callback; callbacks cross the
 * JS boundary in wasm). Everything read is validated against the file size before anything is
 * allocated, so a bad file gives a status and a message, never a crash or a huge allocation.
 *
 * Error rules (see also tests/c/test_gguf.c):
 *  - A file shorter than 4 bytes is LFM2_E_TRUNCATED if its bytes are a prefix of "GGUF" (the
 *    empty file included), LFM2_E_MAGIC otherwise.
 *  - A count or length is LFM2_E_TOO_LARGE when the bytes it implies (at least 13 per key/value,
 *    32 per tensor info, the element size per array element, 8 per string element, the length of
 *    a string) would take the header past GGUF_MAX_HEADER (1 GiB) or overflow. A smaller one that
 *    runs past the end of the file is LFM2_E_TRUNCATED: a cut file and an inflated count cannot be
 *    told apart, so every prefix of a valid header gives LFM2_E_TRUNCATED, and nothing is
 *    allocated before the file is known to hold the bytes.
 *  - The header ends at the last tensor info; the data section starts at that offset rounded up
 *    to the alignment. A file that ends before the data section starts is LFM2_E_TRUNCATED; a
 *    tensor whose data runs past the end of the file is LFM2_E_TENSOR_BOUNDS.
 *  - Tensor data must be aligned (relative offset a multiple of general.alignment), inside the
 *    file and not overlap other tensors (order and gaps are free), else LFM2_E_TENSOR_BOUNDS.
 */
#include "gguf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"
#include "status.h"

#define GGUF_CHUNK ((size_t)64 * 1024)        /* bytes per read callback */
#define GGUF_MAX_HEADER ((uint64_t)1 << 30)   /* metadata + tensor table must end before 1 GiB */
#define GGUF_DEFAULT_ALIGNMENT 32
#define KV_MIN_BYTES 13 /* key length (8) + value type (4) + smallest value (1) */
#define TI_MIN_BYTES 32 /* name length (8) + n_dims (4) + one dimension (8) + type (4) + offset (8) */

/* ------------------------------------------------------------------------------------------ */
/* The file object: the public struct first, then private lookup tables. */

typedef struct {
    uint32_t *slot; /* 0 = empty, else index + 1 */
    uint64_t mask;  /* capacity - 1 (capacity a power of two), or 0 with slot == NULL */
    uint64_t count;
} htab;

typedef struct {
    gguf_file pub;
    uint64_t kv_cap, t_cap;
    uint64_t *key_len;  /* byte length of each key (keys may contain NULs) */
    uint64_t *name_len; /* byte length of each tensor name */
    htab kv_index, t_index;
} gguf_impl;

static uint64_t hash_bytes(const char *s, uint64_t n) {
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (uint64_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3u;
    }
    return h;
}

static const char *entry_name(const gguf_impl *m, int tensors, uint32_t i, uint64_t *len) {
    if (tensors) {
        *len = m->name_len[i];
        return m->pub.tensors[i].name;
    }
    *len = m->key_len[i];
    return m->pub.kv[i].key;
}

/* Index of the entry named (s, n), or -1. */
static int64_t ht_find(const gguf_impl *m, int tensors, const char *s, uint64_t n) {
    const htab *h = tensors ? &m->t_index : &m->kv_index;
    if (!h->slot) return -1;
    for (uint64_t p = hash_bytes(s, n) & h->mask;; p = (p + 1) & h->mask) {
        uint32_t e = h->slot[p];
        if (!e) return -1;
        uint64_t len;
        const char *name = entry_name(m, tensors, e - 1, &len);
        if (len == n && memcmp(name, s, (size_t)n) == 0) return (int64_t)(e - 1);
    }
}

static void ht_put(const gguf_impl *m, int tensors, htab *h, uint32_t i) {
    uint64_t len;
    const char *name = entry_name(m, tensors, i, &len);
    uint64_t p = hash_bytes(name, len) & h->mask;
    while (h->slot[p]) p = (p + 1) & h->mask;
    h->slot[p] = i + 1;
    h->count++;
}

/* Add entry i (already stored) to its index, growing the table to keep it at most half full. */
static lfm2_status ht_add(gguf_impl *m, int tensors, uint32_t i) {
    htab *h = tensors ? &m->t_index : &m->kv_index;
    if (!h->slot || (h->count + 1) * 2 > h->mask + 1) {
        uint64_t cap = h->slot ? (h->mask + 1) * 2 : 64;
        if (cap > SIZE_MAX / sizeof(uint32_t)) return lfm2_fail(LFM2_E_NOMEM, "gguf: index too large");
        uint32_t *slot = calloc((size_t)cap, sizeof(uint32_t));
        if (!slot) return lfm2_fail(LFM2_E_NOMEM, "gguf: out of memory for the name index");
        htab nh = {slot, cap - 1, 0};
        for (uint64_t p = 0; h->slot && p <= h->mask; p++)
            if (h->slot[p]) ht_put(m, tensors, &nh, h->slot[p] - 1);
        free(h->slot);
        *h = nh;
    }
    ht_put(m, tensors, h, i);
    return LFM2_OK;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    gguf_impl *m = (gguf_impl *)f;
    for (uint64_t i = 0; i < f->n_kv; i++) {
        gguf_kv *kv = &f->kv[i];
        free(kv->key);
        if (kv->type == GGUF_STRING) free((void *)kv->v.str.ptr);
        else if (kv->type == GGUF_ARRAY) free(kv->v.arr.data); /* string arrays: one block */
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->kv);
    free(f->tensors);
    free(m->key_len);
    free(m->name_len);
    free(m->kv_index.slot);
    free(m->t_index.slot);
    free(m);
}

/* ------------------------------------------------------------------------------------------ */
/* Buffered cursor. pos never exceeds size nor GGUF_MAX_HEADER. */

typedef struct {
    lfm2_read_fn read;
    void *ctx;
    uint64_t size, pos;
    uint8_t *buf;
    uint64_t buf_off;
    size_t buf_len;
    /* What is being parsed, for messages. */
    const char *kind; /* "key", "tensor info" or NULL */
    uint64_t index;
    const char *name; /* NULL until read */
    char where[160];
} cursor;

static const char *where(cursor *c) {
    if (!c->kind) return "";
    if (c->name)
        snprintf(c->where, sizeof c->where, " (%s #%" PRIu64 " '%.80s')", c->kind, c->index, c->name);
    else
        snprintf(c->where, sizeof c->where, " (%s #%" PRIu64 ")", c->kind, c->index);
    return c->where;
}

/* Check that n more bytes (overflowed: more than 2^64) may be read at the cursor. */
static lfm2_status cur_need(cursor *c, uint64_t n, int overflowed, const char *what) {
    if (overflowed || n > GGUF_MAX_HEADER - c->pos) {
        if (overflowed)
            return lfm2_fail(LFM2_E_TOO_LARGE,
                             "gguf: %s at offset %" PRIu64 " needs more than 2^64 bytes%s", what, c->pos,
                             where(c));
        return lfm2_fail(LFM2_E_TOO_LARGE,
                         "gguf: %s at offset %" PRIu64 " needs %" PRIu64
                         " bytes, past the 1 GiB header limit%s",
                         what, c->pos, n, where(c));
    }
    if (n > c->size - c->pos)
        return lfm2_fail(LFM2_E_TRUNCATED,
                         "gguf: file truncated: %s at offset %" PRIu64 " needs %" PRIu64
                         " bytes, the file ends at %" PRIu64 "%s",
                         what, c->pos, n, c->size, where(c));
    return LFM2_OK;
}

static lfm2_status cur_read(cursor *c, void *dst, uint64_t n, const char *what) {
    lfm2_status s = cur_need(c, n, 0, what);
    if (s) return s;
    uint8_t *d = dst;
    while (n > 0) {
        if (c->pos >= c->buf_off && c->pos - c->buf_off < c->buf_len) {
            size_t off = (size_t)(c->pos - c->buf_off);
            size_t k = c->buf_len - off;
            if (k > n) k = (size_t)n;
            memcpy(d, c->buf + off, k);
            d += k;
            n -= k;
            c->pos += k;
            continue;
        }
        if (n >= GGUF_CHUNK) { /* big read: straight into the destination */
            if (c->read(c->ctx, c->pos, (size_t)n, d))
                return lfm2_fail(LFM2_E_IO, "gguf: read of %" PRIu64 " bytes at offset %" PRIu64 " failed%s",
                                 n, c->pos, where(c));
            c->pos += n;
            return LFM2_OK;
        }
        uint64_t len = c->size - c->pos;
        if (len > GGUF_CHUNK) len = GGUF_CHUNK;
        if (c->read(c->ctx, c->pos, (size_t)len, c->buf)) {
            c->buf_len = 0;
            return lfm2_fail(LFM2_E_IO, "gguf: read of %" PRIu64 " bytes at offset %" PRIu64 " failed%s", len,
                             c->pos, where(c));
        }
        c->buf_off = c->pos;
        c->buf_len = (size_t)len;
    }
    return LFM2_OK;
}

static lfm2_status cur_u32(cursor *c, uint32_t *v, const char *what) {
    uint8_t b[4];
    lfm2_status s = cur_read(c, b, 4, what);
    if (s) return s;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return LFM2_OK;
}

static lfm2_status cur_u64(cursor *c, uint64_t *v, const char *what) {
    uint8_t b[8];
    lfm2_status s = cur_read(c, b, 8, what);
    if (s) return s;
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) x = x << 8 | b[i];
    *v = x;
    return LFM2_OK;
}

/* A string: u64 length + bytes. Returns a malloc'd NUL-terminated copy. */
static lfm2_status cur_str(cursor *c, char **out, uint64_t *len, const char *what) {
    *out = NULL;
    lfm2_status s = cur_u64(c, len, what);
    if (s) return s;
    if ((s = cur_need(c, *len, 0, what))) return s;
    if (*len >= SIZE_MAX) return lfm2_fail(LFM2_E_NOMEM, "gguf: %s too long%s", what, where(c));
    char *p = malloc((size_t)*len + 1);
    if (!p)
        return lfm2_fail(LFM2_E_NOMEM, "gguf: out of memory for %s of %" PRIu64 " bytes%s", what, *len,
                         where(c));
    if ((s = cur_read(c, p, *len, what))) {
        free(p);
        return s;
    }
    p[*len] = '\0';
    *out = p;
    return LFM2_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Metadata */

static const uint8_t vtype_size[GGUF_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

static const char *const vtype_names[GGUF_VTYPE_COUNT] = {
    "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
    "BOOL",  "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"};

const char *gguf_vtype_name(enum gguf_vtype t) {
    return (unsigned)t < GGUF_VTYPE_COUNT ? vtype_names[t] : "UNKNOWN";
}

static int vtype_is_int(enum gguf_vtype t) {
    return t == GGUF_U8 || t == GGUF_I8 || t == GGUF_U16 || t == GGUF_I16 || t == GGUF_U32 ||
           t == GGUF_I32 || t == GGUF_U64 || t == GGUF_I64;
}

static int vtype_is_signed(enum gguf_vtype t) {
    return t == GGUF_I8 || t == GGUF_I16 || t == GGUF_I32 || t == GGUF_I64;
}

/* Decode one little-endian scalar of type t (not STRING/ARRAY) into kv->v. */
static void decode_scalar(enum gguf_vtype t, const uint8_t *b, gguf_kv *kv) {
    uint64_t x = 0;
    unsigned n = vtype_size[t];
    for (unsigned i = n; i-- > 0;) x = x << 8 | b[i];
    switch (t) {
    case GGUF_I8: kv->v.i64 = (int8_t)(uint8_t)x; break;
    case GGUF_I16: kv->v.i64 = (int16_t)(uint16_t)x; break;
    case GGUF_I32: kv->v.i64 = (int32_t)(uint32_t)x; break;
    case GGUF_I64: kv->v.i64 = (int64_t)x; break;
    case GGUF_BOOL: kv->v.u64 = x != 0; break;
    case GGUF_F32: {
        uint32_t u = (uint32_t)x;
        float f;
        memcpy(&f, &u, 4);
        kv->v.f64 = f;
        break;
    }
    case GGUF_F64: memcpy(&kv->v.f64, &x, 8); break;
    default: kv->v.u64 = x; break;
    }
}

/* n strings into one block: gguf_str[n] followed by the NUL-terminated bytes. */
static lfm2_status read_str_array(cursor *c, uint64_t n, void **out) {
    *out = NULL;
    /* n * 8 <= GGUF_MAX_HEADER was checked, so the sizes below cannot overflow 64 bits. */
    uint64_t head = n * sizeof(gguf_str);
    uint64_t cap = head + n * 8 + 16;
    if (cap > SIZE_MAX) return lfm2_fail(LFM2_E_NOMEM, "gguf: string array of %" PRIu64 " too large%s", n, where(c));
    uint8_t *blk = malloc((size_t)cap);
    if (!blk) return lfm2_fail(LFM2_E_NOMEM, "gguf: out of memory for %" PRIu64 " strings%s", n, where(c));
    uint64_t used = head;
    lfm2_status s = LFM2_OK;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len;
        if ((s = cur_u64(c, &len, "string array element length"))) goto fail;
        if ((s = cur_need(c, len, 0, "string array element"))) goto fail;
        /* used <= head + (bytes read so far) + i, all bounded by ~3 GiB: no 64-bit overflow. */
        if (len + 1 > cap - used) {
            uint64_t ncap = cap * 2;
            if (ncap < used + len + 1) ncap = used + len + 1;
            if (ncap > SIZE_MAX) {
                s = lfm2_fail(LFM2_E_NOMEM, "gguf: string array too large%s", where(c));
                goto fail;
            }
            uint8_t *nb = realloc(blk, (size_t)ncap);
            if (!nb) {
                s = lfm2_fail(LFM2_E_NOMEM, "gguf: out of memory for a string array%s", where(c));
                goto fail;
            }
            blk = nb;
            cap = ncap;
        }
        if ((s = cur_read(c, blk + used, len, "string array element"))) goto fail;
        blk[used + len] = '\0';
        gguf_str *e = (gguf_str *)blk + i;
        e->ptr = NULL; /* set below, once the block stops moving */
        e->len = len;
        used += len + 1;
    }
    if (used < cap && used > 0) {
        uint8_t *nb = realloc(blk, (size_t)used);
        if (nb) blk = nb;
    }
    gguf_str *arr = (gguf_str *)blk;
    uint64_t off = head;
    for (uint64_t i = 0; i < n; i++) {
        arr[i].ptr = (const char *)blk + off;
        off += arr[i].len + 1;
    }
    *out = blk;
    return LFM2_OK;
fail:
    free(blk);
    return s;
}

/* The value of kv (whose key and type are set). On failure nothing is left allocated. */
static lfm2_status read_value(cursor *c, gguf_kv *kv) {
    lfm2_status s;
    uint8_t b[8];
    if (kv->type == GGUF_STRING) {
        char *p;
        if ((s = cur_str(c, &p, &kv->v.str.len, "string value"))) return s;
        kv->v.str.ptr = p;
        return LFM2_OK;
    }
    if (kv->type != GGUF_ARRAY) {
        if ((s = cur_read(c, b, vtype_size[kv->type], "value"))) return s;
        decode_scalar(kv->type, b, kv);
        return LFM2_OK;
    }
    uint64_t at = c->pos;
    uint32_t et;
    if ((s = cur_u32(c, &et, "array element type"))) return s;
    if (et == GGUF_ARRAY)
        return lfm2_fail(LFM2_E_KV_TYPE, "gguf: nested array at offset %" PRIu64 " (not supported)%s", at,
                         where(c));
    if (et >= GGUF_VTYPE_COUNT)
        return lfm2_fail(LFM2_E_KV_TYPE, "gguf: unknown array element type %" PRIu32 " at offset %" PRIu64 "%s",
                         et, at, where(c));
    uint64_t n;
    if ((s = cur_u64(c, &n, "array length"))) return s;
    uint64_t esz = et == GGUF_STRING ? 8 : vtype_size[et];
    int over = n > UINT64_MAX / esz;
    char what[64];
    snprintf(what, sizeof what, "array of %" PRIu64 " %s", n, gguf_vtype_name((enum gguf_vtype)et));
    if ((s = cur_need(c, n * esz, over, what))) return s;
    kv->v.arr.type = (enum gguf_vtype)et;
    kv->v.arr.n = n;
    kv->v.arr.data = NULL;
    if (et == GGUF_STRING) return read_str_array(c, n, &kv->v.arr.data);
    uint64_t bytes = n * esz;
    if (bytes >= SIZE_MAX) return lfm2_fail(LFM2_E_NOMEM, "gguf: array too large%s", where(c));
    void *d = malloc(bytes ? (size_t)bytes : 1);
    if (!d)
        return lfm2_fail(LFM2_E_NOMEM, "gguf: out of memory for an array of %" PRIu64 " bytes%s", bytes,
                         where(c));
    if ((s = cur_read(c, d, bytes, "array data"))) {
        free(d);
        return s;
    }
    kv->v.arr.data = d;
    return LFM2_OK;
}

/* Grow the array *pp (any object pointer type) of elements of size esz to hold at least need
 * elements (capacity doubled). pp is passed as void * and accessed with memcpy, so no pointer is
 * written through a void ** (strict aliasing). */
static lfm2_status grow(void *pp, uint64_t *cap, uint64_t need, size_t esz) {
    if (need <= *cap) return LFM2_OK;
    uint64_t ncap = *cap ? *cap * 2 : 16;
    if (ncap < need) ncap = need;
    if (ncap > SIZE_MAX / esz) return lfm2_fail(LFM2_E_NOMEM, "gguf: table too large");
    void *p;
    memcpy(&p, pp, sizeof p);
    void *np = realloc(p, (size_t)(ncap * esz));
    if (!np) return lfm2_fail(LFM2_E_NOMEM, "gguf: out of memory for the header tables");
    memcpy(pp, &np, sizeof np);
    *cap = ncap;
    return LFM2_OK;
}

static lfm2_status read_kvs(cursor *c, gguf_impl *m, uint64_t n_kv) {
    gguf_file *f = &m->pub;
    for (uint64_t i = 0; i < n_kv; i++) {
        c->kind = "key";
        c->index = i;
        c->name = NULL;
        lfm2_status s;
        uint64_t cap = m->kv_cap;
        if ((s = grow(&f->kv, &cap, i + 1, sizeof(gguf_kv)))) return s;
        cap = m->kv_cap;
        if ((s = grow(&m->key_len, &cap, i + 1, sizeof(uint64_t)))) return s;
        m->kv_cap = cap;
        uint64_t at = c->pos;
        char *key;
        uint64_t klen;
        if ((s = cur_str(c, &key, &klen, "key name"))) return s;
        c->name = key;
        int64_t dup = ht_find(m, 0, key, klen);
        if (dup >= 0) {
            s = lfm2_fail(LFM2_E_DUPLICATE, "gguf: duplicate key '%.200s' at offset %" PRIu64
                          " (key #%" PRIu64 ", first as key #%" PRId64 ")", key, at, i, dup);
            free(key);
            return s;
        }
        uint32_t type;
        uint64_t type_at = c->pos;
        if ((s = cur_u32(c, &type, "value type"))) {
            free(key);
            return s;
        }
        if (type >= GGUF_VTYPE_COUNT) {
            s = lfm2_fail(LFM2_E_KV_TYPE, "gguf: key '%.200s' has unknown value type %" PRIu32
                          " at offset %" PRIu64, key, type, type_at);
            free(key);
            return s;
        }
        gguf_kv *kv = &f->kv[i];
        memset(kv, 0, sizeof *kv);
        kv->type = (enum gguf_vtype)type;
        if ((s = read_value(c, kv))) {
            free(key);
            return s;
        }
        kv->key = key;
        m->key_len[i] = klen;
        f->n_kv = i + 1;
        if ((s = ht_add(m, 0, (uint32_t)i))) return s;
    }
    c->kind = NULL;
    return LFM2_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Tensor table */

static int type_supported(uint32_t t) {
    switch (t) {
    case KQ_F32: case KQ_F16: case KQ_Q4_0: case KQ_Q4_1: case KQ_Q5_0: case KQ_Q5_1: case KQ_Q8_0:
    case KQ_Q4_K: case KQ_Q5_K: case KQ_Q6_K: case KQ_IQ4_NL: case KQ_IQ4_XS: case KQ_BF16:
        return 1;
    default:
        return 0;
    }
}

/* a * b for non-negative a, b; returns 0 on int64 overflow. */
static int mul_i64(int64_t a, int64_t b, int64_t *r) {
    if (a != 0 && b > INT64_MAX / a) return 0;
    *r = a * b;
    return 1;
}

static lfm2_status read_tensor_info(cursor *c, gguf_impl *m, uint64_t i) {
    gguf_file *f = &m->pub;
    lfm2_status s;
    c->kind = "tensor info";
    c->index = i;
    c->name = NULL;
    uint64_t at = c->pos;
    char *name;
    uint64_t nlen;
    if ((s = cur_str(c, &name, &nlen, "tensor name"))) return s;
    c->name = name;
    gguf_tensor t;
    memset(&t, 0, sizeof t);
    t.name = name;
    int64_t dup = ht_find(m, 1, name, nlen);
    if (dup >= 0) {
        s = lfm2_fail(LFM2_E_DUPLICATE, "gguf: duplicate tensor name '%.200s' at offset %" PRIu64
                      " (tensor #%" PRIu64 ", first as tensor #%" PRId64 ")", name, at, i, dup);
        goto fail;
    }
    uint64_t dims_at = c->pos;
    if ((s = cur_u32(c, &t.n_dims, "n_dims"))) goto fail;
    if (t.n_dims < 1 || t.n_dims > 4) {
        s = lfm2_fail(LFM2_E_DIMS, "gguf: tensor '%.200s' has n_dims %" PRIu32 " (must be 1..4) at offset %" PRIu64,
                      name, t.n_dims, dims_at);
        goto fail;
    }
    int64_t nel = 1;
    for (uint32_t d = 0; d < 4; d++) t.ne[d] = 1;
    for (uint32_t d = 0; d < t.n_dims; d++) {
        uint64_t ne_at = c->pos, v;
        if ((s = cur_u64(c, &v, "dimension"))) goto fail;
        if (v < 1 || v > (uint64_t)INT64_MAX) {
            s = lfm2_fail(LFM2_E_DIMS, "gguf: tensor '%.200s' has dimension %" PRIu32 " = %" PRId64
                          " (must be >= 1) at offset %" PRIu64, name, d, (int64_t)v, ne_at);
            goto fail;
        }
        t.ne[d] = (int64_t)v;
        if (!mul_i64(nel, t.ne[d], &nel)) {
            s = lfm2_fail(LFM2_E_OVERFLOW, "gguf: tensor '%.200s': element count overflows int64 at dimension %"
                          PRIu32 " (offset %" PRIu64 ")", name, d, ne_at);
            goto fail;
        }
    }
    uint64_t type_at = c->pos;
    if ((s = cur_u32(c, &t.type, "tensor type"))) goto fail;
    const kq_traits *tr = type_supported(t.type) ? kq_get(t.type) : NULL;
    if (!tr || tr->blck < 1 || tr->bytes < 1) {
        s = lfm2_fail(LFM2_E_TENSOR_TYPE, "gguf: tensor '%.200s' has %s ggml type %" PRIu32 " at offset %" PRIu64,
                      name, t.type < KQ_TYPE_MAX ? "unsupported" : "unknown", t.type, type_at);
        goto fail;
    }
    if (t.ne[0] % tr->blck != 0) {
        s = lfm2_fail(LFM2_E_BLOCKS, "gguf: tensor '%.200s' (%s): row of %" PRId64
                      " elements is not a whole number of %d-element blocks", name, tr->name ? tr->name : "?",
                      t.ne[0], tr->blck);
        goto fail;
    }
    int64_t row, nb;
    if ((uint64_t)tr->bytes > (uint64_t)INT64_MAX || !mul_i64(t.ne[0] / tr->blck, (int64_t)tr->bytes, &row) ||
        !mul_i64(row, nel / t.ne[0], &nb)) {
        s = lfm2_fail(LFM2_E_OVERFLOW, "gguf: tensor '%.200s': byte size overflows int64", name);
        goto fail;
    }
    t.nbytes = (uint64_t)nb;
    uint64_t off_at = c->pos;
    if ((s = cur_u64(c, &t.offset, "tensor data offset"))) goto fail;
    if (t.offset % f->alignment != 0) {
        s = lfm2_fail(LFM2_E_TENSOR_BOUNDS, "gguf: tensor '%.200s' data offset %" PRIu64
                      " (at offset %" PRIu64 ") is not a multiple of the alignment %" PRIu64,
                      name, t.offset, off_at, f->alignment);
        goto fail;
    }
    uint64_t cap = m->t_cap;
    if ((s = grow(&f->tensors, &cap, i + 1, sizeof(gguf_tensor)))) goto fail;
    cap = m->t_cap;
    if ((s = grow(&m->name_len, &cap, i + 1, sizeof(uint64_t)))) goto fail;
    m->t_cap = cap;
    f->tensors[i] = t;
    m->name_len[i] = nlen;
    f->n_tensors = i + 1;
    return ht_add(m, 1, (uint32_t)i);
fail:
    free(name);
    return s;
}

/* Stable merge sort of tensor indices by offset (qsort has no context argument in C11). */
static void sort_by_offset(const gguf_file *f, uint32_t *idx, uint32_t *tmp, uint64_t n) {
    for (uint64_t w = 1; w < n; w *= 2) {
        for (uint64_t lo = 0; lo < n; lo += 2 * w) {
            uint64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            uint64_t a = lo, b = mid, k = lo;
            while (a < mid && b < hi)
                tmp[k++] = f->tensors[idx[b]].offset < f->tensors[idx[a]].offset ? idx[b++] : idx[a++];
            while (a < mid) tmp[k++] = idx[a++];
            while (b < hi) tmp[k++] = idx[b++];
        }
        memcpy(idx, tmp, (size_t)n * sizeof *idx);
    }
}

static lfm2_status check_data(gguf_file *f) {
    uint64_t avail = f->file_size - f->data_offset;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        if (t->offset > avail || t->nbytes > avail - t->offset)
            return lfm2_fail(LFM2_E_TENSOR_BOUNDS, "gguf: tensor '%.200s' data [%" PRIu64 ", +%" PRIu64
                             ") relative to the data section at %" PRIu64 " runs past the end of the file (%"
                             PRIu64 " bytes)", t->name, t->offset, t->nbytes, f->data_offset, f->file_size);
        t->offset += f->data_offset;
    }
    if (f->n_tensors < 2) return LFM2_OK;
    uint64_t n = f->n_tensors;
    uint32_t *idx = malloc((size_t)n * 2 * sizeof(uint32_t));
    if (!idx) return lfm2_fail(LFM2_E_NOMEM, "gguf: out of memory checking tensor overlap");
    for (uint64_t i = 0; i < n; i++) idx[i] = (uint32_t)i;
    sort_by_offset(f, idx, idx + n, n);
    lfm2_status s = LFM2_OK;
    for (uint64_t i = 0; i + 1 < n; i++) {
        const gguf_tensor *a = &f->tensors[idx[i]], *b = &f->tensors[idx[i + 1]];
        if (a->offset + a->nbytes > b->offset) {
            s = lfm2_fail(LFM2_E_TENSOR_BOUNDS, "gguf: tensors '%.120s' [%" PRIu64 ", %" PRIu64
                          ") and '%.120s' [%" PRIu64 ", %" PRIu64 ") overlap", a->name, a->offset,
                          a->offset + a->nbytes, b->name, b->offset, b->offset + b->nbytes);
            break;
        }
    }
    free(idx);
    return s;
}

/* ------------------------------------------------------------------------------------------ */

static lfm2_status parse(cursor *c, gguf_impl *m) {
    gguf_file *f = &m->pub;
    lfm2_status s;
    uint8_t magic[4];
    if (c->size < 4) {
        size_t n = (size_t)c->size;
        if (n && c->read(c->ctx, 0, n, magic))
            return lfm2_fail(LFM2_E_IO, "gguf: read of %zu bytes at offset 0 failed", n);
        if (memcmp(magic, "GGUF", n) == 0)
            return lfm2_fail(LFM2_E_TRUNCATED, "gguf: file truncated: %zu bytes, shorter than the magic", n);
        return lfm2_fail(LFM2_E_MAGIC, "gguf: not a GGUF file (%zu bytes, no \"GGUF\" magic)", n);
    }
    if ((s = cur_read(c, magic, 4, "magic"))) return s;
    if (memcmp(magic, "GGUF", 4) != 0)
        return lfm2_fail(LFM2_E_MAGIC, "gguf: not a GGUF file: magic %02x %02x %02x %02x at offset 0, expected \"GGUF\"",
                         magic[0], magic[1], magic[2], magic[3]);
    if ((s = cur_u32(c, &f->version, "version"))) return s;
    if (f->version != 2 && f->version != 3) {
        uint32_t v = f->version;
        uint32_t sw = v >> 24 | (v >> 8 & 0xff00) | (v << 8 & 0xff0000) | v << 24;
        return lfm2_fail(LFM2_E_VERSION, "gguf: unsupported GGUF version %" PRIu32 " at offset 4 (only 2 and 3)%s",
                         v, (sw == 2 || sw == 3) ? "; the file looks big-endian" : "");
    }
    uint64_t n_tensors, n_kv;
    if ((s = cur_u64(c, &n_tensors, "tensor count"))) return s;
    if ((s = cur_u64(c, &n_kv, "key/value count"))) return s;
    if ((s = cur_need(c, n_tensors * TI_MIN_BYTES, n_tensors > UINT64_MAX / TI_MIN_BYTES,
                      "tensor table (from the tensor count at offset 8)")))
        return s;
    if ((s = cur_need(c, n_kv * KV_MIN_BYTES, n_kv > UINT64_MAX / KV_MIN_BYTES,
                      "metadata (from the key/value count at offset 16)")))
        return s;
    /* Both products are below 2^30 now. */
    if ((s = cur_need(c, n_kv * KV_MIN_BYTES + n_tensors * TI_MIN_BYTES, 0, "metadata and tensor table")))
        return s;

    if ((s = read_kvs(c, m, n_kv))) return s;

    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *al = gguf_find_kv(f, "general.alignment");
    if (al) {
        if (al->type != GGUF_U32)
            return lfm2_fail(LFM2_E_ALIGNMENT, "gguf: general.alignment has type %s, expected UINT32",
                             gguf_vtype_name(al->type));
        uint64_t a = al->v.u64;
        if (a == 0 || (a & (a - 1)) != 0)
            return lfm2_fail(LFM2_E_ALIGNMENT, "gguf: general.alignment is %" PRIu64 ", not a power of two", a);
        f->alignment = a;
    }

    for (uint64_t i = 0; i < n_tensors; i++)
        if ((s = read_tensor_info(c, m, i))) return s;
    c->kind = NULL;

    /* pos <= 2^30 and alignment <= 2^31: no overflow. */
    f->data_offset = (c->pos + f->alignment - 1) / f->alignment * f->alignment;
    if (f->data_offset > f->file_size)
        return lfm2_fail(LFM2_E_TRUNCATED, "gguf: file truncated: the header ends at %" PRIu64
                         ", the data section would start at %" PRIu64 " (alignment %" PRIu64
                         ") but the file ends at %" PRIu64, c->pos, f->data_offset, f->alignment, f->file_size);
    return check_data(f);
}

lfm2_status gguf_open(lfm2_read_fn read, void *ctx, uint64_t file_size, gguf_file **out) {
    if (out) *out = NULL;
    if (!read || !out) return lfm2_fail(LFM2_E_ARG, "gguf_open: NULL %s", read ? "out" : "read callback");
    gguf_impl *m = calloc(1, sizeof *m);
    if (!m) return lfm2_fail(LFM2_E_NOMEM, "gguf: out of memory");
    m->pub.file_size = file_size;
    m->pub.alignment = GGUF_DEFAULT_ALIGNMENT;
    cursor c;
    memset(&c, 0, sizeof c);
    c.read = read;
    c.ctx = ctx;
    c.size = file_size;
    c.buf = malloc(GGUF_CHUNK);
    if (!c.buf) {
        free(m);
        return lfm2_fail(LFM2_E_NOMEM, "gguf: out of memory");
    }
    lfm2_status s = parse(&c, m);
    free(c.buf);
    if (s) {
        gguf_close(&m->pub);
        return s;
    }
    *out = &m->pub;
    return LFM2_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Lookups and getters. f must come from gguf_open (the lookups use its private index). */

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key) {
    if (!f || !key) return NULL;
    int64_t i = ht_find((const gguf_impl *)f, 0, key, strlen(key));
    return i < 0 ? NULL : &f->kv[i];
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    if (!f || !name) return NULL;
    int64_t i = ht_find((const gguf_impl *)f, 1, name, strlen(name));
    return i < 0 ? NULL : &f->tensors[i];
}

static lfm2_status get_kv(const gguf_file *f, const char *key, const void *out, const gguf_kv **kv) {
    *kv = NULL;
    if (!f || !key || !out) return lfm2_fail(LFM2_E_ARG, "gguf getter: NULL argument");
    *kv = gguf_find_kv(f, key);
    if (!*kv) return lfm2_fail(LFM2_E_KEY_MISSING, "gguf: key '%.200s' not found", key);
    return LFM2_OK;
}

static const char *kv_type_desc(const gguf_kv *kv, char *buf, size_t n) {
    if (kv->type == GGUF_ARRAY)
        snprintf(buf, n, "ARRAY[%s]", gguf_vtype_name(kv->v.arr.type));
    else
        snprintf(buf, n, "%s", gguf_vtype_name(kv->type));
    return buf;
}

static lfm2_status wrong_type(const gguf_kv *kv, const char *expected) {
    char buf[32];
    return lfm2_fail(LFM2_E_KEY_TYPE, "gguf: key '%.200s' has type %s, expected %s", kv->key,
                     kv_type_desc(kv, buf, sizeof buf), expected);
}

lfm2_status gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out) {
    const gguf_kv *kv;
    lfm2_status s = get_kv(f, key, out, &kv);
    if (s) return s;
    if (!vtype_is_int(kv->type)) return wrong_type(kv, "an integer");
    if (vtype_is_signed(kv->type) ? (kv->v.i64 < 0 || kv->v.i64 > (int64_t)UINT32_MAX) : kv->v.u64 > UINT32_MAX) {
        if (vtype_is_signed(kv->type))
            return lfm2_fail(LFM2_E_KEY_TYPE, "gguf: key '%.200s' = %" PRId64 " does not fit UINT32", key, kv->v.i64);
        return lfm2_fail(LFM2_E_KEY_TYPE, "gguf: key '%.200s' = %" PRIu64 " does not fit UINT32", key, kv->v.u64);
    }
    *out = (uint32_t)kv->v.u64;
    return LFM2_OK;
}

lfm2_status gguf_get_f32(const gguf_file *f, const char *key, float *out) {
    const gguf_kv *kv;
    lfm2_status s = get_kv(f, key, out, &kv);
    if (s) return s;
    if (kv->type != GGUF_F32 && kv->type != GGUF_F64) return wrong_type(kv, "FLOAT32 or FLOAT64");
    *out = (float)kv->v.f64;
    return LFM2_OK;
}

lfm2_status gguf_get_bool(const gguf_file *f, const char *key, bool *out) {
    const gguf_kv *kv;
    lfm2_status s = get_kv(f, key, out, &kv);
    if (s) return s;
    if (kv->type != GGUF_BOOL) return wrong_type(kv, "BOOL");
    *out = kv->v.u64 != 0;
    return LFM2_OK;
}

lfm2_status gguf_get_str(const gguf_file *f, const char *key, const gguf_str **out) {
    const gguf_kv *kv;
    lfm2_status s = get_kv(f, key, out, &kv);
    if (s) return s;
    if (kv->type != GGUF_STRING) return wrong_type(kv, "STRING");
    *out = &kv->v.str;
    return LFM2_OK;
}

lfm2_status gguf_get_arr_i32(const gguf_file *f, const char *key, int32_t **out, uint64_t *n) {
    if (out) *out = NULL;
    const gguf_kv *kv;
    lfm2_status s = get_kv(f, key, out, &kv);
    if (s) return s;
    if (!n) return lfm2_fail(LFM2_E_ARG, "gguf getter: NULL argument");
    if (kv->type != GGUF_ARRAY || !vtype_is_int(kv->v.arr.type)) return wrong_type(kv, "an integer array");
    enum gguf_vtype et = kv->v.arr.type;
    uint64_t cnt = kv->v.arr.n;
    if (cnt > SIZE_MAX / sizeof(int32_t)) return lfm2_fail(LFM2_E_NOMEM, "gguf: key '%.200s': array too large", key);
    int32_t *r = malloc(cnt ? (size_t)cnt * sizeof(int32_t) : sizeof(int32_t));
    if (!r) return lfm2_fail(LFM2_E_NOMEM, "gguf: out of memory copying key '%.200s'", key);
    const uint8_t *p = kv->v.arr.data;
    unsigned esz = vtype_size[et];
    for (uint64_t i = 0; i < cnt; i++) {
        gguf_kv tmp;
        decode_scalar(et, p + i * esz, &tmp);
        int ok = vtype_is_signed(et) ? (tmp.v.i64 >= INT32_MIN && tmp.v.i64 <= INT32_MAX) : tmp.v.u64 <= INT32_MAX;
        if (!ok) {
            free(r);
            if (vtype_is_signed(et))
                return lfm2_fail(LFM2_E_KEY_TYPE, "gguf: key '%.200s' element %" PRIu64 " = %" PRId64
                                 " does not fit INT32", key, i, tmp.v.i64);
            return lfm2_fail(LFM2_E_KEY_TYPE, "gguf: key '%.200s' element %" PRIu64 " = %" PRIu64
                             " does not fit INT32", key, i, tmp.v.u64);
        }
        r[i] = (int32_t)tmp.v.i64;
    }
    *out = r;
    *n = cnt;
    return LFM2_OK;
}

lfm2_status gguf_get_arr_str(const gguf_file *f, const char *key, const gguf_str **out, uint64_t *n) {
    const gguf_kv *kv;
    lfm2_status s = get_kv(f, key, out, &kv);
    if (s) return s;
    if (!n) return lfm2_fail(LFM2_E_ARG, "gguf getter: NULL argument");
    if (kv->type != GGUF_ARRAY || kv->v.arr.type != GGUF_STRING) return wrong_type(kv, "ARRAY[STRING]");
    *out = kv->v.arr.data;
    *n = kv->v.arr.n;
    return LFM2_OK;
}
