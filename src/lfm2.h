/* lfm2.h: the public C API of the lfm2-wasm engine, the one door between C and JS.
 *
 * Every call that can fail returns an lfm2_status; lfm2_last_error() then gives a one-line message
 * for the calling thread. Nothing here aborts on bad input. */
#ifndef LFM2_H
#define LFM2_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    LFM2_OK = 0,
    LFM2_E_ARG = 1,            /* invalid argument or API misuse */
    LFM2_E_NOMEM = 2,          /* allocation failed */
    LFM2_E_IO = 3,             /* the read callback failed */
    LFM2_E_MAGIC = 4,          /* not a GGUF file */
    LFM2_E_VERSION = 5,        /* GGUF version other than 2 or 3 */
    LFM2_E_TRUNCATED = 6,      /* the file ends inside the header or tensor table */
    LFM2_E_TOO_LARGE = 7,      /* a count or string length larger than the file could hold */
    LFM2_E_KV_TYPE = 8,        /* unknown metadata value type */
    LFM2_E_DUPLICATE = 9,      /* a key or tensor name appears twice */
    LFM2_E_TENSOR_TYPE = 10,   /* unknown or unsupported tensor type */
    LFM2_E_DIMS = 11,          /* bad number of dimensions or a dimension < 1 */
    LFM2_E_OVERFLOW = 12,      /* a dimension product or byte size overflows */
    LFM2_E_BLOCKS = 13,        /* a row is not a whole number of quantization blocks */
    LFM2_E_TENSOR_BOUNDS = 14, /* tensor data outside the file, misaligned or overlapping */
    LFM2_E_ALIGNMENT = 15,     /* general.alignment is not a power of two (or of the wrong type) */
    LFM2_E_KEY_MISSING = 16,   /* a required metadata key is absent */
    LFM2_E_KEY_TYPE = 17,      /* a metadata key has the wrong type */
    LFM2_E_ARCH = 18,          /* general.architecture is not lfm2 or lfm2moe */
    LFM2_E_TENSOR_MISSING = 19,/* a required tensor is absent */
    LFM2_E_TENSOR_SHAPE = 20,  /* a tensor has the wrong shape for the architecture */
    LFM2_E_HPARAM = 21,        /* hyperparameters out of range or contradicting the tensors */
    LFM2_E_TOKEN = 22,         /* a token id outside the vocabulary */
    LFM2_E_CONTEXT_FULL = 23,  /* the context window has no room for the tokens */
    LFM2_E_BUDGET = 24,        /* the memory budget cannot hold what must stay resident */
    LFM2_E_STATE = 25,         /* a call not valid in the current state */
    LFM2_E_UTF8 = 26,          /* text that is not valid UTF-8 where it must be */
    LFM2_STATUS_COUNT = 27
} lfm2_status;

/* Stable short name of a status ("LFM2_E_TRUNCATED"), for JS error codes. */
const char *lfm2_status_name(int status);
/* The message of the last failure on this thread ("" if none). */
const char *lfm2_last_error(void);

/* The one way the engine reads a model: copy len bytes at offset into dst. Returns 0 on success,
 * non-zero on failure (the engine then reports LFM2_E_IO). Must be safe to call from any thread. */
typedef int (*lfm2_read_fn)(void *ctx, uint64_t offset, size_t len, void *dst);

/* ---- models ---- */

typedef struct lfm2_model lfm2_model;

typedef struct {
    int reference;     /* 1: dequantise and compute in f32 (slow; the ground truth) */
    int header_only;   /* 1: read the header and tensor table only (info, tokenizer) */
    int n_threads;     /* threads that share the work (0 or 1: the caller only) */
    int cache_policy;  /* expert cache eviction: LFM2_CACHE_LFU (default) or LFM2_CACHE_LRU */
    uint64_t memory_budget; /* bytes for weights, contexts and the expert cache; 0: no limit */
} lfm2_model_params;

enum { LFM2_CACHE_LFU = 0, LFM2_CACHE_LRU = 1 };

