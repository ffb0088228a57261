/* dataset.h - question sets in JSON Lines: teacher traces and evaluation sets.
 *
 * One row per line.  Traces: question, optional choices [{label, text}], steps
 * [strings], answer.  Evaluation rows: id, question, optional choices, answer.
 * Every malformed line is an error "FILE:LINE: what is wrong". */
#ifndef KVS_DATASET_H
#define KVS_DATASET_H
#include "kvsteer.h"

typedef struct qa_row {
    char *id;          /* "id" or "source_id" as text; "" when absent */
    char *question;
    int n_choices;
    char **labels, **texts;
    int n_steps;
    char **steps;
    char *answer;
    char *style;       /* traces/styles only, else NULL */
} qa_row;

typedef struct qa_set {
    char *path;
    int n;
    qa_row *rows;
} qa_set;

/* need_steps: every row must carry a "steps" array (trace files); an empty one is
 * allowed and leaves the row unusable as a pair or shot (n_steps 0). */
int qa_load(const char *path, int need_steps, qa_set *out, kvs_error *err);
/* Parse from memory (fuzzing, tests); `label` names the source in errors. */
int qa_parse(const char *buf, size_t len, const char *label, int need_steps, qa_set *out, kvs_error *err);
void qa_free(qa_set *s);

/* "question\n\nChoices:\nA: ...\nB: ..." (or the bare question), malloc'd. */
char *qa_render_question(const qa_row *r, const char *choices_header);
/* Steps joined by single spaces, malloc'd. */
char *qa_join_steps(const qa_row *r);

#endif
