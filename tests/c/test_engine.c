/* test_engine.c: the engine natively under ASan/UBSan on the fixture models: reference logits of
 * the prompt against the float64 reference, batch vs one-token decode, truncation, and the errors
 * of the evaluation calls (bad token, full context, bad truncation). */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lfm2.h"

#define FIX "tests/fixtures/"

/* The fixtures' chat prompt (FORMAT.md: prompts.chat); the references' first 24 rows follow it. */
static const int32_t PROMPT[24] = {1, 6, 338, 270, 24, 101, 516, 272, 856, 990, 278, 348,
                                   58, 785, 60, 7, 24, 6, 309, 129, 357, 297, 130, 24};

static int file_read(void *ctx, uint64_t off, size_t len, void *dst) {
    FILE *f = ctx;
    if (fseek(f, (long)off, SEEK_SET) != 0) return 1;
    return fread(dst, 1, len, f) == len ? 0 : 1;
}

static lfm2_model *open_model_budget(const char *name, int reference, int threads, uint64_t budget, int policy,
                                     lfm2_status want, FILE **fp) {
    char path[256];
    snprintf(path, sizeof path, FIX "models/%s.gguf", name);
    *fp = fopen(path, "rb");
    if (!*fp) return NULL;
    fseek(*fp, 0, SEEK_END);
    long size = ftell(*fp);
    lfm2_model_params p = {.reference = reference, .n_threads = threads, .memory_budget = budget, .cache_policy = policy};
    lfm2_model *m = NULL;
    lfm2_status s = lfm2_model_open(file_read, *fp, (uint64_t)size, &p, &m);
    CHECK(s == want, "open %s: %s", name, lfm2_last_error());
    if (!m) fclose(*fp);
    return m;
}

static lfm2_model *open_model_threads(const char *name, int reference, int threads, FILE **fp) {
    return open_model_budget(name, reference, threads, 0, 0, LFM2_OK, fp);
}

static lfm2_model *open_model(const char *name, int reference, FILE **fp) {
    return open_model_threads(name, reference, 1, fp);
}

static float *read_f32(const char *path, size_t n) {
    FILE *f = fopen(path, "rb");
    float *v = malloc(n * sizeof *v);
    size_t got = f && v ? fread(v, sizeof *v, n, f) : 0;
    if (f) fclose(f);
    if (got != n) { free(v); return NULL; }
    return v;
}

