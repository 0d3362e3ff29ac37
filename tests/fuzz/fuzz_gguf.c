/* fuzz_gguf.c: libFuzzer target for the GGUF reader (tests/fuzz/run.sh builds and runs it).
 *
 * Each input is opened twice: as a whole file of exactly its bytes, and as the first bytes of a
 * larger virtual file (the input followed by 0xFF bytes up to +16 MiB), so that inputs holding
 * only a header (the seeds are fixture headers) still reach the tensor table checks and the success
 * path. (0xFF, not zeros: a header that runs into the tail fails fast on a huge count instead of
 * parsing megabytes of empty strings.) The read callback aborts if asked for bytes outside the file; on success every invariant
 * the loader relies on is checked and every getter is exercised. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "quant.h"

#define VIRTUAL_TAIL ((uint64_t)16 << 20)

typedef struct {
    const uint8_t *data;
    uint64_t n;    /* bytes backed by the input */
    uint64_t size; /* declared file size (>= n; the rest reads as 0xFF) */
} vfile;

static int vread(void *ctx, uint64_t off, size_t len, void *dst) {
    const vfile *v = ctx;
    if (len == 0 || off >= v->size || len > v->size - off) {
        fprintf(stderr, "read outside the file: offset %llu len %zu size %llu\n", (unsigned long long)off, len,
                (unsigned long long)v->size);
        abort();
    }
    uint64_t have = off < v->n ? v->n - off : 0;
    if (have > len) have = len;
    if (have) memcpy(dst, v->data + off, (size_t)have);
    memset((uint8_t *)dst + have, 0xFF, len - (size_t)have);
    return 0;
}

#define REQUIRE(c)                                                            \
    do {                                                                      \
        if (!(c)) {                                                           \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                          \
        }                                                                     \
    } while (0)

static void exercise(const gguf_file *f) {
    REQUIRE(f->version == 2 || f->version == 3);
    REQUIRE(f->alignment && !(f->alignment & (f->alignment - 1)));
    REQUIRE(f->data_offset % f->alignment == 0 && f->data_offset <= f->file_size);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        /* keys may hold NULs, so a lookup by C string can find another key or none */
        const gguf_kv *fk = gguf_find_kv(f, kv->key);
        REQUIRE(fk == NULL || !strcmp(fk->key, kv->key));
        if (fk == kv) REQUIRE(i == (uint64_t)(fk - f->kv));
        uint32_t u;
        float x;
        bool b;
        const gguf_str *s;
        int32_t *a = NULL;
        uint64_t n;
        (void)gguf_get_u32(f, kv->key, &u);
        (void)gguf_get_f32(f, kv->key, &x);
        (void)gguf_get_bool(f, kv->key, &b);
        if (gguf_get_str(f, kv->key, &s) == LFM2_OK) REQUIRE(s->ptr[s->len] == '\0');
        if (gguf_get_arr_i32(f, kv->key, &a, &n) == LFM2_OK) {
            REQUIRE(a != NULL && n == kv->v.arr.n);
            free(a);
        }
        if (gguf_get_arr_str(f, kv->key, &s, &n) == LFM2_OK) {
            volatile size_t sum = 0;
            for (uint64_t j = 0; j < n; j++) {
                REQUIRE(s[j].ptr[s[j].len] == '\0');
                if (s[j].len) sum += (uint8_t)s[j].ptr[0] + (uint8_t)s[j].ptr[s[j].len - 1];
            }
            (void)sum;
        }
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        REQUIRE(t->n_dims >= 1 && t->n_dims <= 4);
        const kq_traits *tr = kq_get(t->type);
        REQUIRE(tr != NULL);
        int64_t nel = 1;
        for (int d = 0; d < 4; d++) {
            REQUIRE(t->ne[d] >= 1);
            REQUIRE(!__builtin_mul_overflow(nel, t->ne[d], &nel));
        }
        REQUIRE(t->ne[0] % tr->blck == 0);
        REQUIRE(t->nbytes == (uint64_t)(nel / tr->blck) * tr->bytes);
        REQUIRE(t->offset >= f->data_offset && (t->offset - f->data_offset) % f->alignment == 0);
        REQUIRE(t->offset <= f->file_size && t->nbytes <= f->file_size - t->offset);
        const gguf_tensor *ft = gguf_find_tensor(f, t->name);
        REQUIRE(ft == NULL || !strcmp(ft->name, t->name));
    }
    (void)gguf_find_kv(f, "general.architecture");
    (void)gguf_find_tensor(f, "token_embd.weight");
}

static void run(const uint8_t *data, size_t size, uint64_t file_size) {
    vfile v = {data, size, file_size};
    gguf_file *f = NULL;
    lfm2_status s = gguf_open(vread, &v, file_size, &f);
    if (s == LFM2_OK) {
        REQUIRE(f != NULL && f->file_size == file_size);
        exercise(f);
        gguf_close(f);
    } else {
        REQUIRE(f == NULL);
        REQUIRE(lfm2_last_error()[0] != '\0');
        REQUIRE(s > LFM2_OK && s < LFM2_STATUS_COUNT);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    run(data, size, size);
    run(data, size, size + VIRTUAL_TAIL);
    return 0;
}
