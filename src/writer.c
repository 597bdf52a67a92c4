/*
 * writer: group commit, claiming and housekeeping. See writer.h for the
 * design.
 */
#include "writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "seqset.h"
#include "strmap.h"
#include "util.h"

#define CLAIM_MAX 512            /* most jobs claimed in one transaction */
#define PLAN_MAX 64              /* most queues claimed from in one transaction */
#define SWEEP_INTERVAL_MS 5000   /* how often expired leases are looked for */
/* A queue without settings whose tasks are all done is forgotten after this
 * long unused (its counters with it): queue names cost memory, and any key
 * that may create tasks makes them up at will. */
#define QUEUE_IDLE_MS (3600 * 1000)
#define PURGE_SPAN 2000          /* seq window purged per step */
#define PURGE_STEP_MS 100        /* pause between purge steps while catching up */
#define PURGE_IDLE_MS 60000      /* pause after a full pass */
#define FAILURE_BACKOFF_MS 1000  /* pause before claiming again after a failed commit */
#define WAKE_MAX_MS 1000         /* longest sleep, so wall-clock jumps are noticed */
#define CLOCK_STEP_MS 1000       /* a wall-clock change this big between looks is a step */
#define PROBE_BYTES 65536        /* the write that tells a degraded store has recovered */

enum effect_kind {
    FX_RELEASED,
    FX_BACKLOG,
    FX_ACCEPTED,
    FX_FINAL,
    FX_EVENT,
    FX_ABORT,
    FX_GONE,
    FX_QUEUE,
    FX_CLAIMED,
};

struct effect {
    enum effect_kind kind;
    char *name;                  /* queue */
    char *host;                  /* host; task id for FX_FINAL; tenant for FX_EVENT */
    char *json;                  /* the live-feed event, when someone watches */
    enum task_status status;
    enum scheduler_outcome outcome;
    int64_t seq;
    int64_t at_ms;
    int delta;
    bool has_settings;
    struct queue_settings qs;
};

struct writer_txn {
    struct writer *w;
    int64_t now;
    struct effect *fx;
    size_t n_fx, cap_fx;
    struct job *jobs;            /* claimed in this transaction, delivered once on disk */
    int n_jobs;
    int slots;                   /* jobs the dispatcher can still take from it */
    int64_t backlog_delta;       /* FX_BACKLOG effects recorded, not yet applied */
};

/* A batch that committed but may not be on disk yet, and what it owes the
 * world once it is (see writer.h). */
struct pending {
    struct pending *next;
    uint64_t commit;             /* on disk once the syncer's count reaches it */
    struct writer_op *ops;       /* their done() */
    struct job *jobs;            /* delivered to the dispatcher */
    int n_jobs;
    struct effect *fx;           /* applied at commit; announced when on disk */
    size_t n_fx;
};

struct writer {
    struct store *store;
    struct store_conn *conn;     /* writer thread only, after start */
    const struct config *cfg;
    struct scheduler *sched;
    struct writer_sink sink;
    bool has_sink;
    struct writer_hooks hooks;
    pthread_t thread;
    bool started;

    pthread_mutex_t lock;        /* guards head, tail, heavy*, stopping, kicked */
    pthread_cond_t cond;
    struct writer_op *head, *tail;
    struct writer_op *heavy_head, *heavy_tail; /* ops of many rows (weight > 1) */
    bool stopping;
    bool kicked;

    atomic_bool claiming;
    atomic_bool degraded;
    atomic_llong backlog;

    /* Writer thread only. */
    int64_t webhook_due_ms;
    int64_t next_sweep_ms;
    int64_t next_purge_ms;
    int64_t purge_from_seq;
    int64_t claim_pause_until_ms;
    int64_t clock_offset_ms;     /* wall minus monotonic at the last look */
    int64_t clock_step_ms;       /* a step seen and not yet applied to due times */
    struct seqset held_tasks;    /* leases this process holds (see writer_lease_done) */
    struct seqset held_webhooks;
    struct log_batch log;
    struct pending *pending, *pending_tail;
    int pending_jobs;            /* claimed, not yet delivered: not free slots */

