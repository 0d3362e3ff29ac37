/* test_sampler.c: the token sampler (src/sampler.c) against an independent reference written here:
 * RNG values, greedy/argmax, seeding, penalties and bias as logits, and the sampled distribution of
 * every filter by a chi-square test on 20k seeded draws. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "lfm2.h"
#include "sampler.h"

/* ---- a test-local LCG for making logits (independent of the sampler's RNG) ----------------- */

static uint64_t tst_state = 1;
static uint32_t tst_u32(void) {
    tst_state = tst_state * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return (uint32_t)(tst_state >> 33);
}
static double tst_unif(void) { return (tst_u32() + 0.5) / 2147483648.0; } /* (0, 1) */
static double tst_normal(void) {
    return sqrt(-2.0 * log(tst_unif())) * cos(6.283185307179586 * tst_unif());
}

/* ---- reference RNG: splitmix64 seeding + xoshiro256**, transcribed from the papers ---------- */

static uint64_t ref_splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
typedef struct { uint64_t s[4]; } ref_xo;
static void ref_xo_seed(ref_xo *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = ref_splitmix(&seed);
}
static uint64_t ref_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static uint64_t ref_xo_next(ref_xo *r) {
    uint64_t *s = r->s;
    uint64_t res = ref_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = ref_rotl(s[3], 45);
    return res;
}

static void test_rng(void) {
    /* splitmix64 from state 0: the published first output. */
    uint64_t x = 0;
    CHECK(ref_splitmix(&x) == 0xe220a8397b1dcdafull, "splitmix64 reference");

    /* Hard values (computed by an independent Python transcription): every platform must agree. */
    static const struct { uint64_t seed; uint64_t v[5]; } golden[] = {
        {0, {0x99ec5f36cb75f2b4ull, 0xbf6e1f784956452aull, 0x1a5f849d4933e6e0ull,
             0x6aa594f1262d2d2cull, 0xbba5ad4a1f842e59ull}},
        {42, {0x15780b2e0c2ec716ull, 0x6104d9866d113a7eull, 0xae17533239e499a1ull,
              0xecb8ad4703b360a1ull, 0xfde6dc7fe2ec5e64ull}},
        {0xffffffffffffffffull, {0x8f5520d52a7ead08ull, 0xc476a018caa1802dull,
                                 0x81de31c0d260469eull, 0xbf658d7e065f3c2full,
                                 0x913593fda1bca32aull}},
    };
    for (size_t g = 0; g < sizeof golden / sizeof golden[0]; g++) {
        lfm2_rng r;
        lfm2_rng_seed(&r, golden[g].seed);
        for (int i = 0; i < 5; i++) {
            uint64_t v = lfm2_rng_next(&r);
            CHECK(v == golden[g].v[i], "seed %llx output %d: %016llx", (unsigned long long)golden[g].seed,
                  i, (unsigned long long)v);
        }
    }
    lfm2_rng r;
    lfm2_rng_seed(&r, 12345);
    const double u0 = 0x1.7cd46c6e82c1ap-1, u1 = 0x1.0a555031bd344p-3, u2 = 0x1.ed3a2dbd32a9ap-1;
    double a = lfm2_rng_uniform(&r), b = lfm2_rng_uniform(&r), c = lfm2_rng_uniform(&r);
    CHECK(a == u0 && b == u1 && c == u2, "uniform doubles %a %a %a", a, b, c);

    /* Long agreement with the transcription, and the uniform's range. */
    static const uint64_t seeds[] = {1, 2, 0xdeadbeefull, 1ull << 63};
    for (size_t k = 0; k < 4; k++) {
        ref_xo ref;
        ref_xo_seed(&ref, seeds[k]);
        lfm2_rng_seed(&r, seeds[k]);
        int bad = 0;
        for (int i = 0; i < 100000; i++) {
            uint64_t e = ref_xo_next(&ref);
            if (i % 2) {
                if (lfm2_rng_next(&r) != e) bad++;
            } else {
                double u = lfm2_rng_uniform(&r);
                if (u != (double)(e >> 11) / 9007199254740992.0 || u < 0.0 || u >= 1.0) bad++;
            }
        }
        CHECK(bad == 0, "seed %llu: %d mismatches vs reference xoshiro256**",
              (unsigned long long)seeds[k], bad);
    }
}

/* ---- reference chain ----------------------------------------------------------------------- */

typedef struct {
    const float *bias; /* n or NULL */
    const int32_t *hist;
    int n_hist;
} ref_extra;

