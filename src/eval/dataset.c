#include "dataset.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/fileio.h"
#include "engine/grow.h"

static void row_free(qa_row *r) {
    free(r->id);
    free(r->question);
    for (int i = 0; i < r->n_choices; i++) {
        free(r->labels[i]);
        free(r->texts[i]);
    }
    free(r->labels);
    free(r->texts);
    for (int i = 0; i < r->n_steps; i++) free(r->steps[i]);
    free(r->steps);
    free(r->answer);
    free(r->style);
}

void qa_free(qa_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) row_free(&s->rows[i]);
    free(s->rows);
    free(s->path);
    memset(s, 0, sizeof *s);
}

/* A string field, or a number rendered as text (ids are numbers in traces). */
static char *text_of(const cJSON *v) {
    if (cJSON_IsString(v)) return strdup(v->valuestring);
    if (cJSON_IsNumber(v)) {
        char buf[64];
        if (v->valuedouble == (double)(long long)v->valuedouble) snprintf(buf, sizeof buf, "%lld", (long long)v->valuedouble);
        else snprintf(buf, sizeof buf, "%.17g", v->valuedouble);
        return strdup(buf);
    }
    return NULL;
}

static int parse_row(const cJSON *o, qa_row *r, const char *label, int line, int need_steps, kvs_error *err) {
    if (!cJSON_IsObject(o)) return err_fail(err, KVS_E_FORMAT, "%s:%d: not a JSON object", label, line);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(o, "question");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "answer");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    if (!id) id = cJSON_GetObjectItemCaseSensitive(o, "source_id");
    if (!cJSON_IsString(q) || !q->valuestring[0])
        return err_fail(err, KVS_E_FORMAT, "%s:%d: missing or empty string field 'question'", label, line);
    if (!a || !(r->answer = text_of(a)) || !r->answer[0])
        return err_fail(err, KVS_E_FORMAT, "%s:%d: missing or empty field 'answer'", label, line);
    if (!(r->question = strdup(q->valuestring))) return err_fail(err, KVS_E_NOMEM, "%s: out of memory", label);
    r->id = id ? text_of(id) : strdup("");
    if (!r->id) return err_fail(err, KVS_E_FORMAT, "%s:%d: field 'id' must be a string or number", label, line);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "style");
    if (cJSON_IsString(st)) r->style = strdup(st->valuestring);
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(o, "choices");
    if (ch) {
        if (!cJSON_IsArray(ch) || cJSON_GetArraySize(ch) < 2)
            return err_fail(err, KVS_E_FORMAT, "%s:%d: 'choices' must be an array of at least 2 entries", label, line);
        int n = cJSON_GetArraySize(ch);
        r->labels = calloc((size_t)n, sizeof(char *));
        r->texts = calloc((size_t)n, sizeof(char *));
        if (!r->labels || !r->texts) return err_fail(err, KVS_E_NOMEM, "%s: out of memory", label);
        const cJSON *c;
        cJSON_ArrayForEach(c, ch) {
            const cJSON *lb = cJSON_GetObjectItemCaseSensitive(c, "label");
            const cJSON *tx = cJSON_GetObjectItemCaseSensitive(c, "text");
            if (!cJSON_IsString(lb) || !cJSON_IsString(tx) || !lb->valuestring[0])
                return err_fail(err, KVS_E_FORMAT, "%s:%d: each choice needs string 'label' and 'text'", label, line);
            r->labels[r->n_choices] = strdup(lb->valuestring);
            r->texts[r->n_choices] = strdup(tx->valuestring);
            r->n_choices++;
        }
    }
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(o, "steps");
    if (steps) {
        if (!cJSON_IsArray(steps))
            return err_fail(err, KVS_E_FORMAT, "%s:%d: 'steps' must be an array of strings", label, line);
        int n = cJSON_GetArraySize(steps);
        r->steps = calloc((size_t)(n ? n : 1), sizeof(char *));
        if (!r->steps) return err_fail(err, KVS_E_NOMEM, "%s: out of memory", label);
        const cJSON *s;
        cJSON_ArrayForEach(s, steps) {
            if (!cJSON_IsString(s))
                return err_fail(err, KVS_E_FORMAT, "%s:%d: 'steps' must be an array of strings", label, line);
            r->steps[r->n_steps++] = strdup(s->valuestring);
        }
    }
    /* an empty list is a row the teacher left without reasoning (the PIQA traces
     * hold one): well-formed, but no positive side; pairs_build skips it */
    if (need_steps && !steps)
        return err_fail(err, KVS_E_FORMAT, "%s:%d: trace row has no 'steps'", label, line);
    return 0;
}

int qa_parse(const char *buf, size_t len, const char *label, int need_steps, qa_set *out, kvs_error *err) {
    memset(out, 0, sizeof *out);
    if (!(out->path = strdup(label))) return err_fail(err, KVS_E_NOMEM, "%s: out of memory", label);
    int cap = 0, line = 0, rc = 0;
    size_t at = 0;
    while (at < len && !rc) {
        size_t end = at;
        while (end < len && buf[end] != '\n') end++;
        line++;
        size_t a = at, b = end;
        while (a < b && (buf[a] == ' ' || buf[a] == '\t' || buf[a] == '\r')) a++;
        while (b > a && (buf[b - 1] == ' ' || buf[b - 1] == '\t' || buf[b - 1] == '\r')) b--;
        at = end + 1;
        if (a == b) continue; /* blank lines are allowed */
        cJSON *o = cJSON_ParseWithLength(buf + a, b - a);
        if (!o) {
            rc = err_fail(err, KVS_E_FORMAT, "%s:%d: invalid JSON", label, line);
            break;
        }
        qa_row *nr = grow(out->rows, out->n, &cap, sizeof *out->rows);
        if (!nr) {
            cJSON_Delete(o);
            rc = err_fail(err, KVS_E_NOMEM, "%s: out of memory", label);
            break;
        }
        out->rows = nr;
        qa_row *r = &out->rows[out->n];
        memset(r, 0, sizeof *r);
        out->n++;
        rc = parse_row(o, r, label, line, need_steps, err);
        cJSON_Delete(o);
    }
    if (!rc && out->n == 0) rc = err_fail(err, KVS_E_FORMAT, "%s: no rows (empty file)", label);
    if (rc) qa_free(out);
    return rc;
}

int qa_load(const char *path, int need_steps, qa_set *out, kvs_error *err) {
    memset(out, 0, sizeof *out);
    char *buf;
    size_t len;
    int rc = read_file(path, &buf, &len, err);
    if (!rc) rc = qa_parse(buf, len, path, need_steps, out, err);
    free(buf);
    return rc;
}

char *qa_render_question(const qa_row *r, const char *choices_header) {
    strbuf b = {0};
    sb_add(&b, r->question);
    if (r->n_choices > 0) {
        sb_add(&b, choices_header);
        for (int i = 0; i < r->n_choices; i++) sb_printf(&b, "\n%s: %s", r->labels[i], r->texts[i]);
    }
    if (b.oom) sb_free(&b);
    return b.p;
}

char *qa_join_steps(const qa_row *r) {
    strbuf b = {0};
    sb_add(&b, "");
    for (int i = 0; i < r->n_steps; i++) sb_printf(&b, "%s%s", i ? " " : "", r->steps[i]);
    if (b.oom) sb_free(&b);
    return b.p;
}
