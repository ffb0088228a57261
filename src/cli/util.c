#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "engine/fileio.h"

const char *cli_template_hint(const kvs_error *err) {
    /* the one unsupported thing a chat rendering can meet is the template */
    return err->code == KVS_E_UNSUPPORTED && strstr(err->msg, "chat template") ? "; pass --chat-template NAME" : "";
}

int cli_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kvsteer %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

uint64_t cli_random_seed(void) {
    uint64_t s = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&s, sizeof s, 1, f) != 1) { /* no urandom: time and process id */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32;
    }
    if (f) fclose(f);
    return s % 1000000000u; /* short enough to retype */
}

int cli_int(const char *cmd, const char *opt, const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return cli_error(cmd, "%s expects an integer in [%ld, %ld], got '%s'", opt, lo, hi, s);
    *out = (int)v;
    return 0;
}

int cli_u64(const char *cmd, const char *opt, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-') return cli_error(cmd, "%s expects a non-negative integer, got '%s'", opt, s);
    *out = v;
    return 0;
}

int cli_float(const char *cmd, const char *opt, const char *s, double lo, double hi, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        return cli_error(cmd, "%s expects a number in [%g, %g], got '%s'", opt, lo, hi, s);
    *out = (float)v;
    return 0;
}

int cli_sampling_opt(const char *cmd, int opt, const char *arg, kvs_sampler_params *sp) {
    char *end;
    errno = 0;
    if (opt == 1101) return cli_int(cmd, "--repeat-last-n", arg, -1, 1 << 24, &sp->repeat_last_n);
    if (opt == 1102) return cli_float(cmd, "--min-p", arg, 0, 1, &sp->min_p);
    const double v = strtod(arg, &end);
    if (errno || end == arg || *end || !isfinite(v) || v <= 0 || v > 1e6)
        return cli_error(cmd, "--repeat-penalty expects a number in (0, 1e6] (1 = off), got '%s'", arg);
    sp->repeat_penalty = (float)v;
    return 0;
}

kvs_token *cli_tokenize(const char *cmd, const kvs_model *m, const char *text, int add_bos, int parse_special,
                        int *n_out) {
    kvs_error err = {0};
    kvs_token *t = kvs_tokenize_alloc(m, text, strlen(text), add_bos, parse_special, 0, n_out, &err);
    if (!t) cli_error(cmd, "%s", err.msg);
    return t;
}

char *cli_chat_prompt(const char *cmd, const kvs_model *m, const char *system, const char *user,
                      const char *template_name) {
    kvs_chat_msg msgs[2];
    int n = 0;
    if (system) msgs[n++] = (kvs_chat_msg){"system", system};
    msgs[n++] = (kvs_chat_msg){"user", user};
    kvs_error err = {0};
    char *s = kvs_chat_render(m, msgs, n, 1, template_name, &err);
    if (!s) cli_error(cmd, "%s%s", err.msg, cli_template_hint(&err));
    return s;
}

int cli_write_atomic(const char *cmd, const char *path, const char *text) {
    kvs_error err = {0};
    return write_file_atomic(path, text, strlen(text), &err) ? cli_error(cmd, "%s", err.msg) : 0;
}

int cli_check_output(const char *cmd, const char *path) {
    kvs_error err = {0};
    return atomic_check(path, &err) ? cli_error(cmd, "%s", err.msg) : 0;
}

int cli_check_output_dir(const char *cmd, const char *dir) {
    if (cli_mkdirs(cmd, dir)) return 1;
    char probe[4200];
    if (snprintf(probe, sizeof probe, "%s/.kvsteer-check", dir) >= (int)sizeof probe)
        return cli_error(cmd, "%s: path too long", dir);
    kvs_error err = {0};
    return atomic_check(probe, &err) ? cli_error(cmd, "%s: cannot create files in this directory", dir) : 0;
}

int cli_mkdirs(const char *cmd, const char *dir) {
    kvs_error err = {0};
    return make_dirs(dir, &err) ? cli_error(cmd, "%s", err.msg) : 0;
}

const char *cli_data_dir(const char *cmd, const char *data) {
    if (data) return data;
    const char *env = getenv("KVS_DATA");
    if (env && env[0]) return env;
    struct stat st;
    if (stat(CLI_DEFAULT_DATA, &st) || !S_ISDIR(st.st_mode)) {
        cli_error(cmd,
                  "no --data DIR or KVS_DATA given and %s does not exist here; get the data with "
                  "scripts/fetch_data.sh --dest DIR, then pass --data DIR",
                  CLI_DEFAULT_DATA);
        return NULL;
    }
    return CLI_DEFAULT_DATA;
}

const char *cli_basename(const char *path) {
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

int cli_call(cli_cmd_fn fn, int argc, char **argv) {
    /* the callee's result lines would interleave with the caller's tables: send them to stderr */
    fflush(stdout);
    const int saved = dup(1);
    if (saved < 0 || dup2(2, 1) < 0) {
        if (saved >= 0) close(saved);
        return fn(argc, argv);
    }
    const int rc = fn(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    return rc;
}

int cli_layer_range(const char *cmd, const char *opt, const char *s, int *from, int *to) {
    char *end;
    long a = strtol(s, &end, 10), b;
    if (end == s || a < 0 || a > 100000) goto bad;
    if (*end == '\0') b = a;
    else if (*end == '-' && end[1] == '\0') b = -1;
    else if (*end == '-') {
        char *e2;
        b = strtol(end + 1, &e2, 10);
        if (e2 == end + 1 || *e2 || b < a) goto bad;
    } else goto bad;
    *from = (int)a;
    *to = (int)b;
    return 0;
bad:
    return cli_error(cmd, "%s expects A-B, A- or A (layer numbers), got '%s'", opt, s);
}
