#include "embed.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h"

int embed_texts(const kvs_model *m, const char *const *texts, int n, int n_threads, float *out,
                void (*progress)(int, int, const char *, void *), void *user, kvs_error *err) {
    kvs_model_info mi;
    kvs_model_get_info(m, &mi);
    enum { GROUP = 32 };
    kvs_ctx_params p = kvs_ctx_default_params();
    p.n_seq = GROUP;
    p.n_ctx = 512;
    p.n_threads = n_threads;
    kvs_ctx *c = kvs_ctx_new(m, &p, err);
    if (!c) return err ? err->code : KVS_E_NOMEM;
    int rc = 0, cap = GROUP * p.n_ctx;
    kvs_token *tk = malloc(sizeof *tk * (size_t)cap);
    int32_t *pos = malloc(sizeof *pos * (size_t)cap), *sq = malloc(sizeof *sq * (size_t)cap);
    int8_t *want = calloc((size_t)cap, 1);
    if (!tk || !pos || !sq || !want) rc = err_fail(err, KVS_E_NOMEM, "embedding: out of memory");
    for (int g0 = 0; g0 < n && !rc; g0 += GROUP) {
        int nb = 0, cnt[GROUP] = {0};
        for (int s = 0; s < GROUP && g0 + s < n && !rc; s++) {
            const char *t = texts[g0 + s];
            int k = kvs_tokenize(m, t, strlen(t), -1, 0, tk + nb, p.n_ctx, err);
            if (k < 0) {
                rc = k;
                break;
            }
            if (k > p.n_ctx - 1) k = p.n_ctx - 1; /* long texts: the head is enough for similarity */
            if (k == 0) { /* empty text: embed a single space */
                if (kvs_tokenize(m, " ", 1, 0, 0, tk + nb, 1, err) < 1) {
                    rc = err_fail(err, KVS_E_ARG, "embedding: cannot tokenize");
                    break;
                }
                k = 1;
            }
            kvs_seq_truncate(c, s, 0, NULL);
            for (int i = 0; i < k; i++) {
                pos[nb + i] = i;
                sq[nb + i] = s;
            }
            cnt[s] = k;
            nb += k;
        }
        if (rc) break;
        kvs_batch b = {nb, tk, pos, sq, want}; /* no logits needed: all zeros */
        if ((rc = kvs_decode(c, &b, err))) break;
        int at = 0;
        for (int s = 0; s < GROUP && g0 + s < n; s++) {
            float *o = out + (size_t)(g0 + s) * mi.n_embd;
            for (int d = 0; d < mi.n_embd; d++) o[d] = 0.0f;
            for (int i = 0; i < cnt[s]; i++) {
                const float *h = kvs_get_embedding(c, at + i);
                for (int d = 0; d < mi.n_embd; d++) o[d] += h[d];
            }
            for (int d = 0; d < mi.n_embd; d++) o[d] /= (float)cnt[s];
            at += cnt[s];
        }
        if (progress) progress(g0 + GROUP < n ? g0 + GROUP : n, n, "embedding questions", user);
    }
    free(tk), free(pos), free(sq), free(want);
    kvs_ctx_free(c);
    return rc;
}
