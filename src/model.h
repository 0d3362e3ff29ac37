/* model.h: LFM2 / LFM2-MoE hyperparameters and tensor binding (arch lfm2 and lfm2moe). */
#ifndef LFM2_MODEL_H
#define LFM2_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "gguf.h"
#include "lfm2.h"

#define LFM2_MAX_LAYERS 256
#define LFM2_MAX_EXPERTS 4096 /* experts per MoE layer */

enum lfm2_arch { ARCH_LFM2 = 0, ARCH_LFM2MOE = 1 };

typedef struct {
    enum lfm2_arch arch;
    uint32_t n_layer, n_ctx_train, n_embd, n_vocab;
    uint32_t n_head, head_dim, n_ff; /* n_ff: dense FFN width */
    uint32_t l_cache;                /* conv kernel length (3) */
    float rope_theta, eps;
    uint32_t n_expert, n_expert_used, n_ff_exp, n_dense_lead; /* MoE only (0 for lfm2) */
    uint32_t n_head_kv[LFM2_MAX_LAYERS]; /* 0: short-conv layer */
} lfm2_hparams;

/* A tensor as the model sees it: where it is in the file and, for dense tensors, its resident
 * bytes (set by the weights module). */
typedef struct {
    const gguf_tensor *info; /* NULL: absent (optional tensor) */
    const void *data;
    uint32_t ktype; /* the layout of the bytes for kq_matmul: info->type, or packed (set by the weights module) */
} lfm2_tensor;

typedef struct {
    bool attn, moe;
    uint32_t n_head_kv;
    lfm2_tensor attn_norm, ffn_norm;
    lfm2_tensor conv, in_proj, out_proj;                 /* short-conv layer */
    lfm2_tensor wq, wk, wv, wo, q_norm, k_norm;          /* attention layer */
    lfm2_tensor ffn_gate, ffn_up, ffn_down;              /* dense FFN */
    lfm2_tensor router, router_bias;                     /* MoE: resident */
    lfm2_tensor gate_exps, up_exps, down_exps;           /* MoE: streamed via weights.h */
} lfm2_layer;

typedef struct {
    lfm2_hparams hp;
    lfm2_tensor tok_embd, out_norm, output; /* output.info NULL: tied to tok_embd */
    lfm2_layer layers[LFM2_MAX_LAYERS];
} lfm2_graph;

/* Read the hyperparameters and bind every tensor, checking names, types and shapes against the
 * architecture. Reads nothing but the parsed header. */
lfm2_status lfm2_graph_bind(const gguf_file *f, lfm2_graph *g);

/* Whether a tensor is dense (resident) rather than an expert tensor. */
static inline bool lfm2_tensor_is_expert(const lfm2_layer *l, const lfm2_tensor *t) {
    return t == &l->gate_exps || t == &l->up_exps || t == &l->down_exps;
}

#endif
