/* fuzz_model.c: libFuzzer target for the GGUF reader, the model loader and the forward pass
 * (tests/fuzz/run.sh builds and runs it).
 *
 * Each input is opened twice: as a whole file of exactly its bytes, and as the first bytes of a
 * larger virtual file (the input followed by 0xFF bytes up to +16 MiB), so that inputs holding
 * only a header (some seeds are fixture headers) still reach the tensor table checks and the success
 * path. (0xFF, not zeros: a header that runs into the tail fails fast on a huge count instead of
 * parsing megabytes of empty strings.) The read callback aborts if asked for bytes outside the file.
 *
 * When gguf_open succeeds, every invariant the loader relies on is checked and every getter is
 * exercised; then lfm2_model_open runs with header_only = 1 (and the info JSON is built), and with
 * header_only = 0; a model that loads gets a small context (n_ctx <= 8) and evaluates 2 tokens,
 * truncates to 1 and evaluates one more, so the forward pass runs on arbitrary weights (NaN/Inf are
 * fine: only crashes, UB and leaks matter). The full open and evaluation run on the exact-size file
 * only (on the padded one they would mostly evaluate megabytes of 0xFF bytes, slowly).
 *
 * Bounds: every resident tensor lies inside the file (<= input + 16 MiB), so the weights are
 * bounded; the context's scratch is estimated from the hyperparameters and models that would need
 * more than CTX_LIMIT bytes are not evaluated (a fuzzed feed_forward_length can ask for terabytes). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "gguf.h"
#include "lfm2.h"
#include "quant.h"

#define VIRTUAL_TAIL ((uint64_t)16 << 20)
#define CTX_LIMIT ((double)(256u << 20))
#define FUZZ_N_CTX 8u

typedef struct {
    const uint8_t *data;
    uint64_t n;    /* bytes backed by the input */
    uint64_t size; /* declared file size (>= n; the rest reads as 0xFF) */
} vfile;

static int vread(void *ctx, uint64_t off, size_t len, void *dst) {
    const vfile *v = ctx;
    if (len == 0 || off >= v->size || len > v->size - off) {
        fprintf(stderr, "read outside the file: offset %llu len %zu size %llu\n", (unsigned long long)off, len,
                (unsigned long long)v->size);
        abort();
    }
    uint64_t have = off < v->n ? v->n - off : 0;
    if (have > len) have = len;
    if (have) memcpy(dst, v->data + off, (size_t)have);
    memset((uint8_t *)dst + have, 0xFF, len - (size_t)have);
    return 0;
}

#define REQUIRE(c)                                                            \
    do {                                                                      \
        if (!(c)) {                                                           \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                          \
        }                                                                     \
    } while (0)

static void exercise(const gguf_file *f) {
    REQUIRE(f->version == 2 || f->version == 3);
    REQUIRE(f->alignment && !(f->alignment & (f->alignment - 1)));
    REQUIRE(f->data_offset % f->alignment == 0 && f->data_offset <= f->file_size);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        /* keys may hold NULs, so a lookup by C string can find another key or none */
        const gguf_kv *fk = gguf_find_kv(f, kv->key);
        REQUIRE(fk == NULL || !strcmp(fk->key, kv->key));
        if (fk == kv) REQUIRE(i == (uint64_t)(fk - f->kv));
        uint32_t u;
        float x;
        bool b;
        const gguf_str *s;
        int32_t *a = NULL;
        uint64_t n;
        (void)gguf_get_u32(f, kv->key, &u);
        (void)gguf_get_f32(f, kv->key, &x);
        (void)gguf_get_bool(f, kv->key, &b);
        if (gguf_get_str(f, kv->key, &s) == LFM2_OK) REQUIRE(s->ptr[s->len] == '\0');
        if (gguf_get_arr_i32(f, kv->key, &a, &n) == LFM2_OK) {
            REQUIRE(a != NULL && n == kv->v.arr.n);
            free(a);
        }
        if (gguf_get_arr_str(f, kv->key, &s, &n) == LFM2_OK) {
            volatile size_t sum = 0;
            for (uint64_t j = 0; j < n; j++) {
                REQUIRE(s[j].ptr[s[j].len] == '\0');
                if (s[j].len) sum += (uint8_t)s[j].ptr[0] + (uint8_t)s[j].ptr[s[j].len - 1];
            }
            (void)sum;
        }
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        REQUIRE(t->n_dims >= 1 && t->n_dims <= 4);
        const kq_traits *tr = kq_get(t->type);
        REQUIRE(tr != NULL);
        int64_t nel = 1;
        for (int d = 0; d < 4; d++) {
            REQUIRE(t->ne[d] >= 1);
            REQUIRE(!__builtin_mul_overflow(nel, t->ne[d], &nel));
        }
        REQUIRE(t->ne[0] % tr->blck == 0);
        REQUIRE(t->nbytes == (uint64_t)(nel / tr->blck) * tr->bytes);
        REQUIRE(t->offset >= f->data_offset && (t->offset - f->data_offset) % f->alignment == 0);
        REQUIRE(t->offset <= f->file_size && t->nbytes <= f->file_size - t->offset);
        const gguf_tensor *ft = gguf_find_tensor(f, t->name);
        REQUIRE(ft == NULL || !strcmp(ft->name, t->name));
    }
    (void)gguf_find_kv(f, "general.architecture");
    (void)gguf_find_tensor(f, "token_embd.weight");
}

static void require_failed(lfm2_status s) {
    REQUIRE(lfm2_last_error()[0] != '\0');
    REQUIRE(s > LFM2_OK && s < LFM2_STATUS_COUNT);
}

