/*
 * metrics: atomic counters and fixed-bucket histograms, the Prometheus
 * renderer, and the per-minute history. See metrics.h for the design.
 */
#include "metrics.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
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

static atomic_llong schedule_runs[2]; /* a task made, none made */

#define ROUTES_MAX METRICS_ROUTES_MAX
/* The statuses counted one by one; any other is counted as "other", the
 * last slot. */
static const int http_status_codes[] = {200, 201, 202, 204, 400, 401, 403, 404, 405,
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

void metrics_schedule_runs(int made, int skipped)
{
    atomic_fetch_add_explicit(&schedule_runs[0], made, memory_order_relaxed);
    atomic_fetch_add_explicit(&schedule_runs[1], skipped, memory_order_relaxed);
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

/* Room for the text, sized from what it will hold so that it always fits:
 * the families without a queue label take well under 64 KiB (at most
 * ROUTES_MAX routes of N_STATUS statuses, five histograms, the headers of
 * every family), and a per-queue sample line at most SERIES_BYTES_MAX (a
 * 32-byte family name, a 64-character name escaped at worst to 128, an
 * int64). */
#define FIXED_BYTES_MAX (256u << 10)
#define SERIES_BYTES_MAX 256u
#define PER_QUEUE_FAMILIES 6u

/* The label value of the series that sums the queues past max_queues: not
 * a valid queue name (those are letters, digits, '.', '_' and '-'), so it
 * can never be a second series of a real queue. */
#define OTHER_QUEUE "(other)"

/* The text being rendered. An append that does not fit fails the whole
 * text (metrics_render returns NULL): it is never cut mid-line and served. */
struct text {
    struct buf b;
    bool failed;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
    if (t->failed) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line || buf_append(&t->b, line, (size_t)n) != 0) t->failed = true;
}

/* v escaped as a label value (\\, \" and \n) into out, which holds 2 *
 * strlen(v) + 1 bytes. */
static const char *label_value(char *out, const char *v)
{
    char *o = out;
    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '"') {
            *o++ = '\\';
            *o++ = *p;
        } else if (*p == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

static void render_histogram(struct text *t, struct histogram *h)
{
    put(t, "# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help, h->name);
    long long cum = 0;
    for (int i = 0; i <= h->n; i++) {
        cum += atomic_load(&h->buckets[i]);
        if (i < h->n) put(t, "%s_bucket{le=\"%g\"} %lld\n", h->name, h->bounds[i], cum);
        else put(t, "%s_bucket{le=\"+Inf\"} %lld\n", h->name, cum);
    }
    put(t, "%s_sum %.6f\n%s_count %lld\n", h->name, (double)atomic_load(&h->sum_micro) / 1e6, h->name, cum);
}

/* The families without a queue label. */
static void render_global(struct text *t, const struct metrics_gauges *g)
{
    put(t, "# HELP asyncqueue_build_info Version of the running daemon.\n"
           "# TYPE asyncqueue_build_info gauge\n"
           "asyncqueue_build_info{version=\"%s\"} 1\n", AQ_VERSION);
    put(t, "# HELP asyncqueue_attempts_total Target calls by outcome and status class.\n"
           "# TYPE asyncqueue_attempts_total counter\n");
    for (int o = 0; o < 3; o++)
        for (int c = 0; c < 5; c++)
            put(t, "asyncqueue_attempts_total{outcome=\"%s\",status_class=\"%s\"} %lld\n",
                attempt_outcomes[o], status_classes[c], atomic_load(&attempts[o][c]));
    render_histogram(t, &attempt_duration);
    render_histogram(t, &accept_latency);

    put(t, "# HELP asyncqueue_webhook_deliveries_total Webhook delivery attempts by outcome.\n"
           "# TYPE asyncqueue_webhook_deliveries_total counter\n");
    for (int o = 0; o < 3; o++)
        put(t, "asyncqueue_webhook_deliveries_total{outcome=\"%s\"} %lld\n", webhook_outcomes[o],
            atomic_load(&webhooks[o]));
    put(t, "# HELP asyncqueue_schedule_runs_total Schedule runs, by whether they made a task.\n"
           "# TYPE asyncqueue_schedule_runs_total counter\n"
           "asyncqueue_schedule_runs_total{result=\"task\"} %lld\n"
           "asyncqueue_schedule_runs_total{result=\"skipped\"} %lld\n",
        atomic_load(&schedule_runs[0]), atomic_load(&schedule_runs[1]));
    render_histogram(t, &batch_size);
    render_histogram(t, &commit_duration);
    render_histogram(t, &sync_duration);

    put(t, "# HELP asyncqueue_http_requests_total HTTP requests answered, by route and status.\n"
           "# TYPE asyncqueue_http_requests_total counter\n");
    int n = atomic_load(&n_routes);
    for (int r = 0; r < n; r++)
        for (size_t s = 0; s < N_STATUS; s++) {
            long long v = atomic_load(&http_counts[r][s]);
            char code[8] = "other";
            if (s < N_STATUS - 1) snprintf(code, sizeof code, "%d", http_status_codes[s]);
            if (v) put(t, "asyncqueue_http_requests_total{route=\"%s\",status=\"%s\"} %lld\n", routes[r], code, v);
        }
    put(t, "# HELP asyncqueue_backlog Tasks queued or running.\n"
           "# TYPE asyncqueue_backlog gauge\nasyncqueue_backlog %lld\n"
           "# HELP asyncqueue_inflight Target and webhook calls in flight.\n"
           "# TYPE asyncqueue_inflight gauge\nasyncqueue_inflight %d\n"
           "# HELP asyncqueue_longpoll_waiters Clients waiting in a long-poll.\n"
           "# TYPE asyncqueue_longpoll_waiters gauge\nasyncqueue_longpoll_waiters %d\n",
        (long long)g->backlog, g->inflight, g->longpoll_waiters);
}

/* Which queues keep series of their own when there are too many: those
 * with settings, then those with tasks waiting or running, then the rest;
 * within each, the most tasks (waiting, running, and counted since start)
 * first, then by name, so the choice is the same from scrape to scrape
 * while nothing changes. */
static int queue_class(const struct queue_info *q)
{
    if (q->configured) return 0;
    return q->queued > 0 || q->inflight > 0 ? 1 : 2;
}

static int64_t queue_weight(const struct queue_info *q)
{
    return q->queued + q->inflight + q->accepted_total + q->completed_total + q->failed_total +
           q->cancelled_total;
}

static int by_rank(const void *a, const void *b)
{
    const struct queue_info *x = *(const struct queue_info *const *)a;
    const struct queue_info *y = *(const struct queue_info *const *)b;
    int cx = queue_class(x), cy = queue_class(y);
    if (cx != cy) return cx < cy ? -1 : 1;
    int64_t wx = queue_weight(x), wy = queue_weight(y);
    if (wx != wy) return wx > wy ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const struct queue_info *const *)a)->name, (*(const struct queue_info *const *)b)->name);
}

