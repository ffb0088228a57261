/* report_tables.c - the runs of `kvsteer report` as Markdown tables, shaped like
 * the paper's Table 1 (accuracy by task x method) and Table 2 (mean generated
 * tokens), plus each run against its baseline, time per generated token by
 * method and ablation series; or the same numbers as JSON. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/grow.h"
#include "report.h"

/* One task x method table; what = 0 accuracy, 1 mean generated tokens. */
static void md_table(strbuf *b, const report_run *rs, int n, int sampling, int what) {
    report_col *tasks = malloc(sizeof *tasks * (size_t)n), *labels = malloc(sizeof *labels * (size_t)n);
    if (!tasks || !labels) {
        b->oom = 1;
        free(tasks);
        free(labels);
        return;
    }
    const int nt = report_tasks_of(rs, n, tasks), nl = report_labels_of(rs, n, sampling, labels);
    sb_printf(b, "| task |");
    for (int l = 0; l < nl; l++) sb_printf(b, " %s |", labels[l].name);
    sb_printf(b, "\n|---|");
    for (int l = 0; l < nl; l++) sb_printf(b, "---|");
    sb_printf(b, "\n");
    for (int t = 0; t < nt; t++) {
        int any = 0;
        for (int l = 0; l < nl; l++) any |= report_find(rs, n, tasks[t].name, labels[l].name, sampling) != NULL;
        if (!any) continue;
        sb_printf(b, "| %s |", tasks[t].name);
        for (int l = 0; l < nl; l++) {
            const report_run *r = report_find(rs, n, tasks[t].name, labels[l].name, sampling);
            if (!r) sb_printf(b, " - |");
            else if (what == 1) sb_printf(b, " %.1f |", r->tokens / r->n);
            else if (sampling) sb_printf(b, " %.1f ± %.1f |", 100 * r->acc, 100 * r->acc_std);
            else sb_printf(b, " %.1f [%.1f, %.1f] |", 100 * r->acc, 100 * r->acc_lo, 100 * r->acc_hi);
        }
        sb_printf(b, "\n");
    }
    free(tasks);
    free(labels);
}

/* "12.3" or "?" when no sample recorded its time */
static void fmt_opt(char *out, size_t cap, int have, double v, const char *fmt) {
    if (have) snprintf(out, cap, fmt, v);
    else snprintf(out, cap, "?");
}

/* Each sampled run's accuracy seed by seed: whether a gap between two runs holds
 * seed for seed or rests on one draw. */
static void md_per_seed(strbuf *b, const report_run *rs, int n) {
    sb_printf(b, "| task | method | seeds | accuracy (%%) per seed |\n|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const report_run *r = &rs[i];
        if (!r->sampling) continue;
        sb_printf(b, "| %s | %s |", r->task, r->label);
        for (int s = 0; s < r->n_seeds; s++) sb_printf(b, " %d", r->seeds[s]);
        sb_printf(b, " |");
        for (int s = 0; s < r->n_seeds; s++) sb_printf(b, " %.1f", 100 * r->acc_seed[s]);
        sb_printf(b, " |\n");
    }
}

static void md_time(strbuf *b, const report_run *rs, int n) {
    report_col *labels = malloc(sizeof *labels * (size_t)(n ? n : 1));
    if (!labels) {
        b->oom = 1;
        return;
    }
    const int nl = report_labels_of(rs, n, -1, labels);
    sb_printf(b, "| method | runs | generated tokens | tokens/s, whole batch | ms/token, one sequence | sequences in flight | "
                 "--batch |\n|---|---|---|---|---|---|---|\n");
    for (int l = 0; l < nl; l++) {
        report_speed sp;
        report_speed_of(rs, n, labels[l].name, &sp);
        char seq[32], occ[32];
        fmt_opt(seq, sizeof seq, sp.n_wall == sp.n && sp.wall_tok > 0, 1000 * sp.wall / sp.wall_tok, "%.1f");
        fmt_opt(occ, sizeof occ, sp.n_wall == sp.n && sp.wall_charged > 0, sp.wall / sp.wall_charged, "%.1f");
        sb_printf(b, "| %s | %d | %.0f | %.1f | %s | %s | %s |\n", labels[l].name, sp.runs, sp.tok,
                  sp.sec > 0 ? sp.tok / sp.sec : 0.0, seq, occ, sp.batches[0] ? sp.batches : "?");
    }
    free(labels);
}

static void fmt_p(char *out, size_t cap, double p) {
    if (p < 0.001) snprintf(out, cap, "<0.001");
    else snprintf(out, cap, "%.3f", p);
}

