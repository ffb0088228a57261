/* libFuzzer target: a model's vocabulary from arbitrary GGUF metadata, then
 * the tokenizer it makes on a few texts.  The vocabulary arrays, merges, token
 * types, special ids and pre-tokenizer name all come from the file, so a
 * file that loads must give a tokenizer that never reads or writes out of
 * bounds, returns ids inside its vocabulary, and maps every id to bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "tokenizer.h"

/* special-token syntax, byte-level symbols, invalid UTF-8, whitespace runs */
static const char *const k_texts[] = {
    "Hello, world! 123 4567",
    "<|im_start|>user\nWhy?<|im_end|>\n<s></s><|endoftext|>",
    "  \t\n\n  tabs\tand   spaces  ",
    "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xff\xfe\xc3",
    "",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    kvs_error err = {0};
    gguf_file *f = gguf_open_buffer(buf, size, "fuzz.gguf", &err);
    tokenizer *t = f ? tokenizer_load(f, "fuzz.gguf", &err) : NULL;
    if (f && !t && !err.msg[0]) abort(); /* a rejection must say why */
    if (f) gguf_close(f);                /* the tokenizer copies what it needs */
    if (t) {
        const int n_vocab = tokenizer_n_vocab(t);
        int32_t ids[256];
        char bytes[512];
        for (size_t i = 0; i < sizeof k_texts / sizeof *k_texts; i++)
            for (int special = 0; special < 2; special++) {
                const int n = tokenizer_encode(t, k_texts[i], strlen(k_texts[i]), -1, special, ids, 256, &err);
                for (int j = 0; j < n && j < 256; j++) {
                    if (ids[j] < 0 || ids[j] >= n_vocab) abort();
                    if (tokenizer_token_bytes(t, ids[j], bytes, (int)sizeof bytes) < 0) abort();
                }
            }
        for (int32_t id = 0; id < n_vocab && id < 4096; id++) tokenizer_token_bytes(t, id, bytes, (int)sizeof bytes);
        tokenizer_find(t, "<|im_end|>");
        tokenizer_free(t);
    }
    free(buf);
    return 0;
}
