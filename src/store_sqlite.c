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
 *   beside it; synchronous=FULL makes every commit durable before the 202.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
    enum config_sync sync;
    int64_t busy_timeout_ms;
};

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_INSERT_TASK,
    ST_CLAIM_TASKS,
    ST_FINISH_TASK,
    ST_INSERT_ATTEMPT,
    ST_INSERT_WEBHOOK,
    ST_REQUEUE_ATTEMPTS,
    ST_REQUEUE_TASKS,
    ST_REQUEUE_WEBHOOKS,
    ST_CLAIM_WEBHOOKS,
    ST_FINISH_WEBHOOK,
    ST_INSERT_WEBHOOK_ATTEMPT,
    ST_NEXT_TASK_DUE,
    ST_NEXT_WEBHOOK_DUE,
    ST_KV_GET,
    ST_KV_PUT,
    ST_GET_TASK,
    ST_GET_ATTEMPTS,
    ST_GET_WEBHOOK,
    ST_COUNT_TASKS,
    ST_COUNT,
};

#define TASK_COLS                                                                              \
    "seq, id, queue, status, method, callback_url, headers, body, body_kind, webhook_url, "    \
    "metadata, max_retries, timeout_ms, attempts, run_at, created_at, updated_at, started_at, " \
    "finished_at, lease_until, claim_token, response_status, response_headers, response_body, " \
    "response_ms, error_code, error_message"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_INSERT_TASK] =
        "INSERT INTO tasks (id, queue, status, method, callback_url, headers, body, body_kind, "
        "webhook_url, metadata, max_retries, timeout_ms, attempts, run_at, created_at, updated_at) "
        "VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, ?12, ?13, ?13)",
    [ST_CLAIM_TASKS] =
        "UPDATE tasks SET status = 'running', started_at = ?1, updated_at = ?1, "
        "lease_until = ?1 + timeout_ms + ?2, claim_token = claim_token + 1 "
        "WHERE seq IN (SELECT seq FROM tasks WHERE status = 'queued' AND run_at <= ?1 "
        "ORDER BY run_at, seq LIMIT ?3) RETURNING " TASK_COLS,
    [ST_FINISH_TASK] =
        "UPDATE tasks SET status = ?1, attempts = ?2, run_at = ?3, lease_until = NULL, "
        "updated_at = ?4, finished_at = ?5, response_status = ?6, response_headers = ?7, "
        "response_body = ?8, response_ms = ?9, error_code = ?10, error_message = ?11 "
        "WHERE seq = ?12 AND claim_token = ?13 AND status = 'running'",
    [ST_INSERT_ATTEMPT] =
        "INSERT INTO attempts (task_seq, n, started_at, finished_at, duration_ms, status_code, "
        "error_code, error_message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_INSERT_WEBHOOK] =
        "INSERT INTO webhooks (id, task_seq, task_id, url, body, status, attempts, next_at, "
        "created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?6, ?6)",
    [ST_REQUEUE_ATTEMPTS] =
        "INSERT INTO attempts (task_seq, n, started_at, finished_at, duration_ms, status_code, "
        "error_code, error_message) SELECT seq, attempts + 1, COALESCE(started_at, ?1), ?1, "
        "MAX(0, ?1 - COALESCE(started_at, ?1)), NULL, 'interrupted', ?3 FROM tasks "
        "WHERE status = 'running' AND lease_until < ?2",
    [ST_REQUEUE_TASKS] =
        "UPDATE tasks SET status = 'queued', attempts = attempts + 1, run_at = ?1, "
        "lease_until = NULL, updated_at = ?1, claim_token = claim_token + 1, "
        "error_code = 'interrupted', error_message = ?3 "
        "WHERE status = 'running' AND lease_until < ?2",
    [ST_REQUEUE_WEBHOOKS] =
        "UPDATE webhooks SET status = 'pending', lease_until = NULL, next_at = ?1, "
        "updated_at = ?1, claim_token = claim_token + 1 "
        "WHERE status = 'delivering' AND lease_until < ?2",
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
    [ST_NEXT_TASK_DUE] =
        "SELECT run_at FROM tasks WHERE status = 'queued' ORDER BY run_at LIMIT 1",
    [ST_NEXT_WEBHOOK_DUE] =
        "SELECT next_at FROM webhooks WHERE status = 'pending' ORDER BY next_at LIMIT 1",
    [ST_KV_GET] = "SELECT value FROM kv WHERE key = ?1",
    [ST_KV_PUT] = "INSERT OR IGNORE INTO kv (key, value) VALUES (?1, ?2)",
    [ST_GET_TASK] = "SELECT " TASK_COLS " FROM tasks WHERE id = ?1",
    [ST_GET_ATTEMPTS] =
        "SELECT n, started_at, finished_at, duration_ms, status_code, error_code, error_message "
        "FROM attempts WHERE task_seq = ?1 ORDER BY n",
    [ST_GET_WEBHOOK] =
        "SELECT id, status, attempts, next_at, delivered_at, last_status_code, last_error "
        "FROM webhooks WHERE task_seq = ?1 ORDER BY seq DESC LIMIT 1",
    [ST_COUNT_TASKS] = "SELECT count(*) FROM tasks",
};

