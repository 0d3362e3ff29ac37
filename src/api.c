/* api.c: the public model and context calls (lfm2.h) over gguf, model, weights and forward. */
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "quant.h"
#include "status.h"

/* JS writes lfm2_model_params and reads lfm2_stats by offset (web/engine.js): keep them fixed. */
_Static_assert(offsetof(lfm2_model_params, memory_budget) == 16 && sizeof(lfm2_model_params) == 24, "params layout");
_Static_assert(sizeof(lfm2_stats) == 11 * sizeof(double), "stats layout");

lfm2_status lfm2_model_open(lfm2_read_fn read, void *ctx, uint64_t size, const lfm2_model_params *params,
                            lfm2_model **out) {
    lfm2_clear_error();
    if (!out) return lfm2_fail(LFM2_E_ARG, "lfm2_model_open: out is NULL");
    *out = NULL;
    if (!read) return lfm2_fail(LFM2_E_ARG, "lfm2_model_open: no read callback");
    const lfm2_model_params p = params ? *params : (lfm2_model_params){0};
    lfm2_model *m = calloc(1, sizeof *m);
    if (!m) return lfm2_fail(LFM2_E_NOMEM, "out of memory");
    m->reference = p.reference;
    lfm2_status s = gguf_open(read, ctx, size, &m->gguf);
    if (s == LFM2_OK) s = lfm2_graph_bind(m->gguf, &m->g);
    /* The tokenizer is optional (logits need none), but a present one must be sound. */
    if (s == LFM2_OK && gguf_find_kv(m->gguf, "tokenizer.ggml.tokens")) s = lfm2_tokenizer_from_gguf(m->gguf, &m->tok);
    if (s == LFM2_OK && m->tok && lfm2_tokenizer_n_vocab(m->tok) > m->g.hp.n_vocab)
        s = lfm2_fail(LFM2_E_HPARAM, "the tokenizer has %u tokens but token_embd.weight only %u rows",
                      lfm2_tokenizer_n_vocab(m->tok), m->g.hp.n_vocab);
    if (s == LFM2_OK && !p.header_only) s = weights_open(&m->g, read, ctx, p.memory_budget, p.cache_policy, !p.reference, &m->w);
    if (s == LFM2_OK && !p.header_only) s = pool_create(p.n_threads > 1 ? p.n_threads : 1, &m->pool);
    if (s != LFM2_OK) {
        lfm2_model_free(m);
        return s;
    }
    *out = m;
    return LFM2_OK;
}

void lfm2_model_free(lfm2_model *m) {
    if (!m) return;
    pool_free(m->pool);
    weights_free(m->w);
    lfm2_tokenizer_free(m->tok);
    gguf_close(m->gguf);
    free(m->info_json);
    free(m);
}

void lfm2_model_stats(const lfm2_model *m, lfm2_stats *out) {
    memset(out, 0, sizeof *out);
    if (m && m->w) weights_stats(m->w, out);
}

int32_t lfm2_model_n_vocab(const lfm2_model *m) { return (int32_t)m->g.hp.n_vocab; }
uint32_t lfm2_model_n_ctx_train(const lfm2_model *m) { return m->g.hp.n_ctx_train; }

/* ---- contexts ---- */