static void md_ablation(strbuf *b, const report_run *rs, int n, const report_series *s) {
    const report_run *r0 = &rs[s->idx[0]];
    char fixed[300];
    report_fixed_desc(r0, s->param, fixed, sizeof fixed);
    sb_printf(b, "%s, %s, %s: accuracy against %s\n\n| %s |", r0->task, r0->sampling ? "sampling" : "greedy", fixed,
       report_param_titles[s->param], report_param_titles[s->param]);
    for (int t = 0; t < s->n; t++) sb_printf(b, " %g |", rs[s->idx[t]].param[s->param]);
    sb_printf(b, "\n|---|");
    for (int t = 0; t < s->n; t++) sb_printf(b, "---|");
    sb_printf(b, "\n| accuracy |");
    for (int t = 0; t < s->n; t++) sb_printf(b, " %.1f |", 100 * rs[s->idx[t]].acc);
    sb_printf(b, "\n| 95%% CI |");
    for (int t = 0; t < s->n; t++) sb_printf(b, " [%.1f, %.1f] |", 100 * rs[s->idx[t]].acc_lo, 100 * rs[s->idx[t]].acc_hi);
    sb_printf(b, "\n| mean tokens |");
    for (int t = 0; t < s->n; t++) sb_printf(b, " %.1f |", rs[s->idx[t]].tokens / rs[s->idx[t]].n);
    const report_run *base = report_baseline_for(rs, n, r0);
    if (base) {
        /* the paired columns of the table above, one row each, so that a point
         * of the curve is read with its interval against the baseline */
        sb_printf(b, "\n| vs baseline, points [95%% CI] |");
        for (int t = 0; t < s->n; t++) {
            const report_run *r = &rs[s->idx[t]];
            if (r->has_base && r->base == base)
                sb_printf(b, " %+.1f [%+.1f, %+.1f] |", 100 * r->pd.diff, 100 * r->pd.lo, 100 * r->pd.hi);
            else
                sb_printf(b, " - |");
        }
        sb_printf(b, "\n| p (Holm) |");
        for (int t = 0; t < s->n; t++) {
            const report_run *r = &rs[s->idx[t]];
            char ph[16] = "-";
            if (r->has_base && r->base == base) fmt_p(ph, sizeof ph, r->p_holm);
            sb_printf(b, " %s |", ph);
        }
        sb_printf(b, "\n\nBaseline on the same questions: %.1f%%, %.1f tokens.", 100 * base->acc, base->tokens / base->n);
    }
    sb_printf(b, "\n\n");
}

/* Every run beside the baseline of its task: the columns a reader needs to
 * trust a difference (docs/EVALUATION.md). */
static void md_paired(strbuf *b, const report_run *rs, int n, int sampling) {
    sb_printf(b, "| task | method | questions | accuracy [95%% CI] | no answer | accuracy when answered | "
                 "vs baseline, points [95%% CI] | better / worse | p | p (Holm) |\n"
                 "|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const report_run *r = &rs[i];
        if (r->sampling != sampling) continue;
        char vs[96] = "-", bw[32] = "-", p[16] = "-", ph[16] = "-";
        if (r->has_base) {
            snprintf(vs, sizeof vs, "%+.1f [%+.1f, %+.1f]%s", 100 * r->pd.diff, 100 * r->pd.lo, 100 * r->pd.hi,
                     r->pd.n < r->n_questions ? " (shared questions)" : "");
            snprintf(bw, sizeof bw, "%d / %d", r->pd.better, r->pd.worse);
            fmt_p(p, sizeof p, r->pd.p);
            fmt_p(ph, sizeof ph, r->p_holm);
        } else if (strcmp(r->method, "baseline")) {
            snprintf(vs, sizeof vs, "no baseline");
        }
        sb_printf(b, "| %s | %s | %d | %.1f [%.1f, %.1f] | %.1f%% | %.1f | %s | %s | %s | %s |\n", r->task, r->label,
                  r->n_questions, 100 * r->acc, 100 * r->acc_lo, 100 * r->acc_hi, 100.0 * r->invalid / r->n,
                  r->answered ? 100.0 * r->answered_correct / r->answered : 0.0, vs, bw, p, ph);
    }
}

/* Runs computed with different arithmetic (kernels whose float roundings
 * differ) can disagree at greedy near-ties for that reason alone, which a
 * paired comparison between them would count as an effect: say so. */
static void numerics_note(strbuf *b, const report_run *rs, int n) {
    int distinct = 0, mixed = 0;
    for (int i = 0; i < n; i++) {
        if (!rs[i].numerics[0]) continue;
        if (!strcmp(rs[i].numerics, "mixed")) {
            mixed++;
            continue;
        }
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) seen = !strcmp(rs[j].numerics, rs[i].numerics);
        distinct += !seen;
    }
    if (distinct > 1 || mixed)
        sb_printf(b, "\nNote: these runs were computed with %s arithmetic (their files' numerics fingerprints differ); "
                     "greedy answers at near-ties can differ between them for that reason alone.\n",
                  mixed ? "mixed" : "different");
}

