/* eval.c - run file, fingerprints and summaries of an evaluation (eval.h). */
#include "eval.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/error.h"
#include "engine/fileio.h"
#include "engine/grow.h"
#include "engine/hash.h"

static const eval_task k_tasks[] = {
    {"gsm8k", "gsm8k_test.jsonl", NULL, " "},
    {"arc", "arc_challenge_test.jsonl", "\n\nChoices:", "\n"},
    {"csqa", "csqa_validation.jsonl", "", "\n"},
    {"piqa", "piqa_validation.jsonl", "\n\nChoices:", "\n"},
};

const eval_task *eval_task_find(const char *name) {
    for (size_t i = 0; name && i < sizeof k_tasks / sizeof *k_tasks; i++)
        if (!strcmp(name, k_tasks[i].name)) return &k_tasks[i];
    return NULL;
}

/* ------------------------------------------------------------------ files */

/* Write n pieces (each a line without its newline) to path via a temp file
 * and rename. */
static int write_lines(const char *path, char *const *lines, const size_t *lens, int n, kvs_error *err) {
    atomic_file a;
    const int rc = atomic_open(&a, path, err);
    if (rc) return rc;
    int bad = 0;
    for (int i = 0; i < n && !bad; i++)
        bad = fwrite(lines[i], 1, lens[i], a.f) != lens[i] || fputc('\n', a.f) == EOF;
    return atomic_commit(&a, bad, err);
}

char *eval_sample_key(int seed, const char *id) {
    size_t n = strlen(id) + 24;
    char *k = malloc(n);
    if (k) {
        if (seed < 0) snprintf(k, n, "greedy\x1f%s", id);
        else snprintf(k, n, "%d\x1f%s", seed, id);
    }
    return k;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The seed of a sample line: -1 greedy (null), -2 not a sample line. */
static int sample_seed(const cJSON *o) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(o, "seed");
    if (!cJSON_IsString(id) || !seed) return -2;
    if (cJSON_IsNull(seed)) return -1;
    if (cJSON_IsNumber(seed) && seed->valuedouble >= 0 && seed->valuedouble < 1e9) return (int)seed->valuedouble;
    return -2;
}

/* Correct by the primary extractor (the last number for GSM8K). */
static int sample_correct(const cJSON *o) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "correct");
    if (cJSON_IsObject(c)) c = c->child;
    return cJSON_IsTrue(c);
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

static int start_new(eval_run *r, const cJSON *config, const cJSON *extra, kvs_error *err) {
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

/* Check an existing file; collect its samples; repair it if needed. */
static int load_existing(eval_run *r, char *buf, size_t len, const cJSON *config, kvs_error *err) {
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
            rc = err_fail(err, KVS_E_FORMAT, "%s:%d: not a JSON object (a corrupt run file; use --overwrite or another -o)",
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
                              "%s: not a kvsteer eval run file (no header line); use --overwrite or another -o", path);
                goto done;
            }
            if (!cJSON_Compare(cfg, config, 1)) {
                char why[256];
                describe_diff(config, cfg, why, sizeof why);
                cJSON_Delete(o);
                rc = err_fail(err, KVS_E_MISMATCH,
                              "%s: written with a different configuration (%s); use --overwrite or another -o", path,
                              why);
                goto done;
            }
            have_header = keep_it = 1;
        } else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "summary"))) {
            r->repaired = 1; /* recomputed at the end */
        } else {
            const int seed = sample_seed(o);
            if (seed == -2) {
                cJSON_Delete(o);
                rc = err_fail(err, KVS_E_FORMAT, "%s:%d: neither a sample nor a summary line", path, n_lines);
                goto done;
            }
            char *k = eval_sample_key(seed, cJSON_GetObjectItemCaseSensitive(o, "id")->valuestring);
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
            r->n_correct += sample_correct(o);
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
        rc = err_fail(err, KVS_E_FORMAT, "%s: not a kvsteer eval run file (no header line); use --overwrite or another -o",
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
        qsort(sorted, (size_t)n_keys, sizeof *sorted, cmp_str);
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
                r->n_correct += o && sample_correct(o);
                cJSON_Delete(o);
            }
        }
    }
    if (r->repaired && (rc = write_lines(path, keep, keep_len, n_keep, err))) goto done;
    if (n_keys) qsort(keys, (size_t)n_keys, sizeof *keys, cmp_str);
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

