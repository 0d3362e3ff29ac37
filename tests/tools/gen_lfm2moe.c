// Build (from the repository root; tests/tools/gen-model.sh does this and runs it):
//   gcc -O2 -std=c11 -Ikernels tests/tools/gen_lfm2moe.c kernels/*.c -lm -lpthread -o build/gen_lfm2moe
//   (-O3 -march=native is faster and writes the same bytes: -std=c11 keeps FP contraction off)
/* gen_lfm2moe.c: writes LFM2-8B-A1B-shaped GGUF v3 files (arch lfm2moe) with random weights, for
 * loading, streaming and speed tests of models too big to keep as fixtures.
 *
 * Usage: gen_lfm2moe -o FILE [--type q4_0|q8_0|q4_k_m|f16|f32] [--pure] [--experts N] [--used K]
 *          [--layers N] [--dense N] [--embd N] [--ff N] [--ff-exp N] [--vocab N] [--ctx N]
 *          [--seed S] [--skew S] [--template-from GGUF] [--name NAME] [--threads N] [--hist N]
 *          [--attn L1,L2,...|none]
 *
 * Defaults are the real model's shape: 24 layers (attention at 2, 6, 10, 14, 18, 21, the rest
 * short-conv), n_embd 2048, 32 heads / 8 KV heads of 64, dense FFN 7168 in the first 2 layers,
 * 32 experts top-4 of width 1792, vocab 65536, theta 1e6, eps 1e-5, L_cache 3, context 128000,
 * tied embeddings. --layers N keeps the attention layers of that pattern that are below N;
 * --attn overrides the pattern (0-based layer list, or none: llama.cpp cannot run a model
 * without attention layers, its KV cache is then empty).
 * --embd N sets n_head = N/64 and n_head_kv = n_head/4 and, unless given, scales the FFN widths.
 *
 * Types: matrices get --type; 1-D norms, conv kernels, router and router bias are always F32.
 * Like llama.cpp (without --pure), the tied token_embd is Q6_K in q4_0 / q4_k_m files; q4_k_m puts
 * attn_v, ffn_down and ffn_down_exps in Q6_K and everything else in Q4_K.
 *
 * Weights: uniform with std 0.02 for matrices, 1 +- 0.1 for norms, std 0.2 for conv taps, router
 * rows with std 1/sqrt(n_embd) (logits of unit-RMS inputs have std ~1, so no expert dominates).
 * Router bias is 0; --skew S sets bias_e = S * exp(-rank_e / (n_expert / 4)) with a per-layer
 * random ranking of experts, so roughly a quarter of each layer's experts take most of the
 * traffic. --hist N (default 1024, 0 = off) routes N random unit-RMS vectors through every MoE
 * layer's router and prints the expert histogram on stderr.
 *
 * Tokenizer: the special tokens, byte tokens, merged tokens, merges and chat template are copied
 * from --template-from (default tests/fixtures/models/tiny-f32.gguf: LFM2's 14 special tokens, the
 * 256 byte tokens, 754 merges) and the vocabulary is extended to --vocab with merges of random
 * pairs of existing tokens, so every merged token is the concatenation of two earlier ones.
 *
 * Output is deterministic for a given seed and arguments, whatever --threads is: every block of
 * rows of every tensor draws from its own xoshiro256+ stream seeded by (seed, tensor, block). */
#define _POSIX_C_SOURCE 200809L
#define _FILE_OFFSET_BITS 64

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "quant.h"

#define ALIGN 32
#define MAX_LAYERS 256

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("gen_lfm2moe: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory (%zu bytes)", n);
    return p;
}

