#include "steer_opts.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine/utf8.h"

const char *steer_opts_help =
    "      --steer VEC        cache-steering vector file (repeatable: vectors add up)\n"
    "      --ck X             key coefficient for the last --steer (default 0)\n"
    "      --cv Y             value coefficient for the last --steer (default 1)\n"
    "      --layers A-B       layers to edit for the last --steer: A-B, A- or A (default 1-)\n"
    "      --act VEC          activation-steering vectors (continuous): a kvsteer act\n"
    "                         file (one layer, --act-layer required) or a llama.cpp\n"
    "                         control vector (all its layers unless --act-layer)\n"
    "      --act-layer L      layer whose output gets the vector, counted from 0 (a\n"
    "                         control vector's direction.L is layer L)\n"
    "      --act-scale C      scale of the activation vector (default 1; for a control\n"
    "                         vector, llama.cpp's --control-vector-scaled strength)\n"
    "      --offset-token T   the one token appended to the prompt and fed after the cache\n"
    "                         edit: newline, space, none, one non-digit character, or\n"
    "                         text:STRING for anything longer or numeric (default newline\n"
    "                         with --steer, none otherwise)\n";

void steer_opts_init(steer_opts *o) {
    memset(o, 0, sizeof *o);
    o->act_layer = -1;
    o->act_scale = 1.0f;
}

/* Bytes of the first UTF-8 character of s (1 for an invalid lead byte). */
static size_t utf8_char_len(const char *s) {
    uint32_t cp;
    const int n = utf8_get((const uint8_t *)s, strlen(s), &cp);
    return n > 0 ? (size_t)n : 1;
}

/* A bare value may only be one non-digit character or a name, so that a
 * question number meant for --offset-start, or a word, cannot silently become
 * the offset token; anything else is spelled text:STRING. */
static int parse_offset_token(const char *cmd, const char *val, const char **out) {
    if (!strcmp(val, "newline")) *out = "\n";
    else if (!strcmp(val, "space")) *out = " ";
    else if (!strcmp(val, "none") || !val[0]) *out = "";
    else if (!strncmp(val, "text:", 5) && val[5]) *out = val + 5;
    else if (val[utf8_char_len(val)] == 0 && !isdigit((unsigned char)val[0])) *out = val;
    else
        return cli_error(cmd, "--offset-token '%s' is ambiguous: give newline, space, none, one non-digit "
                              "character, or text:%s for that text", val, val);
    return 0;
}

int steer_opts_parse(steer_opts *o, const char *cmd, const char *name, const char *val) {
    if (!strcmp(name, "steer")) {
        if (o->n == MAX_STEER) return cli_error(cmd, "at most %d --steer vectors", MAX_STEER), -1;
        o->path[o->n] = val;
        o->p[o->n] = (kvs_steer_params){0.0f, 1.0f, 1, -1};
        o->n++;
        return 1;
    }
    if (!strcmp(name, "ck") || !strcmp(name, "cv") || !strcmp(name, "layers")) {
        if (o->n == 0) return cli_error(cmd, "--%s must follow a --steer VEC", name), -1;
        kvs_steer_params *p = &o->p[o->n - 1];
        if (!strcmp(name, "layers")) return cli_layer_range(cmd, "--layers", val, &p->layer_from, &p->layer_to) ? -1 : 1;
        char opt[8];
        snprintf(opt, sizeof opt, "--%s", name);
        return cli_float(cmd, opt, val, -1e4, 1e4, name[1] == 'k' ? &p->ck : &p->cv) ? -1 : 1;
    }
    if (!strcmp(name, "act")) {
        o->act_path = val;
        return 1;
    }
    if (!strcmp(name, "act-layer")) return cli_int(cmd, "--act-layer", val, 0, 100000, &o->act_layer) ? -1 : 1;
    if (!strcmp(name, "act-scale")) return cli_float(cmd, "--act-scale", val, -1e4, 1e4, &o->act_scale) ? -1 : 1;
    if (!strcmp(name, "offset-token")) return parse_offset_token(cmd, val, &o->offset) ? -1 : 1;
    if (!strcmp(name, "offset"))
        return cli_error(cmd, STEER_OPTS_OFFSET_AMBIGUOUS), -1;
    return 0;
}

int steer_opts_load(steer_opts *o, const char *cmd, const kvs_model *m) {
    kvs_error err = {0};
    kvs_model_info mi;
    kvs_model_get_info(m, &mi);
    for (int i = 0; i < o->n; i++) {
        if (!(o->vec[i] = kvs_steer_load(o->path[i], m, &err))) return cli_error(cmd, "%s", err.msg), -1;
        if (kvs_steer_get_kind(o->vec[i]) != KVS_STEER_CACHE)
            return cli_error(cmd, "%s: holds activation vectors; pass it with --act", o->path[i]), -1;
        kvs_steer_params *p = &o->p[i];
        int to = p->layer_to < 0 ? mi.n_layer - 1 : p->layer_to;
        if (p->layer_from >= mi.n_layer || to >= mi.n_layer)
            return cli_error(cmd, "--layers %d-%d: the model has layers 0-%d", p->layer_from, to, mi.n_layer - 1), -1;
    }
    if (o->act_path) {
        if (o->act_layer >= mi.n_layer)
            return cli_error(cmd, "--act-layer %d: the model has layers 0-%d", o->act_layer, mi.n_layer - 1), -1;
        if (!(o->act = kvs_steer_load(o->act_path, m, &err))) return cli_error(cmd, "%s", err.msg), -1;
        if (kvs_steer_get_kind(o->act) != KVS_STEER_ACT)
            return cli_error(cmd, "%s: holds cache vectors; pass it with --steer", o->act_path), -1;
        const int cvec = kvs_steer_get_format(o->act) == KVS_FORMAT_CONTROLVECTOR;
        if (o->act_layer < 0 && !cvec)
            return cli_error(cmd, "%s: a kvsteer act file holds every layer; choose one with --act-layer L",
                             o->act_path), -1;
        if (o->act_layer >= 0 && !kvs_steer_vector(o->act, o->act_layer, KVS_K))
            return cli_error(cmd, "--act-layer %d: %s holds no vector for that layer", o->act_layer, o->act_path), -1;
    } else if (o->act_layer >= 0) {
        return cli_error(cmd, "--act-layer needs --act VEC"), -1;
    }
    return 0;
}

void steer_opts_free(steer_opts *o) {
    for (int i = 0; i < o->n; i++) kvs_steer_free(o->vec[i]);
    kvs_steer_free(o->act);
    steer_opts_init(o);
}

int steer_opts_on_prefilled(kvs_ctx *c, int seq, int last_pos, void *user, kvs_error *err) {
    const steer_opts *o = user;
    for (int i = 0; i < o->n; i++) {
        int rc = kvs_steer_apply_cache(c, seq, last_pos, o->vec[i], &o->p[i], err);
        if (rc) return rc;
    }
    return 0;
}

const char *steer_opts_offset(const steer_opts *o) {
    if (o->offset) return o->offset[0] ? o->offset : NULL;
    return o->n > 0 ? "\n" : NULL;
}
