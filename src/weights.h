/* weights.h: the only module that knows where tensor bytes live. Dense tensors are read into
 * memory at open; an expert slab (the gate, up and down rows of one expert of one layer) is
 * obtained by (layer, expert) and released after use. Under a memory budget the slabs live in a
 * bounded cache: a miss reads the slab through the read callback, evicting an unused one. */
#ifndef LFM2_WEIGHTS_H
#define LFM2_WEIGHTS_H

#include <stdbool.h>
#include <stdint.h>

#include "lfm2.h"
#include "model.h"

typedef struct lfm2_weights lfm2_weights;

typedef struct {
    const void *gate, *up, *down; /* rows of this expert: n_ff_exp x n_embd, ..., n_embd x n_ff_exp */
} lfm2_expert;

/* Room kept for contexts when deciding whether a budget holds the whole model. */
#define LFM2_CONTEXT_ROOM ((uint64_t)256 << 20)

/* Read the dense tensors of g (setting each tensor's data) and prepare expert access.
 * budget 0, or one that holds the whole model and LFM2_CONTEXT_ROOM: every expert is read at
 * open. Otherwise dense tensors, the contexts' reservations and the expert cache together stay
 * within budget bytes, experts being read on demand. pack: matrices whose type has a packed layout
 * (kq_packed) are rewritten into it as they are read, and their tensors' ktype says so; streamed
 * expert slabs only when the cache holds at least half of them (the reference path reads plain
 * layouts only). */
lfm2_status weights_open(lfm2_graph *g, lfm2_read_fn read, void *ctx, uint64_t budget, int policy, bool pack,
                         lfm2_weights **out);
void weights_free(lfm2_weights *w);

/* Account (bytes > 0) or return (bytes < 0) memory a context holds; LFM2_E_BUDGET, naming the
 * minimum budget, if the dense part, the contexts and one expert slab no longer fit. */
lfm2_status weights_reserve(lfm2_weights *w, int64_t bytes);

/* The slab of expert e of layer il, pinned until weights_expert_release(w, il, e). */
lfm2_status weights_expert(lfm2_weights *w, uint32_t il, uint32_t e, lfm2_expert *out);
void weights_expert_release(lfm2_weights *w, uint32_t il, uint32_t e);

/* Reads ahead, so that the evaluating thread (the only one that may call the read callback, and
 * so these) reads while the pool computes. weights_hold: keep expert e of layer il for a coming
 * weights_expert, and, if it is missing and may_read, take a slot for it now (never beyond the
 * budget, never a held or pinned one) and queue its read. False if it is neither resident nor
 * queued: weights_expert will read it itself. weights_unhold drops the holds left on layer il
 * (slabs read ahead but not used: the first to be evicted). */
bool weights_hold(lfm2_weights *w, uint32_t il, uint32_t e, bool may_read);
void weights_unhold(lfm2_weights *w, uint32_t il);
/* Read the next piece of the queued slabs; false when none is queued. */
bool weights_read_step(lfm2_weights *w);

void weights_stats(const lfm2_weights *w, lfm2_stats *out);

#endif
