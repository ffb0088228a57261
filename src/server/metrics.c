/* metrics.c - request counters and the Prometheus text format (metrics.h). */
#include "metrics.h"

#include "engine/grow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *k_endpoints[METRICS_ENDPOINTS] = {
    "/v1/chat/completions", "/v1/completions", "/v1/models", "/v1/steering/vectors", "/health", "/metrics", "/",
    "static", "other"};
static const int k_codes[METRICS_CODES] = {200, 400, 401, 404, 405, 413, 500, 503, 0, 0};

void metrics_init(metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
}

void metrics_free(metrics *m) { pthread_mutex_destroy(&m->mu); }

int metrics_endpoint(const char *url) {
    for (int i = 0; i < METRICS_ENDPOINTS - 2; i++)
        if (!strcmp(url, k_endpoints[i])) return i;
    /* the page's own files (issue: the browser page) are counted together */
    return strncmp(url, "/static/", 8) ? METRICS_ENDPOINTS - 1 : METRICS_ENDPOINTS - 2;
}

void metrics_count(metrics *m, int endpoint, int status) {
    int c = METRICS_CODES - 1; /* any other status */
    for (int i = 0; i < METRICS_CODES - 2; i++)
        if (k_codes[i] == status) c = i;
    if (endpoint < 0 || endpoint >= METRICS_ENDPOINTS) endpoint = METRICS_ENDPOINTS - 1;
    pthread_mutex_lock(&m->mu);
    m->n[endpoint][c]++;
    pthread_mutex_unlock(&m->mu);
}

static void family(strbuf *b, const char *name, const char *type, const char *help) {
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

char *metrics_render(metrics *m, const sched_stats *st) {
    strbuf b = {0};
    family(&b, "kvsteer_requests_total", "counter", "HTTP requests answered, by endpoint and status code.");
    pthread_mutex_lock(&m->mu);
    for (int e = 0; e < METRICS_ENDPOINTS; e++)
        for (int c = 0; c < METRICS_CODES; c++) {
            if (!m->n[e][c]) continue;
            char code[16];
            if (k_codes[c]) snprintf(code, sizeof code, "%d", k_codes[c]);
            else snprintf(code, sizeof code, "other");
            sb_printf(&b, "kvsteer_requests_total{endpoint=\"%s\",code=\"%s\"} %llu\n", k_endpoints[e], code,
                (unsigned long long)m->n[e][c]);
        }
    pthread_mutex_unlock(&m->mu);
    family(&b, "kvsteer_generations_total", "counter", "Generation requests ended, by outcome.");
    sb_printf(&b, "kvsteer_generations_total{outcome=\"completed\"} %llu\n", (unsigned long long)st->jobs_done);
    sb_printf(&b, "kvsteer_generations_total{outcome=\"cancelled\"} %llu\n", (unsigned long long)st->jobs_cancelled);
    sb_printf(&b, "kvsteer_generations_total{outcome=\"failed\"} %llu\n", (unsigned long long)st->jobs_failed);
    family(&b, "kvsteer_prompt_tokens_total", "counter", "Prompt tokens of accepted requests.");
    sb_printf(&b, "kvsteer_prompt_tokens_total %llu\n", (unsigned long long)st->tokens_prompt);
    family(&b, "kvsteer_generated_tokens_total", "counter", "Tokens generated.");
    sb_printf(&b, "kvsteer_generated_tokens_total %llu\n", (unsigned long long)st->tokens_generated);
    family(&b, "kvsteer_queue_depth", "gauge", "Requests waiting for a slot.");
    sb_printf(&b, "kvsteer_queue_depth %d\n", st->queued);
    family(&b, "kvsteer_slots_busy", "gauge", "Slots generating now.");
    sb_printf(&b, "kvsteer_slots_busy %d\n", st->busy);
    family(&b, "kvsteer_slots_total", "gauge", "Slots (sequences decoded together).");
    sb_printf(&b, "kvsteer_slots_total %d\n", st->slots);
    family(&b, "kvsteer_time_to_first_token_seconds", "summary", "From a request's arrival in the queue to its first token.");
    sb_printf(&b, "kvsteer_time_to_first_token_seconds_sum %.6f\nkvsteer_time_to_first_token_seconds_count %llu\n",
        st->ttft_sum, (unsigned long long)st->ttft_n);
    family(&b, "kvsteer_token_seconds", "summary",
           "Decoding time charged to each generated token (a step's time shared among its sequences).");
    sb_printf(&b, "kvsteer_token_seconds_sum %.6f\nkvsteer_token_seconds_count %llu\n", st->gen_seconds,
        (unsigned long long)st->tokens_generated);
    if (b.oom) {
        sb_free(&b);
        return NULL;
    }
    return b.p;
}
