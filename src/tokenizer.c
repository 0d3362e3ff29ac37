/* tokenizer.c: byte-level BPE with the Llama-3 pre-tokenizer, matching llama.cpp's
 * llm_tokenizer_bpe for the "lfm2" pre-tokenizer (see tokenizer.h).
 *
 * Pipeline of lfm2_tokenize:
 *   1. special tokens: control/user-defined texts found in the raw text split it into fragments
 *      (longest token first, each one splitting what is still raw text, like llama.cpp's
 *      tokenizer_st_partition);
 *   2. each raw fragment is decoded to code points (invalid bytes -> U+FFFD) and split into words by
 *      a hand-written matcher of the Llama-3 regex over Unicode categories;
 *   3. a word that is itself a vocabulary token is emitted whole (ignore_merges); otherwise BPE
 *      over its UTF-8 bytes: a linked list of symbols and a binary heap of candidate merges
 *      ordered by (rank, position), so a word of n bytes costs O(n log n).
 *
 * Everything works on raw bytes: vocabulary and merge strings are converted from GPT-2's
 * byte-to-unicode alphabet once, at creation. Every symbol text BPE can form (single bytes, merge
 * parts and results) is interned to a small integer, so merge lookups hash two integers. */
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"
#include "unicode.h"

/* token attributes (as llama.cpp's llama_token_attr, reduced to what matters here) */
enum {
    ATTR_NORMAL = 1 << 0,
    ATTR_UNKNOWN = 1 << 1,
    ATTR_CONTROL = 1 << 2,
    ATTR_USER_DEFINED = 1 << 3,
    ATTR_BYTE = 1 << 4,
    ATTR_UNUSED = 1 << 5,
    ATTR_EOG = 1 << 6 /* not a llama.cpp attribute: member of the end-of-generation set */
};

#define NONE UINT32_MAX

/* ---------------------------------------------------------------------------------------------
 * hash maps (open addressing, power-of-two sized once, never resized) */

static uint32_t hash_bytes(const unsigned char *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

static uint32_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return (uint32_t)x;
}

static uint32_t pow2_at_least(uint64_t n) {
    uint32_t c = 16;
    while (c < n && c < (1u << 31)) c <<= 1;
    return c;
}

/* string -> value; the key of value v is arena[off[v] .. off[v] + len[v]) */
typedef struct {
    uint32_t *hash;
    uint32_t *val; /* NONE = empty */
    uint32_t mask;
} strmap;

static int strmap_init(strmap *m, uint64_t max_entries) {
    uint32_t cap = pow2_at_least(max_entries * 2 + 1);
    m->hash = malloc((size_t)cap * sizeof *m->hash);
    m->val = malloc((size_t)cap * sizeof *m->val);
    if (!m->hash || !m->val) return -1;
    memset(m->val, 0xFF, (size_t)cap * sizeof *m->val);
    m->mask = cap - 1;
    return 0;
}

static void strmap_free(strmap *m) {
    free(m->hash);
    free(m->val);
}

/* slot of key (holding it, or the empty slot where it would go) */
static uint32_t strmap_slot(const strmap *m, const char *arena, const size_t *off, const uint32_t *len,
                            const void *key, size_t klen, uint32_t h) {
    uint32_t i = h & m->mask;
    for (;;) {
        uint32_t v = m->val[i];
        if (v == NONE) return i;
        if (m->hash[i] == h && len[v] == klen && memcmp(arena + off[v], key, klen) == 0) return i;
        i = (i + 1) & m->mask;
    }
}

/* (left symbol, right symbol) -> (rank, merged symbol) */
typedef struct {
    uint64_t *key; /* UINT64_MAX = empty */
    int32_t *rank;
    uint32_t *res;
    uint32_t mask;
} pairmap;

static int pairmap_init(pairmap *m, uint64_t max_entries) {
    uint32_t cap = pow2_at_least(max_entries * 2 + 1);
    m->key = malloc((size_t)cap * sizeof *m->key);
    m->rank = malloc((size_t)cap * sizeof *m->rank);
    m->res = malloc((size_t)cap * sizeof *m->res);
    if (!m->key || !m->rank || !m->res) return -1;
    memset(m->key, 0xFF, (size_t)cap * sizeof *m->key);
    m->mask = cap - 1;
    return 0;
}

static void pairmap_free(pairmap *m) {
    free(m->key);
    free(m->rank);
    free(m->res);
}

static uint32_t pairmap_slot(const pairmap *m, uint64_t k) {
    uint32_t i = hash_u64(k) & m->mask;
    while (m->key[i] != UINT64_MAX && m->key[i] != k) i = (i + 1) & m->mask;
    return i;
}

/* ---------------------------------------------------------------------------------------------
 * the tokenizer */

struct lfm2_tokenizer {
    uint32_t n_vocab;
    int32_t bos, eos;
    bool add_bos;

    char *arena; /* token texts, interned symbol texts, pieces */
    size_t arena_len, arena_cap;

    size_t *tok_off; /* token text */
    uint32_t *tok_len;
    uint8_t *tok_attr;
    size_t *piece_off; /* token text with the byte map undone (llama.cpp's token_to_piece) */
    uint32_t *piece_len;
    strmap text_map; /* token text -> id */

    /* interned symbols: raw byte strings that BPE can produce */
    uint32_t n_sym, cap_sym;
    size_t *sym_off;
    uint32_t *sym_len;
    int32_t *sym_tok; /* the token whose (decoded) text it is, or -1 */
    strmap sym_map;
    uint32_t byte_sym[256];

    pairmap merges;
    int32_t single_byte_tok[256]; /* token whose text is exactly that one byte, or -1 */

    int32_t *special; /* control/unknown/user-defined ids, longest text first */
    uint32_t n_special;

    /* GPT-2 byte <-> unicode map: printable bytes map to themselves, the 68 others to U+0100.. */
    uint16_t byte_to_cp[256];
    int16_t cp_to_byte[0x144];
};

static void byte_map_init(lfm2_tokenizer *t) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        t->byte_to_cp[b] = (uint16_t)(keep ? b : 256 + n++);
    }
    for (int c = 0; c < 0x144; c++) t->cp_to_byte[c] = -1;
    for (int b = 0; b < 256; b++) t->cp_to_byte[t->byte_to_cp[b]] = (int16_t)b;
}

