/* sampler.c: see sampler.h for the chain, its order and its determinism rules. */
#include "sampler.h"

#include <math.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

/* JS fills lfm2_sampler_params by offset (web/engine.js): keep the layout fixed. */
_Static_assert(offsetof(lfm2_sampler_params, penalty_last_n) == 28, "sampler params layout");
_Static_assert(offsetof(lfm2_sampler_params, seed) == 32 && sizeof(lfm2_sampler_params) == 40, "sampler params layout");

#define LFM2_SAMPLER_MAX_VOCAB (1 << 24)
#define LFM2_SAMPLER_MAX_LAST_N (1 << 24)

struct lfm2_sampler {
    lfm2_sampler_params p;
    int32_t n_vocab;
    lfm2_rng rng;

    bool penalties_on; /* penalty_last_n > 0 and some penalty not neutral */
    int32_t *ring;     /* penalty_last_n accepted tokens (NULL if !penalties_on) */
    int32_t ring_len;  /* tokens in the ring, <= penalty_last_n */
    int32_t ring_pos;  /* next slot to write */
    int32_t *counts;   /* n_vocab: occurrences in the ring (NULL if !penalties_on) */

    float *bias;       /* n_vocab, allocated on the first non-zero set_bias */

    float *work;       /* n_vocab: adjusted logits */
    int32_t *cand;     /* n_vocab: surviving token ids */
    double *prob;      /* n_vocab: unnormalized probabilities of the survivors */
};

/* ---- RNG ---------------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void lfm2_rng_seed(lfm2_rng *r, uint64_t seed) {
    uint64_t st = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&st);
    /* splitmix64 is a bijection of distinct states, so the four words are never all zero. */
}

