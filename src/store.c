/*
 * store: picks the backend and forwards each operation to it; owns the
 * pool of read connections, which is the same for every backend.
 */
#include "store_backend.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

static const struct store_ops *pick_backend(const char *db)
{
    /* PostgreSQL URLs will pick the PostgreSQL backend here. */
    (void)db;
    return &store_sqlite_ops;
}

struct store *store_open(const struct config *cfg, bool shared, char *err, size_t err_len)
{
    if (strncmp(cfg->db, "postgres://", 11) == 0 || strncmp(cfg->db, "postgresql://", 13) == 0) {
        snprintf(err, err_len, "%s: the PostgreSQL backend is not built yet; use a file path",
                 cfg->db);
        return NULL;
    }
    const struct store_ops *ops = pick_backend(cfg->db);
    void *impl = ops->open(cfg, shared, err, err_len);
    if (!impl) return NULL;
    struct store *s = xcalloc(1, sizeof *s);
    s->ops = ops;
    s->impl = impl;
    pthread_mutex_init(&s->pool_lock, NULL);
    return s;
}

void store_close(struct store *s)
{
    if (!s) return;
    while (s->pool) {
        struct store_conn *c = s->pool;
        s->pool = c->next_idle;
        store_conn_close(c);
    }
    s->ops->close(s->impl);
    pthread_mutex_destroy(&s->pool_lock);
    free(s);
}

struct store_conn *store_conn_open(struct store *s)
{
    void *impl = s->ops->conn_open(s->impl);
    if (!impl) return NULL;
    struct store_conn *c = xcalloc(1, sizeof *c);
    c->store = s;
    c->impl = impl;
    return c;
}

void store_conn_close(struct store_conn *c)
{
    if (!c) return;
    c->store->ops->conn_close(c->impl);
    free(c);
}

struct store_conn *store_conn_acquire(struct store *s)
{
    pthread_mutex_lock(&s->pool_lock);
    struct store_conn *c = s->pool;
    if (c) s->pool = c->next_idle;
    pthread_mutex_unlock(&s->pool_lock);
    return c ? c : store_conn_open(s);
}

void store_conn_release(struct store_conn *c)
{
    if (!c) return;
    struct store *s = c->store;
    pthread_mutex_lock(&s->pool_lock);
    c->next_idle = s->pool;
    s->pool = c;
    pthread_mutex_unlock(&s->pool_lock);
}

const char *store_conn_error(struct store_conn *c)
{
    return c->store->ops->conn_error(c->impl);
}

bool store_conn_unavailable(struct store_conn *c)
{
    return c->store->ops->conn_unavailable(c->impl);
}

#define OPS(c) ((c)->store->ops)

int store_begin(struct store_conn *c) { return OPS(c)->begin(c->impl); }
int store_commit(struct store_conn *c) { return OPS(c)->commit(c->impl); }
bool store_defer_sync(struct store_conn *c)
{
    return OPS(c)->defer_sync ? OPS(c)->defer_sync(c->impl) : false;
}
int store_sync(struct store *s) { return s->ops->sync ? s->ops->sync(s->impl) : 0; }
void store_rollback(struct store_conn *c) { OPS(c)->rollback(c->impl); }

int store_task_insert(struct store_conn *c, struct task *t)
{
    return OPS(c)->task_insert(c->impl, t);
}

int store_tasks_claim(struct store_conn *c, const char *queue, int64_t only_seq, int64_t now_ms,
                      int64_t lease_grace_ms, int limit, const struct claim_filter *f,
                      struct task ***out, size_t *n_out)
{
    return OPS(c)->tasks_claim(c->impl, queue, only_seq, now_ms, lease_grace_ms, limit, f, out,
                               n_out);
}

int store_queue_next_due(struct store_conn *c, const char *queue, int64_t *due_ms)
{
    return OPS(c)->queue_next_due(c->impl, queue, due_ms);
}

int store_queue_retrying(struct store_conn *c, const char *queue, int64_t *seq, int64_t *run_at_ms,
                         char **host)
{
    return OPS(c)->queue_retrying(c->impl, queue, seq, run_at_ms, host);
}

int store_queues_due_each(struct store_conn *c,
                          void (*fn)(void *arg, const char *queue, int64_t due_ms), void *arg)
{
    return OPS(c)->queues_due_each(c->impl, fn, arg);
}

