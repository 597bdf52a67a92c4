/*
 * store_sqlite: the embedded SQLite backend. One file, WAL mode, an
 * exclusive flock so only one daemon uses it, migrations embedded in the
 * binary and applied in order at open, and every statement prepared once
 * per connection.
 *
 * DESIGN
 * - Connections are opened with SQLITE_OPEN_NOMUTEX: each is used by one
 *   thread at a time (the writer's by the writer thread, pooled readers by
 *   whoever acquired them), so SQLite's own per-connection mutex would only
 *   cost time.
 * - The writer connection is the only one that writes. WAL lets readers run
 *   beside it. With synchronous = full, every commit is durable before its
 *   202: the writer's connection runs SQLite's synchronous=NORMAL (the WAL
 *   is synced at checkpoints only, and its frames carry checksums, so the
 *   file stays consistent) and the writer's syncer thread makes the commits
 *   durable with fdatasync() on the WAL file, while the next transaction
 *   runs (sq_defer_sync). Nothing is answered before that returns.
 * - Lists of values (statuses, hosts to skip) are bound as one JSON array
 *   and read with json_each(), so every statement stays static and prepared.
 * - Scans that could touch the whole table (lists with sparse filters, bulk
 *   operations, retention) walk fixed seq windows, so no single statement
 *   stalls the writer or a reader however large the table grows.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "embedded.h"
#include "id.h"
#include "log.h"
#include "store_backend.h"
#include "util.h"

struct sq_store {
    char *path;
    int lock_fd;
    int wal_fd;                  /* the WAL file, for sq_sync; -1 until sq_defer_sync */
    enum config_sync sync;
    int64_t busy_timeout_ms;
};

#define TASK_COLS                                                                              \
    "seq, id, tenant, queue, host, status, method, callback_url, headers, body, body_kind, "   \
    "webhook_url, metadata, max_retries, timeout_ms, follow_redirects, attempts, replays, "    \
    "attempts_uncounted, "                                                                            \
    "idempotency_key, run_at, created_at, updated_at, started_at, finished_at, lease_until, "  \
    "claim_token, response_status, response_headers, response_body, response_ms, error_code, " \
    "error_message, schedule"

#define SCHEDULE_COLS                                                                          \
    "tenant, name, cron, task, paused, next_run_at, last_run_at, last_task_id, last_error, runs, " \
    "created_at, updated_at, timezone"

/* The filter part shared by list and select: ?3 statuses (JSON array or
 * NULL), ?4 queue, ?5 created after, ?6 created before, ?7 tenant. */
#define FILTER                                                                                 \
    " AND (?3 IS NULL OR status IN (SELECT value FROM json_each(?3)))"                        \
    " AND (?4 IS NULL OR queue = ?4) AND (?5 IS NULL OR created_at >= ?5)"                     \
    " AND (?6 IS NULL OR created_at < ?6) AND (?7 IS NULL OR tenant = ?7)"                     \
    " AND (?9 IS NULL OR schedule = ?9)"

#define FINISHED_BEFORE                                                                        \
    "seq > ?1 AND seq <= ?2 AND status IN ('completed', 'failed', 'cancelled') AND "           \
    "finished_at < ?3 AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.task_seq = tasks.seq "  \
    "AND w.status IN ('pending', 'delivering'))"

