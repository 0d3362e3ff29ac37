/* test_model.c: the model loader (lfm2_model_open: hyperparameters, tensor binding, weight loading)
 * on malformed files, in memory, under ASan/UBSan.
 *
 * Files come from a small model builder: a list of keys and a list of tensors that each case edits
 * (drop, retype, reshape, change a value) before serialising to GGUF with a simple weight pattern.
 * Two valid bases: an lfm2moe of 4 layers (conv+dense, attention+dense, conv+MoE, attention+MoE)
 * and a dense lfm2 of 3 layers (conv, attention, conv). Every case is opened with header_only = 1
 * and 0 and must give exactly the expected status, with a message naming the key or tensor.
 * Also: what header-only and full opens read, read failures (LFM2_E_IO), an untied output.weight,
 * evaluation over NaN weights.
 *
 * `test_model --write-seeds DIR` writes small valid models (both archs, several weight types) for
 * the fuzzer (tests/fuzz/run.sh) and exits. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "wbuf.h"
#include "lfm2.h"
#include "quant.h"

/* ---------------------------------------------------------------------------------------- */
/* Model builder */

enum { K_U32, K_I32, K_F32, K_STR, K_ARR_I32, K_BOOL };

typedef struct {
    char key[96];
    int kind;
    uint32_t u;
    int32_t i;
    float f;
    char s[32];
    int32_t arr[16];
    int n_arr;
} kdesc;

typedef struct {
    char name[64];
    uint32_t type;
    int nd;
    int64_t ne[4];
} tdesc;

typedef struct {
    const char *arch;
    kdesc kv[48];
    int nkv;
    tdesc t[128];
    int nt;
} spec;

static kdesc *kv_find(spec *s, const char *key) {
    for (int i = 0; i < s->nkv; i++)
        if (!strcmp(s->kv[i].key, key)) return &s->kv[i];
    return NULL;
}

/* The key (prefixed with the arch when it starts with '.'), created when absent. */
static kdesc *kv_at(spec *s, const char *key) {
    char full[96];
    if (key[0] == '.') snprintf(full, sizeof full, "%s%s", s->arch, key);
    else snprintf(full, sizeof full, "%s", key);
    kdesc *k = kv_find(s, full);
    if (!k) {
        if (s->nkv == (int)(sizeof s->kv / sizeof *s->kv)) abort();
        k = &s->kv[s->nkv++];
        memset(k, 0, sizeof *k);
        snprintf(k->key, sizeof k->key, "%s", full);
    }
    return k;
}

static void set_u32(spec *s, const char *key, uint32_t v) {
    kdesc *k = kv_at(s, key);
    k->kind = K_U32, k->u = v;
}
static void set_i32(spec *s, const char *key, int32_t v) {
    kdesc *k = kv_at(s, key);
    k->kind = K_I32, k->i = v;
}
static void set_f32(spec *s, const char *key, float v) {
    kdesc *k = kv_at(s, key);
    k->kind = K_F32, k->f = v;
}
static void set_str(spec *s, const char *key, const char *v) {
    kdesc *k = kv_at(s, key);
    k->kind = K_STR;
    snprintf(k->s, sizeof k->s, "%s", v);
}
static void set_bool(spec *s, const char *key, bool v) {
    kdesc *k = kv_at(s, key);
    k->kind = K_BOOL, k->u = v;
}
static void set_arr(spec *s, const char *key, const int32_t *v, int n) {
    kdesc *k = kv_at(s, key);
    k->kind = K_ARR_I32, k->n_arr = n;
    memcpy(k->arr, v, (size_t)n * sizeof *v);
}
static void del_kv(spec *s, const char *key) {
    kdesc *k = kv_at(s, key);
    s->nkv--;
    *k = s->kv[s->nkv];
}