static bool arena_reserve(lfm2_tokenizer *t, size_t extra) {
    if (t->arena_cap - t->arena_len >= extra) return true;
    size_t cap = t->arena_cap ? t->arena_cap : 4096;
    while (cap - t->arena_len < extra) {
        if (cap > SIZE_MAX / 2) return false;
        cap *= 2;
    }
    char *p = realloc(t->arena, cap);
    if (!p) return false;
    t->arena = p;
    t->arena_cap = cap;
    return true;
}

/* Decode a string of byte-map code points into raw bytes (appended to the arena). *ok = false
 * (arena unchanged) if it is not entirely made of byte-map characters; returns false on allocation
 * failure. s must not point into the arena unless n bytes are already reserved. */
static bool unmap_to_arena(lfm2_tokenizer *t, const char *s, size_t n, bool *ok) {
    *ok = false;
    if (!arena_reserve(t, n ? n : 1)) return false;
    size_t start = t->arena_len, pos = 0, w = start;
    const unsigned char *u = (const unsigned char *)s;
    while (pos < n) {
        size_t l = utf8_valid_seq(u + pos, n - pos);
        if (l == 0) return true;
        size_t p2 = pos;
        uint32_t cp = utf8_decode_lenient(u, n, &p2);
        if (cp >= 0x144 || t->cp_to_byte[cp] < 0) return true;
        t->arena[w++] = (char)t->cp_to_byte[cp];
        pos += l;
    }
    t->arena_len = w;
    *ok = true;
    return true;
}

/* Intern the bytes at arena[off .. off+len) (already in the arena). Returns the symbol id, or NONE
 * on allocation failure. If the string was already interned the arena copy is dropped (only when
 * it is the arena's tail). */
static uint32_t intern_tail(lfm2_tokenizer *t, size_t off, uint32_t len) {
    uint32_t h = hash_bytes((const unsigned char *)t->arena + off, len);
    uint32_t slot = strmap_slot(&t->sym_map, t->arena, t->sym_off, t->sym_len, t->arena + off, len, h);
    if (t->sym_map.val[slot] != NONE) {
        if (off + len == t->arena_len) t->arena_len = off;
        return t->sym_map.val[slot];
    }
    if (t->n_sym == t->cap_sym) return NONE; /* sized at creation: cannot happen */
    uint32_t id = t->n_sym++;
    t->sym_off[id] = off;
    t->sym_len[id] = len;
    t->sym_tok[id] = -1;
    t->sym_map.hash[slot] = h;
    t->sym_map.val[slot] = id;
    return id;
}

static uint32_t sym_find(const lfm2_tokenizer *t, const unsigned char *s, size_t n) {
    uint32_t h = hash_bytes(s, n);
    uint32_t slot = strmap_slot(&t->sym_map, t->arena, t->sym_off, t->sym_len, s, n, h);
    return t->sym_map.val[slot];
}

/* Token texts llama.cpp treats as end of generation (and forces to control). */
static const char *const k_eog_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xef\xbd\234end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "[e~[",
};

/* llama.cpp's llama_decode_text + token_to_piece for one token, appended to the arena */
static bool build_piece(lfm2_tokenizer *t, uint32_t id) {
    uint8_t a = t->tok_attr[id];
    size_t off = t->tok_off[id], len = t->tok_len[id];
    t->piece_off[id] = t->arena_len;
    t->piece_len[id] = 0;
    if (a & (ATTR_CONTROL | ATTR_UNKNOWN | ATTR_USER_DEFINED)) {
        if (!arena_reserve(t, len)) return false;
        memcpy(t->arena + t->arena_len, t->arena + off, len);
        t->arena_len += len;
    } else if (a & ATTR_NORMAL) {
        size_t pos = 0;
        while (pos < len) {
            const unsigned char *u = (const unsigned char *)t->arena + off;
            uint32_t cp = utf8_decode_lenient(u, len, &pos);
            if (cp < 0x144 && t->cp_to_byte[cp] >= 0) {
                if (!arena_reserve(t, 1)) return false;
                t->arena[t->arena_len++] = (char)t->cp_to_byte[cp];
            } else { /* "[UNK_BYTE_0x" + hex of the character + the token's text + "]" */
                unsigned char enc[4];
                size_t el = utf8_encode(cp, enc);
                if (!arena_reserve(t, 12 + 2 * el + len + 1)) return false;
                memcpy(t->arena + t->arena_len, "[UNK_BYTE_0x", 12);
                t->arena_len += 12;
                for (size_t k = 0; k < el; k++) {
                    static const char hex[] = "0123456789abcdef";
                    t->arena[t->arena_len++] = hex[enc[k] >> 4];
                    t->arena[t->arena_len++] = hex[enc[k] & 15];
                }
                memcpy(t->arena + t->arena_len, t->arena + off, len);
                t->arena_len += len;
                t->arena[t->arena_len++] = ']';
            }
        }
    } else if (a & ATTR_BYTE) { /* "<0xXX>": strtol of the two characters after "<0x" */
        unsigned v = 0;
        for (size_t k = 3; k < 5 && k < len; k++) {
            char c = t->arena[off + k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0) break;
            v = v * 16 + (unsigned)d;
        }
        if (!arena_reserve(t, 1)) return false;
        t->arena[t->arena_len++] = (char)v;
    }
    t->piece_len[id] = (uint32_t)(t->arena_len - t->piece_off[id]);
    return true;
}

