/* gguf.c - the GGUF reader (gguf.h): untrusted bytes checked before use. */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "ggtype.h"

/* Sanity bounds: far above any real model, low enough that a hostile count cannot
 * make us allocate gigabytes before the file-length check catches it. */
#define GGUF_MAX_KEY 65536u
#define GGUF_MAX_DIM_N ((uint64_t)1 << 40)

typedef struct cursor {
    const uint8_t *p;
    size_t size, off;
    const char *label;
    kvs_error *err;
} cursor;

static int need(cursor *c, uint64_t n, const char *what) {
    if (n > c->size - c->off)
        return err_fail(c->err, KVS_E_FORMAT, "%s: truncated file (reading %s at byte %zu)",
                        c->label, what, c->off);
    return 0;
}

static int rd(cursor *c, void *out, size_t n, const char *what) {
    if (need(c, n, what)) return KVS_E_FORMAT;
    memcpy(out, c->p + c->off, n);
    c->off += n;
    return 0;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what) { return rd(c, v, 4, what); }
static int rd_u64(cursor *c, uint64_t *v, const char *what) { return rd(c, v, 8, what); }

static int rd_str(cursor *c, gguf_str *s, const char *what) {
    uint64_t n;
    if (rd_u64(c, &n, what)) return KVS_E_FORMAT;
    if (need(c, n, what)) return KVS_E_FORMAT;
    s->p = (const char *)c->p + c->off;
    s->n = n;
    c->off += n;
    return 0;
}

size_t gguf_scalar_size(uint32_t t) {
    switch (t) {
    case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
    case GGUF_U16: case GGUF_I16: return 2;
    case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
    case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
    default: return 0;
    }
}

const char *gguf_vtype_name(uint32_t t) {
    static const char *names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                                  "string", "array", "u64", "i64", "f64"};
    return t < GGUF_VTYPE_COUNT ? names[t] : "?";
}

static int parse_kv(cursor *c, gguf_kv *kv) {
    gguf_str key;
    if (rd_str(c, &key, "metadata key")) return KVS_E_FORMAT;
    if (key.n == 0 || key.n > GGUF_MAX_KEY)
        return err_fail(c->err, KVS_E_FORMAT, "%s: metadata key of invalid length %llu",
                        c->label, (unsigned long long)key.n);
    kv->key = malloc(key.n + 1);
    if (!kv->key) return err_fail(c->err, KVS_E_NOMEM, "%s: out of memory", c->label);
    memcpy(kv->key, key.p, key.n);
    kv->key[key.n] = '\0';
    if (strlen(kv->key) != key.n)
        return err_fail(c->err, KVS_E_FORMAT, "%s: metadata key contains a NUL byte", c->label);
    if (rd_u32(c, &kv->type, "metadata type")) return KVS_E_FORMAT;
    if (kv->type >= GGUF_VTYPE_COUNT)
        return err_fail(c->err, KVS_E_FORMAT, "%s: metadata '%s' has unknown type %u", c->label,
                        kv->key, kv->type);
    if (kv->type == GGUF_STR) {
        kv->strs = malloc(sizeof *kv->strs);
        if (!kv->strs) return err_fail(c->err, KVS_E_NOMEM, "%s: out of memory", c->label);
        kv->data = c->p + c->off;
        return rd_str(c, kv->strs, kv->key);
    }
    if (kv->type == GGUF_ARR) {
        if (rd_u32(c, &kv->arr_type, kv->key) || rd_u64(c, &kv->arr_n, kv->key)) return KVS_E_FORMAT;
        kv->data = c->p + c->off;
        if (kv->arr_type == GGUF_STR) {
            /* each string needs at least its 8-byte length: reject counts the file
             * cannot hold before allocating for them */
            if (kv->arr_n > (c->size - c->off) / 8)
                return err_fail(c->err, KVS_E_FORMAT, "%s: array '%s' claims %llu strings, more than the file holds",
                                c->label, kv->key, (unsigned long long)kv->arr_n);
            kv->strs = malloc(sizeof *kv->strs * (kv->arr_n ? kv->arr_n : 1));
            if (!kv->strs) return err_fail(c->err, KVS_E_NOMEM, "%s: out of memory", c->label);
            for (uint64_t i = 0; i < kv->arr_n; i++)
                if (rd_str(c, &kv->strs[i], kv->key)) return KVS_E_FORMAT;
            return 0;
        }
        size_t es = gguf_scalar_size(kv->arr_type);
        if (!es)
            return err_fail(c->err, KVS_E_FORMAT, "%s: array '%s' has unsupported element type %u",
                            c->label, kv->key, kv->arr_type);
        if (kv->arr_n > (c->size - c->off) / es)
            return err_fail(c->err, KVS_E_FORMAT, "%s: array '%s' (%llu elements) runs past the end of the file",
                            c->label, kv->key, (unsigned long long)kv->arr_n);
        c->off += kv->arr_n * es;
        return 0;
    }
    size_t sz = gguf_scalar_size(kv->type);
    kv->data = c->p + c->off;
    return need(c, sz, kv->key) ? KVS_E_FORMAT : (c->off += sz, 0);
}

