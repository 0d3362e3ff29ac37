/* bench_tokenizer.c: tokenize ~1 MB of deterministic mixed text (prose, code, numbers, CJK, emoji,
 * chat markup) with the fixture vocabulary and print tokens/s. Run from the repository root:
 *   gcc -std=c11 -O2 -Isrc -Ikernels tests/bench/bench_tokenizer.c src/[a-z]*.c kernels/[a-z]*.c
 *       -lm -o /tmp/bench_tok && /tmp/bench_tok [model.gguf]
 * (only the tokenizer, unicode, gguf and status sources are needed; gguf pulls in the kernels) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gguf.h"
#include "tokenizer.h"

typedef struct {
    const unsigned char *data;
    size_t size;
} mem_file;

static int mem_read(void *ctx, uint64_t offset, size_t len, void *dst) {
    const mem_file *m = ctx;
    if (offset > m->size || len > m->size - offset) return 1;
    memcpy(dst, m->data + offset, len);
    return 0;
}

static double now(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint32_t g_state = 12345;
static uint32_t rnd(void) {
    g_state = g_state * 1664525u + 1013904223u;
    return g_state >> 8;
}

static char *make_text(size_t target, size_t *len) {
    static const char *const pieces[] = {
        "The ", "quick ", "brown ", "fox ", "jumps ", "over ", "the ", "lazy ", "dog. ", "It's ",
        "we'll ", "DON'T ", "however, ", "tokenization ", "is ", "surprisingly ", "subtle; ",
        "naïve ", "café ", "résumé ", "Zürich ", "Привет, ", "мир! ", "Γειά ", "σου ", "日本語の",
        "テキスト ", "中文 ", "한국어 ", "😀🚀👍🏽 ", "e\xcc\x81 ", "\n", "\n\n", "\r\n", "\t",
        "    ", "def f(x):\n    return x * 2 + 1\n", "if (a[i] != b[j]) { k++; }\n",
        "1234567890 ", "3.14159 ", "2+2=4 ", "1,000,000 ", "http://example.com/path?q=1&x=y ",
        "<|im_start|>user\n", "<|im_end|>\n", "!!! ??? ... --- ", "snake_case kebab-case ",
        "camelCaseWord ", "xxxxxxxxxxxxxxxxxxxxxxxx ", "   ", "\xe2\x80\x94 ", "\xc2\xa0"};
    size_t n_pieces = sizeof pieces / sizeof pieces[0];
    char *t = malloc(target + 256);
    size_t n = 0;
    while (n < target) {
        const char *p = pieces[rnd() % n_pieces];
        size_t l = strlen(p);
        memcpy(t + n, p, l);
        n += l;
    }
    *len = n;
    return t;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "tests/fixtures/models/tiny-f32.gguf";
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    size_t size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc(size);
    if (!data || fread(data, 1, size, f) != size) {
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    fclose(f);
    mem_file mf = {data, size};
    gguf_file *gf = NULL;
    lfm2_tokenizer *tok = NULL;
    double t0 = now();
    if (gguf_open(mem_read, &mf, size, &gf) || lfm2_tokenizer_from_gguf(gf, &tok)) {
        fprintf(stderr, "load failed: %s\n", lfm2_last_error());
        return 1;
    }
    double t_load = now() - t0;

    size_t len;
    char *text = make_text(1 << 20, &len);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    double best = 1e9;
    for (int rep = 0; rep < 5; rep++) {
        free(ids);
        t0 = now();
        if (lfm2_tokenize_alloc(tok, text, len, true, true, &ids, &n_ids)) {
            fprintf(stderr, "tokenize failed: %s\n", lfm2_last_error());
            return 1;
        }
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    size_t out_len = 0;
    char *back = malloc(len + 64);
    t0 = now();
    lfm2_status st = lfm2_detokenize(tok, ids, n_ids, true, false, back, len + 64, &out_len);
    double t_detok = now() - t0;
    int same = st == LFM2_OK && out_len == len + 15 && memcmp(back + 15, text, len) == 0;
    printf("vocab %u tokens (load %.1f ms)\n", lfm2_tokenizer_n_vocab(tok), t_load * 1e3);
    printf("tokenize:   %zu bytes -> %zu tokens in %.1f ms: %.2f M tokens/s, %.1f MB/s\n", len, n_ids,
           best * 1e3, n_ids / best / 1e6, len / best / 1e6);
    printf("detokenize: %.1f ms; round trip %s\n", t_detok * 1e3, same ? "ok" : "MISMATCH");
    free(back);
    free(ids);
    free(text);
    lfm2_tokenizer_free(tok);
    gguf_close(gf);
    free(data);
    return same ? 0 : 1;
}