    /* The syncer. deferred is set at start; the rest is guarded by lock. */
    bool deferred;
    bool syncer_started;
    pthread_t syncer;
    pthread_cond_t sync_cond;    /* the syncer waits here for sync_want to move */
    uint64_t sync_want;          /* commits made; the syncer brings synced up to it */
    struct writer_op *early, *early_tail; /* done_anywhere ops, by commit: the syncer's */
    bool sync_stop;
    atomic_uint_fast64_t synced; /* the last commit known on disk */
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

/* A job for the dispatcher, delivered with the transaction once on disk. */
static void add_job(struct writer_txn *tx, enum job_kind kind, struct task *t, struct webhook_msg *m)
{
    struct job *j = xcalloc(1, sizeof *j);
    j->kind = kind;
    j->task = t;
    j->webhook = m;
    j->next = tx->jobs;
    tx->jobs = j;
    tx->n_jobs++;
    tx->slots--;
}

/* ---- transactions and their effects ---- */

static struct effect *add_effect(struct writer_txn *tx, enum effect_kind kind)
{
    if (tx->n_fx == tx->cap_fx) {
        tx->cap_fx = tx->cap_fx ? tx->cap_fx * 2 : 64;
        tx->fx = xrealloc(tx->fx, tx->cap_fx * sizeof *tx->fx);
    }
    struct effect *e = &tx->fx[tx->n_fx++];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    return e;
}

static void clear_effects(struct writer_txn *tx, size_t from)
{
    for (size_t i = from; i < tx->n_fx; i++) {
        if (tx->fx[i].kind == FX_BACKLOG) tx->backlog_delta -= tx->fx[i].delta;
        free(tx->fx[i].name);
        free(tx->fx[i].host);
        free(tx->fx[i].json);
    }
    tx->n_fx = from;
}

static enum scheduler_count count_of(enum task_status st)
{
    return st == TASK_COMPLETED ? SCHEDULER_COUNT_COMPLETED
           : st == TASK_FAILED  ? SCHEDULER_COUNT_FAILED
                                : SCHEDULER_COUNT_CANCELLED;
}

static void publish(struct writer *w, struct effect *e)
{
    if (!e->json || !w->hooks.event) return;
    w->hooks.event(w->hooks.arg, e->host ? e->host : "", e->json);
    e->json = NULL; /* the feed owns it now */
}

/* A FIFO queue's hold (its task waiting for a retry holds the ones behind
 * it) lives in the scheduler, set when an attempt ends; read back from the
 * store where no attempt ended in this process: at start, and when a queue
 * with such a task becomes FIFO. A read between transactions. */
static void restore_hold(struct writer *w, const char *queue)
{
    int64_t seq = 0, run_at = 0;
    char *host = NULL;
    if (store_queue_retrying(w->conn, queue, &seq, &run_at, &host) != STORE_OK) {
        log_msg(LOG_WARN, "writer.hold_unknown", "queue=%s error=\"%s\"", queue, store_conn_error(w->conn));
        return;
    }
    scheduler_hold(w->sched, queue, seq, run_at, host);
    free(host);
}

/* A queued task left queue, and the scheduler's due time for it may have
 * been that task's: read it again (once for each queue, a bulk cancel
 * removing many). A read between transactions; when it fails the old time
 * stays, which costs a claim that finds nothing when it comes. */
static void refresh_due(struct writer *w, struct strmap *done, const char *queue)
{
    if (!done->buckets) strmap_init(done); /* made on first use: most batches cancel nothing */
    if (strmap_get(done, queue)) return;
    strmap_put(done, queue, w);
    int64_t due;
    if (store_queue_next_due(w->conn, queue, &due) != STORE_OK) {
        log_msg(LOG_WARN, "writer.due_unknown", "queue=%s error=\"%s\"", queue, store_conn_error(w->conn));
        return;
    }
    scheduler_set_due(w->sched, queue, due);
}

static void apply_effects(struct writer_txn *tx, size_t from, size_t to, int64_t now)
{
    struct writer *w = tx->w;
    struct strmap refreshed = {0};
    for (size_t i = from; i < to; i++) {
        struct effect *e = &tx->fx[i];
        switch (e->kind) {
        case FX_RELEASED:
            scheduler_released(w->sched, e->name, e->host, e->outcome, e->seq, e->at_ms);
            break;
        case FX_CLAIMED:
            scheduler_claimed(w->sched, e->name, e->host, now);
            break;
        case FX_BACKLOG:
            atomic_fetch_add(&w->backlog, e->delta);
            tx->backlog_delta -= e->delta;
            break;
        case FX_ACCEPTED:
            scheduler_count(w->sched, e->name, SCHEDULER_COUNT_ACCEPTED, now);
            metrics_task_accepted();
            break;
        case FX_FINAL:
            scheduler_count(w->sched, e->name, count_of(e->status), now);
            metrics_task_final(e->status == TASK_COMPLETED ? METRICS_COMPLETED
                               : e->status == TASK_FAILED  ? METRICS_FAILED
                                                           : METRICS_CANCELLED);
            break;
        case FX_EVENT: break;
        case FX_ABORT: seqset_remove(&w->held_tasks, e->seq); break; /* its result is not recorded */
        case FX_GONE:
            if (scheduler_task_gone(w->sched, e->name, e->seq, e->at_ms)) refresh_due(w, &refreshed, e->name);
            break;
        case FX_QUEUE:
            if (e->has_settings) {
                scheduler_queue_set(w->sched, e->name, &e->qs);
                if (e->qs.max_concurrency == 1) restore_hold(w, e->name); /* it may just have become FIFO */
            } else {
                scheduler_queue_unset(w->sched, e->name);
            }
            break;
        }
    }
    if (refreshed.buckets) strmap_free(&refreshed, NULL);
}

/* What the effects tell others, once their commit is on disk: a watcher
 * must not see a state a crash could still take back, and a call is
 * aborted only after the job it aborts was delivered (batches are announced
 * in commit order). */
static void announce_effects(struct writer *w, struct effect *fx, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct effect *e = &fx[i];
        if (e->kind == FX_FINAL && w->hooks.task_final) w->hooks.task_final(w->hooks.arg, e->host);
        if (e->kind == FX_ABORT && w->has_sink) w->sink.abort_call(w->sink.arg, e->seq);
        if (e->kind == FX_EVENT) publish(w, e);
    }
}

/* The live-feed event for t, when someone is watching (else NULL). */
static char *event_json(struct writer *w, const struct task *t, const char *change)
{
    if (!w->hooks.want_events || !w->hooks.want_events(w->hooks.arg)) return NULL;
    return task_event_json(t, change);
}

static void add_event(struct writer_txn *tx, const struct task *t, const char *change)
{
    char *json = event_json(tx->w, t, change);
    if (!json) return;
    struct effect *e = add_effect(tx, FX_EVENT);
    e->host = xstrdup(t->tenant ? t->tenant : "");
    e->json = json;
}

struct store_conn *writer_txn_conn(struct writer_txn *tx)
{
    return tx->w->conn;
}

void writer_txn_task_due(struct writer_txn *tx, const char *queue, int64_t run_at_ms)
{
    scheduler_note_due(tx->w->sched, queue, run_at_ms);
}

int64_t writer_txn_now(const struct writer_txn *tx)
{
    return tx->now;
}

