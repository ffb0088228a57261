/* report_plot.c - the charts of `kvsteer report --plot`: ablation curves with
 * their 95% intervals and speed by method, drawn by gnuplot from data and
 * scripts saved beside them, so that a chart can be drawn again by hand. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/fileio.h"
#include "engine/grow.h"
#include "cli.h"
#include "report.h"

#define CMD "report"

static int write_text(const char *dir, const char *name, const char *text, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", dir, name);
    return cli_write_atomic(CMD, path, text);
}

static void gp_quote(strbuf *b, const char *s);

/* The saved script DIR/NAME.gp draws DIR/NAME.png from DIR/NAME.dat when run
 * again by hand (gnuplot DIR/NAME.gp); here gnuplot is told to write a
 * temporary file instead (the variable `out`), renamed when it succeeded. */
static int gnuplot(const char *dir, const char *name, strbuf *script) {
    char gp[4096], png[4096], cmdline[12600];
    snprintf(png, sizeof png, "%s/%s.png", dir, name);
    kvs_error err = {0};
    atomic_file out;
    if (atomic_open(&out, png, &err)) return cli_error(CMD, "%s", err.msg);
    /* gnuplot itself fills the temporary file */
    fclose(out.f);
    out.f = NULL;
    strbuf full = {0};
    /* noenhanced: labels such as max_new are text, not subscripts */
    sb_printf(&full, "if (!exists('out')) out = ");
    gp_quote(&full, png);
    sb_printf(&full, "\nset terminal pngcairo noenhanced size 900,560 font ',11'\nset output out\n%s",
              script->p ? script->p : "");
    char gpname[300];
    snprintf(gpname, sizeof gpname, "%s.gp", name);
    if (full.oom || write_text(dir, gpname, full.p, gp, sizeof gp)) {
        sb_free(&full);
        atomic_abort(&out);
        return full.oom ? cli_error(CMD, "out of memory") : 1;
    }
    sb_free(&full);
    snprintf(cmdline, sizeof cmdline, "gnuplot -e \"out='%s'\" '%s' 2>&1", out.tmp, gp);
    FILE *p = popen(cmdline, "r");
    if (!p) {
        atomic_abort(&out);
        return cli_error(CMD, "cannot run gnuplot: %s", strerror(errno));
    }
    char msg[512] = "";
    while (fgets(msg, sizeof msg, p)) {}
    const int st = pclose(p);
    if (st != 0) {
        atomic_abort(&out);
        msg[strcspn(msg, "\n")] = 0;
        if (st == 127 * 256 || strstr(msg, "not found"))
            return cli_error(CMD, "--plot needs gnuplot (Debian package gnuplot-nox)");
        return cli_error(CMD, "%s: gnuplot failed: %s", gp, msg[0] ? msg : "no output");
    }
    if (atomic_commit(&out, 0, &err)) return cli_error(CMD, "%s", err.msg);
    return 0;
}

static void gp_quote(strbuf *b, const char *s) {
    sb_printf(b, "\"");
    for (; *s; s++) sb_printf(b, *s == '"' || *s == '\\' ? "\\%c" : "%c", *s);
    sb_printf(b, "\"");
}