static tdesc *t_find(spec *s, const char *name) {
    for (int i = 0; i < s->nt; i++)
        if (!strcmp(s->t[i].name, name)) return &s->t[i];
    fprintf(stderr, "builder: no tensor %s\n", name);
    abort();
}
static void add_t(spec *s, const char *name, uint32_t type, int nd, int64_t a, int64_t b, int64_t c) {
    if (s->nt == (int)(sizeof s->t / sizeof *s->t)) abort();
    tdesc *t = &s->t[s->nt++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type, t->nd = nd;
    t->ne[0] = a, t->ne[1] = b, t->ne[2] = c, t->ne[3] = 1;
    for (int i = nd; i < 4; i++) t->ne[i] = 1;
}
static void del_t(spec *s, const char *name) {
    tdesc *t = t_find(s, name);
    *t = s->t[--s->nt];
}
static void shape_t(spec *s, const char *name, int nd, int64_t a, int64_t b, int64_t c) {
    tdesc *t = t_find(s, name);
    t->nd = nd;
    t->ne[0] = a, t->ne[1] = b, t->ne[2] = c, t->ne[3] = 1;
    for (int i = nd; i < 4; i++) t->ne[i] = 1;
}

/* Dimensions of the bases. */
enum { E = 64, NH = 4, HD = E / NH, NKV = 2, FF = 96, FFX = 32, NX = 4, NXU = 2, V = 80, LC = 3 };

/* A valid model: moe -> lfm2moe (4 layers), else lfm2 (3 layers). Matrices of type wt; norms,
 * conv kernels and biases F32. */
static void base_e(spec *s, bool moe, uint32_t wt, int64_t ffw) {
    memset(s, 0, sizeof *s);
    s->arch = moe ? "lfm2moe" : "lfm2";
    const int nl = moe ? 4 : 3;
    /* ffw = 256 (K-quant seeds): FFN widths of 256 and 2 experts; only matrices whose rows are a
     * whole number of wt's blocks (ffn_down, ffn_down_exps) get wt, the others Q8_0 */
    const int64_t e = E, ff = ffw ? ffw : FF, ffx = ffw ? ffw : FFX, hd = e / NH, nx = ffw ? NXU : NX;
    const int wblk = kq_get(wt)->blck;
    set_str(s, "general.architecture", s->arch);
    set_str(s, "general.name", "test model");
    set_u32(s, "general.file_type", 0);
    set_u32(s, ".block_count", (uint32_t)nl);
    set_u32(s, ".context_length", 128);
    set_u32(s, ".embedding_length", (uint32_t)e);
    set_u32(s, ".feed_forward_length", (uint32_t)ff);
    set_u32(s, ".attention.head_count", NH);
    const int32_t hkv_moe[4] = {0, NKV, 0, NKV}, hkv_dense[3] = {0, NKV, 0};
    set_arr(s, ".attention.head_count_kv", moe ? hkv_moe : hkv_dense, nl);
    set_f32(s, ".rope.freq_base", 1e6f);
    set_f32(s, ".attention.layer_norm_rms_epsilon", 1e-5f);
    set_u32(s, ".vocab_size", V);
    set_u32(s, ".shortconv.l_cache", LC);
    if (moe) {
        set_u32(s, ".expert_count", (uint32_t)nx);
        set_u32(s, ".expert_used_count", NXU);
        set_u32(s, ".expert_feed_forward_length", (uint32_t)ffx);
        set_u32(s, ".leading_dense_block_count", 2);
        set_u32(s, ".expert_gating_func", 2);
    }
    set_str(s, "tokenizer.ggml.model", "gpt2");
    set_u32(s, "tokenizer.ggml.bos_token_id", 1);
    set_bool(s, "tokenizer.ggml.add_bos_token", true);

    add_t(s, "token_embd.weight", e % wblk ? (uint32_t)KQ_Q8_0 : wt, 2, e, V, 1);
    add_t(s, "token_embd_norm.weight", KQ_F32, 1, e, 1, 1);
    char n[64];
    for (int il = 0; il < nl; il++) {
        const bool attn = il % 2 == 1, lmoe = moe && il >= 2;
#define T(fmt, type, nd, a, b, c)                                                                 \
    (snprintf(n, sizeof n, "blk.%d." fmt, il),                                                   \
     add_t(s, n, (type) == wt && (a) % wblk ? (uint32_t)KQ_Q8_0 : (type), nd, a, b, c))
        T("attn_norm.weight", KQ_F32, 1, e, 1, 1);
        T("ffn_norm.weight", KQ_F32, 1, e, 1, 1);
        if (attn) {
            T("attn_q.weight", wt, 2, e, e, 1);
            T("attn_k.weight", wt, 2, e, NKV * hd, 1);
            T("attn_v.weight", wt, 2, e, NKV * hd, 1);
            T("attn_output.weight", wt, 2, e, e, 1);
            T("attn_q_norm.weight", KQ_F32, 1, hd, 1, 1);
            T("attn_k_norm.weight", KQ_F32, 1, hd, 1, 1);
        } else {
            T("shortconv.conv.weight", KQ_F32, 2, LC, e, 1);
            T("shortconv.in_proj.weight", wt, 2, e, 3 * e, 1);
            T("shortconv.out_proj.weight", wt, 2, e, e, 1);
        }
        if (lmoe) {
            T("ffn_gate_inp.weight", KQ_F32, 2, e, nx, 1);
            T("exp_probs_b.bias", KQ_F32, 1, nx, 1, 1);
            T("ffn_gate_exps.weight", wt, 3, e, ffx, nx);
            T("ffn_up_exps.weight", wt, 3, e, ffx, nx);
            T("ffn_down_exps.weight", wt, 3, ffx, e, nx);
        } else {
            T("ffn_gate.weight", wt, 2, e, ff, 1);
            T("ffn_up.weight", wt, 2, e, ff, 1);
            T("ffn_down.weight", wt, 2, ff, e, 1);
        }
#undef T
    }
}
static void base(spec *s, bool moe) { base_e(s, moe, KQ_F32, 0); }

/* GGUF v3 bytes of the spec; *data_off: the start of the tensor data. Weights: a small pattern
 * (norms near 1), quantised to the tensor's type. */
static uint8_t *build(const spec *s, size_t *size, uint64_t *data_off) {
    wbuf b = {0};
    wb_put(&b, "GGUF", 4);
    wb_u32(&b, 3);
    wb_u64(&b, (uint64_t)s->nt);
    wb_u64(&b, (uint64_t)s->nkv);
    for (int i = 0; i < s->nkv; i++) {
        const kdesc *k = &s->kv[i];
        wb_str(&b, k->key);
        switch (k->kind) {
        case K_U32: wb_u32(&b, 4), wb_u32(&b, k->u); break;
        case K_I32: wb_u32(&b, 5), wb_u32(&b, (uint32_t)k->i); break;
        case K_F32: {
            uint32_t u;
            memcpy(&u, &k->f, 4);
            wb_u32(&b, 6), wb_u32(&b, u);
            break;
        }
        case K_BOOL: wb_u32(&b, 7), wb_put(&b, &(uint8_t){(uint8_t)k->u}, 1); break;
        case K_STR: wb_u32(&b, 8), wb_str(&b, k->s); break;
        case K_ARR_I32:
            wb_u32(&b, 9), wb_u32(&b, 5), wb_u64(&b, (uint64_t)k->n_arr);
            for (int j = 0; j < k->n_arr; j++) wb_u32(&b, (uint32_t)k->arr[j]);
            break;
        }
    }
    uint64_t off = 0;
    uint64_t offs[128];
    for (int i = 0; i < s->nt; i++) {
        const tdesc *t = &s->t[i];
        wb_str(&b, t->name);
        wb_u32(&b, (uint32_t)t->nd);
        for (int j = 0; j < t->nd; j++) wb_u64(&b, (uint64_t)t->ne[j]);
        wb_u32(&b, t->type);
        wb_u64(&b, off);
        offs[i] = off;
        const int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
        off += (kq_row_bytes(t->type, t->ne[0]) * (uint64_t)rows + 31) / 32 * 32;
    }
    wb_pad(&b, 32);
    *data_off = b.n;
    float *row = NULL;
    for (int i = 0; i < s->nt; i++) {
        const tdesc *t = &s->t[i];
        const int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
        const size_t rb = kq_row_bytes(t->type, t->ne[0]);
        const bool norm = strstr(t->name, "norm") != NULL;
        row = realloc(row, (size_t)t->ne[0] * sizeof *row);
        uint8_t *q = malloc(rb ? rb : 1);
        if (b.n != *data_off + offs[i]) abort();
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t j = 0; j < t->ne[0]; j++)
                row[j] = norm ? 1.0f + 0.01f * (float)(j % 5) : 0.05f * (float)((r * 7 + j * 3 + i) % 11 - 5);
            kq_get(t->type)->quantize(row, q, t->ne[0]);
            wb_put(&b, q, rb);
        }
        free(q);
        wb_pad(&b, 32);
    }
    free(row);
    *size = b.n;
    return b.d;
}