static size_t max3(size_t a, size_t b, size_t c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

void lfm2_context_free(lfm2_context *c) {
    if (!c) return;
    weights_reserve(c->m->w, -c->reserved);
    for (uint32_t i = 0; c->k && i < c->m->g.hp.n_layer; i++) free(c->k[i]), free(c->v[i]);
    free(c->k), free(c->v);
    float *bufs[] = {c->conv, c->ckpt, c->x, c->h, c->delta, c->big, c->big2, c->att, c->q, c->kk, c->vv,
                     c->bxs, c->probs, c->wsel, c->moe_out, c->row, c->scores};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    free(c->sel), free(c->xq), free(c->prep_raw), free(c->tokens);
    free(c);
}

lfm2_status lfm2_context_new(lfm2_model *m, uint32_t n_ctx, lfm2_context **out) {
    lfm2_clear_error();
    if (!out) return lfm2_fail(LFM2_E_ARG, "lfm2_context_new: out is NULL");
    *out = NULL;
    if (!m || !m->w) return lfm2_fail(LFM2_E_ARG, "lfm2_context_new: model has no weights loaded");
    const lfm2_hparams *hp = &m->g.hp;
    if (n_ctx == 0) n_ctx = hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096;
    if (n_ctx > hp->n_ctx_train)
        return lfm2_fail(LFM2_E_ARG, "context length %u exceeds the model's %u", n_ctx, hp->n_ctx_train);
    lfm2_context *c = calloc(1, sizeof *c);
    if (!c) return lfm2_fail(LFM2_E_NOMEM, "out of memory");
    c->m = m;
    c->n_ctx = n_ctx;
    const size_t B = LFM2_MAX_BATCH, E = hp->n_embd, S = hp->l_cache - 1;
    const size_t F = hp->n_ff > hp->n_ff_exp ? hp->n_ff : hp->n_ff_exp;
    const size_t X = hp->n_expert, K = hp->n_expert_used;
    size_t kvw = 0, n_conv = 0, group = 1; /* group: most query heads sharing a KV head */
    for (uint32_t i = 0; i < hp->n_layer; i++) {
        size_t w = (size_t)hp->n_head_kv[i] * hp->head_dim;
        if (w > kvw) kvw = w;
        n_conv += hp->n_head_kv[i] == 0;
        if (hp->n_head_kv[i] && hp->n_head / hp->n_head_kv[i] > group) group = hp->n_head / hp->n_head_kv[i];
    }
    /* Every size below, summed in double: dimensions from the file (an n_ff no tensor checks in an
     * all-MoE model, a huge n_embd) must not wrap a 32-bit size_t product into a small buffer. */
    const double big = 3.0 * E > (double)F ? 3.0 * E : (double)F + 1;
    const double need = 4.0 * ((double)n_conv * S * E * (n_ctx / LFM2_CKPT_EVERY + 2) +
                               2.0 * hp->n_layer * kvw * n_ctx + (double)B * (6.0 * E + 2 * big + F + 2.0 * kvw + X +
                               2.0 * K + (double)K * E) + (double)(S + B) * E + (double)pool_size(m->pool) * (big + E + (double)group * n_ctx) + n_ctx + 1024);
    if (need > (double)(SIZE_MAX / 4)) {
        free(c);
        return lfm2_fail(LFM2_E_NOMEM, "a context of %u tokens needs %.0f bytes", n_ctx, need);
    }
    lfm2_status rs = weights_reserve(m->w, (int64_t)need);
    if (rs != LFM2_OK) {
        free(c);
        return rs;
    }
    c->reserved = (int64_t)need;
    c->conv_floats = n_conv * S * E;
    bool ok = (c->k = calloc(hp->n_layer, sizeof *c->k)) && (c->v = calloc(hp->n_layer, sizeof *c->v));
    for (uint32_t i = 0, a = 0; ok && i < hp->n_layer; i++) {
        if (!hp->n_head_kv[i]) continue;
        size_t w = (size_t)hp->n_head_kv[i] * hp->head_dim * n_ctx;
        ok = (c->k[a] = malloc(w * sizeof(float))) && (c->v[a] = malloc(w * sizeof(float)));
        a++;
    }
#define ALLOC(p, n) (ok = ok && ((p) = calloc((n) + 1, sizeof *(p))) != NULL) /* +1: never calloc(0) */
    ALLOC(c->tokens, n_ctx);
    ALLOC(c->conv, c->conv_floats);
    ALLOC(c->ckpt, (n_ctx / LFM2_CKPT_EVERY + 1) * c->conv_floats);
    ALLOC(c->x, B * E);
    ALLOC(c->h, B * E);
    ALLOC(c->delta, B * E);
    ALLOC(c->big, B * max3(3 * E, F, 1));
    ALLOC(c->big2, B * F);
    ALLOC(c->att, B * E);
    ALLOC(c->q, B * E);
    ALLOC(c->kk, B * kvw);
    ALLOC(c->vv, B * kvw);
    ALLOC(c->bxs, (S + B) * E);
    ALLOC(c->probs, B * X);
    ALLOC(c->wsel, B * K);
    ALLOC(c->sel, B * K);
    ALLOC(c->moe_out, B * K * E);
    const size_t nth = (size_t)pool_size(m->pool);
    c->row_stride = max3(E, F, 1);
    ALLOC(c->row, nth * c->row_stride);
    ALLOC(c->scores, nth * group * n_ctx);
    /* F32 activations are the widest rounding (4 bytes a value); block headers add less. */
    c->xq = ok ? malloc(4 * B * max3(3 * E, F, E) + 4096) : NULL;
    ok = ok && c->xq;
#undef ALLOC
    if (!ok) {
        lfm2_context_free(c);
        return lfm2_fail(LFM2_E_NOMEM, "out of memory for a context of %u tokens", n_ctx);
    }
    *out = c;
    return LFM2_OK;
}

uint32_t lfm2_context_n_ctx(const lfm2_context *c) { return c->n_ctx; }
uint32_t lfm2_context_n_past(const lfm2_context *c) { return c->n_past; }

/* Evaluate tokens in chunks; rows of logits as asked. */
static lfm2_status run(lfm2_context *c, const int32_t *tokens, uint32_t n, float *logits, int all_logits) {
    const size_t V = c->m->g.hp.n_vocab;
    for (uint32_t i = 0; i < n; i += LFM2_MAX_BATCH) {
        uint32_t k = n - i < LFM2_MAX_BATCH ? n - i : LFM2_MAX_BATCH;
        float *rows = NULL;
        bool last_only = false;
        if (logits && all_logits) rows = logits + (size_t)i * V;
        else if (logits && i + k == n) rows = logits, last_only = true;
        lfm2_status s = lfm2_forward_chunk(c, tokens + i, k, rows, last_only);
        if (s != LFM2_OK) return s;
    }
    return LFM2_OK;
}

/* Put the state back to its first n tokens: restore the conv snapshot at or before n and
 * re-evaluate the tokens after it (the KV cache beyond n is simply overwritten later). */
static lfm2_status rewind_to(lfm2_context *c, uint32_t n) {
    const uint32_t base = n / LFM2_CKPT_EVERY * LFM2_CKPT_EVERY;
    memcpy(c->conv, c->ckpt + (size_t)(base / LFM2_CKPT_EVERY) * c->conv_floats, c->conv_floats * sizeof(float));
    c->n_past = base;
    return run(c, c->tokens + base, n - base, NULL, 0);
}

lfm2_status lfm2_eval(lfm2_context *c, const int32_t *tokens, uint32_t n, float *logits, int all_logits) {
    lfm2_clear_error();
    if (!c || (n && !tokens)) return lfm2_fail(LFM2_E_ARG, "lfm2_eval: bad arguments");
    const int32_t V = (int32_t)c->m->g.hp.n_vocab;
    for (uint32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return lfm2_fail(LFM2_E_TOKEN, "token %d at index %u is outside the vocabulary (0..%d)", tokens[i], i, V - 1);
    if (n > c->n_ctx - c->n_past)
        return lfm2_fail(LFM2_E_CONTEXT_FULL, "context full: %u tokens held + %u new > context length %u",
                         c->n_past, n, c->n_ctx);
    const uint32_t start = c->n_past;
    lfm2_status s = run(c, tokens, n, logits, all_logits);
    if (s != LFM2_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", lfm2_last_error());
        rewind_to(c, start); /* leave the state as it was before the call */
        lfm2_fail(s, "%s", msg);
    }
    return s;
}

lfm2_status lfm2_truncate(lfm2_context *c, uint32_t n) {
    lfm2_clear_error();
    if (!c) return lfm2_fail(LFM2_E_ARG, "lfm2_truncate: no context");
    if (n > c->n_past) return lfm2_fail(LFM2_E_ARG, "cannot truncate to %u tokens: the state holds %u", n, c->n_past);
    if (n == c->n_past) return LFM2_OK;
    return rewind_to(c, n);
}