#define CLAIM_SET                                                                              \
    "UPDATE tasks SET status = 'running', started_at = ?1, updated_at = ?1, "                  \
    "lease_until = ?1 + timeout_ms + ?2, claim_token = claim_token + 1 "

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_INSERT_TASK,
    ST_CLAIM_TASKS,
    ST_CLAIM_SEQ,
    ST_DUE_CANDIDATES,
    ST_CLAIM_SEQS,
    ST_QUEUE_NEXT_DUE,
    ST_QUEUES_DUE,
    ST_QUEUE_RETRYING,
    ST_RUNNING,
    ST_FINISH_TASK,
    ST_INSERT_ATTEMPT,
    ST_NOTE_OVERTAKEN,
    ST_INSERT_WEBHOOK,
    ST_REQUEUE_ATTEMPTS,
    ST_REQUEUE_TASKS,
    ST_REQUEUE_WEBHOOKS,
    ST_CLAIM_WEBHOOKS,
    ST_FINISH_WEBHOOK,
    ST_INSERT_WEBHOOK_ATTEMPT,
    ST_WEBHOOK_NEXT_DUE,
    ST_CANCEL,
    ST_REPLAY,
    ST_SELECT,
    ST_IDEM_GET,
    ST_IDEM_PUT,
    ST_QUEUE_PUT,
    ST_QUEUE_DELETE,
    ST_QUEUES_ALL,
    ST_QUEUE_DEPTHS,
    ST_QUEUE_DEPTH,
    ST_PURGE_ATTEMPTS,
    ST_PURGE_WEBHOOK_ATTEMPTS,
    ST_PURGE_WEBHOOKS,
    ST_PURGE_TASKS,
    ST_PURGE_IDEMPOTENCY,
    ST_MIN_MAX_SEQ,
    ST_BACKLOG,
    ST_KV_GET,
    ST_KV_PUT,
    ST_GET_TASK,
    ST_GET_ATTEMPTS,
    ST_GET_WEBHOOK,
    ST_GET_WEBHOOK_ATTEMPTS,
    ST_LIST_DESC,
    ST_LIST_ASC,
    ST_COUNT_TASKS,
    ST_EXPIRED_TASKS,
    ST_EXPIRED_WEBHOOKS,
    ST_SHIFT_TASKS,
    ST_SHIFT_WEBHOOKS,
    ST_PROBE,
    ST_SCHEDULE_GET,
    ST_SCHEDULE_INSERT,
    ST_SCHEDULE_UPDATE,
    ST_SCHEDULE_DELETE,
    ST_SCHEDULE_RAN,
    ST_SCHEDULES_DUE,
    ST_SCHEDULE_NEXT_DUE,
    ST_SCHEDULES_LIST,
    ST_SCHEDULE_SET_NEXT,
    ST_SCHEDULES_WAITING,
    ST_COUNT,
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_INSERT_TASK] =
        "INSERT INTO tasks (id, tenant, queue, host, status, method, callback_url, headers, body, "
        "body_kind, webhook_url, metadata, max_retries, timeout_ms, attempts, idempotency_key, "
        "run_at, created_at, updated_at, follow_redirects, started_at, lease_until, claim_token, "
        "schedule) VALUES (?1, ?2, ?3, ?4, ?18, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 0, ?14, ?15, "
        "?16, ?19, ?17, ?20, ?21, ?22, ?23)",
    [ST_CLAIM_TASKS] =
        CLAIM_SET "WHERE seq IN (SELECT seq FROM tasks WHERE status = 'queued' AND queue = ?3 "
        "AND run_at <= ?1 AND host NOT IN (SELECT value FROM json_each(?4)) "
        "ORDER BY run_at, seq LIMIT ?5) RETURNING " TASK_COLS,
    [ST_CLAIM_SEQ] =
        CLAIM_SET "WHERE seq = ?3 AND status = 'queued' AND run_at <= ?1 RETURNING " TASK_COLS,
    [ST_DUE_CANDIDATES] =
        "SELECT seq, host FROM tasks WHERE status = 'queued' AND queue = ?1 AND run_at <= ?2 "
        "AND host NOT IN (SELECT value FROM json_each(?3)) ORDER BY run_at, seq LIMIT ?4",
    [ST_CLAIM_SEQS] =
        CLAIM_SET "WHERE seq IN (SELECT value FROM json_each(?3)) AND status = 'queued' "
        "RETURNING " TASK_COLS,
    [ST_QUEUE_NEXT_DUE] =
        "SELECT run_at FROM tasks WHERE status = 'queued' AND queue = ?1 ORDER BY run_at LIMIT 1",
    [ST_QUEUES_DUE] =
        "SELECT queue, MIN(run_at) FROM tasks WHERE status = 'queued' GROUP BY queue",
    [ST_QUEUE_RETRYING] =
        "SELECT seq, run_at, host FROM tasks WHERE status = 'queued' AND queue = ?1 "
        "AND attempts > attempts_uncounted ORDER BY run_at, seq LIMIT 1",
    [ST_RUNNING] =
        "SELECT queue, host, count(*) FROM tasks WHERE status = 'running' GROUP BY queue, host",
    [ST_FINISH_TASK] =
        "UPDATE tasks SET status = ?1, attempts = ?2, run_at = ?3, lease_until = NULL, "
        "updated_at = ?4, finished_at = ?5, response_status = ?6, response_headers = ?7, "
        "response_body = ?8, response_ms = ?9, error_code = ?10, error_message = ?11, "
        "attempts_uncounted = ?14 WHERE seq = ?12 AND claim_token = ?13 AND status = 'running'",
    [ST_INSERT_ATTEMPT] =
        "INSERT INTO attempts (task_seq, n, started_at, finished_at, duration_ms, status_code, "
        "error_code, error_message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_NOTE_OVERTAKEN] =
        "UPDATE attempts SET status_code = ?3, error_message = ?4 WHERE task_seq = ?1 AND n = ?2 "
        "AND error_code = 'cancelled' AND status_code IS NULL",
    [ST_INSERT_WEBHOOK] =
        "INSERT INTO webhooks (id, task_seq, task_id, url, body, status, attempts, next_at, "
        "lease_until, claim_token, created_at, updated_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?7, 0, ?6, ?8, ?9, ?6, ?6)",
    [ST_REQUEUE_ATTEMPTS] =
        "INSERT INTO attempts (task_seq, n, started_at, finished_at, duration_ms, status_code, "
        "error_code, error_message) SELECT seq, attempts + 1, COALESCE(started_at, ?1), ?1, "
        "MAX(0, ?1 - COALESCE(started_at, ?1)), NULL, 'interrupted', ?3 FROM tasks "
        "WHERE status = 'running' AND lease_until < ?2 AND (?4 IS NULL OR seq = ?4)",
    [ST_REQUEUE_TASKS] =
        "UPDATE tasks SET status = 'queued', attempts = attempts + 1, "
        "attempts_uncounted = attempts_uncounted + 1, run_at = MIN(run_at, ?1), "
        "lease_until = NULL, updated_at = ?1, claim_token = claim_token + 1, "
        "error_code = 'interrupted', error_message = ?3 "
        "WHERE status = 'running' AND lease_until < ?2 AND (?4 IS NULL OR seq = ?4)",
    [ST_REQUEUE_WEBHOOKS] =
        "UPDATE webhooks SET status = 'pending', lease_until = NULL, next_at = ?1, "
        "updated_at = ?1, claim_token = claim_token + 1 "
        "WHERE status = 'delivering' AND lease_until < ?2 AND (?4 IS NULL OR seq = ?4)",
    [ST_CLAIM_WEBHOOKS] =
        "UPDATE webhooks SET status = 'delivering', lease_until = ?1 + ?2, updated_at = ?1, "
        "claim_token = claim_token + 1 WHERE seq IN (SELECT seq FROM webhooks "
        "WHERE status = 'pending' AND next_at <= ?1 ORDER BY next_at, seq LIMIT ?3) "
        "RETURNING seq, id, task_id, url, body, attempts, claim_token",
    [ST_FINISH_WEBHOOK] =
        "UPDATE webhooks SET status = ?1, attempts = ?2, next_at = ?3, lease_until = NULL, "
        "delivered_at = ?4, last_status_code = ?5, last_error = ?6, updated_at = ?7 "
        "WHERE seq = ?8 AND claim_token = ?9 AND status = 'delivering'",
    [ST_INSERT_WEBHOOK_ATTEMPT] =
        "INSERT INTO webhook_attempts (webhook_seq, n, started_at, finished_at, duration_ms, "
        "status_code, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_WEBHOOK_NEXT_DUE] =
        "SELECT next_at FROM webhooks WHERE status = 'pending' ORDER BY next_at LIMIT 1",
    [ST_CANCEL] =
        "UPDATE tasks SET status = 'cancelled', finished_at = ?2, updated_at = ?2, "
        "lease_until = NULL, claim_token = claim_token + 1, attempts = ?3, "
        "error_code = 'cancelled', error_message = 'cancelled by request' "
        "WHERE seq = ?1 AND status IN ('queued', 'running')",
    [ST_REPLAY] =
        "UPDATE tasks SET status = 'queued', queue = ?2, host = ?3, method = ?4, "
        "callback_url = ?5, headers = ?6, body = ?7, body_kind = ?8, webhook_url = ?9, "
        "metadata = ?10, max_retries = ?11, timeout_ms = ?12, run_at = ?13, updated_at = ?14, "
        "follow_redirects = ?15, "
        "started_at = NULL, finished_at = NULL, lease_until = NULL, "
        "claim_token = claim_token + 1, replays = replays + 1, attempts_uncounted = attempts, "
        "response_status = NULL, response_headers = NULL, response_body = NULL, "
        "response_ms = NULL, error_code = NULL, error_message = NULL "
        "WHERE seq = ?1 AND status IN ('completed', 'failed', 'cancelled')",
    [ST_SELECT] =
        "SELECT seq, id FROM tasks WHERE seq > ?1 AND seq <= ?2" FILTER " ORDER BY seq LIMIT ?8",
    [ST_IDEM_GET] =
        "SELECT request_hash, task_id FROM idempotency WHERE key = ?1 AND created_at >= ?2",
    [ST_IDEM_PUT] =
        "INSERT OR REPLACE INTO idempotency (key, request_hash, task_id, created_at) "
        "VALUES (?1, ?2, ?3, ?4)",
    [ST_QUEUE_PUT] =
        "INSERT OR REPLACE INTO queues (name, max_concurrency, rate_per_sec, burst, paused, "
        "default_retries, default_timeout_ms, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_QUEUE_DELETE] = "DELETE FROM queues WHERE name = ?1",
    [ST_QUEUES_ALL] =
        "SELECT name, max_concurrency, rate_per_sec, burst, paused, default_retries, "
        "default_timeout_ms FROM queues ORDER BY name",
    [ST_QUEUE_DEPTHS] =
        "SELECT queue, count(*), sum(run_at <= ?1) FROM tasks WHERE status = 'queued' "
        "AND queue > ?2 GROUP BY queue ORDER BY queue LIMIT ?3",
        /* the order is free (that of the index tasks_due), and so is starting
         * after a name: a page reads only the rows of its queues */
    [ST_QUEUE_DEPTH] =
        "SELECT count(*), sum(run_at <= ?1) FROM tasks WHERE status = 'queued' AND queue = ?2",
    [ST_PURGE_ATTEMPTS] =
        "DELETE FROM attempts WHERE task_seq IN (SELECT seq FROM tasks WHERE " FINISHED_BEFORE ")",
    [ST_PURGE_WEBHOOK_ATTEMPTS] =
        "DELETE FROM webhook_attempts WHERE webhook_seq IN (SELECT w.seq FROM webhooks w "
        "WHERE w.task_seq IN (SELECT seq FROM tasks WHERE " FINISHED_BEFORE "))",
    [ST_PURGE_WEBHOOKS] =
        "DELETE FROM webhooks WHERE task_seq IN (SELECT seq FROM tasks WHERE " FINISHED_BEFORE ")",
    [ST_PURGE_TASKS] = "DELETE FROM tasks WHERE " FINISHED_BEFORE,
    [ST_PURGE_IDEMPOTENCY] =
        "DELETE FROM idempotency WHERE key IN (SELECT key FROM idempotency "
        "WHERE created_at < ?1 LIMIT 1000)",
    /* Two subqueries: SQLite answers a lone MIN or MAX from the end of the
     * index, but scans the whole table for both in one SELECT. */
    [ST_MIN_MAX_SEQ] = "SELECT COALESCE((SELECT MIN(seq) FROM tasks), 0), "
                       "COALESCE((SELECT MAX(seq) FROM tasks), 0)",
    [ST_BACKLOG] =
        "SELECT (SELECT count(*) FROM tasks WHERE status = 'queued') + "
        "(SELECT count(*) FROM tasks WHERE status = 'running')",
    [ST_KV_GET] = "SELECT value FROM kv WHERE key = ?1",
    [ST_KV_PUT] = "INSERT OR IGNORE INTO kv (key, value) VALUES (?1, ?2)",
    [ST_GET_TASK] = "SELECT " TASK_COLS " FROM tasks WHERE id = ?1 AND (?2 IS NULL OR tenant = ?2)",
    [ST_GET_ATTEMPTS] =
        "SELECT n, started_at, finished_at, duration_ms, status_code, error_code, error_message "
        "FROM attempts WHERE task_seq = ?1 ORDER BY n",
    [ST_GET_WEBHOOK] =
        "SELECT id, status, attempts, next_at, delivered_at, last_status_code, last_error, url "
        "FROM webhooks WHERE task_seq = ?1 ORDER BY seq DESC LIMIT 1",
    [ST_GET_WEBHOOK_ATTEMPTS] =
        "SELECT w.id, a.n, a.started_at, a.finished_at, a.duration_ms, a.status_code, a.error "
        "FROM webhook_attempts a JOIN webhooks w ON w.seq = a.webhook_seq "
        "WHERE w.task_seq = ?1 ORDER BY w.seq, a.n",
    [ST_LIST_DESC] = "SELECT " TASK_COLS " FROM tasks WHERE seq < ?1 AND seq >= ?2" FILTER
                     " ORDER BY seq DESC LIMIT ?8",
    [ST_LIST_ASC] = "SELECT " TASK_COLS " FROM tasks WHERE seq > ?1 AND seq <= ?2" FILTER
                    " ORDER BY seq ASC LIMIT ?8",
    [ST_COUNT_TASKS] = "SELECT count(*) FROM tasks",
    [ST_EXPIRED_TASKS] = "SELECT seq FROM tasks WHERE status = 'running' AND lease_until < ?1",
    [ST_EXPIRED_WEBHOOKS] =
        "SELECT seq FROM webhooks WHERE status = 'delivering' AND lease_until < ?1",
    /* After a wall-clock step of ?1 ms seen at ?2 (the new time): waits that
     * were relative when decided (retry backoffs, webhook schedules) keep
     * their length, and work that was due stays due. A first attempt's
     * runAt is a point in time and stays put. */
    [ST_SHIFT_TASKS] =
        "UPDATE tasks SET run_at = run_at + ?1 WHERE status = 'queued' "
        "AND (attempts > 0 OR run_at <= ?2 - ?1)",
    [ST_SHIFT_WEBHOOKS] = "UPDATE webhooks SET next_at = next_at + ?1 WHERE status = 'pending'",
    /* A write that needs fresh space, to tell whether the store takes writes
     * again (kept: replacing it each time is the probe). */
    [ST_PROBE] = "INSERT OR REPLACE INTO kv (key, value) VALUES ('writer.probe', randomblob(?1))",
    [ST_SCHEDULE_GET] = "SELECT " SCHEDULE_COLS " FROM schedules WHERE tenant = ?1 AND name = ?2",
    [ST_SCHEDULE_INSERT] =
        "INSERT INTO schedules (tenant, name, cron, task, paused, next_run_at, created_at, "
        "updated_at, timezone) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
    [ST_SCHEDULE_UPDATE] =
        "UPDATE schedules SET cron = ?3, task = ?4, paused = ?5, next_run_at = ?6, updated_at = ?7, "
        "timezone = ?8 WHERE tenant = ?1 AND name = ?2",
    [ST_SCHEDULE_DELETE] = "DELETE FROM schedules WHERE tenant = ?1 AND name = ?2",
    [ST_SCHEDULE_RAN] =
        "UPDATE schedules SET last_run_at = ?3, last_task_id = COALESCE(?4, last_task_id), "
        "last_error = ?5, runs = runs + (?4 IS NOT NULL), "
        "next_run_at = CASE WHEN ?6 THEN ?7 ELSE next_run_at END "
        "WHERE tenant = ?1 AND name = ?2",
    [ST_SCHEDULES_DUE] =
        "SELECT " SCHEDULE_COLS " FROM schedules WHERE next_run_at <= ?1 ORDER BY next_run_at LIMIT ?2",
    [ST_SCHEDULE_NEXT_DUE] =
        "SELECT next_run_at FROM schedules WHERE next_run_at IS NOT NULL ORDER BY next_run_at LIMIT 1",
    [ST_SCHEDULE_SET_NEXT] = "UPDATE schedules SET next_run_at = ?3 WHERE tenant = ?1 AND name = ?2",
    [ST_SCHEDULES_WAITING] =
        "SELECT " SCHEDULE_COLS " FROM schedules WHERE (tenant, name) > (?1, ?2) "
        "AND next_run_at IS NOT NULL ORDER BY tenant, name LIMIT ?3",
    [ST_SCHEDULES_LIST] =
        "SELECT " SCHEDULE_COLS " FROM schedules WHERE tenant = ?1 AND name > ?2 ORDER BY name LIMIT ?3",
};

struct sq_conn {
    struct sq_store *store;
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT];
    char err[256];
    bool unavailable; /* the last failure was the database refusing writes */
};

/* ---- helpers ---- */

static void note_failure(struct sq_conn *c, const char *what)
{
    snprintf(c->err, sizeof c->err, "%s: %s", what, sqlite3_errmsg(c->db));
    switch (sqlite3_errcode(c->db) & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_NOMEM:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        c->unavailable = true;
        break;
    default:
        c->unavailable = false;
    }
}

/* Keeps why the last call failed and returns STORE_ERROR. */
static int fail(struct sq_conn *c, const char *what)
{
    note_failure(c, what);
    return STORE_ERROR;
}

