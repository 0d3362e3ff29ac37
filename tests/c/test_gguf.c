/* test_gguf.c: the GGUF reader on the fixture models and on a malformed-file suite.
 *
 * Every file is served by an in-memory read callback that fails the test if it is ever asked for
 * bytes outside [0, size). Corrupt files are made by patching bytes of a real fixture (offsets
 * found by a tiny walker below) or by a small GGUF writer.
 *
 * Documented outcomes (see src/gguf.c):
 *  - every proper prefix shorter than the data section start is LFM2_E_TRUNCATED, including the
 *    sizes 0..3 (they are prefixes of "GGUF"; 1-3 bytes that are not are LFM2_E_MAGIC);
 *  - a prefix that cuts the tensor data is LFM2_E_TENSOR_BOUNDS;
 *  - counts/lengths implying a header past 1 GiB are LFM2_E_TOO_LARGE, smaller ones that run past
 *    the end of the file are LFM2_E_TRUNCATED. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "wbuf.h"
#include "gguf.h"
#include "quant.h"
#include "status.h"

#define FIXDIR "tests/fixtures/models"

/* ---------------------------------------------------------------------------------------- */
/* In-memory read callback */

typedef struct {
    const uint8_t *data;
    uint64_t size;
    int calls;
    int fail_after; /* >= 0: calls after this many fail */
} memfile;

static int bad_reads;

static int mem_read(void *ctx, uint64_t off, size_t len, void *dst) {
    memfile *m = ctx;
    if (off >= m->size || len > m->size - off || len == 0) {
        bad_reads++;
        fprintf(stderr, "read callback out of range: offset %llu len %zu size %llu\n", (unsigned long long)off, len,
                (unsigned long long)m->size);
        return 1;
    }
    if (m->fail_after >= 0 && m->calls >= m->fail_after) return 1;
    m->calls++;
    memcpy(dst, m->data + off, len);
    return 0;
}

static lfm2_status open_mem(const uint8_t *d, uint64_t size, gguf_file **f) {
    memfile m = {d, size, 0, -1};
    return gguf_open(mem_read, &m, size, f);
}

/* Open and expect status `want` (LFM2_OK: closes the file). Returns true when it matched. */
static bool expect_status(const uint8_t *d, uint64_t size, lfm2_status want, const char *what) {
    gguf_file *f = (gguf_file *)(uintptr_t)1;
    lfm2_clear_error();
    lfm2_status s = open_mem(d, size, &f);
    bool ok = s == want;
    CHECK(s == want, "%s: got %s (%s), want %s", what, lfm2_status_name(s), lfm2_last_error(),
          lfm2_status_name(want));
    if (want != LFM2_OK) {
        CHECK(f == NULL, "%s: *out not NULL on failure", what);
        CHECK(lfm2_last_error()[0] != '\0', "%s: empty error message", what);
    }
    if (getenv("GGUF_TEST_VERBOSE")) printf("  %-34s %-22s %s\n", what, lfm2_status_name(s), lfm2_last_error());
    if (s == LFM2_OK) gguf_close(f);
    return ok;
}

static uint8_t *load(const char *path, uint64_t *size) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *d = malloc(n > 0 ? (size_t)n : 1);
    if (d && fread(d, 1, (size_t)n, fp) != (size_t)n) {
        free(d);
        d = NULL;
    }
    fclose(fp);
    *size = (uint64_t)n;
    return d;
}

/* ---------------------------------------------------------------------------------------- */
/* A tiny walker over a valid file: byte offsets of every field, for patching. */

static uint64_t rd64(const uint8_t *p) {
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) x = x << 8 | p[i];
    return x;
}
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

typedef struct {
    char name[96];
    uint64_t name_off; /* offset of the u64 length */
    uint64_t type_off; /* kv: value type; tensor: ggml type */
    uint64_t val_off;  /* kv: value (arrays: element type); tensor: n_dims */
    uint64_t ne_off;   /* tensor: ne[0] */
    uint64_t off_off;  /* tensor: data offset */
} field;

typedef struct {
    uint64_t n_kv, n_t, header_end;
    field kv[64];
    field t[512];
} layout;

