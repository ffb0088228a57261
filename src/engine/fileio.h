/* fileio.h - whole-file reads and atomic writes.
 *
 * Every file kvsteer writes (vector files, run files, reports, charts) goes
 * through a temporary file beside the target and a rename, so a reader (or a
 * second shard writing the same vector) never sees a partial file. */
#ifndef KVS_FILEIO_H
#define KVS_FILEIO_H
#include <stdio.h>

#include "kvsteer.h"

typedef struct atomic_file {
    FILE *f;    /* write here; may be closed (and set NULL) when another program fills `tmp` */
    char *tmp;  /* the temporary file's name */
    const char *path;
} atomic_file;

/* Create a temporary file beside path, with the permissions a plain create would give. */
int atomic_open(atomic_file *a, const char *path, kvs_error *err);
/* Flush, sync, close and rename it over path; `failed` non-zero (a write went
 * wrong) or any failure here removes the temporary file and is KVS_E_IO. */
int atomic_commit(atomic_file *a, int failed, kvs_error *err);
/* Remove the temporary file (when the contents turned out unwanted). */
void atomic_abort(atomic_file *a);
/* Whether path could be written now (its folder exists and takes a new file,
 * and it is no directory), by creating and removing a temporary file beside
 * it: checked before long work whose result goes there. */
int atomic_check(const char *path, kvs_error *err);
/* The whole of text as the file's contents. */
int write_file_atomic(const char *path, const char *text, size_t len, kvs_error *err);

/* mkdir -p: dir and each missing parent (mode 0777 less the umask). */
int make_dirs(const char *dir, kvs_error *err);

/* The whole file, NUL-terminated (malloc'd), its length in *len. */
int read_file(const char *path, char **buf, size_t *len, kvs_error *err);

#endif