static sqlite3_stmt *stmt(struct sq_conn *c, enum stmt_id id)
{
    if (!c->stmt[id]) {
        if (sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->stmt[id],
                               NULL) != SQLITE_OK) {
            fail(c, "prepare");
            log_msg(LOG_ERROR, "store.prepare_failed", "statement=%d error=\"%s\"", (int)id, c->err);
            return NULL;
        }
    } else {
        sqlite3_reset(c->stmt[id]);
        sqlite3_clear_bindings(c->stmt[id]);
    }
    return c->stmt[id];
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v) sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else sqlite3_bind_null(s, i);
}

static void bind_blob(sqlite3_stmt *s, int i, const void *v, size_t len)
{
    if (v) sqlite3_bind_blob64(s, i, v, len, SQLITE_STATIC);
    else sqlite3_bind_null(s, i);
}

/* Binds v, or NULL for 0 (an unset time or limit). */
static void bind_opt_int64(sqlite3_stmt *s, int i, int64_t v)
{
    if (v) sqlite3_bind_int64(s, i, v);
    else sqlite3_bind_null(s, i);
}

static char *col_text(sqlite3_stmt *s, int i)
{
    const unsigned char *v = sqlite3_column_text(s, i);
    return v ? xstrndup((const char *)v, (size_t)sqlite3_column_bytes(s, i)) : NULL;
}

static char *col_blob(sqlite3_stmt *s, int i, size_t *len)
{
    const void *v = sqlite3_column_blob(s, i);
    *len = (size_t)sqlite3_column_bytes(s, i);
    return v ? xstrndup(v, *len) : NULL;
}

/* Runs a statement that returns no rows and resets it. */
static int exec_stmt(struct sq_conn *c, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return fail(c, what);
    return STORE_OK;
}

/* A row as a task. answer: it is read to be shown (GET, lists, the answer
 * to a cancel or replay), so the daemon's own header objects are checked
 * too; a claim leaves them, as the dispatcher reads the headers for its
 * call itself and the attempt replaces the response's. */
static struct task *row_to_task(sqlite3_stmt *s, bool answer)
{
    struct task *t = xcalloc(1, sizeof *t);
    int i = 0;
    t->seq = sqlite3_column_int64(s, i++);
    const unsigned char *id = sqlite3_column_text(s, i++);
    snprintf(t->id, sizeof t->id, "%s", id ? (const char *)id : "");
    t->tenant = col_text(s, i++);
    t->queue = col_text(s, i++);
    t->host = col_text(s, i++);
    const unsigned char *st = sqlite3_column_text(s, i++);
    if (!st || task_status_parse((const char *)st, &t->status)) t->status = TASK_FAILED;
    t->method = col_text(s, i++);
    t->callback_url = col_text(s, i++);
    t->headers_json = col_text(s, i++);
    t->body = col_blob(s, i++, &t->body_len);
    t->body_kind = (enum task_body_kind)sqlite3_column_int(s, i++);
    t->webhook_url = col_text(s, i++);
    t->metadata_json = col_text(s, i++);
    t->max_retries = sqlite3_column_int(s, i++);
    t->timeout_ms = sqlite3_column_int64(s, i++);
    t->follow_redirects = sqlite3_column_int(s, i++) != 0;
    t->attempts = sqlite3_column_int(s, i++);
    t->replays = sqlite3_column_int(s, i++);
    t->attempts_uncounted = sqlite3_column_int(s, i++);
    t->idempotency_key = col_text(s, i++);
    t->run_at_ms = sqlite3_column_int64(s, i++);
    t->created_at_ms = sqlite3_column_int64(s, i++);
    t->updated_at_ms = sqlite3_column_int64(s, i++);
    t->started_at_ms = sqlite3_column_int64(s, i++);
    t->finished_at_ms = sqlite3_column_int64(s, i++);
    t->lease_until_ms = sqlite3_column_int64(s, i++);
    t->claim_token = sqlite3_column_int64(s, i++);
    t->response_status = sqlite3_column_int(s, i++);
    t->response_headers_json = col_text(s, i++);
    t->response_body = col_blob(s, i++, &t->response_body_len);
    t->response_ms = sqlite3_column_int64(s, i++);
    t->error_code = col_text(s, i++);
    t->error_message = col_text(s, i++);
    t->schedule = col_text(s, i++);
    /* Only rows an earlier version wrote (the client's JSON) or a damaged
     * file (the daemon's own header objects) can need it: what leaves the
     * daemon (answers, calls, webhooks) stays JSON, written as stored. */
    if (t->body_kind == TASK_BODY_JSON) task_json_repair(&t->body, &t->body_len);
    task_json_repair(&t->metadata_json, NULL);
    if (answer) {
        task_json_object_check(&t->headers_json);
        task_json_object_check(&t->response_headers_json);
    }
    return t;
}

/* Steps s collecting tasks; resets s. */
/* The rows of s as tasks; with max_bytes, none after the bodies and
 * responses read add up to that many (*cut then true; a claim, whose rows
 * are already claimed, passes 0). */
static int collect_tasks(struct sq_conn *c, sqlite3_stmt *s, const char *what, bool answer,
                         size_t max_bytes, struct task ***out, size_t *n_out, bool *cut)
{
    struct task **list = NULL;
    size_t n = 0, cap = 0, bytes = 0;
    int rc;
    *cut = false;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (max_bytes && bytes >= max_bytes) {
            *cut = true;
            rc = SQLITE_DONE;
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            list = xrealloc(list, cap * sizeof *list);
        }
        list[n] = row_to_task(s, answer);
        bytes += list[n]->body_len + list[n]->response_body_len;
        n++;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        for (size_t i = 0; i < n; i++) task_free(list[i]);
        free(list);
        *out = NULL;
        *n_out = 0;
        return fail(c, what);
    }
    *out = list;
    *n_out = n;
    return STORE_OK;
}

static char *status_json(unsigned mask)
{
    if (!mask) return NULL;
    struct buf b;
    buf_init(&b, 256);
    buf_append(&b, "[", 1);
    bool first = true;
    for (int st = TASK_QUEUED; st <= TASK_CANCELLED; st++) {
        if (!(mask & (1u << st))) continue;
        buf_appendf(&b, "%s\"%s\"", first ? "" : ",", task_status_name((enum task_status)st));
        first = false;
    }
    buf_append(&b, "]", 1);
    return buf_steal(&b, NULL);
}

/* Binds FILTER's ?3..?7; *statuses must be freed after the statement ran. */
static void bind_filter(sqlite3_stmt *s, const struct task_filter *f, char **statuses)
{
    *statuses = status_json(f->status_mask);
    bind_text(s, 3, *statuses);
    bind_text(s, 4, f->queue);
    bind_opt_int64(s, 5, f->created_after_ms);
    bind_opt_int64(s, 6, f->created_before_ms);
    bind_text(s, 7, f->tenant);
    bind_text(s, 9, f->schedule);
}

static int min_max_seq(struct sq_conn *c, int64_t *min_seq, int64_t *max_seq)
{
    sqlite3_stmt *s = stmt(c, ST_MIN_MAX_SEQ);
    if (!s) return STORE_ERROR;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *min_seq = sqlite3_column_int64(s, 0);
        *max_seq = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : fail(c, "min/max seq");
}

/* ---- open, migrate, close ---- */

static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t err_len)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, err_len, "%s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int configure(sqlite3 *db, const struct sq_store *s, char *err, size_t err_len)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "PRAGMA busy_timeout = %" PRId64 "; PRAGMA synchronous = %s; "
             "PRAGMA foreign_keys = OFF; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16000;",
             s->busy_timeout_ms, s->sync == CONFIG_SYNC_FULL ? "FULL" : "NORMAL");
    return exec_sql(db, sql, err, err_len);
}

/* Migration number from its file name, "0001_init.sql" -> 1. */
static int migration_version(const char *name)
{
    return atoi(name);
}

static int migrate(sqlite3 *db, char *err, size_t err_len)
{
    char why[512];
    if (exec_sql(db,
                 "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                 "name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
                 why, sizeof why)) {
        snprintf(err, err_len, "cannot create schema_migrations: %.200s", why);
        return -1;
    }
    sqlite3_stmt *q = NULL;
    int current = 0, newest = 0;
    if (sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", -1, &q,
                           NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        current = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    for (const struct embedded_file *m = embedded_migrations; m->name; m++)
        newest = migration_version(m->name);
    if (current > newest) {
        snprintf(err, err_len,
                 "the database is at schema version %d, newer than this binary knows (%d); run a "
                 "newer asyncqueue",
                 current, newest);
        return -1;
    }
    for (const struct embedded_file *m = embedded_migrations; m->name; m++) {
        int v = migration_version(m->name);
        if (v <= current) continue;
        char *record = sqlite3_mprintf(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%d, %Q, %lld);", v,
            m->name, (long long)util_now_ms());
        int failed = exec_sql(db, "BEGIN IMMEDIATE", why, sizeof why) ||
                     exec_sql(db, m->data, why, sizeof why) || exec_sql(db, record, why, sizeof why) ||
                     exec_sql(db, "COMMIT", why, sizeof why);
        sqlite3_free(record);
        if (failed) {
            char ignored[64];
            exec_sql(db, "ROLLBACK", ignored, sizeof ignored);
            snprintf(err, err_len, "migration %.60s failed: %.200s", m->name, why);
            return -1;
        }
        log_msg(LOG_INFO, "store.migrated", "migration=%s", m->name);
    }
    return 0;
}

/* SQLite counts the memory it allocates under one global mutex, on every
 * allocation, in every thread; nothing here reads the counts. Must run
 * before SQLite initialises (a later call is refused, harmlessly). */
