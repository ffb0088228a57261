/* chat.h - rendering chat messages with a model's template.
 *
 * GGUF files carry a Jinja template (tokenizer.chat_template).  We do not run
 * Jinja; we recognise the template family from its text and render that family
 * natively, taking details such as the default system prompt from the template
 * itself.  An unrecognised template is an error unless a family is named. */
#ifndef KVS_CHAT_H
#define KVS_CHAT_H
#include "kvsteer.h"

typedef enum chat_family {
    CHAT_UNKNOWN = 0,
    CHAT_CHATML, /* <|im_start|>role\n...<|im_end|>\n  (SmolLM2, Qwen2) */
    CHAT_LLAMA3, /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
    CHAT_PHI3,   /* <|user|>\n...<|end|>\n */
    CHAT_GEMMA   /* <start_of_turn>user\n...<end_of_turn>\n */
} chat_family;

typedef struct chat_template {
    chat_family family;
    char *default_system; /* malloc'd, NULL when the template inserts none */
    char *bos_text;       /* text prepended by the template (e.g. "<bos>"), or NULL */
} chat_template;

/* Identify a template from its Jinja source (may be NULL) or a family name
 * ("chatml", "llama3", "phi3", "gemma"; NULL = detect).  Returns 0 or an error. */
int chat_template_init(chat_template *t, const char *jinja_src, const char *name,
                       const char *label, kvs_error *err);
void chat_template_free(chat_template *t);
const char *chat_family_name(chat_family f);

/* Returns a malloc'd string, or NULL with err set. */
char *chat_render(const chat_template *t, const kvs_chat_msg *msgs, int n_msgs,
                  int add_generation_prompt, kvs_error *err);

#endif
