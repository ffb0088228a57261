#include "pairs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine/error.h"
#include "engine/fileio.h"

void pairs_free(pair_set *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        free(p->pos[i]);
        free(p->neg[i]);
        if (p->shots) free(p->shots[i]);
    }
    free(p->pos);
    free(p->neg);
    free(p->target);
    free(p->shots);
    memset(p, 0, sizeof *p);
}

static uint64_t mix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double cosine(const float *a, const float *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0.0;
}

/* The n most similar pool rows to `target` (never itself), best first, ties by row. */
static void pick_similar(const float *emb, int dim, const int *pool, int n_pool, int target, int n, int *out) {
    double *best = malloc(sizeof(double) * (size_t)n);
    int have = 0;
    for (int j = 0; j < n_pool; j++) {
        int r = pool[j];
        if (r == target) continue;
        double s = cosine(emb + (size_t)target * dim, emb + (size_t)r * dim, dim);
        int at = have;
        while (at > 0 && best[at - 1] < s) at--;
        if (at >= n) continue;
        int last = have < n ? have : n - 1;
        for (int k = last; k > at; k--) {
            best[k] = best[k - 1];
            out[k] = out[k - 1];
        }
        best[at] = s;
        out[at] = r;
        if (have < n) have++;
    }
    free(best);
}

static void pick_random(uint64_t *rng, const int *pool, int n_pool, int target, int n, int *out) {
    int *cand = malloc(sizeof(int) * (size_t)n_pool);
    int m = 0;
    for (int j = 0; j < n_pool; j++)
        if (pool[j] != target) cand[m++] = pool[j];
    for (int k = 0; k < n; k++) {
        int j = k + (int)(mix64(rng) % (uint64_t)(m - k));
        int t = cand[k];
        cand[k] = cand[j];
        cand[j] = t;
        out[k] = cand[k];
    }
    free(cand);
}

static char *answer_text(const qa_row *r, int with_steps) {
    char *steps = with_steps ? qa_join_steps(r) : strdup("");
    if (!steps) return NULL;
    size_t n = strlen(steps) + strlen(r->answer) + 32;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%sThe answer is %s.", steps, with_steps ? " " : "", r->answer);
    free(steps);
    return s;
}

/* Renders one side of a pair. */
static char *render_side(const kvs_model *m, const qa_set *tr, int target, const int *shots, int n_shots,
                         int positive, const pair_opts *o, kvs_error *err) {
    int n_msgs = 2 * n_shots + 1;
    kvs_chat_msg *msgs = calloc((size_t)n_msgs, sizeof *msgs);
    char **owned = calloc((size_t)n_msgs, sizeof *owned);
    char *text = NULL;
    if (!msgs || !owned) goto done;
    for (int k = 0; k < n_shots; k++) {
        const qa_row *r = &tr->rows[shots[k]];
        owned[2 * k] = eval_render_question(o->task, r);
        owned[2 * k + 1] = answer_text(r, positive);
        if (!owned[2 * k] || !owned[2 * k + 1]) goto done;
        msgs[2 * k] = (kvs_chat_msg){"user", owned[2 * k]};
        msgs[2 * k + 1] = (kvs_chat_msg){"assistant", owned[2 * k + 1]};
    }
    if (!(owned[2 * n_shots] = eval_render_question(o->task, &tr->rows[target]))) goto done;
    msgs[2 * n_shots] = (kvs_chat_msg){"user", owned[2 * n_shots]};
    text = kvs_chat_render(m, msgs, n_msgs, 1, o->chat_template, err);
    if (text && o->prefix && o->prefix[0]) {
        size_t a = strlen(text), b = strlen(o->prefix);
        char *t2 = realloc(text, a + b + 1);
        if (!t2) {
            free(text);
            text = NULL;
            goto done;
        }
        memcpy(t2 + a, o->prefix, b + 1);
        text = t2;
    }
done:
    for (int i = 0; i < n_msgs && owned; i++) free(owned[i]);
    free(owned);
    free(msgs);
    if (!text && err && !err->msg[0]) err_fail(err, KVS_E_NOMEM, "pairs: out of memory");
    return text;
}

static int excluded(const qa_set *ex, int n_ex, const char *question) {
    for (int s = 0; ex && s < n_ex; s++)
        for (int i = 0; i < ex[s].n; i++)
            if (!strcmp(ex[s].rows[i].question, question)) return 1;
    return 0;
}