static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) die("out of memory (%zu bytes)", n);
    return p;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------- random numbers */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct { uint64_t s[4]; } rng_t;

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256+: only the low 3 bits are weak, and we use bits 16..63. */
static inline uint64_t rng_next(rng_t *r) {
    uint64_t *s = r->s;
    const uint64_t out = s[0] + s[3], t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

static rng_t rng_seed(uint64_t a, uint64_t b, uint64_t c) {
    uint64_t sm = a * 0xD1B54A32D192ED03ull ^ b * 0x9E3779B97F4A7C15ull ^ c * 0xC2B2AE3D27D4EB4Full;
    rng_t r;
    for (int i = 0; i < 4; i++) r.s[i] = splitmix64(&sm);
    return r;
}

/* Uniform in [0, 1). */
static double rng_unif(rng_t *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

static double rng_normal(rng_t *r) {
    double u1 = rng_unif(r), u2 = rng_unif(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* n values uniform in [mean - a, mean + a): two per 64-bit draw (bits 40..63 and 16..39). */
static void fill_uniform(rng_t *r, float *x, int64_t n, float mean, float a) {
    const float k = 2.0f * a * 0x1.0p-24f, b = mean - a;
    int64_t i = 0;
    for (; i + 1 < n; i += 2) {
        const uint64_t v = rng_next(r);
        x[i] = (float)(v >> 40) * k + b;
        x[i + 1] = (float)((v >> 16) & 0xFFFFFF) * k + b;
    }
    if (i < n) x[i] = (float)(rng_next(r) >> 40) * k + b;
}

/* ---------------------------------------------------------------- model description */

enum kind { K_MAT, K_NORM, K_CONV, K_ROUTER, K_BIAS };

typedef struct {
    char name[96];
    int n_dims;
    int64_t ne[3];
    uint32_t type;
    enum kind kind;
    float std;   /* K_MAT / K_CONV / K_ROUTER: std of the uniform values; K_NORM: half-width */
    int layer;
    uint64_t offset, nbytes;
} tensor_t;

typedef struct {
    int n_layer, n_embd, n_head, n_head_kv, n_ff, n_dense, n_expert, n_used, n_ff_exp, n_vocab;
    int ctx, l_cache, gating;
    float theta, eps;
    int attn[MAX_LAYERS];
    const char *type_name;
    uint32_t mat_type, embd_type, down_type, attn_v_type;
    uint32_t file_type;
    bool pure;
    uint64_t seed;
    double skew;
    const char *template_from, *out, *name;
    int threads, hist;
} config_t;

static tensor_t *g_t;
static int g_nt, g_ct;

static tensor_t *add_tensor(const char *name, int n_dims, int64_t ne0, int64_t ne1, int64_t ne2,
                            uint32_t type, enum kind kind, float std, int layer) {
    if (g_nt == g_ct) {
        g_ct = g_ct ? 2 * g_ct : 256;
        g_t = xrealloc(g_t, (size_t)g_ct * sizeof *g_t);
    }
    tensor_t *t = &g_t[g_nt++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = n_dims;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->ne[2] = ne2;
    t->type = type;
    t->kind = kind;
    t->std = std;
    t->layer = layer;
    const kq_traits *tr = kq_get(type);
    if (!tr) die("%s: type %u unsupported by kernels", name, type);
    if (ne0 % tr->blck) die("%s: row of %lld is not a multiple of %s's block of %d", name, (long long)ne0, tr->name, tr->blck);
    t->nbytes = (uint64_t)kq_row_bytes(type, ne0) * (uint64_t)(ne1 * ne2);
    return t;
}

static void blk_name(char *buf, size_t n, int il, const char *what) { snprintf(buf, n, "blk.%d.%s", il, what); }

static void build_tensors(const config_t *c) {
    const int E = c->n_embd, hd = E / c->n_head;
    const float ms = 0.02f, ns = 0.1f, cs = 0.2f, rs = 1.0f / sqrtf((float)E);
    char nm[96];
    add_tensor("token_embd.weight", 2, E, c->n_vocab, 1, c->embd_type, K_MAT, ms, -1);
    for (int il = 0; il < c->n_layer; il++) {
        blk_name(nm, sizeof nm, il, "attn_norm.weight");
        add_tensor(nm, 1, E, 1, 1, KQ_F32, K_NORM, ns, il);
        if (c->attn[il]) {
            const int q = c->n_head * hd, kv = c->n_head_kv * hd;
            blk_name(nm, sizeof nm, il, "attn_q.weight");
            add_tensor(nm, 2, E, q, 1, c->mat_type, K_MAT, ms, il);
            blk_name(nm, sizeof nm, il, "attn_k.weight");
            add_tensor(nm, 2, E, kv, 1, c->mat_type, K_MAT, ms, il);
            blk_name(nm, sizeof nm, il, "attn_v.weight");
            add_tensor(nm, 2, E, kv, 1, c->attn_v_type, K_MAT, ms, il);
            blk_name(nm, sizeof nm, il, "attn_q_norm.weight");
            add_tensor(nm, 1, hd, 1, 1, KQ_F32, K_NORM, ns, il);
            blk_name(nm, sizeof nm, il, "attn_k_norm.weight");
            add_tensor(nm, 1, hd, 1, 1, KQ_F32, K_NORM, ns, il);
            blk_name(nm, sizeof nm, il, "attn_output.weight");
            add_tensor(nm, 2, q, E, 1, c->mat_type, K_MAT, ms, il);
        } else {
            blk_name(nm, sizeof nm, il, "shortconv.conv.weight");
            add_tensor(nm, 2, c->l_cache, E, 1, KQ_F32, K_CONV, cs, il);
            blk_name(nm, sizeof nm, il, "shortconv.in_proj.weight");
            add_tensor(nm, 2, E, 3 * (int64_t)E, 1, c->mat_type, K_MAT, ms, il);
            blk_name(nm, sizeof nm, il, "shortconv.out_proj.weight");
            add_tensor(nm, 2, E, E, 1, c->mat_type, K_MAT, ms, il);
        }
        blk_name(nm, sizeof nm, il, "ffn_norm.weight");
        add_tensor(nm, 1, E, 1, 1, KQ_F32, K_NORM, ns, il);
        if (il < c->n_dense) {
            blk_name(nm, sizeof nm, il, "ffn_gate.weight");
            add_tensor(nm, 2, E, c->n_ff, 1, c->mat_type, K_MAT, ms, il);
            blk_name(nm, sizeof nm, il, "ffn_up.weight");
            add_tensor(nm, 2, E, c->n_ff, 1, c->mat_type, K_MAT, ms, il);
            blk_name(nm, sizeof nm, il, "ffn_down.weight");
            add_tensor(nm, 2, c->n_ff, E, 1, c->down_type, K_MAT, ms, il);
        } else {
            const int X = c->n_expert, F = c->n_ff_exp;
            blk_name(nm, sizeof nm, il, "ffn_gate_inp.weight");
            add_tensor(nm, 2, E, X, 1, KQ_F32, K_ROUTER, rs, il);
            blk_name(nm, sizeof nm, il, "ffn_gate_exps.weight");
            add_tensor(nm, 3, E, F, X, c->mat_type, K_MAT, ms, il);
            blk_name(nm, sizeof nm, il, "ffn_up_exps.weight");
            add_tensor(nm, 3, E, F, X, c->mat_type, K_MAT, ms, il);
            blk_name(nm, sizeof nm, il, "ffn_down_exps.weight");
            add_tensor(nm, 3, F, E, X, c->down_type, K_MAT, ms, il);
            blk_name(nm, sizeof nm, il, "exp_probs_b.bias");
            add_tensor(nm, 1, X, 1, 1, KQ_F32, K_BIAS, 0, il);
        }
    }
    add_tensor("token_embd_norm.weight", 1, E, 1, 1, KQ_F32, K_NORM, ns, -1);
}

/* Router bias of layer il: S * exp(-rank / (n_expert / 4)), ranks a per-layer permutation. */
static void router_bias(const config_t *c, int il, float *b) {
    const int X = c->n_expert;
    if (c->skew == 0) {
        for (int e = 0; e < X; e++) b[e] = 0;
        return;
    }
    int *perm = xmalloc((size_t)X * sizeof *perm);
    for (int e = 0; e < X; e++) perm[e] = e;
    rng_t r = rng_seed(c->seed, 0xB1A5, (uint64_t)il);
    for (int e = X - 1; e > 0; e--) {
        int j = (int)(rng_next(&r) % (uint64_t)(e + 1)), t = perm[e];
        perm[e] = perm[j];
        perm[j] = t;
    }
    const double tau = X / 4.0 > 1 ? X / 4.0 : 1;
    for (int rank = 0; rank < X; rank++) b[perm[rank]] = (float)(c->skew * exp(-rank / tau));
    free(perm);
}

/* Values of rows [r0, r0 + nr) of tensor ti (as f32) into x. Rows are drawn in blocks of
 * rows_per_block(ti) rows, each from its own stream; r0 must start a block. */
static const config_t *g_cfg;

static int64_t rows_per_block(const tensor_t *t) {
    int64_t r = (1 << 20) / t->ne[0];
    return r < 1 ? 1 : r;
}

static void gen_rows(int ti, int64_t r0, int64_t nr, float *x) {
    const tensor_t *t = &g_t[ti];
    const int64_t n = nr * t->ne[0];
    rng_t r = rng_seed(g_cfg->seed, (uint64_t)ti + 1, (uint64_t)(r0 / rows_per_block(t)));
    const float sq3 = 1.7320508f;
    switch (t->kind) {
    case K_MAT: case K_CONV: case K_ROUTER: fill_uniform(&r, x, n, 0.0f, t->std * sq3); break;
    case K_NORM: fill_uniform(&r, x, n, 1.0f, t->std); break;
    case K_BIAS: router_bias(g_cfg, t->layer, x); break;
    }
}

/* ---------------------------------------------------------------- tokenizer source */

typedef struct {
    char **tokens;
    int32_t *types;
    int n_tokens;
    char **merges;
    int n_merges;
    char *chat_template;
} vocab_t;

static void rd(FILE *f, void *p, size_t n, const char *path) {
    if (fread(p, 1, n, f) != n) die("%s: truncated GGUF", path);
}

static uint32_t rd_u32(FILE *f, const char *path) { uint32_t v; rd(f, &v, 4, path); return v; }
static uint64_t rd_u64(FILE *f, const char *path) { uint64_t v; rd(f, &v, 8, path); return v; }

static char *rd_str(FILE *f, const char *path) {
    uint64_t n = rd_u64(f, path);
    if (n > (1u << 28)) die("%s: string of %llu bytes", path, (unsigned long long)n);
    char *s = xmalloc(n + 1);
    rd(f, s, n, path);
    s[n] = 0;
    return s;
}

static const int gguf_size[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

static void skip_val(FILE *f, uint32_t t, const char *path) {
    if (t == 8) { free(rd_str(f, path)); return; }
    if (t == 9) {
        uint32_t et = rd_u32(f, path);
        uint64_t n = rd_u64(f, path);
        if (et == 8 || et == 9) {
            for (uint64_t i = 0; i < n; i++) skip_val(f, et, path);
        } else {
            if (et > 12) die("%s: bad type %u", path, et);
            if (fseeko(f, (off_t)(n * gguf_size[et]), SEEK_CUR)) die("%s: seek failed", path);
        }
        return;
    }
    if (t > 12) die("%s: bad type %u", path, t);
    if (fseeko(f, gguf_size[t], SEEK_CUR)) die("%s: seek failed", path);
}

static char **rd_str_array(FILE *f, const char *path, int *n_out) {
    if (rd_u32(f, path) != 8) die("%s: expected a string array", path);
    uint64_t n = rd_u64(f, path);
    char **a = xmalloc(n * sizeof *a);
    for (uint64_t i = 0; i < n; i++) a[i] = rd_str(f, path);
    *n_out = (int)n;
    return a;
}

static void read_vocab(const char *path, vocab_t *v) {
    memset(v, 0, sizeof *v);
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open --template-from %s", path);
    if (rd_u32(f, path) != 0x46554747u) die("%s: not a GGUF file", path);
    if (rd_u32(f, path) != 3) die("%s: not GGUF v3", path);
    rd_u64(f, path);
    uint64_t nkv = rd_u64(f, path);
    for (uint64_t i = 0; i < nkv; i++) {
        char *key = rd_str(f, path);
        uint32_t t = rd_u32(f, path);
        if (!strcmp(key, "tokenizer.ggml.tokens") && t == 9) {
            v->tokens = rd_str_array(f, path, &v->n_tokens);
        } else if (!strcmp(key, "tokenizer.ggml.merges") && t == 9) {
            v->merges = rd_str_array(f, path, &v->n_merges);
        } else if (!strcmp(key, "tokenizer.ggml.token_type") && t == 9) {
            uint32_t et = rd_u32(f, path);
            uint64_t n = rd_u64(f, path);
            if (et != 5 && et != 4) die("%s: token_type is not an int32 array", path);
            v->types = xmalloc(n * sizeof *v->types);
            rd(f, v->types, n * 4, path);
        } else if (!strcmp(key, "tokenizer.chat_template") && t == 8) {
            v->chat_template = rd_str(f, path);
        } else {
            skip_val(f, t, path);
        }
        free(key);
    }
    fclose(f);
    if (!v->tokens || !v->types || !v->merges) die("%s: no tokenizer.ggml.tokens/token_type/merges", path);
    if (!v->chat_template) die("%s: no tokenizer.chat_template", path);
}

/* Open-addressing string set (FNV-1a). */
typedef struct { char **slot; size_t cap, n; } strset_t;

static uint64_t fnv(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static bool set_has(const strset_t *s, const char *k) {
    size_t n = strlen(k);
    for (size_t i = fnv(k, n) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->slot[i]) return false;
        if (!strcmp(s->slot[i], k)) return true;
    }
}

static void set_add(strset_t *s, char *k) {
    size_t n = strlen(k);
    for (size_t i = fnv(k, n) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->slot[i]) { s->slot[i] = k; s->n++; return; }
        if (!strcmp(s->slot[i], k)) return;
    }
}

/* Truncate or extend the source vocabulary to n_vocab tokens. */
static void make_vocab(const config_t *c, vocab_t *v) {
    const int nv = c->n_vocab;
    const int keep = v->n_tokens < nv ? v->n_tokens : nv;
    strset_t set = {0};
    set.cap = 1;
    while (set.cap < (size_t)nv * 4) set.cap <<= 1;
    set.slot = calloc(set.cap, sizeof *set.slot);
    if (!set.slot) die("out of memory");
    char **tok = xmalloc((size_t)nv * sizeof *tok);
    int32_t *typ = xmalloc((size_t)nv * sizeof *typ);
    for (int i = 0; i < keep; i++) {
        tok[i] = v->tokens[i];
        typ[i] = v->types[i];
        set_add(&set, tok[i]);
    }
    for (int i = keep; i < v->n_tokens; i++) free(v->tokens[i]);
    /* merges whose parts and result survive the truncation */
    int nm = 0, cm = v->n_merges + (nv > keep ? nv - keep : 0);
    char **mer = xmalloc((size_t)(cm ? cm : 1) * sizeof *mer);
    for (int i = 0; i < v->n_merges; i++) {
        char *m = v->merges[i], *sp = strchr(m + 1, ' ');
        bool ok = sp != NULL;
        if (ok && keep < v->n_tokens) {
            *sp = 0;
            size_t la = strlen(m), lb = strlen(sp + 1);
            char *cat = xmalloc(la + lb + 1);
            memcpy(cat, m, la);
            memcpy(cat + la, sp + 1, lb + 1);
            ok = set_has(&set, m) && set_has(&set, sp + 1) && set_has(&set, cat);
            free(cat);
            *sp = ' ';
        }
        if (ok) mer[nm++] = m;
        else free(m);
    }
    /* extension: random pairs of normal tokens, skewed to the earlier (shorter, commoner) ones */
    int *pool = xmalloc((size_t)nv * sizeof *pool), np = 0;
    for (int i = 0; i < keep; i++)
        if (typ[i] == 1) pool[np++] = i;
    if (nv > keep && np < 2) die("--template-from vocabulary has no normal tokens to merge");
    rng_t r = rng_seed(c->seed, 0x70CE, 0);
    int n = keep;
    long tries = 0;
    while (n < nv) {
        if (++tries > 1000L * nv) die("could not build %d distinct tokens", nv);
        double u1 = rng_unif(&r), u2 = rng_unif(&r);
        const char *a = tok[pool[(int)(np * u1 * u1)]], *b = tok[pool[(int)(np * u2 * u2)]];
        size_t la = strlen(a), lb = strlen(b);
        if (la + lb > 16) continue;
        char *cat = xmalloc(la + lb + 1);
        memcpy(cat, a, la);
        memcpy(cat + la, b, lb + 1);
        if (set_has(&set, cat)) { free(cat); continue; }
        char *m = xmalloc(la + lb + 2);
        memcpy(m, a, la);
        m[la] = ' ';
        memcpy(m + la + 1, b, lb + 1);
        set_add(&set, cat);
        tok[n] = cat;
        typ[n] = 1;
        pool[np++] = n;
        mer[nm++] = m;
        n++;
    }
    free(pool);
    free(set.slot);
    free(v->tokens);
    free(v->types);
    free(v->merges);
    v->tokens = tok;
    v->types = typ;
    v->n_tokens = nv;
    v->merges = mer;
    v->n_merges = nm;
}

/* ---------------------------------------------------------------- GGUF header */

typedef struct { uint8_t *p; size_t n, cap; } buf_t;

static void put(buf_t *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        while (b->n + n > b->cap) b->cap = b->cap ? 2 * b->cap : 1 << 16;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void put_u32(buf_t *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buf_t *b, uint64_t v) { put(b, &v, 8); }
static void put_str(buf_t *b, const char *s) { put_u64(b, strlen(s)); put(b, s, strlen(s)); }
static void put_key(buf_t *b, const char *k, uint32_t t) { put_str(b, k); put_u32(b, t); }

static int g_nkv;
static void kv_u32(buf_t *b, const char *k, uint32_t v) { put_key(b, k, 4); put_u32(b, v); g_nkv++; }
static void kv_f32(buf_t *b, const char *k, float v) { put_key(b, k, 6); put(b, &v, 4); g_nkv++; }
static void kv_bool(buf_t *b, const char *k, bool v) { uint8_t x = v; put_key(b, k, 7); put(b, &x, 1); g_nkv++; }
static void kv_str(buf_t *b, const char *k, const char *v) { put_key(b, k, 8); put_str(b, v); g_nkv++; }

static void kv_arch(buf_t *b, const char *k, int t, const void *v) {
    char key[128];
    snprintf(key, sizeof key, "lfm2moe.%s", k);
    if (t == 4) kv_u32(b, key, *(const uint32_t *)v);
    else kv_f32(b, key, *(const float *)v);
}
#define ARCH_U32(b, k, v) do { uint32_t v_ = (uint32_t)(v); kv_arch(b, k, 4, &v_); } while (0)
#define ARCH_F32(b, k, v) do { float v_ = (float)(v); kv_arch(b, k, 6, &v_); } while (0)

static void build_header(const config_t *c, const vocab_t *v, buf_t *b) {
    buf_t kv = {0};
    g_nkv = 0;
    kv_str(&kv, "general.architecture", "lfm2moe");
    kv_str(&kv, "general.type", "model");
    kv_str(&kv, "general.name", c->name);
    ARCH_U32(&kv, "block_count", c->n_layer);
    ARCH_U32(&kv, "context_length", c->ctx);
    ARCH_U32(&kv, "embedding_length", c->n_embd);
    ARCH_U32(&kv, "feed_forward_length", c->n_ff);
    ARCH_U32(&kv, "attention.head_count", c->n_head);
    put_key(&kv, "lfm2moe.attention.head_count_kv", 9);
    put_u32(&kv, 5);
    put_u64(&kv, (uint64_t)c->n_layer);
    for (int il = 0; il < c->n_layer; il++) put_u32(&kv, c->attn[il] ? (uint32_t)c->n_head_kv : 0);
    g_nkv++;
    ARCH_F32(&kv, "rope.freq_base", c->theta);
    ARCH_F32(&kv, "attention.layer_norm_rms_epsilon", c->eps);
    ARCH_U32(&kv, "expert_count", c->n_expert);
    ARCH_U32(&kv, "expert_used_count", c->n_used);
    kv_u32(&kv, "general.file_type", c->file_type);
    ARCH_U32(&kv, "expert_feed_forward_length", c->n_ff_exp);
    ARCH_U32(&kv, "leading_dense_block_count", c->n_dense);
    ARCH_U32(&kv, "expert_gating_func", c->gating);
    ARCH_U32(&kv, "vocab_size", c->n_vocab);
    ARCH_U32(&kv, "shortconv.l_cache", c->l_cache);
    kv_u32(&kv, "general.quantization_version", 2);
    kv_u32(&kv, "general.alignment", ALIGN);
    kv_str(&kv, "tokenizer.ggml.model", "gpt2");
    kv_str(&kv, "tokenizer.ggml.pre", "lfm2");
    put_key(&kv, "tokenizer.ggml.tokens", 9);
    put_u32(&kv, 8);
    put_u64(&kv, (uint64_t)v->n_tokens);
    for (int i = 0; i < v->n_tokens; i++) put_str(&kv, v->tokens[i]);
    g_nkv++;
    put_key(&kv, "tokenizer.ggml.token_type", 9);
    put_u32(&kv, 5);
    put_u64(&kv, (uint64_t)v->n_tokens);
    put(&kv, v->types, (size_t)v->n_tokens * 4);
    g_nkv++;
    put_key(&kv, "tokenizer.ggml.merges", 9);
    put_u32(&kv, 8);
    put_u64(&kv, (uint64_t)v->n_merges);
    for (int i = 0; i < v->n_merges; i++) put_str(&kv, v->merges[i]);
    g_nkv++;
    kv_u32(&kv, "tokenizer.ggml.bos_token_id", 1);
    kv_u32(&kv, "tokenizer.ggml.eos_token_id", 7);
    kv_u32(&kv, "tokenizer.ggml.padding_token_id", 0);
    kv_bool(&kv, "tokenizer.ggml.add_bos_token", true);
    kv_bool(&kv, "tokenizer.ggml.add_sep_token", false);
    kv_bool(&kv, "tokenizer.ggml.add_eos_token", false);
    kv_str(&kv, "tokenizer.chat_template", v->chat_template);

    put_u32(b, 0x46554747u);
    put_u32(b, 3);
    put_u64(b, (uint64_t)g_nt);
    put_u64(b, (uint64_t)g_nkv);
    put(b, kv.p, kv.n);
    free(kv.p);
    uint64_t off = 0;
    for (int i = 0; i < g_nt; i++) {
        tensor_t *t = &g_t[i];
        t->offset = off;
        put_str(b, t->name);
        put_u32(b, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) put_u64(b, (uint64_t)t->ne[d]);
        put_u32(b, t->type);
        put_u64(b, off);
        off += (t->nbytes + ALIGN - 1) / ALIGN * ALIGN;
    }
    static const uint8_t zero[ALIGN];
    put(b, zero, (ALIGN - b->n % ALIGN) % ALIGN);
}

/* ---------------------------------------------------------------- tensor data, in parallel */

typedef struct { int ti; int64_t r0, nr; uint64_t dst; } job_t;

static job_t *g_jobs;
static int g_njobs;
static atomic_int g_next;
static uint8_t *g_out;
static size_t g_out_cap;

static void *worker(void *arg) {
    (void)arg;
    float *x = NULL;
    size_t xcap = 0;
    for (;;) {
        int j = atomic_fetch_add(&g_next, 1);
        if (j >= g_njobs) break;
        const job_t *jb = &g_jobs[j];
        const tensor_t *t = &g_t[jb->ti];
        size_t need = (size_t)(jb->nr * t->ne[0]);
        if (need > xcap) {
            xcap = need;
            x = xrealloc(x, xcap * sizeof *x);
        }
        gen_rows(jb->ti, jb->r0, jb->nr, x);
        kq_get(t->type)->quantize(x, g_out + jb->dst, (int64_t)need);
    }
    free(x);
    return NULL;
}

static void run_jobs(int threads) {
    atomic_store(&g_next, 0);
    pthread_t th[64];
    int n = threads < 64 ? threads : 64;
    for (int i = 1; i < n; i++)
        if (pthread_create(&th[i], NULL, worker, NULL)) die("pthread_create failed");
    worker(NULL);
    for (int i = 1; i < n; i++) pthread_join(th[i], NULL);
}

/* Batches of up to 128 MB are filled by the workers while a writer thread writes the previous one. */
typedef struct { FILE *f; const uint8_t *p; size_t n; bool ok; } wr_t;

static void *writer(void *arg) {
    wr_t *w = arg;
    w->ok = fwrite(w->p, 1, w->n, w->f) == w->n;
    return NULL;
}

static struct {
    uint8_t *buf[2];
    size_t cap[2];
    int cur;
    bool busy;
    pthread_t th;
    wr_t w;
} g_wr;

static void writer_join(void) {
    if (!g_wr.busy) return;
    pthread_join(g_wr.th, NULL);
    g_wr.busy = false;
    if (!g_wr.w.ok) die("write failed");
}

/* Compute the pending jobs into the current buffer, hand it to the writer, switch buffers. */
static void flush_batch(const config_t *c, FILE *f, size_t *used) {
    run_jobs(c->threads);
    writer_join();
    g_wr.w = (wr_t){f, g_wr.buf[g_wr.cur], *used, false};
    if (pthread_create(&g_wr.th, NULL, writer, &g_wr.w)) die("pthread_create failed");
    g_wr.busy = true;
    g_wr.cur ^= 1;
    g_out = g_wr.buf[g_wr.cur];
    g_out_cap = g_wr.cap[g_wr.cur];
    *used = 0;
    g_njobs = 0;
}

static void write_data(const config_t *c, FILE *f) {
    const size_t batch = 128u << 20;
    for (int i = 0; i < 2; i++) {
        g_wr.cap[i] = batch;
        g_wr.buf[i] = xmalloc(batch);
    }
    g_out = g_wr.buf[0];
    g_out_cap = batch;
    int jcap = 1024;
    g_jobs = xmalloc((size_t)jcap * sizeof *g_jobs);
    size_t used = 0;
    static const uint8_t zero[ALIGN];
    for (int ti = 0; ti < g_nt; ti++) {
        const tensor_t *t = &g_t[ti];
        const int64_t rows = t->ne[1] * t->ne[2], rpb = rows_per_block(t);
        const size_t rb = kq_row_bytes(t->type, t->ne[0]);
        for (int64_t r0 = 0; r0 < rows; r0 += rpb) {
            const int64_t nr = rows - r0 < rpb ? rows - r0 : rpb;
            const size_t nb = (size_t)nr * rb;
            if (used + nb > g_out_cap && used) flush_batch(c, f, &used);
            if (nb > g_out_cap) {
                g_out_cap = g_wr.cap[g_wr.cur] = nb;
                g_out = g_wr.buf[g_wr.cur] = xrealloc(g_out, g_out_cap);
            }
            if (g_njobs == jcap) g_jobs = xrealloc(g_jobs, (size_t)(jcap *= 2) * sizeof *g_jobs);
            g_jobs[g_njobs++] = (job_t){ti, r0, nr, used};
            used += nb;
        }
        const size_t pad = (ALIGN - t->nbytes % ALIGN) % ALIGN;
        if (pad) {
            if (used + pad > g_out_cap) flush_batch(c, f, &used);
            memcpy(g_out + used, zero, pad);
            used += pad;
        }
    }
    flush_batch(c, f, &used);
    writer_join();
    free(g_wr.buf[0]);
    free(g_wr.buf[1]);
    free(g_jobs);
}

/* ---------------------------------------------------------------- routing histogram */

static int find_tensor(const char *name) {
    for (int i = 0; i < g_nt; i++)
        if (!strcmp(g_t[i].name, name)) return i;
    return -1;
}

static void routing_histogram(const config_t *c) {
    const int E = c->n_embd, X = c->n_expert, K = c->n_used, N = c->hist;
    float *w = xmalloc((size_t)E * X * sizeof *w), *g = xmalloc((size_t)E * sizeof *g);
    float *h = xmalloc((size_t)E * sizeof *h), *bias = xmalloc((size_t)X * sizeof *bias);
    float *p = xmalloc((size_t)X * sizeof *p);
    long *cnt = xmalloc((size_t)X * sizeof *cnt), *tot = calloc((size_t)X, sizeof *tot);
    int *chosen = xmalloc((size_t)K * sizeof *chosen);
    double share_sum = 0;
    int n_moe = 0;
    fprintf(stderr, "routing of %d random unit-RMS vectors (top-%d of %d; share = traffic of the busiest 25%% of experts):\n", N, K, X);
    for (int il = c->n_dense; il < c->n_layer; il++) {
        char nm[96];
        blk_name(nm, sizeof nm, il, "ffn_gate_inp.weight");
        const int ti = find_tensor(nm);
        blk_name(nm, sizeof nm, il, "ffn_norm.weight");
        const int tn = find_tensor(nm);
        for (int64_t r0 = 0; r0 < X; r0 += rows_per_block(&g_t[ti]))
            gen_rows(ti, r0, X - r0 < rows_per_block(&g_t[ti]) ? X - r0 : rows_per_block(&g_t[ti]), w + r0 * E);
        gen_rows(tn, 0, 1, g);
        router_bias(c, il, bias);
        memset(cnt, 0, (size_t)X * sizeof *cnt);
        rng_t r = rng_seed(c->seed, 0x4157, (uint64_t)il);
        for (int s = 0; s < N; s++) {
            double ss = 0;
            for (int i = 0; i < E; i++) { h[i] = (float)rng_normal(&r); ss += (double)h[i] * h[i]; }
            const float sc = (float)(1.0 / sqrt(ss / E + c->eps));
            for (int i = 0; i < E; i++) h[i] *= sc * g[i];
            for (int e = 0; e < X; e++) {
                float acc = 0;
                for (int i = 0; i < E; i++) acc += w[(size_t)e * E + i] * h[i];
                p[e] = (float)(1.0 / (1.0 + exp(-acc))) + bias[e];
            }
            for (int k = 0; k < K; k++) {
                int best = -1;
                for (int e = 0; e < X; e++) {
                    bool taken = false;
                    for (int q = 0; q < k; q++) taken |= chosen[q] == e;
                    if (!taken && (best < 0 || p[e] > p[best])) best = e;
                }
                chosen[k] = best;
                cnt[best]++;
            }
        }
        long *sorted = xmalloc((size_t)X * sizeof *sorted);
        memcpy(sorted, cnt, (size_t)X * sizeof *sorted);
        for (int a = 0; a < X; a++)
            for (int b2 = a + 1; b2 < X; b2++)
                if (sorted[b2] > sorted[a]) { long t = sorted[a]; sorted[a] = sorted[b2]; sorted[b2] = t; }
        long top = 0;
        const int q = X / 4 > 0 ? X / 4 : 1;
        for (int a = 0; a < q; a++) top += sorted[a];
        const double share = (double)top / ((double)N * K);
        share_sum += share;
        n_moe++;
        fprintf(stderr, "  layer %2d: min %5ld max %5ld (mean %.0f) share %4.1f%% |", il, sorted[X - 1], sorted[0], (double)N * K / X, 100 * share);
        for (int e = 0; e < X; e++) fprintf(stderr, " %ld", cnt[e]);
        fputc('\n', stderr);
        for (int e = 0; e < X; e++) tot[e] += cnt[e];
        free(sorted);
    }
    if (n_moe) fprintf(stderr, "  mean share of the busiest 25%% of experts: %.1f%% (uniform routing: 25%%)\n", 100 * share_sum / n_moe);
    free(w); free(g); free(h); free(bias); free(p); free(cnt); free(tot); free(chosen);
}

/* ---------------------------------------------------------------- main */

static void usage(void) {
    fputs("usage: gen_lfm2moe -o FILE [--type q4_0|q8_0|q4_k_m|f16|f32] [--pure] [--experts N] [--used K]\n"
          "         [--layers N] [--dense N] [--embd N] [--ff N] [--ff-exp N] [--vocab N] [--ctx N]\n"
          "         [--seed S] [--skew S] [--template-from GGUF] [--name NAME] [--threads N] [--hist N]\n"
          "         [--attn L1,L2,...|none]\n", stderr);
    exit(2);
}

static long parse_int(const char *s, const char *opt, long min) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < min) die("%s takes a whole number >= %ld, not '%s'", opt, min, s);
    return v;
}

int main(int argc, char **argv) {
    config_t c = {
        .n_layer = 24, .n_embd = 2048, .n_head = 32, .n_head_kv = 8, .n_ff = 7168, .n_dense = 2,
        .n_expert = 32, .n_used = 4, .n_ff_exp = 1792, .n_vocab = 65536, .ctx = 128000, .l_cache = 3,
        .gating = 2, .theta = 1e6f, .eps = 1e-5f, .type_name = "q4_0", .seed = 1, .skew = 0,
        .template_from = "tests/fixtures/models/tiny-f32.gguf", .threads = 0, .hist = 1024,
    };
    int ff = -1, ff_exp = -1, used = -1, embd = -1;
    const char *attn_list = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) usage();
        if (!strcmp(a, "--pure")) { c.pure = true; continue; }
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (!strcmp(a, "-o")) c.out = v;
        else if (!strcmp(a, "--type")) c.type_name = v;
        else if (!strcmp(a, "--experts")) c.n_expert = (int)parse_int(v, a, 1);
        else if (!strcmp(a, "--used")) used = (int)parse_int(v, a, 1);
        else if (!strcmp(a, "--layers")) c.n_layer = (int)parse_int(v, a, 1);
        else if (!strcmp(a, "--dense")) c.n_dense = (int)parse_int(v, a, 0);
        else if (!strcmp(a, "--embd")) embd = (int)parse_int(v, a, 64);
        else if (!strcmp(a, "--ff")) ff = (int)parse_int(v, a, 1);
        else if (!strcmp(a, "--ff-exp")) ff_exp = (int)parse_int(v, a, 1);
        else if (!strcmp(a, "--vocab")) c.n_vocab = (int)parse_int(v, a, 1);
        else if (!strcmp(a, "--ctx")) c.ctx = (int)parse_int(v, a, 1);
        else if (!strcmp(a, "--seed")) c.seed = strtoull(v, NULL, 0);
        else if (!strcmp(a, "--skew")) c.skew = atof(v);
        else if (!strcmp(a, "--template-from")) c.template_from = v;
        else if (!strcmp(a, "--name")) c.name = v;
        else if (!strcmp(a, "--threads")) c.threads = (int)parse_int(v, a, 1);
        else if (!strcmp(a, "--hist")) c.hist = (int)parse_int(v, a, 0);
        else if (!strcmp(a, "--attn")) attn_list = v;
        else { fprintf(stderr, "gen_lfm2moe: unknown option %s\n", a); usage(); }
    }
    if (!c.out) usage();
    if (c.n_layer > MAX_LAYERS) die("--layers at most %d", MAX_LAYERS);
    if (embd > 0) {
        if (embd % 64) die("--embd must be a multiple of 64 (head dim 64)");
        c.n_embd = embd;
        c.n_head = embd / 64;
        c.n_head_kv = c.n_head >= 4 ? c.n_head / 4 : 1;
        /* 7168/2048 = 3.5 and 1792/2048 = 0.875, rounded up to 256 */
        c.n_ff = (embd * 7 / 2 + 255) / 256 * 256;
        c.n_ff_exp = (embd * 7 / 8 + 255) / 256 * 256;
    }
    if (ff > 0) c.n_ff = ff;
    if (ff_exp > 0) c.n_ff_exp = ff_exp;
    c.n_used = used > 0 ? used : (c.n_expert < 4 ? c.n_expert : 4);
    if (c.n_used > c.n_expert) die("--used %d > --experts %d", c.n_used, c.n_expert);
    if (c.n_dense > c.n_layer) c.n_dense = c.n_layer;
    static const int attn_layers[] = {2, 6, 10, 14, 18, 21};
    if (!attn_list) {
        for (size_t k = 0; k < sizeof attn_layers / sizeof *attn_layers; k++)
            if (attn_layers[k] < c.n_layer) c.attn[attn_layers[k]] = 1;
    } else if (strcmp(attn_list, "none")) {
        for (const char *p = attn_list; *p;) {
            char *end;
            long il = strtol(p, &end, 10);
            if (end == p || il < 0 || il >= c.n_layer) die("--attn: bad layer list '%s'", attn_list);
            c.attn[il] = 1;
            p = *end == ',' ? end + 1 : end;
            if (*end && *end != ',') die("--attn: bad layer list '%s'", attn_list);
        }
    }

    /* types */
    const char *tn = c.type_name;
    const bool k256 = c.n_embd % 256 == 0;
    if (!strcmp(tn, "q4_0")) {
        c.mat_type = c.down_type = c.attn_v_type = KQ_Q4_0;
        c.embd_type = c.pure ? KQ_Q4_0 : k256 ? KQ_Q6_K : KQ_Q8_0;
        c.file_type = 2;
    } else if (!strcmp(tn, "q8_0")) {
        c.mat_type = c.down_type = c.attn_v_type = c.embd_type = KQ_Q8_0;
        c.file_type = 7;
    } else if (!strcmp(tn, "q4_k_m")) {
        if (!k256) die("q4_k_m needs --embd a multiple of 256");
        c.mat_type = KQ_Q4_K;
        c.down_type = c.attn_v_type = c.embd_type = c.pure ? KQ_Q4_K : KQ_Q6_K;
        c.file_type = c.pure ? 14 : 15;
    } else if (!strcmp(tn, "f16")) {
        c.mat_type = c.down_type = c.attn_v_type = c.embd_type = KQ_F16;
        c.file_type = 1;
    } else if (!strcmp(tn, "f32")) {
        c.mat_type = c.down_type = c.attn_v_type = c.embd_type = KQ_F32;
        c.file_type = 0;
    } else {
        die("--type must be q4_0, q8_0, q4_k_m, f16 or f32, not '%s'", tn);
    }
    char namebuf[160];
    if (!c.name) {
        snprintf(namebuf, sizeof namebuf, "lfm2moe-synthetic-%dL-%de-%s", c.n_layer, c.n_expert, tn);
        c.name = namebuf;
    }
    if (c.threads <= 0) {
        long n = 1;
#ifdef _SC_NPROCESSORS_ONLN
        n = sysconf(_SC_NPROCESSORS_ONLN);
#endif
        c.threads = n > 0 ? (int)n : 1;
    }
    g_cfg = &c;

    const double t0 = now_s();
    vocab_t v;
    read_vocab(c.template_from, &v);
    if (c.n_vocab < 270 && c.n_vocab < v.n_tokens) die("--vocab must be at least 270 (specials + bytes)");
    make_vocab(&c, &v);
    build_tensors(&c);
    buf_t hdr = {0};
    build_header(&c, &v, &hdr);

    uint64_t data = 0, experts = 0;
    for (int i = 0; i < g_nt; i++) {
        data += (g_t[i].nbytes + ALIGN - 1) / ALIGN * ALIGN;
        if (strstr(g_t[i].name, "_exps.")) experts += g_t[i].nbytes;
    }
    fprintf(stderr, "gen_lfm2moe: %s: %d layers, n_embd %d, %d/%d heads, ff %d, %d experts top-%d ff %d, vocab %d (%d merges), %d tensors\n",
            c.name, c.n_layer, c.n_embd, c.n_head, c.n_head_kv, c.n_ff, c.n_expert, c.n_used, c.n_ff_exp, c.n_vocab,
            v.n_merges, g_nt);
    fprintf(stderr, "gen_lfm2moe: header %.1f MB, tensor data %.3f GB (experts %.3f GB, the rest %.3f GB), %d threads\n",
            hdr.n / 1e6, data / 1e9, experts / 1e9, (data - experts) / 1e9, c.threads);

    FILE *f = fopen(c.out, "wb");
    if (!f) die("cannot create %s", c.out);
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    if (fwrite(hdr.p, 1, hdr.n, f) != hdr.n) die("write failed");
    write_data(&c, f);
    if (fclose(f)) die("write to %s failed", c.out);
    const double dt = now_s() - t0;
    fprintf(stderr, "gen_lfm2moe: wrote %s: %.3f GB in %.1f s (%.2f s/GB)\n", c.out, (hdr.n + data) / 1e9, dt,
            dt / ((hdr.n + data) / 1e9));
    if (c.hist > 0 && c.n_dense < c.n_layer) routing_histogram(&c);
    return 0;
}