char *report_markdown(const report_run *rs, int n, const report_series *ser, int n_ser) {
    strbuf b = {0};
    int greedy = 0, sampled = 0, left_out = 0;
    for (int i = 0; i < n; i++) greedy += !rs[i].sampling, sampled += rs[i].sampling, left_out += rs[i].left_out;
    if (left_out)
        sb_printf(&b, "Shared samples only: %d samples that not every run of their task and decoding has are left out.\n\n",
                  left_out);
    if (greedy) {
        sb_printf(&b, "## Accuracy (%%), greedy\n\n");
        md_table(&b, rs, n, 0, 0);
    }
    if (sampled) {
        sb_printf(&b, "%s## Accuracy (%%), sampling: mean ± std over seeds\n\n", greedy ? "\n" : "");
        md_table(&b, rs, n, 1, 0);
        sb_printf(&b, "\n## Accuracy per seed, sampling\n\n");
        md_per_seed(&b, rs, n);
    }
    for (int sampling = 0; sampling < 2; sampling++) {
        if (!(sampling ? sampled : greedy)) continue;
        sb_printf(&b, "\n## Against the baseline on the same questions, %s\n\n",
                  sampling ? "sampling (scores: each question's share of seeds right)" : "greedy");
        md_paired(&b, rs, n, sampling);
    }
    if (greedy) {
        sb_printf(&b, "\n## Mean generated tokens, greedy\n\n");
        md_table(&b, rs, n, 0, 1);
    }
    if (sampled) {
        sb_printf(&b, "\n## Mean generated tokens, sampling\n\n");
        md_table(&b, rs, n, 1, 1);
    }
    sb_printf(&b, "\n## Speed\n\n");
    md_time(&b, rs, n);
    if (n_ser) {
        sb_printf(&b, "\n## Ablations\n\n");
        for (int i = 0; i < n_ser; i++) md_ablation(&b, rs, n, &ser[i]);
    } else {
        sb_printf(&b, "\n");
    }
    sb_printf(&b, "## Runs\n\n| task | method | decoding | questions | samples | accuracy | no answer | mean tokens | tokens/s | files |\n"
           "|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const report_run *r = &rs[i];
        char dec[48];
        if (r->sampling) snprintf(dec, sizeof dec, "sampling, %d seeds", r->n_seeds);
        else snprintf(dec, sizeof dec, "greedy");
        sb_printf(&b, "| %s | %s | %s | %d | %d | %.1f%% (%s) | %.1f%% | %.1f | %.2f | %s%s%s |\n", r->task, r->label, dec,
           r->n_questions, r->n, 100 * r->acc, r->extractor, 100.0 * r->invalid / r->n, r->tokens / r->n,
           r->seconds > 0 ? r->tokens / r->seconds : 0.0, r->files, r->partial ? " (unfinished)" : "",
           r->duplicates ? " (duplicates dropped)" : "");
    }
    numerics_note(&b, rs, n);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

cJSON *report_json(const report_run *rs, int n, const report_series *ser, int n_ser) {
    cJSON *j = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(j, "runs");
    for (int i = 0; i < n; i++) {
        const report_run *r = &rs[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "task", r->task);
        cJSON_AddStringToObject(o, "method", r->method);
        cJSON_AddStringToObject(o, "label", r->label);
        cJSON_AddStringToObject(o, "decoding", r->sampling ? "sampling" : "greedy");
        if (r->numerics[0]) cJSON_AddStringToObject(o, "numerics", r->numerics);
        else cJSON_AddNullToObject(o, "numerics");
        cJSON *p = cJSON_AddObjectToObject(o, "params");
        for (int q = 0; q < N_PARAMS; q++)
            if (!isnan(r->param[q])) cJSON_AddNumberToObject(p, report_param_names[q], r->param[q]);
        cJSON *st = cJSON_AddObjectToObject(o, "settings");
        for (int s = 0; s < r->n_set; s++) cJSON_AddStringToObject(st, r->set[s].key, r->set[s].val);
        cJSON_AddNumberToObject(o, "n", r->n);
        cJSON_AddNumberToObject(o, "n_questions", r->n_questions);
        cJSON_AddNumberToObject(o, "n_seeds", r->n_seeds);
        cJSON_AddStringToObject(o, "extractor", r->extractor);
        cJSON_AddNumberToObject(o, "accuracy", r->acc);
        if (r->sampling) {
            cJSON_AddNumberToObject(o, "accuracy_std", r->acc_std);
            cJSON *sd = cJSON_AddArrayToObject(o, "seeds"), *ps = cJSON_AddArrayToObject(o, "accuracy_per_seed");
            for (int s = 0; s < r->n_seeds; s++) {
                cJSON_AddItemToArray(sd, cJSON_CreateNumber(r->seeds[s]));
                cJSON_AddItemToArray(ps, cJSON_CreateNumber(r->acc_seed[s]));
            }
        }
        cJSON *ci = cJSON_AddArrayToObject(o, "accuracy_ci95");
        cJSON_AddItemToArray(ci, cJSON_CreateNumber(r->acc_lo));
        cJSON_AddItemToArray(ci, cJSON_CreateNumber(r->acc_hi));
        cJSON_AddNumberToObject(o, "invalid", (double)r->invalid / r->n);
        if (r->answered) cJSON_AddNumberToObject(o, "accuracy_answered", (double)r->answered_correct / r->answered);
        else cJSON_AddNullToObject(o, "accuracy_answered");
        if (r->has_base) {
            cJSON *v = cJSON_AddObjectToObject(o, "vs_baseline");
            cJSON_AddStringToObject(v, "baseline", r->base->label);
            cJSON_AddStringToObject(v, "baseline_files", r->base->files);
            cJSON_AddNumberToObject(v, "questions", r->pd.n);
            cJSON_AddNumberToObject(v, "difference", r->pd.diff);
            cJSON *dci = cJSON_AddArrayToObject(v, "difference_ci95");
            cJSON_AddItemToArray(dci, cJSON_CreateNumber(r->pd.lo));
            cJSON_AddItemToArray(dci, cJSON_CreateNumber(r->pd.hi));
            cJSON_AddNumberToObject(v, "better", r->pd.better);
            cJSON_AddNumberToObject(v, "worse", r->pd.worse);
            cJSON_AddStringToObject(v, "test", r->pd.binary ? "exact McNemar" : "exact sign test over questions");
            cJSON_AddNumberToObject(v, "p", r->pd.p);
            cJSON_AddNumberToObject(v, "p_holm", r->p_holm);
        }
        cJSON_AddNumberToObject(o, "mean_generated_tokens", r->tokens / r->n);
        /* throughput of the whole batch; per sequence and occupancy where recorded */
        cJSON_AddNumberToObject(o, "tokens_per_second", r->seconds > 0 ? r->tokens / r->seconds : 0.0);
        if (r->n_wall == r->n && r->wall_tokens > 0 && r->wall_charged > 0) {
            cJSON_AddNumberToObject(o, "ms_per_token_one_sequence", 1000 * r->wall_seconds / r->wall_tokens);
            cJSON_AddNumberToObject(o, "sequences_in_flight", r->wall_seconds / r->wall_charged);
        }
        cJSON_AddNumberToObject(o, "duplicates_dropped", r->duplicates);
        cJSON_AddNumberToObject(o, "samples_left_out", r->left_out);
        cJSON_AddBoolToObject(o, "unfinished", r->partial);
        cJSON *fa = cJSON_AddArrayToObject(o, "files");
        char tmp[sizeof r->files];
        snprintf(tmp, sizeof tmp, "%s", r->files);
        for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save))
            cJSON_AddItemToArray(fa, cJSON_CreateString(t[0] == ' ' ? t + 1 : t));
        cJSON_AddItemToObject(o, "config", cJSON_Duplicate(r->cfg, 1));
        cJSON_AddItemToArray(arr, o);
    }
    cJSON *ab = cJSON_AddArrayToObject(j, "ablations");
    for (int i = 0; i < n_ser; i++) {
        const report_series *s = &ser[i];
        const report_run *r0 = &rs[s->idx[0]];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "task", r0->task);
        cJSON_AddStringToObject(o, "method", r0->method);
        cJSON_AddStringToObject(o, "decoding", r0->sampling ? "sampling" : "greedy");
        cJSON_AddStringToObject(o, "param", report_param_names[s->param]);
        cJSON *pts = cJSON_AddArrayToObject(o, "points");
        for (int t = 0; t < s->n; t++) {
            const report_run *r = &rs[s->idx[t]];
            cJSON *pt = cJSON_CreateObject();
            cJSON_AddNumberToObject(pt, "value", r->param[s->param]);
            cJSON_AddNumberToObject(pt, "accuracy", r->acc);
            cJSON_AddNumberToObject(pt, "accuracy_lo", r->acc_lo);
            cJSON_AddNumberToObject(pt, "accuracy_hi", r->acc_hi);
            if (r->sampling) cJSON_AddNumberToObject(pt, "accuracy_std", r->acc_std);
            cJSON_AddNumberToObject(pt, "mean_generated_tokens", r->tokens / r->n);
            cJSON_AddStringToObject(pt, "label", r->label);
            cJSON_AddItemToArray(pts, pt);
        }
        cJSON_AddItemToArray(ab, o);
    }
    return j;
}