int store_running_each(struct store_conn *c,
                       void (*fn)(void *arg, const char *queue, const char *host, int n),
                       void *arg)
{
    return OPS(c)->running_each(c->impl, fn, arg);
}

int store_task_finish(struct store_conn *c, const struct task_result *r, bool *applied)
{
    return OPS(c)->task_finish(c->impl, r, applied);
}

int store_requeue_running(struct store_conn *c, int64_t now_ms, int64_t lease_before_ms,
                          const char *reason, bool (*held)(void *arg, bool webhook, int64_t seq),
                          void *held_arg, int *count)
{
    return OPS(c)->requeue_running(c->impl, now_ms, lease_before_ms, reason, held, held_arg, count);
}

int store_shift_waits(struct store_conn *c, int64_t now_ms, int64_t step_ms, int *tasks,
                      int *webhooks)
{
    return OPS(c)->shift_waits(c->impl, now_ms, step_ms, tasks, webhooks);
}

int store_write_probe(struct store_conn *c, int bytes)
{
    return OPS(c)->write_probe(c->impl, bytes);
}

int store_webhooks_claim(struct store_conn *c, int64_t now_ms, int64_t lease_ms, int limit,
                         struct webhook_msg ***out, size_t *n_out)
{
    return OPS(c)->webhooks_claim(c->impl, now_ms, lease_ms, limit, out, n_out);
}

int store_webhook_finish(struct store_conn *c, const struct webhook_result *r)
{
    return OPS(c)->webhook_finish(c->impl, r);
}

int store_webhook_insert(struct store_conn *c, const struct task *t, const char *body,
                         int64_t lease_until_ms, struct webhook_msg *claimed)
{
    return OPS(c)->webhook_insert(c->impl, t, body, lease_until_ms, claimed);
}

int store_task_cancel(struct store_conn *c, const char *id, const char *tenant, int64_t now_ms,
                      struct task **out, bool *was_running)
{
    return OPS(c)->task_cancel(c->impl, id, tenant, now_ms, out, was_running);
}

int store_task_replay(struct store_conn *c, struct task *t)
{
    return OPS(c)->task_replay(c->impl, t);
}

int store_tasks_select(struct store_conn *c, const struct task_filter *f, int64_t after_seq,
                       int limit, char (**ids)[ID_LEN], size_t *n, int64_t *last_seq, bool *more)
{
    return OPS(c)->tasks_select(c->impl, f, after_seq, limit, ids, n, last_seq, more);
}

int store_idempotency_get(struct store_conn *c, const char *key, int64_t not_before_ms,
                          char **request_hash, char **task_id)
{
    return OPS(c)->idempotency_get(c->impl, key, not_before_ms, request_hash, task_id);
}

int store_idempotency_put(struct store_conn *c, const char *key, const char *request_hash,
                          const char *task_id, int64_t now_ms)
{
    return OPS(c)->idempotency_put(c->impl, key, request_hash, task_id, now_ms);
}

int store_queue_put(struct store_conn *c, const char *name, const struct queue_settings *qs,
                    int64_t now_ms)
{
    return OPS(c)->queue_put(c->impl, name, qs, now_ms);
}

int store_queue_delete(struct store_conn *c, const char *name)
{
    return OPS(c)->queue_delete(c->impl, name);
}

int store_queues_each(struct store_conn *c,
                      void (*fn)(void *arg, const char *name, const struct queue_settings *qs),
                      void *arg)
{
    return OPS(c)->queues_each(c->impl, fn, arg);
}

void schedule_clear(struct schedule *s)
{
    free(s->cron);
    free(s->task);
    free(s->last_error);
    *s = (struct schedule){0};
}

int store_schedule_put(struct store_conn *c, const struct schedule *s, bool *created)
{
    return OPS(c)->schedule_put(c->impl, s, created);
}

int store_schedule_delete(struct store_conn *c, const char *tenant, const char *name)
{
    return OPS(c)->schedule_delete(c->impl, tenant, name);
}

int store_schedule_ran(struct store_conn *c, const char *tenant, const char *name, int64_t ran_at_ms,
                       const char *task_id, const char *error, bool advance, int64_t next_run_at_ms)
{
    return OPS(c)->schedule_ran(c->impl, tenant, name, ran_at_ms, task_id, error, advance,
                                next_run_at_ms);
}

