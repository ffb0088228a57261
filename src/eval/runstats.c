/* runstats.c - the statistics of a run's samples (runstats.h). */
#include "runstats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "runfile.h"
#include "stats.h"


static int cmp_sample(const void *a, const void *b) {
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    const int sx = run_sample_seed(x), sy = run_sample_seed(y);
    if (sx != sy) return sx < sy ? -1 : 1;
    return strcmp(cJSON_GetObjectItemCaseSensitive(x, "id")->valuestring,
                  cJSON_GetObjectItemCaseSensitive(y, "id")->valuestring);
}

int run_stats_compute(const cJSON *samples, const char *label, run_stats *st, kvs_error *err) {
    memset(st, 0, sizeof *st);
    const int n = cJSON_GetArraySize(samples);
    if (n == 0) return err_fail(err, KVS_E_FORMAT, "%s: no samples", label);
    const cJSON **s = malloc(sizeof *s * (size_t)n);
    const char **ids = malloc(sizeof *ids * (size_t)n);
    int rc = 0, k = 0, n_ids = 0;
    int seed_n[RUN_MAX_SEEDS] = {0}, seed_c[RUN_MAX_SEEDS][RUN_MAX_EXTRACTORS];
    memset(seed_c, 0, sizeof seed_c);
    if (!s || !ids) {
        rc = err_fail(err, KVS_E_NOMEM, "%s: out of memory", label);
        goto done;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, samples) {
        if (run_sample_seed(it) == -2) {
            rc = err_fail(err, KVS_E_FORMAT, "%s: sample %d has no id or seed", label, k + 1);
            goto done;
        }
        s[k++] = it;
    }
    /* by (seed, id): the seeds come out ascending and a repeated sample
     * (pieces of a run that overlap) is counted once */
    qsort(s, (size_t)n, sizeof *s, cmp_sample);
    for (int i = 0; i < n; i++) {
        if (i && !cmp_sample(&s[i], &s[i - 1])) {
            st->duplicates++;
            continue;
        }
        const cJSON *o = s[i];
        const int seed = run_sample_seed(o);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "correct");
        if (st->n == 0) { /* the extractors, primary first (GSM8K: last_number) */
            if (cJSON_IsObject(c))
                for (const cJSON *e = c->child; e && st->n_ext < RUN_MAX_EXTRACTORS; e = e->next)
                    snprintf(st->ext[st->n_ext++], sizeof st->ext[0], "%s", e->string);
            else snprintf(st->ext[st->n_ext++], sizeof st->ext[0], "choice");
        }
        int si = 0;
        while (si < st->n_seeds && st->seeds[si] != seed) si++;
        if (si == st->n_seeds) {
            if (st->n_seeds == RUN_MAX_SEEDS) {
                rc = err_fail(err, KVS_E_RANGE, "%s: more than %d seeds", label, RUN_MAX_SEEDS);
                goto done;
            }
            st->seeds[st->n_seeds++] = seed;
        }
        seed_n[si]++;
        for (int e = 0; e < st->n_ext; e++)
            seed_c[si][e] += cJSON_IsObject(c) ? cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, st->ext[e])) : cJSON_IsTrue(c);
        /* no answer: an invalid choice, or no number at all */
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, "extracted");
        const cJSON *first = cJSON_IsObject(x) ? x->child : NULL;
        st->invalid += first && (cJSON_IsNull(first) || (cJSON_IsString(first) && !strcmp(first->valuestring, "invalid")));
        st->answered += !(first && (cJSON_IsNull(first) || (cJSON_IsString(first) && !strcmp(first->valuestring, "invalid"))));
        const int none = first && (cJSON_IsNull(first) || (cJSON_IsString(first) && !strcmp(first->valuestring, "invalid")));
        const int right = run_sample_correct(o);
        st->n_correct += right;
        st->answered_correct += right && !none;
        const cJSON *gt = cJSON_GetObjectItemCaseSensitive(o, "generated_tokens");
        const cJSON *sec = cJSON_GetObjectItemCaseSensitive(o, "seconds");
        const cJSON *wall = cJSON_GetObjectItemCaseSensitive(o, "wall_seconds");
        st->tokens += cJSON_IsNumber(gt) ? gt->valuedouble : 0;
        st->seconds += cJSON_IsNumber(sec) ? sec->valuedouble : 0;
        if (cJSON_IsNumber(wall)) {
            st->wall_seconds += wall->valuedouble;
            st->wall_tokens += cJSON_IsNumber(gt) ? gt->valuedouble : 0;
            const cJSON *ss = cJSON_GetObjectItemCaseSensitive(o, "span_seconds");
            st->wall_charged += (cJSON_IsNumber(sec) ? sec->valuedouble : 0) + (cJSON_IsNumber(ss) ? ss->valuedouble : 0);
            st->n_wall++;
        }
        ids[n_ids++] = cJSON_GetObjectItemCaseSensitive(o, "id")->valuestring;
        st->n++;
    }
    qsort(ids, (size_t)n_ids, sizeof *ids, run_key_cmp);
    for (int i = 0; i < n_ids; i++) st->n_questions += i == 0 || strcmp(ids[i], ids[i - 1]) != 0;
    /* accuracy: the mean over seeds of each seed's accuracy; std is the population one */
    for (int e = 0; e < st->n_ext; e++) {
        double mean = 0, var = 0;
        for (int i = 0; i < st->n_seeds; i++) {
            st->acc_seed[e][i] = (double)seed_c[i][e] / seed_n[i];
            mean += st->acc_seed[e][i] / st->n_seeds;
        }
        for (int i = 0; i < st->n_seeds; i++) {
            const double d = st->acc_seed[e][i] - mean;
            var += d * d / st->n_seeds;
        }
        st->acc[e] = mean;
        st->acc_std[e] = sqrt(var);
    }
    /* the interval of the primary accuracy: greedy, a proportion of questions;
     * sampling, the mean over questions of each question's share of seeds right
     * (the seeds of one question are not independent trials) */
    if (st->n_seeds == 1) {
        stat_wilson(st->n_correct, st->n, &st->acc_lo, &st->acc_hi);
    } else {
        run_qscore *q = NULL;
        int nq = 0;
        if (run_question_scores(samples, &q, &nq)) {
            rc = err_fail(err, KVS_E_NOMEM, "%s: out of memory", label);
            goto done;
        }
        double *x = malloc(sizeof *x * (size_t)(nq ? nq : 1)), mean;
        if (!x) {
            free(q);
            rc = err_fail(err, KVS_E_NOMEM, "%s: out of memory", label);
            goto done;
        }
        for (int i = 0; i < nq; i++) x[i] = q[i].score;
        stat_mean_interval(x, nq, 0, 1, &mean, &st->acc_lo, &st->acc_hi);
        free(x);
        free(q);
    }