static void no_memstatus(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static void *sq_open(const struct config *cfg, bool shared, char *err, size_t err_len)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, no_memstatus);
    struct sq_store *s = xcalloc(1, sizeof *s);
    s->path = xstrdup(cfg->db);
    s->sync = cfg->synchronous;
    s->busy_timeout_ms = cfg->busy_timeout_ms;
    s->lock_fd = -1;
    s->wal_fd = -1;
    sqlite3 *db = NULL;
    char why[512];

    if (!shared) {
        s->lock_fd = open(s->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (s->lock_fd < 0) {
            snprintf(err, err_len, "%s: cannot open database file: %s", s->path, strerror(errno));
            goto fail;
        }
        if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            snprintf(err, err_len, "%s: %s", s->path,
                     errno == EWOULDBLOCK ? "another asyncqueue daemon is using this database"
                                          : strerror(errno));
            goto fail;
        }
    }
    if (sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, err_len, "%s: %s", s->path, db ? sqlite3_errmsg(db) : "cannot open");
        goto fail;
    }
    sqlite3_stmt *q = NULL;
    const char *mode = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        mode = (const char *)sqlite3_column_text(q, 0);
    bool wal = mode && strcmp(mode, "wal") == 0;
    sqlite3_finalize(q);
    if (!wal) {
        snprintf(err, err_len, "%s: cannot switch to WAL mode: %s (is it a SQLite database on a "
                 "local, writable file system?)", s->path, sqlite3_errmsg(db));
        goto fail;
    }
    if (configure(db, s, why, sizeof why) || migrate(db, why, sizeof why)) {
        snprintf(err, err_len, "%.200s: %.300s", s->path, why);
        goto fail;
    }
    /* Every statement once: tables that differ from what the migrations
     * made (a development build's file from before the first migration was
     * final, or a hand edit) are refused here, saying so, rather than by
     * the first query that meets them. */
    for (int id = 0; id < ST_COUNT; id++) {
        if (sqlite3_prepare_v2(db, stmt_sql[id], -1, &q, NULL) != SQLITE_OK) {
            snprintf(err, err_len, "%.200s: its tables do not match this build's (%.120s): made by "
                     "a development build before the first release, or changed by hand; restore "
                     "a backup or start on a new file", s->path, sqlite3_errmsg(db));
            goto fail;
        }
        sqlite3_finalize(q);
    }
    sqlite3_close(db);
    return s;
fail:
    sqlite3_close(db);
    if (s->lock_fd >= 0) close(s->lock_fd);
    free(s->path);
    free(s);
    return NULL;
}

static void sq_close(void *impl)
{
    struct sq_store *s = impl;
    if (s->wal_fd >= 0) close(s->wal_fd);
    if (s->lock_fd >= 0) close(s->lock_fd); /* releases the flock */
    free(s->path);
    free(s);
}

static void *sq_conn_open(void *store_impl)
{
    struct sq_store *s = store_impl;
    struct sq_conn *c = xcalloc(1, sizeof *c);
    c->store = s;
    char why[256];
    if (sqlite3_open_v2(s->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        configure(c->db, s, why, sizeof why)) {
        log_msg(LOG_ERROR, "store.connect_failed", "db=%s error=\"%s\"", s->path,
                c->db ? sqlite3_errmsg(c->db) : "cannot open");
        sqlite3_close(c->db);
        free(c);
        return NULL;
    }
    return c;
}

static void sq_conn_close(void *impl)
{
    struct sq_conn *c = impl;
    for (int i = 0; i < ST_COUNT; i++) sqlite3_finalize(c->stmt[i]);
    sqlite3_close(c->db);
    free(c);
}

size_t store_sqlite_statements(const char *const **sql)
{
    *sql = stmt_sql;
    return ST_COUNT;
}

static const char *sq_conn_error(void *impl)
{
    struct sq_conn *c = impl;
    return c->err[0] ? c->err : "no error";
}

static bool sq_conn_unavailable(void *impl)
{
    return ((struct sq_conn *)impl)->unavailable;
}

static int run_simple(struct sq_conn *c, enum stmt_id id, const char *what)
{
    sqlite3_stmt *s = stmt(c, id);
    if (!s) return STORE_ERROR;
    int rc = exec_stmt(c, s, what);
    sqlite3_reset(s);
    return rc;
}

static int sq_begin(void *impl) { return run_simple(impl, ST_BEGIN, "begin"); }
static int sq_commit(void *impl) { return run_simple(impl, ST_COMMIT, "commit"); }

/* One connection (the writer's) stops syncing at commit; sq_sync syncs the
 * WAL file through a descriptor of our own: fdatasync() flushes the file,
 * whichever descriptor wrote it. Frames a checkpoint has copied into the
 * database are synced there by SQLite before the WAL is reused, so a sync
 * that comes later loses nothing. The WAL file exists from the first
 * transaction on and is removed only when the last connection closes. */
static bool sq_defer_sync(void *impl)
{
    struct sq_conn *c = impl;
    struct sq_store *s = c->store;
    if (s->sync != CONFIG_SYNC_FULL) return false;
    if (s->wal_fd < 0) {
        /* The name SQLite itself uses (it resolves symbolic links), so the
         * file synced is the WAL, never a stray file beside a link. */
        const char *wal = sqlite3_filename_wal(sqlite3_db_filename(c->db, "main"));
        s->wal_fd = wal ? open(wal, O_RDWR | O_CLOEXEC) : -1;
        if (s->wal_fd < 0) {
            log_msg(LOG_WARN, "store.sync_not_deferred", "file=%s error=\"%s\" note=\"every commit "
                    "syncs by itself\"", wal ? wal : s->path, strerror(errno));
            return false;
        }
    }
    return sqlite3_exec(c->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) == SQLITE_OK;
}

static int sq_sync(void *impl)
{
    struct sq_store *s = impl;
    return s->wal_fd < 0 ? 0 : fdatasync(s->wal_fd);
}

static void sq_rollback(void *impl)
{
    struct sq_conn *c = impl;
    /* A failed COMMIT may already have rolled back; then this is a no-op. */
    if (!sqlite3_get_autocommit(c->db)) run_simple(c, ST_ROLLBACK, "rollback");
}


/* ---- writes ---- */

static int sq_task_insert(void *impl, struct task *t)
{
    struct sq_conn *c = impl;
    sqlite3_stmt *s = stmt(c, ST_INSERT_TASK);
    if (!s) return STORE_ERROR;
    bind_text(s, 1, t->id);
    bind_text(s, 2, t->tenant ? t->tenant : "");
    bind_text(s, 3, t->queue);
    bind_text(s, 4, t->host ? t->host : "");
    bind_text(s, 5, t->method);
    bind_text(s, 6, t->callback_url);
    bind_text(s, 7, t->headers_json);
    bind_blob(s, 8, t->body, t->body_len);
    sqlite3_bind_int(s, 9, (int)t->body_kind);
    bind_text(s, 10, t->webhook_url);
    bind_text(s, 11, t->metadata_json);
    sqlite3_bind_int(s, 12, t->max_retries);
    sqlite3_bind_int64(s, 13, t->timeout_ms);
    bind_text(s, 14, t->idempotency_key);
    sqlite3_bind_int64(s, 15, t->run_at_ms);
    sqlite3_bind_int64(s, 16, t->created_at_ms);
    sqlite3_bind_int(s, 17, t->follow_redirects ? 1 : 0);
    sqlite3_bind_text(s, 18, task_status_name(t->status), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 19, t->updated_at_ms ? t->updated_at_ms : t->created_at_ms);
    bind_opt_int64(s, 20, t->started_at_ms);
    bind_opt_int64(s, 21, t->lease_until_ms);
    sqlite3_bind_int64(s, 22, t->claim_token);
    bind_text(s, 23, t->schedule);
    int rc = exec_stmt(c, s, "insert task");
    if (rc == STORE_OK) t->seq = sqlite3_last_insert_rowid(c->db);
    return rc;
}

static char *hosts_json(const char *const *hosts, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(hosts[i]));
    char *s = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    return s;
}

/* UPDATE ... RETURNING gives rows in no defined order; callers start the
 * calls in the order they get them, which must be the due order. */
static int by_due(const void *a, const void *b)
{
    const struct task *x = *(const struct task *const *)a, *y = *(const struct task *const *)b;
    if (x->run_at_ms != y->run_at_ms) return x->run_at_ms < y->run_at_ms ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The due candidates of queue, in due order, that f->take accepts, as a
 * JSON array of seqs for ST_CLAIM_SEQS. */
static int pick_candidates(struct sq_conn *c, const char *queue, int64_t now_ms, int limit,
                           const char *hosts, const struct claim_filter *f, char **seqs)
{
    sqlite3_stmt *s = stmt(c, ST_DUE_CANDIDATES);
    if (!s) return STORE_ERROR;
    bind_text(s, 1, queue);
    sqlite3_bind_int64(s, 2, now_ms);
    bind_text(s, 3, hosts);
    /* Look further than limit: some candidates' hosts may be out of room. */
    sqlite3_bind_int(s, 4, limit < 64 ? 256 : limit * 4);
    struct buf b;
    buf_init(&b, 1u << 20);
    buf_append(&b, "[", 1);
    int taken = 0, rc = SQLITE_DONE;
    while (taken < limit && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (!f->take(f->arg, (const char *)sqlite3_column_text(s, 1))) continue;
        buf_appendf(&b, "%s%lld", taken ? "," : "", (long long)sqlite3_column_int64(s, 0));
        taken++;
    }
    if (rc == SQLITE_ROW) rc = SQLITE_DONE; /* stopped at limit */
    sqlite3_reset(s);
    buf_append(&b, "]", 1);
    *seqs = buf_steal(&b, NULL);
    if (rc != SQLITE_DONE) {
        free(*seqs);
        *seqs = NULL;
        return fail(c, "claim candidates");
    }
    return STORE_OK;
}

static int sq_tasks_claim(void *impl, const char *queue, int64_t only_seq, int64_t now_ms,
                          int64_t lease_grace_ms, int limit, const struct claim_filter *f,
                          struct task ***out, size_t *n_out)
{
    struct sq_conn *c = impl;
    *out = NULL;
    *n_out = 0;
    char *hosts = NULL, *seqs = NULL;
    enum stmt_id id = only_seq > 0 ? ST_CLAIM_SEQ : f && f->take ? ST_CLAIM_SEQS : ST_CLAIM_TASKS;
    if (only_seq <= 0) hosts = hosts_json(f ? f->exclude_hosts : NULL, f ? f->n_exclude : 0);
    if (id == ST_CLAIM_SEQS && pick_candidates(c, queue, now_ms, limit, hosts, f, &seqs) != STORE_OK) {
        free(hosts);
        return STORE_ERROR;
    }
    sqlite3_stmt *s = stmt(c, id);
    if (!s) {
        free(hosts);
        free(seqs);
        return STORE_ERROR;
    }
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int64(s, 2, lease_grace_ms);
    if (id == ST_CLAIM_SEQ) {
        sqlite3_bind_int64(s, 3, only_seq);
    } else if (id == ST_CLAIM_SEQS) {
        bind_text(s, 3, seqs);
    } else {
        bind_text(s, 3, queue);
        bind_text(s, 4, hosts);
        sqlite3_bind_int(s, 5, limit);
    }
    bool cut;
    int rc = collect_tasks(c, s, "claim tasks", false, 0, out, n_out, &cut);
    free(hosts);
    free(seqs);
    if (rc == STORE_OK && *n_out > 1) qsort(*out, *n_out, sizeof **out, by_due);
    return rc;
}

static int sq_queue_next_due(void *impl, const char *queue, int64_t *due_ms)
{
    struct sq_conn *c = impl;
    sqlite3_stmt *s = stmt(c, ST_QUEUE_NEXT_DUE);
    if (!s) return STORE_ERROR;
    bind_text(s, 1, queue);
    int rc = sqlite3_step(s);
    *due_ms = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : INT64_MAX;
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK : fail(c, "queue next due");
}

static int sq_queue_retrying(void *impl, const char *queue, int64_t *seq, int64_t *run_at_ms,
                             char **host)
{
    struct sq_conn *c = impl;
    *seq = 0;
    *run_at_ms = 0;
    *host = NULL;
    sqlite3_stmt *s = stmt(c, ST_QUEUE_RETRYING);
    if (!s) return STORE_ERROR;
    bind_text(s, 1, queue);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *seq = sqlite3_column_int64(s, 0);
        *run_at_ms = sqlite3_column_int64(s, 1);
        const char *h = (const char *)sqlite3_column_text(s, 2);
        *host = h ? xstrdup(h) : NULL;
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK : fail(c, "queue retrying");
}

static int sq_queues_due_each(void *impl, void (*fn)(void *, const char *, int64_t), void *arg)
{
    struct sq_conn *c = impl;
    sqlite3_stmt *s = stmt(c, ST_QUEUES_DUE);
    if (!s) return STORE_ERROR;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        fn(arg, (const char *)sqlite3_column_text(s, 0), sqlite3_column_int64(s, 1));
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : fail(c, "queues due");
}

static int sq_running_each(void *impl, void (*fn)(void *, const char *, const char *, int),
                           void *arg)
{
    struct sq_conn *c = impl;
    sqlite3_stmt *s = stmt(c, ST_RUNNING);
    if (!s) return STORE_ERROR;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        fn(arg, (const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1),
           sqlite3_column_int(s, 2));
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : fail(c, "running counts");
}

static int sq_webhook_insert(void *impl, const struct task *t, const char *body,
                             int64_t lease_until_ms, struct webhook_msg *claimed)
{
    struct sq_conn *c = impl;
    sqlite3_stmt *s = stmt(c, ST_INSERT_WEBHOOK);
    if (!s) return STORE_ERROR;
    char uuid[ID_LEN], id[48];
    id_new(t->updated_at_ms, uuid);
    snprintf(id, sizeof id, "msg_%s", uuid);
    bind_text(s, 1, id);
    sqlite3_bind_int64(s, 2, t->seq);
    bind_text(s, 3, t->id);
    bind_text(s, 4, t->webhook_url);
    bind_blob(s, 5, body, strlen(body));
    sqlite3_bind_int64(s, 6, t->updated_at_ms);
    bind_text(s, 7, claimed ? "delivering" : "pending");
    if (claimed) sqlite3_bind_int64(s, 8, lease_until_ms);
    else sqlite3_bind_null(s, 8);
    sqlite3_bind_int(s, 9, claimed ? 1 : 0); /* what a first claim makes of it */
    int rc = exec_stmt(c, s, "insert webhook");
    if (rc != STORE_OK || !claimed) return rc;
    claimed->seq = sqlite3_last_insert_rowid(c->db);
    snprintf(claimed->id, sizeof claimed->id, "%s", id);
    claimed->claim_token = 1;
    return STORE_OK;
}

static int insert_attempt(struct sq_conn *c, int64_t task_seq, const struct attempt *a)
{
    sqlite3_stmt *s = stmt(c, ST_INSERT_ATTEMPT);
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, task_seq);
    sqlite3_bind_int(s, 2, a->n);
    sqlite3_bind_int64(s, 3, a->started_at_ms);
    sqlite3_bind_int64(s, 4, a->finished_at_ms);
    sqlite3_bind_int64(s, 5, a->duration_ms);
    if (a->status_code > 0) sqlite3_bind_int(s, 6, a->status_code);
    else sqlite3_bind_null(s, 6);
    bind_text(s, 7, a->error_code);
    bind_text(s, 8, a->error_message);
    return exec_stmt(c, s, "insert attempt");
}

