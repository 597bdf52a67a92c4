/*
 * metrics: atomic counters and fixed-bucket histograms, the Prometheus
 * renderer, and the per-minute history. See metrics.h for the design.
 */
#include "metrics.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "version.h"

#define HIST_MAX 20

struct histogram {
    const char *name;
    const char *help;
    int n;                      /* finite buckets */
    double bounds[HIST_MAX];    /* upper bounds, in the unit of the metric */
    atomic_llong buckets[HIST_MAX + 1];
    atomic_llong count;
    atomic_llong sum_micro;     /* sum in millionths of the unit */
};

static struct histogram attempt_duration = {
    "asyncqueue_attempt_duration_seconds", "Duration of target calls.", 16,
    {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}, {0}, 0, 0};
/* Buckets for the daemon's own sub-second steps: 0.1 ms to 1 s. */
#define FAST_SECONDS {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}
#define FAST_SECONDS_N 13

static struct histogram accept_latency = {
    "asyncqueue_accept_latency_seconds",
    "Time from a create request's arrival to its 202 (includes the durable commit).", FAST_SECONDS_N,
    FAST_SECONDS,
    {0}, 0, 0};
static struct histogram commit_duration = {
    "asyncqueue_writer_commit_seconds",
    "Time to run and commit one writer transaction (the fsync is writer_sync_seconds).", FAST_SECONDS_N,
    FAST_SECONDS,
    {0}, 0, 0};
static struct histogram sync_duration = {
    "asyncqueue_writer_sync_seconds",
    "Time of one fsync of the committed batches (synchronous = full).", FAST_SECONDS_N,
    FAST_SECONDS,
    {0}, 0, 0};
static struct histogram batch_size = {
    "asyncqueue_writer_batch_ops", "Writes grouped into one transaction (one fsync).", 11,
    {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}, {0}, 0, 0};

static void observe(struct histogram *h, double v)
{
    int i = 0;
    while (i < h->n && v > h->bounds[i]) i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_micro, (long long)(v * 1e6), memory_order_relaxed);
}

/* ---- labelled counters ---- */

static const char *const status_classes[] = {"none", "2xx", "3xx", "4xx", "5xx"};
static const char *const attempt_outcomes[] = {"success", "retry", "failure"};
static atomic_llong attempts[3][5];

static const char *const webhook_outcomes[] = {"delivered", "retry", "failed"};
static atomic_llong webhooks[3];

#define ROUTES_MAX 24
/* The statuses counted one by one; any other is counted as "other", the
 * last slot. */
static const int http_status_codes[] = {200, 202, 204, 400, 401, 403, 404, 405,
                                        409, 413, 415, 422, 429, 431, 500, 503};
#define N_STATUS (sizeof http_status_codes / sizeof http_status_codes[0] + 1)
static const char *routes[ROUTES_MAX];
static atomic_int n_routes;
static atomic_llong http_counts[ROUTES_MAX][N_STATUS];

static atomic_llong accepted_total, final_total[3];

/* ---- per-minute history ---- */

#define MINUTES 60
struct minute {
    atomic_llong minute;          /* minutes since the epoch this slot holds */
    atomic_llong accepted, completed, failed, cancelled, attempts;
    atomic_llong duration[HIST_MAX + 1]; /* attempt_duration's buckets */
};
static struct minute history[MINUTES];

static struct minute *minute_slot(void)
{
    long long m = util_now_ms() / 60000;
    struct minute *s = &history[m % MINUTES];
    long long old = atomic_load(&s->minute);
    if (old != m && atomic_compare_exchange_strong(&s->minute, &old, m)) {
        atomic_store(&s->accepted, 0);
        atomic_store(&s->completed, 0);
        atomic_store(&s->failed, 0);
        atomic_store(&s->cancelled, 0);
        atomic_store(&s->attempts, 0);
        for (int i = 0; i <= HIST_MAX; i++) atomic_store(&s->duration[i], 0);
    }
    return s;
}

void metrics_init(void)
{
    memset(history, 0, sizeof history);
}

void metrics_task_accepted(void)
{
    atomic_fetch_add_explicit(&accepted_total, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&minute_slot()->accepted, 1, memory_order_relaxed);
}