uint64_t lfm2_rng_next(lfm2_rng *r) {
    uint64_t *s = r->s;
    const uint64_t result = rotl64(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

double lfm2_rng_uniform(lfm2_rng *r) {
    return (double)(lfm2_rng_next(r) >> 11) * 0x1.0p-53;
}

/* ---- params, lifetime ---------------------------------------------------------------------- */

void lfm2_sampler_params_default(lfm2_sampler_params *p) {
    if (!p) return;
    p->temperature = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->frequency_penalty = 0.0f;
    p->presence_penalty = 0.0f;
    p->penalty_last_n = 64;
    p->seed = 0;
}

static lfm2_status check_params(const lfm2_sampler_params *p) {
    if (!isfinite(p->temperature))
        return lfm2_fail(LFM2_E_ARG, "sampler: temperature %g is not finite", (double)p->temperature);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return lfm2_fail(LFM2_E_ARG, "sampler: top_p %g outside (0, 1]", (double)p->top_p);
    if (isnan(p->min_p) || p->min_p > 1.0f)
        return lfm2_fail(LFM2_E_ARG, "sampler: min_p %g is NaN or above 1", (double)p->min_p);
    if (!(isfinite(p->repeat_penalty) && p->repeat_penalty > 0.0f))
        return lfm2_fail(LFM2_E_ARG, "sampler: repeat_penalty %g must be finite and > 0",
                         (double)p->repeat_penalty);
    if (!isfinite(p->frequency_penalty))
        return lfm2_fail(LFM2_E_ARG, "sampler: frequency_penalty %g is not finite",
                         (double)p->frequency_penalty);
    if (!isfinite(p->presence_penalty))
        return lfm2_fail(LFM2_E_ARG, "sampler: presence_penalty %g is not finite",
                         (double)p->presence_penalty);
    if (p->penalty_last_n < 0 || p->penalty_last_n > LFM2_SAMPLER_MAX_LAST_N)
        return lfm2_fail(LFM2_E_ARG, "sampler: penalty_last_n %d outside [0, %d]",
                         (int)p->penalty_last_n, LFM2_SAMPLER_MAX_LAST_N);
    return LFM2_OK;
}

lfm2_status lfm2_sampler_create(const lfm2_sampler_params *p, int32_t n_vocab, lfm2_sampler **out) {
    if (!out) return lfm2_fail(LFM2_E_ARG, "sampler_create: out is NULL");
    *out = NULL;
    if (!p) return lfm2_fail(LFM2_E_ARG, "sampler_create: params is NULL");
    if (n_vocab < 1 || n_vocab > LFM2_SAMPLER_MAX_VOCAB)
        return lfm2_fail(LFM2_E_ARG, "sampler_create: n_vocab %d outside [1, %d]", (int)n_vocab,
                         LFM2_SAMPLER_MAX_VOCAB);
    lfm2_status st = check_params(p);
    if (st != LFM2_OK) return st;

    lfm2_sampler *s = calloc(1, sizeof *s);
    if (!s) return lfm2_fail(LFM2_E_NOMEM, "sampler_create: out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    s->penalties_on = p->penalty_last_n > 0 &&
                      (p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f ||
                       p->presence_penalty != 0.0f);
    size_t n = (size_t)n_vocab;
    s->work = malloc(n * sizeof *s->work);
    s->cand = malloc(n * sizeof *s->cand);
    s->prob = malloc(n * sizeof *s->prob);
    bool ok = s->work && s->cand && s->prob;
    if (ok && s->penalties_on) {
        s->ring = malloc((size_t)p->penalty_last_n * sizeof *s->ring);
        s->counts = calloc(n, sizeof *s->counts);
        ok = s->ring && s->counts;
    }
    if (!ok) {
        lfm2_sampler_free(s);
        return lfm2_fail(LFM2_E_NOMEM, "sampler_create: out of memory for %d-token vocabulary",
                         (int)n_vocab);
    }
    lfm2_rng_seed(&s->rng, p->seed);
    *out = s;
    return LFM2_OK;
}

void lfm2_sampler_free(lfm2_sampler *s) {
    if (!s) return;
    free(s->ring);
    free(s->counts);
    free(s->bias);
    free(s->work);
    free(s->cand);
    free(s->prob);
    free(s);
}

void lfm2_sampler_reset(lfm2_sampler *s) {
    if (!s) return;
    if (s->penalties_on) {
        for (int32_t i = 0; i < s->ring_len; i++) s->counts[s->ring[i]] = 0;
    }
    s->ring_len = 0;
    s->ring_pos = 0;
    lfm2_rng_seed(&s->rng, s->p.seed);
}

void lfm2_sampler_set_seed(lfm2_sampler *s, uint64_t seed) {
    if (!s) return;
    s->p.seed = seed;
    lfm2_rng_seed(&s->rng, seed);
}

lfm2_status lfm2_sampler_set_bias(lfm2_sampler *s, int32_t token, float bias) {
    if (!s) return lfm2_fail(LFM2_E_ARG, "sampler_set_bias: sampler is NULL");
    if (token < 0 || token >= s->n_vocab)
        return lfm2_fail(LFM2_E_TOKEN, "sampler_set_bias: token %d outside [0, %d)", (int)token,
                         (int)s->n_vocab);
    if (isnan(bias) || bias == INFINITY)
        return lfm2_fail(LFM2_E_ARG, "sampler_set_bias: bias %g for token %d is not allowed",
                         (double)bias, (int)token);
    if (!s->bias) {
        if (bias == 0.0f) return LFM2_OK;
        s->bias = calloc((size_t)s->n_vocab, sizeof *s->bias);
        if (!s->bias) return lfm2_fail(LFM2_E_NOMEM, "sampler_set_bias: out of memory");
    }
    s->bias[token] = bias;
    return LFM2_OK;
}

lfm2_status lfm2_sampler_accept(lfm2_sampler *s, int32_t token) {
    if (!s) return lfm2_fail(LFM2_E_ARG, "sampler_accept: sampler is NULL");
    if (token < 0 || token >= s->n_vocab)
        return lfm2_fail(LFM2_E_TOKEN, "sampler_accept: token %d outside [0, %d)", (int)token,
                         (int)s->n_vocab);
    if (!s->penalties_on) return LFM2_OK;
    int32_t cap = s->p.penalty_last_n;
    if (s->ring_len == cap) {
        s->counts[s->ring[s->ring_pos]]--; /* evict the oldest, which sits where we write */
    } else {
        s->ring_len++;
    }
    s->ring[s->ring_pos] = token;
    s->counts[token]++;
    s->ring_pos = s->ring_pos + 1 == cap ? 0 : s->ring_pos + 1;
    return LFM2_OK;
}

/* ---- the chain ------------------------------------------------------------------------------ */

/* Steps 1-2 of the chain into out. NaN becomes -INFINITY here; the penalties cannot make a NaN
 * afterwards (their factors are finite and the repeat penalty positive). */
static void adjust_logits(lfm2_sampler *s, const float *logits, float *out) {
    const int32_t n = s->n_vocab;
    const float *bias = s->bias;
    for (int32_t i = 0; i < n; i++) {
        float l = bias ? logits[i] + bias[i] : logits[i];
        out[i] = isnan(l) ? -INFINITY : l;
    }
    if (s->penalties_on && s->ring_len > 0) {
        const float rp = s->p.repeat_penalty, fp = s->p.frequency_penalty,
                    pp = s->p.presence_penalty;
        /* Once per distinct token: its count is negated after use, then restored. */
        for (int32_t i = 0; i < s->ring_len; i++) {
            int32_t t = s->ring[i];
            int32_t c = s->counts[t];
            if (c <= 0) continue;
            float l = out[t];
            l = l <= 0.0f ? l * rp : l / rp;
            l -= (float)c * fp + pp;
            out[t] = l;
            s->counts[t] = -c;
        }
        for (int32_t i = 0; i < s->ring_len; i++) {
            int32_t t = s->ring[i];
            if (s->counts[t] < 0) s->counts[t] = -s->counts[t];
        }
    }
}

lfm2_status lfm2_sampler_adjusted_logits(lfm2_sampler *s, const float *logits, float *out) {
    if (!s || !logits || !out)
        return lfm2_fail(LFM2_E_ARG, "sampler_adjusted_logits: NULL argument");
    adjust_logits(s, logits, out);
    return LFM2_OK;
}

/* Rank order: higher logit first, ties -> lower id first. A total order on distinct ids. */
static inline bool better(const float *w, int32_t a, int32_t b) {
    return w[a] > w[b] || (w[a] == w[b] && a < b);
}

/* Max-heap (best at the root). */
static void sift_down_best(int32_t *h, size_t n, size_t i, const float *w) {
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && better(w, h[l], h[m])) m = l;
        if (l + 1 < n && better(w, h[l + 1], h[m])) m = l + 1;
        if (m == i) return;
        int32_t t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
}

/* Min-heap (worst at the root). */
static void sift_down_worst(int32_t *h, size_t n, size_t i, const float *w) {
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && better(w, h[m], h[l])) m = l;
        if (l + 1 < n && better(w, h[m], h[l + 1])) m = l + 1;
        if (m == i) return;
        int32_t t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
}

static void sift_up_worst(int32_t *h, size_t i, const float *w) {
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!better(w, h[parent], h[i])) return;
        int32_t t = h[i]; h[i] = h[parent]; h[parent] = t;
        i = parent;
    }
}

