/*
 * writer: group commit and claiming. See writer.h for the design.
 */
#include "writer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

#define CLAIM_MAX 512            /* most jobs claimed in one transaction */
#define SWEEP_INTERVAL_MS 5000   /* how often expired leases are looked for */
#define FAILURE_BACKOFF_MS 1000  /* pause before claiming again after a failed commit */
#define WAKE_MAX_MS 1000         /* longest sleep, so wall-clock jumps are noticed */

struct writer {
    struct store *store;
    struct store_conn *conn;     /* writer thread only, after start */
    const struct config *cfg;
    struct writer_sink sink;
    bool has_sink;
    pthread_t thread;
    bool started;

    pthread_mutex_t lock;        /* guards head, tail, stopping, kicked */
    pthread_cond_t cond;
    struct writer_op *head, *tail;
    bool stopping;
    bool kicked;

    atomic_bool claiming;
    atomic_bool degraded;

    /* Writer thread only. */
    int64_t next_due_ms;
    int64_t next_sweep_ms;
    int64_t claim_pause_until_ms;
    struct log_batch log;
};

void job_list_free(struct job *jobs)
{
    while (jobs) {
        struct job *next = jobs->next;
        task_free(jobs->task);
        webhook_msg_free(jobs->webhook);
        free(jobs);
        jobs = next;
    }
}

static int requeue_all(struct writer *w, const char *reason)
{
    int n = 0;
    int rc = store_begin(w->conn);
    if (rc == STORE_OK) rc = store_requeue_running(w->conn, util_now_ms(), INT64_MAX, reason, &n);
    if (rc == STORE_OK) rc = store_commit(w->conn);
    if (rc != STORE_OK) {
        store_rollback(w->conn);
        log_msg(LOG_ERROR, "writer.requeue_failed", "error=\"%s\"", store_conn_error(w->conn));
        return -1;
    }
    if (n > 0) {
        char why[160];
        log_msg(LOG_WARN, "tasks.requeued", "count=%d reason=%s", n, log_quote(why, sizeof why, reason));
    }
    return 0;
}

struct writer *writer_new(struct store *store, const struct config *cfg)
{
    struct writer *w = xcalloc(1, sizeof *w);
    w->store = store;
    w->cfg = cfg;
    w->conn = store_conn_open(store);
    if (!w->conn) {
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&w->claiming, true);
    atomic_init(&w->degraded, false);
    log_batch_init(&w->log);
    if (requeue_all(w, "interrupted: the daemon stopped during this attempt") != 0 ||
        store_next_due(w->conn, &w->next_due_ms) != STORE_OK) {
        log_msg(LOG_ERROR, "writer.start_failed", "error=\"%s\"", store_conn_error(w->conn));
        store_conn_close(w->conn);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
        log_batch_free(&w->log);
        free(w);
        return NULL;
    }
    w->next_sweep_ms = util_now_ms() + SWEEP_INTERVAL_MS;
    return w;
}