/* Bias then llama.cpp penalties over the last last_n of hist (naive counting). */
static void ref_adjust(const float *logits, int n, const lfm2_sampler_params *p, const ref_extra *x,
                       float *out) {
    for (int i = 0; i < n; i++) out[i] = logits[i] + (x && x->bias ? x->bias[i] : 0.0f);
    if (x && p->penalty_last_n > 0) {
        int start = x->n_hist > p->penalty_last_n ? x->n_hist - p->penalty_last_n : 0;
        for (int t = 0; t < n; t++) {
            int c = 0;
            for (int j = start; j < x->n_hist; j++) c += x->hist[j] == t;
            if (c == 0) continue;
            float l = out[t];
            if (l <= 0) l *= p->repeat_penalty;
            else l /= p->repeat_penalty;
            l -= (float)c * p->frequency_penalty + (float)(c > 0) * p->presence_penalty;
            out[t] = l;
        }
    }
    for (int i = 0; i < n; i++)
        if (out[i] != out[i]) out[i] = -INFINITY;
}

static const float *cmp_logits;
static int cmp_rank(const void *pa, const void *pb) {
    int a = *(const int *)pa, b = *(const int *)pb;
    if (cmp_logits[a] > cmp_logits[b]) return -1;
    if (cmp_logits[a] < cmp_logits[b]) return 1;
    return a < b ? -1 : a > b;
}

/* Expected probabilities (sum 1) of the non-greedy chain over adjusted logits w. */
static void ref_dist(const float *w, int n, const lfm2_sampler_params *p, double *prob) {
    int *ids = malloc((size_t)n * sizeof *ids);
    double *q = malloc((size_t)n * sizeof *q);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (w[i] != -INFINITY) ids[m++] = i;
    cmp_logits = w;
    qsort(ids, (size_t)m, sizeof *ids, cmp_rank);
    for (int i = 0; i < n; i++) prob[i] = 0.0;
    if (m == 0) goto done;
    double mx = w[ids[0]];
    if (p->top_k > 0 && p->top_k < m) m = p->top_k;
    if (p->top_p < 1.0f) {
        double z = 0.0;
        for (int j = 0; j < m; j++) z += q[j] = exp(w[ids[j]] - mx);
        double cum = 0.0;
        int j = 0;
        while (j < m) {
            cum += q[j++] / z;
            if (cum >= p->top_p) break;
        }
        m = j;
    }
    if (p->min_p > 0.0f) {
        int k = 0;
        for (int j = 0; j < m; j++)
            if (exp(w[ids[j]] - mx) >= p->min_p) ids[k++] = ids[j];
        m = k;
    }
    double z = 0.0;
    for (int j = 0; j < m; j++) z += q[j] = exp((w[ids[j]] - mx) / p->temperature);
    for (int j = 0; j < m; j++) prob[ids[j]] = q[j] / z;
done:
    free(ids);
    free(q);
}

/* Upper quantile of chi-square with df degrees (Wilson-Hilferty), z = 3.29: p ~ 0.0005. */
static double chi2_crit(int df) {
    double h = 2.0 / (9.0 * df);
    double c = 1.0 - h + 3.29 * sqrt(h);
    return df * c * c * c;
}

/* N draws with sampler s from logits vs expected probs; cells expecting < 5 are pooled. */
static void chi_square(const char *name, lfm2_sampler *s, const float *logits, int n,
                       const double *expect, int N) {
    int *obs = calloc((size_t)n, sizeof *obs);
    int bad_status = 0, forbidden = 0;
    for (int d = 0; d < N; d++) {
        int32_t t = -1;
        if (lfm2_sampler_sample(s, logits, &t) != LFM2_OK || t < 0 || t >= n) {
            bad_status++;
            continue;
        }
        obs[t]++;
        if (expect[t] == 0.0) forbidden++;
    }
    CHECK(bad_status == 0, "%s: %d failed draws", name, bad_status);
    CHECK(forbidden == 0, "%s: %d draws of tokens the filters remove", name, forbidden);
    double stat = 0.0, pool_e = 0.0, pool_o = 0.0;
    int cells = 0;
    for (int i = 0; i < n; i++) {
        if (expect[i] == 0.0) continue;
        double e = expect[i] * N;
        if (e < 5.0) {
            pool_e += e;
            pool_o += obs[i];
            continue;
        }
        stat += (obs[i] - e) * (obs[i] - e) / e;
        cells++;
    }
    if (pool_e > 0.0) {
        stat += (pool_o - pool_e) * (pool_o - pool_e) / (pool_e > 1e-9 ? pool_e : 1e-9);
        cells++;
    }
    int df = cells > 1 ? cells - 1 : 1;
    double crit = chi2_crit(df);
    if (cells <= 1) {
        CHECK(stat < 1e-9 || pool_e >= 5.0, "%s: single cell", name);
    } else {
        CHECK(stat < crit, "%s: chi2 %.2f >= %.2f (df %d)", name, stat, crit, df);
    }
    printf("  chi2 %5d draws %-28s %7.2f (df %3d, crit %6.2f)\n", N, name, stat, df, crit);
    free(obs);
}

static lfm2_sampler_params plain(float temp) {
    lfm2_sampler_params p;
    lfm2_sampler_params_default(&p);
    p.temperature = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.penalty_last_n = 0;
    p.seed = 1234;
    return p;
}