/* A result that came too late: the task was cancelled or its lease lost
 * meanwhile, and nothing of it is stored. But when a cancel recorded this
 * attempt as aborted, and the target had in fact answered, the attempt
 * says so: the target may have done the work, and "aborted" told the
 * reader it had not. */
static int note_overtaken(struct sq_conn *c, int64_t task_seq, const struct attempt *a)
{
    if (a->status_code <= 0) return STORE_OK;
    sqlite3_stmt *s = stmt(c, ST_NOTE_OVERTAKEN);
    if (!s) return STORE_ERROR;
    char msg[200];
    snprintf(msg, sizeof msg, "cancelled by request while running; the target had answered %d, but the "
             "cancel was stored first and the answer was discarded", a->status_code);
    sqlite3_bind_int64(s, 1, task_seq);
    sqlite3_bind_int(s, 2, a->n);
    sqlite3_bind_int(s, 3, a->status_code);
    bind_text(s, 4, msg);
    return exec_stmt(c, s, "note overtaken attempt");
}

static int sq_task_finish(void *impl, const struct task_result *r, bool *applied)
{
    struct sq_conn *c = impl;
    const struct task *t = r->task;
    *applied = false;
    sqlite3_stmt *s = stmt(c, ST_FINISH_TASK);
    if (!s) return STORE_ERROR;
    bind_text(s, 1, task_status_name(t->status));
    sqlite3_bind_int(s, 2, t->attempts);
    sqlite3_bind_int64(s, 3, t->run_at_ms);
    sqlite3_bind_int64(s, 4, t->updated_at_ms);
    bind_opt_int64(s, 5, t->finished_at_ms);
    if (t->response_status > 0) sqlite3_bind_int(s, 6, t->response_status);
    else sqlite3_bind_null(s, 6);
    bind_text(s, 7, t->response_headers_json);
    bind_blob(s, 8, t->response_body, t->response_body_len);
    sqlite3_bind_int64(s, 9, t->response_ms);
    bind_text(s, 10, t->error_code);
    bind_text(s, 11, t->error_message);
    sqlite3_bind_int64(s, 12, t->seq);
    sqlite3_bind_int64(s, 13, t->claim_token);
    sqlite3_bind_int(s, 14, t->attempts_uncounted);
    int rc = exec_stmt(c, s, "finish task");
    if (rc != STORE_OK) return rc;
    if (sqlite3_changes(c->db) == 0) return note_overtaken(c, t->seq, r->attempt);
    *applied = true;
    return insert_attempt(c, t->seq, r->attempt);
}

/* Runs the requeue statements for every expired lease (seq 0) or for one. */
static int requeue_leases(struct sq_conn *c, int64_t now_ms, int64_t lease_before_ms,
                          const char *reason, bool webhook, int64_t seq, int *count)
{
    static const enum stmt_id task_steps[] = {ST_REQUEUE_ATTEMPTS, ST_REQUEUE_TASKS};
    static const enum stmt_id webhook_steps[] = {ST_REQUEUE_WEBHOOKS};
    const enum stmt_id *steps = webhook ? webhook_steps : task_steps;
    size_t n = webhook ? ARRAY_LEN(webhook_steps) : ARRAY_LEN(task_steps);
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *s = stmt(c, steps[i]);
        if (!s) return STORE_ERROR;
        sqlite3_bind_int64(s, 1, now_ms);
        sqlite3_bind_int64(s, 2, lease_before_ms);
        if (!webhook) bind_text(s, 3, reason);
        if (seq > 0) sqlite3_bind_int64(s, 4, seq);
        int rc = exec_stmt(c, s, "requeue running");
        if (rc != STORE_OK) return rc;
        if (steps[i] == ST_REQUEUE_TASKS) *count += sqlite3_changes(c->db);
    }
    return STORE_OK;
}

/* The seqs of tasks (or webhooks) whose lease ended before lease_before_ms. */
static int expired_seqs(struct sq_conn *c, bool webhook, int64_t lease_before_ms, int64_t **out,
                        size_t *n)
{
    sqlite3_stmt *s = stmt(c, webhook ? ST_EXPIRED_WEBHOOKS : ST_EXPIRED_TASKS);
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, lease_before_ms);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        (*out)[(*n)++] = sqlite3_column_int64(s, 0);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : fail(c, "expired leases");
}

static int sq_requeue_running(void *impl, int64_t now_ms, int64_t lease_before_ms,
                              const char *reason, bool (*held)(void *, bool, int64_t),
                              void *held_arg, int *count)
{
    struct sq_conn *c = impl;
    *count = 0;
    int rc = STORE_OK;
    for (int webhook = 0; webhook <= 1 && rc == STORE_OK; webhook++) {
        if (!held) {
            rc = requeue_leases(c, now_ms, lease_before_ms, reason, webhook, 0, count);
            continue;
        }
        /* Usually none; one by one, skipping the leases still held. */
        int64_t *seqs = NULL;
        size_t n = 0;
        rc = expired_seqs(c, webhook, lease_before_ms, &seqs, &n);
        for (size_t i = 0; i < n && rc == STORE_OK; i++)
            if (!held(held_arg, webhook, seqs[i]))
                rc = requeue_leases(c, now_ms, lease_before_ms, reason, webhook, seqs[i], count);
        free(seqs);
    }
    return rc;
}

static int sq_shift_waits(void *impl, int64_t now_ms, int64_t step_ms, int *tasks, int *webhooks)
{
    struct sq_conn *c = impl;
    *tasks = *webhooks = 0;
    sqlite3_stmt *s = stmt(c, ST_SHIFT_TASKS);
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, step_ms);
    sqlite3_bind_int64(s, 2, now_ms);
    int rc = exec_stmt(c, s, "shift waits");
    if (rc != STORE_OK) return rc;
    *tasks = sqlite3_changes(c->db);
    s = stmt(c, ST_SHIFT_WEBHOOKS);
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, step_ms);
    rc = exec_stmt(c, s, "shift webhook waits");
    if (rc == STORE_OK) *webhooks = sqlite3_changes(c->db);
    return rc;
}

static int sq_write_probe(void *impl, int bytes)
{
    struct sq_conn *c = impl;
    sqlite3_stmt *s = stmt(c, ST_PROBE);
    if (!s) return STORE_ERROR;
    sqlite3_bind_int(s, 1, bytes);
    return exec_stmt(c, s, "write probe");
}

static int sq_webhooks_claim(void *impl, int64_t now_ms, int64_t lease_ms, int limit,
                             struct webhook_msg ***out, size_t *n_out)
{
    struct sq_conn *c = impl;
    *out = NULL;
    *n_out = 0;
    sqlite3_stmt *s = stmt(c, ST_CLAIM_WEBHOOKS);
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int64(s, 2, lease_ms);
    sqlite3_bind_int(s, 3, limit);
    struct webhook_msg **list = NULL;
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct webhook_msg *m = xcalloc(1, sizeof *m);
        m->seq = sqlite3_column_int64(s, 0);
        snprintf(m->id, sizeof m->id, "%s", (const char *)sqlite3_column_text(s, 1));
        snprintf(m->task_id, sizeof m->task_id, "%s", (const char *)sqlite3_column_text(s, 2));
        m->url = col_text(s, 3);
        m->body = col_blob(s, 4, &m->body_len);
        m->attempts = sqlite3_column_int(s, 5);
        m->claim_token = sqlite3_column_int64(s, 6);
        list = xrealloc(list, (n + 1) * sizeof *list);
        list[n++] = m;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        for (size_t i = 0; i < n; i++) webhook_msg_free(list[i]);
        free(list);
        return fail(c, "claim webhooks");
    }
    *out = list;
    *n_out = n;
    return STORE_OK;
}