int store_schedules_due(struct store_conn *c, int64_t now_ms, int limit, struct schedule **out,
                        size_t *n)
{
    return OPS(c)->schedules_due(c->impl, now_ms, limit, out, n);
}

int store_schedule_set_next(struct store_conn *c, const char *tenant, const char *name,
                            int64_t next_run_at_ms)
{
    return OPS(c)->schedule_set_next(c->impl, tenant, name, next_run_at_ms);
}

int store_schedules_waiting(struct store_conn *c, const char *after_tenant, const char *after_name,
                            int limit, struct schedule **out, size_t *n)
{
    return OPS(c)->schedules_waiting(c->impl, after_tenant, after_name, limit, out, n);
}

int store_schedule_next_due(struct store_conn *c, int64_t *due_ms)
{
    return OPS(c)->schedule_next_due(c->impl, due_ms);
}

int store_schedule_get(struct store_conn *c, const char *tenant, const char *name, struct schedule *out)
{
    return OPS(c)->schedule_get(c->impl, tenant, name, out);
}

int store_schedules_list(struct store_conn *c, const char *tenant, const char *after, int limit,
                         size_t max_bytes, struct schedule **out, size_t *n, bool *cut)
{
    return OPS(c)->schedules_list(c->impl, tenant, after, limit, max_bytes, out, n, cut);
}

int store_purge(struct store_conn *c, int64_t cutoff_ms, int64_t idem_cutoff_ms, int64_t *from_seq,
                int span, int *deleted, int64_t *max_seq)
{
    return OPS(c)->purge(c->impl, cutoff_ms, idem_cutoff_ms, from_seq, span, deleted, max_seq);
}

int store_backlog(struct store_conn *c, int64_t *n)
{
    return OPS(c)->backlog(c->impl, n);
}

int store_webhook_next_due(struct store_conn *c, int64_t *due_ms)
{
    return OPS(c)->webhook_next_due(c->impl, due_ms);
}

int store_kv_get(struct store_conn *c, const char *key, char **value)
{
    return OPS(c)->kv_get(c->impl, key, value);
}

int store_kv_put_if_absent(struct store_conn *c, const char *key, const char *value,
                           char **value_out)
{
    return OPS(c)->kv_put_if_absent(c->impl, key, value, value_out);
}

int store_tasks_list(struct store_conn *c, const struct task_filter *f, int64_t cursor,
                     bool ascending, int limit, int scan, size_t max_bytes, struct task ***out,
                     size_t *n, int64_t *next_cursor)
{
    return OPS(c)->tasks_list(c->impl, f, cursor, ascending, limit, scan, max_bytes, out, n, next_cursor);
}

int store_attempts_get(struct store_conn *c, int64_t task_seq, struct attempt **out, size_t *n)
{
    return OPS(c)->attempts_get(c->impl, task_seq, out, n);
}

int store_webhook_attempts_get(struct store_conn *c, int64_t task_seq,
                               struct webhook_attempt **out, size_t *n)
{
    return OPS(c)->webhook_attempts_get(c->impl, task_seq, out, n);
}

int store_queue_depths(struct store_conn *c, int64_t now_ms, const char *after, int limit,
                       void (*fn)(void *arg, const char *queue, int64_t queued, int64_t due),
                       void *arg)
{
    return OPS(c)->queue_depths(c->impl, now_ms, after ? after : "", limit, fn, arg);
}

int store_queue_depth(struct store_conn *c, int64_t now_ms, const char *queue, int64_t *queued, int64_t *due)
{
    return OPS(c)->queue_depth(c->impl, now_ms, queue, queued, due);
}

int store_task_get(struct store_conn *c, const char *id, const char *tenant, struct task **t,
                   struct attempt **attempts, size_t *n_attempts, struct webhook_state *webhook,
                   bool *has_webhook)
{
    return OPS(c)->task_get(c->impl, id, tenant, t, attempts, n_attempts, webhook, has_webhook);
}

int store_task_count(struct store_conn *c, int64_t *n)
{
    return OPS(c)->task_count(c->impl, n);
}

void webhook_msg_free(struct webhook_msg *m)
{
    if (!m) return;
    free(m->url);
    free(m->body);
    free(m);
}
