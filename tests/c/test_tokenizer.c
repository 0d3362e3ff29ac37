/* test_tokenizer.c: the tokenizer against llama.cpp's outputs (tests/fixtures/tokenizer.json, on
 * the vocabulary of tests/fixtures/models/tiny-f32.gguf), an independent naive BPE, and property
 * tests (round trips, streaming, invalid UTF-8, buffer protocol). Run from the repository root. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "gguf.h"
#include "status.h"
#include "tokenizer.h"
#include "unicode.h"

#define MODEL_PATH "tests/fixtures/models/tiny-f32.gguf"
#define CASES_PATH "tests/fixtures/tokenizer.json"

/* ---------------------------------------------------------------------------------------------
 * helpers */

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

typedef struct {
    const unsigned char *data;
    size_t size;
} mem_file;

static int mem_read(void *ctx, uint64_t offset, size_t len, void *dst) {
    const mem_file *m = ctx;
    if (offset > m->size || len > m->size - offset) return 1;
    memcpy(dst, m->data + offset, len);
    return 0;
}

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) { /* xorshift64* */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return (uint32_t)((g_rng * 2685821657736338717ull) >> 32);
}
static uint32_t rnd_below(uint32_t n) { return rnd() % n; }

typedef struct {
    char *p;
    size_t n, cap;
} buf;

static void buf_put(buf *b, const void *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void buf_cp(buf *b, uint32_t cp) {
    unsigned char e[4];
    buf_put(b, e, utf8_encode(cp, e));
}

static void print_escaped(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F && c != '\\') fputc(c, stderr);
        else fprintf(stderr, "\\x%02x", c);
    }
}

/* ---------------------------------------------------------------------------------------------
 * a minimal JSON reader for the fixture: objects, arrays, strings, integers */

typedef struct {
    const char *s;
    size_t pos, len;
    int err;
} json;

static void js_ws(json *j) {
    while (j->pos < j->len && strchr(" \t\r\n", j->s[j->pos])) j->pos++;
}

static int js_eat(json *j, char c) {
    js_ws(j);
    if (j->pos < j->len && j->s[j->pos] == c) {
        j->pos++;
        return 1;
    }
    return 0;
}

static unsigned js_hex4(json *j) {
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = j->pos < j->len ? j->s[j->pos++] : 0;
        v = v * 16 + (unsigned)(c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                : c >= 'A' && c <= 'F' ? c - 'A' + 10 : (j->err = 1, 0));
    }
    return v;
}

static void js_string(json *j, buf *out) {
    out->n = 0;
    buf_put(out, "", 0);
    if (!js_eat(j, '"')) {
        j->err = 1;
        return;
    }
    while (j->pos < j->len && j->s[j->pos] != '"') {
        char c = j->s[j->pos++];
        if (c != '\\') {
            buf_put(out, &c, 1);
            continue;
        }
        char e = j->s[j->pos++];
        switch (e) {
        case 'n': buf_put(out, "\n", 1); break;
        case 't': buf_put(out, "\t", 1); break;
        case 'r': buf_put(out, "\r", 1); break;
        case 'b': buf_put(out, "\b", 1); break;
        case 'f': buf_put(out, "\f", 1); break;
        case 'u': {
            uint32_t cp = js_hex4(j);
            if (cp >= 0xD800 && cp < 0xDC00 && j->pos + 6 <= j->len && j->s[j->pos] == '\\' &&
                j->s[j->pos + 1] == 'u') {
                j->pos += 2;
                uint32_t lo = js_hex4(j);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            buf_cp(out, cp);
            break;
        }
        default: buf_put(out, &e, 1);
        }
    }
    if (!js_eat(j, '"')) j->err = 1;
}

static size_t js_int_array(json *j, int32_t *out, size_t cap) {
    size_t n = 0;
    if (!js_eat(j, '[')) {
        j->err = 1;
        return 0;
    }
    if (js_eat(j, ']')) return 0;
    do {
        js_ws(j);
        char *end;
        long v = strtol(j->s + j->pos, &end, 10);
        if (end == j->s + j->pos) j->err = 1;
        j->pos = (size_t)(end - j->s);
        if (n < cap) out[n] = (int32_t)v;
        n++;
    } while (js_eat(j, ','));
    if (!js_eat(j, ']')) j->err = 1;
    return n;
}

/* ---------------------------------------------------------------------------------------------
 * vocabulary access for the naive reference BPE */

typedef struct {
    const gguf_str *tokens;
    uint64_t n_tokens;
    const gguf_str *merges;
    uint64_t n_merges;
} vocab;

static int32_t vocab_find(const vocab *v, const char *s, size_t n) {
    for (uint64_t i = 0; i < v->n_tokens; i++)
        if (v->tokens[i].len == n && memcmp(v->tokens[i].ptr, s, n) == 0) return (int32_t)i;
    return -1;
}

static int64_t merge_rank(const vocab *v, const char *a, size_t an, const char *b, size_t bn) {
    for (uint64_t i = 0; i < v->n_merges; i++) {
        const gguf_str *m = &v->merges[i];
        if (m->len == an + bn + 1 && memcmp(m->ptr, a, an) == 0 && m->ptr[an] == ' ' &&
            memcmp(m->ptr + an + 1, b, bn) == 0)
            return (int64_t)i;
    }
    return -1;
}

/* GPT-2 byte map, computed independently */
static void byte_to_mapped(unsigned b, buf *out) {
    unsigned cp;
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE)) cp = b;
    else {
        unsigned n = 0;
        for (unsigned x = 0; x < b; x++)
            if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE))) n++;
        cp = 256 + n;
    }
    buf_cp(out, cp);
}