static int64_t family_value(const struct queue_info *q, unsigned family)
{
    switch (family) {
    case 0: return q->accepted_total;
    case 1: return q->completed_total;
    case 2: return q->failed_total;
    case 3: return q->cancelled_total;
    case 4: return q->queued;
    default: return q->inflight;
    }
}

static const struct {
    const char *name, *type, *help;
} queue_families[PER_QUEUE_FAMILIES] = {
    {"asyncqueue_tasks_accepted_total", "counter", "Runs accepted (202): creates and replays."},
    {"asyncqueue_tasks_completed_total", "counter", "Tasks completed."},
    {"asyncqueue_tasks_failed_total", "counter", "Tasks failed for good."},
    {"asyncqueue_tasks_cancelled_total", "counter", "Tasks cancelled."},
    {"asyncqueue_queue_depth", "gauge", "Tasks waiting (queued) per queue."},
    {"asyncqueue_queue_inflight", "gauge", "Tasks running per queue."},
};

/* The per-queue families: the listed queues by name, then the others
 * summed into queue="(other)" when there are any. */
static void render_queues(struct text *t, const struct queue_info *const *listed, size_t n_listed,
                          const struct queue_info *other, size_t n_other)
{
    char label[2 * sizeof other->name + 1];
    for (unsigned f = 0; f < PER_QUEUE_FAMILIES; f++) {
        const char *name = queue_families[f].name;
        put(t, "# HELP %s %s\n# TYPE %s %s\n", name, queue_families[f].help, name, queue_families[f].type);
        for (size_t i = 0; i < n_listed; i++)
            put(t, "%s{queue=\"%s\"} %lld\n", name, label_value(label, listed[i]->name),
                (long long)family_value(listed[i], f));
        if (n_other)
            put(t, "%s{queue=\"" OTHER_QUEUE "\"} %lld\n", name, (long long)family_value(other, f));
    }
}

char *metrics_render(const struct metrics_gauges *g)
{
    size_t n = g->n_queues;
    const struct queue_info **order = xcalloc(n ? n : 1, sizeof *order);
    for (size_t i = 0; i < n; i++) order[i] = &g->queues[i];
    size_t n_listed = n;
    struct queue_info other;
    memset(&other, 0, sizeof other);
    if (n > g->max_queues) {
        qsort(order, n, sizeof *order, by_rank);
        n_listed = g->max_queues;
        for (size_t i = n_listed; i < n; i++) {
            other.accepted_total += order[i]->accepted_total;
            other.completed_total += order[i]->completed_total;
            other.failed_total += order[i]->failed_total;
            other.cancelled_total += order[i]->cancelled_total;
            other.queued += order[i]->queued;
            other.inflight += order[i]->inflight;
        }
    }
    if (n_listed > 1) qsort(order, n_listed, sizeof *order, by_name);
    size_t n_other = n - n_listed;

    struct text t = {.failed = false};
    buf_init(&t.b, FIXED_BYTES_MAX + (n_listed + 1) * PER_QUEUE_FAMILIES * SERIES_BYTES_MAX);
    render_global(&t, g);
    put(&t, "# HELP asyncqueue_queues Queues the daemon knows of (settings, tasks, or counts since start).\n"
            "# TYPE asyncqueue_queues gauge\nasyncqueue_queues %zu\n"
            "# HELP asyncqueue_queues_folded Queues past metrics_max_queues, summed into queue=\"" OTHER_QUEUE
            "\".\n# TYPE asyncqueue_queues_folded gauge\nasyncqueue_queues_folded %zu\n",
        n, n_other);
    render_queues(&t, order, n_listed, &other, n_other);
    free(order);
    if (t.failed) {
        buf_free(&t.b);
        return NULL;
    }
    return buf_steal(&t.b, NULL);
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
