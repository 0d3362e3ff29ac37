/* model.c: reads LFM2 hyperparameters from GGUF metadata and binds the tensors of arch lfm2 and
 * lfm2moe, rejecting any file whose keys or tensors contradict the architecture. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"
#include "status.h"

#define TRY(expr)                               \
    do {                                        \
        lfm2_status s_ = (expr);                \
        if (s_ != LFM2_OK) return s_;           \
    } while (0)

static lfm2_status key_u32(const gguf_file *f, const char *arch, const char *key, uint32_t *out) {
    char name[128];
    snprintf(name, sizeof name, "%s.%s", arch, key);
    return gguf_get_u32(f, name, out);
}

static lfm2_status key_f32(const gguf_file *f, const char *arch, const char *key, float *out) {
    char name[128];
    snprintf(name, sizeof name, "%s.%s", arch, key);
    return gguf_get_f32(f, name, out);
}

/* head_count_kv: an array with one entry per layer (0 = short-conv), or one number for all. */
static lfm2_status read_head_count_kv(const gguf_file *f, const char *arch, lfm2_hparams *hp) {
    char name[128];
    snprintf(name, sizeof name, "%s.attention.head_count_kv", arch);
    const gguf_kv *kv = gguf_find_kv(f, name);
    if (kv && kv->type == GGUF_ARRAY) {
        int32_t *v;
        uint64_t n;
        TRY(gguf_get_arr_i32(f, name, &v, &n));
        lfm2_status s = LFM2_OK;
        if (n != hp->n_layer)
            s = lfm2_fail(LFM2_E_HPARAM, "%s has %llu entries but block_count is %u", name,
                          (unsigned long long)n, hp->n_layer);
        for (uint64_t i = 0; s == LFM2_OK && i < n; i++) {
            if (v[i] < 0 || (uint32_t)v[i] > hp->n_head || (v[i] > 0 && hp->n_head % (uint32_t)v[i]))
                s = lfm2_fail(LFM2_E_HPARAM, "%s[%llu] = %d does not divide head_count %u", name,
                              (unsigned long long)i, v[i], hp->n_head);
            else
                hp->n_head_kv[i] = (uint32_t)v[i];
        }
        free(v);
        return s;
    }
    uint32_t n_kv;
    TRY(gguf_get_u32(f, name, &n_kv));
    if (n_kv == 0 || n_kv > hp->n_head || hp->n_head % n_kv)
        return lfm2_fail(LFM2_E_HPARAM, "%s = %u does not divide head_count %u", name, n_kv, hp->n_head);
    for (uint32_t i = 0; i < hp->n_layer; i++) hp->n_head_kv[i] = n_kv;
    return LFM2_OK;
}

static lfm2_status read_hparams(const gguf_file *f, const char *arch, lfm2_hparams *hp) {
    TRY(key_u32(f, arch, "block_count", &hp->n_layer));
    if (hp->n_layer == 0 || hp->n_layer > LFM2_MAX_LAYERS)
        return lfm2_fail(LFM2_E_HPARAM, "%s.block_count = %u is outside 1..%d", arch, hp->n_layer,
                         LFM2_MAX_LAYERS);
    TRY(key_u32(f, arch, "context_length", &hp->n_ctx_train));
    TRY(key_u32(f, arch, "embedding_length", &hp->n_embd));
    TRY(key_u32(f, arch, "feed_forward_length", &hp->n_ff));
    TRY(key_u32(f, arch, "attention.head_count", &hp->n_head));
    TRY(key_f32(f, arch, "rope.freq_base", &hp->rope_theta));
    TRY(key_f32(f, arch, "attention.layer_norm_rms_epsilon", &hp->eps));
    TRY(key_u32(f, arch, "shortconv.l_cache", &hp->l_cache));
    if (hp->n_embd == 0 || hp->n_head == 0 || hp->n_embd % hp->n_head || (hp->n_embd / hp->n_head) % 2)
        return lfm2_fail(LFM2_E_HPARAM, "embedding_length %u is not head_count %u x an even head size",
                         hp->n_embd, hp->n_head);
    hp->head_dim = hp->n_embd / hp->n_head;
    if (hp->l_cache < 1 || hp->l_cache > 16)
        return lfm2_fail(LFM2_E_HPARAM, "%s.shortconv.l_cache = %u is outside 1..16", arch, hp->l_cache);
    if (!(hp->rope_theta > 0) || !isfinite(hp->rope_theta))
        return lfm2_fail(LFM2_E_HPARAM, "%s.rope.freq_base = %g is not a positive number", arch, hp->rope_theta);
    if (!(hp->eps > 0) || !(hp->eps < 1))
        return lfm2_fail(LFM2_E_HPARAM, "%s.attention.layer_norm_rms_epsilon = %g is outside (0, 1)", arch, hp->eps);
    if (hp->n_ctx_train == 0) return lfm2_fail(LFM2_E_HPARAM, "%s.context_length is 0", arch);
    TRY(read_head_count_kv(f, arch, hp));

    if (hp->arch == ARCH_LFM2MOE) {
        TRY(key_u32(f, arch, "expert_count", &hp->n_expert));
        TRY(key_u32(f, arch, "expert_used_count", &hp->n_expert_used));
        TRY(key_u32(f, arch, "expert_feed_forward_length", &hp->n_ff_exp));
        TRY(key_u32(f, arch, "leading_dense_block_count", &hp->n_dense_lead));
        if (hp->n_expert == 0 || hp->n_expert > LFM2_MAX_EXPERTS || hp->n_expert_used == 0 || hp->n_expert_used > hp->n_expert)
            return lfm2_fail(LFM2_E_HPARAM, "expert_used_count %u / expert_count %u is not 1 <= used <= count <= %d",
                             hp->n_expert_used, hp->n_expert, LFM2_MAX_EXPERTS);
        if (hp->n_dense_lead > hp->n_layer)
            return lfm2_fail(LFM2_E_HPARAM, "leading_dense_block_count %u exceeds block_count %u",
                             hp->n_dense_lead, hp->n_layer);
        uint32_t gating = 2;
        char name[128];
        snprintf(name, sizeof name, "%s.expert_gating_func", arch);
        if (gguf_find_kv(f, name)) TRY(gguf_get_u32(f, name, &gating));
        if (gating != 2)
            return lfm2_fail(LFM2_E_HPARAM, "%s = %u: only sigmoid gating (2) is supported", name, gating);
    } else {
        hp->n_dense_lead = hp->n_layer;
    }
    return LFM2_OK;
}