int64_t writer_txn_reframe(struct writer_txn *tx, int64_t decided_offset_ms)
{
    int64_t step = tx->w->clock_offset_ms - decided_offset_ms;
    return step >= CLOCK_STEP_MS || step <= -CLOCK_STEP_MS ? step : 0;
}

void writer_txn_webhook_due(struct writer_txn *tx, int64_t at_ms)
{
    if (at_ms < tx->w->webhook_due_ms) tx->w->webhook_due_ms = at_ms;
}

static void add_claimed(struct writer_txn *tx, struct task *t)
{
    struct effect *e = add_effect(tx, FX_CLAIMED);
    e->name = xstrdup(t->queue);
    e->host = xstrdup(t->host);
    add_event(tx, t, "started");
    add_job(tx, JOB_TASK, t, NULL);
}

int writer_txn_task_insert(struct writer_txn *tx, struct task *t)
{
    struct writer *w = tx->w;
    struct task *run = NULL;
    if (tx->slots > 0 && t->run_at_ms <= tx->now && tx->now >= w->claim_pause_until_ms && t->host &&
        scheduler_may_start_now(w->sched, t->queue, t->host, tx->now, tx->n_jobs)) {
        run = task_dup(t);
        run->status = TASK_RUNNING;
        run->started_at_ms = run->updated_at_ms = tx->now;
        run->lease_until_ms = tx->now + run->timeout_ms + w->cfg->lease_grace_ms;
        run->claim_token = 1;
    }
    int rc = store_task_insert(w->conn, run ? run : t);
    if (rc != STORE_OK) {
        task_free(run);
        return rc;
    }
    writer_txn_backlog(tx, 1);
    if (run) t->seq = run->seq;
    writer_txn_accepted(tx, t->queue);
    add_event(tx, t, "accepted");
    if (run) add_claimed(tx, run);
    else writer_txn_task_due(tx, t->queue, t->run_at_ms);
    return STORE_OK;
}

int writer_txn_webhook(struct writer_txn *tx, const struct task *t, const char *body)
{
    struct writer *w = tx->w;
    if (tx->slots <= 0) {
        int rc = store_webhook_insert(w->conn, t, body, 0, NULL);
        if (rc == STORE_OK) writer_txn_webhook_due(tx, t->updated_at_ms);
        return rc;
    }
    struct webhook_msg *m = xcalloc(1, sizeof *m);
    int64_t lease_until = tx->now + w->cfg->webhook_timeout_ms + w->cfg->lease_grace_ms;
    int rc = store_webhook_insert(w->conn, t, body, lease_until, m);
    if (rc != STORE_OK) {
        webhook_msg_free(m);
        return rc;
    }
    snprintf(m->task_id, sizeof m->task_id, "%s", t->id);
    m->url = xstrdup(t->webhook_url);
    m->body = xstrdup(body);
    m->body_len = strlen(body);
    add_job(tx, JOB_WEBHOOK, NULL, m);
    return STORE_OK;
}

void writer_txn_released(struct writer_txn *tx, const char *queue, const char *host,
                         enum scheduler_outcome o, int64_t seq, int64_t run_at_ms)
{
    struct effect *e = add_effect(tx, FX_RELEASED);
    e->name = xstrdup(queue);
    e->host = xstrdup(host);
    e->outcome = o;
    e->seq = seq;
    e->at_ms = run_at_ms;
}

void writer_txn_accepted(struct writer_txn *tx, const char *queue)
{
    add_effect(tx, FX_ACCEPTED)->name = xstrdup(queue);
}

void writer_txn_backlog(struct writer_txn *tx, int delta)
{
    add_effect(tx, FX_BACKLOG)->delta = delta;
    tx->backlog_delta += delta;
}

int64_t writer_txn_backlog_count(struct writer_txn *tx)
{
    return atomic_load(&tx->w->backlog) + tx->backlog_delta;
}

void writer_txn_final(struct writer_txn *tx, const struct task *t)
{
    struct effect *e = add_effect(tx, FX_FINAL);
    e->name = xstrdup(t->queue);
    e->host = xstrdup(t->id);
    e->status = t->status;
    add_event(tx, t, task_status_name(t->status));
}

void writer_txn_event(struct writer_txn *tx, const struct task *t, const char *change)
{
    add_event(tx, t, change);
}

void writer_txn_abort(struct writer_txn *tx, int64_t task_seq)
{
    add_effect(tx, FX_ABORT)->seq = task_seq;
}

void writer_txn_gone(struct writer_txn *tx, const char *queue, int64_t seq, int64_t run_at_ms)
{
    struct effect *e = add_effect(tx, FX_GONE);
    e->name = xstrdup(queue);
    e->seq = seq;
    e->at_ms = run_at_ms;
}

void writer_txn_queue(struct writer_txn *tx, const char *name, const struct queue_settings *qs)
{
    struct effect *e = add_effect(tx, FX_QUEUE);
    e->name = xstrdup(name);
    if (qs) {
        e->has_settings = true;
        e->qs = *qs;
    }
}

/* ---- start-up ---- */