static int cmp_special(const void *a, const void *b, const lfm2_tokenizer *t) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (t->tok_len[x] != t->tok_len[y]) return t->tok_len[x] > t->tok_len[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

static void sort_special(lfm2_tokenizer *t) { /* insertion sort: the list is short */
    for (uint32_t i = 1; i < t->n_special; i++) {
        int32_t v = t->special[i];
        uint32_t j = i;
        while (j > 0 && cmp_special(&t->special[j - 1], &v, t) > 0) {
            t->special[j] = t->special[j - 1];
            j--;
        }
        t->special[j] = v;
    }
}

void lfm2_tokenizer_free(lfm2_tokenizer *t) {
    if (!t) return;
    free(t->arena);
    free(t->tok_off);
    free(t->tok_len);
    free(t->tok_attr);
    free(t->piece_off);
    free(t->piece_len);
    strmap_free(&t->text_map);
    free(t->sym_off);
    free(t->sym_len);
    free(t->sym_tok);
    strmap_free(&t->sym_map);
    pairmap_free(&t->merges);
    free(t->special);
    free(t);
}

#define NOMEM()                                                                 \
    do {                                                                        \
        lfm2_tokenizer_free(t);                                                 \
        return lfm2_fail(LFM2_E_NOMEM, "tokenizer: out of memory");             \
    } while (0)

lfm2_status lfm2_tokenizer_create(const gguf_str *tokens, const int32_t *types, uint32_t n_vocab,
                                  const gguf_str *merges, uint32_t n_merges, int32_t bos_id,
                                  int32_t eos_id, bool add_bos, lfm2_tokenizer **out) {
    if (!out) return lfm2_fail(LFM2_E_ARG, "tokenizer_create: out is NULL");
    *out = NULL;
    if (n_vocab == 0 || !tokens) return lfm2_fail(LFM2_E_ARG, "tokenizer_create: empty vocabulary");
    if (n_vocab > (1u << 30)) return lfm2_fail(LFM2_E_ARG, "tokenizer_create: vocabulary too large");
    if (n_merges && !merges) return lfm2_fail(LFM2_E_ARG, "tokenizer_create: merges is NULL");
    if (n_merges > (1u << 28)) return lfm2_fail(LFM2_E_ARG, "tokenizer_create: too many merges");
    lfm2_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return lfm2_fail(LFM2_E_NOMEM, "tokenizer: out of memory");
    byte_map_init(t);
    t->n_vocab = n_vocab;
    t->bos = (bos_id >= 0 && (uint32_t)bos_id < n_vocab) ? bos_id : -1;
    t->eos = (eos_id >= 0 && (uint32_t)eos_id < n_vocab) ? eos_id : -1;
    t->add_bos = add_bos;
    if (add_bos && t->bos < 0) {
        lfm2_tokenizer_free(t);
        return lfm2_fail(LFM2_E_ARG, "tokenizer_create: add_bos is set but there is no BOS token");
    }

    t->tok_off = malloc(n_vocab * sizeof *t->tok_off);
    t->tok_len = malloc(n_vocab * sizeof *t->tok_len);
    t->tok_attr = malloc(n_vocab);
    t->piece_off = malloc(n_vocab * sizeof *t->piece_off);
    t->piece_len = malloc(n_vocab * sizeof *t->piece_len);
    t->special = malloc(n_vocab * sizeof *t->special);
    t->cap_sym = 256 + n_vocab + 3 * n_merges;
    t->sym_off = malloc((size_t)t->cap_sym * sizeof *t->sym_off);
    t->sym_len = malloc((size_t)t->cap_sym * sizeof *t->sym_len);
    t->sym_tok = malloc((size_t)t->cap_sym * sizeof *t->sym_tok);
    if (!t->tok_off || !t->tok_len || !t->tok_attr || !t->piece_off || !t->piece_len ||
        !t->special || !t->sym_off || !t->sym_len || !t->sym_tok)
        NOMEM();
    if (strmap_init(&t->text_map, n_vocab) || strmap_init(&t->sym_map, t->cap_sym) ||
        pairmap_init(&t->merges, n_merges))
        NOMEM();

    /* token texts (an empty text becomes "[EMPTY_<id>]", as in llama.cpp) */
    for (uint32_t i = 0; i < n_vocab; i++) {
        const char *s = tokens[i].ptr;
        uint64_t n = tokens[i].len;
        char tmp[32];
        if (n == 0 || !s) {
            n = (uint64_t)snprintf(tmp, sizeof tmp, "[EMPTY_%u]", i);
            s = tmp;
        }
        if (n > (1u << 30)) {
            lfm2_tokenizer_free(t);
            return lfm2_fail(LFM2_E_ARG, "tokenizer_create: token %u is too long", i);
        }
        if (!arena_reserve(t, (size_t)n)) NOMEM();
        t->tok_off[i] = t->arena_len;
        t->tok_len[i] = (uint32_t)n;
        memcpy(t->arena + t->arena_len, s, (size_t)n);
        t->arena_len += (size_t)n;
        uint32_t h = hash_bytes((const unsigned char *)s, (size_t)n);
        uint32_t slot = strmap_slot(&t->text_map, t->arena, t->tok_off, t->tok_len, s, (size_t)n, h);
        if (t->text_map.val[slot] != NONE) {
            uint32_t prev = t->text_map.val[slot];
            lfm2_tokenizer_free(t);
            return lfm2_fail(LFM2_E_ARG, "tokenizer_create: duplicate token text (ids %u and %u)",
                             prev, i);
        }
        t->text_map.hash[slot] = h;
        t->text_map.val[slot] = i;

        int32_t ty = types ? types[i] : LFM2_TOKEN_NORMAL;
        uint8_t a = ty == LFM2_TOKEN_NORMAL ? ATTR_NORMAL
                    : ty == LFM2_TOKEN_UNKNOWN ? ATTR_UNKNOWN
                    : ty == LFM2_TOKEN_CONTROL ? ATTR_CONTROL
                    : ty == LFM2_TOKEN_USER_DEFINED ? ATTR_USER_DEFINED
                    : ty == LFM2_TOKEN_UNUSED ? ATTR_UNUSED
                    : ty == LFM2_TOKEN_BYTE ? ATTR_BYTE : 0;
        for (size_t k = 0; k < sizeof k_eog_texts / sizeof k_eog_texts[0]; k++)
            if (strlen(k_eog_texts[k]) == n && memcmp(k_eog_texts[k], s, (size_t)n) == 0)
                a |= ATTR_EOG | ATTR_CONTROL;
        t->tok_attr[i] = a;
    }
    if (t->eos >= 0) t->tok_attr[t->eos] |= ATTR_EOG;

    for (int b = 0; b < 256; b++) t->single_byte_tok[b] = -1;
    for (uint32_t i = 0; i < n_vocab; i++)
        if (t->tok_len[i] == 1) t->single_byte_tok[(unsigned char)t->arena[t->tok_off[i]]] = (int32_t)i;

    /* symbols: the 256 single bytes, every token's decoded text, every merge's parts and result */
    for (int b = 0; b < 256; b++) {
        if (!arena_reserve(t, 1)) NOMEM();
        t->arena[t->arena_len] = (char)b;
        t->arena_len++;
        t->byte_sym[b] = intern_tail(t, t->arena_len - 1, 1);
    }
    for (uint32_t i = 0; i < n_vocab; i++) {
        bool ok;
        size_t off = t->arena_len, n = t->tok_len[i];
        if (!arena_reserve(t, n)) NOMEM(); /* first: the source is in the arena */
        if (!unmap_to_arena(t, t->arena + t->tok_off[i], n, &ok)) NOMEM();
        if (!ok || t->arena_len == off) continue;
        uint32_t sid = intern_tail(t, off, (uint32_t)(t->arena_len - off));
        if (sid == NONE) NOMEM();
        t->sym_tok[sid] = (int32_t)i;
    }
    for (uint32_t r = 0; r < n_merges; r++) {
        const char *s = merges[r].ptr;
        uint64_t n = merges[r].len;
        if (!s || n < 3 || n > (1u << 30)) continue;
        const char *sp = memchr(s + 1, ' ', (size_t)n - 1); /* first space at index >= 1 */
        if (!sp) continue;
        size_t nl = (size_t)(sp - s), nr = (size_t)n - nl - 1;
        if (nr == 0) continue;
        bool ok;
        size_t offl = t->arena_len;
        if (!unmap_to_arena(t, s, nl, &ok)) NOMEM();
        if (!ok) continue;
        size_t lenl = t->arena_len - offl;
        size_t offr = t->arena_len;
        if (!unmap_to_arena(t, sp + 1, nr, &ok)) NOMEM();
        if (!ok) {
            t->arena_len = offl;
            continue;
        }
        size_t lenr = t->arena_len - offr;
        /* result = left + right, then intern the three (right, result first: tail rule) */
        if (!arena_reserve(t, lenl + lenr)) NOMEM();
        size_t offres = t->arena_len;
        memcpy(t->arena + offres, t->arena + offl, lenl);
        memcpy(t->arena + offres + lenl, t->arena + offr, lenr);
        t->arena_len += lenl + lenr;
        uint32_t sres = intern_tail(t, offres, (uint32_t)(lenl + lenr));
        uint32_t sr = intern_tail(t, offr, (uint32_t)lenr);
        uint32_t sl = intern_tail(t, offl, (uint32_t)lenl);
        if (sres == NONE || sr == NONE || sl == NONE) NOMEM();
        uint64_t key = ((uint64_t)sl << 32) | sr;
        uint32_t slot = pairmap_slot(&t->merges, key);
        if (t->merges.key[slot] == key) continue; /* duplicate pair: the first rank wins */
        t->merges.key[slot] = key;
        t->merges.rank[slot] = (int32_t)r;
        t->merges.res[slot] = sres;
    }

    /* pieces and the special-token list */
    for (uint32_t i = 0; i < n_vocab; i++) {
        if (!build_piece(t, i)) NOMEM();
        if (t->tok_attr[i] & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN))
            t->special[t->n_special++] = (int32_t)i;
    }
    sort_special(t);
    *out = t;
    return LFM2_OK;
}

