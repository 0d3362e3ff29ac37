/* forward.c: the LFM2 / LFM2-MoE forward pass over a chunk of tokens, read top to bottom.
 * One code path serves prefill (many tokens) and decode (one): every token's arithmetic is the same
 * whatever the chunk size, so a batch and one-token steps give identical logits. */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attn.h"
#include "engine.h"
#include "matmul.h"
#include "quant.h"
#include "status.h"

typedef struct {
    struct lfm2_context *c;
    uint32_t type;
    const void *w;
    int64_t k, rows, n;
    const float *x;
    float *y;
    /* A SwiGLU pair (w2 non-NULL): w is the gate and w2 (type2, same shape) the up projection into y2;
     * each share then leaves silu(gate) * up in y for its rows, so that the products run in parallel
     * and both matrices take one rounding of x and one wake of the workers. */
    uint32_t type2;
    const void *w2;
    float *y2;
    void *prep;          /* x prepared for w's kernels (kq_prep), or NULL; w2 shares it if of w's type */
    atomic_llong tnext;  /* first token of the next slice to round */
    atomic_llong tdone;  /* tokens rounded */
    atomic_llong next;   /* first row of the next share to take */
} matmul_job;

static float silu(float a) { return a / (1.0f + expf(-a)); }

/* g = silu(g) * u on rows [r0, r1) of n tokens of `rows` values. */
static void silu_mul(float *g, const float *u, int64_t n, int64_t rows, int64_t r0, int64_t r1) {
    for (int64_t t = 0; t < n; t++)
        for (int64_t r = r0; r < r1; r++) g[t * rows + r] = silu(g[t * rows + r]) * u[t * rows + r];
}

static void matmul_rows(const matmul_job *j, uint32_t type, const void *w, const void *prep, float *y, int64_t r0,
                        int64_t r1, int ith) {
    struct lfm2_context *c = j->c;
    if (c->m->reference)
        kq_matmul_ref(type, w, j->k, r0, r1, j->x, j->n, y, j->rows, c->row + (size_t)ith * c->row_stride);
    else
        kq_matmul_prep(type, w, j->k, r0, r1, c->xq, prep, j->n, y, j->rows);
}

/* First the threads round (and prepare) the activations, a few tokens at a time, and wait until all
 * are; then each takes shares of the rows until none is left, smaller ones as fewer remain, so that
 * they finish together and a thread busy elsewhere (the caller reading) leaves its part to the others.
 * Every row is computed the same way whoever computes it, in whatever share, so any thread count gives
 * the same bits. */
static void matmul_part(void *arg, int ith, int nth) {
    matmul_job *j = arg;
    struct lfm2_context *c = j->c;
    if (!c->m->reference) {
        const size_t rb = kq_act_bytes(j->type, j->k, 1);
        for (int64_t t0; (t0 = atomic_fetch_add_explicit(&j->tnext, 4, memory_order_relaxed)) < j->n;) {
            const int64_t t1 = t0 + 4 < j->n ? t0 + 4 : j->n;
            kq_round_acts(j->type, j->x + t0 * j->k, j->k, t1 - t0, (uint8_t *)c->xq + (size_t)t0 * rb);
            if (j->prep) kq_prep(j->type, c->xq, j->k, j->n, t0, t1, j->prep);
            atomic_fetch_add_explicit(&j->tdone, t1 - t0, memory_order_release);
        }
        while (atomic_load_explicit(&j->tdone, memory_order_acquire) < j->n) {}
    }
    for (;;) {
        int64_t r0 = atomic_load_explicit(&j->next, memory_order_relaxed), r1;
        do { /* a share: an nth of what is left, halved, in multiples of 8 rows (the SIMD row groups), >= 32 */
            if (r0 >= j->rows) return;
            const int64_t want = ((j->rows - r0) / (2 * nth) + 7) & ~(int64_t)7;
            r1 = r0 + (want > 32 ? want : 32);
            if (r1 > j->rows) r1 = j->rows;
        } while (!atomic_compare_exchange_weak_explicit(&j->next, &r0, r1, memory_order_relaxed, memory_order_relaxed));
        matmul_rows(j, j->type, j->w, j->prep, j->y, r0, r1, ith);
        if (!j->w2) continue;
        matmul_rows(j, j->type2, j->w2, (j->type2 & ~KQ_PACKED) == (j->type & ~KQ_PACKED) ? j->prep : NULL, j->y2, r0,
                    r1, ith);
        silu_mul(j->y, j->y2, j->n, j->rows, r0, r1);
    }
}

