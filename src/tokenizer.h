/* tokenizer.h: LFM2's tokenizer, byte-level BPE with the Llama-3 pre-tokenizer, matching llama.cpp
 * (gpt2 vocabulary, "lfm2" pre-tokenizer: ignore_merges, clean_spaces, special-token parsing).
 *
 * A tokenizer is immutable after creation: every function taking a const lfm2_tokenizer * may be
 * called from several threads at once. Functions that fill a caller's buffer follow one rule:
 * *n_out always receives the full size needed; if cap is smaller, nothing is written and the call
 * fails with LFM2_E_ARG (so a first call with cap 0 asks for the size). */
#ifndef LFM2_TOKENIZER_H
#define LFM2_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "lfm2.h"

typedef struct lfm2_tokenizer lfm2_tokenizer;

/* GGUF tokenizer.ggml.token_type values */
enum lfm2_token_type {
    LFM2_TOKEN_UNDEFINED = 0,
    LFM2_TOKEN_NORMAL = 1,
    LFM2_TOKEN_UNKNOWN = 2,
    LFM2_TOKEN_CONTROL = 3,
    LFM2_TOKEN_USER_DEFINED = 4,
    LFM2_TOKEN_UNUSED = 5,
    LFM2_TOKEN_BYTE = 6
};

/* Build a tokenizer from the GGUF arrays: tokens[n_vocab] (tokenizer.ggml.tokens), types[n_vocab]
 * (tokenizer.ggml.token_type; NULL = all normal), merges[n_merges] ("left right" strings, rank =
 * index). bos_id/eos_id: -1 if none (out-of-range ids count as none). add_bos: BOS is prepended by
 * lfm2_tokenize(add_special = true). Everything is copied; the arrays may be freed afterwards.
 * Fails with LFM2_E_ARG on a duplicate token text, LFM2_E_NOMEM on allocation failure. */
lfm2_status lfm2_tokenizer_create(const gguf_str *tokens, const int32_t *types, uint32_t n_vocab,
                                  const gguf_str *merges, uint32_t n_merges, int32_t bos_id,
                                  int32_t eos_id, bool add_bos, lfm2_tokenizer **out);

/* Same, from an open GGUF file's tokenizer.* metadata (model "gpt2" with a Llama-3-style
 * pre-tokenizer such as "lfm2"; anything else fails with LFM2_E_HPARAM). */
lfm2_status lfm2_tokenizer_from_gguf(const gguf_file *f, lfm2_tokenizer **out);

void lfm2_tokenizer_free(lfm2_tokenizer *tok);

uint32_t lfm2_tokenizer_n_vocab(const lfm2_tokenizer *tok);
int32_t lfm2_tokenizer_bos(const lfm2_tokenizer *tok); /* -1 if none */
int32_t lfm2_tokenizer_eos(const lfm2_tokenizer *tok); /* -1 if none */
/* End of generation: EOS and the tokens llama.cpp recognises by text (<|im_end|>, <|endoftext|>,
 * <|eot_id|>, ...). False for ids out of range. */
bool lfm2_tokenizer_is_eog(const lfm2_tokenizer *tok, int32_t id);
/* A token rendered only on request (control or unknown). False for ids out of range. */
bool lfm2_tokenizer_is_control(const lfm2_tokenizer *tok, int32_t id);
/* The id of a token by its exact vocabulary text, or -1. */
int32_t lfm2_tokenizer_find(const lfm2_tokenizer *tok, const char *text, size_t len);

/* Tokenize text[0..len) (any bytes; invalid UTF-8 is handled like llama.cpp, as U+FFFD).
 * add_special: prepend BOS if the vocabulary asks for it. parse_special: control tokens written in
 * the text (e.g. "<|im_start|>") become their ids; user-defined tokens are always matched. */
lfm2_status lfm2_tokenize(const lfm2_tokenizer *tok, const char *text, size_t len, bool add_special,
                          bool parse_special, int32_t *out, size_t cap, size_t *n_out);
/* Same, into a malloc'd array (*out, free() it; NULL when *n_out is 0). */
lfm2_status lfm2_tokenize_alloc(const lfm2_tokenizer *tok, const char *text, size_t len,
                                bool add_special, bool parse_special, int32_t **out, size_t *n_out);

/* The bytes of ids[0..n): each token's text with the byte-level map undone; control/unknown
 * tokens appear as their text only if render_special. clean_spaces applies llama.cpp's cleanup
 * (" ?" -> "?", " 's" -> "'s", ...; on for LFM2 in llama.cpp). No NUL terminator is added.
 * An id outside the vocabulary fails with LFM2_E_TOKEN. */
lfm2_status lfm2_detokenize(const lfm2_tokenizer *tok, const int32_t *ids, size_t n,
                            bool render_special, bool clean_spaces, char *out, size_t cap,
                            size_t *n_out);

/* The bytes of one token (as lfm2_detokenize of it alone, no space cleaning). The pointer stays
 * valid while the tokenizer lives. Fails with LFM2_E_TOKEN for an id out of range. */
lfm2_status lfm2_token_piece(const lfm2_tokenizer *tok, int32_t id, bool render_special,
                             const char **piece, size_t *len);

/* Streaming detokenizer: feed tokens one at a time and receive only whole UTF-8 characters; the
 * start of a character split across tokens is kept until it completes. Bytes that cannot become
 * valid UTF-8 are passed through unchanged as soon as that is certain, so the concatenation of
 * all outputs (plus the final flush) equals lfm2_detokenize(..., clean_spaces = false) of the
 * whole sequence. Zero-initialise the state (or call lfm2_detok_stream_init). */
typedef struct {
    unsigned char pending[4];
    uint8_t n_pending;
} lfm2_detok_stream;

void lfm2_detok_stream_init(lfm2_detok_stream *st);
/* Emits at most 3 + the token's piece length bytes. On failure the state is unchanged. */
lfm2_status lfm2_detok_stream_push(const lfm2_tokenizer *tok, lfm2_detok_stream *st, int32_t id,
                                   bool render_special, char *out, size_t cap, size_t *n_out);
/* Emits the kept incomplete tail (at most 3 bytes) as it is and resets the state. */
lfm2_status lfm2_detok_stream_flush(lfm2_detok_stream *st, char *out, size_t cap, size_t *n_out);

#endif