/* ---------------------------------------------------------------------------------------- */
/* In-memory reader: tracks the furthest byte read; can fail every read that reaches fail_at. */

typedef struct {
    const uint8_t *d;
    uint64_t size;
    uint64_t max_end;
    uint64_t fail_at; /* UINT64_MAX: never */
    uint64_t bytes;   /* total bytes delivered */
} memfile;

static int bad_reads;

static int mem_read(void *ctx, uint64_t off, size_t len, void *dst) {
    memfile *m = ctx;
    if (off >= m->size || len > m->size - off || len == 0) {
        bad_reads++;
        return 1;
    }
    if (off + len > m->fail_at) return 1;
    if (off + len > m->max_end) m->max_end = off + len;
    m->bytes += len;
    memcpy(dst, m->d + off, len);
    return 0;
}

/* Open the spec both ways; both must give `want`, and a failure's message must contain `needle`. */
static void expect(const spec *s, lfm2_status want, const char *needle, const char *what) {
    size_t size;
    uint64_t data_off;
    uint8_t *d = build(s, &size, &data_off);
    for (int ho = 1; ho >= 0; ho--) {
        memfile mf = {d, size, 0, UINT64_MAX, 0};
        lfm2_model_params p = {.header_only = ho};
        lfm2_model *m = (lfm2_model *)(uintptr_t)1;
        lfm2_status st = lfm2_model_open(mem_read, &mf, size, &p, &m);
        CHECK(st == want, "%s (header_only %d): got %s (%s), want %s", what, ho, lfm2_status_name(st),
              lfm2_last_error(), lfm2_status_name(want));
        if (want != LFM2_OK) {
            CHECK(m == NULL, "%s: *out not NULL on failure", what);
            CHECK(needle == NULL || strstr(lfm2_last_error(), needle) != NULL, "%s: message '%s' does not name '%s'",
                  what, lfm2_last_error(), needle);
        }
        if (getenv("MODEL_TEST_VERBOSE") && ho)
            printf("  %-44s %-24s %s\n", what, lfm2_status_name(st), lfm2_last_error());
        if (st == LFM2_OK) lfm2_model_free(m);
    }
    free(d);
}

/* ---------------------------------------------------------------------------------------- */

static const char *const REQUIRED[] = {
    "block_count", "context_length", "embedding_length", "feed_forward_length", "attention.head_count",
    "attention.head_count_kv", "rope.freq_base", "attention.layer_norm_rms_epsilon", "shortconv.l_cache"};
static const char *const REQUIRED_MOE[] = {"expert_count", "expert_used_count", "expert_feed_forward_length",
                                           "leading_dense_block_count"};