static int parse_tensor(cursor *c, gguf_tensor *t) {
    gguf_str name;
    if (rd_str(c, &name, "tensor name")) return KVS_E_FORMAT;
    if (name.n == 0 || name.n > GGUF_MAX_KEY)
        return err_fail(c->err, KVS_E_FORMAT, "%s: tensor name of invalid length", c->label);
    t->name = malloc(name.n + 1);
    if (!t->name) return err_fail(c->err, KVS_E_NOMEM, "%s: out of memory", c->label);
    memcpy(t->name, name.p, name.n);
    t->name[name.n] = '\0';
    if (rd_u32(c, &t->n_dims, t->name)) return KVS_E_FORMAT;
    if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)
        return err_fail(c->err, KVS_E_FORMAT, "%s: tensor '%s' has %u dimensions (1..%d allowed)",
                        c->label, t->name, t->n_dims, GGUF_MAX_DIMS);
    uint64_t nel = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (rd_u64(c, &t->ne[d], t->name)) return KVS_E_FORMAT;
        if (t->ne[d] == 0 || t->ne[d] > GGUF_MAX_DIM_N || nel > GGUF_MAX_DIM_N / t->ne[d])
            return err_fail(c->err, KVS_E_FORMAT, "%s: tensor '%s' has an absurd shape", c->label, t->name);
        nel *= t->ne[d];
    }
    if (rd_u32(c, &t->type, t->name) || rd_u64(c, &t->offset, t->name)) return KVS_E_FORMAT;
    const ggtype_info *ti = ggtype_get(t->type);
    if (!ti)
        return err_fail(c->err, KVS_E_UNSUPPORTED, "%s: tensor '%s' has unknown type id %u", c->label,
                        t->name, t->type);
    if (t->ne[0] % (uint64_t)ti->block)
        return err_fail(c->err, KVS_E_FORMAT, "%s: tensor '%s' row of %llu is not a multiple of the %s block (%d)",
                        c->label, t->name, (unsigned long long)t->ne[0], ti->name, ti->block);
    t->nbytes = nel / (uint64_t)ti->block * (uint64_t)ti->bytes;
    return 0;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    if (f->kv)
        for (uint64_t i = 0; i < f->n_kv; i++) {
            free(f->kv[i].key);
            free(f->kv[i].strs);
        }
    if (f->tensors)
        for (uint64_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->kv);
    free(f->tensors);
    if (f->path && f->map) munmap((void *)f->map, f->size);
    free(f->path);
    free(f);
}

void gguf_release(const gguf_file *f, const void *p, size_t n) {
    if (!f->path) return; /* gguf_open_buffer: the caller's memory */
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1), b = ((uintptr_t)p + n) & ~(page - 1);
    /* advice only: if refused, the pages stay, which costs memory and nothing else */
    if (b > a) (void)madvise((void *)a, b - a, MADV_DONTNEED);
}

