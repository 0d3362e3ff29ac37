/* info.c: lfm2_model_info_json, a description of a model built from its header alone. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "quant.h"
#include "status.h"

typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) {
    va_list ap;
    for (int tries = 0; tries < 2 && !b->oom; tries++) {
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) { b->oom = true; return; }
        if (b->p && b->len + (size_t)n < b->cap) { b->len += (size_t)n; return; }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *q = realloc(b->p, cap);
        if (!q) { b->oom = true; return; }
        b->p = q, b->cap = cap;
    }
}

/* A JSON string literal of at most 200 bytes of s (model names are short; metadata is untrusted). */
static void put_str(sbuf *b, const char *s) {
    put(b, "\"");
    for (size_t i = 0; s[i] && i < 200; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') put(b, "\\%c", ch);
        else if (ch < 0x20) put(b, "\\u%04x", ch);
        else put(b, "%c", ch);
    }
    put(b, "\"");
}

const char *lfm2_model_info_json(lfm2_model *m) {
    if (m->info_json) return m->info_json;
    const lfm2_hparams *hp = &m->g.hp;
    const gguf_file *f = m->gguf;
    sbuf b = {0};
    const gguf_kv *name = gguf_find_kv(f, "general.name");
    put(&b, "{\"architecture\":\"%s\",\"name\":", hp->arch == ARCH_LFM2MOE ? "lfm2moe" : "lfm2");
    put_str(&b, name && name->type == GGUF_STRING ? name->v.str.ptr : "");
    put(&b, ",\"gguf_version\":%u,\"file_size\":%llu,\"n_tensors\":%llu", f->version,
        (unsigned long long)f->file_size, (unsigned long long)f->n_tensors);
    put(&b, ",\"n_layer\":%u,\"n_embd\":%u,\"n_vocab\":%u,\"context_length\":%u,\"n_head\":%u,\"head_dim\":%u",
        hp->n_layer, hp->n_embd, hp->n_vocab, hp->n_ctx_train, hp->n_head, hp->head_dim);
    put(&b, ",\"n_ff\":%u,\"rope_theta\":%g,\"rms_eps\":%g,\"conv_l_cache\":%u", hp->n_ff, hp->rope_theta,
        hp->eps, hp->l_cache);
    put(&b, ",\"layers\":\"");
    for (uint32_t i = 0; i < hp->n_layer; i++) put(&b, "%c", hp->n_head_kv[i] ? 'A' : 'C');
    put(&b, "\",\"n_head_kv\":[");
    for (uint32_t i = 0; i < hp->n_layer; i++) put(&b, "%s%u", i ? "," : "", hp->n_head_kv[i]);
    put(&b, "]");
    if (hp->arch == ARCH_LFM2MOE)
        put(&b, ",\"n_expert\":%u,\"n_expert_used\":%u,\"n_ff_exp\":%u,\"n_dense_lead\":%u", hp->n_expert,
            hp->n_expert_used, hp->n_ff_exp, hp->n_dense_lead);
    /* bytes and parameters by type, and how much is experts (streamable) vs dense (resident) */
    uint64_t count[KQ_TYPE_MAX] = {0}, bytes[KQ_TYPE_MAX] = {0}, params = 0, expert_bytes = 0, total = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        count[t->type]++;
        bytes[t->type] += t->nbytes;
        total += t->nbytes;
        params += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
        if (strstr(t->name, "_exps.")) expert_bytes += t->nbytes;
    }
    put(&b, ",\"n_params\":%llu,\"tensor_bytes\":%llu,\"expert_bytes\":%llu,\"dense_bytes\":%llu",
        (unsigned long long)params, (unsigned long long)total, (unsigned long long)expert_bytes,
        (unsigned long long)(total - expert_bytes));
    put(&b, ",\"tensor_types\":{");
    bool first = true;
    for (int t = 0; t < KQ_TYPE_MAX; t++) {
        if (!count[t]) continue;
        put(&b, "%s\"%s\":{\"tensors\":%llu,\"bytes\":%llu}", first ? "" : ",", kq_get((uint32_t)t)->name,
            (unsigned long long)count[t], (unsigned long long)bytes[t]);
        first = false;
    }
    put(&b, "}}");
    if (b.oom) {
        free(b.p);
        return "{}";
    }
    m->info_json = b.p;
    return m->info_json;
}