int report_plot(const char *dir, const report_run *rs, int n, const report_series *ser, int n_ser) {
    if (cli_mkdirs(CMD, dir)) return 1;
    int rc = 0;
    /* ablations: one chart per task, decoding and parameter; one line per report_series */
    int *done = calloc((size_t)(n_ser ? n_ser : 1), sizeof *done);
    if (!done) return cli_error(CMD, "out of memory");
    for (int i = 0; i < n_ser && !rc; i++) {
        if (done[i]) continue;
        const report_run *r0 = &rs[ser[i].idx[0]];
        char name[256];
        snprintf(name, sizeof name, "ablation_%s_%s_%s", r0->task, r0->sampling ? "sampling" : "greedy",
                 report_param_names[ser[i].param]);
        for (char *c = name; *c; c++)
            if (*c == '+') *c = 'p';
        strbuf data = {0}, s = {0};
        sb_printf(&s, "set title ");
        char title[160];
        snprintf(title, sizeof title, "%s (%s): accuracy against %s", r0->task, r0->sampling ? "sampling" : "greedy",
                 report_param_titles[ser[i].param]);
        gp_quote(&s, title);
        sb_printf(&s, "\nset xlabel ");
        gp_quote(&s, report_param_titles[ser[i].param]);
        /* the y-axis holds every interval and the baseline level, with room above */
        const report_run *base = report_baseline_for(rs, n, r0);
        double ymax = base ? 100 * base->acc : 0;
        for (int k = i; k < n_ser; k++)
            for (int t = 0; t < ser[k].n; t++) ymax = fmax(ymax, 100 * rs[ser[k].idx[t]].acc_hi);
        ymax = fmin(100, 5 * ceil((ymax + 2.5) / 5));
        sb_printf(&s, "\nset ylabel 'accuracy (%%), bars: 95%% interval'\nset key outside bottom center horizontal\nset grid\n"
                      "set yrange [0:%g]\nset offsets graph 0.05, graph 0.05, 0, 0\nplot ", ymax);
        int block = 0;
        for (int k = i; k < n_ser; k++) {
            const report_run *rk = &rs[ser[k].idx[0]];
            if (ser[k].param != ser[i].param || strcmp(rk->task, r0->task) || rk->sampling != r0->sampling) continue;
            done[k] = 1;
            sb_printf(&data, "# %s\n# value accuracy std_over_seeds ci95_low ci95_high\n", rk->label);
            for (int t = 0; t < ser[k].n; t++) {
                const report_run *r = &rs[ser[k].idx[t]];
                sb_printf(&data, "%g %g %g %g %g\n", r->param[ser[k].param], 100 * r->acc, 100 * r->acc_std,
                          100 * r->acc_lo, 100 * r->acc_hi);
            }
            sb_printf(&data, "\n\n");
            /* the legend: the method and the settings other than the varied one */
            char leg[300];
            report_fixed_desc(rk, ser[k].param, leg, sizeof leg);
            char datpath[4200];
            snprintf(datpath, sizeof datpath, "%s/%s.dat", dir, name);
            sb_printf(&s, "%s", block ? ", " : "");
            gp_quote(&s, datpath);
            /* columns: value, accuracy, std over seeds, 95% interval */
            sb_printf(&s, " index %d using 1:2:4:5 with yerrorlines lw 2 pt 7 title ", block);
            gp_quote(&s, leg);
            block++;
        }
        /* the baseline as a dashed level, so a curve reads as better or worse */
        if (base) sb_printf(&s, ", %g with lines dt 2 lw 2 lc rgb 'gray40' title 'baseline %.1f%%'", 100 * base->acc,
                     100 * base->acc);
        sb_printf(&s, "\n");
        char datname[300], path[4096];
        snprintf(datname, sizeof datname, "%s.dat", name);
        if (data.oom || s.oom) rc = cli_error(CMD, "out of memory");
        if (!rc) rc = write_text(dir, datname, data.p, path, sizeof path);
        if (!rc) rc = gnuplot(dir, name, &s);
        free(data.p);
        free(s.p);
    }
    free(done);
    if (rc) return rc;
    /* speed by method: throughput of the whole batch (what a full set costs) */
    report_col *labels = malloc(sizeof *labels * (size_t)(n ? n : 1));
    if (!labels) return cli_error(CMD, "out of memory");
    const int nl = report_labels_of(rs, n, -1, labels);
    strbuf data = {0}, s = {0};
    sb_printf(&data, "# index method tokens_per_second_whole_batch\n");
    for (int l = 0; l < nl; l++) {
        report_speed sp;
        report_speed_of(rs, n, labels[l].name, &sp);
        sb_printf(&data, "%d ", l);
        gp_quote(&data, labels[l].name);
        sb_printf(&data, " %g\n", sp.sec > 0 ? sp.tok / sp.sec : 0.0);
    }
    free(labels);
    char path[4096], dat[4200];
    if (data.oom) rc = cli_error(CMD, "out of memory");
    if (!rc) rc = write_text(dir, "speed.dat", data.p, path, sizeof path);
    snprintf(dat, sizeof dat, "%s/speed.dat", dir);
    sb_printf(&s, "set title 'generated tokens per second by method (whole batch)'\nset ylabel 'tokens/s'\n"
                  "set style fill solid 0.6\nset boxwidth 0.6\nset yrange [0:*]\nset grid ytics\nset xtics rotate by -25\n"
                  "unset key\nplot ");
    gp_quote(&s, dat);
    sb_printf(&s, " using 1:3:xtic(2) with boxes\n");
    if (!rc) rc = s.oom ? cli_error(CMD, "out of memory") : gnuplot(dir, "speed", &s);
    free(data.p);
    free(s.p);
    return rc;
}