done:
    free(s);
    free(ids);
    return rc;
}

static int cmp_id_seed(const void *a, const void *b) {
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    const int d = strcmp(cJSON_GetObjectItemCaseSensitive(x, "id")->valuestring,
                         cJSON_GetObjectItemCaseSensitive(y, "id")->valuestring);
    if (d) return d;
    const int sx = run_sample_seed(x), sy = run_sample_seed(y);
    return sx < sy ? -1 : sx > sy;
}

int run_question_scores(const cJSON *samples, run_qscore **out, int *n_out) {
    *out = NULL;
    *n_out = 0;
    const int n = cJSON_GetArraySize(samples);
    const cJSON **s = malloc(sizeof *s * (size_t)(n ? n : 1));
    run_qscore *q = malloc(sizeof *q * (size_t)(n ? n : 1));
    if (!s || !q) {
        free(s);
        free(q);
        return KVS_E_NOMEM;
    }
    int k = 0, nq = 0, in_q = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, samples) if (run_sample_seed(it) != -2) s[k++] = it;
    qsort(s, (size_t)k, sizeof *s, cmp_id_seed);
    for (int i = 0; i < k; i++) {
        if (i && !cmp_id_seed(&s[i], &s[i - 1])) continue; /* a repeated sample counts once */
        const char *id = cJSON_GetObjectItemCaseSensitive(s[i], "id")->valuestring;
        if (!nq || strcmp(q[nq - 1].id, id)) {
            if (nq) q[nq - 1].score /= in_q;
            q[nq++] = (run_qscore){id, 0.0};
            in_q = 0;
        }
        q[nq - 1].score += run_sample_correct(s[i]);
        in_q++;
    }
    if (nq) q[nq - 1].score /= in_q;
    free(s);
    *out = q;
    *n_out = nq;
    return 0;
}