/* The k best finite tokens of w into out[0..k), ranked best first. Returns how many (<= k). */
static size_t select_top_k(const float *w, int32_t n, size_t k, int32_t *out) {
    size_t m = 0;
    int32_t i = 0;
    for (; i < n && m < k; i++) {
        if (w[i] == -INFINITY) continue;
        out[m] = i;
        sift_up_worst(out, m, w);
        m++;
    }
    /* Full heap: i beats the worst kept only with a strictly higher logit, since every kept id is
     * lower than i (and -INFINITY never beats a finite logit). */
    float worst = m ? w[out[0]] : INFINITY;
    for (; i < n; i++) {
        if (w[i] > worst) {
            out[0] = i;
            sift_down_worst(out, m, 0, w);
            worst = w[out[0]];
        }
    }
    /* Heapsort: the worst root goes to the end each time, leaving the best at out[0]. */
    for (size_t end = m; end > 1; end--) {
        int32_t t = out[0]; out[0] = out[end - 1]; out[end - 1] = t;
        sift_down_worst(out, end - 1, 0, w);
    }
    return m;
}

/* Top-p without top-k prunes with a histogram of the mass by distance below the max logit, in
 * buckets of 1/TOPP_BUCKET_W logit; the last bucket takes everything further down. */
#define TOPP_BUCKET_W 8
#define TOPP_BUCKETS 128

static inline int topp_bucket(double d) {
    return d < (double)TOPP_BUCKETS / TOPP_BUCKET_W ? (int)(d * TOPP_BUCKET_W) : TOPP_BUCKETS;
}

/* Top-p over all finite tokens, unranked: writes the kept prefix to cand, ranked, returns its size.
 * Same result as ranking everything: the candidates gathered are a rank prefix (whole buckets) whose
 * mass exceeds the target by a margin (1e-8 of the total) larger than any rounding difference
 * between summation orders (< n * 2^-53 of the total); the exact prefix is then found by popping a
 * heap in rank order, summing in that order. */
static size_t top_p_unranked(const float *w, int32_t n, double max_logit, double top_p,
                             int32_t *cand) {
    double bmass[TOPP_BUCKETS + 1] = {0};
    double total = 0.0;
    for (int32_t i = 0; i < n; i++) {
        if (w[i] == -INFINITY) continue;
        double e = exp((double)w[i] - max_logit);
        total += e;
        bmass[topp_bucket(max_logit - (double)w[i])] += e;
    }
    const double target = top_p * total;
    const double enough = target + 1e-8 * total;
    int cut = TOPP_BUCKETS;
    double c = 0.0;
    for (int b = 0; b < TOPP_BUCKETS; b++) {
        c += bmass[b];
        if (c >= enough) {
            cut = b;
            break;
        }
    }
    size_t m = 0;
    for (int32_t i = 0; i < n; i++)
        if (w[i] != -INFINITY && topp_bucket(max_logit - (double)w[i]) <= cut) cand[m++] = i;

    /* Pop the best from a max-heap until the mass is reached; popped tokens collect at the tail,
     * best last. */
    for (size_t i = m / 2; i-- > 0;) sift_down_best(cand, m, i, w);
    size_t end = m;
    double cum = 0.0;
    while (end > 0) {
        int32_t t = cand[0];
        cand[0] = cand[end - 1];
        cand[end - 1] = t;
        end--;
        sift_down_best(cand, end, 0, w);
        cum += exp((double)w[t] - max_logit);
        if (cum >= target) break;
    }
    size_t kept = m - end;
    for (size_t a = end, b = m - 1; a < b; a++, b--) {
        int32_t t = cand[a]; cand[a] = cand[b]; cand[b] = t;
    }
    memmove(cand, cand + end, kept * sizeof *cand);
    return kept;
}

