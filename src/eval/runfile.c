/* runfile.c - evaluation run files: writing, resuming and reading them
 * (runfile.h); their statistics are in runstats.c. */
#include "runfile.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/error.h"
#include "engine/fileio.h"
#include "engine/grow.h"
#include "stats.h"

/* ------------------------------------------------------------------ writing and resuming */

static int write_lines(const char *path, char *const *lines, const size_t *lens, int n, kvs_error *err) {
    atomic_file a;
    const int rc = atomic_open(&a, path, err);
    if (rc) return rc;
    int bad = 0;
    for (int i = 0; i < n && !bad; i++)
        bad = fwrite(lines[i], 1, lens[i], a.f) != lens[i] || fputc('\n', a.f) == EOF;
    return atomic_commit(&a, bad, err);
}

char *run_sample_key(int seed, const char *id) {
    size_t n = strlen(id) + 24;
    char *k = malloc(n);
    if (k) {
        if (seed < 0) snprintf(k, n, "greedy\x1f%s", id);
        else snprintf(k, n, "%d\x1f%s", seed, id);
    }
    return k;
}

int run_key_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int run_sample_seed(const cJSON *o) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(o, "seed");
    if (!cJSON_IsString(id) || !seed) return -2;
    if (cJSON_IsNull(seed)) return -1;
    if (cJSON_IsNumber(seed) && seed->valuedouble >= 0 && seed->valuedouble < 1e9) return (int)seed->valuedouble;
    return -2;
}

int run_sample_correct(const cJSON *o) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "correct");
    if (cJSON_IsObject(c)) c = c->child;
    return cJSON_IsTrue(c);
}

/* Kernel sets that compute the same bits on a model (AMX leaves a K-quant
 * model to the AVX-512 products) give the same samples: the numerics
 * fingerprint, not the set's name, says whether they do. */