struct sq_conn {
    struct sq_store *store;
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT];
    char err[256];
};

/* ---- helpers ---- */

static int fail(struct sq_conn *c, const char *what)
{
    snprintf(c->err, sizeof c->err, "%s: %s", what, sqlite3_errmsg(c->db));
    return STORE_ERROR;
}

static sqlite3_stmt *stmt(struct sq_conn *c, enum stmt_id id)
{
    if (!c->stmt[id]) {
        if (sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->stmt[id],
                               NULL) != SQLITE_OK) {
            fail(c, "prepare");
            log_msg(LOG_ERROR, "store.prepare_failed", "error=\"%s\"", c->err);
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

/* Binds ms, or NULL for 0 (an unset time). */
static void bind_time(sqlite3_stmt *s, int i, int64_t ms)
{
    if (ms) sqlite3_bind_int64(s, i, ms);
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
    if (!v) return NULL;
    char *p = xmalloc(*len + 1);
    memcpy(p, v, *len);
    p[*len] = '\0';
    return p;
}

/* Runs a statement that returns no rows. */
static int exec_stmt(struct sq_conn *c, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) return fail(c, what);
    return STORE_OK;
}

static struct task *row_to_task(sqlite3_stmt *s)
{
    struct task *t = xcalloc(1, sizeof *t);
    t->seq = sqlite3_column_int64(s, 0);
    const unsigned char *id = sqlite3_column_text(s, 1);
    snprintf(t->id, sizeof t->id, "%s", id ? (const char *)id : "");
    t->queue = col_text(s, 2);
    const unsigned char *st = sqlite3_column_text(s, 3);
    if (!st || task_status_parse((const char *)st, &t->status)) t->status = TASK_FAILED;
    t->method = col_text(s, 4);
    t->callback_url = col_text(s, 5);
    t->headers_json = col_text(s, 6);
    t->body = col_blob(s, 7, &t->body_len);
    t->body_kind = (enum task_body_kind)sqlite3_column_int(s, 8);
    t->webhook_url = col_text(s, 9);
    t->metadata_json = col_text(s, 10);
    t->max_retries = sqlite3_column_int(s, 11);
    t->timeout_ms = sqlite3_column_int64(s, 12);
    t->attempts = sqlite3_column_int(s, 13);
    t->run_at_ms = sqlite3_column_int64(s, 14);
    t->created_at_ms = sqlite3_column_int64(s, 15);
    t->updated_at_ms = sqlite3_column_int64(s, 16);
    t->started_at_ms = sqlite3_column_int64(s, 17);
    t->finished_at_ms = sqlite3_column_int64(s, 18);
    t->lease_until_ms = sqlite3_column_int64(s, 19);
    t->claim_token = sqlite3_column_int64(s, 20);
    t->response_status = sqlite3_column_int(s, 21);
    t->response_headers_json = col_text(s, 22);
    t->response_body = col_blob(s, 23, &t->response_body_len);
    t->response_ms = sqlite3_column_int64(s, 24);
    t->error_code = col_text(s, 25);
    t->error_message = col_text(s, 26);
    return t;
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

static void *sq_open(const struct config *cfg, bool shared, char *err, size_t err_len)
{
    struct sq_store *s = xcalloc(1, sizeof *s);
    s->path = xstrdup(cfg->db);
    s->sync = cfg->synchronous;
    s->busy_timeout_ms = cfg->busy_timeout_ms;
    s->lock_fd = -1;
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

static const char *sq_conn_error(void *impl)
{
    struct sq_conn *c = impl;
    return c->err[0] ? c->err : "no error";
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
    bind_text(s, 2, t->queue);
    bind_text(s, 3, t->method);
    bind_text(s, 4, t->callback_url);
    bind_text(s, 5, t->headers_json);
    bind_blob(s, 6, t->body, t->body_len);
    sqlite3_bind_int(s, 7, (int)t->body_kind);
    bind_text(s, 8, t->webhook_url);
    bind_text(s, 9, t->metadata_json);
    sqlite3_bind_int(s, 10, t->max_retries);
    sqlite3_bind_int64(s, 11, t->timeout_ms);
    sqlite3_bind_int64(s, 12, t->run_at_ms);
    sqlite3_bind_int64(s, 13, t->created_at_ms);
    int rc = exec_stmt(c, s, "insert task");
    if (rc == STORE_OK) t->seq = sqlite3_last_insert_rowid(c->db);
    sqlite3_reset(s);
    return rc;
}

static int sq_tasks_claim(void *impl, int64_t now_ms, int64_t lease_grace_ms, int limit,
                          struct task ***out, size_t *n_out)
{
    struct sq_conn *c = impl;
    *out = NULL;
    *n_out = 0;
    sqlite3_stmt *s = stmt(c, ST_CLAIM_TASKS);
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int64(s, 2, lease_grace_ms);
    sqlite3_bind_int(s, 3, limit);
    struct task **list = NULL;
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        list = xrealloc(list, (n + 1) * sizeof *list);
        list[n++] = row_to_task(s);
    }
    if (rc != SQLITE_DONE) {
        for (size_t i = 0; i < n; i++) task_free(list[i]);
        free(list);
        sqlite3_reset(s);
        return fail(c, "claim tasks");
    }
    sqlite3_reset(s);
    *out = list;
    *n_out = n;
    return STORE_OK;
}

static int insert_webhook(struct sq_conn *c, const struct task *t, const char *body)
{
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
    int rc = exec_stmt(c, s, "insert webhook");
    sqlite3_reset(s);
    return rc;
}

static int sq_task_finish(void *impl, const struct task_result *r, bool *applied)
{
    struct sq_conn *c = impl;
    const struct task *t = r->task;
    const struct attempt *a = r->attempt;
    *applied = false;
    sqlite3_stmt *s = stmt(c, ST_FINISH_TASK);
    if (!s) return STORE_ERROR;
    bind_text(s, 1, task_status_name(t->status));
    sqlite3_bind_int(s, 2, t->attempts);
    sqlite3_bind_int64(s, 3, t->run_at_ms);
    sqlite3_bind_int64(s, 4, t->updated_at_ms);
    bind_time(s, 5, t->finished_at_ms);
    if (t->response_status > 0) sqlite3_bind_int(s, 6, t->response_status);
    else sqlite3_bind_null(s, 6);
    bind_text(s, 7, t->response_headers_json);
    bind_blob(s, 8, t->response_body, t->response_body_len);
    sqlite3_bind_int64(s, 9, t->response_ms);
    bind_text(s, 10, t->error_code);
    bind_text(s, 11, t->error_message);
    sqlite3_bind_int64(s, 12, t->seq);
    sqlite3_bind_int64(s, 13, t->claim_token);
    int rc = exec_stmt(c, s, "finish task");
    sqlite3_reset(s);
    if (rc != STORE_OK) return rc;
    if (sqlite3_changes(c->db) == 0) return STORE_OK; /* cancelled or lease lost meanwhile */
    *applied = true;

    s = stmt(c, ST_INSERT_ATTEMPT);
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, t->seq);
    sqlite3_bind_int(s, 2, a->n);
    sqlite3_bind_int64(s, 3, a->started_at_ms);
    sqlite3_bind_int64(s, 4, a->finished_at_ms);
    sqlite3_bind_int64(s, 5, a->duration_ms);
    if (a->status_code > 0) sqlite3_bind_int(s, 6, a->status_code);
    else sqlite3_bind_null(s, 6);
    bind_text(s, 7, a->error_code);
    bind_text(s, 8, a->error_message);
    rc = exec_stmt(c, s, "insert attempt");
    sqlite3_reset(s);
    if (rc != STORE_OK) return rc;
    if (r->webhook_body && t->webhook_url) return insert_webhook(c, t, r->webhook_body);
    return STORE_OK;
}

static int sq_requeue_running(void *impl, int64_t now_ms, int64_t lease_before_ms,
                              const char *reason, int *count)
{
    struct sq_conn *c = impl;
    static const enum stmt_id steps[] = {ST_REQUEUE_ATTEMPTS, ST_REQUEUE_TASKS,
                                         ST_REQUEUE_WEBHOOKS};
    *count = 0;
    for (size_t i = 0; i < ARRAY_LEN(steps); i++) {
        sqlite3_stmt *s = stmt(c, steps[i]);
        if (!s) return STORE_ERROR;
        sqlite3_bind_int64(s, 1, now_ms);
        sqlite3_bind_int64(s, 2, lease_before_ms);
        if (steps[i] != ST_REQUEUE_WEBHOOKS) bind_text(s, 3, reason);
        int rc = exec_stmt(c, s, "requeue running");
        sqlite3_reset(s);
        if (rc != STORE_OK) return rc;
        if (steps[i] == ST_REQUEUE_TASKS) *count = sqlite3_changes(c->db);
    }
    return STORE_OK;
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
    bind_time(s, 4, r->delivered ? r->finished_at_ms : 0);
    if (r->status_code > 0) sqlite3_bind_int(s, 5, r->status_code);
    else sqlite3_bind_null(s, 5);
    bind_text(s, 6, r->error);
    sqlite3_bind_int64(s, 7, r->finished_at_ms);
    sqlite3_bind_int64(s, 8, r->seq);
    sqlite3_bind_int64(s, 9, r->claim_token);
    int rc = exec_stmt(c, s, "finish webhook");
    sqlite3_reset(s);
    if (rc != STORE_OK || sqlite3_changes(c->db) == 0) return rc;

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
    rc = exec_stmt(c, s, "insert webhook attempt");
    sqlite3_reset(s);
    return rc;
}

static int first_int64(struct sq_conn *c, enum stmt_id id, int64_t *out, bool *found)
{
    sqlite3_stmt *s = stmt(c, id);
    if (!s) return STORE_ERROR;
    int rc = sqlite3_step(s);
    *found = rc == SQLITE_ROW;
    if (*found) *out = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return fail(c, "query");
    return STORE_OK;
}

static int sq_next_due(void *impl, int64_t *due_ms)
{
    struct sq_conn *c = impl;
    int64_t a = INT64_MAX, b = INT64_MAX;
    bool found;
    if (first_int64(c, ST_NEXT_TASK_DUE, &a, &found)) return STORE_ERROR;
    if (!found) a = INT64_MAX;
    if (first_int64(c, ST_NEXT_WEBHOOK_DUE, &b, &found)) return STORE_ERROR;
    if (!found) b = INT64_MAX;
    *due_ms = a < b ? a : b;
    return STORE_OK;
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
    sqlite3_reset(s);
    if (rc != STORE_OK) return rc;
    return sq_kv_get(impl, key, value_out);
}

/* ---- reads ---- */

static int sq_task_get(void *impl, const char *id, struct task **out, struct attempt **attempts,
                       size_t *n_attempts, struct webhook_state *webhook, bool *has_webhook)
{
    struct sq_conn *c = impl;
    *out = NULL;
    if (attempts) {
        *attempts = NULL;
        *n_attempts = 0;
    }
    if (has_webhook) *has_webhook = false;
    sqlite3_stmt *s = stmt(c, ST_GET_TASK);
    if (!s) return STORE_ERROR;
    bind_text(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return rc == SQLITE_DONE ? STORE_NOT_FOUND : fail(c, "get task");
    }
    struct task *t = row_to_task(s);
    sqlite3_reset(s);

    if (attempts) {
        s = stmt(c, ST_GET_ATTEMPTS);
        if (!s) goto error;
        sqlite3_bind_int64(s, 1, t->seq);
        size_t n = 0;
        struct attempt *list = NULL;
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
        *attempts = list;
        *n_attempts = n;
        if (rc != SQLITE_DONE) {
            fail(c, "get attempts");
            goto error;
        }
    }
    if (webhook && t->webhook_url) {
        s = stmt(c, ST_GET_WEBHOOK);
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
            *has_webhook = true;
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
    if (has_webhook && *has_webhook) {
        webhook_state_clear(webhook);
        *has_webhook = false;
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
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .task_insert = sq_task_insert,
    .tasks_claim = sq_tasks_claim,
    .task_finish = sq_task_finish,
    .requeue_running = sq_requeue_running,
    .webhooks_claim = sq_webhooks_claim,
    .webhook_finish = sq_webhook_finish,
    .next_due = sq_next_due,
    .kv_get = sq_kv_get,
    .kv_put_if_absent = sq_kv_put_if_absent,
    .task_get = sq_task_get,
    .task_count = sq_task_count,
};
