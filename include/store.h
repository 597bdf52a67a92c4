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
#include "scheduler.h"
#include "task.h"

enum { STORE_OK = 0, STORE_NOT_FOUND = 1, STORE_CONFLICT = 2, STORE_ERROR = -1 };

/* Which tasks a list or a bulk operation covers. Zero/NULL fields match
 * everything. */
struct task_filter {
    unsigned status_mask;       /* bit (1 << enum task_status) per status */
    const char *queue;
    int64_t created_after_ms;   /* created_at >= this */
    int64_t created_before_ms;  /* created_at < this */
    const char *tenant;
    const char *schedule;       /* made by this schedule (lists only) */
};

struct store;
struct store_conn;

/* A schedule: its task template (the body of POST /v1/tasks, as written)
 * made into a task each time its cron expression fires. Names are unique
 * per tenant. Times in Unix ms, 0 for none. */
struct schedule {
    char tenant[65];            /* "" for keys without a tenant */
    char name[65];
    char *cron;
    char timezone[65];          /* the IANA zone cron is read in; "" means UTC */
    char *task;
    bool paused;
    int64_t next_run_at_ms;     /* 0: paused, or no time left to fire */
    int64_t last_run_at_ms;
    char last_task_id[ID_LEN];  /* the last task made, or "" */
    char *last_error;           /* why the last run made no task, or NULL */
    int64_t runs;               /* tasks made */
    int64_t created_at_ms, updated_at_ms;
};

/* Frees what s holds (not s). */
void schedule_clear(struct schedule *s);


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
    bool uncounted;         /* the daemon could not try (its own limits): no attempt row */
};

/* The end of one target attempt, to be recorded. task holds the task as it
 * now stands (status, attempts, run_at, response and error fields), with
 * seq and claim_token as claimed. Its webhook, if any, is written by the
 * caller (store_webhook_insert) in the same transaction. */