int run_configs_agree(const cJSON *a, const char *numerics_a, const cJSON *b, const char *numerics_b) {
    if (cJSON_Compare(a, b, 1)) return 1;
    if (!numerics_a || !numerics_b || strcmp(numerics_a, numerics_b)) return 0;
    cJSON *x = cJSON_Duplicate(a, 1), *y = cJSON_Duplicate(b, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(x, "kernels");
    cJSON_DeleteItemFromObjectCaseSensitive(y, "kernels");
    const int same = x && y && cJSON_Compare(x, y, 1);
    cJSON_Delete(x);
    cJSON_Delete(y);
    return same;
}

/* "key: A here, B in the file" for the first member of `want` that differs. */
static void describe_diff(const cJSON *want, const cJSON *have, char *out, size_t cap) {
    snprintf(out, cap, "settings differ");
    for (const cJSON *w = want ? want->child : NULL; w; w = w->next) {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(have, w->string);
        if (h && cJSON_Compare(w, h, 1)) continue;
        char *a = cJSON_PrintUnformatted(w), *b = h ? cJSON_PrintUnformatted(h) : NULL;
        snprintf(out, cap, "%s: %.60s here, %.60s in the file", w->string, a ? a : "?", b ? b : "absent");
        free(a);
        free(b);
        return;
    }
    for (const cJSON *h = have ? have->child : NULL; h; h = h->next)
        if (!cJSON_GetObjectItemCaseSensitive(want, h->string)) {
            snprintf(out, cap, "%s: only in the file", h->string);
            return;
        }
}

static int start_new(run_writer *r, const cJSON *config, const cJSON *extra, kvs_error *err) {
    cJSON *h = cJSON_CreateObject();
    cJSON_AddBoolToObject(h, "header", 1);
    cJSON_AddItemToObject(h, "config", cJSON_Duplicate(config, 1));
    for (const cJSON *e = extra ? extra->child : NULL; e; e = e->next)
        cJSON_AddItemToObject(h, e->string, cJSON_Duplicate(e, 1));
    char *line = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    if (!line) return err_fail(err, KVS_E_NOMEM, "%s: out of memory", r->path);
    size_t len = strlen(line);
    int rc = write_lines(r->path, &line, &len, 1, err);
    free(line);
    return rc;
}

/* Header members outside the config that must agree with an existing file's
 * where both have them (files made before a member existed lack it): the
 * numerics fingerprint, since appending samples computed with other float
 * roundings would mix two arithmetics in one run. */
static const char *const k_match_if_present[] = {"numerics"};

static int check_extra(const char *path, const cJSON *header, const cJSON *extra, kvs_error *err) {
    for (size_t i = 0; i < sizeof k_match_if_present / sizeof k_match_if_present[0]; i++) {
        const char *k = k_match_if_present[i];
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(extra, k), *have = cJSON_GetObjectItemCaseSensitive(header, k);
        if (want && have && !cJSON_Compare(want, have, 1))
            return err_fail(err, KVS_E_MISMATCH,
                            "%s: begun by a binary with other arithmetic (%s %s in the file, %s here); finish it "
                            "with that binary, or start a new file",
                            path, k, cJSON_IsString(have) ? have->valuestring : "?",
                            cJSON_IsString(want) ? want->valuestring : "?");
    }
    return 0;
}

static const char *numerics_of(const cJSON *header_or_extra) {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(header_or_extra, "numerics");
    return cJSON_IsString(n) ? n->valuestring : NULL;
}

/* Check an existing file; collect its samples; repair it if needed. */
static int load_existing(run_writer *r, char *buf, size_t len, const cJSON *config, const cJSON *extra,
                         kvs_error *err) {
    const char *path = r->path;
    char **keep = NULL, **keys = NULL;
    size_t *keep_len = NULL;
    int n_lines = 0, rc = 0, have_header = 0, n_keep = 0, cap_keep = 0, cap_len = 0, n_keys = 0, cap_keys = 0;
    size_t at = 0;
    while (at < len) {
        size_t end = at;
        while (end < len && buf[end] != '\n') end++;
        const int has_nl = end < len, is_last = end + 1 >= len;
        n_lines++;
        const size_t a = at;
        at = end + 1;
        if (end == a) {
            r->repaired = 1; /* blank line */
            continue;
        }
        cJSON *o = cJSON_ParseWithLength(buf + a, end - a);
        if (!o || !cJSON_IsObject(o)) {
            cJSON_Delete(o);
            if (is_last && have_header) { /* killed mid-write */
                r->repaired = r->truncated = 1;
                break;
            }
            rc = err_fail(err, KVS_E_FORMAT, "%s:%d: not a JSON object (a corrupt run file)",
                          path, n_lines);
            goto done;
        }
        if (!has_nl) r->repaired = 1; /* complete, but the newline is missing */
        int keep_it = 0;
        if (!have_header) {
            const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(o, "config");
            if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "header")) || !cJSON_IsObject(cfg)) {
                cJSON_Delete(o);
                rc = err_fail(err, KVS_E_FORMAT,
                              "%s: not a kvsteer eval run file (no header line)", path);
                goto done;
            }
            if (!run_configs_agree(config, numerics_of(extra), cfg, numerics_of(o))) {
                char why[256];
                describe_diff(config, cfg, why, sizeof why);
                cJSON_Delete(o);
                rc = err_fail(err, KVS_E_MISMATCH,
                              "%s: written with a different configuration (%s)", path,
                              why);
                goto done;
            }
            if ((rc = check_extra(path, o, extra, err))) {
                cJSON_Delete(o);
                goto done;
            }
            have_header = keep_it = 1;
        } else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "summary"))) {
            r->repaired = 1; /* recomputed at the end */
        } else {
            const int seed = run_sample_seed(o);
            if (seed == -2) {
                cJSON_Delete(o);
                rc = err_fail(err, KVS_E_FORMAT, "%s:%d: neither a sample nor a summary line", path, n_lines);
                goto done;
            }
            char *k = run_sample_key(seed, cJSON_GetObjectItemCaseSensitive(o, "id")->valuestring);
            char **nk = k ? grow(keys, n_keys, &cap_keys, sizeof *keys) : NULL;
            if (!nk) {
                free(k);
                cJSON_Delete(o);
                rc = err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
                goto done;
            }
            keys = nk;
            keys[n_keys++] = k;
            r->n_samples++;
            r->n_correct += run_sample_correct(o);
            keep_it = 1;
        }
        cJSON_Delete(o);
        if (keep_it) {
            char **np = grow(keep, n_keep, &cap_keep, sizeof *keep);
            if (np) keep = np;
            size_t *nl = np ? grow(keep_len, n_keep, &cap_len, sizeof *keep_len) : NULL;
            if (nl) keep_len = nl;
            if (!np || !nl) {
                rc = err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
                goto done;
            }
            keep[n_keep] = buf + a;
            keep_len[n_keep++] = end - a;
        }
    }
    if (!have_header) {
        rc = err_fail(err, KVS_E_FORMAT, "%s: not a kvsteer eval run file (no header line)",
                      path);
        goto done;
    }
    /* a sample present twice (the same (seed, id)): keep the first line */
    if (n_keys > 1) {
        char **sorted = malloc(sizeof *sorted * (size_t)n_keys);
        if (!sorted) {
            rc = err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
            goto done;
        }
        memcpy(sorted, keys, sizeof *sorted * (size_t)n_keys);
        qsort(sorted, (size_t)n_keys, sizeof *sorted, run_key_cmp);
        int dups = 0;
        for (int i = 1; i < n_keys; i++) dups += !strcmp(sorted[i], sorted[i - 1]);
        free(sorted);
        if (dups) {
            /* keep[0] is the header; keep[1 + i] is the line of keys[i] */
            int w = 0;
            for (int i = 0; i < n_keys; i++) {
                int seen = 0;
                for (int j = 0; j < w && !seen; j++) seen = !strcmp(keys[j], keys[i]);
                if (seen) {
                    free(keys[i]);
                    continue;
                }
                keys[w] = keys[i];
                keep[1 + w] = keep[1 + i];
                keep_len[1 + w] = keep_len[1 + i];
                w++;
            }
            r->n_samples = w;
            n_keys = w;
            n_keep = 1 + w;
            r->repaired = 1;
            /* n_correct counted the duplicates too: recount */
            r->n_correct = 0;
            for (int i = 1; i < n_keep; i++) {
                cJSON *o = cJSON_ParseWithLength(keep[i], keep_len[i]);
                r->n_correct += o && run_sample_correct(o);
                cJSON_Delete(o);
            }
        }
    }
    if (r->repaired && (rc = write_lines(path, keep, keep_len, n_keep, err))) goto done;
    if (n_keys) qsort(keys, (size_t)n_keys, sizeof *keys, run_key_cmp);
    r->keys = keys;
    r->n_keys = n_keys;
    keys = NULL;