static const uint8_t vsz[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

static uint64_t walk_str(const uint8_t *d, uint64_t p, char *name, size_t cap) {
    uint64_t n = rd64(d + p);
    if (name) {
        size_t k = n < cap - 1 ? (size_t)n : cap - 1;
        memcpy(name, d + p + 8, k);
        name[k] = 0;
    }
    return p + 8 + n;
}

static void walk(const uint8_t *d, layout *L) {
    uint64_t p = 8;
    L->n_t = rd64(d + p);
    L->n_kv = rd64(d + p + 8);
    p += 16;
    for (uint64_t i = 0; i < L->n_kv; i++) {
        field *k = &L->kv[i];
        k->name_off = p;
        p = walk_str(d, p, k->name, sizeof k->name);
        k->type_off = p;
        uint32_t t = rd32(d + p);
        p += 4;
        k->val_off = p;
        if (t == 8) p = walk_str(d, p, NULL, 0);
        else if (t == 9) {
            uint32_t et = rd32(d + p);
            uint64_t n = rd64(d + p + 4);
            p += 12;
            for (uint64_t j = 0; j < n; j++) p = et == 8 ? walk_str(d, p, NULL, 0) : p + vsz[et];
        } else p += vsz[t];
    }
    for (uint64_t i = 0; i < L->n_t; i++) {
        field *t = &L->t[i];
        t->name_off = p;
        p = walk_str(d, p, t->name, sizeof t->name);
        t->val_off = p;
        uint32_t nd = rd32(d + p);
        t->ne_off = p + 4;
        p += 4 + 8 * (uint64_t)nd;
        t->type_off = p;
        t->off_off = p + 4;
        p += 12;
    }
    L->header_end = p;
}

static const field *kv_field(const layout *L, const char *key) {
    for (uint64_t i = 0; i < L->n_kv; i++)
        if (!strcmp(L->kv[i].name, key)) return &L->kv[i];
    fprintf(stderr, "walker: no key %s\n", key);
    abort();
}
static const field *t_field(const layout *L, const char *name) {
    for (uint64_t i = 0; i < L->n_t; i++)
        if (!strcmp(L->t[i].name, name)) return &L->t[i];
    fprintf(stderr, "walker: no tensor %s\n", name);
    abort();
}

/* ---------------------------------------------------------------------------------------- */
/* A small GGUF writer */

static void wb_head(wbuf *b, uint32_t version, uint64_t n_t, uint64_t n_kv) {
    wb_put(b, "GGUF", 4);
    wb_u32(b, version);
    wb_u64(b, n_t);
    wb_u64(b, n_kv);
}
static void wb_kv_u32(wbuf *b, const char *k, uint32_t v) {
    wb_str(b, k);
    wb_u32(b, GGUF_U32);
    wb_u32(b, v);
}
static void wb_ti(wbuf *b, const char *name, uint32_t nd, const int64_t *ne, uint32_t type, uint64_t off) {
    wb_str(b, name);
    wb_u32(b, nd);
    for (uint32_t i = 0; i < nd; i++) wb_u64(b, (uint64_t)ne[i]);
    wb_u32(b, type);
    wb_u64(b, off);
}
/* ---------------------------------------------------------------------------------------- */

static bool endswith(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static void test_fixture_file(const char *path) {
    uint64_t size;
    uint8_t *d = load(path, &size);
    CHECK(d != NULL, "cannot read %s", path);
    if (!d) return;
    memfile mf = {d, size, 0, -1};
    gguf_file *f = NULL;
    lfm2_status s = gguf_open(mem_read, &mf, size, &f);
    CHECK(s == LFM2_OK, "%s: %s %s", path, lfm2_status_name(s), lfm2_last_error());
    if (s) {
        free(d);
        return;
    }
    layout *L = calloc(1, sizeof *L);
    walk(d, L);
    /* a ~35 KB header: one 64 KiB callback, never the whole file */
    CHECK(mf.calls <= (int)(L->header_end / 65536) + 1, "%s: %d read calls", path, mf.calls);
    CHECK(f->version == 3, "%s: version %u", path, f->version);
    CHECK(f->file_size == size, "%s", path);
    CHECK(f->alignment == 32, "%s: alignment %llu", path, (unsigned long long)f->alignment);
    CHECK(f->data_offset == (L->header_end + 31) / 32 * 32, "%s: data_offset %llu", path,
          (unsigned long long)f->data_offset);
    CHECK(f->n_kv == L->n_kv && f->n_tensors == L->n_t, "%s: counts", path);
    const gguf_str *arch = NULL;
    CHECK(gguf_get_str(f, "general.architecture", &arch) == LFM2_OK, "%s: %s", path, lfm2_last_error());
    CHECK(arch && (!strcmp(arch->ptr, "lfm2") || !strcmp(arch->ptr, "lfm2moe")), "%s: arch", path);
    uint64_t end = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        CHECK(gguf_find_tensor(f, t->name) == t, "%s: find %s", path, t->name);
        CHECK(!strcmp(t->name, L->t[i].name), "%s: tensor %llu name", path, (unsigned long long)i);
        CHECK(t->offset == f->data_offset + rd64(d + L->t[i].off_off), "%s: %s offset", path, t->name);
        int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
        CHECK(t->nbytes == kq_row_bytes(t->type, t->ne[0]) * (uint64_t)rows, "%s: %s nbytes", path, t->name);
        if (t->offset + t->nbytes > end) end = t->offset + t->nbytes;
    }
    CHECK(end == size, "%s: data ends at %llu, file %llu", path, (unsigned long long)end, (unsigned long long)size);
    for (uint64_t i = 0; i < f->n_kv; i++) CHECK(gguf_find_kv(f, f->kv[i].key) == &f->kv[i], "%s: find key", path);
    CHECK(gguf_find_kv(f, "no.such.key") == NULL && gguf_find_tensor(f, "no.such.tensor") == NULL, "%s", path);

    if (endswith(path, "/tiny-f32.gguf")) {
        CHECK(f->n_tensors == 64 && f->n_kv == 32, "tiny-f32: %llu tensors %llu kv", (unsigned long long)f->n_tensors,
              (unsigned long long)f->n_kv);
        CHECK(!strcmp(arch->ptr, "lfm2moe") && arch->len == 7, "tiny-f32 arch %s", arch->ptr);
        const gguf_tensor *t = gguf_find_tensor(f, "token_embd.weight");
        CHECK(t && t->n_dims == 2 && t->ne[0] == 64 && t->ne[1] == 1024 && t->ne[2] == 1 && t->ne[3] == 1 &&
                  t->type == 0 && t->offset == f->data_offset && t->nbytes == 64 * 1024 * 4,
              "tiny-f32 token_embd.weight");
        t = gguf_find_tensor(f, "token_embd_norm.weight");
        CHECK(t && t->n_dims == 1 && t->ne[0] == 64 && t->offset + t->nbytes == size, "tiny-f32 output norm");
        uint32_t u;
        CHECK(gguf_get_u32(f, "lfm2moe.block_count", &u) == LFM2_OK && u == 6, "block_count");
        CHECK(gguf_get_u32(f, "lfm2moe.expert_count", &u) == LFM2_OK && u == 8, "expert_count");
        CHECK(gguf_get_u32(f, "tokenizer.ggml.eos_token_id", &u) == LFM2_OK && u == 7, "eos");
        float x;
        CHECK(gguf_get_f32(f, "lfm2moe.rope.freq_base", &x) == LFM2_OK && x == 1e6f, "freq_base");
        CHECK(gguf_get_f32(f, "lfm2moe.attention.layer_norm_rms_epsilon", &x) == LFM2_OK && x == 1e-5f, "eps");
        bool b = false;
        CHECK(gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b) == LFM2_OK && b, "add_bos");
        CHECK(gguf_get_bool(f, "tokenizer.ggml.add_eos_token", &b) == LFM2_OK && !b, "add_eos");
        int32_t *hkv = NULL;
        uint64_t n = 0;
        CHECK(gguf_get_arr_i32(f, "lfm2moe.attention.head_count_kv", &hkv, &n) == LFM2_OK && n == 6, "head_count_kv");
        if (hkv && n == 6) {
            int32_t want[6] = {0, 2, 0, 0, 0, 0};
            want[4] = hkv[4];
            want[5] = hkv[5];
            CHECK(!memcmp(hkv, want, sizeof want), "head_count_kv values");
            for (int i = 0; i < 6; i++) CHECK(hkv[i] == 0 || hkv[i] == 2, "head_count_kv[%d] = %d", i, hkv[i]);
        }
        free(hkv);
        const gguf_str *toks = NULL, *merges = NULL, *tmpl = NULL;
        CHECK(gguf_get_arr_str(f, "tokenizer.ggml.tokens", &toks, &n) == LFM2_OK && n == 1024, "tokens");
        if (toks) {
            CHECK(!strcmp(toks[0].ptr, "<|pad|>") && toks[0].len == 7, "token 0 %s", toks[0].ptr);
            CHECK(!strcmp(toks[1].ptr, "<|startoftext|>") && toks[1].len == 15, "token 1");
            CHECK(strlen(toks[1023].ptr) == toks[1023].len, "token 1023");
        }
        CHECK(gguf_get_arr_str(f, "tokenizer.ggml.merges", &merges, &n) == LFM2_OK && n == 754, "merges");
        if (merges) CHECK(!strcmp(merges[0].ptr, "e r"), "merge 0 '%s'", merges[0].ptr);
        CHECK(gguf_get_str(f, "tokenizer.chat_template", &tmpl) == LFM2_OK && tmpl->len > 100 &&
                  strlen(tmpl->ptr) == tmpl->len,
              "chat_template");

        /* getter errors */
        lfm2_clear_error();
        CHECK(gguf_get_u32(f, "lfm2moe.no_such_key", &u) == LFM2_E_KEY_MISSING && strstr(lfm2_last_error(), "no_such_key"),
              "missing: %s", lfm2_last_error());
        CHECK(gguf_get_str(f, "lfm2moe.block_count", &tmpl) == LFM2_E_KEY_TYPE &&
                  strstr(lfm2_last_error(), "lfm2moe.block_count"),
              "u32 as str: %s", lfm2_last_error());
        CHECK(gguf_get_f32(f, "lfm2moe.block_count", &x) == LFM2_E_KEY_TYPE, "u32 as f32");
        CHECK(gguf_get_bool(f, "lfm2moe.block_count", &b) == LFM2_E_KEY_TYPE, "u32 as bool");
        CHECK(gguf_get_u32(f, "lfm2moe.rope.freq_base", &u) == LFM2_E_KEY_TYPE, "f32 as u32");
        CHECK(gguf_get_u32(f, "tokenizer.ggml.add_bos_token", &u) == LFM2_E_KEY_TYPE, "bool as u32");
        CHECK(gguf_get_u32(f, "lfm2moe.attention.head_count_kv", &u) == LFM2_E_KEY_TYPE &&
                  strstr(lfm2_last_error(), "ARRAY[INT32]"),
              "head_count_kv as u32: %s", lfm2_last_error());
        CHECK(gguf_get_arr_str(f, "lfm2moe.attention.head_count_kv", &toks, &n) == LFM2_E_KEY_TYPE,
              "head_count_kv as string array");
        hkv = (int32_t *)(uintptr_t)1;
        CHECK(gguf_get_arr_i32(f, "tokenizer.ggml.tokens", &hkv, &n) == LFM2_E_KEY_TYPE && hkv == NULL,
              "tokens as i32 array");
        CHECK(gguf_get_arr_i32(f, "lfm2moe.block_count", &hkv, &n) == LFM2_E_KEY_TYPE, "scalar as array");
        CHECK(gguf_get_arr_i32(f, "nope", &hkv, &n) == LFM2_E_KEY_MISSING, "missing array");
        CHECK(gguf_get_str(f, "tokenizer.ggml.tokens", &tmpl) == LFM2_E_KEY_TYPE, "array as str");
        CHECK(gguf_get_u32(f, NULL, &u) == LFM2_E_ARG && gguf_get_u32(f, "x", NULL) == LFM2_E_ARG, "NULL args");
        CHECK(gguf_get_u32(NULL, "x", &u) == LFM2_E_ARG, "NULL file");
    }
    free(L);
    gguf_close(f);
    free(d);
}

