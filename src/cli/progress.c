#include "progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

double progress_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void progress_init(progress *p, const char *label, int quiet) {
    p->label = label;
    p->t0 = progress_now();
    p->last_decile = -1;
    p->tty = isatty(2);
    p->quiet = quiet;
    p->base = 0;
}

void progress_set_base(progress *p, int already_done) { p->base = already_done; }

void progress_update(progress *p, int done, int total, const char *unit, const char *extra) {
    if (p->quiet || total <= 0) return;
    const int decile = (int)(10LL * done / total);
    if (!p->tty && decile == p->last_decile && done != total) return;
    p->last_decile = decile;
    const double el = progress_now() - p->t0, rate = el > 0 && done > p->base ? (done - p->base) / el : 0;
    const double eta = rate > 0 ? (total - done) / rate : 0;
    fprintf(stderr, "%s[%s] %d/%d %s  %.2f %s/s  elapsed %.0fs  ETA %.0fs%s%s%s", p->tty ? "\r" : "", p->label, done,
            total, unit, rate, unit, el, eta, extra ? "  " : "", extra ? extra : "", p->tty ? "\033[K" : "\n");
    if (p->tty && done == total) fputc('\n', stderr);
    fflush(stderr);
}
