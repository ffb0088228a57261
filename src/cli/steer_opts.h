/* steer_opts.h - the steering options shared by `run` and `eval`:
 *   --steer VEC [--ck X] [--cv Y] [--layers A-B]   (repeatable; coefficients and
 *                                                   layers apply to the last --steer)
 *   --act VEC [--act-layer L] [--act-scale C]      (activation steering; a control
 *                                                   vector needs no layer: all of its own)
 *   --offset-token T                               (the one-token offset; the bare
 *                                                   --offset is refused as ambiguous) */
#ifndef KVS_CLI_STEER_OPTS_H
#define KVS_CLI_STEER_OPTS_H
#include "kvsteer.h"

#define MAX_STEER 8

typedef struct steer_opts {
    int n;
    const char *path[MAX_STEER];
    kvs_steer_params p[MAX_STEER];
    kvs_steer *vec[MAX_STEER];
    const char *act_path;
    int act_layer;     /* -1: not given (a control vector then applies all its layers) */
    float act_scale;
    kvs_steer *act;
    const char *offset; /* NULL = default ("\n" when steering, none otherwise) */
} steer_opts;

void steer_opts_init(steer_opts *o);
/* Handles one option if it is a steering option: returns 1 if consumed, 0 if
 * not a steering option, -1 on error (printed). */
int steer_opts_parse(steer_opts *o, const char *cmd, const char *name, const char *val);
/* Loads the vector files against the model; -1 on error (printed). */
int steer_opts_load(steer_opts *o, const char *cmd, const kvs_model *m);
void steer_opts_free(steer_opts *o);
/* The hook for kvs_gen_request.on_prefilled: applies every cache vector. */
int steer_opts_on_prefilled(kvs_ctx *c, int seq, int last_pos, void *user, kvs_error *err);
/* The offset text to use, or NULL for none. */
const char *steer_opts_offset(const steer_opts *o);
/* The error for a bare --offset, which once meant the offset token in `eval`
 * beside --offset-start (the first question): every command refuses it. */
#define STEER_OPTS_OFFSET_AMBIGUOUS \
    "--offset is ambiguous: --offset-token T sets the steering offset token, --offset-start K the first question"
/* Help text lines for these options. */
extern const char *steer_opts_help;

#endif
