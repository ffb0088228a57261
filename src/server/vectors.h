/* vectors.h - the steering vectors a server offers, by name.  Each file is
 * checked against the served model when loaded; a file that fails the check
 * stays listed with the reason, so a request naming it gets a clear answer
 * instead of "unknown vector". */
#ifndef KVS_SERVER_VECTORS_H
#define KVS_SERVER_VECTORS_H
#include "kvsteer.h"

typedef struct vec_entry {
    char *name, *path;
    kvs_steer *vec;  /* NULL when the file failed its check */
    char *problem;   /* why it cannot be used, or NULL */
} vec_entry;

typedef struct vec_registry {
    vec_entry *v;
    int n;
} vec_registry;

/* Add NAME=PATH, or every *.gguf of a directory (name = file name without
 * .gguf).  A file that cannot be used for model m is kept with its problem;
 * only a missing directory, a duplicate name or a malformed NAME=PATH is an
 * error (0 / non-zero with err set). */
int vec_add(vec_registry *r, const kvs_model *m, const char *name, const char *path, kvs_error *err);
int vec_add_spec(vec_registry *r, const kvs_model *m, const char *spec, kvs_error *err);
int vec_add_dir(vec_registry *r, const kvs_model *m, const char *dir, kvs_error *err);
const vec_entry *vec_find(const vec_registry *r, const char *name);
void vec_registry_free(vec_registry *r);

#endif