/* Builds a sampler, applies bias/history, runs the chi-square against the reference. */
static void dist_case(const char *name, const float *logits, int n, lfm2_sampler_params p,
                      const ref_extra *x) {
    lfm2_sampler *s = NULL;
    lfm2_status st = lfm2_sampler_create(&p, n, &s);
    CHECK(st == LFM2_OK, "%s: create %d (%s)", name, st, lfm2_last_error());
    if (st != LFM2_OK) return;
    if (x && x->bias)
        for (int i = 0; i < n; i++)
            if (x->bias[i] != 0.0f) CHECK(lfm2_sampler_set_bias(s, i, x->bias[i]) == LFM2_OK, "bias");
    if (x)
        for (int j = 0; j < x->n_hist; j++) CHECK(lfm2_sampler_accept(s, x->hist[j]) == LFM2_OK, "acc");
    float *w = malloc((size_t)n * sizeof *w), *w2 = malloc((size_t)n * sizeof *w2);
    double *e = malloc((size_t)n * sizeof *e);
    ref_adjust(logits, n, &p, x, w);
    CHECK(lfm2_sampler_adjusted_logits(s, logits, w2) == LFM2_OK, "adjusted");
    int diff = 0;
    for (int i = 0; i < n; i++) diff += memcmp(&w[i], &w2[i], sizeof(float)) != 0;
    CHECK(diff == 0, "%s: %d adjusted logits differ from the reference", name, diff);
    ref_dist(w, n, &p, e);
    /* 20k draws; fewer for the big vocabularies, which only exercise the heap paths (ASan). */
    chi_square(name, s, logits, n, e, n > 1000 ? 2000 : 20000);
    free(w);
    free(w2);
    free(e);
    lfm2_sampler_free(s);
}

static void test_distributions(void) {
    /* A small fixed distribution. */
    static const float L[16] = {1.0f, 2.5f, 0.3f, -1.0f, 2.0f, 0.0f, 1.7f, -0.5f,
                                3.0f, 0.9f, 1.2f, -2.0f, 2.2f, 0.5f, 1.9f, -0.2f};
    const int n = 16;
    lfm2_sampler_params p;

    p = plain(1.0f);
    dist_case("plain T=1", L, n, p, NULL);
    p = plain(0.6f);
    dist_case("temperature 0.6", L, n, p, NULL);
    p = plain(1.7f);
    dist_case("temperature 1.7", L, n, p, NULL);
    p = plain(1.0f);
    p.top_k = 5;
    dist_case("top_k 5", L, n, p, NULL);
    p = plain(1.0f);
    p.top_p = 0.7f;
    dist_case("top_p 0.7", L, n, p, NULL);
    p = plain(1.0f);
    p.min_p = 0.2f;
    dist_case("min_p 0.2", L, n, p, NULL);
    p = plain(0.8f);
    p.top_k = 10;
    p.top_p = 0.9f;
    p.min_p = 0.05f;
    dist_case("k10 p0.9 min0.05 T0.8", L, n, p, NULL);
    p = plain(1.5f);
    p.top_p = 0.85f;
    p.min_p = 0.1f;
    dist_case("p0.85 min0.1 T1.5", L, n, p, NULL);

    /* Penalties over a window that has evicted some tokens. */
    static const int32_t hist[] = {8, 8, 3, 1, 1, 1, 12, 5, 8, 11, 4};
    ref_extra xh = {NULL, hist, (int)(sizeof hist / sizeof hist[0])};
    p = plain(1.0f);
    p.repeat_penalty = 1.3f;
    p.penalty_last_n = 8;
    dist_case("repeat 1.3 last 8", L, n, p, &xh);
    p.frequency_penalty = 0.4f;
    dist_case("+ frequency 0.4", L, n, p, &xh);
    p.presence_penalty = 0.6f;
    dist_case("+ presence 0.6", L, n, p, &xh);
    p.top_k = 6;
    p.temperature = 0.9f;
    dist_case("+ top_k 6 T0.9", L, n, p, &xh);

    /* Bias, including a ban of the best token. */
    float bias[16] = {0};
    bias[8] = -INFINITY;
    bias[3] = 2.0f;
    bias[1] = -1.25f;
    ref_extra xb = {bias, NULL, 0};
    p = plain(1.0f);
    dist_case("bias + ban", L, n, p, &xb);
    p.top_k = 4;
    dist_case("bias + ban, top_k 4", L, n, p, &xb);
    ref_extra xbh = {bias, hist, (int)(sizeof hist / sizeof hist[0])};
    p = plain(1.2f);
    p.repeat_penalty = 1.5f;
    p.presence_penalty = 0.3f;
    p.penalty_last_n = 64;
    p.top_p = 0.8f;
    dist_case("bias + penalties + top_p", L, n, p, &xbh);

    /* Large vocabularies: the heap paths. */
    const int V = 32768;
    float *big = malloc((size_t)V * sizeof *big);
    tst_state = 99;
    for (int i = 0; i < V; i++) big[i] = (float)(2.5 * tst_normal());
    p = plain(0.8f);
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    dist_case("32k defaults", big, V, p, NULL);
    p = plain(1.0f);
    p.top_k = 200;
    dist_case("32k top_k 200", big, V, p, NULL);
    /* 30 strong tokens over a flat tail: top-p alone stops inside them (lazy heap path). */
    for (int i = 0; i < V; i++) big[i] = (float)tst_normal();
    for (int j = 0; j < 30; j++) big[(j * 2179 + 77) % V] = 9.0f + (float)j * 0.1f;
    p = plain(1.0f);
    p.top_p = 0.6f;
    dist_case("32k top_p 0.6", big, V, p, NULL);
    p = plain(0.7f);
    p.min_p = 0.3f;
    dist_case("32k min_p 0.3 T0.7", big, V, p, NULL);
    p = plain(1.0f);
    p.top_p = 0.99f; /* stops ~11000 tokens into the tail: the deep heap path */
    p.min_p = 0.0005f;
    dist_case("32k top_p 0.99 min_p 0.0005", big, V, p, NULL);
    free(big);
}