static void test_fixtures(void) {
    DIR *dir = opendir(FIXDIR);
    CHECK(dir != NULL, "cannot open %s (run from the repo root)", FIXDIR);
    if (!dir) return;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (!endswith(e->d_name, ".gguf")) continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", FIXDIR, e->d_name);
        test_fixture_file(path);
        n++;
    }
    closedir(dir);
    CHECK(n >= 19, "only %d fixture models", n);
}

/* ---------------------------------------------------------------------------------------- */

static void test_truncation(const uint8_t *d, uint64_t size, const layout *L) {
    uint64_t data_off = (L->header_end + 31) / 32 * 32;
    int wrong = 0;
    for (uint64_t c = 0; c < data_off; c++) {
        gguf_file *f = NULL;
        lfm2_status s = open_mem(d, c, &f);
        if (s != LFM2_E_TRUNCATED || f || !lfm2_last_error()[0]) {
            if (wrong++ < 10)
                fprintf(stderr, "truncated at %llu: %s %s\n", (unsigned long long)c, lfm2_status_name(s),
                        lfm2_last_error());
            gguf_close(f);
        }
    }
    CHECK(wrong == 0, "%d of %llu header truncation points gave the wrong status", wrong,
          (unsigned long long)data_off);
    /* Inside the tensor data: every cut of the first 4 KiB, then a stride. */
    wrong = 0;
    int tried = 0;
    for (uint64_t c = data_off; c < size; c += (c < data_off + 4096 ? 1 : 997)) {
        gguf_file *f = NULL;
        tried++;
        lfm2_status s = open_mem(d, c, &f);
        if (s != LFM2_E_TENSOR_BOUNDS || f || !lfm2_last_error()[0]) {
            if (wrong++ < 10)
                fprintf(stderr, "truncated at %llu: %s %s\n", (unsigned long long)c, lfm2_status_name(s),
                        lfm2_last_error());
            gguf_close(f);
        }
    }
    expect_status(d, size - 1, LFM2_E_TENSOR_BOUNDS, "one byte short");
    CHECK(wrong == 0, "%d of %d data truncation points gave the wrong status", wrong, tried);
    expect_status(d, size, LFM2_OK, "whole file");
    /* short non-GGUF files */
    expect_status((const uint8_t *)"GG", 2, LFM2_E_TRUNCATED, "2 bytes 'GG'");
    expect_status((const uint8_t *)"GX", 2, LFM2_E_MAGIC, "2 bytes 'GX'");
    expect_status((const uint8_t *)"\x7f" "EL", 3, LFM2_E_MAGIC, "3 bytes ELF");
}