static bool str_eq(const gguf_str *s, const char *lit) {
    return s->len == strlen(lit) && memcmp(s->ptr, lit, (size_t)s->len) == 0;
}

lfm2_status lfm2_tokenizer_from_gguf(const gguf_file *f, lfm2_tokenizer **out) {
    if (!out || !f) return lfm2_fail(LFM2_E_ARG, "tokenizer_from_gguf: NULL argument");
    *out = NULL;
    const gguf_str *model, *pre, *tokens, *merges;
    uint64_t n_tokens, n_merges;
    lfm2_status s;
    if ((s = gguf_get_str(f, "tokenizer.ggml.model", &model))) return s;
    if (!str_eq(model, "gpt2"))
        return lfm2_fail(LFM2_E_HPARAM, "tokenizer: model '%.*s' is not supported (want gpt2)",
                         (int)(model->len > 64 ? 64 : model->len), model->ptr);
    if ((s = gguf_get_str(f, "tokenizer.ggml.pre", &pre))) return s;
    static const char *const llama3_family[] = {"lfm2", "llama3", "llama-v3", "llama-bpe", "falcon3",
                                                "falcon-h1", "pixtral", "midm-2.0", "jina-v5-nano"};
    bool known = false;
    for (size_t k = 0; k < sizeof llama3_family / sizeof llama3_family[0]; k++)
        known = known || str_eq(pre, llama3_family[k]);
    if (!known)
        return lfm2_fail(LFM2_E_HPARAM, "tokenizer: pre-tokenizer '%.*s' is not supported",
                         (int)(pre->len > 64 ? 64 : pre->len), pre->ptr);
    if ((s = gguf_get_arr_str(f, "tokenizer.ggml.tokens", &tokens, &n_tokens))) return s;
    if ((s = gguf_get_arr_str(f, "tokenizer.ggml.merges", &merges, &n_merges))) return s;
    if (n_tokens == 0 || n_tokens > (1u << 30) || n_merges > (1u << 28))
        return lfm2_fail(LFM2_E_HPARAM, "tokenizer: %llu tokens, %llu merges",
                         (unsigned long long)n_tokens, (unsigned long long)n_merges);
    int32_t *types = NULL;
    uint64_t n_types = 0;
    s = gguf_get_arr_i32(f, "tokenizer.ggml.token_type", &types, &n_types);
    if (s == LFM2_E_KEY_MISSING) types = NULL;
    else if (s) return s;
    else if (n_types < n_tokens) {
        free(types);
        return lfm2_fail(LFM2_E_HPARAM, "tokenizer: %llu token types for %llu tokens",
                         (unsigned long long)n_types, (unsigned long long)n_tokens);
    }
    /* llama.cpp's defaults for gpt2 vocabularies: BOS = EOS = 11 (if in range); an id in the file
     * that is out of range keeps the default. The lfm2 pre-tokenizer adds BOS by default. */
    int32_t ids[2] = {11, 11};
    const char *keys[2] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"};
    for (int k = 0; k < 2; k++) {
        if ((uint64_t)ids[k] >= n_tokens) ids[k] = -1;
        uint32_t v;
        s = gguf_get_u32(f, keys[k], &v);
        if (s == LFM2_OK) {
            if (v < n_tokens) ids[k] = (int32_t)v;
        } else if (s != LFM2_E_KEY_MISSING) {
            free(types);
            return s;
        }
    }
    bool add_bos = true;
    s = gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &add_bos);
    if (s == LFM2_E_KEY_MISSING) add_bos = true;
    else if (s) {
        free(types);
        return s;
    }
    s = lfm2_tokenizer_create(tokens, types, (uint32_t)n_tokens, merges, (uint32_t)n_merges, ids[0],
                              ids[1], add_bos, out);
    free(types);
    return s;
}

