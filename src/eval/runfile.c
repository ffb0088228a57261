/* runfile.c - reading evaluation run files (runfile.h). */
#include "runfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"

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

int run_file_load(const char *path, int with_samples, run_file *r, kvs_error *err) {
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "rb");
    if (!f) return err_fail(err, KVS_E_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!(r->path = strdup(path)) || (with_samples && !(r->samples = cJSON_CreateArray()))) {
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
    if (!rc && r->n_samples == 0) rc = err_fail(err, KVS_E_FORMAT, "%s: holds no samples yet", path);
    if (!rc) r->partial = r->summary == NULL;
    if (rc) run_file_free(r);
    return rc;
}
