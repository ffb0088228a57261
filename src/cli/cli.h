/* cli.h - shared pieces of the kvsteer command line. */
#ifndef KVS_CLI_H
#define KVS_CLI_H
#include <stdint.h>
#include <stdio.h>

#include "kvsteer.h"

typedef int (*cli_cmd_fn)(int argc, char **argv);

int cmd_run(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_extract(int argc, char **argv);
int cmd_pairs(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_styles(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* Run an evaluation (eval_run) with the vectors of `so` (loaded), a progress
 * line on stderr unless quiet and the result line on `out`; errors name the
 * `kvsteer eval` option to change.  0, or 1 after printing the error. */
struct eval_config;
struct steer_opts;
int cli_eval(struct eval_config *ec, const struct steer_opts *so, int quiet, FILE *out);

/* Print "kvsteer <cmd>: <msg>" to stderr; returns 1 (the exit code for errors). */
int cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "; pass --chat-template NAME" when err is about the model's chat template, else "". */
const char *cli_template_hint(const kvs_error *err);
/* Strict number parsing: the whole string must be a number within [lo, hi]. */
int cli_int(const char *cmd, const char *opt, const char *s, long lo, long hi, int *out);
/* A layer range A-B, A- (to = -1: the last) or A; 1 on error (printed). */
int cli_layer_range(const char *cmd, const char *opt, const char *s, int *from, int *to);
int cli_u64(const char *cmd, const char *opt, const char *s, uint64_t *out);
int cli_float(const char *cmd, const char *opt, const char *s, double lo, double hi, float *out);

/* llama.cpp's repetition penalty and min-p, taken by every command that
 * samples: CLI_SAMPLING_OPTS in its option table (values 1100..1102), and
 * cli_sampling_opt for those values; 1 (printed) on a bad value. */
#define CLI_SAMPLING_OPTS                                                                        \
    {"repeat-penalty", required_argument, 0, 1100}, {"repeat-last-n", required_argument, 0, 1101}, \
        {"min-p", required_argument, 0, 1102}
#define CLI_SAMPLING_HELP                                                                       \
    "      --repeat-penalty P divide the positive logits, and multiply the negative ones, of\n"   \
    "                         the tokens among the last N by P; greedy too (default 1 = off)\n" \
    "      --repeat-last-n N  the penalty's window N, prompt included (default 64; 0 = off,\n"  \
    "                         -1 = the whole context)\n"
#define CLI_MIN_P_HELP                                                                         \
    "      --min-p M          after temperature, drop tokens less likely than M times the top\n" \
    "                         token (default 0 = off)\n"
int cli_sampling_opt(const char *cmd, int opt, const char *arg, kvs_sampler_params *sp);

/* A seed for sampling when none is given (differs between runs; the
 * commands print it so that a run can be repeated). */
uint64_t cli_random_seed(void);
/* Tokenize text into a malloc'd array; NULL (after printing) on error. */
kvs_token *cli_tokenize(const char *cmd, const kvs_model *m, const char *text, int add_bos, int parse_special,
                        int *n_out);
/* Render `user` as the single user turn of the model's chat template with the
 * generation prompt; NULL (after printing) on error. */
char *cli_chat_prompt(const char *cmd, const kvs_model *m, const char *system, const char *user,
                      const char *template_name);

/* Write text to path through a temporary file and a rename; 1 (printed) on error. */
int cli_write_atomic(const char *cmd, const char *path, const char *text);
/* Checks, before any long work, that an output file can be written there
 * (or, for a directory, that it can be created and takes files); 1 (printed)
 * on error. */
int cli_check_output(const char *cmd, const char *path);
int cli_check_output_dir(const char *cmd, const char *dir);
/* mkdir -p; 1 (printed) on error. */
int cli_mkdirs(const char *cmd, const char *dir);
const char *cli_basename(const char *path);
/* The data directory: `data` (--data), else $KVS_DATA, else CLI_DEFAULT_DATA
 * when it exists; NULL (after printing how to get the data) when none. */
#define CLI_DEFAULT_DATA "../shared/data"
const char *cli_data_dir(const char *cmd, const char *data);
/* Run another command in-process (its argv[0] is its name) with its stdout
 * sent to stderr; its exit code. */
int cli_call(cli_cmd_fn fn, int argc, char **argv);

#endif
