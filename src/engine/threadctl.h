/* threadctl.h - how many threads enter each step of the forward pass.
 *
 * Every step (one layer, or the output) ends in barriers, so a step is as slow as
 * its slowest thread.  When another process holds one of the cores, the thread
 * that shares it arrives late at every barrier and the whole pass crawls
 * (BENCHMARKS.md, "Shared cores"): then fewer threads are faster.  The context
 * therefore times each step, normalised by its work (multiply-adds), and keeps
 * separate statistics per size class of the step (log2 of its rows: decoding one
 * sequence, a batch, a prompt behave differently).  Within a class it mostly runs
 * the fastest thread count seen, and now and then probes a neighbour (one thread
 * fewer or more, the full count, one thread) for one measuring window, so that
 * when the other process goes away the full count comes back.  A probe that was
 * clearly worse doubles the wait before that count is tried again, or more when
 * it lost much (up to a few seconds of work), so that probing costs little; a
 * count that just lost its place is measured again at once, in case that was one
 * unlucky window.
 *
 * Results never depend on the choice: every row is computed by the same
 * arithmetic whatever the thread count (tests/test_threads.c).
 */
#ifndef KVS_THREADCTL_H
#define KVS_THREADCTL_H

/* Classes of steps: a layer or the output, by log2 of the step's rows, 0..16
 * (n_batch <= 65536).  The two kinds of step do different work per multiply-add
 * (attention, the output's own weight type), so they are timed apart. */
#define TC_ROW_CLASSES 17
#define TC_BUCKETS (2 * TC_ROW_CLASSES)
enum { TC_LAYER = 0, TC_OUTPUT = 1 };
/* A measuring window: long enough to span scheduler time slices, so that one
 * lucky or unlucky slice does not decide. */
#define TC_WINDOW_S 0.02
/* Wait (seconds of work in the class) before a count found worse, or one that
 * just lost its place as the best, is tried again; each worse probe doubles it, up
 * to the most.  The most bounds how long the full count takes to come back. */
#define TC_GAP_MIN_S 1.0
#define TC_GAP_MAX_S 8.0
/* The share of the time that probes of a count found worse may cost: the wait
 * before the next grows with what the last one lost (a step that runs 5x slower
 * on a crowded core waits longer than one that ran 1.5x slower). */
#define TC_PROBE_SHARE 0.03
/* A probe within this fraction of the best counts as "as good": its gap resets. */
#define TC_MARGIN 0.10

typedef struct tc_arm {
    double rate; /* seconds per unit of work, < 0 = never measured */
    double due;  /* class clock at which this count may be probed again */
    double gap;  /* current wait between probes (0 = never probed) */
} tc_arm;

typedef struct tc_bucket {
    double clock;   /* seconds measured in this class */
    int start;      /* the count to begin with while none is measured (0 = n_max) */
    int win_arm;    /* thread count of the window being measured (0 = none) */
    double win_t;   /* seconds and work in that window so far */
    double win_work;
    tc_arm *arm;    /* arm[1..n_max] */
} tc_bucket;

typedef struct threadctl {
    int n_max;          /* threads the user asked for: never more */
    int pinned;         /* 0 = adaptive, else every step uses this many */
    tc_bucket b[TC_BUCKETS];
    tc_arm *arms;       /* storage of every class's arms */
    int last;           /* the class that closed a window last (-1 = none) */
    double used_t;      /* seconds of all steps, and thread-seconds: their mean */
    double used_tn;
} threadctl;

/* 0, or -1 when out of memory.  KVS_FIXED_THREADS=1 in the environment pins
 * every context at n_max (for benchmarks that want a fixed -t). */
int tc_init(threadctl *tc, int n_max);
void tc_free(threadctl *tc);
/* The class of a step of kind TC_LAYER or TC_OUTPUT with `rows` rows. */
int tc_bucket_of(int kind, int rows);

/* The thread count for the next step of class `bucket`: the pinned count, else
 * tc_choose's.  A class seen for the first time starts from what the context
 * learnt last in another (tc_seed): a core found busy while decoding is busy for
 * the prompt that follows too. */
int tc_next(threadctl *tc, int bucket);
/* Account a step of class `bucket`: tc_record, and the time for the mean. */
void tc_done(threadctl *tc, int bucket, int n, double sec, double work);

/* The decision, a pure function of one class's statistics: the thread count
 * (1..n_max) for the class's next step. */
int tc_choose(const tc_bucket *b, int n_max);
/* The count with the lowest measured rate (b->start, else n_max, while none is
 * measured). */
int tc_best(const tc_bucket *b, int n_max);
/* Account a step of `work` units that took `sec` seconds with n threads. */
void tc_record(tc_bucket *b, int n_max, int n, double sec, double work);
/* Start an unused class `dst` from `src`: at src's best count, and each other
 * count first probed after the wait src had reached for it. */
void tc_seed(tc_bucket *dst, const tc_bucket *src, int n_max);

#endif