int eval_run_open(eval_run *r, const char *path, const cJSON *config, const cJSON *header_extra, int overwrite,
                  kvs_error *err) {
    memset(r, 0, sizeof *r);
    if (!(r->path = strdup(path))) return err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
    struct stat st;
    int rc = 0;
    const int exists = stat(path, &st) == 0;
    if (exists && !S_ISREG(st.st_mode)) {
        rc = err_fail(err, KVS_E_IO, "%s: not a regular file", path);
    } else if (!exists || st.st_size == 0 || overwrite) {
        rc = start_new(r, config, header_extra, err);
    } else {
        char *buf;
        size_t len;
        if (!(rc = read_file(path, &buf, &len, err))) {
            rc = load_existing(r, buf, len, config, err);
            free(buf);
        }
    }
    if (!rc && !(r->f = fopen(path, "ab"))) rc = err_fail(err, KVS_E_IO, "%s: cannot open for appending: %s", path, strerror(errno));
    if (rc) eval_run_close(r);
    return rc;
}

int eval_run_has(const eval_run *r, int seed, const char *id) {
    char *k = eval_sample_key(seed, id);
    int found = k && r->n_keys && bsearch(&k, r->keys, (size_t)r->n_keys, sizeof *r->keys, cmp_str) != NULL;
    free(k);
    return found;
}

int eval_run_write(eval_run *r, const cJSON *obj, kvs_error *err) {
    char *line = cJSON_PrintUnformatted(obj);
    if (!line) return err_fail(err, KVS_E_NOMEM, "%s: out of memory", r->path);
    int bad = fputs(line, r->f) == EOF || fputc('\n', r->f) == EOF;
    free(line);
    return bad ? err_fail(err, KVS_E_IO, "%s: write error: %s", r->path, strerror(errno)) : 0;
}

int eval_run_flush(eval_run *r, kvs_error *err) {
    if (fflush(r->f)) return err_fail(err, KVS_E_IO, "%s: write error: %s", r->path, strerror(errno));
    return 0;
}

