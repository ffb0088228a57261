/* tasks.c - the evaluation tasks and methods (eval.h). */
#include <string.h>

#include "dataset.h"
#include "eval.h"

static const eval_task k_tasks[] = {
    {"gsm8k", "gsm8k_test.jsonl", "gsm8k.jsonl", NULL, " "},
    {"arc", "arc_challenge_test.jsonl", "arc_challenge.jsonl", EVAL_CHOICES_HEADER, "\n"},
    {"csqa", "csqa_validation.jsonl", "csqa.jsonl", "", "\n"},
    {"piqa", "piqa_validation.jsonl", "piqa.jsonl", EVAL_CHOICES_HEADER, "\n"},
};

const eval_task *eval_task_find(const char *name) {
    for (size_t i = 0; name && i < sizeof k_tasks / sizeof *k_tasks; i++)
        if (!strcmp(name, k_tasks[i].name)) return &k_tasks[i];
    return NULL;
}

const eval_task *eval_task_for_traces(const char *path) {
    if (!path) return NULL;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (size_t i = 0; i < sizeof k_tasks / sizeof *k_tasks; i++)
        if (!strcmp(base, k_tasks[i].trace_file)) return &k_tasks[i];
    return NULL;
}

char *eval_render_question(const eval_task *t, const qa_row *r) {
    return qa_render_question(r, !t ? EVAL_CHOICES_HEADER : t->choices_header ? t->choices_header : "");
}

const char *const eval_method_names[EVAL_N_METHODS] = {"baseline", "cot", "cache", "cache+cot", "act"};

int eval_method_find(const char *name) {
    for (int i = 0; name && i < EVAL_N_METHODS; i++)
        if (!strcmp(name, eval_method_names[i])) return i;
    return -1;
}