done:
    if (keys)
        for (int i = 0; i < n_keys; i++) free(keys[i]);
    free(keys);
    free(keep);
    free(keep_len);
    return rc;
}

/* The writer's lock, taken before the file is read: whoever holds it may
 * rewrite the file, so a second writer must not even start to read. */
static int lock_run(run_writer *r, kvs_error *err) {
    const size_t n = strlen(r->path) + sizeof ".lock";
    if (!(r->lock_path = malloc(n))) return err_fail(err, KVS_E_NOMEM, "%s: out of memory", r->path);
    snprintf(r->lock_path, n, "%s.lock", r->path);
    const int fd = open(r->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        err_fail(err, KVS_E_IO, "%s: cannot create its lock file %s: %s", r->path, r->lock_path, strerror(errno));
    } else if (flock(fd, LOCK_EX | LOCK_NB)) {
        err_fail(err, KVS_E_IO, "%s: another process is writing this run file (%s is locked)", r->path, r->lock_path);
        close(fd);
    } else {
        r->lock_fd = fd;
        return 0;
    }
    free(r->lock_path); /* not ours: left in place */
    r->lock_path = NULL;
    return err->code;
}

int run_writer_open(run_writer *r, const char *path, const cJSON *config, const cJSON *header_extra, int overwrite,
                  kvs_error *err) {
    memset(r, 0, sizeof *r);
    kvs_error own = {0};
    if (!err) err = &own; /* lock_run returns the code it set */
    if (!(r->path = strdup(path))) return err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
    int rc = lock_run(r, err);
    if (rc) {
        run_writer_close(r);
        return rc;
    }
    struct stat st;
    const int exists = stat(path, &st) == 0;
    if (exists && !S_ISREG(st.st_mode)) {
        rc = err_fail(err, KVS_E_IO, "%s: not a regular file", path);
    } else if (!exists || st.st_size == 0 || overwrite) {
        rc = start_new(r, config, header_extra, err);
    } else {
        char *buf;
        size_t len;
        if (!(rc = read_file(path, &buf, &len, err))) {
            rc = load_existing(r, buf, len, config, header_extra, err);
            free(buf);
        }
    }
    if (!rc && !(r->f = fopen(path, "ab"))) rc = err_fail(err, KVS_E_IO, "%s: cannot open for appending: %s", path, strerror(errno));
    if (rc) run_writer_close(r);
    return rc;
}

int run_writer_has(const run_writer *r, int seed, const char *id) {
    char *k = run_sample_key(seed, id);
    int found = k && r->n_keys && bsearch(&k, r->keys, (size_t)r->n_keys, sizeof *r->keys, run_key_cmp) != NULL;
    free(k);
    return found;
}