/* Bind tensor `name` with the expected shape (ne[i] == 0 means "any"). Optional tensors may be
 * absent; `f32_only` is for norms, conv kernels and biases, which llama.cpp keeps in F32. */
static lfm2_status bind(const gguf_file *f, lfm2_tensor *t, const char *name, int n_dims,
                        const int64_t *want, bool optional, bool f32_only) {
    const gguf_tensor *info = gguf_find_tensor(f, name);
    t->info = info;
    t->data = NULL;
    t->ktype = info ? info->type : 0;
    if (!info) {
        if (optional) return LFM2_OK;
        return lfm2_fail(LFM2_E_TENSOR_MISSING, "tensor %s is missing", name);
    }
    bool ok = true; /* unused trailing dims are 1, so an expert tensor of one expert still fits */
    for (int i = 0; i < 4; i++) ok = ok && info->ne[i] == (i < n_dims ? want[i] : 1);
    if (!ok) {
        char got[96], exp[96];
        int p = 0, q = 0;
        for (int i = 0; i < (int)info->n_dims; i++)
            p += snprintf(got + p, sizeof got - (size_t)p, "%s%lld", i ? ", " : "", (long long)info->ne[i]);
        for (int i = 0; i < n_dims; i++)
            q += snprintf(exp + q, sizeof exp - (size_t)q, "%s%lld", i ? ", " : "", (long long)want[i]);
        return lfm2_fail(LFM2_E_TENSOR_SHAPE, "tensor %s has shape [%s], expected [%s]", name, got, exp);
    }
    if (f32_only && info->type != KQ_F32)
        return lfm2_fail(LFM2_E_TENSOR_TYPE, "tensor %s is %s, expected F32", name,
                         kq_get(info->type) ? kq_get(info->type)->name : "?");
    if (!kq_get(info->type))
        return lfm2_fail(LFM2_E_TENSOR_TYPE, "tensor %s has unsupported type %u", name, info->type);
    return LFM2_OK;
}

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define BIND(t, n_dims, shape, optional, f32_only, ...)                                   \
    do {                                                                                  \
        snprintf(name, sizeof name, __VA_ARGS__);                                         \
        TRY(bind(f, (t), name, (n_dims), shape, (optional), (f32_only)));                 \
    } while (0)

