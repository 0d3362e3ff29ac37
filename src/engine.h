/* engine.h: the model and context objects behind the public API, shared by api.c and forward.c. */
#ifndef LFM2_ENGINE_H
#define LFM2_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "gguf.h"
#include "lfm2.h"
#include "model.h"
#include "threads.h"
#include "tokenizer.h"
#include "weights.h"

/* Conv state is snapshotted every LFM2_CKPT_EVERY positions so that truncating the state to n
 * tokens only re-evaluates the tokens since the last snapshot at or before n. */
#define LFM2_CKPT_EVERY 64
/* Tokens evaluated per forward chunk: bounds the scratch memory of a long prefill. */
#define LFM2_MAX_BATCH 128

struct lfm2_model {
    gguf_file *gguf;
    lfm2_graph g;
    lfm2_weights *w; /* NULL for a model opened for its header only */
    lfm2_tokenizer *tok; /* NULL if the file has no tokenizer metadata */
    bool reference;
    lfm2_pool *pool; /* the threads of every context of this model */
    char *info_json;
};

struct lfm2_context {
    lfm2_model *m;
    uint32_t n_ctx, n_past;
    int64_t reserved;     /* bytes accounted against the model's memory budget */
    int32_t *tokens;      /* [n_ctx] the tokens the state holds */
    float **k, **v;       /* per attention layer: [n_ctx][n_head_kv * head_dim] */
    float *conv;          /* [n_conv_layers][l_cache - 1][n_embd]: the last inputs of each conv */
    float *ckpt;          /* [n_ctx / EVERY + 1][conv floats]: conv state after k * EVERY tokens */
    size_t conv_floats;   /* floats of the whole conv state (one snapshot) */
    /* scratch for one chunk of LFM2_MAX_BATCH tokens */
    float *x, *h, *delta, *big, *big2, *att, *q, *kk, *vv, *bxs, *probs, *wsel, *moe_out;
    float *row;           /* [n_threads][widest row]: dequantised weight rows (reference path) */
    size_t row_stride;
    float *scores;        /* [n_threads][query heads per KV head][n_ctx] attention scores */
    int32_t *sel;         /* chosen experts per token */
    void *xq;             /* activations rounded for the fast path */
    void *prep_raw;       /* activations prepared for the kernels (kq_prep), grown as needed */
    size_t prep_cap;
};

/* Evaluate n tokens (n <= LFM2_MAX_BATCH) at positions n_past.., writing logits when logits is
 * non-NULL: n rows, or only the last token's row if last_only. Inputs are already validated. */
lfm2_status lfm2_forward_chunk(struct lfm2_context *c, const int32_t *tokens, uint32_t n, float *logits,
                               bool last_only);

#endif