static void test_valid(void) {
    spec s;
    base(&s, true);
    expect(&s, LFM2_OK, NULL, "lfm2moe base");
    base(&s, false);
    expect(&s, LFM2_OK, NULL, "lfm2 base");
    /* head_count_kv as one number for every layer (all attention) is accepted too */
    base(&s, false);
    set_u32(&s, ".attention.head_count_kv", NKV);
    for (int il = 0; il < 3; il += 2) {
        char n[64];
        const char *parts[] = {"shortconv.conv.weight", "shortconv.in_proj.weight", "shortconv.out_proj.weight"};
        for (int j = 0; j < 3; j++) snprintf(n, sizeof n, "blk.%d.%s", il, parts[j]), del_t(&s, n);
        snprintf(n, sizeof n, "blk.%d.attn_q.weight", il), add_t(&s, n, KQ_F32, 2, E, E, 1);
        snprintf(n, sizeof n, "blk.%d.attn_k.weight", il), add_t(&s, n, KQ_F32, 2, E, NKV * HD, 1);
        snprintf(n, sizeof n, "blk.%d.attn_v.weight", il), add_t(&s, n, KQ_F32, 2, E, NKV * HD, 1);
        snprintf(n, sizeof n, "blk.%d.attn_output.weight", il), add_t(&s, n, KQ_F32, 2, E, E, 1);
        snprintf(n, sizeof n, "blk.%d.attn_q_norm.weight", il), add_t(&s, n, KQ_F32, 1, HD, 1, 1);
        snprintf(n, sizeof n, "blk.%d.attn_k_norm.weight", il), add_t(&s, n, KQ_F32, 1, HD, 1, 1);
    }
    expect(&s, LFM2_OK, NULL, "head_count_kv scalar, all attention");
    /* extra keys and tensors are ignored; vocab_size and expert_gating_func are optional */
    base(&s, true);
    set_u32(&s, "lfm2moe.some_future_key", 5);
    set_str(&s, "general.unknown", "x");
    add_t(&s, "blk.0.unknown.weight", KQ_F32, 1, 7, 1, 1);
    add_t(&s, "rope_freqs.weight", KQ_F32, 1, HD / 2, 1, 1);
    del_kv(&s, ".vocab_size");
    del_kv(&s, ".expert_gating_func");
    expect(&s, LFM2_OK, NULL, "extra keys and tensors, no vocab_size");
    /* integer keys of another integer type that fits */
    base(&s, false);
    set_i32(&s, ".block_count", 3);
    expect(&s, LFM2_OK, NULL, "block_count as INT32");
    /* all layers MoE */
    base(&s, true);
    set_u32(&s, ".leading_dense_block_count", 0);
    for (int il = 0; il < 2; il++) {
        char n[64];
        const char *parts[] = {"ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"};
        for (int j = 0; j < 3; j++) snprintf(n, sizeof n, "blk.%d.%s", il, parts[j]), del_t(&s, n);
        snprintf(n, sizeof n, "blk.%d.ffn_gate_inp.weight", il), add_t(&s, n, KQ_F32, 2, E, NX, 1);
        snprintf(n, sizeof n, "blk.%d.exp_probs_b.bias", il), add_t(&s, n, KQ_F32, 1, NX, 1, 1);
        snprintf(n, sizeof n, "blk.%d.ffn_gate_exps.weight", il), add_t(&s, n, KQ_F32, 3, E, FFX, NX);
        snprintf(n, sizeof n, "blk.%d.ffn_up_exps.weight", il), add_t(&s, n, KQ_F32, 3, E, FFX, NX);
        snprintf(n, sizeof n, "blk.%d.ffn_down_exps.weight", il), add_t(&s, n, KQ_F32, 3, FFX, E, NX);
    }
    expect(&s, LFM2_OK, NULL, "every layer MoE");
    /* ... where no tensor checks feed_forward_length: a context for 2^26 must fail cleanly on wasm32 (it once
     * wrapped a 32-bit size_t in lfm2_context_new) */
    set_u32(&s, ".feed_forward_length", 1u << 26);
    expect(&s, LFM2_OK, NULL, "every layer MoE, feed_forward_length 2^26");
    size_t size;
    uint64_t data_off;
    uint8_t *d = build(&s, &size, &data_off);
    memfile mf = {d, size, 0, UINT64_MAX, 0};
    lfm2_model *m = NULL;
    CHECK(lfm2_model_open(mem_read, &mf, size, &(lfm2_model_params){0}, &m) == LFM2_OK, "open: %s", lfm2_last_error());
    if (m) {
        lfm2_context *c = (lfm2_context *)(uintptr_t)1;
        lfm2_status st = SIZE_MAX > UINT32_MAX ? LFM2_E_NOMEM : lfm2_context_new(m, 8, &c);
        /* natively the 2^26-wide scratch (~50 GB) passes the size check and only calloc could fail,
         * which ASan reports instead of returning NULL: only the 32-bit path is run here */
        CHECK(st == LFM2_E_NOMEM, "context with n_ff 2^26: %s", lfm2_status_name(st));
        lfm2_model_free(m);
    }
    free(d);
}

static void test_arch(void) {
    spec s;
    base(&s, true);
    del_kv(&s, "general.architecture");
    expect(&s, LFM2_E_KEY_MISSING, "general.architecture", "architecture missing");
    base(&s, true);
    set_u32(&s, "general.architecture", 1);
    expect(&s, LFM2_E_KEY_TYPE, "general.architecture", "architecture UINT32");
    base(&s, true);
    set_str(&s, "general.architecture", "llama");
    expect(&s, LFM2_E_ARCH, "llama", "architecture llama");
    base(&s, true);
    set_str(&s, "general.architecture", "lfm2");
    expect(&s, LFM2_E_KEY_MISSING, "lfm2.block_count", "lfm2moe keys under arch lfm2");
}

static void test_keys(void) {
    char what[160], full[96];
    for (int moe = 0; moe < 2; moe++) {
        spec s;
        const char *arch = moe ? "lfm2moe" : "lfm2";
        size_t n = sizeof REQUIRED / sizeof *REQUIRED + (moe ? sizeof REQUIRED_MOE / sizeof *REQUIRED_MOE : 0);
        for (size_t i = 0; i < n; i++) {
            const char *k = i < sizeof REQUIRED / sizeof *REQUIRED ? REQUIRED[i] : REQUIRED_MOE[i - sizeof REQUIRED / sizeof *REQUIRED];
            snprintf(full, sizeof full, "%s.%s", arch, k);
            base(&s, moe);
            del_kv(&s, full);
            snprintf(what, sizeof what, "%s missing", full);
            expect(&s, LFM2_E_KEY_MISSING, full, what);
            base(&s, moe);
            set_str(&s, full, "7");
            snprintf(what, sizeof what, "%s STRING", full);
            expect(&s, LFM2_E_KEY_TYPE, full, what);
            base(&s, moe);
            /* floats as an integer, integers as a float */
            if (strstr(k, "freq_base") || strstr(k, "epsilon")) set_u32(&s, full, 1);
            else set_f32(&s, full, 4.0f);
            snprintf(what, sizeof what, "%s numeric of the wrong kind", full);
            expect(&s, LFM2_E_KEY_TYPE, full, what);
        }
        spec s2;
        base(&s2, moe);
        snprintf(full, sizeof full, "%s.block_count", arch);
        set_i32(&s2, full, -3);
        expect(&s2, LFM2_E_KEY_TYPE, full, "block_count negative INT32");
        base(&s2, moe);
        snprintf(full, sizeof full, "%s.vocab_size", arch);
        set_str(&s2, full, "80");
        expect(&s2, LFM2_E_KEY_TYPE, full, "vocab_size STRING");
    }
    spec s;
    base(&s, true);
    set_u32(&s, ".expert_gating_func", 1);
    expect(&s, LFM2_E_HPARAM, "expert_gating_func", "expert_gating_func 1 (softmax)");
    base(&s, true);
    set_str(&s, ".expert_gating_func", "sigmoid");
    expect(&s, LFM2_E_KEY_TYPE, "expert_gating_func", "expert_gating_func STRING");
}