uint32_t lfm2_tokenizer_n_vocab(const lfm2_tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t lfm2_tokenizer_bos(const lfm2_tokenizer *t) { return t ? t->bos : -1; }
int32_t lfm2_tokenizer_eos(const lfm2_tokenizer *t) { return t ? t->eos : -1; }

bool lfm2_tokenizer_is_eog(const lfm2_tokenizer *t, int32_t id) {
    return t && id >= 0 && (uint32_t)id < t->n_vocab && (t->tok_attr[id] & ATTR_EOG);
}

bool lfm2_tokenizer_is_control(const lfm2_tokenizer *t, int32_t id) {
    return t && id >= 0 && (uint32_t)id < t->n_vocab &&
           (t->tok_attr[id] & (ATTR_CONTROL | ATTR_UNKNOWN));
}

int32_t lfm2_tokenizer_find(const lfm2_tokenizer *t, const char *text, size_t len) {
    if (!t || (!text && len)) return -1;
    if (len > UINT32_MAX) return -1;
    uint32_t h = hash_bytes((const unsigned char *)text, len);
    uint32_t slot = strmap_slot(&t->text_map, t->arena, t->tok_off, t->tok_len, text ? text : "", len, h);
    uint32_t v = t->text_map.val[slot];
    return v == NONE ? -1 : (int32_t)v;
}

/* ---------------------------------------------------------------------------------------------
 * tokenize */

typedef struct {
    int32_t *v;
    size_t n, cap;
} ivec;

static bool ivec_push(ivec *a, int32_t x) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 256;
        int32_t *p = realloc(a->v, cap * sizeof *p);
        if (!p) return false;
        a->v = p;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return true;
}

typedef struct {
    uint32_t sid;      /* NONE once merged into its left neighbour */
    int32_t prev, next;
} bpe_sym;

typedef struct {
    int32_t rank;
    int32_t left, right;
    uint32_t sid_left, sid_right;
} bpe_cand;

/* per-call scratch buffers, reused across fragments and words */
typedef struct {
    uint32_t *cps;
    uint16_t *flags;
    size_t *ends;
    size_t cap_cps;
    unsigned char *word;
    size_t cap_word;
    bpe_sym *syms;
    size_t cap_syms;
    bpe_cand *heap;
    size_t n_heap, cap_heap;
} scratch;

static void scratch_free(scratch *s) {
    free(s->cps);
    free(s->flags);
    free(s->ends);
    free(s->word);
    free(s->syms);
    free(s->heap);
}

/* p grown to hold need elements (capacity doubling); NULL on failure (p is then still valid) */
static void *grow(void *p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap && p) return p;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(p, c * elem);
    if (q) *cap = c;
    return q;
}

static bool cand_less(const bpe_cand *a, const bpe_cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static bool heap_push(scratch *s, bpe_cand c) {
    if (s->n_heap == s->cap_heap) {
        size_t cap = s->cap_heap ? s->cap_heap * 2 : 64;
        bpe_cand *p = realloc(s->heap, cap * sizeof *p);
        if (!p) return false;
        s->heap = p;
        s->cap_heap = cap;
    }
    size_t i = s->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!cand_less(&c, &s->heap[parent])) break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = c;
    return true;
}

static bpe_cand heap_pop(scratch *s) {
    bpe_cand top = s->heap[0];
    bpe_cand last = s->heap[--s->n_heap];
    size_t n = s->n_heap, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && cand_less(&s->heap[c + 1], &s->heap[c])) c++;
        if (!cand_less(&s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n) s->heap[i] = last;
    return top;
}

static bool try_pair(const lfm2_tokenizer *t, scratch *s, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return true;
    uint64_t key = ((uint64_t)s->syms[left].sid << 32) | s->syms[right].sid;
    uint32_t slot = pairmap_slot(&t->merges, key);
    if (t->merges.key[slot] != key) return true;
    bpe_cand c = {t->merges.rank[slot], left, right, s->syms[left].sid, s->syms[right].sid};
    return heap_push(s, c);
}

/* emit a symbol that is not a token: llama.cpp looks up each byte of its byte-mapped UTF-8 text
 * as a one-byte token text and drops those that are not */
static bool emit_unknown_symbol(const lfm2_tokenizer *t, const unsigned char *p, size_t n, ivec *o) {
    for (size_t k = 0; k < n; k++) {
        unsigned char enc[4];
        size_t el = utf8_encode(t->byte_to_cp[p[k]], enc);
        for (size_t j = 0; j < el; j++) {
            int32_t id = t->single_byte_tok[enc[j]];
            if (id >= 0 && !ivec_push(o, id)) return false;
        }
    }
    return true;
}

