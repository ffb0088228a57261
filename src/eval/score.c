/* score.c - a sample's answer extracted and scored (score.h), and stored
 * samples scored again (eval_rescore). */
#include "score.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "eval.h"

int score_sample(const ans_extractor *ax, const qa_row *row, int mc, const char *resp, const char *span, cJSON *o) {
    static const char *const keys[] = {"extracted", "target", "correct"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) cJSON_DeleteItemFromObjectCaseSensitive(o, keys[i]);
    int ok;
    if (mc) {
        ans_how how;
        const int ci = ans_choice(ax, resp, span, (const char *const *)row->labels, (const char *const *)row->texts,
                                  row->n_choices, &how);
        cJSON *x = cJSON_AddObjectToObject(o, "extracted");
        cJSON_AddStringToObject(x, "choice", ci >= 0 ? row->labels[ci] : "invalid");
        cJSON_AddStringToObject(x, "rule", how.rule);
        cJSON_AddNumberToObject(x, "stage", how.stage);
        cJSON_AddStringToObject(o, "target", row->answer);
        ok = ci >= 0 && !strcmp(row->labels[ci], row->answer);
        cJSON_AddBoolToObject(o, "correct", ok);
    } else {
        char *ln = ans_last_number(ax, resp), *st = ans_strict_number(ax, resp);
        cJSON *x = cJSON_AddObjectToObject(o, "extracted");
        if (ln) cJSON_AddStringToObject(x, "last_number", ln);
        else cJSON_AddNullToObject(x, "last_number");
        if (st) cJSON_AddStringToObject(x, "strict", st);
        else cJSON_AddNullToObject(x, "strict");
        cJSON_AddStringToObject(o, "target", row->answer);
        cJSON *cr = cJSON_AddObjectToObject(o, "correct");
        ok = ln && ans_numbers_equal(ln, row->answer);
        cJSON_AddBoolToObject(cr, "last_number", ok);
        cJSON_AddBoolToObject(cr, "strict", st && ans_numbers_equal(st, row->answer));
        free(ln);
        free(st);
    }
    return ok;
}

int eval_rescore(cJSON *samples, const char *label, const qa_set *data, int mc, int *changed, kvs_error *err) {
    *changed = 0;
    ans_extractor *ax = ans_new(err);
    if (!ax) return err->code;
    int rc = 0, at = 0;
    cJSON *o;
    cJSON_ArrayForEach(o, samples) {
        at++;
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "id"));
        const char *resp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "response"));
        const char *span = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "span"));
        const qa_row *row = NULL;
        for (int i = 0; id && i < data->n && !row; i++)
            if (!strcmp(data->rows[i].id, id)) row = &data->rows[i];
        if (!resp || (mc && !span)) {
            rc = err_fail(err, KVS_E_FORMAT, "%s: sample %d holds no response%s to score", label, at, mc ? " or span" : "");
            break;
        }
        if (!row) {
            rc = err_fail(err, KVS_E_MISMATCH, "%s: sample %d: question '%s' is not in %s", label, at, id ? id : "?",
                          data->path);
            break;
        }
        if (mc && row->n_choices < 1) {
            rc = err_fail(err, KVS_E_FORMAT, "%s: question '%s' has no choices", data->path, row->id);
            break;
        }
        cJSON *before = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(o, "correct"), 1);
        score_sample(ax, row, mc, resp, span, o);
        *changed += !cJSON_Compare(before, cJSON_GetObjectItemCaseSensitive(o, "correct"), 1);
        cJSON_Delete(before);
    }
    ans_free(ax);
    return rc;
}