static int requeue_all(struct writer *w, const char *reason)
{
    int n = 0;
    int rc = store_begin(w->conn);
    if (rc == STORE_OK)
        rc = store_requeue_running(w->conn, util_now_ms(), INT64_MAX, reason, NULL, NULL, &n);
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

static void load_queue(void *arg, const char *name, const struct queue_settings *qs)
{
    scheduler_queue_set(arg, name, qs);
}

static void load_due(void *arg, const char *queue, int64_t due_ms)
{
    scheduler_set_due(arg, queue, due_ms);
}

static void load_running(void *arg, const char *queue, const char *host, int n)
{
    scheduler_resync_add(arg, queue, host, n);
}

/* Writes the config file's queues to the store (they win at start-up), then
 * loads every queue's settings, the due times and the backlog. */
static int load_state(struct writer *w)
{
    int64_t now = util_now_ms(), backlog = 0;
    int rc = store_begin(w->conn);
    for (size_t i = 0; i < w->cfg->n_queues && rc == STORE_OK; i++)
        rc = store_queue_put(w->conn, w->cfg->queues[i].name, &w->cfg->queues[i].s, now);
    if (rc == STORE_OK) rc = store_commit(w->conn);
    else store_rollback(w->conn);
    if (rc == STORE_OK) rc = store_queues_each(w->conn, load_queue, w->sched);
    if (rc == STORE_OK) {
        size_t n;
        struct queue_info *qs = scheduler_snapshot(w->sched, &n);
        for (size_t i = 0; i < n; i++)
            if (qs[i].s.max_concurrency == 1) restore_hold(w, qs[i].name);
        free(qs);
    }
    if (rc == STORE_OK) rc = store_queues_due_each(w->conn, load_due, w->sched);
    if (rc == STORE_OK) {
        scheduler_resync_begin(w->sched);
        rc = store_running_each(w->conn, load_running, w->sched);
    }
    if (rc == STORE_OK) rc = store_backlog(w->conn, &backlog);
    if (rc == STORE_OK) rc = store_webhook_next_due(w->conn, &w->webhook_due_ms);
    atomic_store(&w->backlog, backlog);
    return rc;
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
    w->sched = scheduler_new(cfg->max_per_host);
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&w->sync_cond, NULL);
    atomic_init(&w->synced, 0);
    atomic_init(&w->claiming, true);
    atomic_init(&w->degraded, false);
    atomic_init(&w->backlog, 0);
    seqset_init(&w->held_tasks);
    seqset_init(&w->held_webhooks);
    w->clock_offset_ms = util_clock_offset_ms();
    log_batch_init(&w->log);
    if (requeue_all(w, "interrupted: the daemon stopped during this attempt") != 0 ||
        load_state(w) != STORE_OK) {
        log_msg(LOG_ERROR, "writer.start_failed", "error=\"%s\"", store_conn_error(w->conn));
        w->started = false;
        writer_free(w, NULL);
        return NULL;
    }
    int64_t now = util_now_ms();
    w->next_sweep_ms = now + SWEEP_INTERVAL_MS;
    w->next_purge_ms = now + PURGE_STEP_MS;
    return w;
}

void writer_set_hooks(struct writer *w, const struct writer_hooks *hooks)
{
    w->hooks = *hooks;
}

