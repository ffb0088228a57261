/* prompt.c - a question as the model reads it (prompt.h). */
#include "prompt.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h"

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
    kvs_token *t = kvs_tokenize_alloc(m, chat, strlen(chat), -1, 1, n_off, &n, err);
    if (!t) {
        free(chat);
        return err->code;
    }
    if (n_off) t[n] = off[0];
    *text = chat;
    *toks = t;
    *n_toks = n + n_off;
    return 0;
}