static bool bpe_word(const lfm2_tokenizer *t, scratch *s, const unsigned char *w, size_t n, ivec *o) {
    /* ignore_merges: a word that is a token is emitted whole */
    uint32_t whole = sym_find(t, w, n);
    if (whole != NONE && t->sym_tok[whole] >= 0) return ivec_push(o, t->sym_tok[whole]);
    if (n == 0) return true;
    if (n > INT32_MAX - 1) return false;
    bpe_sym *syms = grow(s->syms, &s->cap_syms, n, sizeof *s->syms);
    if (!syms) return false;
    s->syms = syms;
    for (size_t i = 0; i < n; i++) {
        s->syms[i].sid = t->byte_sym[w[i]];
        s->syms[i].prev = (int32_t)i - 1;
        s->syms[i].next = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    s->n_heap = 0;
    for (size_t i = 1; i < n; i++)
        if (!try_pair(t, s, (int32_t)i - 1, (int32_t)i)) return false;
    while (s->n_heap) {
        bpe_cand c = heap_pop(s);
        bpe_sym *l = &s->syms[c.left], *r = &s->syms[c.right];
        if (l->sid != c.sid_left || r->sid != c.sid_right || l->next != c.right) continue; /* stale */
        uint32_t slot = pairmap_slot(&t->merges, ((uint64_t)c.sid_left << 32) | c.sid_right);
        l->sid = t->merges.res[slot];
        l->next = r->next;
        if (r->next >= 0) s->syms[r->next].prev = c.left;
        r->sid = NONE;
        if (!try_pair(t, s, l->prev, c.left) || !try_pair(t, s, c.left, l->next)) return false;
    }
    size_t pos = 0;
    for (int32_t i = 0; i >= 0; i = s->syms[i].next) {
        uint32_t sid = s->syms[i].sid;
        size_t len = t->sym_len[sid];
        if (t->sym_tok[sid] >= 0) {
            if (!ivec_push(o, t->sym_tok[sid])) return false;
        } else if (!emit_unknown_symbol(t, w + pos, len, o)) {
            return false;
        }
        pos += len;
    }
    return true;
}

static inline uint32_t ascii_lower(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

/* The Llama-3 split over code points cps[0..n) with their flags; writes the end of each word
 * (exclusive, in code points) to ends; returns the number of words. Mirrors llama.cpp's
 * unicode_regex_split_custom_llama3 for
 *   (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *    ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+                                            */
static size_t split_llama3(const uint32_t *cps, const uint16_t *fl, size_t n, size_t *ends) {
    size_t nw = 0, pos = 0, last = 0;
#define FL(i) ((i) < n ? fl[i] : 0)
#define CP(i) ((i) < n ? cps[i] : UINT32_MAX)
#define EMIT()                           \
    do {                                 \
        if (pos > last) ends[nw++] = pos; \
        last = pos;                      \
    } while (0)
    while (pos < n) {
        const uint32_t c = cps[pos];
        const uint16_t f = fl[pos];
        /* contractions, ASCII case-insensitive */
        if (c == '\'' && pos + 1 < n) {
            uint32_t c1 = ascii_lower(cps[pos + 1]);
            if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
                pos += 2;
                EMIT();
                continue;
            }
            if (pos + 2 < n) {
                uint32_t c2 = ascii_lower(cps[pos + 2]);
                if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
                    pos += 3;
                    EMIT();
                    continue;
                }
            }
        }
        /* [^\r\n\p{L}\p{N}]?\p{L}+ */
        if (!(c == '\r' || c == '\n' || (f & UCP_NUMBER))) {
            if ((f & UCP_LETTER) || (FL(pos + 1) & UCP_LETTER)) {
                pos++;
                while (FL(pos) & UCP_LETTER) pos++;
                EMIT();
                continue;
            }
        }
        /* \p{N}{1,3} */
        if (f & UCP_NUMBER) {
            size_t ini = pos;
            while (FL(pos) & UCP_NUMBER) {
                if (++pos - ini >= 3) {
                    EMIT();
                    ini = pos;
                }
            }
            EMIT();
            continue;
        }
        /*  ?[^\s\p{L}\p{N}]+[\r\n]*  (a space at the very end also lands here, alone) */
        uint16_t f2 = c == ' ' ? FL(pos + 1) : f;
        if (!(f2 & (UCP_WHITESPACE | UCP_LETTER | UCP_NUMBER))) {
            pos += c == ' ';
            while (f2 && !(f2 & (UCP_WHITESPACE | UCP_LETTER | UCP_NUMBER))) {
                pos++;
                f2 = FL(pos);
            }
            while (CP(pos) == '\r' || CP(pos) == '\n') pos++;
            EMIT();
            continue;
        }
        size_t nws = 0, last_rn = 0;
        while (FL(pos + nws) & UCP_WHITESPACE) {
            uint32_t c2 = cps[pos + nws];
            if (c2 == '\r' || c2 == '\n') last_rn = pos + nws + 1;
            nws++;
        }
        if (last_rn > 0) { /* \s*[\r\n]+ */
            pos = last_rn;
        } else if (nws > 1 && pos + nws < n) { /* \s+(?!\S) */
            pos += nws - 1;
        } else if (nws > 0) { /* \s+ */
            pos += nws;
        } else { /* no match: one code point */
            pos++;
        }
        EMIT();
    }
#undef FL
#undef CP
#undef EMIT
    return nw;
}

static bool tokenize_fragment(const lfm2_tokenizer *t, scratch *s, const unsigned char *text,
                              size_t len, ivec *o) {
    if (len == 0) return true;
    if (len > SIZE_MAX / sizeof(size_t)) return false;
    if (len > s->cap_cps) { /* at most one code point per byte */
        uint32_t *cps = realloc(s->cps, len * sizeof *cps);
        if (!cps) return false;
        s->cps = cps;
        uint16_t *fl = realloc(s->flags, len * sizeof *fl);
        if (!fl) return false;
        s->flags = fl;
        size_t *ends = realloc(s->ends, len * sizeof *ends);
        if (!ends) return false;
        s->ends = ends;
        s->cap_cps = len;
    }

    size_t n = 0, pos = 0;
    while (pos < len) {
        uint32_t cp = utf8_decode_lenient(text, len, &pos);
        s->cps[n] = cp;
        s->flags[n] = ucp_flags(cp);
        n++;
    }
    size_t nw = split_llama3(s->cps, s->flags, n, s->ends);
    size_t start = 0;
    for (size_t k = 0; k < nw; k++) {
        size_t end = s->ends[k], bytes = 0;
        for (size_t i = start; i < end; i++) bytes += utf8_len(s->cps[i]);
        unsigned char *wb = grow(s->word, &s->cap_word, bytes, 1);
        if (!wb) return false;
        s->word = wb;
        size_t w = 0;
        for (size_t i = start; i < end; i++) w += utf8_encode(s->cps[i], s->word + w);
        if (!bpe_word(t, s, s->word, w, o)) return false;
        start = end;
    }
    return true;
}

typedef struct {
    size_t off, len;
    int32_t tok; /* -1: raw text */
} fragment;

static const unsigned char *find_bytes(const unsigned char *h, size_t hn, const unsigned char *nd,
                                       size_t nn) {
    if (nn == 0 || hn < nn) return NULL;
    const unsigned char *end = h + (hn - nn) + 1;
    while (h < end) {
        const unsigned char *p = memchr(h, nd[0], (size_t)(end - h));
        if (!p) return NULL;
        if (memcmp(p + 1, nd + 1, nn - 1) == 0) return p;
        h = p + 1;
    }
    return NULL;
}

/* llama.cpp's tokenizer_st_partition: each special token (longest first) splits the fragments
 * that are still raw text at each of its non-overlapping occurrences, left to right. */
