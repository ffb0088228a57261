/* gguf.h - the GGUF format: reading files (v2/v3) by mmap (gguf.c), and
 * writing small ones (gguf_write.c).
 *
 * The reader treats the file as untrusted: every count, length, offset and size
 * is checked against the file length before it is used, so a truncated or
 * malicious file yields an error, never an out-of-bounds read. */
#ifndef KVS_GGUF_H
#define KVS_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "kvsteer.h"

enum gguf_vtype {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4, GGUF_I32 = 5,
    GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STR = 8, GGUF_ARR = 9, GGUF_U64 = 10,
    GGUF_I64 = 11, GGUF_F64 = 12, GGUF_VTYPE_COUNT
};

typedef struct gguf_str {
    const char *p;  /* points into the mapping; not NUL-terminated */
    uint64_t n;
} gguf_str;

typedef struct gguf_kv {
    char *key;           /* NUL-terminated copy */
    uint32_t type;       /* gguf_vtype */
    uint32_t arr_type;   /* element type when type == GGUF_ARR */
    uint64_t arr_n;      /* element count when type == GGUF_ARR */
    const uint8_t *data; /* scalar value, or first array element, in the mapping */
    gguf_str *strs;      /* parsed strings for GGUF_STR (1) and string arrays (arr_n) */
} gguf_kv;

#define GGUF_MAX_DIMS 4
#define GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */

/* Bytes of one value of scalar type t; 0 for strings, arrays and unknown types. */
size_t gguf_scalar_size(uint32_t t);

typedef struct gguf_tensor {
    char *name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the contiguous (row) dimension */
    uint32_t type;              /* ggtype */
    uint64_t offset;            /* relative to the data section */
    uint64_t nbytes;
    const void *data;           /* in the mapping */
} gguf_tensor;

typedef struct gguf_file {
    char *path;
    const uint8_t *map;
    size_t size;
    uint32_t version;
    uint64_t n_kv, n_tensors;
    gguf_kv *kv;
    gguf_tensor *tensors;
    uint64_t alignment;
    uint64_t data_offset;
} gguf_file;

/* Open by mmap (path) or over a caller-owned buffer (for fuzzing/tests). */
gguf_file *gguf_open(const char *path, kvs_error *err);
gguf_file *gguf_open_buffer(const void *buf, size_t size, const char *label, kvs_error *err);
void gguf_close(gguf_file *f);
/* The caller will not read [p, p + n) of the mapping again (a tensor it copied):
 * its whole pages leave the process's memory.  No effect on a buffer. */
void gguf_release(const gguf_file *f, const void *p, size_t n);

const gguf_kv *gguf_find(const gguf_file *f, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* Typed getters; they return 0 on success, KVS_E_FORMAT if the key is missing or
 * of an incompatible type (numeric types convert when the value fits). */
int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out);
int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out);
int gguf_get_f64(const gguf_file *f, const char *key, double *out);
int gguf_get_bool(const gguf_file *f, const char *key, int *out);
int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);
/* Numeric array element i converted to double / int64. */
int gguf_arr_f64(const gguf_kv *kv, uint64_t i, double *out);
int gguf_arr_i64(const gguf_kv *kv, uint64_t i, int64_t *out);

const char *gguf_vtype_name(uint32_t t);

/* ------------------------------------------------------------- writer */

typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_new(void);
void gguf_writer_free(gguf_writer *w);
int gguf_writer_add_str(gguf_writer *w, const char *key, const char *val);
int gguf_writer_add_u32(gguf_writer *w, const char *key, uint32_t val);
int gguf_writer_add_i32(gguf_writer *w, const char *key, int32_t val);
int gguf_writer_add_u64(gguf_writer *w, const char *key, uint64_t val);
int gguf_writer_add_f32(gguf_writer *w, const char *key, float val);
/* F32 tensor of shape ne[0..n_dims-1]; data copied. */
int gguf_writer_add_tensor_f32(gguf_writer *w, const char *name, int n_dims,
                               const uint64_t *ne, const float *data);
/* Writes to path.tmp.XXXXXX then renames, so no partial file is ever left. */
int gguf_writer_save(gguf_writer *w, const char *path, kvs_error *err);

#endif