lfm2_status lfm2_sampler_sample(lfm2_sampler *s, const float *logits, int32_t *out_token) {
    if (!s || !logits || !out_token)
        return lfm2_fail(LFM2_E_ARG, "sampler_sample: NULL argument");
    *out_token = -1;
    float *w = s->work;
    int32_t *cand = s->cand;
    double *prob = s->prob;
    const int32_t n = s->n_vocab;
    adjust_logits(s, logits, w);

    /* Argmax, ties -> lowest id; stays -1 if every logit is -INFINITY. */
    int32_t best = -1;
    float best_l = -INFINITY;
    for (int32_t i = 0; i < n; i++) {
        if (w[i] > best_l) {
            best_l = w[i];
            best = i;
        }
    }
    if (best < 0)
        return lfm2_fail(LFM2_E_ARG, "sampler_sample: every token is banned or has a NaN logit");
    if (s->p.temperature <= 0.0f) {
        *out_token = best;
        return LFM2_OK;
    }
    if (best_l == INFINITY) {
        /* Only the +inf tokens can win; they are equally likely. */
        for (int32_t i = 0; i < n; i++) w[i] = w[i] == INFINITY ? 0.0f : -INFINITY;
    }
    const double max_logit = w[best];
    const bool top_p_on = s->p.top_p < 1.0f, min_p_on = s->p.min_p > 0.0f;
    const double min_rel = min_p_on ? log((double)s->p.min_p) : 0.0;

    /* Survivors of top-k and top-p, ranked (best first) if either is on, else in id order. */
    size_t n_cand = 0;
    bool min_p_done = false;
    if (s->p.top_k > 0) {
        n_cand = select_top_k(w, n, (size_t)s->p.top_k, cand);
        if (top_p_on && n_cand > 1) {
            double total = 0.0;
            for (size_t j = 0; j < n_cand; j++) total += exp((double)w[cand[j]] - max_logit);
            const double target = (double)s->p.top_p * total;
            double cum = 0.0;
            size_t j = 0;
            while (j < n_cand) {
                cum += exp((double)w[cand[j]] - max_logit);
                j++;
                if (cum >= target) break;
            }
            n_cand = j;
        }
    } else if (top_p_on) {
        n_cand = top_p_unranked(w, n, max_logit, (double)s->p.top_p, cand);
    } else if (min_p_on) {
        for (int32_t i = 0; i < n; i++)
            if ((double)w[i] - max_logit >= min_rel) cand[n_cand++] = i;
        min_p_done = true;
    } else {
        for (int32_t i = 0; i < n; i++)
            if (w[i] != -INFINITY) cand[n_cand++] = i;
    }

    /* Min-p at temperature 1: logit >= max + log(min_p). Keeps the order. */
    if (min_p_on && !min_p_done && n_cand > 1) {
        size_t m = 0;
        for (size_t j = 0; j < n_cand; j++)
            if ((double)w[cand[j]] - max_logit >= min_rel) cand[m++] = cand[j];
        n_cand = m;
    }

    /* Temperature and the draw: one uniform per call. */
    const double temp = (double)s->p.temperature;
    double total = 0.0;
    for (size_t j = 0; j < n_cand; j++) {
        prob[j] = exp(((double)w[cand[j]] - max_logit) / temp);
        total += prob[j];
    }
    const double target = lfm2_rng_uniform(&s->rng) * total;
    double cum = 0.0;
    int32_t chosen = -1;
    for (size_t j = 0; j < n_cand; j++) {
        if (prob[j] <= 0.0) continue;
        chosen = cand[j];
        cum += prob[j];
        if (target < cum) break;
    }
    /* chosen is the hit, or the last token of non-zero mass if rounding left target >= cum. The max
     * logit always survives with prob exp(0) = 1, so there is one. */
    *out_token = chosen;
    return LFM2_OK;
}