static bool partition_special(const lfm2_tokenizer *t, const unsigned char *text, size_t len,
                              bool parse_special, fragment **frags, size_t *n_frags) {
    size_t n = 1, cap = 16, cap2 = 16;
    fragment *a = malloc(cap * sizeof *a), *b = malloc(cap2 * sizeof *b);
    if (!a || !b) goto fail;
    a[0] = (fragment){0, len, -1};
    for (uint32_t k = 0; k < t->n_special; k++) {
        int32_t id = t->special[k];
        uint8_t attr = t->tok_attr[id];
        if (!parse_special && (attr & (ATTR_CONTROL | ATTR_UNKNOWN))) continue;
        const unsigned char *st = (const unsigned char *)t->arena + t->tok_off[id];
        size_t sl = t->tok_len[id];
        size_t m = 0;
        bool changed = false;
        for (size_t i = 0; i < n; i++) {
            fragment fr = a[i];
            /* up to 2 outputs per occurrence + the tail */
            for (;;) {
                const unsigned char *p =
                    fr.tok < 0 ? find_bytes(text + fr.off, fr.len, st, sl) : NULL;
                fragment *nb = grow(b, &cap2, m + 2, sizeof *b);
                if (!nb) goto fail;
                b = nb;
                if (!p) {
                    b[m++] = fr;
                    break;
                }
                changed = true;
                size_t at = (size_t)(p - text);
                if (at > fr.off) b[m++] = (fragment){fr.off, at - fr.off, -1};
                b[m++] = (fragment){0, 0, id};
                size_t rest = fr.off + fr.len - (at + sl);
                if (rest == 0) break;
                fr = (fragment){at + sl, rest, -1};
            }
        }
        if (changed) {
            fragment *tmp = a;
            size_t tc = cap;
            a = b;
            cap = cap2;
            b = tmp;
            cap2 = tc;
            n = m;
        }
    }
    free(b);
    *frags = a;
    *n_frags = n;
    return true;
fail:
    free(a);
    free(b);
    return false;
}

static lfm2_status tokenize_vec(const lfm2_tokenizer *t, const char *text, size_t len,
                                bool add_special, bool parse_special, ivec *o) {
    if (!t) return lfm2_fail(LFM2_E_ARG, "tokenize: tokenizer is NULL");
    if (!text && len) return lfm2_fail(LFM2_E_ARG, "tokenize: text is NULL");
    const unsigned char *u = (const unsigned char *)text;
    fragment *frags = NULL;
    size_t n_frags = 0;
    scratch s;
    memset(&s, 0, sizeof s);
    bool ok = !(add_special && t->add_bos && t->bos >= 0) || ivec_push(o, t->bos);
    if (ok && len) ok = partition_special(t, u, len, parse_special, &frags, &n_frags);
    for (size_t i = 0; i < n_frags && ok; i++) {
        if (frags[i].tok >= 0) ok = ivec_push(o, frags[i].tok);
        else ok = tokenize_fragment(t, &s, u + frags[i].off, frags[i].len, o);
    }
    scratch_free(&s);
    free(frags);
    return ok ? LFM2_OK : lfm2_fail(LFM2_E_NOMEM, "tokenize: out of memory");
}

lfm2_status lfm2_tokenize(const lfm2_tokenizer *t, const char *text, size_t len, bool add_special,
                          bool parse_special, int32_t *out, size_t cap, size_t *n_out) {
    if (!n_out) return lfm2_fail(LFM2_E_ARG, "tokenize: n_out is NULL");
    *n_out = 0;
    if (!out && cap) return lfm2_fail(LFM2_E_ARG, "tokenize: out is NULL");
    ivec o = {0};
    lfm2_status s = tokenize_vec(t, text, len, add_special, parse_special, &o);
    if (s == LFM2_OK) {
        *n_out = o.n;
        if (o.n > cap) s = lfm2_fail(LFM2_E_ARG, "tokenize: %zu tokens do not fit in %zu", o.n, cap);
        else if (o.n) memcpy(out, o.v, o.n * sizeof *out);
    }
    free(o.v);
    return s;
}

lfm2_status lfm2_tokenize_alloc(const lfm2_tokenizer *t, const char *text, size_t len,
                                bool add_special, bool parse_special, int32_t **out, size_t *n_out) {
    if (!out || !n_out) return lfm2_fail(LFM2_E_ARG, "tokenize: NULL output");
    *out = NULL;
    *n_out = 0;
    ivec o = {0};
    lfm2_status s = tokenize_vec(t, text, len, add_special, parse_special, &o);
    if (s != LFM2_OK || o.n == 0) {
        free(o.v);
        return s;
    }
    *out = o.v;
    *n_out = o.n;
    return LFM2_OK;
}

/* ---------------------------------------------------------------------------------------------
 * detokenize */

/* the piece of a valid id */
static const char *piece_of(const lfm2_tokenizer *t, int32_t id, bool render_special, size_t *len) {
    *len = (!render_special && (t->tok_attr[id] & (ATTR_CONTROL | ATTR_UNKNOWN))) ? 0 : t->piece_len[id];
    return t->arena + t->piece_off[id];
}

static lfm2_status bad_id(const lfm2_tokenizer *t, int32_t id) {
    return lfm2_fail(LFM2_E_TOKEN, "token id %d outside the vocabulary (%u)", id, t->n_vocab);
}

lfm2_status lfm2_token_piece(const lfm2_tokenizer *t, int32_t id, bool render_special,
                             const char **piece, size_t *len) {
    if (!t || !piece || !len) return lfm2_fail(LFM2_E_ARG, "token_piece: NULL argument");
    if (id < 0 || (uint32_t)id >= t->n_vocab) return bad_id(t, id);
    *piece = piece_of(t, id, render_special, len);
    return LFM2_OK;
}

/* llama.cpp's clean_spaces passes, in place; returns the new length */
static size_t clean_spaces_inplace(char *text, size_t total) {
    if (total == 0) return 0;
    /* 1: " ?", " !", " .", " ," lose the space */
    size_t n1 = total, w = 1;
    for (size_t i = 1; i < n1; i++) {
        char x = text[i];
        if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) w--;
        text[w++] = x;
    }
    /* 2: " ' " becomes "'" (the byte after is zeroed and skipped, as llama.cpp does) */
    size_t n2 = w;
    w = 1;
    for (size_t i = 1; i < n2; i++) {
        char x = text[i];
        if (x == '\'' && i + 1 < n2 && text[i - 1] == ' ' && text[i + 1] == ' ') {
            w--;
            text[++i] = '\0';
        }
        text[w++] = x;
    }
    /* 3: " 's", " 'm", " 're", " 've" lose the space (not " 't", " 'd", " 'll") */
    size_t n3 = w;
    w = 1;
    for (size_t i = 1; i < n3; i++) {
        char x = text[i];
        if (text[i - 1] == ' ' && x == '\'' && i + 1 < n3) {
            char x1 = text[i + 1];
            if (x1 == 't' || x1 == 'd') {
            } else if (x1 == 's' || x1 == 'm') {
                w--;
            } else if (i + 2 < n3) {
                char x2 = text[i + 2];
                if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) w--;
            }
        }
        text[w++] = x;
    }
    return w;
}