static void test_hparams(void) {
    spec s;
    for (int moe = 0; moe < 2; moe++) {
        base(&s, moe);
        set_u32(&s, ".block_count", 0);
        expect(&s, LFM2_E_HPARAM, "block_count", "block_count 0");
        base(&s, moe);
        set_u32(&s, ".block_count", 1000);
        expect(&s, LFM2_E_HPARAM, "block_count", "block_count 1000");
        base(&s, moe);
        set_u32(&s, ".block_count", moe ? 3 : 2);
        expect(&s, LFM2_E_HPARAM, "head_count_kv", "head_count_kv longer than block_count");
        base(&s, moe);
        set_u32(&s, ".block_count", moe ? 5 : 4);
        expect(&s, LFM2_E_HPARAM, "head_count_kv", "head_count_kv shorter than block_count");
    }
    base(&s, true);
    set_arr(&s, ".attention.head_count_kv", (const int32_t[]){0, 3, 0, 2}, 4);
    expect(&s, LFM2_E_HPARAM, "head_count_kv", "head_count_kv 3 does not divide 4");
    base(&s, true);
    set_arr(&s, ".attention.head_count_kv", (const int32_t[]){0, 8, 0, 2}, 4);
    expect(&s, LFM2_E_HPARAM, "head_count_kv", "head_count_kv 8 > head_count 4");
    base(&s, true);
    set_arr(&s, ".attention.head_count_kv", (const int32_t[]){0, -2, 0, 2}, 4);
    expect(&s, LFM2_E_HPARAM, "head_count_kv", "head_count_kv negative");
    base(&s, false);
    set_u32(&s, ".attention.head_count_kv", 3);
    expect(&s, LFM2_E_HPARAM, "head_count_kv", "head_count_kv scalar 3");
    base(&s, false);
    set_u32(&s, ".attention.head_count_kv", 0);
    expect(&s, LFM2_E_HPARAM, "head_count_kv", "head_count_kv scalar 0");
    base(&s, true);
    set_u32(&s, ".attention.head_count", 5);
    expect(&s, LFM2_E_HPARAM, "embedding_length", "embedding_length 64 / head_count 5");
    base(&s, true);
    set_u32(&s, ".attention.head_count", 0);
    expect(&s, LFM2_E_HPARAM, "head_count", "head_count 0");
    base(&s, true);
    set_u32(&s, ".attention.head_count", 64); /* head size 1: odd, no RoPE pairs */
    expect(&s, LFM2_E_HPARAM, "embedding_length", "head size 1");
    base(&s, true);
    set_u32(&s, ".embedding_length", 128);
    expect(&s, LFM2_E_HPARAM, "token_embd.weight", "embedding_length contradicts token_embd");
    base(&s, true);
    set_u32(&s, ".embedding_length", 0);
    expect(&s, LFM2_E_HPARAM, "embedding_length", "embedding_length 0");
    for (int moe = 0; moe < 2; moe++) {
        base(&s, moe);
        set_u32(&s, ".vocab_size", V + 1);
        expect(&s, LFM2_E_HPARAM, "vocab_size", "vocab_size contradicts token_embd rows");
    }
    base(&s, true);
    set_u32(&s, ".expert_used_count", NX + 1);
    expect(&s, LFM2_E_HPARAM, "expert_used_count", "expert_used_count > expert_count");
    base(&s, true);
    set_u32(&s, ".expert_used_count", 0);
    expect(&s, LFM2_E_HPARAM, "expert_used_count", "expert_used_count 0");
    base(&s, true);
    set_u32(&s, ".expert_count", 0);
    expect(&s, LFM2_E_HPARAM, "expert_count", "expert_count 0");
    base(&s, true);
    set_u32(&s, ".expert_count", 100000);
    set_u32(&s, ".expert_used_count", 2);
    expect(&s, LFM2_E_HPARAM, "expert_count", "expert_count 100000");
    base(&s, true);
    set_u32(&s, ".leading_dense_block_count", 5);
    expect(&s, LFM2_E_HPARAM, "leading_dense_block_count", "leading_dense_block_count > block_count");
    base(&s, true);
    set_u32(&s, ".leading_dense_block_count", 3); /* layer 2 becomes dense: its dense FFN is missing */
    expect(&s, LFM2_E_TENSOR_MISSING, "blk.2.ffn_gate.weight", "leading_dense_block_count 3");
    const float bad_eps[] = {0.0f, NAN, -1e-5f, 1.0f, INFINITY};
    for (size_t i = 0; i < sizeof bad_eps / sizeof *bad_eps; i++) {
        base(&s, i % 2);
        set_f32(&s, ".attention.layer_norm_rms_epsilon", bad_eps[i]);
        expect(&s, LFM2_E_HPARAM, "layer_norm_rms_epsilon", "bad eps");
    }
    const float bad_theta[] = {-1e6f, 0.0f, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad_theta / sizeof *bad_theta; i++) {
        base(&s, i % 2);
        set_f32(&s, ".rope.freq_base", bad_theta[i]);
        expect(&s, LFM2_E_HPARAM, "freq_base", "bad rope base");
    }
    base(&s, true);
    set_u32(&s, ".shortconv.l_cache", 0);
    expect(&s, LFM2_E_HPARAM, "l_cache", "l_cache 0");
    base(&s, true);
    set_u32(&s, ".shortconv.l_cache", 100);
    expect(&s, LFM2_E_HPARAM, "l_cache", "l_cache 100");
    base(&s, false);
    set_u32(&s, ".context_length", 0);
    expect(&s, LFM2_E_HPARAM, "context_length", "context_length 0");
    /* feed_forward_length contradicting the dense FFN tensors */
    base(&s, false);
    set_u32(&s, ".feed_forward_length", 128);
    expect(&s, LFM2_E_TENSOR_SHAPE, "blk.0.ffn_gate.weight", "feed_forward_length contradicts ffn_gate");
    base(&s, true);
    set_u32(&s, ".expert_feed_forward_length", 64);
    expect(&s, LFM2_E_TENSOR_SHAPE, "blk.2.ffn_gate_exps.weight", "expert_feed_forward_length contradicts");
}

