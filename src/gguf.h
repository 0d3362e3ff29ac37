/* gguf.h: GGUF v2/v3 reader over one read callback. Reads and validates the header, metadata and
 * tensor table; never reads tensor data and never needs the whole file in memory. */
#ifndef LFM2_GGUF_H
#define LFM2_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lfm2.h"

/* GGUF metadata value types (the file's numbering). */
enum gguf_vtype {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4, GGUF_I32 = 5,
    GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_U64 = 10,
    GGUF_I64 = 11, GGUF_F64 = 12, GGUF_VTYPE_COUNT = 13
};

typedef struct {
    const char *ptr; /* NUL-terminated copy (the file's bytes; may contain NULs before len) */
    uint64_t len;
} gguf_str;

typedef struct {
    char *key;
    enum gguf_vtype type;
    union {
        uint64_t u64; /* U8, U16, U32, U64, BOOL (0/1) */
        int64_t i64;  /* I8, I16, I32, I64 */
        double f64;   /* F32, F64 */
        gguf_str str;
        struct {
            enum gguf_vtype type; /* element type; never GGUF_ARRAY (nested arrays are rejected) */
            uint64_t n;
            void *data;           /* n elements of the element's file size (packed, little endian),
                                     or gguf_str[n] for strings */
        } arr;
    } v;
} gguf_kv;

typedef struct {
    char *name;
    uint32_t type;      /* ggml type id (kernels/quant.h: enum kq_type) */
    uint32_t n_dims;    /* 1..4 */
    int64_t ne[4];      /* ne[0] contiguous; unused dims are 1 */
    uint64_t offset;    /* absolute byte offset of the data in the file */
    uint64_t nbytes;    /* bytes of data */
} gguf_tensor;

typedef struct gguf_file {
    uint32_t version;
    uint64_t file_size;
    uint64_t alignment;
    uint64_t data_offset; /* absolute start of the tensor data section */
    uint64_t n_kv;
    gguf_kv *kv;
    uint64_t n_tensors;
    gguf_tensor *tensors;
} gguf_file;

/* Open and validate. On failure returns the status, sets lfm2_last_error() and *out = NULL.
 * file_size is the total size of the file (everything is validated against it). */
lfm2_status gguf_open(lfm2_read_fn read, void *ctx, uint64_t file_size, gguf_file **out);
void gguf_close(gguf_file *f);

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* Typed getters. Missing key -> LFM2_E_KEY_MISSING, wrong type -> LFM2_E_KEY_TYPE, both with a
 * message naming the key. Integer getters accept any integer type whose value fits; float getters
 * accept F32/F64. */
lfm2_status gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
lfm2_status gguf_get_f32(const gguf_file *f, const char *key, float *out);
lfm2_status gguf_get_bool(const gguf_file *f, const char *key, bool *out);
lfm2_status gguf_get_str(const gguf_file *f, const char *key, const gguf_str **out);
/* Array getters: element type must match (integer arrays of any integer type are converted). */
lfm2_status gguf_get_arr_i32(const gguf_file *f, const char *key, int32_t **out, uint64_t *n); /* malloc'd copy */
lfm2_status gguf_get_arr_str(const gguf_file *f, const char *key, const gguf_str **out, uint64_t *n);

const char *gguf_vtype_name(enum gguf_vtype t);

#endif