void writer_submit(struct writer *w, struct writer_op *op)
{
    op->next = NULL;
    op->rc = 0;
    pthread_mutex_lock(&w->lock);
    if (w->tail) w->tail->next = op;
    else w->head = op;
    w->tail = op;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void writer_kick(struct writer *w)
{
    pthread_mutex_lock(&w->lock);
    w->kicked = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void writer_stop_claiming(struct writer *w)
{
    atomic_store(&w->claiming, false);
    writer_kick(w);
}

struct log_batch *writer_log(struct writer *w)
{
    return &w->log;
}

bool writer_degraded(struct writer *w)
{
    return atomic_load(&w->degraded);
}

static void wait_ms(struct writer *w, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&w->cond, &w->lock, &ts);
}

/* Claims up to slots jobs, webhooks first (at most half, so a flood of new
 * tasks cannot starve deliveries), then tasks. Returns STORE_OK or error. */
static int claim(struct writer *w, int64_t now, int slots, struct job **jobs, int *count)
{
    if (slots > CLAIM_MAX) slots = CLAIM_MAX;
    struct webhook_msg **msgs = NULL;
    struct task **tasks = NULL;
    size_t n_msgs = 0, n_tasks = 0;
    int webhook_limit = slots > 1 ? slots / 2 : 1;
    int rc = store_webhooks_claim(w->conn, now, w->cfg->webhook_timeout_ms + w->cfg->lease_grace_ms,
                                  webhook_limit, &msgs, &n_msgs);
    if (rc == STORE_OK && slots - (int)n_msgs > 0)
        rc = store_tasks_claim(w->conn, now, w->cfg->lease_grace_ms, slots - (int)n_msgs, &tasks,
                               &n_tasks);
    for (size_t i = 0; i < n_msgs; i++) {
        struct job *j = xcalloc(1, sizeof *j);
        j->kind = JOB_WEBHOOK;
        j->webhook = msgs[i];
        j->next = *jobs;
        *jobs = j;
    }
    for (size_t i = 0; i < n_tasks; i++) {
        struct job *j = xcalloc(1, sizeof *j);
        j->kind = JOB_TASK;
        j->task = tasks[i];
        j->next = *jobs;
        *jobs = j;
    }
    *count += (int)(n_msgs + n_tasks);
    free(msgs);
    free(tasks);
    if (rc != STORE_OK) return rc;
    /* Fewer than asked: nothing more is due now, so learn when next. */
    if ((int)(n_msgs + n_tasks) < slots) rc = store_next_due(w->conn, &w->next_due_ms);
    return rc;
}

static void run_ops_alone(struct writer *w, struct writer_op *ops)
{
    for (struct writer_op *op = ops; op; op = op->next) {
        op->rc = store_begin(w->conn);
        if (op->rc == STORE_OK) op->rc = op->apply(w->conn, op->arg, &w->next_due_ms);
        if (op->rc == STORE_OK) op->rc = store_commit(w->conn);
        if (op->rc != STORE_OK) store_rollback(w->conn);
    }
}

static void run_batch(struct writer *w, struct writer_op *ops, int n_ops, int slots)
{
    int64_t now = util_now_ms();
    bool claiming = atomic_load(&w->claiming) && w->has_sink && slots > 0 &&
                    w->next_due_ms <= now && now >= w->claim_pause_until_ms;
    bool sweep = now >= w->next_sweep_ms;
    if (!ops && !claiming && !sweep) return;

    struct job *jobs = NULL;
    int n_jobs = 0, requeued = 0;
    int64_t t0 = util_mono_ms();
    int rc = store_begin(w->conn);
    for (struct writer_op *op = ops; op && rc == STORE_OK; op = op->next)
        rc = op->rc = op->apply(w->conn, op->arg, &w->next_due_ms);
    if (rc == STORE_OK && sweep) {
        rc = store_requeue_running(w->conn, now, now, "lease expired", &requeued);
        if (requeued > 0) w->next_due_ms = now;
    }
    if (rc == STORE_OK && claiming && w->next_due_ms <= now)
        rc = claim(w, now, slots, &jobs, &n_jobs);
    if (rc == STORE_OK) rc = store_commit(w->conn);

    if (rc != STORE_OK) {
        char err[256];
        log_quote(err, sizeof err, store_conn_error(w->conn));
        store_rollback(w->conn);
        job_list_free(jobs);
        jobs = NULL;
        n_jobs = 0;
        if (!atomic_exchange(&w->degraded, true))
            log_msg(LOG_ERROR, "store.commit_failed", "ops=%d error=%s", n_ops, err);
        /* Retry each op alone so one bad op cannot fail the others. */
        run_ops_alone(w, ops);
        w->claim_pause_until_ms = now + FAILURE_BACKOFF_MS;
        for (struct writer_op *op = ops; op; op = op->next)
            if (op->rc == STORE_OK) atomic_store(&w->degraded, false);
    } else {
        if (atomic_exchange(&w->degraded, false)) log_msg(LOG_INFO, "store.recovered", "ops=%d", n_ops);
        if (sweep) w->next_sweep_ms = now + SWEEP_INTERVAL_MS;
        if (requeued > 0) log_msg(LOG_WARN, "tasks.requeued", "count=%d reason=\"lease expired\"", requeued);
    }
    if (log_enabled(LOG_DEBUG))
        log_msg(LOG_DEBUG, "writer.batch", "ops=%d claimed=%d ms=%lld", n_ops, n_jobs,
                (long long)(util_mono_ms() - t0));

    for (struct writer_op *op = ops, *next; op; op = next) {
        next = op->next; /* done() may free op */
        op->done(op->arg, op->rc);
    }
    log_batch_flush(&w->log);
    if (jobs) w->sink.deliver(w->sink.arg, jobs, n_jobs);
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    for (;;) {
        int slots = w->has_sink && atomic_load(&w->claiming) ? w->sink.free_slots(w->sink.arg) : 0;
        pthread_mutex_lock(&w->lock);
        if (!w->head && !w->stopping && !w->kicked) {
            int64_t now = util_now_ms();
            bool can_claim = slots > 0 && atomic_load(&w->claiming) && now >= w->claim_pause_until_ms;
            bool want_claim = can_claim && w->next_due_ms <= now;
            if (!want_claim && now < w->next_sweep_ms) {
                int64_t wait = w->next_sweep_ms - now;
                if (can_claim && w->next_due_ms - now < wait) wait = w->next_due_ms - now;
                if (slots > 0 && !can_claim && w->claim_pause_until_ms - now < wait)
                    wait = w->claim_pause_until_ms - now;
                if (wait > WAKE_MAX_MS) wait = WAKE_MAX_MS;
                if (wait < 1) wait = 1;
                wait_ms(w, wait);
                pthread_mutex_unlock(&w->lock);
                continue; /* look again with a fresh free-slot count */
            }
        }
        w->kicked = false;
        struct writer_op *ops = w->head, *last = NULL;
        int n = 0;
        for (struct writer_op *op = ops; op && n < w->cfg->batch_max; op = op->next) {
            last = op;
            n++;
        }
        if (last) {
            w->head = last->next;
            if (!w->head) w->tail = NULL;
            last->next = NULL;
        }
        bool stop = w->stopping && !w->head;
        pthread_mutex_unlock(&w->lock);

        run_batch(w, last ? ops : NULL, n, slots);
        if (stop && !last) break;
    }
    return NULL;
}

int writer_start(struct writer *w, const struct writer_sink *sink)
{
    if (sink) {
        w->sink = *sink;
        w->has_sink = true;
    }
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        log_msg(LOG_ERROR, "writer.thread_failed", "error=\"cannot create thread\"");
        return -1;
    }
    w->started = true;
    return 0;
}

void writer_free(struct writer *w, const char *requeue_reason)
{
    if (!w) return;
    atomic_store(&w->claiming, false);
    if (w->started) {
        pthread_mutex_lock(&w->lock);
        w->stopping = true;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
    }
    if (requeue_reason) requeue_all(w, requeue_reason);
    store_conn_close(w->conn);
    log_batch_free(&w->log);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w);
}