/* The buffer for x prepared for a type's kernels (kq_prep), grown as needed; NULL when the type has
 * none, when memory is short (the kernels then prepare it per call) or on the reference path. */
static void *prep_buffer(struct lfm2_context *c, uint32_t type, int64_t k, int64_t n) {
    const size_t need = c->m->reference ? 0 : kq_prep_bytes(type, k, n);
    if (!need) return NULL;
    if (need > c->prep_cap) {
        void *p = realloc(c->prep_raw, need + 16);
        if (!p) return NULL;
        c->prep_raw = p;
        c->prep_cap = need;
    }
    return (void *)(((uintptr_t)c->prep_raw + 15) & ~(uintptr_t)15);
}

static void matmul_run(struct lfm2_context *c, matmul_job *j) {
    lfm2_pool *pool = c->m->pool;
    /* a small product is not worth waking the workers */
    if (j->rows * j->k * j->n < 65536) {
        matmul_part(j, 0, 1);
        return;
    }
    pool_start(pool, matmul_part, j);
    /* Only this thread may read the model: while the workers compute, it reads the expert slabs
     * queued by weights_hold, then takes what is left of the rows. */
    while (pool_busy(pool) && weights_read_step(c->m->w)) {}
    pool_join(pool);
}

/* y[t][r] = W[r] . x[t] for all rows of a matrix with k columns. */
static void matmul(struct lfm2_context *c, uint32_t type, const void *w, int64_t k, int64_t rows,
                   const float *x, int64_t n, float *y) {
    matmul_job j = {.c = c, .type = type, .w = w, .k = k, .rows = rows, .n = n, .x = x, .y = y,
                    .prep = prep_buffer(c, type, k, n)};
    matmul_run(c, &j);
}

/* g = silu(Wg x) * (Wu x) for gate and up matrices of `rows` rows (u: scratch for Wu x). */
static void swiglu(struct lfm2_context *c, uint32_t type_g, const void *wg, uint32_t type_u, const void *wu, int64_t k,
                   int64_t rows, const float *x, int64_t n, float *g, float *u) {
    if (!c->m->reference && kq_get(type_g & ~KQ_PACKED)->vec_type != kq_get(type_u & ~KQ_PACKED)->vec_type) {
        matmul(c, type_g, wg, k, rows, x, n, g); /* the two want different roundings of x */
        matmul(c, type_u, wu, k, rows, x, n, u);
        silu_mul(g, u, n, rows, 0, rows);
        return;
    }
    matmul_job j = {.c = c, .type = type_g, .w = wg, .k = k, .rows = rows, .n = n, .x = x, .y = g,
                    .type2 = type_u, .w2 = wu, .y2 = u, .prep = prep_buffer(c, type_g, k, n)};
    matmul_run(c, &j);
}

static void matmul_t(struct lfm2_context *c, const lfm2_tensor *t, const float *x, int64_t n, float *y) {
    matmul(c, t->ktype, t->data, t->info->ne[0], t->info->ne[1], x, n, y);
}

/* out = x / sqrt(mean(x^2) + eps) * w, summing in double as ggml does. */
static void rms_norm(float *out, const float *x, const float *w, int64_t n, float eps) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)(x[i] * x[i]);
    const float scale = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int64_t i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

/* RoPE, NeoX style: pairs (i, i + hd/2), angle pos * theta^(-2i/hd) built up as ggml does. */
static void rope_neox(float *v, int64_t hd, int64_t pos, float theta_base) {
    const float step = powf(theta_base, -2.0f / (float)hd);
    float theta = (float)pos;
    for (int64_t i = 0; i < hd / 2; i++) {
        const float cs = cosf(theta), sn = sinf(theta);
        const float a = v[i], b = v[i + hd / 2];
        v[i] = a * cs - b * sn;
        v[i + hd / 2] = a * sn + b * cs;
        theta *= step;
    }
}

