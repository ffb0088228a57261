/* libFuzzer target: the server's request parser (and the text assembly its
 * answers go through) on arbitrary bytes, as a client could send them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/request.h"
#include "engine/utf8.h"
#include "server/textout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* names a request may use: one unusable entry, so lookups and their
     * errors are exercised without loading a model */
    vec_entry ent = {"demo", "demo.gguf", NULL, "fuzz: not loaded"};
    vec_registry vr = {&ent, 1};
    request_limits lim = {30, 4096, 64, 1 << 20};
    for (int chat = 0; chat < 2; chat++) {
        request r;
        api_error e;
        if (request_parse((const char *)data, size, chat, &vr, &lim, &r, &e) == 0) {
            /* a parsed request's stop strings cut a text made of the input */
            textout t = {0};
            for (size_t i = 0; i < size; i += 3)
                if (textout_add(&t, (const char *)data + i, size - i < 3 ? size - i : 3, r.stop, r.n_stop) != 0) break;
            textout_finish(&t);
            char *c = utf8_clean(t.s.p ? t.s.p : "", t.s.n);
            if (!c || t.ready > t.s.n) abort();
            free(c);
            textout_free(&t);
            request_free(&r);
        } else if (e.status < 400 || !e.msg[0]) {
            abort();
        }
    }
    return 0;
}