void metrics_task_final(enum metrics_final f)
{
    atomic_fetch_add_explicit(&final_total[f], 1, memory_order_relaxed);
    struct minute *s = minute_slot();
    atomic_llong *c = f == METRICS_COMPLETED ? &s->completed : f == METRICS_FAILED ? &s->failed
                                                                                  : &s->cancelled;
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

void metrics_attempt(int status_code, const char *outcome, int64_t duration_ms)
{
    int o = 0;
    while (o < 2 && strcmp(attempt_outcomes[o], outcome) != 0) o++;
    int cls = status_code >= 200 && status_code <= 599 ? status_code / 100 - 1 : 0;
    atomic_fetch_add_explicit(&attempts[o][cls], 1, memory_order_relaxed);
    double secs = (double)duration_ms / 1000.0;
    observe(&attempt_duration, secs);
    struct minute *s = minute_slot();
    atomic_fetch_add_explicit(&s->attempts, 1, memory_order_relaxed);
    int i = 0;
    while (i < attempt_duration.n && secs > attempt_duration.bounds[i]) i++;
    atomic_fetch_add_explicit(&s->duration[i], 1, memory_order_relaxed);
}

void metrics_webhook(const char *outcome)
{
    int o = 0;
    while (o < 2 && strcmp(webhook_outcomes[o], outcome) != 0) o++;
    atomic_fetch_add_explicit(&webhooks[o], 1, memory_order_relaxed);
}

void metrics_writer_batch(int ops, int64_t commit_us)
{
    observe(&batch_size, ops);
    observe(&commit_duration, (double)commit_us / 1e6);
}

void metrics_writer_sync_us(int64_t us)
{
    observe(&sync_duration, (double)us / 1e6);
}

void metrics_accept_latency_us(int64_t us)
{
    observe(&accept_latency, (double)us / 1e6);
}

void metrics_http(const char *route, int status)
{
    size_t si = 0;
    while (si < N_STATUS - 1 && http_status_codes[si] != status) si++;
    /* Route names are static strings from a fixed set: the table fills once. */
    int n = atomic_load(&n_routes), ri = 0;
    while (ri < n && routes[ri] != route) ri++;
    if (ri == n) {
        static atomic_flag adding = ATOMIC_FLAG_INIT;
        while (atomic_flag_test_and_set(&adding)) {
        }
        n = atomic_load(&n_routes);
        ri = 0;
        while (ri < n && routes[ri] != route) ri++;
        if (ri == n && n < ROUTES_MAX) {
            routes[n] = route;
            atomic_store(&n_routes, n + 1);
        }
        atomic_flag_clear(&adding);
        if (ri >= ROUTES_MAX) return;
    }
    atomic_fetch_add_explicit(&http_counts[ri][si], 1, memory_order_relaxed);
}

/* ---- rendering ---- */

static void label_value(struct buf *b, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '"') buf_appendf(b, "\\%c", *p);
        else if (*p == '\n') buf_append(b, "\\n", 2);
        else buf_append(b, p, 1);
    }
}

