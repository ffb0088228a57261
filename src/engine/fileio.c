/* fileio.c - whole-file reads and atomic writes (fileio.h). */
#include "fileio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

int atomic_open(atomic_file *a, const char *path, kvs_error *err) {
    memset(a, 0, sizeof *a);
    a->path = path;
    const size_t n = strlen(path) + 16;
    if (!(a->tmp = malloc(n))) return err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
    snprintf(a->tmp, n, "%s.tmp.XXXXXX", path);
    const int fd = mkstemp(a->tmp);
    if (fd < 0) {
        const int e = errno;
        free(a->tmp);
        a->tmp = NULL;
        return err_fail(err, KVS_E_IO, "%s: cannot create: %s", path, strerror(e));
    }
    /* mkstemp creates 0600; give the file the permissions a plain create would */
    const mode_t um = umask(0);
    umask(um);
    (void)fchmod(fd, 0666 & ~um);
    if (!(a->f = fdopen(fd, "wb"))) {
        close(fd);
        atomic_abort(a);
        return err_fail(err, KVS_E_IO, "%s: cannot write", path);
    }
    return 0;
}

void atomic_abort(atomic_file *a) {
    if (a->f) fclose(a->f);
    if (a->tmp) unlink(a->tmp);
    free(a->tmp);
    a->f = NULL;
    a->tmp = NULL;
}

int atomic_commit(atomic_file *a, int failed, kvs_error *err) {
    int e = 0;
    if (a->f) {
        if (!failed && (fflush(a->f) != 0 || fsync(fileno(a->f)) != 0)) failed = 1, e = errno;
        if (fclose(a->f) != 0 && !failed) failed = 1, e = errno;
        a->f = NULL;
    }
    if (!failed && rename(a->tmp, a->path) != 0) failed = 1, e = errno;
    if (failed) {
        if (!e) e = errno;
        atomic_abort(a);
        return err_fail(err, KVS_E_IO, "%s: cannot write: %s", a->path, strerror(e));
    }
    free(a->tmp);
    a->tmp = NULL;
    return 0;
}

int atomic_check(const char *path, kvs_error *err) {
    struct stat st;
    if (!stat(path, &st) && S_ISDIR(st.st_mode)) return err_fail(err, KVS_E_IO, "%s: is a directory", path);
    atomic_file a;
    const int rc = atomic_open(&a, path, err);
    if (!rc) atomic_abort(&a);
    return rc;
}

int write_file_atomic(const char *path, const char *text, size_t len, kvs_error *err) {
    atomic_file a;
    const int rc = atomic_open(&a, path, err);
    if (rc) return rc;
    return atomic_commit(&a, fwrite(text, 1, len, a.f) != len, err);
}

int make_dirs(const char *dir, kvs_error *err) {
    char *p = strdup(dir);
    if (!p) return err_fail(err, KVS_E_NOMEM, "%s: out of memory", dir);
    int rc = 0;
    for (char *s = p + 1; !rc; s++) {
        const char c = *s;
        if (c != '/' && c != 0) continue;
        *s = 0;
        if (mkdir(p, 0777) && errno != EEXIST) rc = err_fail(err, KVS_E_IO, "%s: cannot create directory: %s", p, strerror(errno));
        *s = c;
        if (!c) break;
    }
    free(p);
    return rc;
}

int read_file(const char *path, char **buf, size_t *len, kvs_error *err) {
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return err_fail(err, KVS_E_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    for (;;) {
        if (!b) {
            fclose(f);
            return err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
        }
        n += fread(b + n, 1, cap - n, f);
        if (n < cap) break;
        char *nb = realloc(b, (cap *= 2) + 1);
        if (!nb) free(b);
        b = nb;
    }
    const int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b);
        return err_fail(err, KVS_E_IO, "%s: read error", path);
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}
