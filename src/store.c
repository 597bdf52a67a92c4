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

#define OPS(c) ((c)->store->ops)

int store_begin(struct store_conn *c) { return OPS(c)->begin(c->impl); }
int store_commit(struct store_conn *c) { return OPS(c)->commit(c->impl); }
void store_rollback(struct store_conn *c) { OPS(c)->rollback(c->impl); }

int store_task_insert(struct store_conn *c, struct task *t)
{
    return OPS(c)->task_insert(c->impl, t);
}

int store_tasks_claim(struct store_conn *c, int64_t now_ms, int64_t lease_grace_ms, int limit,
                      struct task ***out, size_t *n_out)
{
    return OPS(c)->tasks_claim(c->impl, now_ms, lease_grace_ms, limit, out, n_out);
}

int store_task_finish(struct store_conn *c, const struct task_result *r, bool *applied)
{
    return OPS(c)->task_finish(c->impl, r, applied);
}

int store_requeue_running(struct store_conn *c, int64_t now_ms, int64_t lease_before_ms,
                          const char *reason, int *count)
{
    return OPS(c)->requeue_running(c->impl, now_ms, lease_before_ms, reason, count);
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

int store_next_due(struct store_conn *c, int64_t *due_ms)
{
    return OPS(c)->next_due(c->impl, due_ms);
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

int store_task_get(struct store_conn *c, const char *id, struct task **t,
                   struct attempt **attempts, size_t *n_attempts, struct webhook_state *webhook,
                   bool *has_webhook)
{
    return OPS(c)->task_get(c->impl, id, t, attempts, n_attempts, webhook, has_webhook);
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
