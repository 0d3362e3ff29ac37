/* weights.h: the only module that knows where tensor bytes live. Dense tensors are read into
 * memory at load; an expert slab (the gate, up and down rows of one expert of one layer) is
 * obtained by (layer, expert) and released after use, so that experts need not stay resident. */
#ifndef LFM2_WEIGHTS_H
#define LFM2_WEIGHTS_H

#include <stdint.h>

#include "lfm2.h"
#include "model.h"

typedef struct lfm2_weights lfm2_weights;

typedef struct {
    const void *gate, *up, *down; /* rows of this expert: n_ff_exp x n_embd, ..., n_embd x n_ff_exp */
} lfm2_expert;

/* Read the dense tensors of g (setting each tensor's data) and prepare expert access. */
lfm2_status weights_open(lfm2_graph *g, lfm2_read_fn read, void *ctx, lfm2_weights **out);
void weights_free(lfm2_weights *w);

/* The slab of expert e of layer il; valid until weights_expert_release(w, il, e). */
lfm2_status weights_expert(lfm2_weights *w, uint32_t il, uint32_t e, lfm2_expert *out);
void weights_expert_release(lfm2_weights *w, uint32_t il, uint32_t e);

uint64_t weights_resident_bytes(const lfm2_weights *w);

#endif
