/* chat.c - recognising a chat template family from its Jinja text and
 * rendering messages in that family's format. */
#include "chat.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "grow.h"

const char *chat_family_name(chat_family f) {
    switch (f) {
    case CHAT_CHATML: return "chatml";
    case CHAT_LLAMA3: return "llama3";
    case CHAT_PHI3: return "phi3";
    case CHAT_GEMMA: return "gemma";
    default: return "unknown";
    }
}

static chat_family family_from_name(const char *name) {
    static const chat_family all[] = {CHAT_CHATML, CHAT_LLAMA3, CHAT_PHI3, CHAT_GEMMA};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(name, chat_family_name(all[i])) == 0) return all[i];
    return CHAT_UNKNOWN;
}

static chat_family detect_family(const char *src) {
    if (strstr(src, "<|im_start|>")) return CHAT_CHATML;
    if (strstr(src, "<|start_header_id|>")) return CHAT_LLAMA3;
    if (strstr(src, "<|user|>")) return CHAT_PHI3;
    if (strstr(src, "<start_of_turn>")) return CHAT_GEMMA;
    return CHAT_UNKNOWN;
}

/* --------------------------------------------- literal text of a template */

/* Calls fn on every piece of text the template can emit verbatim: the raw text
 * between tags, and (unescaped) string literals inside {{ }} / {% %} tags.
 * Stops early when fn returns non-zero; returns that value. */
typedef int (*literal_fn)(const char *s, size_t n, void *user);

static int unescape_literal(const char *p, size_t n, char *out, size_t *out_n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char e = p[++i];
            switch (e) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            default: c = e; break; /* \' \" \\ and anything else: the character itself */
            }
        }
        out[k++] = c;
    }
    *out_n = k;
    return 0;
}

static int for_each_literal(const char *src, literal_fn fn, void *user) {
    size_t len = strlen(src);
    char *buf = malloc(len + 1);
    if (!buf) return -1;
    int rc = 0;
    size_t i = 0;
    while (i < len && !rc) {
        /* raw text up to the next tag */
        const char *tag = NULL;
        for (size_t j = i; j + 1 < len; j++)
            if (src[j] == '{' && (src[j + 1] == '{' || src[j + 1] == '%' || src[j + 1] == '#')) {
                tag = src + j;
                break;
            }
        size_t raw_end = tag ? (size_t)(tag - src) : len;
        if (raw_end > i) rc = fn(src + i, raw_end - i, user);
        if (!tag || rc) break;
        char kind = tag[1];
        const char *close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
        size_t j = raw_end + 2;
        if (kind == '#') { /* comment: skip */
            const char *e = strstr(src + j, close);
            i = e ? (size_t)(e - src) + 2 : len;
            continue;
        }
        while (j < len && !rc) {
            char c = src[j];
            if (c == '\'' || c == '"') {
                size_t k = j + 1;
                while (k < len && src[k] != c) k += src[k] == '\\' ? 2 : 1;
                if (k > len) k = len;
                size_t n;
                unescape_literal(src + j + 1, k - j - 1, buf, &n);
                rc = fn(buf, n, user);
                j = k + 1;
            } else if (c == close[0] && j + 1 < len && src[j + 1] == close[1]) {
                j += 2;
                break;
            } else {
                j++;
            }
        }
        i = j;
    }
    free(buf);
    return rc;
}

typedef struct sys_find {
    char *found;
    int oom;
} sys_find;

/* A literal that opens a system turn and closes it again holds a fixed
 * system prompt: the one the template inserts by default. */