static int sq_webhook_finish(void *impl, const struct webhook_result *r)
{
    struct sq_conn *c = impl;
    sqlite3_stmt *s = stmt(c, ST_FINISH_WEBHOOK);
    if (!s) return STORE_ERROR;
    bind_text(s, 1, r->delivered ? "delivered" : r->give_up ? "failed" : "pending");
    sqlite3_bind_int(s, 2, r->attempts);
    sqlite3_bind_int64(s, 3, r->delivered || r->give_up ? r->finished_at_ms : r->next_at_ms);
    bind_opt_int64(s, 4, r->delivered ? r->finished_at_ms : 0);
    if (r->status_code > 0) sqlite3_bind_int(s, 5, r->status_code);
    else sqlite3_bind_null(s, 5);
    bind_text(s, 6, r->error);
    sqlite3_bind_int64(s, 7, r->finished_at_ms);
    sqlite3_bind_int64(s, 8, r->seq);
    sqlite3_bind_int64(s, 9, r->claim_token);
    int rc = exec_stmt(c, s, "finish webhook");
    if (rc != STORE_OK || sqlite3_changes(c->db) == 0 || r->uncounted) return rc;

    s = stmt(c, ST_INSERT_WEBHOOK_ATTEMPT);
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, r->seq);
    sqlite3_bind_int(s, 2, r->attempts);
    sqlite3_bind_int64(s, 3, r->started_at_ms);
    sqlite3_bind_int64(s, 4, r->finished_at_ms);
    sqlite3_bind_int64(s, 5, r->duration_ms);
    if (r->status_code > 0) sqlite3_bind_int(s, 6, r->status_code);
    else sqlite3_bind_null(s, 6);
    bind_text(s, 7, r->error);
    return exec_stmt(c, s, "insert webhook attempt");
}

static int first_int64(struct sq_conn *c, enum stmt_id id, int64_t *out, bool *found)
{
    sqlite3_stmt *s = stmt(c, id);
    if (!s) return STORE_ERROR;
    int rc = sqlite3_step(s);
    *found = rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL;
    if (*found) *out = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return fail(c, "query");
    return STORE_OK;
}

static int sq_webhook_next_due(void *impl, int64_t *due_ms)
{
    bool found;
    if (first_int64(impl, ST_WEBHOOK_NEXT_DUE, due_ms, &found)) return STORE_ERROR;
    if (!found) *due_ms = INT64_MAX;
    return STORE_OK;
}

static int get_task_row(struct sq_conn *c, const char *id, const char *tenant, struct task **out)
{
    sqlite3_stmt *s = stmt(c, ST_GET_TASK);
    if (!s) return STORE_ERROR;
    bind_text(s, 1, id);
    bind_text(s, 2, tenant);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) *out = row_to_task(s, true);
    sqlite3_reset(s);
    if (rc == SQLITE_ROW) return STORE_OK;
    return rc == SQLITE_DONE ? STORE_NOT_FOUND : fail(c, "get task");
}

static int sq_task_cancel(void *impl, const char *id, const char *tenant, int64_t now_ms,
                          struct task **out, bool *was_running)
{
    struct sq_conn *c = impl;
    *out = NULL;
    *was_running = false;
    struct task *t = NULL;
    int rc = get_task_row(c, id, tenant, &t);
    if (rc != STORE_OK) return rc;
    if (task_status_final(t->status)) {
        *out = t;
        return STORE_CONFLICT;
    }
    *was_running = t->status == TASK_RUNNING;
    int attempts = t->attempts + (*was_running ? 1 : 0);
    sqlite3_stmt *s = stmt(c, ST_CANCEL);
    if (!s) goto error;
    sqlite3_bind_int64(s, 1, t->seq);
    sqlite3_bind_int64(s, 2, now_ms);
    sqlite3_bind_int(s, 3, attempts);
    if (exec_stmt(c, s, "cancel task") != STORE_OK) goto error;
    if (*was_running) {
        struct attempt a = {.n = attempts, .started_at_ms = t->started_at_ms ? t->started_at_ms : now_ms,
                            .finished_at_ms = now_ms, .error_code = "cancelled",
                            .error_message = "cancelled by request while running; the call was aborted"};
        a.duration_ms = a.finished_at_ms - a.started_at_ms;
        if (insert_attempt(c, t->seq, &a) != STORE_OK) goto error;
    }
    t->status = TASK_CANCELLED;
    t->attempts = attempts;
    t->finished_at_ms = now_ms;
    t->updated_at_ms = now_ms;
    t->lease_until_ms = 0;
    t->claim_token++;
    free(t->error_code);
    free(t->error_message);
    t->error_code = xstrdup("cancelled");
    t->error_message = xstrdup("cancelled by request");
    *out = t;
    return STORE_OK;
error:
    task_free(t);
    return STORE_ERROR;
}

static int sq_task_replay(void *impl, struct task *t)
{
    struct sq_conn *c = impl;
    sqlite3_stmt *s = stmt(c, ST_REPLAY);
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, t->seq);
    bind_text(s, 2, t->queue);
    bind_text(s, 3, t->host);
    bind_text(s, 4, t->method);
    bind_text(s, 5, t->callback_url);
    bind_text(s, 6, t->headers_json);
    bind_blob(s, 7, t->body, t->body_len);
    sqlite3_bind_int(s, 8, (int)t->body_kind);
    bind_text(s, 9, t->webhook_url);
    bind_text(s, 10, t->metadata_json);
    sqlite3_bind_int(s, 11, t->max_retries);
    sqlite3_bind_int64(s, 12, t->timeout_ms);
    sqlite3_bind_int64(s, 13, t->run_at_ms);
    sqlite3_bind_int64(s, 14, t->updated_at_ms);
    sqlite3_bind_int(s, 15, t->follow_redirects ? 1 : 0);
    int rc = exec_stmt(c, s, "replay task");
    if (rc != STORE_OK) return rc;
    if (sqlite3_changes(c->db) == 0) return STORE_CONFLICT;
    t->status = TASK_QUEUED;
    t->replays++;
    t->attempts_uncounted = t->attempts;
    t->started_at_ms = t->finished_at_ms = t->lease_until_ms = 0;
    t->claim_token++;
    t->response_status = 0;
    t->response_ms = 0;
    free(t->response_headers_json);
    free(t->response_body);
    free(t->error_code);
    free(t->error_message);
    t->response_headers_json = t->response_body = t->error_code = t->error_message = NULL;
    t->response_body_len = 0;
    return STORE_OK;
}

static int sq_tasks_select(void *impl, const struct task_filter *f, int64_t after_seq, int limit,
                           char (**ids)[ID_LEN], size_t *n_out, int64_t *last_seq, bool *more)
{
    struct sq_conn *c = impl;
    *ids = NULL;
    *n_out = 0;
    *more = false;
    int64_t min_seq, max_seq;
    if (min_max_seq(c, &min_seq, &max_seq)) return STORE_ERROR;
    if (after_seq < min_seq - 1) after_seq = min_seq - 1; /* no windows over seqs long gone */
    int64_t hi = after_seq + 20 * (int64_t)limit;
    sqlite3_stmt *s = stmt(c, ST_SELECT);
    if (!s) return STORE_ERROR;
    char *statuses;
    sqlite3_bind_int64(s, 1, after_seq);
    sqlite3_bind_int64(s, 2, hi);
    bind_filter(s, f, &statuses);
    sqlite3_bind_int(s, 8, limit);
    char (*list)[ID_LEN] = xcalloc((size_t)limit, ID_LEN);
    size_t n = 0;
    int64_t last = after_seq;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && n < (size_t)limit) {
        last = sqlite3_column_int64(s, 0);
        snprintf(list[n++], ID_LEN, "%s", (const char *)sqlite3_column_text(s, 1));
    }
    sqlite3_reset(s);
    free(statuses);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        free(list);
        return fail(c, "select tasks");
    }
    if (n < (size_t)limit) last = hi; /* the whole window was looked at */
    *ids = list;
    *n_out = n;
    *last_seq = last;
    *more = last < max_seq;
    return STORE_OK;
}

static int sq_idempotency_get(void *impl, const char *key, int64_t not_before_ms,
                              char **request_hash, char **task_id)
{
    struct sq_conn *c = impl;
    *request_hash = *task_id = NULL;
    sqlite3_stmt *s = stmt(c, ST_IDEM_GET);
    if (!s) return STORE_ERROR;
    bind_text(s, 1, key);
    sqlite3_bind_int64(s, 2, not_before_ms);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *request_hash = col_text(s, 0);
        *task_id = col_text(s, 1);
    }
    sqlite3_reset(s);
    if (rc == SQLITE_ROW) return STORE_OK;
    return rc == SQLITE_DONE ? STORE_NOT_FOUND : fail(c, "idempotency get");
}

static int sq_idempotency_put(void *impl, const char *key, const char *request_hash,
                              const char *task_id, int64_t now_ms)
{
    struct sq_conn *c = impl;
    sqlite3_stmt *s = stmt(c, ST_IDEM_PUT);
    if (!s) return STORE_ERROR;
    bind_text(s, 1, key);
    bind_text(s, 2, request_hash);
    bind_text(s, 3, task_id);
    sqlite3_bind_int64(s, 4, now_ms);
    return exec_stmt(c, s, "idempotency put");
}

static int sq_queue_put(void *impl, const char *name, const struct queue_settings *qs,
                        int64_t now_ms)
{
    struct sq_conn *c = impl;
    sqlite3_stmt *s = stmt(c, ST_QUEUE_PUT);
    if (!s) return STORE_ERROR;
    bind_text(s, 1, name);
    sqlite3_bind_int(s, 2, qs->max_concurrency);
    sqlite3_bind_double(s, 3, qs->rate_per_sec);
    sqlite3_bind_int(s, 4, qs->burst);
    sqlite3_bind_int(s, 5, qs->paused ? 1 : 0);
    if (qs->default_retries >= 0) sqlite3_bind_int(s, 6, qs->default_retries);
    else sqlite3_bind_null(s, 6);
    bind_opt_int64(s, 7, qs->default_timeout_ms);
    sqlite3_bind_int64(s, 8, now_ms);
    return exec_stmt(c, s, "queue put");
}

