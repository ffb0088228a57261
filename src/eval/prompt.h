/* prompt.h - a question as the model reads it: the task's user turn in the
 * model's chat template, the CoT prefix when the method has one, its tokens,
 * then the offset token that cache steering holds back. */
#ifndef KVS_PROMPT_H
#define KVS_PROMPT_H
#include "dataset.h"
#include "eval.h"
#include "kvsteer.h"

/* The chat prompt of row under task (the CoT prefix after the generation
 * prompt when cot), malloc'd in *text, and its tokens followed by the n_off
 * (0 or 1) offset tokens in *toks (*n_toks in all).  0, or an error code with
 * nothing allocated. */
int prompt_build(const kvs_model *m, const eval_task *task, const qa_row *row, int cot, const kvs_token *off,
                 int n_off, char **text, kvs_token **toks, int *n_toks, kvs_error *err);

#endif