static float max_diff(const float *a, const float *b, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

/* Reference path, the prompt in one batch, against numpy_exact's first 24 rows. */
static void check_reference(const char *name, float tol) {
    FILE *fp;
    lfm2_model *m = open_model(name, 1, &fp);
    if (!m) return;
    const size_t V = (size_t)lfm2_model_n_vocab(m);
    lfm2_context *c = NULL;
    CHECK(lfm2_context_new(m, 128, &c) == LFM2_OK, "%s", lfm2_last_error());
    float *got = malloc(24 * V * sizeof *got);
    CHECK(lfm2_eval(c, PROMPT, 24, got, 1) == LFM2_OK, "%s: %s", name, lfm2_last_error());
    char path[256];
    snprintf(path, sizeof path, FIX "%s/numpy_exact/logits.f32", name);
    float *want = read_f32(path, 24 * V);
    CHECK(want != NULL, "cannot read %s", path);
    if (want) {
        float d = max_diff(got, want, 24 * V);
        CHECK(d <= tol, "%s reference vs numpy_exact: max diff %g > %g", name, d, tol);
    }
    free(want), free(got);
    lfm2_context_free(c);
    lfm2_model_free(m);
    fclose(fp);
}

/* One batch vs 24 one-token steps, and truncate-then-re-evaluate vs a fresh state. */
static void check_batch_decode_truncate(const char *name, float tol) {
    FILE *fp;
    lfm2_model *m = open_model(name, 0, &fp);
    if (!m) return;
    const size_t V = (size_t)lfm2_model_n_vocab(m);
    lfm2_context *c = NULL;
    CHECK(lfm2_context_new(m, 64, &c) == LFM2_OK, "%s", lfm2_last_error());
    float *batch = malloc(24 * V * sizeof *batch), *step = malloc(24 * V * sizeof *step);
    CHECK(lfm2_eval(c, PROMPT, 24, batch, 1) == LFM2_OK, "%s", lfm2_last_error());
    CHECK(lfm2_context_n_past(c) == 24, "n_past %u", lfm2_context_n_past(c));
    CHECK(lfm2_truncate(c, 0) == LFM2_OK, "%s", lfm2_last_error());
    for (int i = 0; i < 24; i++) CHECK(lfm2_eval(c, PROMPT + i, 1, step + i * V, 0) == LFM2_OK, "%s", lfm2_last_error());
    float d = max_diff(batch, step, 24 * V);
    CHECK(d <= tol, "%s batch vs decode: max diff %g", name, d);
    /* truncate to 10 and re-evaluate the rest: same logits as the fresh batch */
    CHECK(lfm2_truncate(c, 10) == LFM2_OK, "%s", lfm2_last_error());
    CHECK(lfm2_eval(c, PROMPT + 10, 14, step + 10 * V, 1) == LFM2_OK, "%s", lfm2_last_error());
    d = max_diff(batch + 10 * V, step + 10 * V, 14 * V);
    CHECK(d <= tol, "%s truncate+re-eval: max diff %g", name, d);
    /* errors leave the state as it was */
    int32_t bad[2] = {5, (int32_t)V};
    CHECK(lfm2_eval(c, bad, 2, NULL, 0) == LFM2_E_TOKEN, "bad token accepted");
    CHECK(strstr(lfm2_last_error(), "vocabulary") != NULL, "message: %s", lfm2_last_error());
    CHECK(lfm2_context_n_past(c) == 24, "n_past changed by a failed eval");
    int32_t many[41] = {0};
    CHECK(lfm2_eval(c, many, 41, NULL, 0) == LFM2_E_CONTEXT_FULL, "context overflow accepted");
    CHECK(lfm2_truncate(c, 25) == LFM2_E_ARG, "truncate beyond n_past accepted");
    free(batch), free(step);
    lfm2_context_free(c);
    lfm2_model_free(m);
    fclose(fp);
}

/* A prompt of two chunks (over LFM2_MAX_BATCH = 128 tokens) evaluated for all logits, for the last
 * only, and for none: the last layer's FFN then runs for fewer tokens, but the last row and the state
 * left behind (seen through the next token's logits) are the same bits. */
static void check_outputs(const char *name) {
    FILE *fp;
    lfm2_model *m = open_model(name, 0, &fp);
    if (!m) return;
    const size_t V = (size_t)lfm2_model_n_vocab(m);
    enum { N = 150 };
    int32_t prompt[N + 1];
    for (int i = 0; i <= N; i++) prompt[i] = PROMPT[(i * 7) % 24];
    float *all = malloc(N * V * sizeof *all), *last = malloc(V * sizeof *last);
    float *next[3] = {malloc(V * sizeof(float)), malloc(V * sizeof(float)), malloc(V * sizeof(float))};
    lfm2_context *c = NULL;
    CHECK(lfm2_context_new(m, 160, &c) == LFM2_OK, "%s", lfm2_last_error());
    for (int mode = 0; mode < 3 && c; mode++) { /* all logits, the last only, none */
        CHECK(lfm2_truncate(c, 0) == LFM2_OK, "%s", lfm2_last_error());
        float *out = mode == 0 ? all : mode == 1 ? last : NULL;
        CHECK(lfm2_eval(c, prompt, N, out, mode == 0) == LFM2_OK, "%s mode %d: %s", name, mode, lfm2_last_error());
        CHECK(lfm2_eval(c, prompt + N, 1, next[mode], 0) == LFM2_OK, "%s: %s", name, lfm2_last_error());
    }
    CHECK(memcmp(all + (N - 1) * V, last, V * sizeof *last) == 0, "%s: last-only row differs from all-logits row",
          name);
    CHECK(memcmp(next[0], next[1], V * sizeof(float)) == 0, "%s: state after a last-only eval differs", name);
    CHECK(memcmp(next[0], next[2], V * sizeof(float)) == 0, "%s: state after a no-logits eval differs", name);
    free(all), free(last), free(next[0]), free(next[1]), free(next[2]);
    lfm2_context_free(c);
    lfm2_model_free(m);
    fclose(fp);
}

/* The same logits, bit for bit, whatever the thread count (both paths). */
static void check_threads(const char *name, int reference) {
    float *out[2] = {NULL, NULL};
    size_t V = 0;
    for (int i = 0; i < 2; i++) {
        FILE *fp;
        lfm2_model *m = open_model_threads(name, reference, i ? 3 : 1, &fp);
        if (!m) return;
        V = (size_t)lfm2_model_n_vocab(m);
        lfm2_context *c = NULL;
        CHECK(lfm2_context_new(m, 64, &c) == LFM2_OK, "%s", lfm2_last_error());
        out[i] = malloc(24 * V * sizeof(float));
        CHECK(lfm2_eval(c, PROMPT, 24, out[i], 1) == LFM2_OK, "%s", lfm2_last_error());
        for (int t = 0; t < 4; t++) CHECK(lfm2_eval(c, PROMPT + t, 1, out[i] + t * V, 0) == LFM2_OK, "%s", lfm2_last_error());
        lfm2_context_free(c);
        lfm2_model_free(m);
        fclose(fp);
    }
    CHECK(memcmp(out[0], out[1], 24 * V * sizeof(float)) == 0, "%s: 1 and 3 threads differ", name);
    free(out[0]), free(out[1]);
}

/* Logits of the prompt, then 8 one-token steps, under a memory budget (0: none). */
static float *run_budget(const char *name, uint64_t budget, int policy, lfm2_stats *st) {
    FILE *fp;
    lfm2_model *m = open_model_budget(name, 0, 2, budget, policy, LFM2_OK, &fp);
    if (!m) return NULL;
    const size_t V = (size_t)lfm2_model_n_vocab(m);
    lfm2_context *c = NULL;
    CHECK(lfm2_context_new(m, 64, &c) == LFM2_OK, "%s", lfm2_last_error());
    float *out = malloc(32 * V * sizeof(float));
    CHECK(lfm2_eval(c, PROMPT, 24, out, 1) == LFM2_OK, "%s", lfm2_last_error());
    for (int t = 0; t < 8; t++) CHECK(lfm2_eval(c, PROMPT + 3 * t, 1, out + (24 + t) * V, 0) == LFM2_OK, "%s", lfm2_last_error());
    lfm2_model_stats(m, st);
    lfm2_context_free(c);
    lfm2_model_free(m);
    fclose(fp);
    return out;
}

/* A budget far below the model: same logits, bit for bit, with evictions on every token. With
 * `overlap` (expert products big enough for the 2-thread pool), some slabs are read while the
 * worker computes: that path gives the same bits too. */
static void check_budget(const char *name, bool overlap) {
    lfm2_stats full, tight, two;
    float *want = run_budget(name, 0, 0, &full);
    if (!want) return;
    const double slab = full.expert_bytes / full.expert_slots;
    CHECK(full.expert_misses == 0 && full.expert_evictions == 0, "resident model missed %g", full.expert_misses);
    /* room for exactly one expert slab: every use after the first is a miss */
    const uint64_t one = (uint64_t)(full.dense_bytes + full.context_bytes + slab);
    float *got = run_budget(name, one, LFM2_CACHE_LFU, &tight);
    const size_t V = 1024;
    CHECK(got && memcmp(got, want, 32 * V * sizeof(float)) == 0, "%s: logits under a one-expert budget differ", name);
    CHECK(tight.expert_slots == 1 && tight.expert_hits == 0 && tight.expert_evictions >= tight.expert_misses - 1,
          "%s: slots %g hits %g misses %g evictions %g", name, tight.expert_slots, tight.expert_hits, tight.expert_misses,
          tight.expert_evictions);
    /* slabs may differ in size between layers (mixed quantizations); the slot is the largest */
    CHECK(tight.bytes_read <= tight.expert_misses * slab && tight.bytes_read > 0, "bytes read %g", tight.bytes_read);
    CHECK(tight.expert_hits + tight.expert_misses == full.expert_hits, "accesses %g + %g != %g", tight.expert_hits,
          tight.expert_misses, full.expert_hits);
    free(got);
    got = run_budget(name, one + (uint64_t)slab * 3, LFM2_CACHE_LRU, &two);
    CHECK(got && memcmp(got, want, 32 * V * sizeof(float)) == 0, "%s: logits under a 4-expert LRU budget differ", name);
    CHECK(two.expert_slots == 4 && two.expert_hits + two.expert_misses == full.expert_hits, "slots %g hits %g",
          two.expert_slots, two.expert_hits);
    /* one slot: nothing can be read ahead, every read is waited for */
    CHECK(tight.read_wait_seconds == tight.read_seconds, "%s: waited %g of %g s", name, tight.read_wait_seconds,
          tight.read_seconds);
    CHECK(overlap ? two.read_wait_seconds < two.read_seconds : two.read_wait_seconds <= two.read_seconds,
          "%s: waited %g of %g s", name, two.read_wait_seconds, two.read_seconds);
    free(got);
    free(want);
    /* too small for the dense part: a clear error naming the minimum */
    FILE *fp;
    CHECK(open_model_budget(name, 0, 1, (uint64_t)full.dense_bytes / 2, 0, LFM2_E_BUDGET, &fp) == NULL, "opened");
    CHECK(strstr(lfm2_last_error(), "at least") != NULL, "message: %s", lfm2_last_error());
    /* the dense part fits but not a context as well */
    lfm2_model *m = open_model_budget(name, 0, 1, (uint64_t)(full.dense_bytes + slab) + 16, 0, LFM2_OK, &fp);
    lfm2_context *c = NULL;
    if (m) {
        CHECK(lfm2_context_new(m, 64, &c) == LFM2_E_BUDGET && c == NULL, "context accepted over budget");
        lfm2_model_free(m);
        fclose(fp);
    }
}

int main(void) {
    const char *f32[] = {"tiny-f32", "kq2-f32", "dense-f32"};
    for (int i = 0; i < 3; i++) check_reference(f32[i], 1e-3f);
    const char *quant[] = {"tiny-q4_0", "kq-q4_k_m", "kq2-iq4_xs", "dense-q4_0"};
    for (int i = 0; i < 4; i++) check_reference(quant[i], 1e-2f);
    check_batch_decode_truncate("tiny-f32", 1e-4f);
    check_batch_decode_truncate("dense-q4_0", 0);
    check_outputs("tiny-q4_0");
    check_outputs("kq2-q8_0-exps_q4_0");
    check_outputs("dense-q4_0");
    check_threads("kq2-q5_k_m", 0);
    check_threads("kq2-f32", 1);
    check_budget("tiny-q4_0", false);
    check_budget("kq-q4_k_m", true);
    return check_report("engine");
}