void eval_run_close(eval_run *r) {
    if (!r) return;
    if (r->f) fclose(r->f);
    for (int i = 0; i < r->n_keys; i++) free(r->keys[i]);
    free(r->keys);
    free(r->path);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------ summary */

#define MAX_EXTRACTORS 4

typedef struct seed_acc {
    int seed;
    int n;
    int correct[MAX_EXTRACTORS];
} seed_acc;

cJSON *eval_summarize(const char *path, kvs_error *err) {
    char *buf;
    size_t len;
    if (read_file(path, &buf, &len, err)) return NULL;
    const char *ext[MAX_EXTRACTORS];
    int n_ext = 0, n = 0, invalid = 0, n_seeds = 0, n_ids = 0, id_cap = 0;
    seed_acc seeds[64];
    char **ids = NULL;
    double tokens = 0, seconds = 0;
    cJSON *keep = cJSON_CreateArray(); /* owns the parsed lines (ext names point into them) */
    size_t at = 0;
    int line = 0, rc = 0;
    while (at < len && !rc) {
        size_t end = at;
        while (end < len && buf[end] != '\n') end++;
        const size_t a = at;
        at = end + 1;
        line++;
        if (end == a) continue;
        cJSON *o = cJSON_ParseWithLength(buf + a, end - a);
        if (!o) {
            rc = err_fail(err, KVS_E_FORMAT, "%s:%d: not valid JSON", path, line);
            break;
        }
        cJSON_AddItemToArray(keep, o);
        const int seed = sample_seed(o);
        if (seed == -2) continue; /* header or summary */
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "correct");
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, "extracted");
        if (n == 0) {
            if (cJSON_IsObject(c))
                for (const cJSON *e = c->child; e && n_ext < MAX_EXTRACTORS; e = e->next) ext[n_ext++] = e->string;
            else ext[n_ext++] = "choice";
        }
        int si = 0;
        while (si < n_seeds && seeds[si].seed != seed) si++;
        if (si == n_seeds) {
            if (n_seeds == (int)(sizeof seeds / sizeof *seeds)) {
                rc = err_fail(err, KVS_E_RANGE, "%s: more than %d seeds", path, n_seeds);
                break;
            }
            memset(&seeds[n_seeds], 0, sizeof seeds[0]);
            seeds[n_seeds++].seed = seed;
        }
        seeds[si].n++;
        for (int e = 0; e < n_ext; e++)
            seeds[si].correct[e] += cJSON_IsObject(c) ? cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, ext[e]))
                                                      : cJSON_IsTrue(c);
        /* no answer: an invalid choice, or no number at all */
        const cJSON *first = cJSON_IsObject(x) ? x->child : NULL;
        invalid += first && (cJSON_IsNull(first) || (cJSON_IsString(first) && !strcmp(first->valuestring, "invalid")));
        const cJSON *gt = cJSON_GetObjectItemCaseSensitive(o, "generated_tokens");
        const cJSON *sec = cJSON_GetObjectItemCaseSensitive(o, "seconds");
        tokens += cJSON_IsNumber(gt) ? gt->valuedouble : 0;
        seconds += cJSON_IsNumber(sec) ? sec->valuedouble : 0;
        const char *id = cJSON_GetObjectItemCaseSensitive(o, "id")->valuestring;
        char **ni = grow(ids, n_ids, &id_cap, sizeof *ids);
        if (!ni) {
            rc = err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
            break;
        }
        ids = ni;
        ids[n_ids++] = (char *)id;
        n++;
    }
    cJSON *s = NULL;
    if (!rc && n == 0) rc = err_fail(err, KVS_E_FORMAT, "%s: no samples to summarize", path);
    if (!rc) {
        qsort(ids, (size_t)n_ids, sizeof *ids, cmp_str);
        int distinct = 0;
        for (int i = 0; i < n_ids; i++) distinct += i == 0 || strcmp(ids[i], ids[i - 1]) != 0;
        /* seeds in ascending order */
        for (int i = 1; i < n_seeds; i++)
            for (int j = i; j > 0 && seeds[j].seed < seeds[j - 1].seed; j--) {
                seed_acc t = seeds[j];
                seeds[j] = seeds[j - 1];
                seeds[j - 1] = t;
            }
        s = cJSON_CreateObject();
        cJSON_AddBoolToObject(s, "summary", 1);
        cJSON_AddNumberToObject(s, "n", n);
        cJSON_AddNumberToObject(s, "n_questions", distinct);
        if (n_seeds == 1 && seeds[0].seed < 0) {
            cJSON_AddStringToObject(s, "seeds", "greedy");
        } else {
            cJSON *sa = cJSON_AddArrayToObject(s, "seeds");
            for (int i = 0; i < n_seeds; i++) cJSON_AddItemToArray(sa, cJSON_CreateNumber(seeds[i].seed));
        }
        cJSON *acc = cJSON_AddObjectToObject(s, "accuracy");
        cJSON *std = n_seeds > 1 ? cJSON_AddObjectToObject(s, "accuracy_std") : NULL;
        cJSON *per = n_seeds > 1 ? cJSON_AddObjectToObject(s, "accuracy_per_seed") : NULL;
        for (int e = 0; e < n_ext; e++) {
            double mean = 0, var = 0;
            cJSON *arr = per ? cJSON_AddArrayToObject(per, ext[e]) : NULL;
            for (int i = 0; i < n_seeds; i++) {
                const double a = (double)seeds[i].correct[e] / seeds[i].n;
                mean += a / n_seeds;
                if (arr) cJSON_AddItemToArray(arr, cJSON_CreateNumber(a));
            }
            for (int i = 0; i < n_seeds; i++) {
                const double d = (double)seeds[i].correct[e] / seeds[i].n - mean;
                var += d * d / n_seeds;
            }
            cJSON_AddNumberToObject(acc, ext[e], mean);
            if (std) cJSON_AddNumberToObject(std, ext[e], sqrt(var));
        }
        cJSON_AddNumberToObject(s, "invalid", (double)invalid / n);
        cJSON_AddNumberToObject(s, "mean_generated_tokens", tokens / n);
        cJSON_AddNumberToObject(s, "seconds", seconds);
        cJSON_AddNumberToObject(s, "ms_per_token", tokens > 0 ? 1000.0 * seconds / tokens : 0.0);
    }
    free(ids);
    cJSON_Delete(keep);
    free(buf);
    return s;
}