/* Random configurations with tied logits: every draw must lie in the reference's kept set. */
static void test_support(void) {
    tst_state = 7;
    int bad = 0, cases = 0;
    for (int c = 0; c < 300; c++) {
        int n = 1 + (int)(tst_u32() % 300);
        float *L = malloc((size_t)n * sizeof *L), *w = malloc((size_t)n * sizeof *w);
        double *e = malloc((size_t)n * sizeof *e);
        for (int i = 0; i < n; i++) L[i] = (float)(int)(tst_u32() % 9) * 0.5f; /* many ties */
        lfm2_sampler_params p = plain((float)(0.2 + 2.0 * tst_unif()));
        p.top_k = (int)(tst_u32() % 12) - 2;
        p.top_p = tst_u32() % 3 ? (float)(0.05 + 0.9 * tst_unif()) : 1.0f;
        p.min_p = tst_u32() % 3 ? (float)(0.5 * tst_unif()) : 0.0f;
        p.seed = c;
        lfm2_sampler *s = NULL;
        if (lfm2_sampler_create(&p, n, &s) != LFM2_OK) {
            bad++;
            continue;
        }
        ref_adjust(L, n, &p, NULL, w);
        ref_dist(w, n, &p, e);
        for (int d = 0; d < 200; d++) {
            int32_t t = -1;
            if (lfm2_sampler_sample(s, L, &t) != LFM2_OK || t < 0 || t >= n || e[t] == 0.0) bad++;
        }
        cases++;
        lfm2_sampler_free(s);
        free(L);
        free(w);
        free(e);
    }
    CHECK(bad == 0 && cases == 300, "support: %d draws outside the kept set", bad);
}

static int32_t argmax(const float *L, int n) {
    int32_t b = 0;
    for (int i = 1; i < n; i++)
        if (L[i] > L[b]) b = i;
    return b;
}

static void test_greedy(void) {
    const int n = 5000;
    float *L = malloc((size_t)n * sizeof *L);
    lfm2_sampler_params pg = plain(0.0f), pk = plain(1.0f), pn = plain(-1.0f);
    pk.top_k = 1;
    pg.top_k = 40; /* filters must not matter for greedy */
    pg.top_p = 0.5f;
    lfm2_sampler *g = NULL, *k = NULL, *neg = NULL;
    CHECK(lfm2_sampler_create(&pg, n, &g) == LFM2_OK, "create");
    CHECK(lfm2_sampler_create(&pk, n, &k) == LFM2_OK, "create");
    CHECK(lfm2_sampler_create(&pn, n, &neg) == LFM2_OK, "create");
    tst_state = 3;
    int bad_g = 0, bad_k = 0, bad_n = 0;
    for (int trial = 0; trial < 400; trial++) {
        bool ties = trial % 2;
        for (int i = 0; i < n; i++)
            L[i] = ties ? (float)(int)(tst_u32() % 50) : (float)(4.0 * tst_normal());
        int32_t want = argmax(L, n), t1 = -1, t2 = -1, t3 = -1;
        lfm2_sampler_sample(g, L, &t1);
        lfm2_sampler_sample(k, L, &t2);
        lfm2_sampler_sample(neg, L, &t3);
        bad_g += t1 != want;
        bad_k += t2 != want;
        bad_n += t3 != want;
    }
    CHECK(bad_g == 0, "temperature 0: %d of 400 not the argmax", bad_g);
    CHECK(bad_k == 0, "top_k 1: %d of 400 not the argmax", bad_k);
    CHECK(bad_n == 0, "temperature < 0: %d of 400 not the argmax", bad_n);

    /* All equal: lowest id. */
    for (int i = 0; i < n; i++) L[i] = 0.25f;
    int32_t t = -1;
    lfm2_sampler_sample(g, L, &t);
    CHECK(t == 0, "all-equal greedy gives %d", t);
    lfm2_sampler_sample(k, L, &t);
    CHECK(t == 0, "all-equal top_k 1 gives %d", t);
    L[17] = L[4000] = 1.0f;
    lfm2_sampler_sample(g, L, &t);
    CHECK(t == 17, "tie at max gives %d", t);

    /* Greedy sees bias and penalties. */
    CHECK(lfm2_sampler_set_bias(g, 17, -INFINITY) == LFM2_OK, "ban");
    lfm2_sampler_sample(g, L, &t);
    CHECK(t == 4000, "greedy with 17 banned gives %d", t);
    CHECK(lfm2_sampler_set_bias(g, 17, 0.0f) == LFM2_OK, "unban");
    lfm2_sampler_sample(g, L, &t);
    CHECK(t == 17, "greedy after unban gives %d", t);
    lfm2_sampler_free(g);
    lfm2_sampler_free(k);
    lfm2_sampler_free(neg);

    lfm2_sampler_params pp = plain(0.0f);
    pp.repeat_penalty = 2.0f;
    pp.penalty_last_n = 4;
    CHECK(lfm2_sampler_create(&pp, n, &g) == LFM2_OK, "create");
    lfm2_sampler_accept(g, 17);
    lfm2_sampler_sample(g, L, &t);
    CHECK(t == 4000, "repeat-penalized greedy gives %d", t);
    for (int i = 0; i < 4; i++) lfm2_sampler_accept(g, 5);
    lfm2_sampler_sample(g, L, &t);
    CHECK(t == 17, "greedy after 17 leaves the window gives %d", t);
    lfm2_sampler_free(g);
    free(L);
}

