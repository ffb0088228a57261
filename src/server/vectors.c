/* vectors.c - the server's named steering vectors (vectors.h). */
#include "vectors.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(kvs_error *err, int code, const char *fmt, const char *a, const char *b) {
    if (err) {
        err->code = code;
        snprintf(err->msg, sizeof err->msg, fmt, a, b);
    }
    return code;
}

/* Names travel in JSON and URLs: keep them to a plain alphabet. */
static int name_ok(const char *s) {
    if (!*s || strlen(s) > 64) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
              *s == '_' || *s == '.' || *s == '+'))
            return 0;
    return 1;
}

int vec_add(vec_registry *r, const kvs_model *m, const char *name, const char *path, kvs_error *err) {
    if (!name_ok(name))
        return fail(err, KVS_E_ARG, "vector name '%s' (for %s): use 1-64 letters, digits, '-', '_', '.' or '+'", name,
                    path);
    if (vec_find(r, name)) return fail(err, KVS_E_ARG, "vector name '%s' is given twice (second: %s)", name, path);
    vec_entry *nv = realloc(r->v, sizeof *nv * (size_t)(r->n + 1));
    if (!nv) return fail(err, KVS_E_NOMEM, "out of memory%s%s", "", "");
    r->v = nv;
    vec_entry *e = &r->v[r->n];
    memset(e, 0, sizeof *e);
    e->name = strdup(name);
    e->path = strdup(path);
    if (!e->name || !e->path) {
        free(e->name);
        free(e->path);
        return fail(err, KVS_E_NOMEM, "out of memory%s%s", "", "");
    }
    kvs_error le = {0};
    if (!(e->vec = kvs_steer_load(path, m, &le)) && !(e->problem = strdup(le.msg))) {
        free(e->name);
        free(e->path);
        return fail(err, KVS_E_NOMEM, "out of memory%s%s", "", "");
    }
    r->n++;
    return 0;
}

int vec_add_spec(vec_registry *r, const kvs_model *m, const char *spec, kvs_error *err) {
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || !eq[1]) return fail(err, KVS_E_ARG, "vector '%s': expected NAME=FILE%s", spec, "");
    char name[80];
    if ((size_t)(eq - spec) >= sizeof name) return fail(err, KVS_E_ARG, "vector '%s': name too long%s", spec, "");
    memcpy(name, spec, (size_t)(eq - spec));
    name[eq - spec] = 0;
    return vec_add(r, m, name, eq + 1, err);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int vec_add_dir(vec_registry *r, const kvs_model *m, const char *dir, kvs_error *err) {
    DIR *d = opendir(dir);
    if (!d) return fail(err, KVS_E_IO, "%s: cannot open the vector directory%s", dir, "");
    /* sorted, so the listing does not depend on the file system's order */
    char **names = NULL;
    int n = 0, rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len <= 5 || strcmp(de->d_name + len - 5, ".gguf") || de->d_name[0] == '.') continue;
        char **nn = realloc(names, sizeof *nn * (size_t)(n + 1));
        if (!nn || !(nn[n] = strdup(de->d_name))) {
            if (nn) names = nn;
            rc = fail(err, KVS_E_NOMEM, "out of memory%s%s", "", "");
            break;
        }
        names = nn;
        n++;
    }
    closedir(d);
    if (!rc && n) qsort(names, (size_t)n, sizeof *names, by_name);
    for (int i = 0; i < n && !rc; i++) {
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        char *path = malloc(len);
        if (!path) {
            rc = fail(err, KVS_E_NOMEM, "out of memory%s%s", "", "");
            break;
        }
        snprintf(path, len, "%s/%s", dir, names[i]);
        names[i][strlen(names[i]) - 5] = 0;
        rc = vec_add(r, m, names[i], path, err);
        free(path);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

const vec_entry *vec_find(const vec_registry *r, const char *name) {
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->v[i].name, name)) return &r->v[i];
    return NULL;
}

void vec_registry_free(vec_registry *r) {
    for (int i = 0; i < r->n; i++) {
        free(r->v[i].name);
        free(r->v[i].path);
        free(r->v[i].problem);
        kvs_steer_free(r->v[i].vec);
    }
    free(r->v);
    r->v = NULL;
    r->n = 0;
}