/* Expert cache and memory figures (all counts since open; doubles so JS reads them plainly). */
typedef struct {
    double expert_hits, expert_misses, expert_evictions;
    double bytes_read;        /* by expert misses */
    double read_seconds;      /* time spent on those reads */
    double dense_bytes;       /* resident dense tensors */
    double expert_bytes;      /* resident expert slabs */
    double context_bytes;     /* reserved by contexts */
    double budget;            /* 0: no limit */
    double expert_slots;      /* slabs the cache holds now */
    double read_wait_seconds; /* the part of read_seconds not overlapped with the threads' compute */
} lfm2_stats;

void lfm2_model_stats(const lfm2_model *m, lfm2_stats *out);

/* Open a GGUF model of `size` bytes through `read`. Reads the header, the tensor table and (unless
 * header_only) the tensors it keeps resident. `read`/`ctx` must stay valid until lfm2_model_free. */
lfm2_status lfm2_model_open(lfm2_read_fn read, void *ctx, uint64_t size, const lfm2_model_params *params,
                            lfm2_model **out);
void lfm2_model_free(lfm2_model *m);

/* A JSON object describing the model: architecture, hyperparameters, tensor types and sizes.
 * Owned by the model. */
const char *lfm2_model_info_json(lfm2_model *m);
int32_t lfm2_model_n_vocab(const lfm2_model *m);
uint32_t lfm2_model_n_ctx_train(const lfm2_model *m);

/* ---- contexts: the evaluation state (KV cache and conv state) of one sequence ---- */

typedef struct lfm2_context lfm2_context;

/* n_ctx = 0: min(the model's training context, 4096). */
lfm2_status lfm2_context_new(lfm2_model *m, uint32_t n_ctx, lfm2_context **out);
void lfm2_context_free(lfm2_context *c);
uint32_t lfm2_context_n_ctx(const lfm2_context *c);
/* Number of tokens the state holds. */
uint32_t lfm2_context_n_past(const lfm2_context *c);

/* Evaluate n tokens after those the state holds, as one batch. logits: NULL, or room for
 * n x n_vocab floats (all_logits = 1, row i = logits after token i) or n_vocab floats (the last
 * token's). Out-of-range tokens (LFM2_E_TOKEN) or too many tokens (LFM2_E_CONTEXT_FULL) are
 * rejected before anything is evaluated. */
lfm2_status lfm2_eval(lfm2_context *c, const int32_t *tokens, uint32_t n, float *logits, int all_logits);

/* Keep the first n tokens of the state (n <= n_past), as if only they had been evaluated. */
lfm2_status lfm2_truncate(lfm2_context *c, uint32_t n);

/* ---- text: the model's tokenizer (from its GGUF metadata) ---- */

/* Tokenize text[0..len) (any bytes; invalid UTF-8 becomes U+FFFD as in llama.cpp). add_special:
 * add BOS if the model asks for it; parse_special: match special tokens in the text. *n_out gets
 * the number of tokens; if cap is too small nothing is written and LFM2_E_ARG is returned (so
 * cap = 0 asks for the size). LFM2_E_STATE if the model has no tokenizer. */
lfm2_status lfm2_model_tokenize(lfm2_model *m, const char *text, size_t len, int add_special, int parse_special,
                                int32_t *out, size_t cap, size_t *n_out);
/* The text of ids, with special tokens rendered if asked and llama.cpp's space cleaning if asked.
 * Sizes as lfm2_model_tokenize; LFM2_E_TOKEN for an id outside the vocabulary. */
lfm2_status lfm2_model_detokenize(lfm2_model *m, const int32_t *ids, size_t n, int render_special, int clean_spaces,
                                  char *out, size_t cap, size_t *n_out);
/* The bytes of one token (may be part of a UTF-8 sequence); valid while the model lives. */
lfm2_status lfm2_model_token_piece(lfm2_model *m, int32_t id, int render_special, const char **piece, size_t *len);
/* 1 if id ends a generation (EOS, <|im_end|>, <|endoftext|>, ...). */
int lfm2_model_token_is_eog(const lfm2_model *m, int32_t id);
int32_t lfm2_model_token_bos(const lfm2_model *m); /* -1 if none */
int32_t lfm2_model_token_eos(const lfm2_model *m); /* -1 if none */
/* The GGUF's tokenizer.chat_template (Jinja), or "" if it has none. */
const char *lfm2_model_chat_template(const lfm2_model *m);

/* ---- sampling (order and semantics: src/sampler.h) ---- */

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

#ifdef __cplusplus
}
#endif
#endif
