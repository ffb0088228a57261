/* metrics.h - the server's counters and their Prometheus text (GET /metrics). */
#ifndef KVS_SERVER_METRICS_H
#define KVS_SERVER_METRICS_H
#include <pthread.h>
#include <stdint.h>

#include "sched.h"

enum { METRICS_ENDPOINTS = 9, METRICS_CODES = 10 };

typedef struct metrics {
    pthread_mutex_t mu;
    uint64_t n[METRICS_ENDPOINTS][METRICS_CODES];
} metrics;

void metrics_init(metrics *m);
void metrics_free(metrics *m);
/* The index of an endpoint for counting (unknown paths share one). */
int metrics_endpoint(const char *url);
void metrics_count(metrics *m, int endpoint, int status);
/* Prometheus text exposition of the counters and the scheduler's state; malloc'd. */
char *metrics_render(metrics *m, const sched_stats *st);

#endif