static void test_tensors(void) {
    spec s;
    static const struct {
        bool moe;
        const char *name;
    } missing[] = {
        {true, "token_embd.weight"},          {false, "token_embd.weight"},
        {true, "token_embd_norm.weight"},     {false, "token_embd_norm.weight"},
        {true, "blk.0.shortconv.in_proj.weight"}, {false, "blk.2.shortconv.in_proj.weight"},
        {true, "blk.2.shortconv.conv.weight"},    {false, "blk.0.shortconv.out_proj.weight"},
        {true, "blk.1.attn_k.weight"},        {false, "blk.1.attn_k.weight"},
        {true, "blk.3.attn_q_norm.weight"},   {false, "blk.1.attn_q_norm.weight"},
        {true, "blk.3.attn_output.weight"},   {false, "blk.1.attn_norm.weight"},
        {true, "blk.1.ffn_down.weight"},      {false, "blk.2.ffn_down.weight"},
        {true, "blk.0.ffn_norm.weight"},      {true, "blk.2.ffn_gate_exps.weight"},
        {true, "blk.3.exp_probs_b.bias"},     {true, "blk.3.ffn_gate_inp.weight"},
        {true, "blk.3.ffn_down_exps.weight"},
    };
    char what[160];
    for (size_t i = 0; i < sizeof missing / sizeof *missing; i++) {
        base(&s, missing[i].moe);
        del_t(&s, missing[i].name);
        snprintf(what, sizeof what, "%s: %s missing", s.arch, missing[i].name);
        expect(&s, LFM2_E_TENSOR_MISSING, missing[i].name, what);
    }

    /* shapes */
    base(&s, true);
    shape_t(&s, "blk.1.attn_k.weight", 2, E, 4 * HD, 1);
    expect(&s, LFM2_E_TENSOR_SHAPE, "blk.1.attn_k.weight", "attn_k with 4 KV heads, 2 declared");
    base(&s, false);
    shape_t(&s, "blk.1.attn_v.weight", 2, E, 1 * HD, 1);
    expect(&s, LFM2_E_TENSOR_SHAPE, "blk.1.attn_v.weight", "attn_v with 1 KV head");
    base(&s, false);
    shape_t(&s, "blk.0.shortconv.in_proj.weight", 2, E, 2 * E, 1);
    expect(&s, LFM2_E_TENSOR_SHAPE, "blk.0.shortconv.in_proj.weight", "in_proj 2*n_embd");
    base(&s, true);
    shape_t(&s, "blk.2.shortconv.in_proj.weight", 3, E, E, 3);
    expect(&s, LFM2_E_TENSOR_SHAPE, "blk.2.shortconv.in_proj.weight", "in_proj 3-D");
    base(&s, true);
    shape_t(&s, "blk.2.ffn_up_exps.weight", 3, E, FFX, NX - 1);
    expect(&s, LFM2_E_TENSOR_SHAPE, "blk.2.ffn_up_exps.weight", "ffn_up_exps with 3 experts");
    base(&s, true);
    shape_t(&s, "blk.3.ffn_down_exps.weight", 3, E, FFX, NX);
    expect(&s, LFM2_E_TENSOR_SHAPE, "blk.3.ffn_down_exps.weight", "ffn_down_exps transposed");
    base(&s, true);
    shape_t(&s, "blk.3.exp_probs_b.bias", 1, NX + 1, 1, 1);
    expect(&s, LFM2_E_TENSOR_SHAPE, "blk.3.exp_probs_b.bias", "router bias length");
    base(&s, true);
    shape_t(&s, "blk.2.ffn_gate_inp.weight", 2, E, NX * 2, 1);
    expect(&s, LFM2_E_TENSOR_SHAPE, "blk.2.ffn_gate_inp.weight", "router rows");
    base(&s, false);
    shape_t(&s, "blk.0.shortconv.conv.weight", 2, 4, E, 1);
    expect(&s, LFM2_E_TENSOR_SHAPE, "blk.0.shortconv.conv.weight", "conv kernel 4 != l_cache 3");
    base(&s, false);
    set_u32(&s, ".shortconv.l_cache", 4);
    expect(&s, LFM2_E_TENSOR_SHAPE, "shortconv.conv.weight", "l_cache 4, kernels of 3");
    base(&s, true);
    shape_t(&s, "blk.1.attn_norm.weight", 1, E / 2, 1, 1);
    expect(&s, LFM2_E_TENSOR_SHAPE, "blk.1.attn_norm.weight", "attn_norm of n_embd/2");
    base(&s, false);
    shape_t(&s, "token_embd_norm.weight", 2, E, 1 + 1, 1);
    expect(&s, LFM2_E_TENSOR_SHAPE, "token_embd_norm.weight", "output norm 2-D");
    base(&s, true);
    shape_t(&s, "blk.3.attn_k_norm.weight", 1, HD * 2, 1, 1);
    expect(&s, LFM2_E_TENSOR_SHAPE, "blk.3.attn_k_norm.weight", "k_norm of 2*head_dim");
    base(&s, false);
    shape_t(&s, "blk.1.attn_output.weight", 2, E, E + 32, 1);
    expect(&s, LFM2_E_TENSOR_SHAPE, "blk.1.attn_output.weight", "attn_output rows");
    base(&s, false);
    shape_t(&s, "token_embd.weight", 3, E, V, 2);
    expect(&s, LFM2_E_TENSOR_SHAPE, "token_embd.weight", "token_embd 3-D");

    /* types */
    base(&s, true);
    t_find(&s, "blk.0.attn_norm.weight")->type = KQ_F16;
    expect(&s, LFM2_E_TENSOR_TYPE, "blk.0.attn_norm.weight", "attn_norm F16");
    base(&s, false);
    t_find(&s, "token_embd_norm.weight")->type = KQ_F16;
    expect(&s, LFM2_E_TENSOR_TYPE, "token_embd_norm.weight", "output norm F16");
    base(&s, false);
    t_find(&s, "blk.2.shortconv.conv.weight")->type = KQ_F16;
    expect(&s, LFM2_E_TENSOR_TYPE, "blk.2.shortconv.conv.weight", "conv kernel F16");
    base(&s, true);
    t_find(&s, "blk.3.attn_q_norm.weight")->type = KQ_BF16;
    expect(&s, LFM2_E_TENSOR_TYPE, "blk.3.attn_q_norm.weight", "q_norm BF16");
    base(&s, true);
    t_find(&s, "blk.2.exp_probs_b.bias")->type = KQ_F16;
    expect(&s, LFM2_E_TENSOR_TYPE, "blk.2.exp_probs_b.bias", "router bias F16");

    /* an output.weight is used; a wrong one is rejected */
    base(&s, true);
    add_t(&s, "output.weight", KQ_F32, 2, E, V, 1);
    expect(&s, LFM2_OK, NULL, "output.weight present");
    base(&s, false);
    add_t(&s, "output.weight", KQ_F32, 2, E, V + 1, 1);
    expect(&s, LFM2_E_TENSOR_SHAPE, "output.weight", "output.weight with more rows");
}

