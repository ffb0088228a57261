/* tasks.c - the evaluation tasks and methods (eval.h). */
#include <string.h>

#include "eval.h"

static const eval_task k_tasks[] = {
    {"gsm8k", "gsm8k_test.jsonl", NULL, " "},
    {"arc", "arc_challenge_test.jsonl", "\n\nChoices:", "\n"},
    {"csqa", "csqa_validation.jsonl", "", "\n"},
    {"piqa", "piqa_validation.jsonl", "\n\nChoices:", "\n"},
};

const eval_task *eval_task_find(const char *name) {
    for (size_t i = 0; name && i < sizeof k_tasks / sizeof *k_tasks; i++)
        if (!strcmp(name, k_tasks[i].name)) return &k_tasks[i];
    return NULL;
}

const char *const eval_method_names[EVAL_N_METHODS] = {"baseline", "cot", "cache", "cache+cot", "act"};

int eval_method_find(const char *name) {
    for (int i = 0; name && i < EVAL_N_METHODS; i++)
        if (!strcmp(name, eval_method_names[i])) return i;
    return -1;
}
