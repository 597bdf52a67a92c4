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
    int (*begin)(void *conn_impl);
    int (*commit)(void *conn_impl);
    void (*rollback)(void *conn_impl);
    int (*task_insert)(void *conn_impl, struct task *t);
    int (*tasks_claim)(void *conn_impl, int64_t now_ms, int64_t lease_grace_ms, int limit,
                       struct task ***out, size_t *n_out);
    int (*task_finish)(void *conn_impl, const struct task_result *r, bool *applied);
    int (*requeue_running)(void *conn_impl, int64_t now_ms, int64_t lease_before_ms,
                           const char *reason, int *count);
    int (*webhooks_claim)(void *conn_impl, int64_t now_ms, int64_t lease_ms, int limit,
                          struct webhook_msg ***out, size_t *n_out);
    int (*webhook_finish)(void *conn_impl, const struct webhook_result *r);
    int (*next_due)(void *conn_impl, int64_t *due_ms);
    int (*kv_get)(void *conn_impl, const char *key, char **value);
    int (*kv_put_if_absent)(void *conn_impl, const char *key, const char *value, char **value_out);
    int (*task_get)(void *conn_impl, const char *id, struct task **t, struct attempt **attempts,
                    size_t *n_attempts, struct webhook_state *webhook, bool *has_webhook);
    int (*task_count)(void *conn_impl, int64_t *n);
};

extern const struct store_ops store_sqlite_ops;

#endif