/* Distinct logits with and without an untied output.weight prove that it is used. */
static void test_output_used(void) {
    float lg[2][V];
    for (int k = 0; k < 2; k++) {
        spec s;
        base(&s, false);
        if (k) add_t(&s, "output.weight", KQ_F32, 2, E, V, 1); /* a different pattern (index) */
        size_t size;
        uint64_t data_off;
        uint8_t *d = build(&s, &size, &data_off);
        memfile mf = {d, size, 0, UINT64_MAX, 0};
        lfm2_model *m = NULL;
        lfm2_context *c = NULL;
        lfm2_status st = lfm2_model_open(mem_read, &mf, size, &(lfm2_model_params){0}, &m);
        CHECK(st == LFM2_OK, "open: %s", lfm2_last_error());
        if (st == LFM2_OK) st = lfm2_context_new(m, 8, &c);
        CHECK(st == LFM2_OK, "context: %s", lfm2_last_error());
        const int32_t tok[2] = {1, 5};
        if (st == LFM2_OK) st = lfm2_eval(c, tok, 2, lg[k], 0);
        CHECK(st == LFM2_OK, "eval: %s", lfm2_last_error());
        for (int i = 0; i < V; i++) CHECK(isfinite(lg[k][i]), "logit %d not finite", i);
        lfm2_context_free(c);
        lfm2_model_free(m);
        free(d);
    }
    CHECK(memcmp(lg[0], lg[1], sizeof lg[0]) != 0, "output.weight made no difference to the logits");
}

/* header_only reads the header (in 64 KiB read-ahead chunks), never the tensor data beyond that;
 * a full open reads every dense tensor; an I/O failure anywhere is LFM2_E_IO. */
static void test_reads(void) {
    for (int moe = 0; moe < 2; moe++) {
        spec s;
        base(&s, moe);
        size_t size;
        uint64_t data_off;
        uint8_t *d = build(&s, &size, &data_off);
        CHECK(size > data_off + 2 * 65536, "test model too small for the read-ahead check (%zu)", size);
        memfile mf = {d, size, 0, UINT64_MAX, 0};
        lfm2_model *m = NULL;
        lfm2_status st = lfm2_model_open(mem_read, &mf, size, &(lfm2_model_params){.header_only = 1}, &m);
        CHECK(st == LFM2_OK, "%s header only: %s", s.arch, lfm2_last_error());
        CHECK(mf.max_end <= data_off + 65536 && mf.max_end < size, "%s header only read up to %llu (data at %llu)",
              s.arch, (unsigned long long)mf.max_end, (unsigned long long)data_off);
        lfm2_model_free(m);
        /* the header alone (a file cut right at the data) opens header-only... no: the tensors must
         * lie inside the file, so a cut file is LFM2_E_TENSOR_BOUNDS both ways */
        memfile cut = {d, data_off, 0, UINT64_MAX, 0};
        st = lfm2_model_open(mem_read, &cut, data_off, &(lfm2_model_params){.header_only = 1}, &m);
        CHECK(st == LFM2_E_TENSOR_BOUNDS && m == NULL, "cut file: %s", lfm2_status_name(st));

        /* full: every byte of tensor data is read (all are used), the header once */
        mf = (memfile){d, size, 0, UINT64_MAX, 0};
        st = lfm2_model_open(mem_read, &mf, size, &(lfm2_model_params){0}, &m);
        CHECK(st == LFM2_OK, "%s full: %s", s.arch, lfm2_last_error());
        CHECK(mf.max_end == size, "%s full open read up to %llu of %zu", s.arch, (unsigned long long)mf.max_end, size);
        uint64_t tensor_bytes = 0;
        for (int i = 0; i < s.nt; i++)
            tensor_bytes += kq_row_bytes(s.t[i].type, s.t[i].ne[0]) * (uint64_t)(s.t[i].ne[1] * s.t[i].ne[2]);
        CHECK(mf.bytes >= tensor_bytes && mf.bytes <= tensor_bytes + data_off + 65536,
              "%s: %llu bytes read for %llu of tensors", s.arch, (unsigned long long)mf.bytes,
              (unsigned long long)tensor_bytes);
        lfm2_model_free(m);

        /* a read failing at byte X: every X inside the data gives LFM2_E_IO (header-only: OK once
         * X is past the read-ahead) */
        int wrong = 0, tried = 0;
        for (uint64_t x = data_off; x < size; x += 4093, tried++) {
            mf = (memfile){d, size, 0, x + 1, 0};
            m = (lfm2_model *)(uintptr_t)1;
            st = lfm2_model_open(mem_read, &mf, size, &(lfm2_model_params){0}, &m);
            if (st != LFM2_E_IO || m != NULL || !strstr(lfm2_last_error(), "fail")) {
                if (wrong++ < 5) fprintf(stderr, "fail at %llu: %s %s\n", (unsigned long long)x, lfm2_status_name(st), lfm2_last_error());
                if (st == LFM2_OK) lfm2_model_free(m);
            }
        }
        CHECK(wrong == 0, "%s: %d of %d failing reads in the data not LFM2_E_IO", s.arch, wrong, tried);
        /* a failure in the header: LFM2_E_IO both ways */
        mf = (memfile){d, size, 0, 100, 0};
        st = lfm2_model_open(mem_read, &mf, size, &(lfm2_model_params){.header_only = 1}, &m);
        CHECK(st == LFM2_E_IO && m == NULL, "header read failure: %s", lfm2_status_name(st));
        free(d);
    }
}