static lfm2_status bind_layer(const gguf_file *f, const lfm2_hparams *hp, uint32_t il, lfm2_layer *l) {
    char name[96];
    const int64_t E = hp->n_embd, hd = hp->head_dim;
    l->n_head_kv = hp->n_head_kv[il];
    l->attn = l->n_head_kv > 0;
    l->moe = hp->arch == ARCH_LFM2MOE && il >= hp->n_dense_lead;
    BIND(&l->attn_norm, 1, SHAPE(E), false, true, "blk.%u.attn_norm.weight", il);
    BIND(&l->ffn_norm, 1, SHAPE(E), false, true, "blk.%u.ffn_norm.weight", il);
    if (l->attn) {
        const int64_t kv = (int64_t)l->n_head_kv * hd;
        BIND(&l->wq, 2, SHAPE(E, E), false, false, "blk.%u.attn_q.weight", il);
        BIND(&l->wk, 2, SHAPE(E, kv), false, false, "blk.%u.attn_k.weight", il);
        BIND(&l->wv, 2, SHAPE(E, kv), false, false, "blk.%u.attn_v.weight", il);
        BIND(&l->wo, 2, SHAPE(E, E), false, false, "blk.%u.attn_output.weight", il);
        BIND(&l->q_norm, 1, SHAPE(hd), false, true, "blk.%u.attn_q_norm.weight", il);
        BIND(&l->k_norm, 1, SHAPE(hd), false, true, "blk.%u.attn_k_norm.weight", il);
    } else {
        BIND(&l->conv, 2, SHAPE(hp->l_cache, E), false, true, "blk.%u.shortconv.conv.weight", il);
        BIND(&l->in_proj, 2, SHAPE(E, 3 * E), false, false, "blk.%u.shortconv.in_proj.weight", il);
        BIND(&l->out_proj, 2, SHAPE(E, E), false, false, "blk.%u.shortconv.out_proj.weight", il);
    }
    if (l->moe) {
        const int64_t X = hp->n_expert, F = hp->n_ff_exp;
        BIND(&l->router, 2, SHAPE(E, X), false, false, "blk.%u.ffn_gate_inp.weight", il);
        BIND(&l->router_bias, 1, SHAPE(X), false, true, "blk.%u.exp_probs_b.bias", il);
        BIND(&l->gate_exps, 3, SHAPE(E, F, X), false, false, "blk.%u.ffn_gate_exps.weight", il);
        BIND(&l->up_exps, 3, SHAPE(E, F, X), false, false, "blk.%u.ffn_up_exps.weight", il);
        BIND(&l->down_exps, 3, SHAPE(F, E, X), false, false, "blk.%u.ffn_down_exps.weight", il);
    } else {
        const int64_t F = hp->n_ff;
        BIND(&l->ffn_gate, 2, SHAPE(E, F), false, false, "blk.%u.ffn_gate.weight", il);
        BIND(&l->ffn_up, 2, SHAPE(E, F), false, false, "blk.%u.ffn_up.weight", il);
        BIND(&l->ffn_down, 2, SHAPE(F, E), false, false, "blk.%u.ffn_down.weight", il);
    }
    return LFM2_OK;
}

lfm2_status lfm2_graph_bind(const gguf_file *f, lfm2_graph *g) {
    memset(g, 0, sizeof *g);
    const gguf_str *arch;
    TRY(gguf_get_str(f, "general.architecture", &arch));
    lfm2_hparams *hp = &g->hp;
    if (strcmp(arch->ptr, "lfm2") == 0)
        hp->arch = ARCH_LFM2;
    else if (strcmp(arch->ptr, "lfm2moe") == 0)
        hp->arch = ARCH_LFM2MOE;
    else
        return lfm2_fail(LFM2_E_ARCH, "architecture '%.64s' is not supported (lfm2, lfm2moe)", arch->ptr);
    TRY(read_hparams(f, arch->ptr, hp));

    /* The vocabulary size comes from the embedding matrix; a vocab_size key must agree with it. */
    const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    if (!emb) return lfm2_fail(LFM2_E_TENSOR_MISSING, "tensor token_embd.weight is missing");
    if (emb->ne[0] != hp->n_embd)
        return lfm2_fail(LFM2_E_HPARAM, "embedding_length %u contradicts token_embd.weight width %lld",
                         hp->n_embd, (long long)emb->ne[0]);
    if (emb->ne[1] < 1 || emb->ne[1] > INT32_MAX)
        return lfm2_fail(LFM2_E_HPARAM, "token_embd.weight has %lld rows", (long long)emb->ne[1]);
    hp->n_vocab = (uint32_t)emb->ne[1];
    char name[96];
    snprintf(name, sizeof name, "%s.vocab_size", arch->ptr);
    if (gguf_find_kv(f, name)) {
        uint32_t nv;
        TRY(gguf_get_u32(f, name, &nv));
        if (nv != hp->n_vocab)
            return lfm2_fail(LFM2_E_HPARAM, "%s = %u contradicts token_embd.weight's %u rows", name, nv, hp->n_vocab);
    }
    const int64_t E = hp->n_embd, V = hp->n_vocab;
    BIND(&g->tok_embd, 2, SHAPE(E, V), false, false, "token_embd.weight");
    BIND(&g->out_norm, 1, SHAPE(E), false, true, "token_embd_norm.weight");
    BIND(&g->output, 2, SHAPE(E, V), true, false, "output.weight");
    for (uint32_t il = 0; il < hp->n_layer; il++) TRY(bind_layer(f, hp, il, &g->layers[il]));
    return LFM2_OK;
}
