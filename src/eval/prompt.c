/* prompt.c - a question as the model reads it (prompt.h). */
#include "prompt.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h"

kvs_token *prompt_tokenize(const kvs_model *m, const char *text, int add_bos, int parse_special, int *n_out,
                           kvs_error *err) {
    const size_t len = strlen(text);
    const int n = kvs_tokenize(m, text, len, add_bos, parse_special, NULL, 0, err);
    if (n < 0) return NULL;
    kvs_token *t = malloc(sizeof *t * (size_t)(n > 0 ? n : 1));
    if (!t) {
        err_fail(err, KVS_E_NOMEM, "out of memory");
        return NULL;
    }
    if (kvs_tokenize(m, text, len, add_bos, parse_special, t, n, err) != n) {
        free(t);
        if (!err || !err->msg[0]) err_fail(err, KVS_E_ARG, "tokenizer returned an inconsistent count");
        return NULL;
    }
    *n_out = n;
    return t;
}

int prompt_build(const kvs_model *m, const eval_task *task, const qa_row *row, int cot, const kvs_token *off,
                 int n_off, char **text, kvs_token **toks, int *n_toks, kvs_error *err) {
    char *user = eval_render_question(task, row);
    if (!user) return err_fail(err, KVS_E_NOMEM, "out of memory");
    const kvs_chat_msg msg = {"user", user};
    char *chat = kvs_chat_render(m, &msg, 1, 1, NULL, err);
    free(user);
    if (!chat) return err->code;
    if (cot) {
        const size_t l = strlen(chat);
        char *t = realloc(chat, l + sizeof EVAL_COT_TEXT);
        if (!t) {
            free(chat);
            return err_fail(err, KVS_E_NOMEM, "out of memory");
        }
        memcpy(t + l, EVAL_COT_TEXT, sizeof EVAL_COT_TEXT);
        chat = t;
    }
    int n = 0;
    kvs_token *t = prompt_tokenize(m, chat, -1, 1, &n, err);
    kvs_token *all = t ? realloc(t, sizeof *all * (size_t)(n + 1)) : NULL;
    if (!all) {
        free(t);
        free(chat);
        return t ? err_fail(err, KVS_E_NOMEM, "out of memory") : err->code;
    }
    if (n_off) all[n] = off[0];
    *text = chat;
    *toks = all;
    *n_toks = n + n_off;
    return 0;
}
