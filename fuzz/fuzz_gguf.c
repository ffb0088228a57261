/* libFuzzer target: the GGUF reader on arbitrary bytes.  Beyond "no crash",
 * an accepted file must describe tensors that lie inside the buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* copy to an exact-size heap block so ASan catches any over-read */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    kvs_error err = {0};
    gguf_file *f = gguf_open_buffer(buf, size, "fuzz.gguf", &err);
    if (f) {
        for (uint64_t i = 0; i < f->n_tensors; i++) {
            const gguf_tensor *t = &f->tensors[i];
            if ((const uint8_t *)t->data < buf || (const uint8_t *)t->data + t->nbytes > buf + size) abort();
        }
        for (uint64_t i = 0; i < f->n_kv; i++) {
            const gguf_kv *kv = &f->kv[i];
            uint64_t n = kv->type == GGUF_STR ? 1 : (kv->type == GGUF_ARR && kv->arr_type == GGUF_STR ? kv->arr_n : 0);
            for (uint64_t j = 0; j < n; j++) {
                const gguf_str *s = &kv->strs[j];
                if ((const uint8_t *)s->p < buf || (const uint8_t *)s->p + s->n > buf + size) abort();
            }
            int64_t iv;
            double dv;
            gguf_get_i64(f, kv->key, &iv);
            gguf_get_f64(f, kv->key, &dv);
            if (kv->type == GGUF_ARR && kv->arr_n) {
                gguf_arr_i64(kv, kv->arr_n - 1, &iv);
                gguf_arr_f64(kv, 0, &dv);
            }
        }
        gguf_close(f);
    } else if (!err.msg[0]) {
        abort(); /* a rejection must say why */
    }
    free(buf);
    return 0;
}