static void render_histogram(struct buf *b, struct histogram *h)
{
    buf_appendf(b, "# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help, h->name);
    long long cum = 0;
    for (int i = 0; i <= h->n; i++) {
        cum += atomic_load(&h->buckets[i]);
        if (i < h->n) buf_appendf(b, "%s_bucket{le=\"%g\"} %lld\n", h->name, h->bounds[i], cum);
        else buf_appendf(b, "%s_bucket{le=\"+Inf\"} %lld\n", h->name, cum);
    }
    buf_appendf(b, "%s_sum %.6f\n%s_count %lld\n", h->name,
                (double)atomic_load(&h->sum_micro) / 1e6, h->name, cum);
}

static void per_queue(struct buf *b, const struct metrics_gauges *g, const char *name,
                      const char *type, const char *help, int which)
{
    buf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (size_t i = 0; i < g->n_queues; i++) {
        const struct queue_info *q = &g->queues[i];
        long long v = which == 0   ? q->accepted_total
                      : which == 1 ? q->completed_total
                      : which == 2 ? q->failed_total
                      : which == 3 ? q->cancelled_total
                      : which == 4 ? (g->queued ? g->queued[i] : 0)
                                   : q->inflight;
        buf_appendf(b, "%s{queue=\"", name);
        label_value(b, q->name);
        buf_appendf(b, "\"} %lld\n", v);
    }
}

char *metrics_render(const struct metrics_gauges *g)
{
    struct buf b;
    buf_init(&b, 64u << 20);
    buf_appendf(&b, "# HELP asyncqueue_build_info Version of the running daemon.\n"
                    "# TYPE asyncqueue_build_info gauge\n"
                    "asyncqueue_build_info{version=\"%s\"} 1\n", AQ_VERSION);
    per_queue(&b, g, "asyncqueue_tasks_accepted_total", "counter", "Tasks accepted (202).", 0);
    per_queue(&b, g, "asyncqueue_tasks_completed_total", "counter", "Tasks completed.", 1);
    per_queue(&b, g, "asyncqueue_tasks_failed_total", "counter", "Tasks failed for good.", 2);
    per_queue(&b, g, "asyncqueue_tasks_cancelled_total", "counter", "Tasks cancelled.", 3);
    per_queue(&b, g, "asyncqueue_queue_depth", "gauge", "Tasks waiting (queued) per queue.", 4);
    per_queue(&b, g, "asyncqueue_queue_inflight", "gauge", "Tasks running per queue.", 5);

    buf_appendf(&b, "# HELP asyncqueue_attempts_total Target calls by outcome and status class.\n"
                    "# TYPE asyncqueue_attempts_total counter\n");
    for (int o = 0; o < 3; o++)
        for (int c = 0; c < 5; c++)
            buf_appendf(&b, "asyncqueue_attempts_total{outcome=\"%s\",status_class=\"%s\"} %lld\n",
                        attempt_outcomes[o], status_classes[c], atomic_load(&attempts[o][c]));
    render_histogram(&b, &attempt_duration);
    render_histogram(&b, &accept_latency);

    buf_appendf(&b, "# HELP asyncqueue_webhook_deliveries_total Webhook delivery attempts by outcome.\n"
                    "# TYPE asyncqueue_webhook_deliveries_total counter\n");
    for (int o = 0; o < 3; o++)
        buf_appendf(&b, "asyncqueue_webhook_deliveries_total{outcome=\"%s\"} %lld\n",
                    webhook_outcomes[o], atomic_load(&webhooks[o]));
    render_histogram(&b, &batch_size);
    render_histogram(&b, &commit_duration);
    render_histogram(&b, &sync_duration);

    buf_appendf(&b, "# HELP asyncqueue_http_requests_total HTTP requests answered, by route and status.\n"
                    "# TYPE asyncqueue_http_requests_total counter\n");
    int n = atomic_load(&n_routes);
    for (int r = 0; r < n; r++)
        for (size_t s = 0; s < N_STATUS; s++) {
            long long v = atomic_load(&http_counts[r][s]);
            char code[8] = "other";
            if (s < N_STATUS - 1) snprintf(code, sizeof code, "%d", http_status_codes[s]);
            if (v) buf_appendf(&b, "asyncqueue_http_requests_total{route=\"%s\",status=\"%s\"} %lld\n",
                               routes[r], code, v);
        }
    buf_appendf(&b, "# HELP asyncqueue_backlog Tasks queued or running.\n"
                    "# TYPE asyncqueue_backlog gauge\nasyncqueue_backlog %lld\n"
                    "# HELP asyncqueue_inflight Target and webhook calls in flight.\n"
                    "# TYPE asyncqueue_inflight gauge\nasyncqueue_inflight %d\n"
                    "# HELP asyncqueue_longpoll_waiters Clients waiting in a long-poll.\n"
                    "# TYPE asyncqueue_longpoll_waiters gauge\nasyncqueue_longpoll_waiters %d\n",
                (long long)g->backlog, g->inflight, g->longpoll_waiters);
    return buf_steal(&b, NULL);
}

/* The p-th percentile (0..1) in ms from a minute's buckets. */
static double percentile_ms(const long long *counts, long long total, double p)
{
    if (total == 0) return 0;
    double want = p * (double)total, seen = 0;
    for (int i = 0; i <= attempt_duration.n; i++) {
        if (seen + (double)counts[i] >= want) {
            double lo = i ? attempt_duration.bounds[i - 1] : 0;
            double hi = i < attempt_duration.n ? attempt_duration.bounds[i] : lo * 2;
            double frac = counts[i] ? (want - seen) / (double)counts[i] : 0;
            return (lo + (hi - lo) * frac) * 1000.0;
        }
        seen += (double)counts[i];
    }
    return attempt_duration.bounds[attempt_duration.n - 1] * 1000.0;
}

char *metrics_history_json(int minutes)
{
    if (minutes < 1) minutes = 1;
    if (minutes > MINUTES) minutes = MINUTES;
    long long now = util_now_ms() / 60000;
    cJSON *a = cJSON_CreateArray();
    for (long long m = now - minutes + 1; m <= now; m++) {
        struct minute *s = &history[m % MINUTES];
        bool live = atomic_load(&s->minute) == m;
        long long counts[HIST_MAX + 1] = {0}, total = 0;
        for (int i = 0; live && i <= attempt_duration.n; i++) {
            counts[i] = atomic_load(&s->duration[i]);
            total += counts[i];
        }
        cJSON *o = cJSON_CreateObject();
        char ts[UTIL_RFC3339_LEN];
        cJSON_AddStringToObject(o, "minute", util_rfc3339(m * 60000, ts));
        cJSON_AddNumberToObject(o, "accepted", live ? (double)atomic_load(&s->accepted) : 0);
        cJSON_AddNumberToObject(o, "completed", live ? (double)atomic_load(&s->completed) : 0);
        cJSON_AddNumberToObject(o, "failed", live ? (double)atomic_load(&s->failed) : 0);
        cJSON_AddNumberToObject(o, "cancelled", live ? (double)atomic_load(&s->cancelled) : 0);
        cJSON_AddNumberToObject(o, "attempts", live ? (double)atomic_load(&s->attempts) : 0);
        cJSON_AddNumberToObject(o, "p50Ms", percentile_ms(counts, total, 0.50));
        cJSON_AddNumberToObject(o, "p95Ms", percentile_ms(counts, total, 0.95));
        cJSON_AddNumberToObject(o, "p99Ms", percentile_ms(counts, total, 0.99));
        cJSON_AddItemToArray(a, o);
    }
    char *s = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    return s;
}
