/* style.h - which reasoning structure a response shows (docs/STYLES.md).
 *
 * Five structures, named as the style trace files (traces/styles/arc_NAME.jsonl):
 *   stepwise              numbered "Step N:" labels
 *   strategy_execution    a "Strategy:" label and a "Solution:"/"Execution:" label
 *   causal_chain          chained "if ... then ..." clauses
 *   annotated_deduction   "[A] -> [B]" bracketed premise/conclusion arrows
 *   analogical_reasoning  an explicit analogy opener ("Just like ...")
 * A response may show several structures, or none.  The markers and thresholds
 * are explained in docs/STYLES.md. */
#ifndef KVS_STYLE_H
#define KVS_STYLE_H
#include "kvsteer.h"

enum { STYLE_STEPWISE, STYLE_STRATEGY, STYLE_CAUSAL, STYLE_ANNOTATED, STYLE_ANALOGICAL, STYLE_N };

extern const char *const style_names[STYLE_N];
/* Index of a style name, or -1. */
int style_find(const char *name);
/* Index of the style named inside a file name ("arc_causal_chain.jsonl",
 * "causal_chain.gguf"), or -1. */
int style_in_name(const char *name);

typedef struct style_detector style_detector;

style_detector *style_new(kvs_error *err);
void style_free(style_detector *d);
/* Bit i set when the text shows structure i; counts[i] (may be NULL) gets the
 * number of markers of structure i found. */
unsigned style_detect(const style_detector *d, const char *text, int counts[STYLE_N]);
/* Bit i set when the text holds at least one surface marker of structure i
 * (one "Step N:", one "Strategy:" label, one conditional or a sentence
 * opening with "If", one line opening
 * with a bracketed phrase, one analogy opener) without necessarily showing the
 * structure: a steered model often imitates the markers before the form (or
 * repeats one marker in a loop).  Every structure shown also counts here. */
unsigned style_markers(const style_detector *d, const char *text);

#endif