int run_paired_compute(const cJSON *a, const cJSON *b, run_paired *out, kvs_error *err) {
    memset(out, 0, sizeof *out);
    run_qscore *qa = NULL, *qb = NULL;
    int na = 0, nb = 0;
    if (run_question_scores(a, &qa, &na) || run_question_scores(b, &qb, &nb)) {
        free(qa);
        free(qb);
        return err_fail(err, KVS_E_NOMEM, "paired comparison: out of memory");
    }
    double *d = malloc(sizeof *d * (size_t)(na ? na : 1));
    if (!d) {
        free(qa);
        free(qb);
        return err_fail(err, KVS_E_NOMEM, "paired comparison: out of memory");
    }
    /* scores are 0 or 1 exactly when both sides have one sample per question */
    int binary = 1;
    for (int i = 0, j = 0; i < na && j < nb;) {
        const int c = strcmp(qa[i].id, qb[j].id);
        if (c < 0) i++;
        else if (c > 0) j++;
        else {
            const double x = qa[i].score, y = qb[j].score;
            binary &= (x == 0 || x == 1) && (y == 0 || y == 1);
            out->both += x == 1 && y == 1;
            out->only_a += x == 1 && y == 0;
            out->only_b += x == 0 && y == 1;
            out->neither += x == 0 && y == 0;
            out->better += x > y;
            out->worse += x < y;
            d[out->n++] = x - y;
            i++, j++;
        }
    }
    double mean = 0;
    stat_mean_interval(d, out->n, -1, 1, &mean, &out->lo, &out->hi);
    out->diff = mean;
    out->binary = binary;
    if (binary) stat_paired_diff(out->both, out->only_a, out->only_b, out->neither, &out->lo, &out->hi);
    out->p = stat_sign_test(out->better, out->worse);
    free(d);
    free(qa);
    free(qb);
    return 0;
}

cJSON *run_summary_json(const run_stats *st) {
    cJSON *s = cJSON_CreateObject();
    if (!s) return NULL;
    cJSON_AddBoolToObject(s, "summary", 1);
    cJSON_AddNumberToObject(s, "n", st->n);
    cJSON_AddNumberToObject(s, "n_questions", st->n_questions);
    if (st->n_seeds == 1 && st->seeds[0] < 0) {
        cJSON_AddStringToObject(s, "seeds", "greedy");
    } else {
        cJSON *sa = cJSON_AddArrayToObject(s, "seeds");
        for (int i = 0; i < st->n_seeds; i++) cJSON_AddItemToArray(sa, cJSON_CreateNumber(st->seeds[i]));
    }
    cJSON *acc = cJSON_AddObjectToObject(s, "accuracy");
    cJSON *std = st->n_seeds > 1 ? cJSON_AddObjectToObject(s, "accuracy_std") : NULL;
    cJSON *per = st->n_seeds > 1 ? cJSON_AddObjectToObject(s, "accuracy_per_seed") : NULL;
    for (int e = 0; e < st->n_ext; e++) {
        cJSON *arr = per ? cJSON_AddArrayToObject(per, st->ext[e]) : NULL;
        for (int i = 0; arr && i < st->n_seeds; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(st->acc_seed[e][i]));
        cJSON_AddNumberToObject(acc, st->ext[e], st->acc[e]);
        if (std) cJSON_AddNumberToObject(std, st->ext[e], st->acc_std[e]);
    }
    cJSON_AddNumberToObject(s, "invalid", (double)st->invalid / st->n);
    cJSON_AddNumberToObject(s, "mean_generated_tokens", st->tokens / st->n);
    cJSON_AddNumberToObject(s, "seconds", st->seconds);
    cJSON_AddNumberToObject(s, "ms_per_token", st->tokens > 0 ? 1000.0 * st->seconds / st->tokens : 0.0);
    return s;
}

cJSON *run_summarize(const char *path, kvs_error *err) { return run_summarize_keys(path, NULL, -1, err); }

cJSON *run_summarize_keys(const char *path, char *const *keys, int n_keys, kvs_error *err) {
    run_file rf;
    if (run_file_load(path, RUN_LOAD_SAMPLES, &rf, err)) return NULL;
    const int in_file = cJSON_GetArraySize(rf.samples);
    if (n_keys >= 0) {
        /* keep the requested samples, once each (a repeated one is the stats' duplicate) */
        cJSON *kept = cJSON_CreateArray();
        cJSON *o = rf.samples->child;
        while (o && kept) {
            cJSON *next = o->next;
            char *k = run_sample_key(run_sample_seed(o), cJSON_GetObjectItemCaseSensitive(o, "id")->valuestring);
            if (k && n_keys && bsearch(&k, keys, (size_t)n_keys, sizeof *keys, run_key_cmp))
                cJSON_AddItemToArray(kept, cJSON_DetachItemViaPointer(rf.samples, o));
            free(k);
            o = next;
        }
        cJSON_Delete(rf.samples);
        rf.samples = kept;
        if (!kept) {
            run_file_free(&rf);
            err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
            return NULL;
        }
    }
    run_stats st;
    cJSON *s = NULL;
    if (!run_stats_compute(rf.samples, path, &st, err)) {
        if (n_keys >= 0 && st.n < n_keys)
            err_fail(err, KVS_E_FORMAT, "%s: %d of the %d requested samples are missing", path, n_keys - st.n, n_keys);
        else if (!(s = run_summary_json(&st))) err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
    }
    if (s && n_keys >= 0 && in_file > st.n) cJSON_AddNumberToObject(s, "samples_in_file", in_file);
    run_file_free(&rf);
    return s;
}