/* Quadratic textbook BPE on one word (raw bytes): merge the lowest-rank adjacent pair, leftmost
 * first, until none applies; ignore_merges first. Appends ids. */
static size_t naive_bpe(const vocab *v, const unsigned char *w, size_t n, int32_t *out) {
    buf mapped = {0};
    for (size_t i = 0; i < n; i++) byte_to_mapped(w[i], &mapped);
    int32_t whole = vocab_find(v, mapped.p, mapped.n);
    if (whole >= 0) {
        out[0] = whole;
        free(mapped.p);
        return 1;
    }
    /* pieces as (offset, length) in mapped */
    size_t *off = malloc(n * sizeof *off), *len = malloc(n * sizeof *len), k = 0, pos = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = utf8_valid_seq((const unsigned char *)mapped.p + pos, mapped.n - pos);
        off[k] = pos;
        len[k] = l;
        k++;
        pos += l;
    }
    for (;;) {
        int64_t best = -1;
        size_t at = 0;
        for (size_t i = 0; i + 1 < k; i++) {
            int64_t r = merge_rank(v, mapped.p + off[i], len[i], mapped.p + off[i + 1], len[i + 1]);
            if (r >= 0 && (best < 0 || r < best)) {
                best = r;
                at = i;
            }
        }
        if (best < 0) break;
        len[at] += len[at + 1];
        memmove(off + at + 1, off + at + 2, (k - at - 2) * sizeof *off);
        memmove(len + at + 1, len + at + 2, (k - at - 2) * sizeof *len);
        k--;
    }
    size_t m = 0;
    for (size_t i = 0; i < k; i++) {
        int32_t id = vocab_find(v, mapped.p + off[i], len[i]);
        if (id >= 0) out[m++] = id;
        else
            for (size_t j = 0; j < len[i]; j++) {
                int32_t b = vocab_find(v, mapped.p + off[i] + j, 1);
                if (b >= 0) out[m++] = b;
            }
    }
    free(off);
    free(len);
    free(mapped.p);
    return m;
}

/* ---------------------------------------------------------------------------------------------
 * tests */

static const lfm2_tokenizer *g_tok;

static int32_t *tok(const char *s, size_t n, bool add_special, bool parse_special, size_t *count) {
    int32_t *ids = NULL;
    lfm2_status st = lfm2_tokenize_alloc(g_tok, s, n, add_special, parse_special, &ids, count);
    CHECK(st == LFM2_OK, "tokenize: %s", lfm2_last_error());
    return ids;
}

static char *detok(const int32_t *ids, size_t n, bool render_special, bool clean, size_t *len) {
    size_t need = 0;
    lfm2_status st = lfm2_detokenize(g_tok, ids, n, render_special, clean, NULL, 0, &need);
    CHECK(st == LFM2_OK || (st == LFM2_E_ARG && need > 0), "detokenize size query: %s",
          lfm2_last_error());
    char *out = malloc(need + 1);
    size_t got = 0;
    st = lfm2_detokenize(g_tok, ids, n, render_special, clean, out, need, &got);
    CHECK(st == LFM2_OK && got == need, "detokenize: %s (%zu vs %zu)", lfm2_last_error(), got, need);
    out[got] = '\0';
    *len = got;
    return out;
}