/* Bytes lfm2_context_new would allocate for n_ctx tokens (api.c), as a double so nothing wraps. */
static double context_bytes(const lfm2_hparams *hp, double n_ctx) {
    const double B = LFM2_MAX_BATCH, E = hp->n_embd, S = hp->l_cache ? hp->l_cache - 1 : 0;
    const double F = hp->n_ff > hp->n_ff_exp ? hp->n_ff : hp->n_ff_exp;
    const double X = hp->n_expert, K = hp->n_expert_used;
    double kv = 0, kvw = 0, n_conv = 0;
    for (uint32_t i = 0; i < hp->n_layer; i++) {
        double w = (double)hp->n_head_kv[i] * hp->head_dim;
        kv += 2 * w * n_ctx;
        if (w > kvw) kvw = w;
        n_conv += hp->n_head_kv[i] == 0;
    }
    double big = 3 * E > F ? 3 * E : F;
    double floats = kv + n_conv * S * E * (2 + n_ctx / LFM2_CKPT_EVERY) + B * E * 6 + B * big + B * F +
                    2 * B * kvw + (S + B) * E + B * X + 2 * B * K + B * K * E + big + E + n_ctx * 2;
    return 4 * floats + 4 * B * big + 4 * B * E;
}

/* A fully loaded model: a small context, 2 tokens, truncate, 1 more token. */
static void evaluate(lfm2_model *m, const uint8_t *data, size_t size) {
    const lfm2_hparams *hp = &m->g.hp;
    REQUIRE(m->w != NULL);
    REQUIRE(lfm2_model_n_vocab(m) >= 1 && (uint32_t)lfm2_model_n_vocab(m) == hp->n_vocab);
    uint32_t n_ctx = hp->n_ctx_train < FUZZ_N_CTX ? hp->n_ctx_train : FUZZ_N_CTX;
    if (context_bytes(hp, n_ctx) > CTX_LIMIT) return;
    lfm2_context *c = NULL;
    lfm2_status s = lfm2_context_new(m, n_ctx, &c);
    if (s != LFM2_OK) {
        REQUIRE(c == NULL);
        require_failed(s);
        return;
    }
    REQUIRE(lfm2_context_n_ctx(c) == n_ctx && lfm2_context_n_past(c) == 0);
    const int32_t V = (int32_t)hp->n_vocab;
    /* tokens taken from the input's last bytes, so the fuzzer can steer them */
    uint32_t a = size >= 2 ? (uint32_t)data[size - 1] | (uint32_t)data[size - 2] << 8 : 1;
    int32_t tok[2] = {(int32_t)(a % (uint32_t)V), V - 1};
    float *logits = malloc((size_t)V * 2 * sizeof *logits);
    REQUIRE(logits != NULL);
    const uint32_t n = n_ctx >= 2 ? 2 : 1;
    s = lfm2_eval(c, tok, n, logits, 1);
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "eval %u tokens (reference %d): %s %s\n", n, m->reference,
                                        lfm2_status_name(s), lfm2_last_error());
    if (s == LFM2_OK) {
        REQUIRE(lfm2_context_n_past(c) == n);
        volatile float sink = 0;
        for (int32_t i = 0; i < V * (int32_t)n; i++) sink += logits[i];
        (void)sink;
        s = lfm2_truncate(c, n - 1);
        REQUIRE(s == LFM2_OK && lfm2_context_n_past(c) == n - 1);
        s = lfm2_eval(c, tok + 1, 1, logits, 0);
        REQUIRE(s == LFM2_OK && lfm2_context_n_past(c) == n);
        int32_t bad = V;
        REQUIRE(lfm2_eval(c, &bad, 1, logits, 0) == LFM2_E_TOKEN);
    } else {
        require_failed(s);
    }
    free(logits);
    lfm2_context_free(c);
}

/* The model loader over an opened file: header only, then (when asked) the full load. */
static void run_model(const uint8_t *data, size_t size, vfile *v, int full) {
    lfm2_model_params p = {.reference = (int)(size & 1), .header_only = 1};
    lfm2_model *m = NULL;
    lfm2_status s = lfm2_model_open(vread, v, v->size, &p, &m);
    if (s != LFM2_OK) {
        REQUIRE(m == NULL);
        require_failed(s);
        return;
    }
    REQUIRE(m != NULL && m->w == NULL);
    const char *json = lfm2_model_info_json(m);
    if (json) REQUIRE(json[0] == '{');
    (void)lfm2_model_n_ctx_train(m);
    lfm2_context *c = (lfm2_context *)(uintptr_t)1;
    REQUIRE(lfm2_context_new(m, 1, &c) == LFM2_E_ARG && c == NULL); /* no weights */
    lfm2_model_free(m);
    if (!full) return;

    /* reference path for odd sizes (trailing bytes are allowed, so the fuzzer reaches both) */
    p.header_only = 0;
    m = NULL;
    s = lfm2_model_open(vread, v, v->size, &p, &m);
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "full open: %s %s\n", lfm2_status_name(s), lfm2_last_error());
    if (s != LFM2_OK) {
        REQUIRE(m == NULL);
        require_failed(s);
        return;
    }
    evaluate(m, data, size);
    lfm2_model_free(m);
}

/* Returns whether gguf_open succeeded. */
static bool run(const uint8_t *data, size_t size, uint64_t file_size, int full) {
    vfile v = {data, size, file_size};
    gguf_file *f = NULL;
    lfm2_status s = gguf_open(vread, &v, file_size, &f);
    if (s != LFM2_OK) {
        REQUIRE(f == NULL);
        require_failed(s);
        return false;
    }
    REQUIRE(f != NULL && f->file_size == file_size);
    exercise(f);
    gguf_close(f);
    run_model(data, size, &v, full);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    run(data, size, size, 1);
    run(data, size, size + VIRTUAL_TAIL, 0);
    return 0;
}
