/* fingerprint.c - file fingerprints (fingerprint.h). */
#include "fingerprint.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/hash.h"

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

int eval_numerics_fingerprint(const kvs_model *m, int n_threads, int kv_f16, char out[17], kvs_error *err) {
    kvs_model_info mi;
    kvs_model_get_info(m, &mi);
    kvs_ctx_params cp = kvs_ctx_default_params();
    cp.n_ctx = 16;
    cp.n_seq = 1;
    cp.n_threads = n_threads;
    cp.kv_f16 = kv_f16;
    kvs_ctx *c = kvs_ctx_new(m, &cp, err);
    if (!c) return err->code ? err->code : KVS_E_NOMEM;
    /* ids spread over the vocabulary; any valid ones would do */
    kvs_token t[8];
    int32_t pos[8], seq[8] = {0};
    for (int i = 0; i < 8; i++) t[i] = (kvs_token)(((uint64_t)i * 7919u + 13u) % (uint64_t)mi.n_vocab), pos[i] = i;
    uint64_t h = FNV1A_INIT;
    int rc = 0;
    const kvs_batch prefill = {7, t, pos, seq, NULL}, one = {1, t + 7, pos + 7, seq, NULL};
    const kvs_batch *steps[2] = {&prefill, &one};
    for (int s = 0; s < 2 && !rc; s++) {
        if ((rc = kvs_decode(c, steps[s], err))) break;
        const float *lg = kvs_get_logits(c, steps[s]->n - 1);
        if (!lg) rc = err_fail(err, KVS_E_ARG, "no logits after the numerics fingerprint's decode");
        else h = fnv1a(h, lg, sizeof(float) * (size_t)mi.n_vocab);
    }
    kvs_ctx_free(c);
    if (!rc) snprintf(out, 17, "%016llx", (unsigned long long)h);
    return rc;
}
