/*
 * store: everything the daemon keeps, behind one narrow interface. The rest
 * of the program never sees SQL; a backend (today SQLite, store_sqlite.c;
 * PostgreSQL later, so several daemons can share one database) implements
 * the operations in struct store_ops and store.c dispatches to it.
 *
 * DESIGN
 * - A struct store is one database, shared by all threads. A struct
 *   store_conn is one connection, used by one thread at a time.
 * - All writes run on the writer thread (writer.c), which wraps many
 *   operations in one transaction (group commit). Write operations below
 *   therefore expect to run inside store_begin()/store_commit() on the
 *   writer's connection.
 * - Reads take a pooled connection with store_conn_acquire() and give it
 *   back with store_conn_release(); in WAL mode they never wait for the
 *   writer.
 * - Claims are leases: a claimed task is 'running' with lease_until and a
 *   new claim_token. Finishing an attempt names the token it was claimed
 *   with, so a stale result (after a cancel or a lost lease) changes nothing.
 *
 * Return values: STORE_OK, STORE_NOT_FOUND, or STORE_ERROR (the reason is in
 * store_conn_error()).
 */
#ifndef AQ_STORE_H
#define AQ_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "task.h"

enum { STORE_OK = 0, STORE_NOT_FOUND = 1, STORE_ERROR = -1 };

struct store;
struct store_conn;

/* One outbox message: a webhook to deliver. */
struct webhook_msg {
    int64_t seq;
    char id[48];            /* "msg_" + uuid, the webhook-id header */
    char task_id[ID_LEN];
    char *url;
    char *body;
    size_t body_len;
    int attempts;           /* delivery attempts made before this claim */
    int64_t claim_token;
};

void webhook_msg_free(struct webhook_msg *m); /* NULL is a no-op */

/* The end of one webhook delivery attempt. */
struct webhook_result {
    int64_t seq;
    int64_t claim_token;
    int attempts;           /* including this one */
    bool delivered;
    bool give_up;           /* schedule exhausted or destination refused */
    int64_t next_at_ms;     /* when neither delivered nor give_up */
    int64_t started_at_ms;
    int64_t finished_at_ms;
    int64_t duration_ms;
    int status_code;        /* 0 when no response */
    const char *error;      /* NULL when delivered */
};

/* The end of one target attempt, to be recorded. task holds the task as it
 * now stands (status, attempts, run_at, response and error fields), with
 * seq and claim_token as claimed. When webhook_body is not NULL an outbox
 * row is written in the same transaction. */
struct task_result {
    const struct task *task;
    const struct attempt *attempt;
    const char *webhook_body;
};

/* Opens (creating if needed) the database named by cfg->db, takes an
 * exclusive lock so no second daemon can use it (unless shared is true, for
 * one-shot commands), and applies pending migrations. Returns NULL with a
 * reason in err on failure. Call once, from the main thread. */
struct store *store_open(const struct config *cfg, bool shared, char *err, size_t err_len);
/* Closes every pooled connection and the store. Connections taken with
 * store_conn_open must be closed first. NULL is a no-op. */
void store_close(struct store *s);

/* A dedicated connection (the writer's). NULL on failure (logged). */
struct store_conn *store_conn_open(struct store *s);
void store_conn_close(struct store_conn *c);
/* A pooled read connection; never NULL-safe to skip release. */
struct store_conn *store_conn_acquire(struct store *s);
void store_conn_release(struct store_conn *c);
/* The last error on this connection, for logs. */
const char *store_conn_error(struct store_conn *c);

int store_begin(struct store_conn *c);
int store_commit(struct store_conn *c);
void store_rollback(struct store_conn *c);

/* --- writes (writer thread, inside a transaction) --- */

/* Inserts a new task; sets t->seq. */
int store_task_insert(struct store_conn *c, struct task *t);
/* Claims up to limit tasks due at now_ms, oldest run_at first: marks them
 * running with a lease of their timeout plus lease_grace_ms. *out receives
 * a malloc'd array of tasks the caller frees (each with task_free). */
int store_tasks_claim(struct store_conn *c, int64_t now_ms, int64_t lease_grace_ms, int limit,
                      struct task ***out, size_t *n_out);
/* Records an attempt and the task's new state. *applied is false when the
 * claim was no longer current (nothing is written then). */
int store_task_finish(struct store_conn *c, const struct task_result *r, bool *applied);
/* Puts running tasks back in the queue, recording their attempt as
 * interrupted with reason. Only tasks whose lease ended before
 * lease_before_ms are touched (INT64_MAX: all). Also returns delivering
 * webhooks to pending. *count receives the number of tasks requeued. */
int store_requeue_running(struct store_conn *c, int64_t now_ms, int64_t lease_before_ms,
                          const char *reason, int *count);
int store_webhooks_claim(struct store_conn *c, int64_t now_ms, int64_t lease_ms, int limit,
                         struct webhook_msg ***out, size_t *n_out);
int store_webhook_finish(struct store_conn *c, const struct webhook_result *r);
/* The earliest time any queued task or pending webhook becomes due, or
 * INT64_MAX when nothing waits. */
int store_next_due(struct store_conn *c, int64_t *due_ms);

/* Small settings kept in the database (the generated webhook secret). */
int store_kv_get(struct store_conn *c, const char *key, char **value);
/* Sets key to value unless it already has one; *value_out receives the
 * value now stored (caller frees). */
int store_kv_put_if_absent(struct store_conn *c, const char *key, const char *value,
                           char **value_out);

/* --- reads (any thread, pooled connection) --- */

/* Loads a task by id, with its attempts (may pass NULL to skip) and its
 * webhook state (*has_webhook tells whether there is one). */
int store_task_get(struct store_conn *c, const char *id, struct task **t,
                   struct attempt **attempts, size_t *n_attempts, struct webhook_state *webhook,
                   bool *has_webhook);
int store_task_count(struct store_conn *c, int64_t *n);

#endif
