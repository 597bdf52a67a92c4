/*
 * test_metrics: the Prometheus text metrics_render writes: the families
 * without a queue label first, the per-queue series bounded by max_queues
 * (which queues keep series of their own, the rest summed into
 * queue="(other)"), label values escaped, and a text that is always whole,
 * however many queues.
 */
#include "testutil.h"

#include "metrics.h"

static struct queue_info queue(const char *name, bool configured, int64_t queued, int inflight,
                               int64_t accepted, int64_t completed)
{
    struct queue_info q;
    memset(&q, 0, sizeof q);
    snprintf(q.name, sizeof q.name, "%s", name);
    queue_settings_default(&q.s);
    q.configured = configured;
    q.queued = queued;
    q.inflight = inflight;
    q.accepted_total = accepted;
    q.completed_total = completed;
    return q;
}

static char *render(const struct queue_info *qs, size_t n, size_t max_queues)
{
    struct metrics_gauges g = {.backlog = 7, .inflight = 1, .longpoll_waiters = 0,
                               .queues = qs, .n_queues = n, .max_queues = max_queues};
    char *text = metrics_render(&g);
    assert_non_null(text);
    size_t len = strlen(text);
    assert_true(len > 0 && text[len - 1] == '\n'); /* whole lines only */
    return text;
}

/* family{queue="q"}'s value, or -1 when there is no such series. */
static long long value(const char *text, const char *family, const char *q)
{
    char want[300];
    snprintf(want, sizeof want, "\n%s{queue=\"%s\"} ", family, q);
    const char *p = strstr(text, want);
    return p ? strtoll(p + strlen(want), NULL, 10) : -1;
}

/* A sample without labels: "\nname value". */
static long long plain(const char *text, const char *name)
{
    char want[128];
    snprintf(want, sizeof want, "\n%s ", name);
    const char *p = strstr(text, want);
    assert_non_null(p);
    return strtoll(p + strlen(want), NULL, 10);
}

/* Lines that are samples of family with a queue label. (Line by line: a
 * strstr loop is quadratic under AddressSanitizer, which measures the whole
 * rest of the text at each call.) */
static size_t series(const char *text, const char *family)
{
    char want[128];
    int len = snprintf(want, sizeof want, "%s{queue=", family);
    size_t n = 0;
    for (const char *p = text; *p;) {
        if (strncmp(p, want, (size_t)len) == 0) n++;
        const char *nl = strchr(p, '\n');
        if (!nl) break;
        p = nl + 1;
    }
    return n;
}

static const char *const queue_families[] = {
    "asyncqueue_tasks_accepted_total", "asyncqueue_tasks_completed_total",
    "asyncqueue_tasks_failed_total",   "asyncqueue_tasks_cancelled_total",
    "asyncqueue_queue_depth",          "asyncqueue_queue_inflight",
};

/* With the per-queue series first, a text cut at its cap lost every global
 * family; they come first now, each family's HELP and TYPE once. */
static void families_without_a_queue_come_first(void **state)
{
    (void)state;
    struct queue_info qs[] = {queue("a", false, 1, 0, 1, 0), queue("b", false, 0, 0, 2, 2)};
    char *text = render(qs, 2, 1000);
    const char *last_global = strstr(text, "\nasyncqueue_longpoll_waiters ");
    assert_non_null(last_global);
    static const char *const global[] = {
        "# TYPE asyncqueue_build_info gauge", "# TYPE asyncqueue_attempts_total counter",
        "# TYPE asyncqueue_attempt_duration_seconds histogram",
        "# TYPE asyncqueue_accept_latency_seconds histogram",
        "# TYPE asyncqueue_webhook_deliveries_total counter",
        "# TYPE asyncqueue_writer_batch_ops histogram", "# TYPE asyncqueue_writer_commit_seconds histogram",
        "# TYPE asyncqueue_writer_sync_seconds histogram", "# TYPE asyncqueue_http_requests_total counter",
        "# TYPE asyncqueue_backlog gauge", "# TYPE asyncqueue_inflight gauge",
        "# TYPE asyncqueue_queues gauge", "# TYPE asyncqueue_queues_folded gauge",
    };
    const char *first_queue = strstr(text, "# HELP asyncqueue_tasks_accepted_total");
    assert_non_null(first_queue);
    for (size_t i = 0; i < ARRAY_LEN(global); i++) {
        const char *p = strstr(text, global[i]);
        assert_non_null(p);
        assert_true(p < first_queue);
        assert_null(strstr(p + 1, global[i])); /* once */
    }
    assert_true(last_global < first_queue);
    assert_int_equal(plain(text, "asyncqueue_backlog"), 7);
    assert_int_equal(plain(text, "asyncqueue_queues"), 2);
    assert_int_equal(plain(text, "asyncqueue_queues_folded"), 0);
    for (size_t f = 0; f < ARRAY_LEN(queue_families); f++) {
        char help[128];
        snprintf(help, sizeof help, "# HELP %s ", queue_families[f]);
        const char *p = strstr(text, help);
        assert_non_null(p);
        assert_null(strstr(p + 1, help));
        assert_int_equal(series(text, queue_families[f]), 2); /* all fit: no (other) */
    }
    assert_null(strstr(text, "(other)\"}"));
    assert_int_equal(value(text, "asyncqueue_tasks_completed_total", "b"), 2);
    assert_int_equal(value(text, "asyncqueue_queue_depth", "a"), 1);
    free(text);
}

/* Past max_queues: queues with settings keep their series first, then those
 * with tasks waiting or running, then the busiest idle ones; the rest are
 * summed into queue="(other)", and asyncqueue_queues_folded counts them. */