static void test_seed(void) {
    const int n = 300, T = 500;
    float *L = malloc((size_t)n * sizeof *L);
    tst_state = 11;
    for (int i = 0; i < n; i++) L[i] = (float)tst_normal();
    lfm2_sampler_params p;
    lfm2_sampler_params_default(&p);
    p.top_k = 0;
    p.top_p = 0.99f;
    p.seed = 7;
    lfm2_sampler *a = NULL, *b = NULL, *c = NULL;
    CHECK(lfm2_sampler_create(&p, n, &a) == LFM2_OK, "create");
    CHECK(lfm2_sampler_create(&p, n, &b) == LFM2_OK, "create");
    p.seed = 8;
    CHECK(lfm2_sampler_create(&p, n, &c) == LFM2_OK, "create");
    int32_t sa[500], sb[500], sc[500];
    for (int i = 0; i < T; i++) {
        lfm2_sampler_sample(a, L, &sa[i]);
        lfm2_sampler_sample(b, L, &sb[i]);
        lfm2_sampler_sample(c, L, &sc[i]);
    }
    int same_ab = 0, same_ac = 0;
    for (int i = 0; i < T; i++) {
        same_ab += sa[i] == sb[i];
        same_ac += sa[i] == sc[i];
    }
    CHECK(same_ab == T, "same seed: %d of %d equal", same_ab, T);
    CHECK(same_ac < T / 4, "different seeds: %d of %d equal", same_ac, T);

    lfm2_sampler_reset(a);
    int again = 0;
    for (int i = 0; i < T; i++) {
        int32_t t;
        lfm2_sampler_sample(a, L, &t);
        again += t == sa[i];
    }
    CHECK(again == T, "reset reproduces: %d of %d", again, T);
    lfm2_sampler_set_seed(c, 7);
    again = 0;
    for (int i = 0; i < T; i++) {
        int32_t t;
        lfm2_sampler_sample(c, L, &t);
        again += t == sa[i];
    }
    CHECK(again == T, "set_seed reproduces: %d of %d", again, T);
    lfm2_sampler_free(a);
    lfm2_sampler_free(b);
    lfm2_sampler_free(c);
    free(L);
}

/* Fixed sequences from an independent Python transcription of the chain (same RNG, double exp):
 * if wasm and x86 disagree, this fails on one of them. Logits are exact binary fractions. */