static bool ids_equal(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

static void print_ids(const char *what, const int32_t *a, size_t n) {
    fprintf(stderr, "  %s:", what);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", a[i]);
    fputc('\n', stderr);
}

static void test_fixture_cases(void) {
    size_t len;
    char *text = read_file(CASES_PATH, &len);
    CHECK(text != NULL, "cannot read %s", CASES_PATH);
    if (!text) return;
    json j = {text, 0, len, 0};
    buf key = {0}, str = {0}, want_detok = {0};
    int32_t want[4096], want_ns[4096];
    size_t n_want = 0, n_want_ns = 0;
    int n_cases = 0;
    /* { "model": "...", "tests": [ {text, ids, ids_no_special, detok}, ... ] } */
    CHECK(js_eat(&j, '{'), "fixture: expected an object");
    do {
        js_string(&j, &key);
        js_eat(&j, ':');
        if (strcmp(key.p, "tests") != 0) {
            js_string(&j, &str);
            continue;
        }
        js_eat(&j, '[');
        do {
            buf case_text = {0};
            js_eat(&j, '{');
            do {
                js_string(&j, &key);
                js_eat(&j, ':');
                if (!strcmp(key.p, "text")) js_string(&j, &case_text);
                else if (!strcmp(key.p, "ids")) n_want = js_int_array(&j, want, 4096);
                else if (!strcmp(key.p, "ids_no_special")) n_want_ns = js_int_array(&j, want_ns, 4096);
                else if (!strcmp(key.p, "detok")) js_string(&j, &want_detok);
                else j.err = 1;
            } while (js_eat(&j, ','));
            js_eat(&j, '}');
            CHECK(!j.err && case_text.p, "fixture parse error near byte %zu", j.pos);
            if (j.err || !case_text.p) break;
            n_cases++;

            size_t n1, n2, dl;
            int32_t *ids = tok(case_text.p, case_text.n, true, true, &n1);
            int32_t *ids_ns = tok(case_text.p, case_text.n, false, false, &n2);
            char *d = detok(want, n_want, true, true, &dl);
            bool ok1 = ids_equal(ids, n1, want, n_want), ok2 = ids_equal(ids_ns, n2, want_ns, n_want_ns);
            bool ok3 = dl == want_detok.n && memcmp(d, want_detok.p, dl) == 0;
            CHECK(ok1 && ok2 && ok3, "case %d (ids %s, ids_no_special %s, detok %s)", n_cases,
                  ok1 ? "ok" : "DIFFER", ok2 ? "ok" : "DIFFER", ok3 ? "ok" : "DIFFER");
            if (!(ok1 && ok2 && ok3)) {
                fprintf(stderr, "  text: ");
                print_escaped(case_text.p, case_text.n);
                fputc('\n', stderr);
                if (!ok1) {
                    print_ids("want", want, n_want);
                    print_ids("got ", ids, n1);
                }
                if (!ok2) {
                    print_ids("want", want_ns, n_want_ns);
                    print_ids("got ", ids_ns, n2);
                }
                if (!ok3) {
                    fprintf(stderr, "  detok want: ");
                    print_escaped(want_detok.p, want_detok.n);
                    fprintf(stderr, "\n  detok got:  ");
                    print_escaped(d, dl);
                    fputc('\n', stderr);
                }
            }
            /* our own ids detokenize the same way */
            size_t dl2;
            char *d2 = detok(ids, n1, true, true, &dl2);
            CHECK(dl2 == dl && memcmp(d, d2, dl) == 0, "case %d: detok of our ids", n_cases);
            free(d2);
            free(ids);
            free(ids_ns);
            free(d);
            free(case_text.p);
        } while (js_eat(&j, ','));
        js_eat(&j, ']');
    } while (js_eat(&j, ','));
    CHECK(n_cases == 28, "fixture: %d cases (want 28)", n_cases);
    free(key.p);
    free(str.p);
    free(want_detok.p);
    free(text);
}

static void test_unicode_flags(void) {
    CHECK(ucp_flags('a') == UCP_LETTER, "a");
    CHECK(ucp_flags('7') == UCP_NUMBER, "7");
    CHECK(ucp_flags(' ') == (UCP_SEPARATOR | UCP_WHITESPACE), "space");
    CHECK(ucp_flags('\n') == (UCP_CONTROL | UCP_WHITESPACE), "newline");
    CHECK(ucp_flags(0x85) == (UCP_CONTROL | UCP_WHITESPACE), "NEL");
    CHECK(ucp_flags(0xA0) == (UCP_SEPARATOR | UCP_WHITESPACE), "NBSP");
    CHECK(ucp_flags(0x3000) == (UCP_SEPARATOR | UCP_WHITESPACE), "ideographic space");
    CHECK(ucp_flags(0x200B) == UCP_CONTROL, "ZWSP is Cf, not whitespace");
    CHECK(ucp_flags(0x0663) == UCP_NUMBER, "arabic-indic three");
    CHECK(ucp_flags(0x2164) == UCP_NUMBER, "roman numeral five (Nl)");
    CHECK(ucp_flags(0x0301) == UCP_MARK, "combining acute");
    CHECK(ucp_flags(0x65E5) == UCP_LETTER, "CJK");
    CHECK(ucp_flags(0xAC00) == UCP_LETTER, "hangul syllable");
    CHECK(ucp_flags(0x1F600) == UCP_SYMBOL, "emoji");
    CHECK(ucp_flags(0x2EBF0) == UCP_LETTER, "CJK Ext. I (Unicode 15.1, as llama.cpp)");
    CHECK(ucp_flags(0x31EF) == UCP_SYMBOL, "U+31EF (15.1)");
    CHECK(ucp_flags(0x0378) == UCP_UNDEFINED, "unassigned");
    CHECK(ucp_flags(0xD800) == UCP_CONTROL, "surrogate");
    CHECK(ucp_flags(0x10FFFF) == UCP_UNDEFINED, "U+10FFFF");
    CHECK(ucp_flags(0x110000) == UCP_UNDEFINED, "beyond Unicode");
    CHECK(ucp_flags('_') == UCP_PUNCTUATION && ucp_flags('$') == UCP_SYMBOL, "_ $");
    /* the table is sorted and covers everything */
    bool sorted = lfm2_ucp_range_first[0] == 0;
    for (uint32_t i = 1; i < lfm2_ucp_n_ranges; i++)
        sorted = sorted && lfm2_ucp_range_first[i] > lfm2_ucp_range_first[i - 1];
    CHECK(sorted, "ranges sorted");
    bool nonzero = true;
    for (uint32_t cp = 0; cp < UCP_MAX; cp += 7) nonzero = nonzero && ucp_flags(cp) != 0;
    CHECK(nonzero, "flags never 0");
}

static void test_utf8_decode(void) {
    struct {
        const char *in;
        size_t n;
        uint32_t cps[8];
        size_t ncp;
    } cases[] = {
        {"a\xc3\xa9", 3, {'a', 0xE9}, 2},
        {"\xe2\x82\xac", 3, {0x20AC}, 1},
        {"\xf0\x9f\x98\x80", 4, {0x1F600}, 1},
        {"\x80", 1, {0xFFFD}, 1},
        {"\xc3", 1, {0xFFFD}, 1},
        {"\xc3(", 2, {0xFFFD, '('}, 2},
        {"\xe2\x82", 2, {0xFFFD, 0xFFFD}, 2},
        {"\xc0\x80", 2, {0}, 1},                  /* overlong accepted, as llama.cpp */
        {"\xed\xa0\x80", 3, {0xD800}, 1},         /* surrogate accepted, as llama.cpp */
        {"\xf4\x90\x80\x80", 4, {0xFFFD, 0xFFFD, 0xFFFD, 0xFFFD}, 4}, /* > U+10FFFF */
        {"\xff\xfe", 2, {0xFFFD, 0xFFFD}, 2},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t pos = 0, k = 0;
        bool ok = true;
        while (pos < cases[c].n) {
            uint32_t cp = utf8_decode_lenient((const unsigned char *)cases[c].in, cases[c].n, &pos);
            ok = ok && k < cases[c].ncp && cp == cases[c].cps[k];
            k++;
        }
        CHECK(ok && k == cases[c].ncp, "utf8 decode case %zu", c);
    }
    CHECK(utf8_valid_seq((const unsigned char *)"\xed\xa0\x80", 3) == 0, "surrogate invalid");
    CHECK(utf8_valid_seq((const unsigned char *)"\xe0\x80\x80", 3) == 0, "overlong invalid");
    CHECK(utf8_valid_seq((const unsigned char *)"\xf4\x8f\xbf\xbf", 4) == 4, "U+10FFFF valid");
}

/* a random string from pools of interesting code points */
static void random_text(buf *b, size_t n_cp) {
    static const uint32_t pool_misc[] = {
        ' ', ' ', ' ', '\n', '\r', '\t', '\'', '\'', '.', ',', '!', '?', '-', '_', '<', '>', '|',
        '"', '(', ')', '#', '$', 0x0B, 0x0C, 0x00, 0x01, 0x1B, 0x7F, 0x85, 0xA0, 0x2028, 0x3000,
        0x200B, 0x200D, 0xFE0F, 0x0301, 0x0308, 0x20AC, 0xE9, 0xFC, 0xDF, 0x130, 0x212A, 0x0663,
        0x2164, 0xFF11, 0x1F600, 0x1F680, 0x1F44D, 0x1F3FD, 0x1F1FA, 0x1F1F8, 0x65E5, 0x672C,
        0x8A9E, 0x306E, 0x30C6, 0xD55C, 0x0416, 0x03A9, 0x05D0, 0x0627, 0x0E01, 0x10348, 0xFFFD,
        0x0378, 0xE000, 0x10FFFF, 0x2EBF0, 0xFEFF};
    static const char *words[] = {"the", "The", "THE", " quick", "'s", "'LL", "'re", "<|im_start|>",
                                  "<|im_end|>", "<|startoftext|>", "123456", "3.14", "  ", "\r\n",
                                  "\n\n", "xxxx", "ing", "er", "hello", "world", "<|im_end|"};
    for (size_t i = 0; i < n_cp; i++) {
        uint32_t r = rnd_below(10);
        if (r < 3) buf_cp(b, 'a' + rnd_below(26) - (rnd_below(4) == 0 ? 32 : 0));
        else if (r < 4) buf_cp(b, '0' + rnd_below(10));
        else if (r < 5) {
            const char *w = words[rnd_below(sizeof words / sizeof words[0])];
            buf_put(b, w, strlen(w));
        } else if (r < 9) buf_cp(b, pool_misc[rnd_below(sizeof pool_misc / sizeof pool_misc[0])]);
        else {
            uint32_t cp = rnd_below(0x110000);
            if (cp >= 0xD800 && cp < 0xE000) cp = 'z';
            buf_cp(b, cp);
        }
    }
}

static void test_round_trip(void) {
    int bad = 0;
    for (int it = 0; it < 400; it++) {
        buf b = {0};
        random_text(&b, 1 + rnd_below(60));
        for (int mode = 0; mode < 2; mode++) {
            size_t n, dl;
            int32_t *ids = tok(b.p, b.n, mode == 1, mode == 1, &n);
            char *d = detok(ids, n, true, false, &dl);
            const char *want = b.p;
            size_t wn = b.n;
            if (mode == 1) { /* BOS rendered first */
                const char *bos = "<|startoftext|>";
                CHECK(dl >= strlen(bos) && memcmp(d, bos, strlen(bos)) == 0, "BOS first");
                if (dl >= strlen(bos)) {
                    memmove(d, d + strlen(bos), dl - strlen(bos));
                    dl -= strlen(bos);
                }
            }
            if (!(dl == wn && memcmp(d, want, wn) == 0) && bad++ < 5) {
                CHECK(0, "round trip (mode %d)", mode);
                fprintf(stderr, "  text: ");
                print_escaped(want, wn);
                fprintf(stderr, "\n  back: ");
                print_escaped(d, dl);
                fputc('\n', stderr);
            }
            free(ids);
            free(d);
        }
        free(b.p);
    }
    CHECK(bad == 0, "%d round trips failed", bad);
}

/* BPE against the naive reference on random words: whole strings that the splitter keeps as one
 * word (letters only, optionally one leading space or punctuation) */
static void test_naive_bpe(const vocab *v) {
    static const char letters[] = "etaoinshrdlucmfwypvbgkqjxzETAOIN";
    int bad = 0;
    for (int it = 0; it < 300; it++) {
        buf w = {0};
        uint32_t lead = rnd_below(4);
        if (lead == 1) buf_put(&w, " ", 1);
        if (lead == 2) buf_put(&w, "\"", 1);
        size_t n = 1 + rnd_below(it < 250 ? 12 : 80);
        for (size_t i = 0; i < n; i++) {
            if (rnd_below(12) == 0) buf_cp(&w, 0xE9 + rnd_below(3)); /* accented letter */
            else buf_put(&w, &letters[rnd_below(sizeof letters - 1)], 1);
        }
        int32_t *want = malloc((w.n * 2 + 2) * sizeof *want);
        size_t nw = naive_bpe(v, (const unsigned char *)w.p, w.n, want);
        size_t ng;
        int32_t *got = tok(w.p, w.n, false, false, &ng);
        if (!ids_equal(got, ng, want, nw) && bad++ < 5) {
            CHECK(0, "BPE differs from the naive reference");
            fprintf(stderr, "  word: ");
            print_escaped(w.p, w.n);
            fputc('\n', stderr);
            print_ids("naive", want, nw);
            print_ids("ours ", got, ng);
        }
        free(got);
        free(want);
        free(w.p);
    }
    CHECK(bad == 0, "%d words differ from the naive BPE", bad);
}

/* streaming == whole, for any split of a token sequence */
static void stream_check(const int32_t *ids, size_t n, bool expect_valid_chunks, int *bad) {
    size_t wl;
    char *whole = detok(ids, n, true, false, &wl);
    buf acc = {0};
    buf_put(&acc, "", 0);
    lfm2_detok_stream st;
    lfm2_detok_stream_init(&st);
    bool chunks_ok = true;
    for (size_t i = 0; i < n; i++) {
        char out[512];
        size_t k;
        lfm2_status s = lfm2_detok_stream_push(g_tok, &st, ids[i], true, out, sizeof out, &k);
        if (s != LFM2_OK) {
            CHECK(0, "stream push: %s", lfm2_last_error());
            break;
        }
        if (expect_valid_chunks) {
            size_t p = 0;
            while (p < k) {
                size_t l = utf8_valid_seq((const unsigned char *)out + p, k - p);
                if (!l) {
                    chunks_ok = false;
                    break;
                }
                p += l;
            }
        }
        buf_put(&acc, out, k);
    }
    char tail[4];
    size_t k;
    CHECK(lfm2_detok_stream_flush(&st, tail, sizeof tail, &k) == LFM2_OK, "flush");
    buf_put(&acc, tail, k);
    if ((!(acc.n == wl && memcmp(acc.p, whole, wl) == 0) || !chunks_ok) && (*bad)++ < 5) {
        CHECK(0, "stream differs from whole (chunks valid: %d)", chunks_ok);
        print_ids("ids", ids, n);
    }
    free(acc.p);
    free(whole);
}

static void test_streaming(void) {
    int bad = 0;
    uint32_t nv = lfm2_tokenizer_n_vocab(g_tok);
    for (int it = 0; it < 300; it++) { /* random ids: any bytes at all */
        int32_t ids[40];
        size_t n = 1 + rnd_below(40);
        for (size_t i = 0; i < n; i++) ids[i] = (int32_t)rnd_below(nv);
        stream_check(ids, n, false, &bad);
    }
    for (int it = 0; it < 200; it++) { /* tokens of valid text: every chunk is whole UTF-8 */
        buf b = {0};
        random_text(&b, 1 + rnd_below(40));
        size_t n;
        int32_t *ids = tok(b.p, b.n, true, true, &n);
        stream_check(ids, n, true, &bad);
        free(ids);
        free(b.p);
    }
    CHECK(bad == 0, "%d streaming mismatches", bad);

    /* a 4-byte character split over byte tokens: nothing until complete */
    const char *emoji = "\xf0\x9f\x98\x80";
    int32_t bytes[4];
    for (int i = 0; i < 4; i++) { /* the byte-level tokens of its four bytes */
        buf m = {0};
        byte_to_mapped((unsigned char)emoji[i], &m);
        bytes[i] = lfm2_tokenizer_find(g_tok, m.p, m.n);
        CHECK(bytes[i] >= 0, "byte token %d", i);
        free(m.p);
    }
    lfm2_detok_stream st = {{0}, 0};
    char out[16];
    size_t k, total = 0;
    for (int i = 0; i < 3; i++) {
        CHECK(lfm2_detok_stream_push(g_tok, &st, bytes[i], false, out, sizeof out, &k) == LFM2_OK && k == 0,
              "partial emoji byte %d emitted %zu", i, k);
    }
    CHECK(lfm2_detok_stream_push(g_tok, &st, bytes[3], false, out, sizeof out, &k) == LFM2_OK && k == 4 &&
              memcmp(out, emoji, 4) == 0,
          "emoji completed");
    (void)total;
    /* too small a buffer: state unchanged */
    CHECK(lfm2_detok_stream_push(g_tok, &st, bytes[0], false, out, 0, &k) == LFM2_OK && k == 0, "pending");
    lfm2_detok_stream saved = st;
    int32_t a_id = lfm2_tokenizer_find(g_tok, "a", 1);
    CHECK(lfm2_detok_stream_push(g_tok, &st, a_id, false, out, 1, &k) == LFM2_E_ARG && k == 2,
          "small buffer: need %zu", k);
    CHECK(memcmp(&saved, &st, sizeof st) == 0, "state unchanged after failure");
    CHECK(lfm2_detok_stream_push(g_tok, &st, a_id, false, out, 2, &k) == LFM2_OK && k == 2 &&
              out[0] == emoji[0] && out[1] == 'a',
          "invalid lead byte passed through");
    CHECK(lfm2_detok_stream_push(g_tok, &st, -1, false, out, sizeof out, &k) == LFM2_E_TOKEN, "bad id");
}

/* reference for invalid input: llama.cpp decodes leniently and re-encodes */
static void lenient_clean(const unsigned char *s, size_t n, buf *out) {
    size_t pos = 0;
    while (pos < n) buf_cp(out, utf8_decode_lenient(s, n, &pos));
}

static void test_invalid_utf8(void) {
    int bad = 0;
    for (int it = 0; it < 500; it++) {
        size_t n = rnd_below(64);
        unsigned char raw[64];
        for (size_t i = 0; i < n; i++) {
            uint32_t r = rnd_below(4);
            raw[i] = (unsigned char)(r == 0 ? 0x80 + rnd_below(0x80) : r == 1 ? 0xC0 + rnd_below(0x40)
                                     : r == 2 ? 'a' + rnd_below(26) : rnd_below(256));
        }
        size_t ni, dl;
        int32_t *ids = tok((const char *)raw, n, true, true, &ni);
        char *d = detok(ids, ni, false, false, &dl);
        buf want = {0};
        buf_put(&want, "", 0);
        lenient_clean(raw, n, &want);
        if (!(dl == want.n && memcmp(d, want.p, dl) == 0) && bad++ < 5) {
            CHECK(0, "invalid UTF-8 round trip");
            fprintf(stderr, "  in:   ");
            print_escaped((const char *)raw, n);
            fprintf(stderr, "\n  back: ");
            print_escaped(d, dl);
            fputc('\n', stderr);
        }
        free(want.p);
        free(ids);
        free(d);
    }
    CHECK(bad == 0, "%d invalid-UTF-8 mismatches", bad);
}

static void test_api_contract(void) {
    const char *text = "Hello world, again.";
    size_t n = 0;
    CHECK(lfm2_tokenize(g_tok, text, strlen(text), true, true, NULL, 0, &n) == LFM2_E_ARG && n > 1,
          "size query: %zu", n);
    int32_t ids[64];
    size_t n2 = 0;
    CHECK(lfm2_tokenize(g_tok, text, strlen(text), true, true, ids, n - 1, &n2) == LFM2_E_ARG && n2 == n,
          "too small");
    CHECK(lfm2_tokenize(g_tok, text, strlen(text), true, true, ids, n, &n2) == LFM2_OK && n2 == n, "exact");
    CHECK(ids[0] == lfm2_tokenizer_bos(g_tok) && ids[0] == 1, "BOS 1");
    CHECK(lfm2_tokenize(g_tok, "", 0, false, false, NULL, 0, &n2) == LFM2_OK && n2 == 0, "empty");
    CHECK(lfm2_tokenize(g_tok, NULL, 0, true, false, ids, 64, &n2) == LFM2_OK && n2 == 1, "NULL empty");
    CHECK(lfm2_tokenize(g_tok, NULL, 3, true, false, ids, 64, &n2) == LFM2_E_ARG, "NULL text");
    CHECK(lfm2_tokenize(NULL, "a", 1, true, false, ids, 64, &n2) == LFM2_E_ARG, "NULL tokenizer");

    char out[64];
    size_t dl;
    int32_t badids[2] = {5, (int32_t)lfm2_tokenizer_n_vocab(g_tok)};
    CHECK(lfm2_detokenize(g_tok, badids, 2, true, true, out, sizeof out, &dl) == LFM2_E_TOKEN,
          "id out of range");
    badids[1] = -1;
    CHECK(lfm2_detokenize(g_tok, badids, 2, true, true, out, sizeof out, &dl) == LFM2_E_TOKEN, "negative id");
    const char *piece;
    size_t pl;
    CHECK(lfm2_token_piece(g_tok, 7, true, &piece, &pl) == LFM2_OK && pl == 10 &&
              memcmp(piece, "<|im_end|>", 10) == 0,
          "render special");
    CHECK(lfm2_token_piece(g_tok, 7, false, &piece, &pl) == LFM2_OK && pl == 0, "hide special");
    CHECK(lfm2_token_piece(g_tok, 1024, false, &piece, &pl) == LFM2_E_TOKEN, "piece out of range");

    /* clean_spaces needs the cleaned size, not the raw one */
    size_t nn;
    int32_t *ids2 = tok("a ? b !", 7, false, false, &nn);
    size_t need = 0;
    CHECK(lfm2_detokenize(g_tok, ids2, nn, false, true, NULL, 0, &need) == LFM2_E_ARG && need == 5,
          "cleaned size %zu", need);
    CHECK(lfm2_detokenize(g_tok, ids2, nn, false, true, out, 5, &dl) == LFM2_OK && dl == 5 &&
              memcmp(out, "a? b!", 5) == 0,
          "cleaned into exact buffer");
    free(ids2);
    /* llama.cpp's other cleaning rules */
    struct {
        const char *in, *out;
    } clean[] = {{"it 's", "it's"}, {"I 'm", "I'm"}, {"we 're", "we're"}, {"they 've", "they've"},
                 {"don 't", "don 't"}, {"he 'd", "he 'd"}, {"you 'll", "you 'll"},
                 {"a ' b", "a'b"}, {"x , y .", "x, y."}, {" ' ' ", "'' "}};
    for (size_t c = 0; c < sizeof clean / sizeof clean[0]; c++) {
        size_t m;
        int32_t *t2 = tok(clean[c].in, strlen(clean[c].in), false, false, &m);
        char *d = detok(t2, m, false, true, &dl);
        CHECK(dl == strlen(clean[c].out) && memcmp(d, clean[c].out, dl) == 0, "clean '%s' -> '%s' (got '%s')",
              clean[c].in, clean[c].out, d);
        free(d);
        free(t2);
    }

    CHECK(lfm2_tokenizer_is_eog(g_tok, 7) && lfm2_tokenizer_is_eog(g_tok, 2), "EOG im_end, endoftext");
    CHECK(!lfm2_tokenizer_is_eog(g_tok, 1) && !lfm2_tokenizer_is_eog(g_tok, 100) &&
              !lfm2_tokenizer_is_eog(g_tok, -3),
          "not EOG");
    CHECK(lfm2_tokenizer_eos(g_tok) == 7, "EOS 7");
    CHECK(lfm2_tokenizer_is_control(g_tok, 6) && !lfm2_tokenizer_is_control(g_tok, 549), "control");
    CHECK(lfm2_tokenizer_find(g_tok, "<|im_start|>", 12) == 6, "find");
    CHECK(lfm2_tokenizer_find(g_tok, "nope-not-a-token", 16) == -1, "find missing");

    /* parse_special off: control text is plain text; user-defined would still be matched */
    size_t m1, m2;
    int32_t *a = tok("<|im_start|>", 12, false, true, &m1);
    int32_t *b = tok("<|im_start|>", 12, false, false, &m2);
    CHECK(m1 == 1 && a[0] == 6 && m2 > 1, "special parsing on/off");
    free(a);
    free(b);
    /* BOS added even when the text starts with it */
    a = tok("<|startoftext|>x", 16, true, true, &m1);
    CHECK(m1 == 3 && a[0] == 1 && a[1] == 1, "double BOS");
    free(a);
}

/* the prompt of the logits fixtures (tests/fixtures/FORMAT.md, index.json "prompts.chat") and
 * llama.cpp's greedy continuation of it on tiny-f32 */
static void test_chat_prompt(void) {
    static const int32_t want[24] = {1, 6, 338, 270, 24, 101, 516, 272, 856, 990, 278, 348,
                                     58, 785, 60, 7, 24, 6, 309, 129, 357, 297, 130, 24};
    static const int32_t gen[16] = {416, 84, 304, 734, 482, 399, 819, 820,
                                    557, 150, 156, 970, 970, 770, 434, 409};
    const char *prompt =
        "<|im_start|>user\nWrite a haiku about the sea, please.<|im_end|>\n<|im_start|>assistant\n";
    size_t n;
    int32_t *ids = tok(prompt, strlen(prompt), true, true, &n);
    CHECK(ids_equal(ids, n, want, 24), "chat prompt tokens");
    free(ids);
    int32_t full[40];
    memcpy(full, want, sizeof want);
    memcpy(full + 24, gen, sizeof gen);
    int bad = 0;
    stream_check(full, 40, false, &bad);
    CHECK(bad == 0, "chat stream");
}

/* another fixture model (dense lfm2 arch) carries the same vocabulary */
static void test_other_model(void) {
    size_t size;
    char *file = read_file("tests/fixtures/models/dense-f32.gguf", &size);
    CHECK(file != NULL, "cannot read dense-f32.gguf");
    if (!file) return;
    mem_file mf = {(const unsigned char *)file, size};
    gguf_file *gf = NULL;
    lfm2_tokenizer *t = NULL;
    CHECK(gguf_open(mem_read, &mf, size, &gf) == LFM2_OK && lfm2_tokenizer_from_gguf(gf, &t) == LFM2_OK,
          "dense-f32 tokenizer: %s", lfm2_last_error());
    if (t) {
        int32_t ids[8];
        size_t n;
        CHECK(lfm2_tokenize(t, "Hello world", 11, true, true, ids, 8, &n) == LFM2_OK && n == 3 &&
                  ids[0] == 1 && ids[1] == 549 && ids[2] == 657,
              "dense-f32: Hello world");
    }
    lfm2_tokenizer_free(t);
    gguf_close(gf);
    free(file);
}

static void test_create_errors(const vocab *v) {
    lfm2_tokenizer *t = NULL;
    gguf_str dup[3] = {{"a", 1}, {"b", 1}, {"a", 1}};
    CHECK(lfm2_tokenizer_create(dup, NULL, 3, NULL, 0, -1, -1, false, &t) == LFM2_E_ARG && !t, "duplicate");
    CHECK(lfm2_tokenizer_create(dup, NULL, 2, NULL, 0, -1, -1, true, &t) == LFM2_E_ARG && !t,
          "add_bos without BOS");
    CHECK(lfm2_tokenizer_create(dup, NULL, 0, NULL, 0, -1, -1, false, &t) == LFM2_E_ARG, "empty vocab");
    /* a vocabulary without merges or types still works (bytes only) */
    CHECK(lfm2_tokenizer_create(v->tokens, NULL, (uint32_t)v->n_tokens, NULL, 0, 1, 7, true, &t) == LFM2_OK,
          "no merges: %s", lfm2_last_error());
    if (t) {
        size_t n;
        int32_t ids[32];
        CHECK(lfm2_tokenize(t, "ab", 2, false, false, ids, 32, &n) == LFM2_OK && n >= 1, "bytes only");
        lfm2_tokenizer_free(t);
    }
    /* weird merges must not break creation */
    gguf_str merges[5] = {{"", 0}, {" ", 1}, {"a", 1}, {"a  b", 4}, {"\xff \xfe", 3}};
    t = NULL;
    CHECK(lfm2_tokenizer_create(v->tokens, NULL, (uint32_t)v->n_tokens, merges, 5, 1, 7, true, &t) == LFM2_OK,
          "odd merges");
    lfm2_tokenizer_free(t);
    lfm2_tokenizer_free(NULL);
}

static void test_long_inputs(void) {
    /* pathological words: long runs of one class */
    static const char unit[][4] = {"x", " ", "7", "!", "\n", "\xe6\x97\xa5", "ab", "\r\n"};
    for (size_t u = 0; u < sizeof unit / sizeof unit[0]; u++) {
        buf b = {0};
        for (int i = 0; i < 100000; i++) buf_put(&b, unit[u], strlen(unit[u]));
        clock_t c0 = clock();
        size_t n, dl;
        int32_t *ids = tok(b.p, b.n, false, false, &n);
        double sec = (double)(clock() - c0) / CLOCKS_PER_SEC;
        char *d = detok(ids, n, true, false, &dl);
        CHECK(dl == b.n && memcmp(d, b.p, dl) == 0, "long run %zu round trip", u);
        CHECK(sec < 5.0, "long run %zu took %.2f s", u, sec);
        free(d);
        free(ids);
        free(b.p);
    }
}

int main(void) {
    size_t size;
    char *file = read_file(MODEL_PATH, &size);
    CHECK(file != NULL, "cannot read %s (run from the repository root)", MODEL_PATH);
    if (!file) return check_report("tokenizer");
    mem_file mf = {(const unsigned char *)file, size};
    gguf_file *gf = NULL;
    lfm2_status s = gguf_open(mem_read, &mf, size, &gf);
    CHECK(s == LFM2_OK, "gguf_open: %s", lfm2_last_error());
    lfm2_tokenizer *t = NULL;
    if (gf) {
        s = lfm2_tokenizer_from_gguf(gf, &t);
        CHECK(s == LFM2_OK, "tokenizer_from_gguf: %s", lfm2_last_error());
    }
    g_tok = t;
    test_unicode_flags();
    test_utf8_decode();
    if (t) {
        vocab v = {0};
        gguf_get_arr_str(gf, "tokenizer.ggml.tokens", &v.tokens, &v.n_tokens);
        gguf_get_arr_str(gf, "tokenizer.ggml.merges", &v.merges, &v.n_merges);
        CHECK(lfm2_tokenizer_n_vocab(t) == 1024 && v.n_tokens == 1024, "n_vocab");
        test_fixture_cases();
        test_api_contract();
        test_round_trip();
        test_naive_bpe(&v);
        test_streaming();
        test_chat_prompt();
        test_other_model();
        test_invalid_utf8();
        test_long_inputs();
        test_create_errors(&v);
    }
    lfm2_tokenizer_free(t);
    gguf_close(gf);
    free(file);
    return check_report("tokenizer");
}