static int sq_queue_delete(void *impl, const char *name)
{
    struct sq_conn *c = impl;
    sqlite3_stmt *s = stmt(c, ST_QUEUE_DELETE);
    if (!s) return STORE_ERROR;
    bind_text(s, 1, name);
    int rc = exec_stmt(c, s, "queue delete");
    if (rc == STORE_OK && sqlite3_changes(c->db) == 0) return STORE_NOT_FOUND;
    return rc;
}

static int sq_queues_each(void *impl, void (*fn)(void *, const char *, const struct queue_settings *),
                          void *arg)
{
    struct sq_conn *c = impl;
    sqlite3_stmt *s = stmt(c, ST_QUEUES_ALL);
    if (!s) return STORE_ERROR;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct queue_settings qs;
        queue_settings_default(&qs);
        qs.max_concurrency = sqlite3_column_int(s, 1);
        qs.rate_per_sec = sqlite3_column_double(s, 2);
        qs.burst = sqlite3_column_int(s, 3);
        qs.paused = sqlite3_column_int(s, 4) != 0;
        if (sqlite3_column_type(s, 5) != SQLITE_NULL) qs.default_retries = sqlite3_column_int(s, 5);
        qs.default_timeout_ms = sqlite3_column_int64(s, 6);
        fn(arg, (const char *)sqlite3_column_text(s, 0), &qs);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : fail(c, "queues");
}

/* ---- schedules ---- */

static void row_to_schedule(sqlite3_stmt *s, struct schedule *out)
{
    *out = (struct schedule){0};
    util_strcopy(out->tenant, sizeof out->tenant, (const char *)sqlite3_column_text(s, 0));
    util_strcopy(out->name, sizeof out->name, (const char *)sqlite3_column_text(s, 1));
    out->cron = col_text(s, 2);
    out->task = col_text(s, 3);
    out->paused = sqlite3_column_int(s, 4) != 0;
    out->next_run_at_ms = sqlite3_column_int64(s, 5); /* NULL reads as 0 */
    out->last_run_at_ms = sqlite3_column_int64(s, 6);
    const unsigned char *id = sqlite3_column_text(s, 7);
    if (id) util_strcopy(out->last_task_id, sizeof out->last_task_id, (const char *)id);
    out->last_error = col_text(s, 8);
    out->runs = sqlite3_column_int64(s, 9);
    out->created_at_ms = sqlite3_column_int64(s, 10);
    out->updated_at_ms = sqlite3_column_int64(s, 11);
    util_strcopy(out->timezone, sizeof out->timezone, (const char *)sqlite3_column_text(s, 12));
}

static int sq_schedule_get(void *impl, const char *tenant, const char *name, struct schedule *out)
{
    struct sq_conn *c = impl;
    *out = (struct schedule){0};
    sqlite3_stmt *s = stmt(c, ST_SCHEDULE_GET);
    if (!s) return STORE_ERROR;
    bind_text(s, 1, tenant);
    bind_text(s, 2, name);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) row_to_schedule(s, out);
    sqlite3_reset(s);
    if (rc == SQLITE_ROW) return STORE_OK;
    if (rc == SQLITE_DONE) return STORE_NOT_FOUND;
    return fail(c, "schedule get");
}

static int sq_schedule_put(void *impl, const struct schedule *sc, bool *created)
{
    struct sq_conn *c = impl;
    /* The update, and the insert only when it changed no row: no read of
     * the row first to tell which. */
    for (int pass = 0; pass < 2; pass++) {
        sqlite3_stmt *s = stmt(c, pass ? ST_SCHEDULE_INSERT : ST_SCHEDULE_UPDATE);
        if (!s) return STORE_ERROR;
        bind_text(s, 1, sc->tenant);
        bind_text(s, 2, sc->name);
        bind_text(s, 3, sc->cron);
        bind_text(s, 4, sc->task);
        sqlite3_bind_int(s, 5, sc->paused ? 1 : 0);
        bind_opt_int64(s, 6, sc->next_run_at_ms);
        sqlite3_bind_int64(s, 7, sc->updated_at_ms);
        bind_text(s, 8, sc->timezone[0] ? sc->timezone : "UTC");
        if (exec_stmt(c, s, "schedule put") != STORE_OK) return STORE_ERROR;
        *created = pass == 1;
        if (pass == 0 && sqlite3_changes(c->db) > 0) break;
    }
    return STORE_OK;
}

static int sq_schedule_delete(void *impl, const char *tenant, const char *name)
{
    struct sq_conn *c = impl;
    sqlite3_stmt *s = stmt(c, ST_SCHEDULE_DELETE);
    if (!s) return STORE_ERROR;
    bind_text(s, 1, tenant);
    bind_text(s, 2, name);
    int rc = exec_stmt(c, s, "schedule delete");
    if (rc == STORE_OK && sqlite3_changes(c->db) == 0) return STORE_NOT_FOUND;
    return rc;
}

static int sq_schedule_ran(void *impl, const char *tenant, const char *name, int64_t ran_at_ms,
                           const char *task_id, const char *error, bool advance, int64_t next_run_at_ms)
{
    struct sq_conn *c = impl;
    sqlite3_stmt *s = stmt(c, ST_SCHEDULE_RAN);
    if (!s) return STORE_ERROR;
    bind_text(s, 1, tenant);
    bind_text(s, 2, name);
    sqlite3_bind_int64(s, 3, ran_at_ms);
    bind_text(s, 4, task_id && *task_id ? task_id : NULL);
    bind_text(s, 5, error);
    sqlite3_bind_int(s, 6, advance ? 1 : 0);
    bind_opt_int64(s, 7, next_run_at_ms);
    int rc = exec_stmt(c, s, "schedule ran");
    if (rc == STORE_OK && sqlite3_changes(c->db) == 0) return STORE_NOT_FOUND;
    return rc;
}

/* The rows of s (bound, not yet stepped) into a new array; with max_bytes,
 * no row after the templates read add up to that many (*cut then true). */
static int schedule_rows(struct sq_conn *c, sqlite3_stmt *s, size_t max_bytes, struct schedule **out,
                         size_t *n, bool *cut)
{
    size_t cap = 0, bytes = 0;
    *out = NULL;
    *n = 0;
    *cut = false;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (max_bytes && bytes >= max_bytes) {
            *cut = true;
            rc = SQLITE_DONE;
            break;
        }
        bytes += (size_t)sqlite3_column_bytes(s, 3);
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        row_to_schedule(s, &(*out)[(*n)++]);
    }
    sqlite3_reset(s);
    if (rc == SQLITE_DONE) return STORE_OK;
    for (size_t i = 0; i < *n; i++) schedule_clear(&(*out)[i]);
    free(*out);
    *out = NULL;
    *n = 0;
    return fail(c, "schedules");
}

static int sq_schedules_due(void *impl, int64_t now_ms, int limit, struct schedule **out, size_t *n)
{
    struct sq_conn *c = impl;
    sqlite3_stmt *s = stmt(c, ST_SCHEDULES_DUE);
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int(s, 2, limit);
    bool cut;
    return schedule_rows(c, s, 0, out, n, &cut);
}

static int sq_schedules_list(void *impl, const char *tenant, const char *after, int limit,
                             size_t max_bytes, struct schedule **out, size_t *n, bool *cut)
{
    struct sq_conn *c = impl;
    sqlite3_stmt *s = stmt(c, ST_SCHEDULES_LIST);
    if (!s) return STORE_ERROR;
    bind_text(s, 1, tenant);
    bind_text(s, 2, after ? after : "");
    sqlite3_bind_int(s, 3, limit);
    return schedule_rows(c, s, max_bytes, out, n, cut);
}

static int sq_schedule_set_next(void *impl, const char *tenant, const char *name, int64_t next_run_at_ms)
{
    struct sq_conn *c = impl;
    sqlite3_stmt *s = stmt(c, ST_SCHEDULE_SET_NEXT);
    if (!s) return STORE_ERROR;
    bind_text(s, 1, tenant);
    bind_text(s, 2, name);
    bind_opt_int64(s, 3, next_run_at_ms);
    return exec_stmt(c, s, "schedule next");
}

static int sq_schedules_waiting(void *impl, const char *after_tenant, const char *after_name, int limit,
                                struct schedule **out, size_t *n)
{
    struct sq_conn *c = impl;
    sqlite3_stmt *s = stmt(c, ST_SCHEDULES_WAITING);
    if (!s) return STORE_ERROR;
    bind_text(s, 1, after_tenant);
    bind_text(s, 2, after_name);
    sqlite3_bind_int(s, 3, limit);
    bool cut;
    return schedule_rows(c, s, 0, out, n, &cut);
}

static int sq_schedule_next_due(void *impl, int64_t *due_ms)
{
    bool found;
    int rc = first_int64(impl, ST_SCHEDULE_NEXT_DUE, due_ms, &found);
    if (rc == STORE_OK && !found) *due_ms = INT64_MAX;
    return rc;
}

static int sq_purge(void *impl, int64_t cutoff_ms, int64_t idem_cutoff_ms, int64_t *from_seq,
                    int span, int *deleted, int64_t *max_seq)
{
    struct sq_conn *c = impl;
    static const enum stmt_id steps[] = {ST_PURGE_ATTEMPTS, ST_PURGE_WEBHOOK_ATTEMPTS,
                                         ST_PURGE_WEBHOOKS, ST_PURGE_TASKS};
    *deleted = 0;
    int64_t min_seq;
    if (min_max_seq(c, &min_seq, max_seq)) return STORE_ERROR;
    /* Each pass started at seq 0 and stepped through every seq ever made:
     * with millions gone, a pass took hours before reaching a task. */
    if (*from_seq < min_seq - 1) *from_seq = min_seq - 1;
    /* The newest task stays: SQLite gives a new row the highest seq + 1, so
     * with the highest deleted a new task took a seq already handed out. */
    int64_t to = *from_seq + span < *max_seq - 1 ? *from_seq + span : *max_seq - 1;
    for (size_t i = 0; i < ARRAY_LEN(steps); i++) {
        sqlite3_stmt *s = stmt(c, steps[i]);
        if (!s) return STORE_ERROR;
        sqlite3_bind_int64(s, 1, *from_seq);
        sqlite3_bind_int64(s, 2, to);
        sqlite3_bind_int64(s, 3, cutoff_ms);
        if (exec_stmt(c, s, "purge") != STORE_OK) return STORE_ERROR;
        if (steps[i] == ST_PURGE_TASKS) *deleted = sqlite3_changes(c->db);
    }
    sqlite3_stmt *s = stmt(c, ST_PURGE_IDEMPOTENCY);
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, idem_cutoff_ms);
    return exec_stmt(c, s, "purge idempotency keys");
}

static int sq_backlog(void *impl, int64_t *n)
{
    bool found;
    return first_int64(impl, ST_BACKLOG, n, &found);
}