/* Short-conv block: [B, C, X] = in_proj h; y = C * conv(B * X); att = out_proj y. */
static void shortconv(struct lfm2_context *c, const lfm2_layer *l, uint32_t i_conv, uint32_t n, float *out) {
    const lfm2_hparams *hp = &c->m->g.hp;
    const int64_t E = hp->n_embd, L = hp->l_cache, S = L - 1;
    float *state = c->conv + i_conv * S * E;
    float *bcx = c->big, *bxs = c->bxs, *y = c->att;
    const float *kern = l->conv.data;
    matmul_t(c, &l->in_proj, c->h, n, bcx);
    /* bxs rows: the S inputs held in the state, then this chunk's B * X */
    memcpy(bxs, state, (size_t)(S * E) * sizeof *bxs);
    for (uint32_t t = 0; t < n; t++) {
        const float *b = bcx + t * 3 * E, *x = b + 2 * E;
        for (int64_t i = 0; i < E; i++) bxs[(S + t) * E + i] = b[i] * x[i];
    }
    for (uint32_t t = 0; t < n; t++) {
        const float *cc = bcx + t * 3 * E + E;
        for (int64_t i = 0; i < E; i++) {
            float s = 0;
            for (int64_t j = 0; j < L; j++) s += bxs[(t + j) * E + i] * kern[i * L + j];
            y[t * E + i] = cc[i] * s;
        }
    }
    /* snapshot the state after every LFM2_CKPT_EVERY-th position */
    for (uint32_t t = 0; t < n; t++) {
        const uint32_t done = c->n_past + t + 1;
        if (done % LFM2_CKPT_EVERY == 0)
            memcpy(c->ckpt + (done / LFM2_CKPT_EVERY) * c->conv_floats + i_conv * S * E,
                   bxs + (t + 1) * E, (size_t)(S * E) * sizeof *bxs);
    }
    memcpy(state, bxs + n * E, (size_t)(S * E) * sizeof *bxs);
    matmul_t(c, &l->out_proj, y, n, out);
}

typedef struct {
    struct lfm2_context *c;
    const lfm2_layer *l;
    const float *kc, *vc;
    uint32_t n;
} attn_job;

/* Causal softmax attention of each (token, KV head) pair with the query heads that share it;
 * thread ith takes every nth pair. */
static void attend_part(void *arg, int ith, int nth) {
    const attn_job *j = arg;
    struct lfm2_context *c = j->c;
    const lfm2_hparams *hp = &c->m->g.hp;
    const int64_t E = hp->n_embd, hd = hp->head_dim, nh = hp->n_head, nkv = j->l->n_head_kv, g = nh / nkv;
    const int64_t kvw = nkv * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    float *sc = c->scores + (size_t)ith * (size_t)g * c->n_ctx;
    for (int64_t pair = ith; pair < (int64_t)j->n * nkv; pair += nth) {
        const int64_t t = pair / nkv, kvh = pair % nkv;
        const int64_t n_keys = c->n_past + t + 1;
        kq_attn_scores(c->q + t * E + kvh * g * hd, g, j->kc + kvh * hd, (size_t)kvw, hd, n_keys, scale, sc, c->n_ctx);
        for (int64_t h = 0; h < g; h++) {
            float *s = sc + (size_t)h * c->n_ctx, mx = -INFINITY;
            for (int64_t p = 0; p < n_keys; p++) mx = s[p] > mx ? s[p] : mx;
            double sum = 0;
            for (int64_t p = 0; p < n_keys; p++) sum += (s[p] = expf(s[p] - mx));
            const float inv = (float)(1.0 / sum);
            for (int64_t p = 0; p < n_keys; p++) s[p] *= inv;
        }
        kq_attn_mix(sc, c->n_ctx, g, j->vc + kvh * hd, (size_t)kvw, hd, n_keys, c->att + t * E + kvh * g * hd);
    }
}

/* Grouped-query causal attention over the KV cache, which gets this chunk's keys and values. */
static void attention(struct lfm2_context *c, const lfm2_layer *l, float *kc, float *vc, uint32_t n, float *out) {
    const lfm2_hparams *hp = &c->m->g.hp;
    const int64_t E = hp->n_embd, hd = hp->head_dim, nh = hp->n_head, nkv = l->n_head_kv;
    const int64_t kvw = nkv * hd;
    float *q = c->q, *k = c->kk, *v = c->vv;
    matmul_t(c, &l->wq, c->h, n, q);
    matmul_t(c, &l->wk, c->h, n, k);
    matmul_t(c, &l->wv, c->h, n, v);
    for (uint32_t t = 0; t < n; t++) {
        const int64_t pos = c->n_past + t;
        for (int64_t hh = 0; hh < nh; hh++) {
            float *qh = q + t * E + hh * hd;
            rms_norm(qh, qh, l->q_norm.data, hd, hp->eps);
            rope_neox(qh, hd, pos, hp->rope_theta);
        }
        for (int64_t hh = 0; hh < nkv; hh++) {
            float *kh = k + t * kvw + hh * hd;
            rms_norm(kh, kh, l->k_norm.data, hd, hp->eps);
            rope_neox(kh, hd, pos, hp->rope_theta);
        }
        memcpy(kc + pos * kvw, k + t * kvw, (size_t)kvw * sizeof *kc);
        memcpy(vc + pos * kvw, v + t * kvw, (size_t)kvw * sizeof *vc);
    }
    attn_job j = {c, l, kc, vc, n};
    if (n * nh * (c->n_past + n) < 4096) attend_part(&j, 0, 1);
    else pool_run(c->m->pool, attend_part, &j);
    matmul_t(c, &l->wo, c->att, n, out);
}

