/* libFuzzer target: the JSON Lines question-set parser on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    for (int need_steps = 0; need_steps < 2; need_steps++) {
        qa_set s;
        kvs_error err = {0};
        if (qa_parse(buf, size, "fuzz.jsonl", need_steps, &s, &err) == 0) {
            for (int i = 0; i < s.n; i++) {
                char *q = qa_render_question(&s.rows[i], "\n\nChoices:");
                char *j = qa_join_steps(&s.rows[i]);
                if (!q || !j) abort();
                free(q);
                free(j);
            }
            qa_free(&s);
        } else if (!err.msg[0]) {
            abort();
        }
    }
    free(buf);
    return 0;
}
