/* score.h - a sample's answer extracted and scored: the one place a sample is
 * scored, for new samples (run.c) and when rescoring stored ones
 * (eval_rescore, eval.h). */
#ifndef KVS_SCORE_H
#define KVS_SCORE_H
#include <cjson/cJSON.h>

#include "answer.h"
#include "dataset.h"

/* Sets the sample line o's "extracted", "target" and "correct" for a response
 * (and, for multiple choice, mc, its answer span), replacing any it had.
 * Returns the primary correctness. */
int score_sample(const ans_extractor *ax, const qa_row *row, int mc, const char *resp, const char *span, cJSON *o);

#endif
