/* weights.c: dense tensors resident; expert slabs (gate, up and down rows of one expert back to
 * back) either all read at open (no budget) or held in a cache of equal-size slots that grows
 * while the budget allows and then evicts: LFU with ageing by default (MoE routing has popular
 * experts), LRU on request. A slab in use is pinned; the forward pass releases it after use.
 * So that reads overlap with compute, a slab can also be held ahead of use: a slot is taken for it
 * at once and its read queued, to be done piece by piece (weights_read_step) while the pool's
 * workers compute; acquiring it finishes whatever is left. Held and queued slots are not evicted
 * unless a plain miss finds nothing else. Every call comes from the evaluating thread: no locks. */
#include "weights.h"

#include <stdbool.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "matmul.h"
#include "quant.h"
#include "status.h"

typedef struct {
    uint8_t *buf;
    int64_t key;       /* layer * n_expert + expert, or -1 when free */
    uint64_t last_use; /* tick of the last acquire */
    uint32_t uses;     /* acquires, halved now and then (ageing) */
    uint32_t pins;
    size_t done;       /* bytes of the slab read so far; slab_bytes once it is all there */
    uint64_t queued;   /* order of the hold that queued its read: reads go oldest first */
    bool held;         /* wanted by a coming acquire (weights_hold) */
    bool fresh;        /* read for a hold and not yet acquired: that acquire is the miss */
} slot;

/* One read callback moves at most this much while the workers compute: the caller checks between
 * pieces whether they are done, and starts the next job if so. */
#define READ_PIECE ((size_t)1 << 20)

struct lfm2_weights {
    const lfm2_graph *g;
    lfm2_read_fn read;
    void *ctx;
    void **dense; /* every dense buffer, to free */
    uint32_t n_dense;
    uint64_t dense_bytes, reserved, budget;
    int policy;
    uint8_t *scratch;   /* kq_pack's: 8 rows of the widest packed matrix */
    bool preloaded;     /* every slab read at open: nothing is ever evicted */
    size_t slab_bytes;  /* the largest expert slab of any layer: the slot size */
    int32_t *slot_of;   /* [n_layer * n_expert]: slot index or -1 */
    slot *slots;
    uint32_t n_slots;
    uint64_t tick, n_queued;
    lfm2_stats st;
};