static int find_default_system(const char *s, size_t n, void *user) {
    static const char open[] = "<|im_start|>system\n", close[] = "<|im_end|>";
    sys_find *sf = user;
    for (size_t i = 0; i + sizeof open - 1 <= n; i++) {
        if (memcmp(s + i, open, sizeof open - 1) != 0) continue;
        size_t b = i + sizeof open - 1;
        for (size_t e = b; e + sizeof close - 1 <= n; e++) {
            if (memcmp(s + e, close, sizeof close - 1) != 0) continue;
            if (e == b) break; /* empty: not a prompt */
            sf->found = malloc(e - b + 1);
            if (!sf->found) {
                sf->oom = 1;
                return 1;
            }
            memcpy(sf->found, s + b, e - b);
            sf->found[e - b] = '\0';
            return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ init */

void chat_template_free(chat_template *t) {
    if (!t) return;
    free(t->default_system);
    free(t->bos_text);
    memset(t, 0, sizeof *t);
}

int chat_template_init(chat_template *t, const char *jinja_src, const char *name, const char *label,
                       kvs_error *err) {
    if (!label) label = "chat template";
    if (!t) return err_fail(err, KVS_E_ARG, "%s: no template object", label);
    memset(t, 0, sizeof *t);
    chat_family detected = jinja_src ? detect_family(jinja_src) : CHAT_UNKNOWN;
    chat_family fam;
    if (name) {
        fam = family_from_name(name);
        if (fam == CHAT_UNKNOWN)
            return err_fail(err, KVS_E_ARG, "%s: unknown chat template name '%s' (known: chatml, llama3, phi3, gemma)",
                            label, name);
    } else if (!jinja_src) {
        return err_fail(err, KVS_E_UNSUPPORTED, "%s: no chat template in the file", label);
    } else {
        fam = detected;
        if (fam == CHAT_UNKNOWN)
            return err_fail(err, KVS_E_UNSUPPORTED, "%s: unknown chat template", label);
    }
    t->family = fam;
    /* details come from the file's template only when it is of the chosen family */
    const char *src = detected == fam ? jinja_src : NULL;

    if (fam == CHAT_CHATML && src) {
        sys_find sf = {0};
        if (for_each_literal(src, find_default_system, &sf) < 0 || sf.oom) {
            chat_template_free(t);
            return err_fail(err, KVS_E_NOMEM, "%s: out of memory", label);
        }
        t->default_system = sf.found;
    }
    const char *bos = fam == CHAT_LLAMA3 ? "<|begin_of_text|>" : fam == CHAT_GEMMA ? "<bos>" : NULL;
    if (bos && (!src || strstr(src, "bos_token"))) {
        t->bos_text = strdup(bos);
        if (!t->bos_text) {
            chat_template_free(t);
            return err_fail(err, KVS_E_NOMEM, "%s: out of memory", label);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- render */

/* Content without leading and trailing white space (Jinja's trim). */
static void put_trimmed(strbuf *b, const char *s) {
    size_t n = strlen(s), i = 0;
    while (i < n && isspace((unsigned char)s[i])) i++;
    while (n > i && isspace((unsigned char)s[n - 1])) n--;
    sb_addn(b, s + i, n - i);
}

char *chat_render(const chat_template *t, const kvs_chat_msg *msgs, int n_msgs, int add_generation_prompt,
                  kvs_error *err) {
    if (!t || t->family == CHAT_UNKNOWN) {
        err_fail(err, KVS_E_ARG, "chat: no chat template");
        return NULL;
    }
    if (n_msgs < 0 || (n_msgs > 0 && !msgs)) {
        err_fail(err, KVS_E_ARG, "chat: bad message list (%d messages)", n_msgs);
        return NULL;
    }
    for (int i = 0; i < n_msgs; i++)
        if (!msgs[i].role || !msgs[i].content || !msgs[i].role[0]) {
            err_fail(err, KVS_E_ARG, "chat: message %d has no %s", i, msgs[i].content ? "role" : "content");
            return NULL;
        }

    strbuf b = {0};
    sb_add(&b, ""); /* an empty conversation renders as "" rather than NULL */
    if (t->bos_text) sb_add(&b, t->bos_text);
    switch (t->family) {
    case CHAT_CHATML:
        if (n_msgs > 0 && strcmp(msgs[0].role, "system") != 0 && t->default_system) {
            sb_add(&b, "<|im_start|>system\n");
            sb_add(&b, t->default_system);
            sb_add(&b, "<|im_end|>\n");
        }
        for (int i = 0; i < n_msgs; i++) {
            sb_add(&b, "<|im_start|>");
            sb_add(&b, msgs[i].role);
            sb_add(&b, "\n");
            sb_add(&b, msgs[i].content);
            sb_add(&b, "<|im_end|>\n");
        }
        if (add_generation_prompt) sb_add(&b, "<|im_start|>assistant\n");
        break;
    case CHAT_LLAMA3:
        for (int i = 0; i < n_msgs; i++) {
            sb_add(&b, "<|start_header_id|>");
            sb_add(&b, msgs[i].role);
            sb_add(&b, "<|end_header_id|>\n\n");
            put_trimmed(&b, msgs[i].content);
            sb_add(&b, "<|eot_id|>");
        }
        if (add_generation_prompt) sb_add(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case CHAT_PHI3:
        for (int i = 0; i < n_msgs; i++) {
            sb_add(&b, "<|");
            sb_add(&b, msgs[i].role);
            sb_add(&b, "|>\n");
            sb_add(&b, msgs[i].content);
            sb_add(&b, "<|end|>\n");
        }
        if (add_generation_prompt) sb_add(&b, "<|assistant|>\n");
        break;
    case CHAT_GEMMA: {
        /* no system role: system text goes at the top of the next user turn */
        strbuf sys = {0};
        for (int i = 0; i < n_msgs; i++) {
            const char *role = msgs[i].role;
            if (strcmp(role, "system") == 0) {
                put_trimmed(&sys, msgs[i].content);
                continue;
            }
            int model = strcmp(role, "assistant") == 0 || strcmp(role, "model") == 0;
            sb_add(&b, "<start_of_turn>");
            sb_add(&b, model ? "model" : role);
            sb_add(&b, "\n");
            if (!model && sys.n > 0) {
                sb_addn(&b, sys.p, sys.n);
                sb_add(&b, "\n\n");
                sys.n = 0;
            }
            put_trimmed(&b, msgs[i].content);
            sb_add(&b, "<end_of_turn>\n");
        }
        if (sys.oom) b.oom = 1;
        free(sys.p);
        if (add_generation_prompt) sb_add(&b, "<start_of_turn>model\n");
        break;
    }
    default:
        break;
    }
    if (b.oom) {
        free(b.p);
        err_fail(err, KVS_E_NOMEM, "chat: out of memory");
        return NULL;
    }
    return b.p;
}