static void dense_ffn(struct lfm2_context *c, const lfm2_layer *l, uint32_t n, float *out) {
    const int64_t F = l->ffn_gate.info->ne[1];
    float *g = c->big, *u = c->big2;
    swiglu(c, l->ffn_gate.ktype, l->ffn_gate.data, l->ffn_up.ktype, l->ffn_up.data, l->ffn_gate.info->ne[0], F, c->h, n,
           g, u);
    matmul_t(c, &l->ffn_down, g, n, out);
}

#define HAS(set, e) ((set)[(e) / 64] >> ((e) % 64) & 1)

/* The experts' share of moe_ffn: the resident experts first, then the missing ones in the order
 * their reads were queued; this thread reads them during the matmuls before (matmul()). */
static lfm2_status moe_experts(struct lfm2_context *c, const lfm2_layer *l, uint32_t il, uint32_t n,
                               const uint64_t *used, const uint64_t *resident) {
    const lfm2_hparams *hp = &c->m->g.hp;
    const int64_t E = hp->n_embd, F = hp->n_ff_exp, X = hp->n_expert, K = hp->n_expert_used;
    const uint32_t type_g = l->gate_exps.ktype, type_u = l->up_exps.ktype, type_d = l->down_exps.ktype;
    float *hx = c->att, *g = c->big, *u = c->big2, *d = c->q;
    uint32_t rows[LFM2_MAX_BATCH], slots[LFM2_MAX_BATCH];
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t e = 0; e < X; e++) {
            if (!HAS(used, e) || (int)HAS(resident, e) == pass) continue;
            uint32_t m = 0;
            for (uint32_t t = 0; t < n; t++)
                for (int64_t j = 0; j < K; j++)
                    if (c->sel[t * K + j] == e) rows[m] = t, slots[m++] = (uint32_t)j;
            lfm2_expert ex;
            lfm2_status s = weights_expert(c->m->w, il, (uint32_t)e, &ex);
            if (s != LFM2_OK) return s;
            for (uint32_t i = 0; i < m; i++) memcpy(hx + i * E, c->h + rows[i] * E, (size_t)E * sizeof *hx);
            swiglu(c, type_g, ex.gate, type_u, ex.up, E, F, hx, m, g, u);
            matmul(c, type_d, ex.down, F, E, g, m, d);
            weights_expert_release(c->m->w, il, (uint32_t)e);
            for (uint32_t i = 0; i < m; i++) {
                const float w = c->wsel[rows[i] * K + slots[i]];
                float *dst = c->moe_out + (rows[i] * K + slots[i]) * E;
                for (int64_t k = 0; k < E; k++) dst[k] = d[i * E + k] * w;
            }
        }
    }
    return LFM2_OK;
}

/* MoE: sigmoid router; the bias only chooses the experts; chosen scores renormalised. Tokens are
 * grouped by expert so that each slab is fetched once per chunk; each token's expert outputs are
 * summed in selection order, so the result does not depend on the grouping or the order. */