static gguf_file *parse(gguf_file *f, const char *label, kvs_error *err) {
    cursor c = {f->map, f->size, 0, label, err};
    uint32_t magic;
    if (f->size < 4 || (memcpy(&magic, f->map, 4), magic != GGUF_MAGIC)) {
        err_fail(err, KVS_E_FORMAT, "%s: not a GGUF file (bad magic)", label);
        goto fail;
    }
    c.off = 4;
    if (rd_u32(&c, &f->version, "version")) goto fail;
    if (f->version != 2 && f->version != 3) {
        err_fail(err, KVS_E_UNSUPPORTED, "%s: unsupported GGUF version %u (2 and 3 are supported)", label,
                 f->version);
        goto fail;
    }
    if (rd_u64(&c, &f->n_tensors, "tensor count") || rd_u64(&c, &f->n_kv, "metadata count")) goto fail;
    /* a kv takes at least 8+1+4 bytes and a tensor info 8+1+4+8+4+8 */
    if (f->n_kv > f->size / 13 || f->n_tensors > f->size / 33) {
        err_fail(err, KVS_E_FORMAT, "%s: absurd counts (%llu metadata, %llu tensors) for a %zu-byte file",
                 label, (unsigned long long)f->n_kv, (unsigned long long)f->n_tensors, f->size);
        goto fail;
    }
    f->kv = calloc(f->n_kv ? f->n_kv : 1, sizeof *f->kv);
    f->tensors = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *f->tensors);
    if (!f->kv || !f->tensors) {
        err_fail(err, KVS_E_NOMEM, "%s: out of memory", label);
        goto fail;
    }
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (parse_kv(&c, &f->kv[i])) goto fail;
    for (uint64_t i = 0; i < f->n_kv; i++)
        for (uint64_t j = 0; j < i; j++)
            if (!strcmp(f->kv[i].key, f->kv[j].key)) {
                err_fail(err, KVS_E_FORMAT, "%s: duplicate metadata key '%s'", label, f->kv[i].key);
                goto fail;
            }
    f->alignment = 32;
    const gguf_kv *al = gguf_find(f, "general.alignment");
    if (al) {
        uint64_t a;
        if (gguf_get_u64(f, "general.alignment", &a) || a == 0 || (a & (a - 1)) || a > 65536) {
            err_fail(err, KVS_E_FORMAT, "%s: invalid general.alignment", label);
            goto fail;
        }
        f->alignment = a;
    }
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (parse_tensor(&c, &f->tensors[i])) goto fail;
    f->data_offset = (c.off + f->alignment - 1) / f->alignment * f->alignment;
    if (f->n_tensors && f->data_offset > f->size) {
        err_fail(err, KVS_E_FORMAT, "%s: truncated file (no tensor data section)", label);
        goto fail;
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        if (t->offset % f->alignment) {
            err_fail(err, KVS_E_FORMAT, "%s: tensor '%s' data is not aligned to %llu bytes", label, t->name,
                     (unsigned long long)f->alignment);
            goto fail;
        }
        uint64_t avail = f->size - f->data_offset;
        if (t->offset > avail || t->nbytes > avail - t->offset) {
            err_fail(err, KVS_E_FORMAT, "%s: tensor '%s' data (offset %llu, %llu bytes) lies outside the file",
                     label, t->name, (unsigned long long)t->offset, (unsigned long long)t->nbytes);
            goto fail;
        }
        t->data = f->map + f->data_offset + t->offset;
        for (uint64_t j = 0; j < i; j++)
            if (!strcmp(t->name, f->tensors[j].name)) {
                err_fail(err, KVS_E_FORMAT, "%s: duplicate tensor name '%s'", label, t->name);
                goto fail;
            }
    }
    return f;
fail:
    gguf_close(f);
    return NULL;
}

