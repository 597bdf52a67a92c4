/*
 * store_backend: what a storage backend implements, and the generic
 * wrappers store.c hands it. Only store.c and backends include this.
 * Each operation has the contract of the store.h function of the same name;
 * impl pointers are the backend's own database and connection objects.
 */
#ifndef AQ_STORE_BACKEND_H
#define AQ_STORE_BACKEND_H

#include <pthread.h>

#include "store.h"

struct store_ops;

struct store {
    const struct store_ops *ops;
    void *impl;
    pthread_mutex_t pool_lock;   /* guards pool */
    struct store_conn *pool;     /* idle read connections */
};

struct store_conn {
    struct store *store;
    void *impl;
    struct store_conn *next_idle;
};

struct store_ops {
    const char *name;
    void *(*open)(const struct config *cfg, bool shared, char *err, size_t err_len);
    void (*close)(void *store_impl);
    void *(*conn_open)(void *store_impl);
    void (*conn_close)(void *conn_impl);
    const char *(*conn_error)(void *conn_impl);
    bool (*conn_unavailable)(void *conn_impl);
    int (*begin)(void *conn_impl);
    int (*commit)(void *conn_impl);
    void (*rollback)(void *conn_impl);
    bool (*defer_sync)(void *conn_impl);  /* optional: NULL when commits are durable by themselves */
    int (*sync)(void *store_impl);        /* optional, with defer_sync */
    int (*task_insert)(void *conn_impl, struct task *t);
    int (*tasks_claim)(void *conn_impl, const char *queue, int64_t only_seq, int64_t now_ms,
                       int64_t lease_grace_ms, int limit, const struct claim_filter *f,
                       struct task ***out, size_t *n_out);
    int (*queue_next_due)(void *conn_impl, const char *queue, int64_t *due_ms);
    int (*queue_retrying)(void *conn_impl, const char *queue, int64_t *seq, int64_t *run_at_ms,
                          char **host);
    int (*queues_due_each)(void *conn_impl, void (*fn)(void *, const char *, int64_t), void *arg);
    int (*running_each)(void *conn_impl, void (*fn)(void *, const char *, const char *, int),
                        void *arg);
    int (*task_finish)(void *conn_impl, const struct task_result *r, bool *applied);
    int (*requeue_running)(void *conn_impl, int64_t now_ms, int64_t lease_before_ms,
                           const char *reason, bool (*held)(void *, bool, int64_t),
                           void *held_arg, int *count);
    int (*shift_waits)(void *conn_impl, int64_t now_ms, int64_t step_ms, int *tasks, int *webhooks);
    int (*write_probe)(void *conn_impl, int bytes);
    int (*webhooks_claim)(void *conn_impl, int64_t now_ms, int64_t lease_ms, int limit,
                          struct webhook_msg ***out, size_t *n_out);
    int (*webhook_finish)(void *conn_impl, const struct webhook_result *r);
    int (*webhook_insert)(void *conn_impl, const struct task *t, const char *body,
                          int64_t lease_until_ms, struct webhook_msg *claimed);
    int (*task_cancel)(void *conn_impl, const char *id, const char *tenant, int64_t now_ms,
                       struct task **out, bool *was_running);
    int (*task_replay)(void *conn_impl, struct task *t);
    int (*tasks_select)(void *conn_impl, const struct task_filter *f, int64_t after_seq, int limit,
                        char (**ids)[ID_LEN], size_t *n, int64_t *last_seq, bool *more);
    int (*idempotency_get)(void *conn_impl, const char *key, int64_t not_before_ms,
                           char **request_hash, char **task_id);
    int (*idempotency_put)(void *conn_impl, const char *key, const char *request_hash,
                           const char *task_id, int64_t now_ms);
    int (*queue_put)(void *conn_impl, const char *name, const struct queue_settings *qs,
                     int64_t now_ms);
    int (*queue_delete)(void *conn_impl, const char *name);
    int (*queues_each)(void *conn_impl, void (*fn)(void *, const char *, const struct queue_settings *),
                       void *arg);
    int (*purge)(void *conn_impl, int64_t cutoff_ms, int64_t idem_cutoff_ms, int64_t *from_seq,
                 int span, int *deleted, int64_t *max_seq);
    int (*backlog)(void *conn_impl, int64_t *n);
    int (*webhook_next_due)(void *conn_impl, int64_t *due_ms);
    int (*schedule_put)(void *conn_impl, const struct schedule *s, bool *created);
    int (*schedule_delete)(void *conn_impl, const char *tenant, const char *name);
    int (*schedule_ran)(void *conn_impl, const char *tenant, const char *name, int64_t ran_at_ms,
                        const char *task_id, const char *error, bool advance, int64_t next_run_at_ms);
    int (*schedules_due)(void *conn_impl, int64_t now_ms, int limit, struct schedule **out, size_t *n);
    int (*schedule_next_due)(void *conn_impl, int64_t *due_ms);
    int (*schedule_set_next)(void *conn_impl, const char *tenant, const char *name, int64_t next_run_at_ms);
    int (*schedules_waiting)(void *conn_impl, const char *after_tenant, const char *after_name,
                             int limit, struct schedule **out, size_t *n);
    int (*schedule_get)(void *conn_impl, const char *tenant, const char *name, struct schedule *out);
    int (*schedules_list)(void *conn_impl, const char *tenant, const char *after, int limit,
                          size_t max_bytes, struct schedule **out, size_t *n, bool *cut);
    int (*kv_get)(void *conn_impl, const char *key, char **value);
    int (*kv_put_if_absent)(void *conn_impl, const char *key, const char *value, char **value_out);
    int (*tasks_list)(void *conn_impl, const struct task_filter *f, int64_t cursor, bool ascending,
                      int limit, int scan, size_t max_bytes, struct task ***out, size_t *n,
                      int64_t *next_cursor);
    int (*attempts_get)(void *conn_impl, int64_t task_seq, struct attempt **out, size_t *n);
    int (*webhook_attempts_get)(void *conn_impl, int64_t task_seq, struct webhook_attempt **out,
                                size_t *n);
    int (*queue_depths)(void *conn_impl, int64_t now_ms, const char *after, int limit,
                        void (*fn)(void *, const char *, int64_t, int64_t), void *arg);
    int (*queue_depth)(void *conn_impl, int64_t now_ms, const char *queue, int64_t *queued, int64_t *due);
    int (*task_get)(void *conn_impl, const char *id, const char *tenant, struct task **t,
                    struct attempt **attempts, size_t *n_attempts, struct webhook_state *webhook,
                    bool *has_webhook);
    int (*task_count)(void *conn_impl, int64_t *n);
};

extern const struct store_ops store_sqlite_ops;

#endif
