/* progress.h - a progress line on stderr: redrawn in place on a terminal,
 * printed every 10% (and at the end) otherwise, so logs stay short. */
#ifndef KVS_CLI_PROGRESS_H
#define KVS_CLI_PROGRESS_H

typedef struct progress {
    const char *label;
    double t0;
    int last_decile;
    int tty;
    int quiet;
    int base; /* items already done before t0 (a resumed run): not part of the rate */
} progress;

void progress_init(progress *p, const char *label, int quiet);
/* Items counted as done at the start (resumed); rate and ETA cover only the rest. */
void progress_set_base(progress *p, int already_done);
/* `extra` (may be NULL) is appended, e.g. "acc 41.2%". */
void progress_update(progress *p, int done, int total, const char *unit, const char *extra);
double progress_now(void);

#endif