static lfm2_status moe_ffn(struct lfm2_context *c, const lfm2_layer *l, uint32_t il, uint32_t n, float *out) {
    const lfm2_hparams *hp = &c->m->g.hp;
    const int64_t E = hp->n_embd, X = hp->n_expert, K = hp->n_expert_used;
    float *p = c->probs;
    int32_t *sel = c->sel;
    float *wsel = c->wsel;
    const float *bias = l->router_bias.data;
    lfm2_weights *w = c->m->w;
    matmul_t(c, &l->router, c->h, n, p);
    uint64_t used[LFM2_MAX_EXPERTS / 64] = {0}, resident[LFM2_MAX_EXPERTS / 64] = {0};
    for (uint32_t t = 0; t < n; t++) {
        float *pt = p + t * X;
        for (int64_t e = 0; e < X; e++) pt[e] = 1.0f / (1.0f + expf(-pt[e]));
        double sum = 0;
        for (int64_t j = 0; j < K; j++) {
            int64_t best = -1;
            for (int64_t e = 0; e < X; e++) {
                bool taken = false;
                for (int64_t q = 0; q < j; q++) taken |= sel[t * K + q] == e;
                if (!taken && (best < 0 || pt[e] + bias[e] > pt[best] + bias[best])) best = e;
            }
            sel[t * K + j] = (int32_t)best;
            sum += pt[best];
            used[best / 64] |= 1ull << (best % 64);
        }
        const float denom = (float)sum > 6.103515625e-5f ? (float)sum : 6.103515625e-5f;
        for (int64_t j = 0; j < K; j++) wsel[t * K + j] = pt[sel[t * K + j]] / denom;
    }
    /* Hold the resident experts first, so that taking slots for the missing ones cannot evict them. */
    for (int64_t e = 0; e < X; e++)
        if (HAS(used, e) && weights_hold(w, il, (uint32_t)e, false)) resident[e / 64] |= 1ull << (e % 64);
    for (int64_t e = 0; e < X; e++)
        if (HAS(used, e) && !HAS(resident, e)) weights_hold(w, il, (uint32_t)e, true);
    lfm2_status st = moe_experts(c, l, il, n, used, resident);
    weights_unhold(w, il);
    if (st != LFM2_OK) return st;
    for (uint32_t t = 0; t < n; t++) {
        const float *src = c->moe_out + t * K * E;
        for (int64_t k = 0; k < E; k++) {
            float s = src[k];
            for (int64_t j = 1; j < K; j++) s += src[j * E + k];
            out[t * E + k] = s;
        }
    }
    return LFM2_OK;
}

lfm2_status lfm2_forward_chunk(struct lfm2_context *c, const int32_t *tokens, uint32_t n, float *logits,
                               bool last_only) {
    const lfm2_graph *g = &c->m->g;
    const lfm2_hparams *hp = &g->hp;
    const int64_t E = hp->n_embd;
    const kq_traits *et = kq_get(g->tok_embd.info->type);
    const size_t erow = kq_row_bytes(g->tok_embd.info->type, E);
    for (uint32_t t = 0; t < n; t++)
        et->dequant((const uint8_t *)g->tok_embd.data + (size_t)tokens[t] * erow, c->x + t * E, E);

    float *delta = c->delta;
    uint32_t i_attn = 0, i_conv = 0;
    uint32_t m = n; /* the tokens whose hidden states are still needed: rows [0, m) of x */
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        const lfm2_layer *l = &g->layers[il];
        for (uint32_t t = 0; t < n; t++) rms_norm(c->h + t * E, c->x + t * E, l->attn_norm.data, E, hp->eps);
        if (l->attn) {
            attention(c, l, c->k[i_attn], c->v[i_attn], n, delta);
            i_attn++;
        } else {
            shortconv(c, l, i_conv, n, delta);
            i_conv++;
        }
        for (int64_t i = 0; i < n * E; i++) c->x[i] += delta[i];
        /* The last layer's mixer fed the caches and states of every token; its FFN only serves the
         * tokens that get logits (as llama.cpp's output selection does): none, the last, or all. */
        if (il == hp->n_layer - 1) {
            const uint32_t first = !logits ? n : last_only ? n - 1 : 0;
            m = n - first;
            memmove(c->x, c->x + (size_t)first * E, (size_t)m * E * sizeof *c->x);
            if (!m) break;
        }
        for (uint32_t t = 0; t < m; t++) rms_norm(c->h + t * E, c->x + t * E, l->ffn_norm.data, E, hp->eps);
        if (l->moe) {
            lfm2_status s = moe_ffn(c, l, il, m, delta);
            if (s != LFM2_OK) return s;
        } else {
            dense_ffn(c, l, m, delta);
        }
        for (int64_t i = 0; i < m * E; i++) c->x[i] += delta[i];
    }
    for (uint32_t t = 0; t < n; t++) c->tokens[c->n_past + t] = tokens[t]; /* may alias (rewind) */
    if (logits) {
        const lfm2_tensor *out = g->output.info ? &g->output : &g->tok_embd;
        for (uint32_t t = 0; t < m; t++) rms_norm(c->h + t * E, c->x + t * E, g->out_norm.data, E, hp->eps);
        matmul_t(c, out, c->h, m, logits);
    }
    c->n_past += n;
    return LFM2_OK;
}
