/* weights.c: reads dense tensors into memory; keeps expert slabs (one buffer per layer and expert:
 * gate, up and down rows back to back) behind weights_expert(). For now every slab is read at
 * open; callers must still acquire and release them, so a bounded cache can replace this. */
#include "weights.h"

#include <stdlib.h>
#include <string.h>

#include "quant.h"
#include "status.h"

struct lfm2_weights {
    const lfm2_graph *g;
    lfm2_read_fn read;
    void *ctx;
    void **dense;        /* every dense buffer, to free */
    uint32_t n_dense;
    uint8_t **slabs;     /* [n_layer * n_expert], NULL for dense layers */
    uint64_t resident;
};

/* Reads are cut into pieces so that no single callback moves more than a JS typed array likes. */
static lfm2_status read_bytes(const lfm2_weights *w, uint64_t off, size_t len, void *dst, const char *what) {
    const size_t piece = (size_t)1 << 26;
    for (size_t done = 0; done < len;) {
        size_t n = len - done < piece ? len - done : piece;
        if (w->read(w->ctx, off + done, n, (uint8_t *)dst + done) != 0)
            return lfm2_fail(LFM2_E_IO, "reading %s failed at byte %llu", what, (unsigned long long)(off + done));
        done += n;
    }
    return LFM2_OK;
}

static lfm2_status load_dense(lfm2_weights *w, lfm2_tensor *t) {
    if (!t->info) return LFM2_OK;
    void *buf = malloc(t->info->nbytes ? t->info->nbytes : 1);
    if (!buf) return lfm2_fail(LFM2_E_NOMEM, "out of memory for tensor %s (%llu bytes)", t->info->name,
                               (unsigned long long)t->info->nbytes);
    w->dense[w->n_dense++] = buf;
    w->resident += t->info->nbytes;
    t->data = buf;
    return read_bytes(w, t->info->offset, t->info->nbytes, buf, t->info->name);
}

/* Bytes of one expert's share of an expert tensor [cols, rows, n_expert]. */
static size_t expert_bytes(const lfm2_tensor *t) {
    return kq_row_bytes(t->info->type, t->info->ne[0]) * (size_t)t->info->ne[1];
}

static lfm2_status load_slab(lfm2_weights *w, const lfm2_layer *l, uint32_t il, uint32_t e) {
    const lfm2_tensor *parts[3] = {&l->gate_exps, &l->up_exps, &l->down_exps};
    size_t total = 0;
    for (int i = 0; i < 3; i++) total += expert_bytes(parts[i]);
    uint8_t *slab = malloc(total);
    if (!slab) return lfm2_fail(LFM2_E_NOMEM, "out of memory for expert %u of layer %u", e, il);
    w->slabs[il * w->g->hp.n_expert + e] = slab;
    w->resident += total;
    size_t at = 0;
    for (int i = 0; i < 3; i++) {
        size_t n = expert_bytes(parts[i]);
        lfm2_status s = read_bytes(w, parts[i]->info->offset + (uint64_t)e * n, n, slab + at, parts[i]->info->name);
        if (s != LFM2_OK) return s;
        at += n;
    }
    return LFM2_OK;
}

lfm2_status weights_open(lfm2_graph *g, lfm2_read_fn read, void *ctx, lfm2_weights **out) {
    *out = NULL;
    const lfm2_hparams *hp = &g->hp;
    lfm2_weights *w = calloc(1, sizeof *w);
    if (!w) return lfm2_fail(LFM2_E_NOMEM, "out of memory");
    w->g = g;
    w->read = read;
    w->ctx = ctx;
    w->dense = calloc(3 + (size_t)hp->n_layer * 16, sizeof *w->dense);
    w->slabs = calloc((size_t)hp->n_layer * (hp->n_expert ? hp->n_expert : 1), sizeof *w->slabs);
    lfm2_status s = (w->dense && w->slabs) ? LFM2_OK : lfm2_fail(LFM2_E_NOMEM, "out of memory");
    lfm2_tensor *top[3] = {&g->tok_embd, &g->out_norm, &g->output};
    for (int i = 0; s == LFM2_OK && i < 3; i++) s = load_dense(w, top[i]);
    for (uint32_t il = 0; s == LFM2_OK && il < hp->n_layer; il++) {
        lfm2_layer *l = &g->layers[il];
        lfm2_tensor *dense[] = {&l->attn_norm, &l->ffn_norm, &l->conv, &l->in_proj, &l->out_proj,
                                &l->wq, &l->wk, &l->wv, &l->wo, &l->q_norm, &l->k_norm,
                                &l->ffn_gate, &l->ffn_up, &l->ffn_down, &l->router, &l->router_bias};
        for (size_t i = 0; s == LFM2_OK && i < sizeof dense / sizeof *dense; i++) s = load_dense(w, dense[i]);
        for (uint32_t e = 0; s == LFM2_OK && l->moe && e < hp->n_expert; e++) s = load_slab(w, l, il, e);
    }
    if (s != LFM2_OK) {
        weights_free(w);
        return s;
    }
    *out = w;
    return LFM2_OK;
}

void weights_free(lfm2_weights *w) {
    if (!w) return;
    for (uint32_t i = 0; i < w->n_dense; i++) free(w->dense[i]);
    if (w->slabs)
        for (size_t i = 0; i < (size_t)w->g->hp.n_layer * w->g->hp.n_expert; i++) free(w->slabs[i]);
    free(w->dense);
    free(w->slabs);
    free(w);
}

lfm2_status weights_expert(lfm2_weights *w, uint32_t il, uint32_t e, lfm2_expert *out) {
    const lfm2_layer *l = &w->g->layers[il];
    if (!l->moe || e >= w->g->hp.n_expert)
        return lfm2_fail(LFM2_E_ARG, "no expert %u in layer %u", e, il);
    const uint8_t *slab = w->slabs[il * w->g->hp.n_expert + e];
    out->gate = slab;
    out->up = slab + expert_bytes(&l->gate_exps);
    out->down = (const uint8_t *)out->up + expert_bytes(&l->up_exps);
    return LFM2_OK;
}

void weights_expert_release(lfm2_weights *w, uint32_t il, uint32_t e) {
    (void)w, (void)il, (void)e; /* every slab is resident for now */
}

uint64_t weights_resident_bytes(const lfm2_weights *w) { return w->resident; }