/* Patch helpers over a private copy of the fixture. */
static uint8_t *dup_buf(const uint8_t *d, uint64_t size) {
    uint8_t *c = malloc((size_t)size);
    memcpy(c, d, (size_t)size);
    return c;
}

#define PATCHED(desc, want, stmt)                               \
    do {                                                        \
        uint8_t *p_ = dup_buf(d, size);                         \
        { uint8_t *p = p_; stmt; }                             \
        expect_status(p_, size, want, desc);                   \
        free(p_);                                               \
    } while (0)

static void test_corruptions(const uint8_t *d, uint64_t size, const layout *L) {
    const field *name = kv_field(L, "general.name");
    const field *type = kv_field(L, "general.type");
    const field *ftype = kv_field(L, "general.file_type");
    const field *hkv = kv_field(L, "lfm2.attention.head_count_kv");
    const field *toks = kv_field(L, "tokenizer.ggml.tokens");
    const field *ttype = kv_field(L, "tokenizer.ggml.token_type");
    const field *emb = t_field(L, "token_embd.weight");         /* Q4_0 {64, 1024} */
    const field *norm0 = t_field(L, "blk.0.attn_norm.weight"); /* F32 {64} */
    const field *last = &L->t[L->n_t - 1];

    PATCHED("bad magic", LFM2_E_MAGIC, p[0] = 'g');
    PATCHED("magic GGML", LFM2_E_MAGIC, p[3] = 'L');
    PATCHED("version 1", LFM2_E_VERSION, wr32(p + 4, 1));
    PATCHED("version 4", LFM2_E_VERSION, wr32(p + 4, 4));
    PATCHED("version big-endian 3", LFM2_E_VERSION, wr32(p + 4, 0x03000000));
    PATCHED("version 2", LFM2_OK, wr32(p + 4, 2));
    PATCHED("n_tensors huge", LFM2_E_TOO_LARGE, wr64(p + 8, UINT64_MAX / 2));
    PATCHED("n_tensors 2^40", LFM2_E_TOO_LARGE, wr64(p + 8, (uint64_t)1 << 40));
    /* one tensor fewer: the data section starts earlier, the rest still fits (trailing bytes are fine) */
    PATCHED("n_tensors -1", LFM2_OK, wr64(p + 8, L->n_t - 1));
    PATCHED("n_kv huge", LFM2_E_TOO_LARGE, wr64(p + 16, UINT64_MAX));
    PATCHED("n_kv 2^40", LFM2_E_TOO_LARGE, wr64(p + 16, (uint64_t)1 << 40));
    PATCHED("key length huge", LFM2_E_TOO_LARGE, wr64(p + name->name_off, (uint64_t)1 << 40));
    PATCHED("key length 2^64-1", LFM2_E_TOO_LARGE, wr64(p + name->name_off, UINT64_MAX));
    PATCHED("string length huge", LFM2_E_TOO_LARGE, wr64(p + name->val_off, (uint64_t)1 << 40));
    PATCHED("string length past EOF", LFM2_E_TRUNCATED, wr64(p + name->val_off, size));
    PATCHED("array count huge", LFM2_E_TOO_LARGE, wr64(p + toks->val_off + 4, (uint64_t)1 << 61));
    PATCHED("array count 2^64-1", LFM2_E_TOO_LARGE, wr64(p + ttype->val_off + 4, UINT64_MAX));
    PATCHED("i32 array count 2^40", LFM2_E_TOO_LARGE, wr64(p + ttype->val_off + 4, (uint64_t)1 << 40));
    PATCHED("string element length huge", LFM2_E_TOO_LARGE, wr64(p + toks->val_off + 12, (uint64_t)1 << 50));
    PATCHED("kv type 13", LFM2_E_KV_TYPE, wr32(p + name->type_off, 13));
    PATCHED("kv type 99", LFM2_E_KV_TYPE, wr32(p + name->type_off, 99));
    PATCHED("array elem type 13", LFM2_E_KV_TYPE, wr32(p + hkv->val_off, 13));
    PATCHED("nested array", LFM2_E_KV_TYPE, wr32(p + hkv->val_off, GGUF_ARRAY));
    /* general.type -> general.name (same length) */
    PATCHED("duplicate key", LFM2_E_DUPLICATE, memcpy(p + type->name_off + 8, "general.name", 12));
    /* blk.1.attn_norm.weight -> blk.0.attn_norm.weight */
    {
        const field *n1 = t_field(L, "blk.1.attn_norm.weight");
        PATCHED("duplicate tensor name", LFM2_E_DUPLICATE, p[n1->name_off + 8 + 4] = '0');
    }
    PATCHED("tensor type 99", LFM2_E_TENSOR_TYPE, wr32(p + norm0->type_off, 99));
    PATCHED("tensor type Q2_K (10)", LFM2_E_TENSOR_TYPE, wr32(p + norm0->type_off, 10));
    PATCHED("tensor type Q8_K (15)", LFM2_E_TENSOR_TYPE, wr32(p + norm0->type_off, 15));
    PATCHED("tensor type Q8_1 (9)", LFM2_E_TENSOR_TYPE, wr32(p + norm0->type_off, 9));
    PATCHED("tensor type 2^32-1", LFM2_E_TENSOR_TYPE, wr32(p + norm0->type_off, UINT32_MAX));
    PATCHED("n_dims 0", LFM2_E_DIMS, wr32(p + norm0->val_off, 0));
    PATCHED("n_dims 5", LFM2_E_DIMS, wr32(p + norm0->val_off, 5));
    PATCHED("n_dims 2^32-1", LFM2_E_DIMS, wr32(p + norm0->val_off, UINT32_MAX));
    PATCHED("zero dimension", LFM2_E_DIMS, wr64(p + emb->ne_off + 8, 0));
    PATCHED("negative dimension", LFM2_E_DIMS, wr64(p + emb->ne_off + 8, (uint64_t)-64));
    PATCHED("element count overflow", LFM2_E_OVERFLOW,
            (wr64(p + emb->ne_off, (uint64_t)1 << 32), wr64(p + emb->ne_off + 8, (uint64_t)1 << 31)));
    /* F32 {2^62}: 2^62 elements fit int64, 2^64 bytes do not */
    PATCHED("byte size overflow", LFM2_E_OVERFLOW, wr64(p + norm0->ne_off, (uint64_t)1 << 62));
    PATCHED("Q4_0 row of 33", LFM2_E_BLOCKS, wr64(p + emb->ne_off, 33));
    PATCHED("Q4_0 row of 16", LFM2_E_BLOCKS, wr64(p + emb->ne_off, 16));
    PATCHED("F32 turned Q4_0 (64 ok, moves bytes)", LFM2_OK, wr32(p + norm0->type_off, KQ_Q4_0));
    PATCHED("tensor offset beyond file", LFM2_E_TENSOR_BOUNDS, wr64(p + last->off_off, (uint64_t)1 << 40));
    PATCHED("tensor offset 2^64-32", LFM2_E_TENSOR_BOUNDS, wr64(p + last->off_off, UINT64_MAX - 31));
    PATCHED("tensor ends 32 past EOF", LFM2_E_TENSOR_BOUNDS, wr64(p + last->off_off, rd64(p + last->off_off) + 32));
    PATCHED("tensor offset misaligned", LFM2_E_TENSOR_BOUNDS, wr64(p + last->off_off, rd64(p + last->off_off) + 1));
    PATCHED("tensor offset 16", LFM2_E_TENSOR_BOUNDS, wr64(p + norm0->off_off, 16));
    PATCHED("tensors overlap", LFM2_E_TENSOR_BOUNDS, wr64(p + norm0->off_off, 0));
    PATCHED("tensor grows into next", LFM2_E_TENSOR_BOUNDS, wr64(p + norm0->ne_off, 128));
    /* general.file_type -> general.alignment (both 17 bytes) */
    {
        const char *al = "general.alignment";
        PATCHED("alignment 0", LFM2_E_ALIGNMENT, (memcpy(p + ftype->name_off + 8, al, 17), wr32(p + ftype->val_off, 0)));
        PATCHED("alignment 3", LFM2_E_ALIGNMENT, (memcpy(p + ftype->name_off + 8, al, 17), wr32(p + ftype->val_off, 3)));
        PATCHED("alignment 96", LFM2_E_ALIGNMENT, (memcpy(p + ftype->name_off + 8, al, 17), wr32(p + ftype->val_off, 96)));
        PATCHED("alignment INT32", LFM2_E_ALIGNMENT,
                (memcpy(p + ftype->name_off + 8, al, 17), wr32(p + ftype->val_off, 32), wr32(p + ftype->type_off, GGUF_I32)));
        PATCHED("alignment FLOAT32", LFM2_E_ALIGNMENT,
                (memcpy(p + ftype->name_off + 8, al, 17), wr32(p + ftype->type_off, GGUF_F32)));
        PATCHED("alignment 32 explicit", LFM2_OK, (memcpy(p + ftype->name_off + 8, al, 17), wr32(p + ftype->val_off, 32)));
        PATCHED("alignment 16", LFM2_OK, (memcpy(p + ftype->name_off + 8, al, 17), wr32(p + ftype->val_off, 16)));
        /* 2^31: blk.0.attn_norm's offset is not a multiple */
        PATCHED("alignment 2^31", LFM2_E_TENSOR_BOUNDS,
                (memcpy(p + ftype->name_off + 8, al, 17), wr32(p + ftype->val_off, 1u << 31)));
        /* 1024: the data section moves to 35840 and the last tensor runs past the end */
        PATCHED("alignment 1024", LFM2_E_TENSOR_BOUNDS,
                (memcpy(p + ftype->name_off + 8, al, 17), wr32(p + ftype->val_off, 1024)));
    }
}