/* ------------------------------------------------------------------ misc */

int eval_file_fingerprint(const char *path, char out[17], kvs_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_fail(err, KVS_E_IO, "%s: cannot open: %s", path, strerror(errno));
    const long long chunk = 16ll << 20;
    uint64_t h = FNV1A_INIT;
    long long size = 0;
    int rc = 0;
    if (fseeko(f, 0, SEEK_END) || (size = ftello(f)) < 0) rc = err_fail(err, KVS_E_IO, "%s: cannot seek", path);
    uint8_t size_le[8];
    for (int i = 0; i < 8; i++) size_le[i] = (uint8_t)(size >> (8 * i));
    if (!rc) h = fnv1a(h, size_le, sizeof size_le);
    unsigned char *b = rc ? NULL : malloc(1 << 20);
    if (!rc && !b) rc = err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
    /* the head, then the tail not already covered by it */
    const long long head = size < chunk ? size : chunk;
    const long long tail_from = size - chunk > head ? size - chunk : head;
    const long long ranges[2][2] = {{0, head}, {tail_from, size}};
    for (int r = 0; r < 2 && !rc; r++) {
        if (fseeko(f, ranges[r][0], SEEK_SET)) rc = err_fail(err, KVS_E_IO, "%s: cannot seek", path);
        for (long long left = ranges[r][1] - ranges[r][0]; left > 0 && !rc;) {
            size_t want = left < (1 << 20) ? (size_t)left : (size_t)1 << 20;
            if (fread(b, 1, want, f) != want) {
                rc = err_fail(err, KVS_E_IO, "%s: read error", path);
                break;
            }
            h = fnv1a(h, b, want);
            left -= (long long)want;
        }
    }
    free(b);
    fclose(f);
    if (!rc) snprintf(out, 17, "%016llx", (unsigned long long)h);
    return rc;
}

char *eval_utf8_clean(const char *s, size_t n) {
    char *o = malloc(n * 3 + 1);
    if (!o) return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t j = 0;
    for (size_t i = 0; i < n;) {
        const unsigned c = p[i];
        size_t len = 0;
        unsigned lo = 0x80, hi = 0xbf;
        if (c >= 0x01 && c < 0x80) len = 1;
        else if (c >= 0xc2 && c <= 0xdf) len = 2;
        else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        }
        int ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++) ok = p[i + k] >= (k == 1 ? lo : 0x80) && p[i + k] <= (k == 1 ? hi : 0xbf);
        if (ok) {
            memcpy(o + j, p + i, len);
            j += len;
            i += len;
        } else {
            memcpy(o + j, "\xef\xbf\xbd", 3);
            j += 3;
            i++;
        }
    }
    o[j] = 0;
    return o;
}
