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

/* The public calls (params, create, bias, accept, sample, reset) are declared in lfm2.h. */

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