struct task_result {
    const struct task *task;
    const struct attempt *attempt;
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
/* Whether the last error was the database refusing all writes for now
 * (locked, full, read-only, I/O) rather than one operation's fault: then
 * retrying the operations one by one cannot help. */
bool store_conn_unavailable(struct store_conn *c);

int store_begin(struct store_conn *c);
int store_commit(struct store_conn *c);
void store_rollback(struct store_conn *c);

/* Group commit in two steps, so the disk flush of one transaction overlaps
 * the work of the next. After store_defer_sync(c) returns true, c's commits
 * return once their writes are made but before they are on disk, and
 * store_sync() makes every commit that returned before it was called
 * durable; it may run in another thread while c runs the next transaction.
 * false: c's commits stay as durable by themselves as the configuration
 * makes them (synchronous = normal, or a backend without the split), and
 * store_sync() has nothing to do. */
bool store_defer_sync(struct store_conn *c);
/* Any thread. 0, or -1 with errno set when the disk did not take the writes:
 * the caller cannot know what reached the disk, and must not retry. */
int store_sync(struct store *s);

/* --- writes (writer thread, inside a transaction) --- */

/* Inserts a new task as it is: queued, or already claimed (running, with
 * its start, lease and claim token). Sets t->seq. */
int store_task_insert(struct store_conn *c, struct task *t);
/* Which due tasks a claim may take. */
struct claim_filter {
    const char *const *exclude_hosts; /* hosts to skip entirely */
    size_t n_exclude;
    /* When not NULL, asked for each candidate in due order: take one more
     * task for host? (It counts what it allowed.) Lets a claim stop at each
     * host's free slots. */
    bool (*take)(void *arg, const char *host);
    void *arg;
};

/* Claims up to limit tasks of queue due at now_ms, in due order, as f
 * allows; with only_seq > 0, claims just that task if it is queued and due.
 * Claimed tasks are running with a lease of their timeout plus
 * lease_grace_ms. *out receives a malloc'd array the caller frees (each
 * task with task_free). */
int store_tasks_claim(struct store_conn *c, const char *queue, int64_t only_seq, int64_t now_ms,
                      int64_t lease_grace_ms, int limit, const struct claim_filter *f,
                      struct task ***out, size_t *n_out);
/* The earliest run_at of the queue's queued tasks, or INT64_MAX. */
int store_queue_next_due(struct store_conn *c, const char *queue, int64_t *due_ms);
/* The queue's queued task that waits for a retry of its current series (it
 * has had attempts since it was created or replayed), earliest due first:
 * *seq, *run_at_ms and *host (malloc'd), or *seq 0 and *host NULL when
 * there is none. A FIFO queue's hold. */
int store_queue_retrying(struct store_conn *c, const char *queue, int64_t *seq, int64_t *run_at_ms,
                         char **host);
/* Calls fn for each queue with queued tasks and its earliest run_at. */
int store_queues_due_each(struct store_conn *c,
                          void (*fn)(void *arg, const char *queue, int64_t due_ms), void *arg);
/* Calls fn for each (queue, host) with running tasks and their count. */
int store_running_each(struct store_conn *c,
                       void (*fn)(void *arg, const char *queue, const char *host, int n),
                       void *arg);
/* Records an attempt and the task's new state. *applied is false when the
 * claim was no longer current (nothing is written then). */
int store_task_finish(struct store_conn *c, const struct task_result *r, bool *applied);
/* Puts running tasks back in the queue, recording their attempt as
 * interrupted with reason. Only tasks whose lease ended before
 * lease_before_ms are touched (INT64_MAX: all). Also returns delivering
 * webhooks to pending. When held is not NULL it is asked about each
 * expired lease, and one this process still holds (held returns true) is
 * left alone. *count receives the number of tasks requeued. */
int store_requeue_running(struct store_conn *c, int64_t now_ms, int64_t lease_before_ms,
                          const char *reason, bool (*held)(void *arg, bool webhook, int64_t seq),
                          void *held_arg, int *count);
/* The wall clock stepped by step_ms (new minus expected; now_ms is the new
 * time): moves the due times of queued retries, of queued work that was
 * already due, and of pending webhooks by the same step, so waits keep
 * their length. *tasks and *webhooks count the rows moved. */
int store_shift_waits(struct store_conn *c, int64_t now_ms, int64_t step_ms, int *tasks,
                      int *webhooks);
/* Writes (and keeps, replacing the last) bytes of fresh data: succeeds only
 * when the database takes writes that need new space. */
int store_write_probe(struct store_conn *c, int bytes);
int store_webhooks_claim(struct store_conn *c, int64_t now_ms, int64_t lease_ms, int limit,
                         struct webhook_msg ***out, size_t *n_out);
/* Writes an outbox row for task t (its webhook_url) with body, due at
 * t->updated_at_ms. With claimed NULL it waits there for a claim; else it
 * is written already claimed (as store_webhooks_claim leaves a row, leased
 * until lease_until_ms) and claimed receives its seq, id and claim_token. */
int store_webhook_insert(struct store_conn *c, const struct task *t, const char *body,
                         int64_t lease_until_ms, struct webhook_msg *claimed);
/* Cancels a queued or running task: status cancelled, error "cancelled";
 * a running one also gets its attempt recorded as cancelled. *out receives
 * the task as it now stands (caller frees) and *was_running whether it was
 * running. STORE_CONFLICT (with *out) when it was already final. */
int store_task_cancel(struct store_conn *c, const char *id, const char *tenant, int64_t now_ms,
                      struct task **out, bool *was_running);
/* Replays a finished task: t (loaded, then changed by the caller's
 * overrides) becomes queued at t->run_at_ms as a new attempt series.
 * STORE_CONFLICT when the task is no longer final. */
int store_task_replay(struct store_conn *c, struct task *t);
/* Ids of tasks matching f among seq in (after_seq, after_seq + 20 * limit],
 * at most limit, in seq order. *last_seq receives where to continue (the
 * last seq looked at) and *more whether rows beyond it exist. Caller frees
 * ids. Bulk operations walk the table this way in bounded steps. */
int store_tasks_select(struct store_conn *c, const struct task_filter *f, int64_t after_seq,
                       int limit, char (**ids)[ID_LEN], size_t *n, int64_t *last_seq, bool *more);
/* Idempotency: the task id and request hash stored for key, when created
 * at or after not_before_ms (else STORE_NOT_FOUND). Caller frees both. */
int store_idempotency_get(struct store_conn *c, const char *key, int64_t not_before_ms,
                          char **request_hash, char **task_id);
int store_idempotency_put(struct store_conn *c, const char *key, const char *request_hash,
                          const char *task_id, int64_t now_ms);
/* Queue settings. */
int store_queue_put(struct store_conn *c, const char *name, const struct queue_settings *qs,
                    int64_t now_ms);
int store_queue_delete(struct store_conn *c, const char *name);
int store_queues_each(struct store_conn *c,
                      void (*fn)(void *arg, const char *name, const struct queue_settings *qs),
                      void *arg);
/* Schedules. put writes s whole, as a new schedule or over the one of its
 * tenant and name (keeping that one's runs, last run and created_at);
 * *created tells which. */
int store_schedule_put(struct store_conn *c, const struct schedule *s, bool *created);
int store_schedule_delete(struct store_conn *c, const char *tenant, const char *name);
/* Records a run at ran_at_ms: the task made (task_id), or error when none
 * was; with advance, next_run_at_ms becomes the next time (0: none). */
int store_schedule_ran(struct store_conn *c, const char *tenant, const char *name, int64_t ran_at_ms,
                       const char *task_id, const char *error, bool advance, int64_t next_run_at_ms);
/* Schedules due at now_ms (not paused), earliest first, at most limit:
 * *out a malloc'd array (schedule_clear each, then free). */
int store_schedules_due(struct store_conn *c, int64_t now_ms, int limit, struct schedule **out,
                        size_t *n);
/* Sets a schedule's next run (0: none), and nothing else. */
int store_schedule_set_next(struct store_conn *c, const char *tenant, const char *name,
                            int64_t next_run_at_ms);
/* Every tenant's schedules that have a next run, after (after_tenant,
 * after_name) in that order, at most limit: as store_schedules_due. */
int store_schedules_waiting(struct store_conn *c, const char *after_tenant, const char *after_name,
                            int limit, struct schedule **out, size_t *n);
/* The earliest next run of any schedule, or INT64_MAX. Any connection. */
int store_schedule_next_due(struct store_conn *c, int64_t *due_ms);
/* Retention: deletes finished tasks (and their attempts and webhooks, once
 * those are final) with finished_at before cutoff_ms, looking only at seq in
 * (*from_seq, *from_seq + span]; and idempotency keys older than
 * idem_cutoff_ms. A *from_seq below the lowest seq moves up to just below it
 * (written back), so a walk does not step through seqs long gone. The task
 * with the highest seq is never deleted: a new task takes the highest seq
 * + 1, and must not take one a client may hold as a list cursor. *deleted
 * counts tasks deleted; *max_seq receives the highest seq in the table (so
 * the caller knows when to wrap). */
int store_purge(struct store_conn *c, int64_t cutoff_ms, int64_t idem_cutoff_ms, int64_t *from_seq,
                int span, int *deleted, int64_t *max_seq);
/* Tasks not yet final (queued or running). */
int store_backlog(struct store_conn *c, int64_t *n);
int store_webhook_finish(struct store_conn *c, const struct webhook_result *r);
/* The earliest time a pending webhook becomes due, or INT64_MAX. */
int store_webhook_next_due(struct store_conn *c, int64_t *due_ms);

/* Small settings kept in the database (the generated webhook secret). */
int store_kv_get(struct store_conn *c, const char *key, char **value);
/* Sets key to value unless it already has one; *value_out receives the
 * value now stored (caller frees). */
int store_kv_put_if_absent(struct store_conn *c, const char *key, const char *value,
                           char **value_out);

/* --- reads (any thread, pooled connection) --- */

/* Tasks matching f, newest first (ascending: oldest first), starting after
 * cursor (a seq; 0: the start). At most scan rows are looked at, and none
 * after the bodies and responses read add up to max_bytes (0: no bound), so
 * a page may hold fewer than limit tasks; *next_cursor is 0 when the list
 * is exhausted. Caller frees the tasks and the array. */
int store_tasks_list(struct store_conn *c, const struct task_filter *f, int64_t cursor,
                     bool ascending, int limit, int scan, size_t max_bytes, struct task ***out,
                     size_t *n, int64_t *next_cursor);
/* A task's attempts and its webhook delivery attempts, oldest first. */
int store_attempts_get(struct store_conn *c, int64_t task_seq, struct attempt **out, size_t *n);
int store_webhook_attempts_get(struct store_conn *c, int64_t task_seq,
                               struct webhook_attempt **out, size_t *n);
/* Queued tasks per queue: fn(queue, queued, due now), ordered by queue
 * (byte order, as strcmp compares). Only queues named after `after` (NULL
 * or "": from the first), and at most limit of them (0: all), so a page of
 * GET /v1/queues reads the rows of its own queues, not of every queue. */
int store_queue_depths(struct store_conn *c, int64_t now_ms, const char *after, int limit,
                       void (*fn)(void *arg, const char *queue, int64_t queued, int64_t due),
                       void *arg);
/* The same counts for one queue (0 and 0 when it has no queued task). */
int store_queue_depth(struct store_conn *c, int64_t now_ms, const char *queue, int64_t *queued, int64_t *due);

/* One schedule (STORE_NOT_FOUND when its tenant has none of that name);
 * out is cleared first. */
int store_schedule_get(struct store_conn *c, const char *tenant, const char *name, struct schedule *out);
/* A tenant's schedules named after `after` ("" from the first), by name, at
 * most limit, as store_schedules_due; and none after the templates read
 * add up to max_bytes (0: no bound), *cut then true: a template may be as
 * large as a create's body, and a thousand of them a gigabyte. */
int store_schedules_list(struct store_conn *c, const char *tenant, const char *after, int limit,
                         size_t max_bytes, struct schedule **out, size_t *n, bool *cut);

/* Loads a task by id, with its attempts (may pass NULL to skip) and its
 * webhook state (*has_webhook tells whether there is one). */
int store_task_get(struct store_conn *c, const char *id, const char *tenant, struct task **t,
                   struct attempt **attempts, size_t *n_attempts, struct webhook_state *webhook,
                   bool *has_webhook);
int store_task_count(struct store_conn *c, int64_t *n);

/* The SQLite backend's statements, for tests that check their query plans. */
size_t store_sqlite_statements(const char *const **sql);

#endif