static int sq_kv_get(void *impl, const char *key, char **value)
{
    struct sq_conn *c = impl;
    *value = NULL;
    sqlite3_stmt *s = stmt(c, ST_KV_GET);
    if (!s) return STORE_ERROR;
    bind_text(s, 1, key);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) *value = col_text(s, 0);
    sqlite3_reset(s);
    if (rc == SQLITE_ROW) return STORE_OK;
    if (rc == SQLITE_DONE) return STORE_NOT_FOUND;
    return fail(c, "kv get");
}

static int sq_kv_put_if_absent(void *impl, const char *key, const char *value, char **value_out)
{
    struct sq_conn *c = impl;
    sqlite3_stmt *s = stmt(c, ST_KV_PUT);
    if (!s) return STORE_ERROR;
    bind_text(s, 1, key);
    bind_text(s, 2, value);
    int rc = exec_stmt(c, s, "kv put");
    if (rc != STORE_OK) return rc;
    return sq_kv_get(impl, key, value_out);
}

/* ---- reads ---- */

static int sq_tasks_list(void *impl, const struct task_filter *f, int64_t cursor, bool ascending,
                         int limit, int scan, size_t max_bytes, struct task ***out, size_t *n,
                         int64_t *next_cursor)
{
    struct sq_conn *c = impl;
    *out = NULL;
    *n = 0;
    *next_cursor = 0;
    if (limit < 1) limit = 1; /* the API takes 1 to 1000; the cursor below is row limit - 1 */
    int64_t min_seq, max_seq;
    if (min_max_seq(c, &min_seq, &max_seq)) return STORE_ERROR;
    int64_t from, to; /* ?1 exclusive, ?2 inclusive end of the window */
    if (ascending) {
        from = cursor > 0 ? cursor : min_seq - 1;
        if (from < min_seq - 1) from = min_seq - 1; /* a cursor from before a purge: no empty pages */
        to = from + scan;
    } else {
        from = cursor > 0 ? cursor : max_seq + 1;
        to = from - scan > min_seq ? from - scan : min_seq;
    }
    sqlite3_stmt *s = stmt(c, ascending ? ST_LIST_ASC : ST_LIST_DESC);
    if (!s) return STORE_ERROR;
    char *statuses;
    sqlite3_bind_int64(s, 1, from);
    sqlite3_bind_int64(s, 2, to);
    bind_filter(s, f, &statuses);
    sqlite3_bind_int(s, 8, limit + 1);
    bool cut;
    int rc = collect_tasks(c, s, "list tasks", true, max_bytes, out, n, &cut);
    free(statuses);
    if (rc != STORE_OK) return rc;
    if (cut && *n <= (size_t)limit) {
        *next_cursor = (*out)[*n - 1]->seq; /* the page ends at what was read */
    } else if (*n > (size_t)limit) {
        task_free((*out)[limit]);
        *n = (size_t)limit;
        *next_cursor = (*out)[limit - 1]->seq;
    } else if (ascending ? to < max_seq : to > min_seq) {
        *next_cursor = to; /* continue from the window's edge */
    }
    return STORE_OK;
}

static int sq_attempts_get(void *impl, int64_t task_seq, struct attempt **out, size_t *n_out)
{
    struct sq_conn *c = impl;
    *out = NULL;
    *n_out = 0;
    sqlite3_stmt *s = stmt(c, ST_GET_ATTEMPTS);
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, task_seq);
    size_t n = 0;
    struct attempt *list = NULL;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        list = xrealloc(list, (n + 1) * sizeof *list);
        struct attempt *a = &list[n++];
        a->n = sqlite3_column_int(s, 0);
        a->started_at_ms = sqlite3_column_int64(s, 1);
        a->finished_at_ms = sqlite3_column_int64(s, 2);
        a->duration_ms = sqlite3_column_int64(s, 3);
        a->status_code = sqlite3_column_int(s, 4);
        a->error_code = col_text(s, 5);
        a->error_message = col_text(s, 6);
    }
    sqlite3_reset(s);
    *out = list;
    *n_out = n;
    if (rc != SQLITE_DONE) {
        for (size_t i = 0; i < n; i++) attempt_clear(&list[i]);
        free(list);
        *out = NULL;
        *n_out = 0;
        return fail(c, "get attempts");
    }
    return STORE_OK;
}

static int sq_webhook_attempts_get(void *impl, int64_t task_seq, struct webhook_attempt **out,
                                   size_t *n_out)
{
    struct sq_conn *c = impl;
    *out = NULL;
    *n_out = 0;
    sqlite3_stmt *s = stmt(c, ST_GET_WEBHOOK_ATTEMPTS);
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, task_seq);
    size_t n = 0;
    struct webhook_attempt *list = NULL;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        list = xrealloc(list, (n + 1) * sizeof *list);
        struct webhook_attempt *a = &list[n++];
        memset(a, 0, sizeof *a);
        snprintf(a->webhook_id, sizeof a->webhook_id, "%s", (const char *)sqlite3_column_text(s, 0));
        a->n = sqlite3_column_int(s, 1);
        a->started_at_ms = sqlite3_column_int64(s, 2);
        a->finished_at_ms = sqlite3_column_int64(s, 3);
        a->duration_ms = sqlite3_column_int64(s, 4);
        a->status_code = sqlite3_column_int(s, 5);
        a->error = col_text(s, 6);
    }
    sqlite3_reset(s);
    *out = list;
    *n_out = n;
    if (rc != SQLITE_DONE) {
        for (size_t i = 0; i < n; i++) webhook_attempt_clear(&list[i]);
        free(list);
        *out = NULL;
        *n_out = 0;
        return fail(c, "get webhook attempts");
    }
    return STORE_OK;
}

static int sq_queue_depths(void *impl, int64_t now_ms, const char *after, int limit,
                           void (*fn)(void *, const char *, int64_t, int64_t), void *arg)
{
    struct sq_conn *c = impl;
    sqlite3_stmt *s = stmt(c, ST_QUEUE_DEPTHS);
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_text(s, 2, after, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, limit > 0 ? limit : -1); /* a negative LIMIT: none */
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        fn(arg, (const char *)sqlite3_column_text(s, 0), sqlite3_column_int64(s, 1),
           sqlite3_column_int64(s, 2));
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : fail(c, "queue depths");
}

static int sq_queue_depth(void *impl, int64_t now_ms, const char *queue, int64_t *queued, int64_t *due)
{
    struct sq_conn *c = impl;
    sqlite3_stmt *s = stmt(c, ST_QUEUE_DEPTH);
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_text(s, 2, queue, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *queued = sqlite3_column_int64(s, 0);
        *due = sqlite3_column_int64(s, 1); /* sum() of no rows is NULL: 0 */
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : fail(c, "queue depth");
}

static int sq_task_get(void *impl, const char *id, const char *tenant, struct task **out,
                       struct attempt **attempts, size_t *n_attempts, struct webhook_state *webhook,
                       bool *has_webhook)
{
    struct sq_conn *c = impl;
    *out = NULL;
    if (attempts) {
        *attempts = NULL;
        *n_attempts = 0;
    }
    if (has_webhook) *has_webhook = false;
    struct task *t = NULL;
    int rc = get_task_row(c, id, tenant, &t);
    if (rc != STORE_OK) return rc;
    if (attempts && sq_attempts_get(impl, t->seq, attempts, n_attempts) != STORE_OK) goto error;
    if (webhook) { /* the latest message, even when a replay took the webhookUrl away */
        sqlite3_stmt *s = stmt(c, ST_GET_WEBHOOK);
        if (!s) goto error;
        sqlite3_bind_int64(s, 1, t->seq);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            memset(webhook, 0, sizeof *webhook);
            snprintf(webhook->id, sizeof webhook->id, "%s", (const char *)sqlite3_column_text(s, 0));
            webhook->status = col_text(s, 1);
            webhook->attempts = sqlite3_column_int(s, 2);
            webhook->next_at_ms = sqlite3_column_int64(s, 3);
            webhook->delivered_at_ms = sqlite3_column_int64(s, 4);
            webhook->last_status_code = sqlite3_column_int(s, 5);
            webhook->last_error = col_text(s, 6);
            webhook->url = col_text(s, 7);
            if (has_webhook) *has_webhook = true;
        }
        sqlite3_reset(s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            fail(c, "get webhook");
            goto error;
        }
    }
    *out = t;
    return STORE_OK;
error:
    if (attempts) {
        for (size_t i = 0; i < *n_attempts; i++) attempt_clear(&(*attempts)[i]);
        free(*attempts);
        *attempts = NULL;
        *n_attempts = 0;
    }
    task_free(t);
    return STORE_ERROR;
}

static int sq_task_count(void *impl, int64_t *n)
{
    bool found;
    return first_int64(impl, ST_COUNT_TASKS, n, &found);
}

const struct store_ops store_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .conn_open = sq_conn_open,
    .conn_close = sq_conn_close,
    .conn_error = sq_conn_error,
    .conn_unavailable = sq_conn_unavailable,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .defer_sync = sq_defer_sync,
    .sync = sq_sync,
    .task_insert = sq_task_insert,
    .tasks_claim = sq_tasks_claim,
    .queue_next_due = sq_queue_next_due,
    .queue_retrying = sq_queue_retrying,
    .queues_due_each = sq_queues_due_each,
    .running_each = sq_running_each,
    .task_finish = sq_task_finish,
    .requeue_running = sq_requeue_running,
    .shift_waits = sq_shift_waits,
    .write_probe = sq_write_probe,
    .webhooks_claim = sq_webhooks_claim,
    .webhook_finish = sq_webhook_finish,
    .webhook_insert = sq_webhook_insert,
    .task_cancel = sq_task_cancel,
    .task_replay = sq_task_replay,
    .tasks_select = sq_tasks_select,
    .idempotency_get = sq_idempotency_get,
    .idempotency_put = sq_idempotency_put,
    .queue_put = sq_queue_put,
    .queue_delete = sq_queue_delete,
    .queues_each = sq_queues_each,
    .purge = sq_purge,
    .backlog = sq_backlog,
    .webhook_next_due = sq_webhook_next_due,
    .kv_get = sq_kv_get,
    .schedule_put = sq_schedule_put,
    .schedule_delete = sq_schedule_delete,
    .schedule_ran = sq_schedule_ran,
    .schedules_due = sq_schedules_due,
    .schedule_next_due = sq_schedule_next_due,
    .schedule_set_next = sq_schedule_set_next,
    .schedules_waiting = sq_schedules_waiting,
    .schedule_get = sq_schedule_get,
    .schedules_list = sq_schedules_list,
    .kv_put_if_absent = sq_kv_put_if_absent,
    .tasks_list = sq_tasks_list,
    .attempts_get = sq_attempts_get,
    .webhook_attempts_get = sq_webhook_attempts_get,
    .queue_depths = sq_queue_depths,
    .queue_depth = sq_queue_depth,
    .task_get = sq_task_get,
    .task_count = sq_task_count,
};