static void test_golden(void) {
    float L[64];
    for (int i = 0; i < 64; i++) L[i] = (float)((i * 37) % 64) / 8.0f - 4.0f;
    static const struct {
        float temp, top_p, min_p;
        int32_t top_k;
        uint64_t seed;
        int32_t want[24];
    } cases[] = {
        {0.7f, 0.9f, 0.02f, 20, 0x7e8ull, {19, 24, 19, 19, 5, 38, 57, 38, 31, 19, 5, 17, 62, 57, 5, 38, 19, 50, 24, 57, 50, 38, 38, 57}},
        {1.3f, 0.8f, 0.0f, 0, 0x63ull, {57, 50, 12, 62, 43, 38, 57, 19, 62, 50, 24, 38, 38, 19, 12, 31, 38, 17, 38, 43, 12, 57, 62, 5}},
        {1.0f, 1.0f, 0.1f, 0, 0x5ull, {19, 38, 38, 50, 31, 50, 31, 50, 22, 24, 62, 19, 19, 48, 38, 57, 41, 50, 31, 43, 19, 29, 5, 57}},
        {0.5f, 1.0f, 0.0f, 8, 0xffffffffffffffffull, {57, 31, 57, 31, 57, 31, 38, 31, 12, 12, 38, 19, 57, 57, 19, 31, 19, 31, 38, 57, 19, 57, 31, 57}},
        {2.0f, 1.0f, 0.0f, 0, 0x7a69ull, {44, 19, 43, 8, 27, 5, 12, 27, 43, 50, 38, 34, 46, 53, 55, 17, 43, 62, 15, 32, 36, 41, 5, 5}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        lfm2_sampler_params p = plain(cases[c].temp);
        p.top_k = cases[c].top_k;
        p.top_p = cases[c].top_p;
        p.min_p = cases[c].min_p;
        p.seed = cases[c].seed;
        lfm2_sampler *s = NULL;
        CHECK(lfm2_sampler_create(&p, 64, &s) == LFM2_OK, "create");
        int bad = 0;
        for (int i = 0; i < 24; i++) {
            int32_t t = -1;
            lfm2_sampler_sample(s, L, &t);
            if (t != cases[c].want[i]) {
                if (!bad) fprintf(stderr, "golden case %zu draw %d: got %d want %d\n", c, i, t,
                                  cases[c].want[i]);
                bad++;
            }
        }
        CHECK(bad == 0, "golden case %zu: %d of 24 differ", c, bad);
        lfm2_sampler_free(s);
    }
}

static void test_penalty_logits(void) {
    /* Exact values, by hand: repeat divides positives and multiplies non-positives;
     * frequency subtracts count * f; presence subtracts once. */
    float L[8] = {2.0f, -1.0f, 3.0f, 0.0f, 1.0f, -4.0f, 6.0f, 0.5f}, out[8];
    lfm2_sampler_params p = plain(1.0f);
    p.repeat_penalty = 2.0f;
    p.frequency_penalty = 0.25f;
    p.presence_penalty = 0.5f;
    p.penalty_last_n = 5;
    lfm2_sampler *s = NULL;
    CHECK(lfm2_sampler_create(&p, 8, &s) == LFM2_OK, "create");
    /* accepted: 6 0 0 1 0 3 2 -> window (last 5): 0 1 0 3 2; 6 left the window. */
    static const int32_t acc[] = {6, 0, 0, 1, 0, 3, 2};
    for (int i = 0; i < 7; i++) CHECK(lfm2_sampler_accept(s, acc[i]) == LFM2_OK, "accept");
    CHECK(lfm2_sampler_adjusted_logits(s, L, out) == LFM2_OK, "adjusted");
    /* 0: 2/2 - (2*0.25+0.5) = 0;  1: -1*2 - (0.25+0.5) = -2.75;  3: 0*2 - 0.75 = -0.75;
     * 2: 3/2 - 0.75 = 0.75;  others unchanged. */
    const float want[8] = {0.0f, -2.75f, 0.75f, -0.75f, 1.0f, -4.0f, 6.0f, 0.5f};
    for (int i = 0; i < 8; i++) CHECK(out[i] == want[i], "penalized logit %d: %g want %g", i, out[i], want[i]);

    /* Calling again gives the same (the history is not consumed). */
    float out2[8];
    lfm2_sampler_adjusted_logits(s, L, out2);
    CHECK(memcmp(out, out2, sizeof out) == 0, "adjusted logits are repeatable");

    /* Bias is applied before the penalties: bias -3 on token 0 -> (2-3)*2 - 1 = -3. */
    CHECK(lfm2_sampler_set_bias(s, 0, -3.0f) == LFM2_OK, "bias");
    CHECK(lfm2_sampler_set_bias(s, 7, 1.5f) == LFM2_OK, "bias");
    lfm2_sampler_adjusted_logits(s, L, out);
    CHECK(out[0] == -3.0f && out[7] == 2.0f, "bias then penalty: %g %g", out[0], out[7]);

    /* Reset clears the window, keeps biases. */
    lfm2_sampler_reset(s);
    lfm2_sampler_adjusted_logits(s, L, out);
    CHECK(out[0] == -1.0f && out[1] == -1.0f && out[2] == 3.0f && out[7] == 2.0f,
          "after reset: %g %g %g %g", out[0], out[1], out[2], out[7]);
    lfm2_sampler_free(s);

    /* Neutral penalties or last_n 0: nothing changes, accept still checks range. */
    p.penalty_last_n = 0;
    CHECK(lfm2_sampler_create(&p, 8, &s) == LFM2_OK, "create");
    lfm2_sampler_accept(s, 0);
    lfm2_sampler_adjusted_logits(s, L, out);
    CHECK(memcmp(out, L, sizeof out) == 0, "last_n 0 leaves logits");
    CHECK(lfm2_sampler_accept(s, 8) == LFM2_E_TOKEN, "accept out of range");
    CHECK(lfm2_sampler_accept(s, -1) == LFM2_E_TOKEN, "accept negative");
    lfm2_sampler_free(s);

    /* A long stream through a small window matches naive counting. */
    const int n = 50;
    float Lr[50], a[50], b[50];
    int32_t hist[3000];
    tst_state = 5;
    for (int i = 0; i < n; i++) Lr[i] = (float)(3.0 * tst_normal());
    p = plain(1.0f);
    p.repeat_penalty = 1.1f;
    p.frequency_penalty = 0.3f;
    p.presence_penalty = 0.2f;
    p.penalty_last_n = 37;
    CHECK(lfm2_sampler_create(&p, n, &s) == LFM2_OK, "create");
    int bad = 0;
    for (int i = 0; i < 3000; i++) {
        hist[i] = (int32_t)(tst_u32() % 20) * (int32_t)(tst_u32() % 3 ? 1 : 2);
        lfm2_sampler_accept(s, hist[i]);
        if (i % 97 == 0) {
            ref_extra x = {NULL, hist, i + 1};
            ref_adjust(Lr, n, &p, &x, a);
            lfm2_sampler_adjusted_logits(s, Lr, b);
            bad += memcmp(a, b, sizeof a) != 0;
        }
    }
    CHECK(bad == 0, "ring window vs naive: %d mismatches", bad);
    lfm2_sampler_free(s);
}

static void test_ban_and_edges(void) {
    const int n = 32;
    float L[32];
    for (int i = 0; i < n; i++) L[i] = (float)(i % 7) * 0.3f;
    L[9] = 6.0f; /* overwhelming favourite */
    lfm2_sampler_params p = plain(1.5f);
    lfm2_sampler *s = NULL;
    CHECK(lfm2_sampler_create(&p, n, &s) == LFM2_OK, "create");
    CHECK(lfm2_sampler_set_bias(s, 9, -INFINITY) == LFM2_OK, "ban 9");
    CHECK(lfm2_sampler_set_bias(s, 2, -INFINITY) == LFM2_OK, "ban 2");
    int hits = 0;
    for (int d = 0; d < 20000; d++) {
        int32_t t = -1;
        lfm2_sampler_sample(s, L, &t);
        hits += t == 9 || t == 2 || t < 0;
    }
    CHECK(hits == 0, "banned tokens sampled %d times", hits);

    /* Ban everything: a clear error, no token. */
    for (int i = 0; i < n; i++) lfm2_sampler_set_bias(s, i, -INFINITY);
    int32_t t = 5;
    CHECK(lfm2_sampler_sample(s, L, &t) == LFM2_E_ARG && t == -1, "all banned: %d", t);
    CHECK(strstr(lfm2_last_error(), "banned") != NULL, "message: %s", lfm2_last_error());
    lfm2_sampler_free(s);

    /* NaN logits are never chosen; +inf logits win (equally among themselves). */
    CHECK(lfm2_sampler_create(&p, n, &s) == LFM2_OK, "create");
    float M[32];
    for (int i = 0; i < n; i++) M[i] = NAN;
    M[20] = -3.0f;
    int bad = 0;
    for (int d = 0; d < 1000; d++) {
        lfm2_sampler_sample(s, M, &t);
        bad += t != 20;
    }
    CHECK(bad == 0, "NaN logits: %d draws not 20", bad);
    for (int i = 0; i < n; i++) M[i] = (float)i;
    M[4] = M[30] = INFINITY;
    int c4 = 0, c30 = 0;
    for (int d = 0; d < 2000; d++) {
        lfm2_sampler_sample(s, M, &t);
        c4 += t == 4;
        c30 += t == 30;
    }
    CHECK(c4 + c30 == 2000 && c4 > 850 && c30 > 850, "+inf logits: %d %d", c4, c30);
    lfm2_sampler_set_bias(s, 4, -INFINITY);
    lfm2_sampler_sample(s, M, &t);
    CHECK(t == 30, "+inf logit with a ban: %d", t);
    lfm2_sampler_free(s);

    /* One-token vocabulary. */
    CHECK(lfm2_sampler_create(&p, 1, &s) == LFM2_OK, "create 1");
    float one = -100.0f;
    CHECK(lfm2_sampler_sample(s, &one, &t) == LFM2_OK && t == 0, "1-token vocab");
    lfm2_sampler_free(s);
}

static void test_invalid(void) {
    lfm2_sampler_params d, p;
    lfm2_sampler_params_default(&d);
    CHECK(d.temperature == 0.8f && d.top_k == 40 && d.top_p == 0.95f && d.min_p == 0.05f &&
              d.repeat_penalty == 1.0f && d.penalty_last_n == 64 && d.frequency_penalty == 0.0f &&
              d.presence_penalty == 0.0f,
          "defaults");
    lfm2_sampler *s = (lfm2_sampler *)&p; /* must be reset to NULL on failure */

#define BAD(field, value, word)                                                                  \
    do {                                                                                         \
        p = d;                                                                                   \
        p.field = value;                                                                         \
        s = (lfm2_sampler *)&p;                                                                  \
        lfm2_status st_ = lfm2_sampler_create(&p, 100, &s);                                      \
        CHECK(st_ == LFM2_E_ARG && s == NULL, #field " = " #value ": status %d", st_);           \
        CHECK(strstr(lfm2_last_error(), word) != NULL, #field ": message '%s'", lfm2_last_error()); \
    } while (0)
    BAD(temperature, NAN, "temperature");
    BAD(temperature, INFINITY, "temperature");
    BAD(top_p, 0.0f, "top_p");
    BAD(top_p, -0.5f, "top_p");
    BAD(top_p, 1.01f, "top_p");
    BAD(top_p, NAN, "top_p");
    BAD(min_p, NAN, "min_p");
    BAD(min_p, 1.5f, "min_p");
    BAD(repeat_penalty, 0.0f, "repeat_penalty");
    BAD(repeat_penalty, -1.0f, "repeat_penalty");
    BAD(repeat_penalty, NAN, "repeat_penalty");
    BAD(frequency_penalty, INFINITY, "frequency_penalty");
    BAD(presence_penalty, NAN, "presence_penalty");
    BAD(penalty_last_n, -1, "penalty_last_n");
#undef BAD

    p = d;
    CHECK(lfm2_sampler_create(&p, 0, &s) == LFM2_E_ARG && s == NULL, "n_vocab 0");
    CHECK(lfm2_sampler_create(&p, -5, &s) == LFM2_E_ARG, "n_vocab < 0");
    CHECK(lfm2_sampler_create(NULL, 10, &s) == LFM2_E_ARG, "NULL params");
    CHECK(lfm2_sampler_create(&p, 10, NULL) == LFM2_E_ARG, "NULL out");
    /* Edge values that are valid. */
    p.top_p = 1.0f;
    p.min_p = -1.0f;
    p.top_k = -3;
    p.temperature = -2.0f;
    p.penalty_last_n = 0;
    CHECK(lfm2_sampler_create(&p, 10, &s) == LFM2_OK, "valid edges");
    CHECK(lfm2_sampler_set_bias(s, 10, 1.0f) == LFM2_E_TOKEN, "bias token n_vocab");
    CHECK(strstr(lfm2_last_error(), "token 10") != NULL, "message '%s'", lfm2_last_error());
    CHECK(lfm2_sampler_set_bias(s, -1, 1.0f) == LFM2_E_TOKEN, "bias token -1");
    CHECK(lfm2_sampler_set_bias(s, 3, NAN) == LFM2_E_ARG, "bias NaN");
    CHECK(lfm2_sampler_set_bias(s, 3, INFINITY) == LFM2_E_ARG, "bias +inf");
    CHECK(lfm2_sampler_set_bias(NULL, 3, 1.0f) == LFM2_E_ARG, "bias NULL");
    float L[10] = {0};
    int32_t t;
    CHECK(lfm2_sampler_sample(s, NULL, &t) == LFM2_E_ARG, "sample NULL logits");
    CHECK(lfm2_sampler_sample(s, L, NULL) == LFM2_E_ARG, "sample NULL out");
    CHECK(lfm2_sampler_sample(NULL, L, &t) == LFM2_E_ARG, "sample NULL sampler");
    CHECK(lfm2_sampler_accept(NULL, 1) == LFM2_E_ARG, "accept NULL");
    lfm2_sampler_free(s);
    lfm2_sampler_free(NULL);
    lfm2_sampler_reset(NULL);
    lfm2_sampler_params_default(NULL);
}

static void bench(void) {
    const int V = 128000;
    float *L = malloc((size_t)V * sizeof *L);
    tst_state = 17;
    for (int i = 0; i < V; i++) L[i] = (float)(3.0 * tst_normal());
    lfm2_sampler_params p;
    lfm2_sampler_params_default(&p);
    const char *names[] = {"defaults (k40)", "top_p 0.95 only", "min_p 0.05 only", "greedy"};
    for (int c = 0; c < 4; c++) {
        lfm2_sampler_params q = p;
        if (c == 1) { q.top_k = 0; q.min_p = 0; }
        if (c == 2) { q.top_k = 0; q.top_p = 1; }
        if (c == 3) q.temperature = 0;
        lfm2_sampler *s = NULL;
        if (lfm2_sampler_create(&q, V, &s) != LFM2_OK) continue;
        clock_t t0 = clock();
        int32_t t;
        for (int i = 0; i < 20; i++) lfm2_sampler_sample(s, L, &t);
        printf("  bench 128k vocab %-16s %.3f ms/sample\n", names[c],
               1000.0 * (double)(clock() - t0) / CLOCKS_PER_SEC / 20);
        lfm2_sampler_free(s);
    }
    free(L);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    test_rng();
    test_greedy();
    test_seed();
    test_penalty_logits();
    test_ban_and_edges();
    test_invalid();
    test_support();
    test_distributions();
    test_golden();
    bench();
    return check_report("sampler");
}