gguf_file *gguf_open(const char *path, kvs_error *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        err_fail(err, KVS_E_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        err_fail(err, KVS_E_IO, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if (st.st_size < 24) {
        close(fd);
        err_fail(err, KVS_E_FORMAT, "%s: truncated file (%lld bytes, too small for a GGUF header)", path,
                 (long long)st.st_size);
        return NULL;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        err_fail(err, KVS_E_IO, "%s: cannot mmap: %s", path, strerror(errno));
        return NULL;
    }
    gguf_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        munmap(map, (size_t)st.st_size);
        free(f);
        err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    f->map = map;
    f->size = (size_t)st.st_size;
    return parse(f, path, err);
}

gguf_file *gguf_open_buffer(const void *buf, size_t size, const char *label, kvs_error *err) {
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) {
        err_fail(err, KVS_E_NOMEM, "%s: out of memory", label);
        return NULL;
    }
    f->map = buf;
    f->size = size;
    return parse(f, label, err);
}

const gguf_kv *gguf_find(const gguf_file *f, const char *key) {
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (!strcmp(f->kv[i].key, key)) return &f->kv[i];
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

/* Reads one numeric value of type t at p; returns 0 and sets whichever of the
 * outputs is exact (is_int tells which). */
static int num_at(uint32_t t, const uint8_t *p, int64_t *iv, uint64_t *uv, double *dv, int *kind) {
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
            float f32; uint64_t u64; int64_t i64; double f64; } v;
    size_t n = gguf_scalar_size(t);
    if (!n || t == GGUF_BOOL) return -1;
    memcpy(&v, p, n);
    *kind = 0; /* 0 signed, 1 unsigned, 2 float */
    switch (t) {
    case GGUF_U8: *uv = v.u8; *kind = 1; break;
    case GGUF_I8: *iv = v.i8; break;
    case GGUF_U16: *uv = v.u16; *kind = 1; break;
    case GGUF_I16: *iv = v.i16; break;
    case GGUF_U32: *uv = v.u32; *kind = 1; break;
    case GGUF_I32: *iv = v.i32; break;
    case GGUF_U64: *uv = v.u64; *kind = 1; break;
    case GGUF_I64: *iv = v.i64; break;
    case GGUF_F32: *dv = v.f32; *kind = 2; break;
    case GGUF_F64: *dv = v.f64; *kind = 2; break;
    default: return -1;
    }
    return 0;
}

static int to_i64(uint32_t t, const uint8_t *p, int64_t *out) {
    int64_t iv = 0; uint64_t uv = 0; double dv = 0; int kind;
    if (num_at(t, p, &iv, &uv, &dv, &kind)) return -1;
    if (kind == 2) return -1;
    if (kind == 1) {
        if (uv > INT64_MAX) return -1;
        iv = (int64_t)uv;
    }
    *out = iv;
    return 0;
}

static int to_f64(uint32_t t, const uint8_t *p, double *out) {
    int64_t iv = 0; uint64_t uv = 0; double dv = 0; int kind;
    if (num_at(t, p, &iv, &uv, &dv, &kind)) return -1;
    *out = kind == 2 ? dv : kind == 1 ? (double)uv : (double)iv;
    return 0;
}

int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out) {
    const gguf_kv *kv = gguf_find(f, key);
    return kv && kv->type != GGUF_ARR && kv->type != GGUF_STR && !to_i64(kv->type, kv->data, out)
               ? 0 : KVS_E_FORMAT;
}

int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out) {
    const gguf_kv *kv = gguf_find(f, key);
    int64_t iv = 0;
    uint64_t uv = 0;
    double dv = 0;
    int kind;
    if (!kv || kv->type == GGUF_ARR || kv->type == GGUF_STR || num_at(kv->type, kv->data, &iv, &uv, &dv, &kind) ||
        kind == 2 || (kind == 0 && iv < 0))
        return KVS_E_FORMAT;
    *out = kind == 1 ? uv : (uint64_t)iv;
    return 0;
}

int gguf_get_f64(const gguf_file *f, const char *key, double *out) {
    const gguf_kv *kv = gguf_find(f, key);
    return kv && kv->type != GGUF_ARR && kv->type != GGUF_STR && !to_f64(kv->type, kv->data, out)
               ? 0 : KVS_E_FORMAT;
}

int gguf_get_bool(const gguf_file *f, const char *key, int *out) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return KVS_E_FORMAT;
    if (kv->type == GGUF_BOOL) {
        *out = kv->data[0] != 0;
        return 0;
    }
    int64_t v;
    if (gguf_get_i64(f, key, &v)) return KVS_E_FORMAT;
    *out = v != 0;
    return 0;
}

int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv || kv->type != GGUF_STR) return KVS_E_FORMAT;
    *out = kv->strs[0];
    return 0;
}

int gguf_arr_i64(const gguf_kv *kv, uint64_t i, int64_t *out) {
    if (kv->type != GGUF_ARR || i >= kv->arr_n || kv->arr_type == GGUF_STR) return KVS_E_FORMAT;
    if (kv->arr_type == GGUF_BOOL) {
        *out = kv->data[i] != 0;
        return 0;
    }
    return to_i64(kv->arr_type, kv->data + i * gguf_scalar_size(kv->arr_type), out) ? KVS_E_FORMAT : 0;
}

int gguf_arr_f64(const gguf_kv *kv, uint64_t i, double *out) {
    if (kv->type != GGUF_ARR || i >= kv->arr_n || kv->arr_type == GGUF_STR) return KVS_E_FORMAT;
    return to_f64(kv->arr_type, kv->data + i * gguf_scalar_size(kv->arr_type), out) ? KVS_E_FORMAT : 0;
}