static double seconds(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

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

/* Bytes of one expert's share of an expert tensor [cols, rows, n_expert]. */
static size_t expert_part(const lfm2_tensor *t) {
    return kq_row_bytes(t->info->type, t->info->ne[0]) * (size_t)t->info->ne[1];
}

/* Rows of t (a matrix, or one expert's share of an expert tensor) at data, packed if t is. */
static void pack_rows(lfm2_weights *w, const lfm2_tensor *t, void *data, int64_t rows) {
    if (t->ktype & KQ_PACKED) kq_pack(t->info->type, data, t->info->ne[0], rows, w->scratch);
}

static lfm2_status load_dense(lfm2_weights *w, lfm2_tensor *t) {
    if (!t->info) return LFM2_OK;
    void *buf = malloc(t->info->nbytes ? t->info->nbytes : 1);
    if (!buf) return lfm2_fail(LFM2_E_NOMEM, "out of memory for tensor %s (%llu bytes)", t->info->name,
                               (unsigned long long)t->info->nbytes);
    w->dense[w->n_dense++] = buf;
    t->data = buf;
    lfm2_status s = read_bytes(w, t->info->offset, t->info->nbytes, buf, t->info->name);
    if (s == LFM2_OK) pack_rows(w, t, buf, t->info->ne[1]);
    return s;
}

static size_t slab_size(const lfm2_layer *l) {
    return expert_part(&l->gate_exps) + expert_part(&l->up_exps) + expert_part(&l->down_exps);
}

/* Bytes [from, to) of the slab of expert e of layer il (its gate, up and down parts back to back)
 * into slab + from. */
static lfm2_status read_slab_range(lfm2_weights *w, uint32_t il, uint32_t e, uint8_t *slab, size_t from, size_t to) {
    const lfm2_layer *l = &w->g->layers[il];
    const lfm2_tensor *parts[3] = {&l->gate_exps, &l->up_exps, &l->down_exps};
    size_t at = 0;
    for (int i = 0; i < 3 && from < to; i++) {
        const size_t n = expert_part(parts[i]);
        if (from < at + n) {
            const size_t len = (to < at + n ? to : at + n) - from;
            lfm2_status s = read_bytes(w, parts[i]->info->offset + (uint64_t)e * n + (from - at), len, slab + from,
                                       parts[i]->info->name);
            if (s != LFM2_OK) return s;
            from += len;
        }
        at += n;
    }
    return LFM2_OK;
}

/* Bytes [from, to) of a slab have just been read: pack the groups of 8 rows that they complete, while
 * they are still in cache (packed parts only; a part's last rows % 8 stay plain). */
static void pack_slab(lfm2_weights *w, uint32_t il, uint8_t *slab, size_t from, size_t to) {
    const lfm2_layer *l = &w->g->layers[il];
    const lfm2_tensor *parts[3] = {&l->gate_exps, &l->up_exps, &l->down_exps};
    size_t at = 0;
    for (int i = 0; i < 3; at += expert_part(parts[i]), i++) {
        if (!(parts[i]->ktype & KQ_PACKED)) continue;
        const size_t gb = 8 * kq_row_bytes(parts[i]->info->type, parts[i]->info->ne[0]);
        const size_t groups = (size_t)parts[i]->info->ne[1] / 8;
        const size_t lo = from > at ? (from - at) / gb : 0, hi = to > at ? (to - at) / gb : 0;
        const size_t end = hi < groups ? hi : groups;
        if (end > lo) pack_rows(w, parts[i], slab + at + lo * gb, (int64_t)(8 * (end - lo)));
    }
}

static uint64_t min_budget(const lfm2_weights *w, uint64_t reserved) {
    return w->dense_bytes + reserved + (w->preloaded ? w->n_slots : 1) * (uint64_t)w->slab_bytes;
}

static lfm2_status budget_error(const lfm2_weights *w, uint64_t reserved) {
    return lfm2_fail(LFM2_E_BUDGET,
                     "memory budget %llu bytes is too small: dense weights %llu + contexts %llu + one expert %llu "
                     "need at least %llu bytes",
                     (unsigned long long)w->budget, (unsigned long long)w->dense_bytes, (unsigned long long)reserved,
                     (unsigned long long)w->slab_bytes, (unsigned long long)min_budget(w, reserved));
}

static lfm2_status add_slot(lfm2_weights *w) {
    uint8_t *buf = malloc(w->slab_bytes);
    if (!buf) return lfm2_fail(LFM2_E_NOMEM, "out of memory for an expert slab (%zu bytes)", w->slab_bytes);
    w->slots[w->n_slots++] = (slot){.buf = buf, .key = -1};
    return LFM2_OK;
}

/* A layer's resident tensors (absent ones have info NULL). */
#define N_DENSE 16
static void dense_of(lfm2_layer *l, lfm2_tensor *d[N_DENSE]) {
    lfm2_tensor *all[N_DENSE] = {&l->attn_norm, &l->ffn_norm, &l->conv, &l->in_proj, &l->out_proj, &l->wq, &l->wk, &l->wv,
                                 &l->wo, &l->q_norm, &l->k_norm, &l->ffn_gate, &l->ffn_up, &l->ffn_down, &l->router, &l->router_bias};
    memcpy(d, all, sizeof all);
}

/* Mark matrix t packed if its type has a packed layout, growing kq_pack's scratch to fit it. */
static void mark_packed(lfm2_tensor *t, size_t *scratch) {
    if (!t->info || !kq_packed(t->info->type)) return;
    t->ktype = kq_packed(t->info->type);
    const size_t need = kq_pack_scratch(t->info->type, t->info->ne[0]);
    if (need > *scratch) *scratch = need;
}

lfm2_status weights_open(lfm2_graph *g, lfm2_read_fn read, void *ctx, uint64_t budget, int policy, bool pack,
                         lfm2_weights **out) {
    *out = NULL;
    const lfm2_hparams *hp = &g->hp;
    lfm2_weights *w = calloc(1, sizeof *w);
    if (!w) return lfm2_fail(LFM2_E_NOMEM, "out of memory");
    w->g = g, w->read = read, w->ctx = ctx, w->budget = budget, w->policy = policy;
    const size_t n_keys = (size_t)hp->n_layer * hp->n_expert;
    w->dense = calloc(3 + (size_t)hp->n_layer * N_DENSE, sizeof *w->dense);
    w->slot_of = malloc((n_keys ? n_keys : 1) * sizeof *w->slot_of);
    w->slots = calloc(n_keys ? n_keys : 1, sizeof *w->slots);
    lfm2_status s = (w->dense && w->slot_of && w->slots) ? LFM2_OK : lfm2_fail(LFM2_E_NOMEM, "out of memory");
    for (size_t i = 0; s == LFM2_OK && i < n_keys; i++) w->slot_of[i] = -1;
    /* the dense part's size first, so a budget too small fails before anything is read */
    lfm2_tensor *top[3] = {&g->tok_embd, &g->out_norm, &g->output};
    for (int i = 0; i < 3; i++) w->dense_bytes += top[i]->info ? top[i]->info->nbytes : 0;
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        lfm2_layer *l = &g->layers[il];
        lfm2_tensor *d[N_DENSE];
        dense_of(l, d);
        for (size_t i = 0; i < N_DENSE; i++) w->dense_bytes += d[i]->info ? d[i]->info->nbytes : 0;
        if (l->moe && slab_size(l) > w->slab_bytes) w->slab_bytes = slab_size(l);
    }
    if (s == LFM2_OK && budget && budget < min_budget(w, 0)) s = budget_error(w, 0);
    /* A budget that holds the whole model (with room for contexts) changes nothing: all resident. */
    uint64_t all_slabs = 0;
    for (uint32_t il = 0; il < hp->n_layer; il++) all_slabs += g->layers[il].moe ? (uint64_t)hp->n_expert * w->slab_bytes : 0;
    w->preloaded = !budget || w->dense_bytes + all_slabs + LFM2_CONTEXT_ROOM <= budget;
    /* Which matrices are packed (everything but tok_embd, the norms, the conv kernel and the router
     * bias, which are read as rows or vectors), and kq_pack's scratch for the widest of them. Packing
     * a streamed slab as it is read costs about three of its matrix-vector passes' savings, so it pays
     * only where slabs stay long: streamed slabs are packed when the cache holds at least half of them
     * (32-expert Q4_0, 2 threads, packed vs plain slabs: 3.5 GB (71 % of them) +13 % decode with a
     * skewed router, -1 % with uniform routing; 2 GB (37 %) -21 %, 1 GB -23 %). */
    const uint64_t room = budget > w->dense_bytes ? budget - w->dense_bytes : 0; /* contexts are small beside it */
    const bool pack_slabs = w->preloaded || (w->slab_bytes && 2 * (room / w->slab_bytes) * w->slab_bytes >= all_slabs);
    size_t scratch = 0;
    for (uint32_t il = 0; pack && il < hp->n_layer; il++) {
        lfm2_layer *l = &g->layers[il];
        lfm2_tensor *mats[] = {&l->in_proj, &l->out_proj, &l->wq, &l->wk, &l->wv, &l->wo, &l->ffn_gate, &l->ffn_up,
                               &l->ffn_down, &l->router}, *exps[] = {&l->gate_exps, &l->up_exps, &l->down_exps};
        for (size_t i = 0; i < sizeof mats / sizeof *mats; i++) mark_packed(mats[i], &scratch);
        for (size_t i = 0; pack_slabs && i < sizeof exps / sizeof *exps; i++) mark_packed(exps[i], &scratch);
    }
    if (pack) mark_packed(&g->output, &scratch);
    if (s == LFM2_OK && scratch && !(w->scratch = malloc(scratch))) s = lfm2_fail(LFM2_E_NOMEM, "out of memory");
    for (int i = 0; s == LFM2_OK && i < 3; i++) s = load_dense(w, top[i]);
    for (uint32_t il = 0; s == LFM2_OK && il < hp->n_layer; il++) {
        lfm2_tensor *d[N_DENSE];
        dense_of(&g->layers[il], d);
        for (size_t i = 0; s == LFM2_OK && i < N_DENSE; i++) s = load_dense(w, d[i]);
    }
    for (uint32_t il = 0; s == LFM2_OK && w->preloaded && il < hp->n_layer; il++) {
        for (uint32_t e = 0; s == LFM2_OK && g->layers[il].moe && e < hp->n_expert; e++) {
            s = add_slot(w);
            if (s == LFM2_OK) s = read_slab_range(w, il, e, w->slots[w->n_slots - 1].buf, 0, slab_size(&g->layers[il]));
            if (s == LFM2_OK) {
                pack_slab(w, il, w->slots[w->n_slots - 1].buf, 0, slab_size(&g->layers[il]));
                w->slots[w->n_slots - 1].done = w->slab_bytes;
                w->slots[w->n_slots - 1].key = (int64_t)il * hp->n_expert + e;
                w->slot_of[(size_t)il * hp->n_expert + e] = (int32_t)(w->n_slots - 1);
            }
        }
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
    for (uint32_t i = 0; i < w->n_slots; i++) free(w->slots[i].buf);
    free(w->dense);
    free(w->scratch);
    free(w->slot_of);
    free(w->slots);
    free(w);
}

lfm2_status weights_reserve(lfm2_weights *w, int64_t bytes) {
    const uint64_t after = (uint64_t)((int64_t)w->reserved + bytes);
    if (bytes > 0 && w->budget && w->budget < min_budget(w, after)) return budget_error(w, after);
    w->reserved = after;
    return LFM2_OK;
}

/* The slot to reuse: unpinned and not being read; unheld if any is (holds only when `any`); then
 * least frequently used (LFU: ties by age) or least recently used. */
static int64_t victim(const lfm2_weights *w, bool any) {
    int64_t best = -1;
    for (uint32_t i = 0; i < w->n_slots; i++) {
        const slot *s = &w->slots[i];
        if (s->pins || (s->key >= 0 && s->done < w->slab_bytes) || (s->held && !any)) continue;
        if (s->key < 0) return i;
        if (best < 0) { best = i; continue; }
        const slot *b = &w->slots[best];
        const bool better = b->held != s->held ? b->held
            : w->policy == LFM2_CACHE_LRU ? s->last_use < b->last_use
            : s->uses < b->uses || (s->uses == b->uses && s->last_use < b->last_use);
        if (better) best = i;
    }
    return best;
}

/* Forget what slot sl holds (its buffer stays for the next slab). */
static void empty_slot(lfm2_weights *w, slot *sl) {
    if (sl->key >= 0) w->slot_of[sl->key] = -1;
    *sl = (slot){.buf = sl->buf, .key = -1};
}

/* An empty slot: a new one while the budget allows, else a victim's (-1: none can go). */
static int64_t take_slot(lfm2_weights *w, bool any) {
    const uint64_t used = w->dense_bytes + w->reserved + (uint64_t)(w->n_slots + 1) * w->slab_bytes;
    int64_t v = -1;
    if ((!w->budget || used <= w->budget) && add_slot(w) == LFM2_OK) v = w->n_slots - 1;
    if (v < 0) v = victim(w, any);
    if (v < 0) return -1;
    if (w->slots[v].key >= 0) w->st.expert_evictions++;
    empty_slot(w, &w->slots[v]);
    return v;
}

static size_t slab_of_key(const lfm2_weights *w, int64_t key) {
    return slab_size(&w->g->layers[key / w->g->hp.n_expert]);
}

/* Read the rest of slot v's slab, or (piece) at most READ_PIECE of it. On failure the slot is
 * emptied: the acquire then reads the slab itself and reports the error. */
static lfm2_status read_more(lfm2_weights *w, uint32_t v, bool piece, bool wait) {
    slot *sl = &w->slots[v];
    const uint32_t X = w->g->hp.n_expert;
    const size_t size = slab_of_key(w, sl->key);
    const size_t to = piece && size - sl->done > READ_PIECE ? sl->done + READ_PIECE : size;
    const double t0 = seconds();
    lfm2_status s = read_slab_range(w, (uint32_t)(sl->key / X), (uint32_t)(sl->key % X), sl->buf, sl->done, to);
    const double dt = seconds() - t0;
    w->st.read_seconds += dt;
    if (wait) w->st.read_wait_seconds += dt;
    if (s != LFM2_OK) {
        empty_slot(w, sl);
        return s;
    }
    w->st.bytes_read += (double)(to - sl->done);
    pack_slab(w, (uint32_t)(sl->key / X), sl->buf, sl->done, to);
    /* a done slab counts as full-size, whatever its layer's size: the slot is then ready */
    sl->done = to == size ? w->slab_bytes : to;
    return LFM2_OK;
}

bool weights_hold(lfm2_weights *w, uint32_t il, uint32_t e, bool may_read) {
    const size_t key = (size_t)il * w->g->hp.n_expert + e;
    int32_t si = w->slot_of[key];
    if (si < 0 && may_read && !w->preloaded) {
        const int64_t v = take_slot(w, false);
        if (v < 0) return false;
        si = (int32_t)v;
        /* last_use 0 and no uses: unused (a wrong guess), it is the first slab to go once unheld */
        w->slots[si] = (slot){.buf = w->slots[si].buf, .key = (int64_t)key, .queued = ++w->n_queued, .fresh = true};
        w->slot_of[key] = si;
    }
    if (si < 0) return false;
    w->slots[si].held = true;
    return true;
}

void weights_unhold(lfm2_weights *w, uint32_t il) {
    const uint32_t X = w->g->hp.n_expert;
    for (uint32_t e = 0; e < X; e++) {
        const int32_t si = w->slot_of[(size_t)il * X + e];
        if (si < 0) continue;
        slot *sl = &w->slots[si];
        sl->held = false;
        if (sl->done < w->slab_bytes) empty_slot(w, sl); /* read ahead, not needed after all: stop reading it */
    }
}

/* Read a piece of the oldest queued slab (at most a few hundred slots to look through). */
static bool read_next(lfm2_weights *w, bool wait) {
    int64_t v = -1;
    for (uint32_t i = 0; i < w->n_slots; i++) {
        const slot *s = &w->slots[i];
        if (s->key >= 0 && s->done < w->slab_bytes && (v < 0 || s->queued < w->slots[v].queued)) v = i;
    }
    if (v >= 0) read_more(w, (uint32_t)v, true, wait);
    return v >= 0;
}

bool weights_read_step(lfm2_weights *w) { return read_next(w, false); }

lfm2_status weights_expert(lfm2_weights *w, uint32_t il, uint32_t e, lfm2_expert *out) {
    const lfm2_layer *l = &w->g->layers[il];
    const uint32_t X = w->g->hp.n_expert;
    if (!l->moe || e >= X) return lfm2_fail(LFM2_E_ARG, "no expert %u in layer %u", e, il);
    const size_t key = (size_t)il * X + e;
    int32_t si = w->slot_of[key];
    w->tick++;
    if (si >= 0 && w->slots[si].done < w->slab_bytes) {
        lfm2_status s = read_more(w, (uint32_t)si, false, true); /* queued, not read yet: wait for it */
        if (s != LFM2_OK) return s;
    }
    if (si >= 0 && !w->slots[si].fresh) {
        w->st.expert_hits++;
    } else {
        w->st.expert_misses++;
        if (si < 0) {
            int64_t v = take_slot(w, true);
            if (v < 0) { /* every other slot is being read ahead: finish those reads so that one can go */
                while (read_next(w, true)) {}
                v = take_slot(w, true);
            }
            if (v < 0) return lfm2_fail(LFM2_E_BUDGET, "every cached expert is in use: the budget holds too few");
            si = (int32_t)v;
            w->slots[si].key = (int64_t)key;
            w->slot_of[key] = si;
            lfm2_status s = read_more(w, (uint32_t)si, false, true);
            if (s != LFM2_OK) return s;
        }
        /* ageing: halve every count now and then, so yesterday's favourites can leave */
        if ((uint64_t)w->st.expert_misses % (8u * w->n_slots + 64) == 0)
            for (uint32_t i = 0; i < w->n_slots; i++) w->slots[i].uses >>= 1;
    }
    slot *sl = &w->slots[si];
    sl->fresh = sl->held = false;
    sl->pins++;
    sl->uses++;
    sl->last_use = w->tick;
    out->gate = sl->buf;
    out->up = sl->buf + expert_part(&l->gate_exps);
    out->down = (const uint8_t *)out->up + expert_part(&l->up_exps);
    return LFM2_OK;
}

void weights_expert_release(lfm2_weights *w, uint32_t il, uint32_t e) {
    const int32_t si = w->slot_of[(size_t)il * w->g->hp.n_expert + e];
    if (si >= 0 && w->slots[si].pins) w->slots[si].pins--;
}

void weights_stats(const lfm2_weights *w, lfm2_stats *out) {
    *out = w->st;
    out->dense_bytes = (double)w->dense_bytes;
    out->expert_bytes = (double)w->n_slots * (double)w->slab_bytes;
    out->context_bytes = (double)w->reserved;
    out->budget = (double)w->budget;
    out->expert_slots = w->n_slots;
}