int pairs_build(const kvs_model *m, const qa_set *tr, const pair_opts *o, pair_set *out, kvs_error *err) {
    memset(out, 0, sizeof *out);
    if (o->cache_out) memset(o->cache_out, 0, sizeof *o->cache_out);
    if (o->n_pairs < 1) return err_fail(err, KVS_E_ARG, "pairs: the number of pairs must be at least 1");
    if (o->n_shots < 0) return err_fail(err, KVS_E_ARG, "pairs: the number of shots must not be negative");
    int *pool = malloc(sizeof(int) * (size_t)tr->n);
    if (!pool) return err_fail(err, KVS_E_NOMEM, "pairs: out of memory");
    int n_pool = 0, n_ex = 0, n_nosteps = 0;
    for (int i = 0; i < tr->n; i++) {
        /* a row without reasoning has no positive side: neither a pair nor a shot */
        if (tr->rows[i].n_steps == 0) n_nosteps++;
        else if (excluded(o->exclude, o->n_exclude, tr->rows[i].question)) n_ex++;
        else pool[n_pool++] = i;
    }
    if (o->n_pairs > n_pool) {
        free(pool);
        return err_fail(err, KVS_E_ARG,
                        "%s: %d pairs requested but only %d usable questions (%d rows, %d excluded, "
                        "%d without steps)",
                        tr->path, o->n_pairs, n_pool, tr->n, n_ex, n_nosteps);
    }
    if (o->n_shots > n_pool - 1) {
        free(pool);
        return err_fail(err, KVS_E_ARG, "%s: %d shots requested but the pool holds only %d other questions", tr->path,
                        o->n_shots, n_pool - 1);
    }
    kvs_model_info mi;
    kvs_model_get_info(m, &mi);
    float *emb = NULL;
    int rc = 0;
    if (o->select == SELECT_SIMILAR && o->n_shots > 0) {
        const char **texts = malloc(sizeof(char *) * (size_t)tr->n);
        emb = calloc((size_t)tr->n * mi.n_embd, sizeof(float));
        if (!texts || !emb) rc = err_fail(err, KVS_E_NOMEM, "pairs: out of memory");
        for (int r = 0; r < tr->n && !rc; r++) texts[r] = tr->rows[r].question;
        /* only pool rows matter; embed those (others keep zeros, or what the cache holds) */
        if (!rc)
            rc = embcache_embed_rows(m, o->model_path, tr->path, texts, tr->n, pool, n_pool, o->embed_cache,
                                     o->n_threads, o->progress, o->user, emb, o->cache_out, err);
        free(texts);
    }
    out->n_shots = o->n_shots;
    out->pos = calloc((size_t)o->n_pairs, sizeof(char *));
    out->neg = calloc((size_t)o->n_pairs, sizeof(char *));
    out->target = calloc((size_t)o->n_pairs, sizeof(int));
    out->shots = calloc((size_t)o->n_pairs, sizeof(int *));
    if (!rc && (!out->pos || !out->neg || !out->target || !out->shots)) rc = err_fail(err, KVS_E_NOMEM, "pairs: out of memory");
    uint64_t rng = o->seed;
    for (int i = 0; i < o->n_pairs && !rc; i++) {
        const int target = pool[i];
        int *shots = malloc(sizeof(int) * (size_t)(o->n_shots ? o->n_shots : 1));
        if (!shots) {
            rc = err_fail(err, KVS_E_NOMEM, "pairs: out of memory");
            break;
        }
        if (o->n_shots > 0) {
            if (o->select == SELECT_SIMILAR) pick_similar(emb, mi.n_embd, pool, n_pool, target, o->n_shots, shots);
            else pick_random(&rng, pool, n_pool, target, o->n_shots, shots);
        }
        out->n = i + 1;
        out->target[i] = target;
        out->shots[i] = shots;
        out->pos[i] = render_side(m, tr, target, shots, o->n_shots, 1, o, err);
        out->neg[i] = out->pos[i] ? render_side(m, tr, target, shots, o->n_shots, 0, o, err) : NULL;
        if (!out->pos[i] || !out->neg[i]) rc = err && err->code ? err->code : KVS_E_NOMEM;
    }
    free(emb);
    free(pool);
    if (rc) pairs_free(out);
    return rc;
}

/* ------------------------------------------------------------------ pairs from prompt files */

/* The lines of a text file (each malloc'd, without its newline); an empty line
 * is an error, since it would pair the wrong prompts silently. */
static int read_lines(const char *path, char ***lines, int *n, kvs_error *err) {
    char *buf;
    size_t len;
    *lines = NULL;
    *n = 0;
    if (read_file(path, &buf, &len, err)) return err->code;
    if (memchr(buf, 0, len)) {
        free(buf);
        return err_fail(err, KVS_E_FORMAT, "%s: holds a NUL byte (not a text file)", path);
    }
    int cap = 0, rc = 0;
    for (char *p = buf; !rc && p < buf + len;) {
        char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(buf + len - p);
        if (l && p[l - 1] == '\r') l--; /* CRLF files */
        if (l == 0) rc = err_fail(err, KVS_E_FORMAT, "%s:%d: empty line (one prompt per line)", path, *n + 1);
        else {
            if (*n == cap) {
                char **g = realloc(*lines, sizeof *g * (size_t)(cap = cap ? 2 * cap : 16));
                if (!g) rc = err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
                else *lines = g;
            }
            if (!rc && !((*lines)[*n] = strndup(p, l))) rc = err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
            if (!rc) (*n)++;
        }
        p = nl ? nl + 1 : buf + len;
    }
    free(buf);
    if (!rc && *n == 0) rc = err_fail(err, KVS_E_FORMAT, "%s: no prompts", path);
    return rc;
}

