/* text_api.c: the public tokenizer calls of lfm2.h, over the model's tokenizer. */
#include "engine.h"
#include "status.h"

static lfm2_status need_tokenizer(const lfm2_model *m) {
    lfm2_clear_error();
    if (!m) return lfm2_fail(LFM2_E_ARG, "no model");
    if (!m->tok) return lfm2_fail(LFM2_E_STATE, "the model file has no tokenizer");
    return LFM2_OK;
}

lfm2_status lfm2_model_tokenize(lfm2_model *m, const char *text, size_t len, int add_special, int parse_special,
                                int32_t *out, size_t cap, size_t *n_out) {
    lfm2_status s = need_tokenizer(m);
    return s ? s : lfm2_tokenize(m->tok, text, len, add_special, parse_special, out, cap, n_out);
}

lfm2_status lfm2_model_detokenize(lfm2_model *m, const int32_t *ids, size_t n, int render_special, int clean_spaces,
                                  char *out, size_t cap, size_t *n_out) {
    lfm2_status s = need_tokenizer(m);
    return s ? s : lfm2_detokenize(m->tok, ids, n, render_special, clean_spaces, out, cap, n_out);
}

lfm2_status lfm2_model_token_piece(lfm2_model *m, int32_t id, int render_special, const char **piece, size_t *len) {
    lfm2_status s = need_tokenizer(m);
    return s ? s : lfm2_token_piece(m->tok, id, render_special, piece, len);
}

int lfm2_model_token_is_eog(const lfm2_model *m, int32_t id) { return m->tok && lfm2_tokenizer_is_eog(m->tok, id); }
int32_t lfm2_model_token_bos(const lfm2_model *m) { return m->tok ? lfm2_tokenizer_bos(m->tok) : -1; }
int32_t lfm2_model_token_eos(const lfm2_model *m) { return m->tok ? lfm2_tokenizer_eos(m->tok) : -1; }

const char *lfm2_model_chat_template(const lfm2_model *m) {
    const gguf_kv *kv = gguf_find_kv(m->gguf, "tokenizer.chat_template");
    return kv && kv->type == GGUF_STRING ? kv->v.str.ptr : "";
}