void writer_submit(struct writer *w, struct writer_op *op)
{
    op->next = NULL;
    op->rc = 0;
    pthread_mutex_lock(&w->lock);
    struct writer_op **head = op->weight > 1 ? &w->heavy_head : &w->head;
    struct writer_op **tail = op->weight > 1 ? &w->heavy_tail : &w->tail;
    if (*tail) (*tail)->next = op;
    else *head = op;
    *tail = op;
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

bool writer_degraded(struct writer *w)
{
    return atomic_load(&w->degraded);
}

int64_t writer_backlog(struct writer *w)
{
    return atomic_load(&w->backlog);
}

struct scheduler *writer_scheduler(struct writer *w)
{
    return w->sched;
}

struct log_batch *writer_log(struct writer *w)
{
    return &w->log;
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

/* ---- one batch ---- */

/* Slots left per host during one claim: the scheduler's count (claims of
 * this transaction are not in it yet) minus what this transaction took. */
struct host_room {
    struct scheduler *sched;
    struct strmap taken;   /* host -> int taken so far */
    int most_taken;        /* the largest count in taken */
};

static int *taken_slot(struct host_room *r, const char *host)
{
    int *n = strmap_get(&r->taken, host);
    if (!n) {
        n = xcalloc(1, sizeof *n);
        strmap_put(&r->taken, host, n);
    }
    return n;
}

static void count_taken(struct host_room *r, const char *host)
{
    int *n = taken_slot(r, host);
    if (++*n > r->most_taken) r->most_taken = *n;
}

static bool take_host(void *arg, const char *host)
{
    struct host_room *r = arg;
    if (scheduler_host_room(r->sched, host) - *taken_slot(r, host) <= 0) return false;
    count_taken(r, host);
    return true;
}

/* Claims up to tx->slots jobs: due webhooks first (at most half, so a flood of
 * new tasks cannot starve deliveries), then tasks as the scheduler plans. */
static int claim(struct writer *w, struct writer_txn *tx, int64_t now)
{
    int slots = tx->slots > CLAIM_MAX ? CLAIM_MAX : tx->slots;
    int rc = STORE_OK;
    if (w->webhook_due_ms <= now) {
        struct webhook_msg **msgs = NULL;
        size_t n = 0;
        int limit = slots > 1 ? slots / 2 : 1;
        rc = store_webhooks_claim(w->conn, now, w->cfg->webhook_timeout_ms + w->cfg->lease_grace_ms,
                                  limit, &msgs, &n);
        for (size_t i = 0; i < n; i++) add_job(tx, JOB_WEBHOOK, NULL, msgs[i]);
        free(msgs);
        slots -= (int)n;
        if (rc == STORE_OK && (int)n < limit) rc = store_webhook_next_due(w->conn, &w->webhook_due_ms);
    }
    if (rc != STORE_OK || slots <= 0) return rc;

    struct scheduler_claim plan[PLAN_MAX];
    const char *const *hosts;
    size_t n_hosts;
    int n_plan = scheduler_plan(w->sched, now, slots, plan, PLAN_MAX, &hosts, &n_hosts);
    struct host_room room = {.sched = w->sched};
    strmap_init(&room.taken);
    /* Tasks this transaction already started (from their insert) are not in
     * the scheduler's counts before the commit: their hosts are taken. */
    for (const struct job *j = tx->jobs; j; j = j->next)
        if (j->kind == JOB_TASK) count_taken(&room, j->task->host);
    struct claim_filter filter = {.exclude_hosts = hosts, .n_exclude = n_hosts};
    for (int p = 0; p < n_plan && rc == STORE_OK; p++) {
        struct task **tasks = NULL;
        size_t n = 0;
        /* A FIFO queue's held task: the scheduler planned it with its host
         * under the cap, but this transaction's claims may have filled it
         * since; then it waits (the claim is not made, the hold stays). */
        bool counted = false;
        if (plan[p].only_seq > 0 && plan[p].hold_host) {
            if (!take_host(&room, plan[p].hold_host)) continue;
            counted = true;
        }
        /* Checking each task's host costs a second statement: do it only
         * when this claim could fill some host past its cap. */
        int min_room = scheduler_min_host_room(w->sched) - room.most_taken;
        filter.take = !counted && plan[p].limit > min_room ? take_host : NULL;
        filter.arg = &room;
        rc = store_tasks_claim(w->conn, plan[p].queue, plan[p].only_seq, now, w->cfg->lease_grace_ms,
                               plan[p].limit, &filter, &tasks, &n);
        for (size_t i = 0; i < n && !filter.take && !counted; i++) count_taken(&room, tasks[i]->host);
        for (size_t i = 0; i < n; i++) add_claimed(tx, tasks[i]);
        free(tasks);
        if (rc == STORE_OK && (int)n < plan[p].limit) {
            int64_t due;
            rc = store_queue_next_due(w->conn, plan[p].queue, &due);
            if (rc == STORE_OK) scheduler_set_due(w->sched, plan[p].queue, due);
        }
        scheduler_claim_done(w->sched, &plan[p], (int)n, now);
    }
    strmap_free(&room.taken, free);
    return rc;
}

static void resync(void *arg, const char *queue, const char *host, int n)
{
    scheduler_resync_add(arg, queue, host, n);
}

static bool lease_held(void *arg, bool webhook, int64_t seq)
{
    struct writer *w = arg;
    return seqset_has(webhook ? &w->held_webhooks : &w->held_tasks, seq);
}

void writer_lease_done(struct writer *w, bool webhook, int64_t seq)
{
    seqset_remove(webhook ? &w->held_webhooks : &w->held_tasks, seq);
}

/* Requeues tasks whose lease ended and whose call this process no longer
 * holds (its result could not be recorded), then recounts what runs. A
 * lease still held is left alone whatever the wall clock says: its call is
 * running here, bounded by its timeout on the monotonic clock. */
static int sweep(struct writer *w, int64_t now)
{
    int requeued = 0;
    int rc = store_requeue_running(w->conn, now, now, "lease expired", lease_held, w, &requeued);
    if (rc != STORE_OK || requeued == 0) return rc;
    log_batch_add(&w->log, LOG_WARN, "tasks.requeued", "count=%d reason=\"lease expired\"", requeued);
    scheduler_resync_begin(w->sched);
    rc = store_running_each(w->conn, resync, w->sched);
    if (rc == STORE_OK) rc = store_queues_due_each(w->conn, load_due, w->sched);
    if (rc == STORE_OK) rc = store_webhook_next_due(w->conn, &w->webhook_due_ms);
    return rc;
}

static int purge(struct writer *w, int64_t now, int *deleted)
{
    int64_t max_seq = 0, from = w->purge_from_seq;
    int rc = store_purge(w->conn, now - w->cfg->retention_ms, now - w->cfg->idempotency_window_ms,
                         &from, PURGE_SPAN, deleted, &max_seq);
    if (rc != STORE_OK) return rc;
    w->purge_from_seq = from + PURGE_SPAN;
    if (w->purge_from_seq >= max_seq) {
        w->purge_from_seq = 0;
        w->next_purge_ms = now + PURGE_IDLE_MS;
    } else {
        w->next_purge_ms = now + PURGE_STEP_MS;
    }
    return STORE_OK;
}

/* Notices a wall-clock step (NTP stepping, a VM resumed, a manual change):
 * the wall clock moved against the monotonic one by more than a slew could
 * since the last look (at most WAKE_MAX_MS ago). The writer's own timers
 * move with it at once; due times in the store in the next batch. Returns
 * the wall-clock time it looked at: a batch must decide with that time and
 * no later reading, or a step between the two would go unseen for a batch
 * and a retry due in an hour's time by the old clock be claimed at once. */
static int64_t watch_clock(struct writer *w)
{
    int64_t now = util_now_ms();
    int64_t offset = now - util_mono_ms();
    int64_t step = offset - w->clock_offset_ms;
    w->clock_offset_ms = offset;
    if (step < CLOCK_STEP_MS && step > -CLOCK_STEP_MS) return now;
    w->clock_step_ms += step;
    w->next_sweep_ms += step;
    w->next_purge_ms += step;
    w->claim_pause_until_ms += step;
    return now;
}

/* Moves the waits decided before a clock step with it (see store_shift_waits). */
static int shift_waits(struct writer *w, int64_t now)
{
    int tasks = 0, webhooks = 0;
    int rc = store_shift_waits(w->conn, now, w->clock_step_ms, &tasks, &webhooks);
    if (rc == STORE_OK) rc = store_queues_due_each(w->conn, load_due, w->sched);
    if (rc == STORE_OK) rc = store_webhook_next_due(w->conn, &w->webhook_due_ms);
    if (rc == STORE_OK)
        log_batch_add(&w->log, LOG_WARN, "clock.stepped", "ms=%lld tasks_moved=%d webhooks_moved=%d",
                      (long long)w->clock_step_ms, tasks, webhooks);
    return rc;
}

static bool claim_due(struct writer *w, int64_t now, int slots)
{
    if (!atomic_load(&w->claiming) || !w->has_sink || slots <= 0 || now < w->claim_pause_until_ms)
        return false;
    return w->webhook_due_ms <= now || scheduler_next_wake(w->sched, now) <= now;
}

static void run_ops_alone(struct writer *w, struct writer_txn *tx, struct writer_op *ops, int64_t now)
{
    tx->slots = 0; /* no jobs: a webhook an op writes waits in the outbox */
    for (struct writer_op *op = ops; op; op = op->next) {
        size_t mark = tx->n_fx, log_mark = w->log.buf.len;
        op->rc = store_begin(w->conn);
        if (op->rc == STORE_OK) op->rc = op->apply(tx, op->arg);
        if (op->rc == STORE_OK) op->rc = store_commit(w->conn);
        if (op->rc == STORE_OK) {
            apply_effects(tx, mark, tx->n_fx, now); /* kept, to be announced */
        } else {
            store_rollback(w->conn);
            w->log.buf.len = log_mark;
            clear_effects(tx, mark);
        }
    }
}

/* ---- the pipeline: batches committed, waiting to be on disk ---- */

static bool head_on_disk(struct writer *w)
{
    return w->pending && w->pending->commit <= atomic_load(&w->synced);
}

/* Runs what the batches now on disk owe, oldest first. */
static void complete_on_disk(struct writer *w)
{
    while (head_on_disk(w)) {
        struct pending *p = w->pending;
        w->pending = p->next;
        if (!w->pending) w->pending_tail = NULL;
        w->pending_jobs -= p->n_jobs;
        announce_effects(w, p->fx, p->n_fx);
        struct writer_txn tx = {.w = w, .fx = p->fx, .n_fx = p->n_fx};
        clear_effects(&tx, 0);
        free(p->fx);
        for (struct writer_op *op = p->ops, *next; op; op = next) {
            next = op->next; /* done() may free op */
            op->done(op->arg, op->rc);
        }
        if (w->hooks.batch_done) w->hooks.batch_done(w->hooks.arg);
        if (p->jobs) w->sink.deliver(w->sink.arg, p->jobs, p->n_jobs);
        free(p);
    }
}

/* Queues a batch's obligations behind its commit and asks the syncer for
 * it; without a syncer the commit was durable by itself, and they run now. */
static void add_pending(struct writer *w, struct writer_op *ops, struct writer_txn *tx)
{
    if (!ops && !tx->jobs && tx->n_fx == 0) { /* housekeeping only: it owes no one */
        free(tx->fx);
        return;
    }
    /* With a syncer, the ops that allow it are done by the syncer itself
     * (see syncer_main); the batch still waits here, so that a stop waits
     * for them too. */
    struct writer_op *early = NULL, *early_last = NULL;
    if (w->deferred) {
        struct writer_op **link = &ops;
        while (*link) {
            struct writer_op *op = *link;
            if (!op->done_anywhere) {
                link = &op->next;
                continue;
            }
            *link = op->next;
            op->next = NULL;
            if (early_last) early_last->next = op;
            else early = op;
            early_last = op;
        }
    }
    struct pending *p = xcalloc(1, sizeof *p);
    p->ops = ops;
    p->jobs = tx->jobs;
    p->n_jobs = tx->n_jobs;
    p->fx = tx->fx;
    p->n_fx = tx->n_fx;
    tx->fx = NULL;
    tx->n_fx = tx->cap_fx = 0;
    if (w->deferred) {
        pthread_mutex_lock(&w->lock);
        p->commit = ++w->sync_want;
        for (struct writer_op *op = early; op; op = op->next) op->commit = p->commit;
        if (early) {
            if (w->early_tail) w->early_tail->next = early;
            else w->early = early;
            w->early_tail = early_last;
        }
        pthread_cond_signal(&w->sync_cond);
        pthread_mutex_unlock(&w->lock);
    }
    if (w->pending_tail) w->pending_tail->next = p;
    else w->pending = p;
    w->pending_tail = p;
    w->pending_jobs += p->n_jobs;
    complete_on_disk(w);
}

/* Blocks until the oldest waiting batch is on disk. */
static void wait_head_on_disk(struct writer *w)
{
    pthread_mutex_lock(&w->lock);
    while (w->pending && !head_on_disk(w)) pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

static void *syncer_main(void *arg)
{
    struct writer *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->sync_want == atomic_load(&w->synced) && !w->sync_stop)
            pthread_cond_wait(&w->sync_cond, &w->lock);
        uint64_t want = w->sync_want;
        if (want == atomic_load(&w->synced)) break; /* stopping, and all synced */
        pthread_mutex_unlock(&w->lock);
        int64_t t0 = util_mono_us();
        if (store_sync(w->store) != 0) {
            log_msg(LOG_ERROR, "store.sync_failed", "error=\"%s\" note=\"stopping: what reached the "
                    "disk is unknown; a restart recovers from the database file\"", strerror(errno));
            _exit(EXIT_DATABASE);
        }
        metrics_writer_sync_us(util_mono_us() - t0);
        /* The ops that allow it are done here, at once: the writer may be
         * inside its next transaction. Before synced moves, so that the
         * writer, seeing their batch on disk, finds their done() run (and
         * any op it submitted queued). */
        pthread_mutex_lock(&w->lock);
        struct writer_op *done = NULL, *last = NULL;
        for (struct writer_op *op = w->early; op && op->commit <= want; op = op->next) last = op;
        if (last) {
            done = w->early;
            w->early = last->next;
            if (!w->early) w->early_tail = NULL;
            last->next = NULL;
        }
        pthread_mutex_unlock(&w->lock);
        for (struct writer_op *op = done, *next; op; op = next) {
            next = op->next; /* done() may free op */
            op->done(op->arg, op->rc);
        }
        pthread_mutex_lock(&w->lock);
        atomic_store(&w->synced, want);
        pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* While the syncer is busy, a commit would only wait for its next sync,
 * and would write again the pages the commit after it writes (page 1, the
 * last leaves of the table and its indexes, their parents): the ops that
 * arrive meanwhile join this transaction instead, applied as they come,
 * and it commits when the syncer is free (or batch_max ops are in it). So
 * each sync covers one commit. Appends the ops taken after *last and
 * returns how many; *rc is the first failure. */
static int join_while_syncing(struct writer *w, struct writer_txn *tx, struct writer_op **last,
                              int n_ops, int *rc)
{
    int added = 0;
    pthread_mutex_lock(&w->lock);
    while (*rc == STORE_OK && !w->stopping && w->sync_want != atomic_load(&w->synced) &&
           n_ops + added < w->cfg->batch_max) {
        if (!w->head) {
            pthread_cond_wait(&w->cond, &w->lock); /* an op, or the sync done */
            continue;
        }
        struct writer_op *more = w->head, *tail = more; /* there is room for one: see the loop */
        for (added++; tail->next && n_ops + added < w->cfg->batch_max; added++) tail = tail->next;
        w->head = tail->next;
        if (!w->head) w->tail = NULL;
        tail->next = NULL;
        pthread_mutex_unlock(&w->lock);
        (*last)->next = more;
        *last = tail;
        for (struct writer_op *op = more; op && *rc == STORE_OK; op = op->next)
            *rc = op->rc = op->apply(tx, op->arg);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return added;
}

static void run_batch(struct writer *w, struct writer_op *ops, int n_ops, int slots)
{
    int64_t now = watch_clock(w);
    bool claiming = claim_due(w, now, slots);
    bool sweeping = now >= w->next_sweep_ms;
    bool purging = now >= w->next_purge_ms && atomic_load(&w->claiming);
    bool shifting = w->clock_step_ms != 0;
    /* While degraded, each sweep also tries a write that needs new space:
     * readiness comes back when writes work again, traffic or not. */
    bool probing = sweeping && atomic_load(&w->degraded);
    if (!ops && !claiming && !sweeping && !purging && !shifting) return;

    /* Ops may hand work straight to the dispatcher (writer_txn_webhook)
     * under the same rules as a claim; the claim takes what they leave. */
    struct writer_txn tx = {.w = w, .now = now, .slots = slots};
    int purged = 0;
    int64_t purge_from = w->purge_from_seq; /* where a failed batch's purge starts again */
    int64_t t0 = util_mono_us();
    size_t log_mark = w->log.buf.len; /* lines of a failed batch are dropped */
    int rc = store_begin(w->conn);
    if (rc == STORE_OK && shifting) rc = shift_waits(w, now);
    if (rc == STORE_OK && sweeping) rc = sweep(w, now);
    if (rc == STORE_OK && probing) rc = store_write_probe(w->conn, PROBE_BYTES);
    struct writer_op *last = NULL;
    for (struct writer_op *op = ops; op && rc == STORE_OK; op = op->next) {
        rc = op->rc = op->apply(&tx, op->arg);
        last = op;
    }
    int joined = rc == STORE_OK && ops && w->deferred ? join_while_syncing(w, &tx, &last, n_ops, &rc) : 0;
    if (joined > 0) {
        n_ops += joined;
        /* Calls may have finished meanwhile: claim for the slots free now. */
        if (w->has_sink && atomic_load(&w->claiming)) {
            int fresh = w->sink.free_slots(w->sink.arg) - w->pending_jobs;
            tx.slots += fresh - slots;
            claiming = claim_due(w, now, fresh);
        }
    }
    if (rc == STORE_OK && claiming && tx.slots > 0) rc = claim(w, &tx, now);
    if (rc == STORE_OK && purging) rc = purge(w, now, &purged);
    if (rc == STORE_OK) rc = store_commit(w->conn);

    if (rc != STORE_OK) {
        char err[256];
        log_quote(err, sizeof err, store_conn_error(w->conn));
        bool unavailable = store_conn_unavailable(w->conn);
        store_rollback(w->conn);
        clear_effects(&tx, 0);
        w->log.buf.len = log_mark;
        job_list_free(tx.jobs);
        tx.jobs = NULL;
        tx.n_jobs = 0;
        if (!atomic_exchange(&w->degraded, true))
            log_msg(LOG_ERROR, "store.commit_failed", "ops=%d error=%s", n_ops, err);
        /* One op's own failure (a constraint) must not sink the others: run
         * each alone. When the database refuses every write (locked, full,
         * read-only) that would only wait once more per op: all fail now. */
        if (unavailable) {
            for (struct writer_op *op = ops; op; op = op->next) op->rc = STORE_ERROR;
        } else {
            run_ops_alone(w, &tx, ops, now);
            for (struct writer_op *op = ops; op; op = op->next)
                if (op->rc == STORE_OK) atomic_store(&w->degraded, false);
        }
        w->claim_pause_until_ms = now + FAILURE_BACKOFF_MS;
        if (purging) {
            w->next_purge_ms = now + PURGE_IDLE_MS;
            w->purge_from_seq = purge_from; /* its deletes were rolled back */
        }
        if (sweeping) w->next_sweep_ms = now + SWEEP_INTERVAL_MS;
    } else {
        apply_effects(&tx, 0, tx.n_fx, now); /* announced once on disk */
        /* Only a commit that wrote something proves the store takes writes: an
         * empty sweep commits even on a full disk. */
        if ((ops || probing) && atomic_exchange(&w->degraded, false))
            log_msg(LOG_INFO, "store.recovered", "ops=%d", n_ops);
        if (sweeping) {
            w->next_sweep_ms = now + SWEEP_INTERVAL_MS;
            size_t gone = scheduler_forget_idle(w->sched, util_mono_ms(), QUEUE_IDLE_MS);
            if (gone && log_enabled(LOG_DEBUG))
                log_batch_add(&w->log, LOG_DEBUG, "queues.forgotten", "count=%zu", gone);
        }
        if (shifting) {
            scheduler_clock_step(w->sched, w->clock_step_ms);
            w->clock_step_ms = 0;
        }
        if (purged > 0) log_batch_add(&w->log, LOG_INFO, "tasks.purged", "count=%d", purged);
        for (struct job *j = tx.jobs; j; j = j->next) {
            if (j->kind == JOB_TASK) seqset_add(&w->held_tasks, j->task->seq);
            else seqset_add(&w->held_webhooks, j->webhook->seq);
        }
    }
    int64_t commit_us = util_mono_us() - t0;
    if (ops || tx.n_jobs) metrics_writer_batch(n_ops + tx.n_jobs, commit_us);
    if (log_enabled(LOG_DEBUG))
        log_batch_add(&w->log, LOG_DEBUG, "writer.batch", "ops=%d claimed=%d us=%lld", n_ops,
                      tx.n_jobs, (long long)commit_us);
    log_batch_flush(&w->log);
    add_pending(w, ops, &tx);
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    for (;;) {
        complete_on_disk(w);
        int64_t now = watch_clock(w);
        int slots = w->has_sink && atomic_load(&w->claiming)
                        ? w->sink.free_slots(w->sink.arg) - w->pending_jobs
                        : 0;
        /* When could there be something to do without an op arriving? */
        int64_t wake = w->next_sweep_ms < w->next_purge_ms ? w->next_sweep_ms : w->next_purge_ms;
        if (w->clock_step_ms != 0) wake = now;
        if (slots > 0 && atomic_load(&w->claiming)) {
            int64_t due = scheduler_next_wake(w->sched, now);
            if (w->webhook_due_ms < due) due = w->webhook_due_ms;
            if (due < w->claim_pause_until_ms) due = w->claim_pause_until_ms;
            if (due < wake) wake = due;
        }
        pthread_mutex_lock(&w->lock);
        if (!w->head && !w->heavy_head && !w->stopping && !w->kicked && wake > now && !head_on_disk(w)) {
            int64_t ms = wake - now; /* the syncer wakes us too */
            wait_ms(w, ms > WAKE_MAX_MS ? WAKE_MAX_MS : ms);
            pthread_mutex_unlock(&w->lock);
            continue; /* look again with a fresh free-slot count */
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
        /* Then ops of many rows: the first whatever its size, more while
         * the rows stay within batch_max. */
        for (int rows = 0; w->heavy_head && (rows == 0 || rows + w->heavy_head->weight <= w->cfg->batch_max);) {
            struct writer_op *op = w->heavy_head;
            w->heavy_head = op->next;
            if (!w->heavy_head) w->heavy_tail = NULL;
            op->next = NULL;
            if (last) last->next = op;
            else ops = op;
            last = op;
            rows += op->weight;
            n++;
        }
        bool stop = w->stopping && !w->head && !w->heavy_head;
        pthread_mutex_unlock(&w->lock);

        run_batch(w, last ? ops : NULL, n, slots);
        if (stop && !last) {
            if (!w->pending) break;
            wait_head_on_disk(w); /* its done() may still submit ops */
        }
    }
    return NULL;
}

int writer_start(struct writer *w, const struct writer_sink *sink)
{
    if (sink) {
        w->sink = *sink;
        w->has_sink = true;
    }
    w->deferred = store_defer_sync(w->conn);
    if (w->deferred) {
        if (pthread_create(&w->syncer, NULL, syncer_main, w) != 0) {
            log_msg(LOG_ERROR, "writer.thread_failed", "error=\"cannot create the syncer thread\"");
            return -1;
        }
        w->syncer_started = true;
        pthread_setname_np(w->syncer, "aq-sync");
    }
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        log_msg(LOG_ERROR, "writer.thread_failed", "error=\"cannot create thread\"");
        return -1;
    }
    pthread_setname_np(w->thread, "aq-writer");
    w->started = true;
    return 0;
}

/* Raises a thread's stop flag (guarded by the writer's lock), wakes it and
 * waits for it to end. */
static void stop_thread(struct writer *w, bool *flag, pthread_cond_t *cond, pthread_t thread)
{
    pthread_mutex_lock(&w->lock);
    *flag = true;
    pthread_cond_signal(cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(thread, NULL);
}

void writer_free(struct writer *w, const char *requeue_reason)
{
    if (!w) return;
    atomic_store(&w->claiming, false);
    if (w->started) stop_thread(w, &w->stopping, &w->cond, w->thread); /* drains its batches */
    if (w->syncer_started) stop_thread(w, &w->sync_stop, &w->sync_cond, w->syncer);
    if (requeue_reason) requeue_all(w, requeue_reason);
    if (w->deferred && store_sync(w->store) != 0)
        log_msg(LOG_ERROR, "store.sync_failed", "error=\"%s\" note=\"at stop\"", strerror(errno));
    store_conn_close(w->conn);
    scheduler_free(w->sched);
    seqset_free(&w->held_tasks);
    seqset_free(&w->held_webhooks);
    log_batch_free(&w->log);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    pthread_cond_destroy(&w->sync_cond);
    free(w);
}