/* All-0xFF tensor data (NaN norms and scales): evaluation must stay defined (the Q8_0 / Q8_K
 * activation rounding once cast NaN to int8). Logits are garbage, only the status matters. */
static void test_nan_weights(void) {
    const uint32_t types[] = {KQ_Q4_0, KQ_Q4_K, KQ_F16};
    for (int i = 0; i < 3; i++) {
        spec s;
        base_e(&s, true, types[i], types[i] == KQ_Q4_K ? 256 : 0);
        size_t size;
        uint64_t data_off;
        uint8_t *d = build(&s, &size, &data_off);
        memset(d + data_off, 0xFF, size - data_off);
        memfile mf = {d, size, 0, UINT64_MAX, 0};
        lfm2_model *m = NULL;
        lfm2_context *c = NULL;
        float lg[2 * V];
        lfm2_status st = lfm2_model_open(mem_read, &mf, size, &(lfm2_model_params){0}, &m);
        if (st == LFM2_OK) st = lfm2_context_new(m, 8, &c);
        if (st == LFM2_OK) st = lfm2_eval(c, (const int32_t[]){1, V - 1}, 2, lg, 1);
        CHECK(st == LFM2_OK, "NaN weights (%s): %s", kq_get(types[i])->name, lfm2_last_error());
        lfm2_context_free(c);
        lfm2_model_free(m);
        free(d);
    }
}

static void test_args(void) {
    lfm2_model *m = (lfm2_model *)(uintptr_t)1;
    CHECK(lfm2_model_open(NULL, NULL, 0, NULL, &m) == LFM2_E_ARG && m == NULL, "NULL read");
    CHECK(lfm2_model_open(mem_read, NULL, 0, NULL, NULL) == LFM2_E_ARG, "NULL out");
    lfm2_model_free(NULL);
    /* a header-only model has no weights: no context */
    spec s;
    base(&s, false);
    size_t size;
    uint64_t data_off;
    uint8_t *d = build(&s, &size, &data_off);
    memfile mf = {d, size, 0, UINT64_MAX, 0};
    m = NULL;
    CHECK(lfm2_model_open(mem_read, &mf, size, &(lfm2_model_params){.header_only = 1}, &m) == LFM2_OK, "open");
    lfm2_context *c = (lfm2_context *)(uintptr_t)1;
    CHECK(lfm2_context_new(m, 4, &c) == LFM2_E_ARG && c == NULL, "context of a header-only model");
    CHECK(lfm2_model_n_vocab(m) == V && lfm2_model_n_ctx_train(m) == 128, "vocab %d", lfm2_model_n_vocab(m));
    lfm2_model_free(m);
    free(d);
}

/* Small valid models for the fuzzer's corpus. */
static int write_seeds(const char *dir) {
    static const struct {
        const char *name;
        bool moe;
        uint32_t type;
        int64_t ffw;
    } seeds[] = {
        {"gen-moe-f32", true, KQ_F32, 0},       {"gen-dense-f32", false, KQ_F32, 0},
        {"gen-moe-q4_0", true, KQ_Q4_0, 0},     {"gen-dense-q8_0", false, KQ_Q8_0, 0},
        {"gen-moe-f16", true, KQ_F16, 0},       {"gen-dense-bf16", false, KQ_BF16, 0},
        {"gen-moe-q5_1", true, KQ_Q5_1, 0},     {"gen-dense-q4_1", false, KQ_Q4_1, 0},
        {"gen-dense-q5_0", false, KQ_Q5_0, 0},  {"gen-moe-iq4_nl", true, KQ_IQ4_NL, 0},
        {"gen-moe-q4_k", true, KQ_Q4_K, 256},   {"gen-dense-q6_k", false, KQ_Q6_K, 256},
        {"gen-dense-q5_k", false, KQ_Q5_K, 256}, {"gen-moe-iq4_xs", true, KQ_IQ4_XS, 256},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++) {
        spec s;
        base_e(&s, seeds[i].moe, seeds[i].type, seeds[i].ffw);
        size_t size;
        uint64_t data_off;
        uint8_t *d = build(&s, &size, &data_off);
        char path[512];
        snprintf(path, sizeof path, "%s/%s.gguf", dir, seeds[i].name);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(d, 1, size, f) != size) {
            fprintf(stderr, "cannot write %s\n", path);
            if (f) fclose(f);
            free(d);
            return 1;
        }
        fclose(f);
        /* each seed must load and evaluate */
        memfile mf = {d, size, 0, UINT64_MAX, 0};
        lfm2_model *m = NULL;
        lfm2_context *c = NULL;
        lfm2_status st = lfm2_model_open(mem_read, &mf, size, &(lfm2_model_params){0}, &m);
        if (st == LFM2_OK) st = lfm2_context_new(m, 8, &c);
        if (st == LFM2_OK) st = lfm2_eval(c, (const int32_t[]){1, 2}, 2, NULL, 0);
        CHECK(st == LFM2_OK, "seed %s: %s", seeds[i].name, lfm2_last_error());
        lfm2_context_free(c);
        lfm2_model_free(m);
        free(d);
    }
    return check_report("model seeds");
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--write-seeds")) return write_seeds(argv[2]);
    test_valid();
    test_arch();
    test_keys();
    test_hparams();
    test_tensors();
    test_output_used();
    test_reads();
    test_nan_weights();
    test_args();
    CHECK(bad_reads == 0, "%d reads outside the file", bad_reads);
    return check_report("model");
}