lfm2_status lfm2_detokenize(const lfm2_tokenizer *t, const int32_t *ids, size_t n,
                            bool render_special, bool clean_spaces, char *out, size_t cap,
                            size_t *n_out) {
    if (!n_out) return lfm2_fail(LFM2_E_ARG, "detokenize: n_out is NULL");
    *n_out = 0;
    if (!t || (!ids && n) || (!out && cap)) return lfm2_fail(LFM2_E_ARG, "detokenize: NULL argument");
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (uint32_t)ids[i] >= t->n_vocab) return bad_id(t, ids[i]);
        size_t l;
        piece_of(t, ids[i], render_special, &l);
        total += l;
    }
    char *buf = out;
    if (total > cap) {
        if (!clean_spaces) {
            *n_out = total;
            return lfm2_fail(LFM2_E_ARG, "detokenize: %zu bytes do not fit in %zu", total, cap);
        }
        buf = malloc(total);
        if (!buf) return lfm2_fail(LFM2_E_NOMEM, "detokenize: out of memory");
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l;
        const char *p = piece_of(t, ids[i], render_special, &l);
        if (l) memcpy(buf + w, p, l);
        w += l;
    }
    if (clean_spaces) w = clean_spaces_inplace(buf, w);
    *n_out = w;
    if (buf != out) {
        lfm2_status s = LFM2_OK;
        if (w > cap) s = lfm2_fail(LFM2_E_ARG, "detokenize: %zu bytes do not fit in %zu", w, cap);
        else if (w) memcpy(out, buf, w);
        free(buf);
        return s;
    }
    return LFM2_OK;
}

void lfm2_detok_stream_init(lfm2_detok_stream *st) {
    if (st) memset(st, 0, sizeof *st);
}

/* Expected length of a UTF-8 sequence starting with lead byte b (2..4), 0 if b cannot start one. */
static int utf8_lead_len(unsigned b) {
    if (b >= 0xC2 && b <= 0xDF) return 2;
    if (b >= 0xE0 && b <= 0xEF) return 3;
    if (b >= 0xF0 && b <= 0xF4) return 4;
    return 0;
}

/* Can byte b follow the incomplete sequence p[0..k) (k >= 1)? */
static bool utf8_can_continue(const unsigned char *p, int k, unsigned b) {
    if ((b & 0xC0) != 0x80) return false;
    if (k == 1) {
        unsigned l = p[0];
        if (l == 0xE0) return b >= 0xA0;
        if (l == 0xED) return b <= 0x9F;
        if (l == 0xF0) return b >= 0x90;
        if (l == 0xF4) return b <= 0x8F;
    }
    return true;
}

/* Run bytes through the state; writes to out if non-NULL; returns the number of bytes emitted. */
static size_t stream_feed(lfm2_detok_stream *st, const unsigned char *in, size_t n, char *out) {
    size_t w = 0;
#define PUT(byte)                                      \
    do {                                               \
        if (out) out[w] = (char)(byte);                \
        w++;                                           \
    } while (0)
    for (size_t i = 0; i < n; i++) {
        unsigned b = in[i];
        if (st->n_pending) {
            if (utf8_can_continue(st->pending, st->n_pending, b)) {
                st->pending[st->n_pending++] = (unsigned char)b;
                if (st->n_pending == utf8_lead_len(st->pending[0])) {
                    for (int k = 0; k < st->n_pending; k++) PUT(st->pending[k]);
                    st->n_pending = 0;
                }
                continue;
            }
            for (int k = 0; k < st->n_pending; k++) PUT(st->pending[k]); /* invalid: as it is */
            st->n_pending = 0;
        }
        if (b >= 0x80 && utf8_lead_len(b)) {
            st->pending[0] = (unsigned char)b;
            st->n_pending = 1;
        } else {
            PUT(b);
        }
    }
#undef PUT
    return w;
}

lfm2_status lfm2_detok_stream_push(const lfm2_tokenizer *t, lfm2_detok_stream *st, int32_t id,
                                   bool render_special, char *out, size_t cap, size_t *n_out) {
    if (!n_out) return lfm2_fail(LFM2_E_ARG, "detok_stream: n_out is NULL");
    *n_out = 0;
    if (!st || (!out && cap)) return lfm2_fail(LFM2_E_ARG, "detok_stream: NULL argument");
    if (st->n_pending > 3) return lfm2_fail(LFM2_E_ARG, "detok_stream: corrupt state");
    const char *p;
    size_t l;
    lfm2_status s = lfm2_token_piece(t, id, render_special, &p, &l);
    if (s) return s;
    lfm2_detok_stream tmp = *st;
    size_t need = stream_feed(&tmp, (const unsigned char *)p, l, NULL);
    *n_out = need;
    if (need > cap) return lfm2_fail(LFM2_E_ARG, "detok_stream: %zu bytes do not fit in %zu", need, cap);
    stream_feed(st, (const unsigned char *)p, l, out);
    return LFM2_OK;
}

lfm2_status lfm2_detok_stream_flush(lfm2_detok_stream *st, char *out, size_t cap, size_t *n_out) {
    if (!n_out) return lfm2_fail(LFM2_E_ARG, "detok_stream: n_out is NULL");
    *n_out = 0;
    if (!st || (!out && cap)) return lfm2_fail(LFM2_E_ARG, "detok_stream: NULL argument");
    if (st->n_pending > 3) return lfm2_fail(LFM2_E_ARG, "detok_stream: corrupt state");
    *n_out = st->n_pending;
    if (st->n_pending > cap)
        return lfm2_fail(LFM2_E_ARG, "detok_stream: %u bytes do not fit in %zu", st->n_pending, cap);
    if (st->n_pending) memcpy(out, st->pending, st->n_pending);
    st->n_pending = 0;
    return LFM2_OK;
}