static void per_queue_series_are_bounded(void **state)
{
    (void)state;
    struct queue_info qs[] = {
        queue("aa-new", false, 0, 0, 1, 1),     /* idle, little done */
        queue("busy", false, 5, 0, 5, 0),       /* waiting tasks */
        queue("old", false, 0, 0, 100, 100),    /* idle, much done */
        queue("running", false, 0, 2, 2, 0),    /* running tasks */
        queue("zz-set", true, 0, 0, 0, 0),      /* settings, nothing else */
    };
    char *text = render(qs, 5, 3);
    assert_int_equal(plain(text, "asyncqueue_queues"), 5);
    assert_int_equal(plain(text, "asyncqueue_queues_folded"), 2);
    for (size_t f = 0; f < ARRAY_LEN(queue_families); f++)
        assert_int_equal(series(text, queue_families[f]), 4); /* three, and (other) */
    assert_int_equal(value(text, "asyncqueue_tasks_accepted_total", "zz-set"), 0);
    assert_int_equal(value(text, "asyncqueue_queue_depth", "busy"), 5);
    assert_int_equal(value(text, "asyncqueue_queue_inflight", "running"), 2);
    assert_int_equal(value(text, "asyncqueue_tasks_accepted_total", "old"), -1);
    assert_int_equal(value(text, "asyncqueue_tasks_accepted_total", "aa-new"), -1);
    assert_int_equal(value(text, "asyncqueue_tasks_accepted_total", "(other)"), 101);
    assert_int_equal(value(text, "asyncqueue_tasks_completed_total", "(other)"), 101);
    assert_int_equal(value(text, "asyncqueue_queue_depth", "(other)"), 0);
    /* The listed ones by name, (other) last. */
    const char *busy = strstr(text, "asyncqueue_queue_depth{queue=\"busy\"}");
    const char *running = strstr(text, "asyncqueue_queue_depth{queue=\"running\"}");
    const char *set = strstr(text, "asyncqueue_queue_depth{queue=\"zz-set\"}");
    const char *other = strstr(text, "asyncqueue_queue_depth{queue=\"(other)\"}");
    assert_true(busy && running && set && other && busy < running && running < set && set < other);
    free(text);

    /* One more: the busier idle queue, not the first by name. */
    text = render(qs, 5, 4);
    assert_int_equal(value(text, "asyncqueue_tasks_accepted_total", "old"), 100);
    assert_int_equal(value(text, "asyncqueue_tasks_accepted_total", "aa-new"), -1);
    assert_int_equal(value(text, "asyncqueue_tasks_accepted_total", "(other)"), 1);
    assert_int_equal(plain(text, "asyncqueue_queues_folded"), 1);
    free(text);

    /* Settings beat waiting tasks. */
    text = render(qs, 5, 1);
    assert_int_equal(value(text, "asyncqueue_tasks_accepted_total", "zz-set"), 0);
    assert_int_equal(value(text, "asyncqueue_queue_depth", "busy"), -1);
    assert_int_equal(value(text, "asyncqueue_queue_depth", "(other)"), 5);
    assert_int_equal(value(text, "asyncqueue_queue_inflight", "(other)"), 2);
    free(text);

    /* 0: no queue of its own, everything in (other). */
    text = render(qs, 5, 0);
    for (size_t f = 0; f < ARRAY_LEN(queue_families); f++) assert_int_equal(series(text, queue_families[f]), 1);
    assert_int_equal(value(text, "asyncqueue_tasks_accepted_total", "(other)"), 108);
    assert_int_equal(plain(text, "asyncqueue_queues_folded"), 5);
    free(text);

    /* No queues at all: the families' headers, no series. */
    text = render(NULL, 0, 0);
    assert_int_equal(series(text, "asyncqueue_queue_depth"), 0);
    assert_int_equal(plain(text, "asyncqueue_queues"), 0);
    free(text);
}

static void label_values_are_escaped(void **state)
{
    (void)state;
    struct queue_info qs[] = {queue("a\"b\\c\nd", false, 3, 0, 0, 0)};
    char *text = render(qs, 1, 10);
    assert_non_null(strstr(text, "\nasyncqueue_queue_depth{queue=\"a\\\"b\\\\c\\nd\"} 3\n"));
    free(text);
}

/* More series than the old fixed 64 MiB buffer held (it then served the
 * text cut mid-line with 200): the buffer is sized from the series, so the
 * text is whole, every series there and the last line complete. */
static void a_text_past_64_mib_is_whole(void **state)
{
    (void)state;
    enum { N = 110000 };
    struct queue_info *qs = calloc(N, sizeof *qs);
    assert_non_null(qs);
    for (int i = 0; i < N; i++) {
        char name[65];
        snprintf(name, sizeof name, "q%06d", i);
        memset(name + 7, 'x', 57);
        name[64] = '\0';
        qs[i] = queue(name, false, 1, 0, 1, 0);
    }
    char *text = render(qs, N, N);
    assert_true(strlen(text) > (64u << 20));
    for (size_t f = 0; f < ARRAY_LEN(queue_families); f++) assert_int_equal(series(text, queue_families[f]), N);
    char last[128];
    snprintf(last, sizeof last, "\nasyncqueue_queue_inflight{queue=\"%s\"} 0\n", qs[N - 1].name);
    assert_non_null(strstr(text, last));
    assert_string_equal(text + strlen(text) - strlen(last), last);
    free(text);
    free(qs);
}

int main(void)
{
    metrics_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(families_without_a_queue_come_first),
        cmocka_unit_test(per_queue_series_are_bounded),
        cmocka_unit_test(label_values_are_escaped),
        cmocka_unit_test(a_text_past_64_mib_is_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