/* The pos/neg members of a JSON Lines pair file, into two line arrays. */
static int read_pair_file(const char *path, char ***pos, char ***neg, int *n, kvs_error *err) {
    char **lines;
    int n_lines;
    *pos = *neg = NULL;
    *n = 0;
    int rc = read_lines(path, &lines, &n_lines, err);
    if (!rc && (!(*pos = calloc((size_t)n_lines, sizeof **pos)) || !(*neg = calloc((size_t)n_lines, sizeof **neg))))
        rc = err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
    for (int i = 0; !rc && i < n_lines; i++) {
        cJSON *o = cJSON_Parse(lines[i]);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "pos"), *q = cJSON_GetObjectItemCaseSensitive(o, "neg");
        if (!cJSON_IsString(p) || !cJSON_IsString(q) || !p->valuestring[0] || !q->valuestring[0])
            rc = err_fail(err, KVS_E_FORMAT, "%s:%d: expected {\"pos\": TEXT, \"neg\": TEXT} with non-empty texts", path,
                          i + 1);
        else if (!((*pos)[i] = strdup(p->valuestring)) || !((*neg)[i] = strdup(q->valuestring)))
            rc = err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
        else (*n)++;
        cJSON_Delete(o);
    }
    for (int i = 0; i < n_lines; i++) free(lines[i]);
    free(lines);
    return rc;
}

static char *render_prompt(const kvs_model *m, const char *text, int chat, const char *tmpl, const char *prefix,
                           kvs_error *err) {
    char *r;
    if (chat) {
        const kvs_chat_msg msg = {"user", text};
        if (!(r = kvs_chat_render(m, &msg, 1, 1, tmpl, err))) return NULL;
    } else if (!(r = strdup(text))) {
        err_fail(err, KVS_E_NOMEM, "pairs: out of memory");
        return NULL;
    }
    if (prefix && prefix[0]) {
        const size_t a = strlen(r), b = strlen(prefix);
        char *t = realloc(r, a + b + 1);
        if (!t) {
            free(r);
            err_fail(err, KVS_E_NOMEM, "pairs: out of memory");
            return NULL;
        }
        memcpy(t + a, prefix, b + 1);
        r = t;
    }
    return r;
}

int pairs_from_prompts(const kvs_model *m, const char *pos, const char *neg, int chat, const char *chat_template,
                       const char *prefix, int n_pairs, pair_set *out, kvs_error *err) {
    memset(out, 0, sizeof *out);
    char **p = NULL, **q = NULL;
    int np = 0, nq = 0, rc;
    if (neg) {
        rc = read_lines(pos, &p, &np, err);
        if (!rc) rc = read_lines(neg, &q, &nq, err);
        if (!rc && np != nq)
            rc = err_fail(err, KVS_E_FORMAT, "%s has %d prompts but %s has %d: line i of each makes pair i", pos, np, neg,
                          nq);
    } else {
        rc = read_pair_file(pos, &p, &q, &np, err);
        nq = np;
    }
    int n = np < nq ? np : nq;
    if (!rc && n_pairs > n)
        rc = err_fail(err, KVS_E_RANGE, "%d pairs requested but %s holds %d", n_pairs, pos, n);
    if (!rc && n_pairs > 0) n = n_pairs;
    if (!rc && (!(out->pos = calloc((size_t)n, sizeof *out->pos)) || !(out->neg = calloc((size_t)n, sizeof *out->neg))))
        rc = err_fail(err, KVS_E_NOMEM, "pairs: out of memory");
    for (int i = 0; !rc && i < n; i++) {
        out->n = i + 1; /* pairs_free frees what was rendered so far */
        if (!(out->pos[i] = render_prompt(m, p[i], chat, chat_template, prefix, err)) ||
            !(out->neg[i] = render_prompt(m, q[i], chat, chat_template, prefix, err)))
            rc = err->code ? err->code : KVS_E_NOMEM;
    }
    for (int i = 0; i < np; i++) free(p ? p[i] : NULL);
    for (int i = 0; i < nq; i++) free(q ? q[i] : NULL);
    free(p);
    free(q);
    if (rc) pairs_free(out);
    return rc;
}
