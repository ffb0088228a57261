/*
 * generate.c - a small program built against an installed libkvsteer, as a
 * user's program would be (see README.md, "Installing the library"):
 *
 *   cc generate.c $(pkg-config --cflags --libs kvsteer) -o generate
 *   ./generate MODEL.gguf "What is the capital of France?" 16
 *
 * It renders the prompt as the user turn of the model's chat template, generates
 * greedily and prints the text, which is what `kvsteer run -m MODEL --chat -p
 * PROMPT -n N` prints (tests/install.sh checks that they agree).
 */
#include <kvsteer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, const kvs_error *err) {
    fprintf(stderr, "generate: %s: %s\n", what, err->msg);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: generate MODEL.gguf PROMPT N_NEW\n");
        return 2;
    }
    int n_new = atoi(argv[3]);
    if (n_new < 1) {
        fprintf(stderr, "generate: N_NEW must be a positive number, got '%s'\n", argv[3]);
        return 2;
    }
    kvs_error err = {0};
    kvs_model *m = kvs_model_load(argv[1], &err);
    if (!m) return fail("load", &err);
    int rc = 1;
    kvs_ctx *c = NULL;
    kvs_token *toks = NULL, *out = NULL;
    kvs_chat_msg msg = {"user", argv[2]};
    char *text = kvs_chat_render(m, &msg, 1, 1, NULL, &err);
    if (!text) {
        fail("chat template", &err);
        goto done;
    }
    /* a first call with no buffer returns the count */
    int n = kvs_tokenize(m, text, strlen(text), -1, 1, NULL, 0, &err);
    if (n < 0 || !(toks = malloc(sizeof *toks * (size_t)n)) || !(out = malloc(sizeof *out * (size_t)n_new)) ||
        kvs_tokenize(m, text, strlen(text), -1, 1, toks, n, &err) != n) {
        fail("tokenize", &err);
        goto done;
    }
    kvs_ctx_params cp = kvs_ctx_default_params();
    if (!(c = kvs_ctx_new(m, &cp, &err))) {
        fail("context", &err);
        goto done;
    }
    kvs_gen_request req = {0};
    req.prompt = toks;
    req.n_prompt = n;
    req.max_new = n_new;
    req.out = out;
    if (kvs_generate(c, &req, 1, 0, NULL, NULL, &err)) {
        fail("generate", &err);
        goto done;
    }
    /* the answer without its end-of-generation token */
    const int n_answer = req.n_out - (req.n_out > 0 && kvs_token_is_eog(m, out[req.n_out - 1]));
    size_t len = 0;
    char *answer = kvs_detokenize(m, out, n_answer, &len, &err);
    if (!answer) {
        fail("detokenize", &err);
        goto done;
    }
    fwrite(answer, 1, len, stdout);
    free(answer);
    putchar('\n');
    rc = fflush(stdout) ? 1 : 0;
done:
    kvs_ctx_free(c);
    free(text);
    free(toks);
    free(out);
    kvs_model_free(m);
    return rc;
}