int run_writer_write(run_writer *r, const cJSON *obj, kvs_error *err) {
    char *line = cJSON_PrintUnformatted(obj);
    if (!line) return err_fail(err, KVS_E_NOMEM, "%s: out of memory", r->path);
    int bad = fputs(line, r->f) == EOF || fputc('\n', r->f) == EOF;
    free(line);
    return bad ? err_fail(err, KVS_E_IO, "%s: write error: %s", r->path, strerror(errno)) : 0;
}

int run_writer_flush(run_writer *r, kvs_error *err) {
    if (fflush(r->f)) return err_fail(err, KVS_E_IO, "%s: write error: %s", r->path, strerror(errno));
    return 0;
}

void run_writer_close(run_writer *r) {
    if (!r) return;
    if (r->f) fclose(r->f);
    for (int i = 0; i < r->n_keys; i++) free(r->keys[i]);
    free(r->keys);
    if (r->lock_path) { /* removed before it is released: a later writer makes a fresh one */
        unlink(r->lock_path);
        close(r->lock_fd);
        free(r->lock_path);
    }
    free(r->path);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------ reading */

void run_file_free(run_file *r) {
    if (!r) return;
    free(r->path);
    cJSON_Delete(r->header);
    cJSON_Delete(r->summary);
    cJSON_Delete(r->samples);
    memset(r, 0, sizeof *r);
}

const cJSON *run_config(const run_file *r) { return cJSON_GetObjectItemCaseSensitive(r->header, "config"); }

const cJSON *run_full_config(const run_file *r) {
    const cJSON *c = r->summary ? cJSON_GetObjectItemCaseSensitive(r->summary, "config") : NULL;
    return cJSON_IsObject(c) ? c : run_config(r);
}

int run_file_load(const char *path, int flags, run_file *r, kvs_error *err) {
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "rb");
    if (!f) return err_fail(err, KVS_E_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!(r->path = strdup(path)) || ((flags & RUN_LOAD_SAMPLES) && !(r->samples = cJSON_CreateArray()))) {
        fclose(f);
        run_file_free(r);
        return err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int ln = 0, rc = 0;
    while (!rc && (n = getline(&line, &cap, f)) >= 0) {
        ln++;
        const int has_nl = n > 0 && line[n - 1] == '\n';
        if (has_nl) line[--n] = 0;
        if (n == 0) continue;
        cJSON *o = cJSON_ParseWithLength(line, (size_t)n);
        if (!o || !cJSON_IsObject(o)) {
            cJSON_Delete(o);
            if (!has_nl && r->header) break; /* killed mid-write */
            rc = ln == 1 ? err_fail(err, KVS_E_FORMAT, "%s: not a kvsteer eval run file (line 1 is not JSON)", path)
                         : err_fail(err, KVS_E_FORMAT, "%s:%d: not valid JSON", path, ln);
            break;
        }
        if (!r->header) {
            if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "header")) ||
                !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o, "config"))) {
                cJSON_Delete(o);
                rc = err_fail(err, KVS_E_FORMAT, "%s: not a kvsteer eval run file (line 1 is not its header)", path);
                break;
            }
            r->header = o;
        } else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "summary"))) {
            cJSON_Delete(r->summary);
            r->summary = o;
        } else if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "id")) &&
                   cJSON_GetObjectItemCaseSensitive(o, "seed")) {
            r->n_samples++;
            /* a run resumed after its summary and stopped again: that summary is stale */
            cJSON_Delete(r->summary);
            r->summary = NULL;
            if (r->samples) cJSON_AddItemToArray(r->samples, o);
            else cJSON_Delete(o);
        } else {
            cJSON_Delete(o);
            rc = err_fail(err, KVS_E_FORMAT, "%s:%d: neither a sample nor a summary line", path, ln);
        }
    }
    free(line);
    if (!rc && ferror(f)) rc = err_fail(err, KVS_E_IO, "%s: read error", path);
    fclose(f);
    if (!rc && !r->header) rc = err_fail(err, KVS_E_FORMAT, "%s: empty (not a kvsteer eval run file)", path);
    if (!rc && r->n_samples == 0 && !(flags & RUN_LOAD_EMPTY)) rc = err_fail(err, KVS_E_FORMAT, "%s: holds no samples yet", path);
    if (!rc) r->partial = r->summary == NULL;
    if (rc) run_file_free(r);
    return rc;
}
