/* pairs.h - contrastive prompt pairs for steering-vector extraction.
 *
 * Pair i targets trace row i (the first N usable rows).  Both prompts are the
 * same chat transcript: n few-shot examples as user/assistant turns, then the
 * target question and the generation prompt.  The positive side's example
 * answers are the teacher's steps followed by " The answer is X."; the
 * negative side's are "The answer is X." alone. */
#ifndef KVS_PAIRS_H
#define KVS_PAIRS_H
#include "dataset.h"
#include "embcache.h"
#include "eval.h"
#include "kvsteer.h"

typedef enum pair_select { SELECT_SIMILAR = 0, SELECT_RANDOM = 1 } pair_select;

typedef struct pair_opts {
    int n_pairs, n_shots;
    pair_select select;
    uint64_t seed;          /* random selection */
    const char *prefix;     /* appended after the generation prompt, or NULL */
    const qa_set *exclude;  /* n_exclude sets of questions never used (an evaluation
                               set, held-out questions), or NULL */
    int n_exclude;
    int n_threads;
    const char *chat_template; /* NULL = the model's */
    /* progress: called with (done, total, what) */
    void (*progress)(int done, int total, const char *what, void *user);
    void *user;
    const eval_task *task;  /* questions are rendered as this task's evaluation
                               prompts (eval_render_question); NULL: the default */
    /* similar selection: a folder keeping the question embeddings between runs
     * (embcache.h), or NULL; the cache key is made from model_path and the
     * traces' path, so model_path is needed with it */
    const char *embed_cache;
    const char *model_path;
    embcache_outcome *cache_out; /* what the cache did (may be NULL) */
} pair_opts;

typedef struct pair_set {
    int n;
    char **pos, **neg;   /* rendered prompt texts */
    int *target;         /* trace row of each pair */
    int **shots;         /* n_shots trace rows per pair */
    int n_shots;
} pair_set;

int pairs_build(const kvs_model *m, const qa_set *traces, const pair_opts *o, pair_set *out, kvs_error *err);

/*
 * Pairs from one's own prompts: `pos` and `neg` are text files of one prompt
 * per line (line i of each makes pair i; a final newline is optional), or
 * `neg` is NULL and `pos` is a JSON Lines file of {"pos": TEXT, "neg": TEXT}
 * (for prompts holding newlines).  With `chat` each prompt is rendered as the
 * user turn of the chat template (`chat_template`, NULL = the model's) with
 * the generation prompt, then `prefix` (may be NULL); without, it is taken as
 * it is.  n_pairs > 0 takes the first n_pairs.  Errors name the file and line
 * (an empty prompt, unequal counts, a bad JSON line).  target and shots stay
 * NULL.
 */
int pairs_from_prompts(const kvs_model *m, const char *pos, const char *neg, int chat, const char *chat_template,
                       const char *prefix, int n_pairs, pair_set *out, kvs_error *err);
void pairs_free(pair_set *p);

#endif