/* A read callback that fails. */
static void test_io(const uint8_t *d, uint64_t size) {
    memfile m = {d, size, 0, 0};
    gguf_file *f = (gguf_file *)(uintptr_t)1;
    CHECK(gguf_open(mem_read, &m, size, &f) == LFM2_E_IO && f == NULL && lfm2_last_error()[0], "io error");
    m = (memfile){d, 3, 0, 0};
    CHECK(gguf_open(mem_read, &m, 3, &f) == LFM2_E_IO, "io error short file");
    CHECK(gguf_open(NULL, &m, size, &f) == LFM2_E_ARG, "NULL read");
    CHECK(gguf_open(mem_read, &m, size, NULL) == LFM2_E_ARG, "NULL out");
    gguf_close(NULL);
}

/* Files from the writer: value types, conversions, alignment, empty things. */
static void test_written(void) {
    wbuf b = {0};
    wb_head(&b, 2, 3, 12);
    wb_str(&b, "i8");
    wb_u32(&b, GGUF_I8);
    wb_u8(&b, 0xfe); /* -2 */
    wb_str(&b, "u16");
    wb_u32(&b, GGUF_U16);
    wb_u8(&b, 0x34);
    wb_u8(&b, 0x12);
    wb_str(&b, "i64");
    wb_u32(&b, GGUF_I64);
    wb_u64(&b, (uint64_t)-5);
    wb_str(&b, "u64big");
    wb_u32(&b, GGUF_U64);
    wb_u64(&b, (uint64_t)1 << 33);
    wb_str(&b, "f64");
    wb_u32(&b, GGUF_F64);
    double dv = 0.25;
    uint64_t du;
    memcpy(&du, &dv, 8);
    wb_u64(&b, du);
    wb_str(&b, "bool2");
    wb_u32(&b, GGUF_BOOL);
    wb_u8(&b, 2);
    wb_str(&b, "arr_u8");
    wb_u32(&b, GGUF_ARRAY);
    wb_u32(&b, GGUF_U8);
    wb_u64(&b, 3);
    wb_u8(&b, 1);
    wb_u8(&b, 2);
    wb_u8(&b, 255);
    wb_str(&b, "arr_u32_big");
    wb_u32(&b, GGUF_ARRAY);
    wb_u32(&b, GGUF_U32);
    wb_u64(&b, 2);
    wb_u32(&b, 5);
    wb_u32(&b, 0x80000000u);
    wb_str(&b, "arr_empty_str");
    wb_u32(&b, GGUF_ARRAY);
    wb_u32(&b, GGUF_STRING);
    wb_u64(&b, 0);
    wb_str(&b, "arr_str");
    wb_u32(&b, GGUF_ARRAY);
    wb_u32(&b, GGUF_STRING);
    wb_u64(&b, 3);
    wb_str(&b, "");
    wb_strn(&b, "a\0b", 3);
    wb_str(&b, "xyz");
    wb_str(&b, "empty");
    wb_u32(&b, GGUF_STRING);
    wb_str(&b, "");
    wb_kv_u32(&b, "general.alignment", 64);
    int64_t ne1[1] = {64}, ne2[2] = {32, 2};
    /* gaps and any order are allowed; offsets multiples of 64 */
    wb_ti(&b, "b", 1, ne1, KQ_F32, 256);
    wb_ti(&b, "a", 2, ne2, KQ_Q8_0, 0);
    wb_ti(&b, "c", 1, ne1, KQ_F16, 128);
    size_t hdr = b.n;
    wb_pad(&b, 64);
    size_t data = b.n;
    wb_zeros(&b, 512);
    gguf_file *f = NULL;
    lfm2_status s = open_mem(b.d, b.n, &f);
    CHECK(s == LFM2_OK, "written file: %s %s", lfm2_status_name(s), lfm2_last_error());
    if (f) {
        CHECK(f->version == 2 && f->alignment == 64 && f->data_offset == data && data > hdr, "written: header");
        const gguf_kv *kv = gguf_find_kv(f, "i8");
        CHECK(kv && kv->type == GGUF_I8 && kv->v.i64 == -2, "i8");
        kv = gguf_find_kv(f, "u16");
        CHECK(kv && kv->v.u64 == 0x1234, "u16");
        kv = gguf_find_kv(f, "f64");
        CHECK(kv && kv->v.f64 == 0.25, "f64");
        uint32_t u = 0;
        CHECK(gguf_get_u32(f, "u16", &u) == LFM2_OK && u == 0x1234, "u16 as u32");
        CHECK(gguf_get_u32(f, "i8", &u) == LFM2_E_KEY_TYPE, "negative as u32: %s", lfm2_last_error());
        CHECK(gguf_get_u32(f, "i64", &u) == LFM2_E_KEY_TYPE, "negative i64 as u32");
        CHECK(gguf_get_u32(f, "u64big", &u) == LFM2_E_KEY_TYPE, "2^33 as u32");
        CHECK(gguf_get_u32(f, "general.alignment", &u) == LFM2_OK && u == 64, "alignment");
        float x = 0;
        CHECK(gguf_get_f32(f, "f64", &x) == LFM2_OK && x == 0.25f, "f64 as f32");
        bool bv = false;
        CHECK(gguf_get_bool(f, "bool2", &bv) == LFM2_OK && bv, "bool 2 is true");
        int32_t *ai = NULL;
        uint64_t n = 0;
        CHECK(gguf_get_arr_i32(f, "arr_u8", &ai, &n) == LFM2_OK && n == 3 && ai[0] == 1 && ai[2] == 255, "u8 array");
        free(ai);
        ai = NULL;
        CHECK(gguf_get_arr_i32(f, "arr_u32_big", &ai, &n) == LFM2_E_KEY_TYPE && ai == NULL, "u32 2^31 as i32");
        const gguf_str *sa = NULL;
        CHECK(gguf_get_arr_str(f, "arr_empty_str", &sa, &n) == LFM2_OK && n == 0, "empty string array");
        CHECK(gguf_get_arr_str(f, "arr_str", &sa, &n) == LFM2_OK && n == 3, "string array");
        if (sa && n == 3) {
            CHECK(sa[0].len == 0 && sa[0].ptr[0] == 0, "empty element");
            CHECK(sa[1].len == 3 && !memcmp(sa[1].ptr, "a\0b", 4), "element with NUL");
            CHECK(sa[2].len == 3 && !strcmp(sa[2].ptr, "xyz"), "element xyz");
        }
        const gguf_str *es = NULL;
        CHECK(gguf_get_str(f, "empty", &es) == LFM2_OK && es->len == 0 && es->ptr[0] == 0, "empty string");
        const gguf_tensor *t = gguf_find_tensor(f, "a");
        CHECK(t && t->offset == data && t->nbytes == 2 * 34 && t->n_dims == 2 && t->ne[2] == 1, "tensor a");
        t = gguf_find_tensor(f, "b");
        CHECK(t && t->offset == data + 256 && t->nbytes == 256, "tensor b");
        t = gguf_find_tensor(f, "c");
        CHECK(t && t->offset == data + 128 && t->nbytes == 128, "tensor c");
        gguf_close(f);
    }
    /* the same file cut right at the end of its tensor data works; one byte less does not */
    expect_status(b.d, data + 512, LFM2_OK, "written: exact");
    expect_status(b.d, data + 511, LFM2_E_TENSOR_BOUNDS, "written: data cut");
    expect_status(b.d, data, LFM2_E_TENSOR_BOUNDS, "written: no data");
    expect_status(b.d, data - 1, LFM2_E_TRUNCATED, "written: padding cut");
    free(b.d);

    /* no tensors, no metadata */
    b = (wbuf){0};
    wb_head(&b, 3, 0, 0);
    wb_pad(&b, 32);
    expect_status(b.d, b.n, LFM2_OK, "empty model");
    expect_status(b.d, 24, LFM2_E_TRUNCATED, "empty model, padding cut");
    free(b.d);

    /* duplicate keys that differ after an embedded NUL are distinct */
    b = (wbuf){0};
    wb_head(&b, 3, 0, 2);
    wb_strn(&b, "k\0a", 3);
    wb_u32(&b, GGUF_U8);
    wb_u8(&b, 1);
    wb_strn(&b, "k\0b", 3);
    wb_u32(&b, GGUF_U8);
    wb_u8(&b, 2);
    wb_pad(&b, 32);
    expect_status(b.d, b.n, LFM2_OK, "keys differing after NUL");
    b.d[24 + 8 + 2] = 'b'; /* first key becomes "k\0b" too */
    expect_status(b.d, b.n, LFM2_E_DUPLICATE, "keys equal with NUL");
    free(b.d);

    /* many keys and tensors: the hash index grows */
    b = (wbuf){0};
    enum { NK = 3000, NT = 2000 };
    wb_head(&b, 3, NT, NK);
    char nm[32];
    for (int i = 0; i < NK; i++) {
        snprintf(nm, sizeof nm, "key.%d", i);
        wb_kv_u32(&b, nm, (uint32_t)i);
    }
    for (int i = 0; i < NT; i++) {
        snprintf(nm, sizeof nm, "t.%d", i);
        wb_ti(&b, nm, 1, ne1, KQ_F32, (uint64_t)(NT - 1 - i) * 256);
    }
    wb_pad(&b, 32);
    size_t data2 = b.n;
    wb_zeros(&b, (size_t)NT * 256);
    f = NULL;
    s = open_mem(b.d, b.n, &f);
    CHECK(s == LFM2_OK, "many: %s %s", lfm2_status_name(s), lfm2_last_error());
    if (f) {
        int bad = 0;
        for (int i = 0; i < NK; i++) {
            snprintf(nm, sizeof nm, "key.%d", i);
            uint32_t u;
            if (gguf_get_u32(f, nm, &u) != LFM2_OK || u != (uint32_t)i) bad++;
        }
        for (int i = 0; i < NT; i++) {
            snprintf(nm, sizeof nm, "t.%d", i);
            const gguf_tensor *t = gguf_find_tensor(f, nm);
            if (!t || t->offset != data2 + (uint64_t)(NT - 1 - i) * 256) bad++;
        }
        CHECK(bad == 0, "many: %d lookups wrong", bad);
        gguf_close(f);
    }
    free(b.d);
}

