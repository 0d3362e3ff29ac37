/* sampler.h: choosing the next token from a row of logits.
 *
 * The chain, applied in this fixed order (llama.cpp's common default chain, with the logit bias first
 * as llama.cpp's common_sampler does):
 *
 *   1. logit bias      logit += bias[token]; a bias of -INFINITY bans the token. NaN logits (and
 *                      +INFINITY logit + -INFINITY bias) count as -INFINITY: never sampled.
 *   2. penalties       over the distinct tokens among the last penalty_last_n accepted tokens, with
 *                      count = occurrences in that window (llama.cpp semantics, in float):
 *                        logit = logit <= 0 ? logit * repeat_penalty : logit / repeat_penalty;
 *                        logit -= count * frequency_penalty + presence_penalty;
 *   3. greedy          if temperature <= 0: the argmax of the logits above (ties -> lowest id); the
 *                      filters below are skipped (they always keep the argmax anyway) and no random
 *                      number is drawn.
 *   4. top-k           keep the top_k highest logits (top_k <= 0: off). Ties rank the lower id first.
 *   5. top-p           softmax at temperature 1 over the survivors; keep the smallest prefix, highest
 *                      first, whose probability sum is >= top_p (top_p == 1: off).
 *   6. min-p           keep tokens with p >= min_p * p_max, i.e. logit >= max_logit + log(min_p),
 *                      at temperature 1 (min_p <= 0: off).
 *   7. temperature     p ~ exp((logit - max_logit) / temperature) over the survivors.
 *   8. sample          one uniform double u in [0, 1) from the RNG per call; the first survivor whose
 *                      running probability sum exceeds u * total is chosen.
 *
 * Determinism: the RNG is xoshiro256** seeded through splitmix64, integer-only; u takes the top 53
 * bits. Probabilities are computed in double, and every sum is taken in a fixed order (token id
 * order, or rank order once a filter has ranked the survivors), so a seed gives the same tokens on
 * x86-64 and wasm32 unless a libm exp() differs in the last bit exactly at a decision boundary.
 *
 * Order of the survivors (which fixes the token a given u picks): ranked (logit descending, ties ->
 * lower id) when top-k or top-p is on, else token id order.
 *
 * Cost: top-k is one scan with a bounded heap, O(n_vocab) plus O(log k) per heap entry; top-p without top-k
 * gathers only the rank prefix that can matter (a mass histogram by logit distance) and ranks it
 * lazily with a heap until the mass reaches top_p. No full sort. Scratch is allocated at create
 * (16 bytes per vocab entry); sampling never allocates. Measured at -O2 on x86-64, 128k vocab,
 * N(0, 3^2) logits: defaults (top_k 40) ~0.4 ms, min_p only ~0.5 ms, greedy ~0.35 ms, top_p 0.95
 * without top_k ~4.7 ms (thousands of tokens make up the mass there).
 *
 * A sampler is not thread safe; use one per generation stream. */
#ifndef LFM2_SAMPLER_H
#define LFM2_SAMPLER_H

#include <stdint.h>

#include "lfm2.h"

typedef struct {
    float temperature;       /* <= 0: greedy. Must be finite (NaN/inf rejected). */
    int32_t top_k;           /* <= 0: off */
    float top_p;             /* in (0, 1]; 1: off */
    float min_p;             /* <= 0: off; at most 1 */
    float repeat_penalty;    /* > 0; 1: off */
    float frequency_penalty; /* finite; 0: off */
    float presence_penalty;  /* finite; 0: off */
    int32_t penalty_last_n;  /* window of accepted tokens the penalties look at; >= 0; 0: off */
    uint64_t seed;           /* every seed is valid; the same seed gives the same tokens */
} lfm2_sampler_params;

/* Fills llama.cpp's defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, repeat_penalty 1,
 * frequency 0, presence 0, penalty_last_n 64, seed 0. (LFM2's model card suggests temperature 0.3,
 * min_p 0.15, repeat_penalty 1.05; the caller picks.) For greedy decoding set temperature = 0. */
void lfm2_sampler_params_default(lfm2_sampler_params *p);

typedef struct lfm2_sampler lfm2_sampler;

/* Validates p (LFM2_E_ARG with a message naming the bad field) and n_vocab (1 .. 2^24), copies the
 * params and allocates scratch (LFM2_E_NOMEM). On failure *out is NULL. */
lfm2_status lfm2_sampler_create(const lfm2_sampler_params *p, int32_t n_vocab, lfm2_sampler **out);
void lfm2_sampler_free(lfm2_sampler *s); /* NULL is fine */

/* Sets the additive bias of one token (replacing its previous bias; 0 removes it). -INFINITY bans the
 * token. LFM2_E_TOKEN for a token outside [0, n_vocab), LFM2_E_ARG for NaN or +INFINITY. Biases
 * survive lfm2_sampler_reset. */
lfm2_status lfm2_sampler_set_bias(lfm2_sampler *s, int32_t token, float bias);

/* Appends a token to the penalty window (the caller decides whether prompt tokens count; llama.cpp
 * accepts them too). Sampling does not accept by itself. LFM2_E_TOKEN if out of range. */
lfm2_status lfm2_sampler_accept(lfm2_sampler *s, int32_t token);

/* Runs the chain on n_vocab logits (read only) and stores the chosen token in *out_token.
 * LFM2_E_ARG for NULL arguments or when no token has a logit above -INFINITY after the bias. */
lfm2_status lfm2_sampler_sample(lfm2_sampler *s, const float *logits, int32_t *out_token);

/* Writes to out (n_vocab floats) the logits the filters see: steps 1-2 above, NaN -> -INFINITY.
 * For tests and debugging. */
lfm2_status lfm2_sampler_adjusted_logits(lfm2_sampler *s, const float *logits, float *out);

/* Clears the penalty window and re-seeds the RNG with the seed of the params (keeps the biases). */
void lfm2_sampler_reset(lfm2_sampler *s);
/* Re-seeds the RNG with a new seed (which a later reset also uses); keeps the penalty window. */
void lfm2_sampler_set_seed(lfm2_sampler *s, uint64_t seed);

/* The RNG, exposed so every platform can be checked against the same numbers.
 * lfm2_rng_seed: s[i] = successive splitmix64 outputs from state = seed.
 * lfm2_rng_next: xoshiro256** (Blackman & Vigna, 2018).
 * lfm2_rng_uniform: (next >> 11) * 2^-53, exactly representable, in [0, 1). */
typedef struct {
    uint64_t s[4];
} lfm2_rng;
void lfm2_rng_seed(lfm2_rng *r, uint64_t seed);
uint64_t lfm2_rng_next(lfm2_rng *r);
double lfm2_rng_uniform(lfm2_rng *r);

#endif