static void test_status(void) {
    CHECK(!strcmp(lfm2_status_name(LFM2_OK), "LFM2_OK"), "OK name");
    CHECK(!strcmp(lfm2_status_name(LFM2_E_TRUNCATED), "LFM2_E_TRUNCATED"), "name");
    CHECK(!strcmp(lfm2_status_name(LFM2_E_UTF8), "LFM2_E_UTF8"), "name");
    CHECK(!strcmp(lfm2_status_name(-1), "LFM2_E_UNKNOWN") && !strcmp(lfm2_status_name(LFM2_STATUS_COUNT), "LFM2_E_UNKNOWN"),
          "unknown name");
    for (int i = 0; i < LFM2_STATUS_COUNT; i++) CHECK(!strncmp(lfm2_status_name(i), "LFM2_", 5), "name %d", i);
    CHECK(lfm2_fail(LFM2_E_ARG, "x=%d", 5) == LFM2_E_ARG && !strcmp(lfm2_last_error(), "x=5"), "fail");
    CHECK(lfm2_fail(LFM2_E_IO, "outer: %s", lfm2_last_error()) == LFM2_E_IO && !strcmp(lfm2_last_error(), "outer: x=5"),
          "fail with the last error as argument");
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    lfm2_fail(LFM2_E_ARG, "%s", big);
    CHECK(strlen(lfm2_last_error()) == 511, "long message truncated");
    lfm2_clear_error();
    CHECK(lfm2_last_error()[0] == 0, "clear");
}

int main(void) {
    test_status();
    test_fixtures();

    uint64_t size = 0;
    uint8_t *d = load(FIXDIR "/dense-q4_0.gguf", &size);
    CHECK(d != NULL, "cannot read dense-q4_0.gguf");
    if (d) {
        layout *L = calloc(1, sizeof *L);
        walk(d, L);
        test_corruptions(d, size, L);
        test_truncation(d, size, L);
        test_io(d, size);
        free(L);
        free(d);
    }
    test_written();
    CHECK(bad_reads == 0, "%d reads outside the file", bad_reads);
    return check_report("gguf");
}
