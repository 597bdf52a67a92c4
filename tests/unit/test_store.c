/*
 * test_store: the store against a fresh temporary SQLite database per test,
 * created through store_open with the real embedded migrations. Every write
 * runs inside store_begin/store_commit on a dedicated connection, as the
 * writer does; reads use pooled connections.
 */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "id.h"
#include "store.h"
#include "util.h"

#define NOW 1795860742123LL /* 2026-11-28T10:12:22.123Z */

struct fx {
    char dir[512];
    char path[600];
    struct config cfg;
    struct store *store;
    struct store_conn *w; /* the writer's connection */
};

static struct store *open_store(struct fx *f, bool shared, char *err, size_t err_len)
{
    err[0] = '\0';
    return store_open(&f->cfg, shared, err, err_len);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    tu_mkdtemp(f->dir, sizeof f->dir);
    snprintf(f->path, sizeof f->path, "%s/test.db", f->dir);
    tu_config_defaults(&f->cfg);
    free(f->cfg.db);
    f->cfg.db = xstrdup(f->path);
    f->cfg.synchronous = CONFIG_SYNC_NORMAL; /* durability is not under test; speed is welcome */
    char err[512];
    f->store = open_store(f, false, err, sizeof err);
    if (!f->store) fail_msg("store_open: %s", err);
    f->w = store_conn_open(f->store);
    assert_non_null(f->w);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_conn_close(f->w);
    store_close(f->store);
    config_free(&f->cfg);
    tu_rmtree(f->dir);
    free(f);
    return 0;
}

/* ---- helpers ---- */

static struct task *new_task(int64_t created_ms, int64_t run_at_ms)
{
    struct task *t = xcalloc(1, sizeof *t);
    id_new(created_ms, t->id);
    t->queue = xstrdup("default");
    t->status = TASK_QUEUED;
    t->method = xstrdup("POST");
    t->callback_url = xstrdup("https://example.com/hook");
    t->host = xstrdup("example.com");
    t->max_retries = 3;
    t->timeout_ms = 30000;
    t->run_at_ms = run_at_ms;
    t->created_at_ms = t->updated_at_ms = created_ms;
    return t;
}

/* Closes the store and opens it again with f->cfg, as a restart would. */
static void reopen(struct fx *f)
{
    store_conn_close(f->w);
    store_close(f->store);
    char err[512];
    f->store = open_store(f, false, err, sizeof err);
    if (!f->store) fail_msg("reopen %s: %s", f->cfg.db, err);
    f->w = store_conn_open(f->store);
    assert_non_null(f->w);
}

static void must(struct fx *f, int rc, const char *what)
{
    if (rc != STORE_OK) fail_msg("%s: rc %d: %s", what, rc, store_conn_error(f->w));
}

static void begin(struct fx *f)
{
    must(f, store_begin(f->w), "begin");
}
static void commit(struct fx *f)
{
    must(f, store_commit(f->w), "commit");
}

static void insert(struct fx *f, struct task *t)
{
    begin(f);
    must(f, store_task_insert(f->w, t), "insert");
    commit(f);
    assert_true(t->seq > 0);
}

static struct task **claim(struct fx *f, int64_t now, int64_t grace, int limit, size_t *n)
{
    struct task **list = NULL;
    begin(f);
    must(f, store_tasks_claim(f->w, "default", 0, now, grace, limit, NULL, &list, n), "claim");
    commit(f);
    return list;
}

static void free_tasks(struct task **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        task_free(list[i]);
    free(list);
}

/* Claims exactly one task due at now. */
static struct task *claim_one(struct fx *f, int64_t now, int64_t grace)
{
    size_t n = 0;
    struct task **list = claim(f, now, grace, 1, &n);
    assert_int_equal(n, 1);
    struct task *t = list[0];
    free(list);
    return t;
}

static size_t claim_count(struct fx *f, int64_t now)
{
    size_t n = 0;
    struct task **list = claim(f, now, 0, 100, &n);
    free_tasks(list, n);
    return n;
}

struct loaded {
    struct task *t;
    struct attempt *attempts;
    size_t n_attempts;
    struct webhook_state webhook;
    bool has_webhook;
};

static int load(struct fx *f, const char *id, struct loaded *out)
{
    memset(out, 0, sizeof *out);
    struct store_conn *r = store_conn_acquire(f->store);
    assert_non_null(r);
    int rc = store_task_get(r, id, NULL, &out->t, &out->attempts, &out->n_attempts, &out->webhook,
                            &out->has_webhook);
    store_conn_release(r);
    return rc;
}

static void loaded_free(struct loaded *l)
{
    task_free(l->t);
    for (size_t i = 0; i < l->n_attempts; i++)
        attempt_clear(&l->attempts[i]);
    free(l->attempts);
    if (l->has_webhook) webhook_state_clear(&l->webhook);
    memset(l, 0, sizeof *l);
}

static int finish(struct fx *f, const struct task *t, const struct attempt *a,
                  const char *webhook_body, bool *applied)
{
    struct task_result r = {.task = t, .attempt = a};
    begin(f);
    int rc = store_task_finish(f->w, &r, applied);
    must(f, rc, "finish");
    if (*applied && webhook_body && t->webhook_url) /* as the daemon's finish does */
        must(f, store_webhook_insert(f->w, t, webhook_body, 0, NULL), "insert webhook");
    commit(f);
    return rc;
}

/* Turns a claimed task into a completed one with a 200 response. */
static void complete(struct task *t, int64_t now)
{
    t->status = TASK_COMPLETED;
    t->attempts += 1;
    t->updated_at_ms = t->finished_at_ms = now;
    t->response_status = 200;
    t->response_headers_json = xstrdup("{\"content-type\":\"application/json\"}");
    t->response_body = xstrdup("{\"ok\":true}");
    t->response_body_len = strlen(t->response_body);
    t->response_ms = 42;
}

/* The earliest waiting work: a queued task of the default queue or a
 * pending webhook. */
static int64_t next_due(struct fx *f)
{
    int64_t task_due = 0, hook_due = 0;
    struct store_conn *r = store_conn_acquire(f->store);
    assert_int_equal(store_queue_next_due(r, "default", &task_due), STORE_OK);
    assert_int_equal(store_webhook_next_due(r, &hook_due), STORE_OK);
    store_conn_release(r);
    return task_due < hook_due ? task_due : hook_due;
}

static struct webhook_msg **claim_webhooks(struct fx *f, int64_t now, size_t *n)
{
    struct webhook_msg **list = NULL;
    begin(f);
    must(f, store_webhooks_claim(f->w, now, 60000, 10, &list, n), "claim webhooks");
    commit(f);
    return list;
}

static void free_msgs(struct webhook_msg **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        webhook_msg_free(list[i]);
    free(list);
}

/* Inserts, claims and completes a task with a webhook; returns its id. */
static void finished_task_with_webhook(struct fx *f, char id[ID_LEN])
{
    struct task *t = new_task(NOW, NOW);
    t->webhook_url = xstrdup("https://hooks.example.com/done");
    insert(f, t);
    memcpy(id, t->id, ID_LEN);
    task_free(t);
    t = claim_one(f, NOW, 0);
    complete(t, NOW + 10);
    struct attempt a = {.n = 1,
                        .started_at_ms = NOW,
                        .finished_at_ms = NOW + 10,
                        .duration_ms = 10,
                        .status_code = 200};
    char *body = task_webhook_payload(t);
    bool applied = false;
    finish(f, t, &a, body, &applied);
    assert_true(applied);
    free(body);
    task_free(t);
}

/* ---- open and migrations ---- */

static void open_applies_the_migrations(void **state)
{
    struct fx *f = *state;
    int64_t n = -1;
    struct store_conn *r = store_conn_acquire(f->store);
    assert_int_equal(store_task_count(r, &n), STORE_OK);
    store_conn_release(r);
    assert_int_equal(n, 0);
    assert_int_equal(next_due(f), INT64_MAX);
    /* Look at the file with plain SQLite. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT max(version), count(*) FROM schema_migrations",
                                        -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_true(sqlite3_column_int(q, 0) >= 1);
    assert_int_equal(sqlite3_column_int(q, 0), sqlite3_column_int(q, 1));
    sqlite3_finalize(q);
    static const char *const tables[] = {"tasks", "attempts", "webhooks", "webhook_attempts", "kv"};
    for (size_t i = 0; i < ARRAY_LEN(tables); i++) {
        assert_int_equal(
            sqlite3_prepare_v2(
                db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", -1, &q,
                NULL),
            SQLITE_OK);
        sqlite3_bind_text(q, 1, tables[i], -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        if (sqlite3_column_int(q, 0) != 1) fail_msg("table %s missing", tables[i]);
        sqlite3_finalize(q);
    }
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    sqlite3_close(db);
}

static void second_open_of_the_same_file_is_refused(void **state)
{
    struct fx *f = *state;
    char err[512];
    struct store *second = open_store(f, false, err, sizeof err);
    if (second) {
        store_close(second);
        fail_msg("a second exclusive open succeeded");
    }
    assert_non_null(strstr(err, f->path));
    assert_non_null(strstr(err, "another asyncqueue daemon"));
    /* One-shot commands open it shared. */
    struct store *shared = open_store(f, true, err, sizeof err);
    if (!shared) fail_msg("shared open: %s", err);
    store_close(shared);
    /* Once the first is closed, the lock is free again. */
    reopen(f);
}

/* A file whose tables differ from what the migrations made (a development
 * build's, or hand-edited) is refused at open, saying so; it was opened, and
 * the first query that met the difference failed with "no such column". */
static void open_refuses_tables_that_differ_from_the_migrations(void **state)
{
    struct fx *f = *state;
    store_conn_close(f->w);
    store_close(f->store);
    f->w = NULL;
    f->store = NULL;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "ALTER TABLE tasks DROP COLUMN replays", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char err[512];
    struct store *s = open_store(f, false, err, sizeof err);
    if (s) {
        store_close(s);
        fail_msg("opened a file whose tasks table lacks a column");
    }
    assert_non_null(strstr(err, "its tables do not match this build's"));
    assert_non_null(strstr(err, "replays"));
    /* A new file, so that teardown closes something. */
    unlink(f->path);
    f->store = open_store(f, false, err, sizeof err);
    if (!f->store) fail_msg("store_open: %s", err);
    f->w = store_conn_open(f->store);
}

static void open_refuses_an_unusable_path(void **state)
{
    struct fx *f = *state;
    char err[512];
    free(f->cfg.db);
    f->cfg.db = xasprintf("%s/no/such/dir/x.db", f->dir);
    struct store *s = open_store(f, false, err, sizeof err);
    assert_null(s);
    assert_non_null(strstr(err, "no/such/dir"));
    free(f->cfg.db);
    f->cfg.db = xstrdup("postgres://localhost/aq");
    assert_null(open_store(f, false, err, sizeof err));
    assert_non_null(strstr(err, "PostgreSQL"));
    free(f->cfg.db);
    f->cfg.db = xstrdup(f->path);
}

/* ---- insert and get ---- */

static void insert_get_round_trip(void **state)
{
    struct fx *f = *state;
    struct task *t = new_task(NOW, NOW + 5000);
    free(t->queue);
    t->queue = xstrdup("images");
    free(t->method);
    t->method = xstrdup("PATCH");
    t->headers_json = xstrdup("{\"X-Trace\":\"abc\"}");
    static const char body[] = "bin\0ary\xff body";
    t->body = xmalloc(sizeof body);
    memcpy(t->body, body, sizeof body);
    t->body_len = sizeof body - 1;
    t->body_kind = TASK_BODY_RAW;
    t->webhook_url = xstrdup("https://hooks.example.com/x");
    t->metadata_json = xstrdup("{\"userId\":42}");
    t->max_retries = 9;
    t->timeout_ms = 1500;
    t->created_at_ms = t->updated_at_ms = NOW - 1;
    insert(f, t);

    struct loaded l;
    assert_int_equal(load(f, t->id, &l), STORE_OK);
    struct task *g = l.t;
    assert_int_equal(g->seq, t->seq);
    assert_string_equal(g->id, t->id);
    assert_string_equal(g->queue, "images");
    assert_int_equal(g->status, TASK_QUEUED);
    assert_string_equal(g->method, "PATCH");
    assert_string_equal(g->callback_url, "https://example.com/hook");
    assert_string_equal(g->headers_json, "{\"X-Trace\":\"abc\"}");
    assert_int_equal(g->body_len, sizeof body - 1);
    assert_memory_equal(g->body, body, sizeof body - 1);
    assert_int_equal(g->body_kind, TASK_BODY_RAW);
    assert_string_equal(g->webhook_url, "https://hooks.example.com/x");
    assert_string_equal(g->metadata_json, "{\"userId\":42}");
    assert_int_equal(g->max_retries, 9);
    assert_int_equal(g->timeout_ms, 1500);
    assert_int_equal(g->attempts, 0);
    assert_int_equal(g->run_at_ms, NOW + 5000);
    assert_int_equal(g->created_at_ms, NOW - 1);
    assert_int_equal(g->updated_at_ms, NOW - 1);
    assert_int_equal(g->started_at_ms, 0);
    assert_int_equal(g->finished_at_ms, 0);
    assert_int_equal(g->lease_until_ms, 0);
    assert_int_equal(g->claim_token, 0);
    assert_int_equal(g->response_status, 0);
    assert_null(g->response_body);
    assert_null(g->error_code);
    assert_int_equal(l.n_attempts, 0);
    assert_false(l.has_webhook); /* no outbox row before the task finishes */
    loaded_free(&l);
    task_free(t);
}

static void insert_get_keeps_nulls(void **state)
{
    struct fx *f = *state;
    struct task *t = new_task(NOW, NOW);
    insert(f, t);
    struct loaded l;
    assert_int_equal(load(f, t->id, &l), STORE_OK);
    assert_null(l.t->headers_json);
    assert_null(l.t->body);
    assert_int_equal(l.t->body_len, 0);
    assert_int_equal(l.t->body_kind, TASK_BODY_NONE);
    assert_null(l.t->webhook_url);
    assert_null(l.t->metadata_json);
    loaded_free(&l);
    task_free(t);
}

/* A database written before creation refused numbers such as 01 may hold
 * them in payload and metadata: they are read as cJSON reads them, written
 * again, so GET answers, calls and webhooks stay JSON. */
static void stored_json_that_json_does_not_allow_goes_out_rewritten(void **state)
{
    struct fx *f = *state;
    struct task *t = new_task(NOW, NOW);
    t->body = xstrdup("{\"n\": 01, \"m\": [1.]}");
    t->body_len = strlen(t->body);
    t->body_kind = TASK_BODY_JSON;
    t->metadata_json = xstrdup("{\"u\": -.5, \"s\": \"a\\uZZZZ\"}");
    insert(f, t); /* the store writes what it is given, as an earlier version's validation let in */
    struct loaded l;
    assert_int_equal(load(f, t->id, &l), STORE_OK);
    char *text = task_json(l.t, NULL, 0, NULL, false);
    assert_non_null(strstr(text, "\"payload\":{\"n\":1,\"m\":[1]}"));
    assert_non_null(strstr(text, "\"metadata\":{\"u\":-0.5,\"s\":\"a\"}"));
    assert_null(util_json_strings_bad(text, strlen(text)));
    free(text);
    text = task_webhook_payload(l.t);
    assert_non_null(strstr(text, "\"metadata\":{\"u\":-0.5,\"s\":\"a\"}"));
    assert_null(util_json_strings_bad(text, strlen(text)));
    free(text);
    assert_int_equal(l.t->body_len, strlen(l.t->body));
    loaded_free(&l);
    task_free(t);
}

static void damaged_stored_headers_go_out_as_none(void **state)
{
    struct fx *f = *state;
    struct task *t = new_task(NOW, NOW);
    free(t->headers_json);
    t->headers_json = xstrdup("{\"x-model\":\"big\""); /* cut short, as a damaged page reads */
    insert(f, t);
    struct loaded l;
    assert_int_equal(load(f, t->id, &l), STORE_OK);
    assert_null(l.t->headers_json); /* the call goes out without them */
    char *text = task_json(l.t, NULL, 0, NULL, false);
    assert_non_null(strstr(text, "\"headers\":{}"));
    assert_null(util_json_strings_bad(text, strlen(text)));
    cJSON *v = cJSON_Parse(text);
    assert_non_null(v);
    cJSON_Delete(v);
    free(text);
    loaded_free(&l);
    task_free(t);
}

static void get_unknown_id_is_not_found(void **state)
{
    struct fx *f = *state;
    struct loaded l;
    assert_int_equal(load(f, "01a221b7-4f1f-707d-9c40-a269a508bd38", &l), STORE_NOT_FOUND);
    assert_null(l.t);
    assert_int_equal(l.n_attempts, 0);
    assert_int_equal(load(f, "", &l), STORE_NOT_FOUND);
}

static void insert_duplicate_id_fails_and_rolls_back(void **state)
{
    struct fx *f = *state;
    struct task *t = new_task(NOW, NOW);
    insert(f, t);
    struct task *dup = new_task(NOW, NOW);
    memcpy(dup->id, t->id, ID_LEN);
    begin(f);
    assert_int_equal(store_task_insert(f->w, dup), STORE_ERROR);
    assert_non_null(strstr(store_conn_error(f->w), "UNIQUE"));
    store_rollback(f->w);
    int64_t n = 0;
    struct store_conn *r = store_conn_acquire(f->store);
    assert_int_equal(store_task_count(r, &n), STORE_OK);
    store_conn_release(r);
    assert_int_equal(n, 1);
    task_free(dup);
    task_free(t);
}

static void rollback_discards_writes(void **state)
{
    struct fx *f = *state;
    struct task *t = new_task(NOW, NOW);
    begin(f);
    must(f, store_task_insert(f->w, t), "insert");
    store_rollback(f->w);
    struct loaded l;
    assert_int_equal(load(f, t->id, &l), STORE_NOT_FOUND);
    assert_int_equal(claim_count(f, NOW), 0);
    task_free(t);
}

/* t is stored, under the seq it was inserted with. */
static void assert_stored(struct fx *f, const struct task *t)
{
    struct loaded l;
    assert_int_equal(load(f, t->id, &l), STORE_OK);
    assert_int_equal(l.t->seq, t->seq);
    loaded_free(&l);
}

static void data_survives_reopen(void **state)
{
    struct fx *f = *state;
    struct task *t = new_task(NOW, NOW);
    insert(f, t);
    reopen(f);
    assert_stored(f, t);
    task_free(t);
}

/* synchronous = full with the sync split from the commit (writer.c's
 * pipeline): the writer's connection defers, commits made before
 * store_sync() are on disk after it (here: they survive a reopen), and with
 * synchronous = normal there is nothing to defer. */
static void deferred_sync_applies_to_full_only(void **state)
{
    struct fx *f = *state;
    assert_false(store_defer_sync(f->w)); /* the fixture runs synchronous = normal */
    assert_int_equal(store_sync(f->store), 0);

    f->cfg.synchronous = CONFIG_SYNC_FULL;
    reopen(f);
    struct task *t = new_task(NOW, NOW);
    insert(f, t); /* the WAL file exists once a transaction wrote */
    assert_true(store_defer_sync(f->w));
    struct task *u = new_task(NOW + 1, NOW + 1);
    insert(f, u);
    assert_int_equal(store_sync(f->store), 0);
    reopen(f);
    assert_stored(f, u);
    task_free(t);
    task_free(u);
}

/* The file synced is the WAL SQLite writes: with the database named through
 * a symbolic link, SQLite writes "<target>-wal", not "<link>-wal". */
static void deferred_sync_finds_the_wal_behind_a_symbolic_link(void **state)
{
    struct fx *f = *state;
    char link[700];
    snprintf(link, sizeof link, "%s/link.db", f->dir);
    assert_int_equal(symlink(f->path, link), 0);
    free(f->cfg.db);
    f->cfg.db = xstrdup(link);
    f->cfg.synchronous = CONFIG_SYNC_FULL;
    reopen(f);
    struct task *t = new_task(NOW, NOW);
    insert(f, t);
    assert_true(store_defer_sync(f->w));
    assert_int_equal(store_sync(f->store), 0);
    char wal[720];
    snprintf(wal, sizeof wal, "%s-wal", link);
    assert_int_equal(access(wal, F_OK), -1); /* no file beside the link */
    task_free(t);
}

/* ---- claims ---- */

static void claim_order_is_run_at_then_insertion(void **state)
{
    struct fx *f = *state;
    struct task *a = new_task(NOW, NOW + 300), *b = new_task(NOW, NOW + 100),
                *c = new_task(NOW, NOW + 100), *d = new_task(NOW, NOW + 200);
    insert(f, a);
    insert(f, b);
    insert(f, c);
    insert(f, d);
    const struct task *want[] = {b, c, d, a};
    for (size_t i = 0; i < ARRAY_LEN(want); i++) {
        struct task *got = claim_one(f, NOW + 1000, 0);
        if (strcmp(got->id, want[i]->id) != 0)
            fail_msg("claim %zu: got seq %lld, want seq %lld", i, (long long)got->seq,
                     (long long)want[i]->seq);
        task_free(got);
    }
    assert_int_equal(claim_count(f, NOW + 1000), 0);
    task_free(a);
    task_free(b);
    task_free(c);
    task_free(d);
}

static void claim_limit_takes_the_earliest(void **state)
{
    struct fx *f = *state;
    struct task *late = new_task(NOW, NOW + 50), *early = new_task(NOW, NOW + 10),
                *mid = new_task(NOW, NOW + 20);
    insert(f, late);
    insert(f, early);
    insert(f, mid);
    size_t n = 0;
    struct task **list = claim(f, NOW + 100, 0, 2, &n);
    assert_int_equal(n, 2);
    bool has_early = false, has_mid = false;
    for (size_t i = 0; i < n; i++) {
        has_early |= strcmp(list[i]->id, early->id) == 0;
        has_mid |= strcmp(list[i]->id, mid->id) == 0;
    }
    assert_true(has_early && has_mid);
    free_tasks(list, n);
    task_free(late);
    task_free(early);
    task_free(mid);
}

static void claim_skips_tasks_not_yet_due(void **state)
{
    struct fx *f = *state;
    struct task *later = new_task(NOW, NOW + 1), *now = new_task(NOW, NOW);
    insert(f, later);
    insert(f, now);
    size_t n = 0;
    struct task **list = claim(f, NOW, 0, 10, &n);
    assert_int_equal(n, 1);
    assert_string_equal(list[0]->id, now->id);
    free_tasks(list, n);
    assert_int_equal(claim_count(f, NOW), 0);
    list = claim(f, NOW + 1, 0, 10, &n);
    assert_int_equal(n, 1);
    assert_string_equal(list[0]->id, later->id);
    free_tasks(list, n);
    task_free(later);
    task_free(now);
}

static void claim_sets_the_lease(void **state)
{
    struct fx *f = *state;
    struct task *t = new_task(NOW, NOW);
    t->timeout_ms = 1500;
    insert(f, t);
    struct task *c = claim_one(f, NOW + 7, 60000);
    assert_int_equal(c->seq, t->seq);
    assert_int_equal(c->status, TASK_RUNNING);
    assert_int_equal(c->started_at_ms, NOW + 7);
    assert_int_equal(c->updated_at_ms, NOW + 7);
    assert_int_equal(c->lease_until_ms, NOW + 7 + 1500 + 60000);
    assert_int_equal(c->claim_token, 1);
    assert_int_equal(c->attempts, 0);
    assert_string_equal(c->callback_url, t->callback_url);
    /* The same in the database. */
    struct loaded l;
    assert_int_equal(load(f, t->id, &l), STORE_OK);
    assert_int_equal(l.t->status, TASK_RUNNING);
    assert_int_equal(l.t->lease_until_ms, NOW + 7 + 1500 + 60000);
    assert_int_equal(l.t->claim_token, 1);
    loaded_free(&l);
    /* A running task is not claimed again, and is not "due". */
    assert_int_equal(claim_count(f, NOW + 100000), 0);
    assert_int_equal(next_due(f), INT64_MAX);
    task_free(c);
    task_free(t);
}

/* ---- finishing attempts ---- */

static void finish_with_current_claim_is_applied(void **state)
{
    struct fx *f = *state;
    struct task *t = new_task(NOW, NOW);
    insert(f, t);
    task_free(t);
    t = claim_one(f, NOW, 0);
    complete(t, NOW + 42);
    struct attempt a = {.n = 1,
                        .started_at_ms = NOW,
                        .finished_at_ms = NOW + 42,
                        .duration_ms = 41,
                        .status_code = 200};
    bool applied = false;
    finish(f, t, &a, NULL, &applied);
    assert_true(applied);
    struct loaded l;
    assert_int_equal(load(f, t->id, &l), STORE_OK);
    assert_int_equal(l.t->status, TASK_COMPLETED);
    assert_int_equal(l.t->attempts, 1);
    assert_int_equal(l.t->finished_at_ms, NOW + 42);
    assert_int_equal(l.t->updated_at_ms, NOW + 42);
    assert_int_equal(l.t->lease_until_ms, 0);
    assert_int_equal(l.t->response_status, 200);
    assert_string_equal(l.t->response_headers_json, "{\"content-type\":\"application/json\"}");
    assert_int_equal(l.t->response_body_len, strlen("{\"ok\":true}"));
    assert_memory_equal(l.t->response_body, "{\"ok\":true}", l.t->response_body_len);
    assert_int_equal(l.t->response_ms, 42);
    assert_null(l.t->error_code);
    assert_int_equal(l.n_attempts, 1);
    assert_int_equal(l.attempts[0].n, 1);
    assert_int_equal(l.attempts[0].started_at_ms, NOW);
    assert_int_equal(l.attempts[0].finished_at_ms, NOW + 42);
    assert_int_equal(l.attempts[0].duration_ms, 41);
    assert_int_equal(l.attempts[0].status_code, 200);
    assert_null(l.attempts[0].error_code);
    assert_false(l.has_webhook); /* no webhookUrl, no outbox */
    loaded_free(&l);
    task_free(t);
}

static void finish_with_stale_claim_writes_nothing(void **state)
{
    struct fx *f = *state;
    struct task *t = new_task(NOW, NOW);
    t->webhook_url = xstrdup("https://hooks.example.com/x");
    insert(f, t);
    task_free(t);
    t = claim_one(f, NOW, 0);
    int64_t token = t->claim_token;
    complete(t, NOW + 5);
    struct attempt a = {
        .n = 1, .started_at_ms = NOW, .finished_at_ms = NOW + 5, .status_code = 200};
    char *body = task_webhook_payload(t);
    bool applied = true;
    t->claim_token = token + 1;
    finish(f, t, &a, body, &applied);
    assert_false(applied);
    t->claim_token = token - 1;
    applied = true;
    finish(f, t, &a, body, &applied);
    assert_false(applied);
    struct loaded l;
    assert_int_equal(load(f, t->id, &l), STORE_OK);
    assert_int_equal(l.t->status, TASK_RUNNING);
    assert_int_equal(l.t->attempts, 0);
    assert_int_equal(l.t->response_status, 0);
    assert_null(l.t->response_body);
    assert_int_equal(l.t->finished_at_ms, 0);
    assert_int_equal(l.n_attempts, 0);
    assert_false(l.has_webhook);
    loaded_free(&l);
    size_t n = 0;
    struct webhook_msg **msgs = claim_webhooks(f, NOW + 100000, &n);
    assert_int_equal(n, 0);
    free_msgs(msgs, n);
    /* The right token still works afterwards, exactly once. */
    t->claim_token = token;
    finish(f, t, &a, body, &applied);
    assert_true(applied);
    finish(f, t, &a, body, &applied);
    assert_false(applied);
    assert_int_equal(load(f, t->id, &l), STORE_OK);
    assert_int_equal(l.n_attempts, 1);
    assert_true(l.has_webhook);
    loaded_free(&l);
    msgs = claim_webhooks(f, NOW + 100000, &n);
    assert_int_equal(n, 1); /* one outbox row, not two */
    free_msgs(msgs, n);
    free(body);
    task_free(t);
}

/* A cancel stored while the call was ending records the attempt as
 * aborted; the result that comes after it is not stored, but when the
 * target had answered, the attempt says with what. A transport error
 * leaves the attempt as the cancel wrote it. */
static void a_result_a_cancel_overtook_keeps_the_answer_status(void **state)
{
    struct fx *f = *state;
    for (int status = 0; status <= 200; status += 200) {
        struct task *t = new_task(NOW, NOW);
        insert(f, t);
        task_free(t);
        t = claim_one(f, NOW, 0);
        begin(f);
        struct task *cancelled = NULL;
        bool was_running = false;
        must(f, store_task_cancel(f->w, t->id, NULL, NOW + 3, &cancelled, &was_running), "cancel");
        commit(f);
        assert_true(was_running);
        task_free(cancelled);

        complete(t, NOW + 5);
        struct attempt a = {.n = 1, .started_at_ms = NOW, .finished_at_ms = NOW + 5, .status_code = status};
        if (!status) {
            t->status = TASK_QUEUED;
            a.error_code = "connect_failed";
            a.error_message = "refused";
        }
        bool applied = true;
        finish(f, t, &a, NULL, &applied);
        assert_false(applied);
        struct loaded l;
        assert_int_equal(load(f, t->id, &l), STORE_OK);
        assert_int_equal(l.t->status, TASK_CANCELLED);
        assert_int_equal(l.n_attempts, 1);
        assert_string_equal(l.attempts[0].error_code, "cancelled");
        assert_int_equal(l.attempts[0].status_code, status);
        if (status)
            assert_non_null(strstr(l.attempts[0].error_message, "the target had answered 200"));
        else
            assert_null(strstr(l.attempts[0].error_message, "answered"));
        loaded_free(&l);
        task_free(t);
    }
}

static void finish_for_retry_requeues_at_run_at(void **state)
{
    struct fx *f = *state;
    struct task *t = new_task(NOW, NOW);
    insert(f, t);
    task_free(t);
    t = claim_one(f, NOW, 0);
    t->status = TASK_QUEUED;
    t->attempts = 1;
    t->run_at_ms = NOW + 2000;
    t->updated_at_ms = NOW + 10;
    t->response_status = 503;
    t->response_body = xstrdup("busy");
    t->response_body_len = 4;
    t->error_code = xstrdup("http_error");
    t->error_message = xstrdup("target answered 503");
    struct attempt a = {.n = 1,
                        .started_at_ms = NOW,
                        .finished_at_ms = NOW + 10,
                        .duration_ms = 10,
                        .status_code = 503,
                        .error_code = "http_error",
                        .error_message = "target answered 503"};
    bool applied = false;
    finish(f, t, &a, NULL, &applied);
    assert_true(applied);
    assert_int_equal(next_due(f), NOW + 2000);
    assert_int_equal(claim_count(f, NOW + 1999), 0);
    struct task *again = claim_one(f, NOW + 2000, 0);
    assert_int_equal(again->attempts, 1);
    assert_int_equal(again->claim_token, 2);
    assert_string_equal(again->error_code, "http_error"); /* kept while retrying */
    struct loaded l;
    assert_int_equal(load(f, t->id, &l), STORE_OK);
    assert_int_equal(l.n_attempts, 1);
    assert_string_equal(l.attempts[0].error_code, "http_error");
    assert_string_equal(l.attempts[0].error_message, "target answered 503");
    assert_int_equal(l.attempts[0].status_code, 503);
    loaded_free(&l);
    task_free(again);
    task_free(t);
}

/* ---- the webhook outbox ---- */

static void final_finish_writes_the_outbox_row(void **state)
{
    struct fx *f = *state;
    char id[ID_LEN];
    finished_task_with_webhook(f, id);
    struct loaded l;
    assert_int_equal(load(f, id, &l), STORE_OK);
    assert_true(l.has_webhook);
    assert_int_equal(strncmp(l.webhook.id, "msg_", 4), 0);
    assert_true(id_valid(l.webhook.id + 4));
    assert_string_equal(l.webhook.status, "pending");
    assert_int_equal(l.webhook.attempts, 0);
    assert_int_equal(l.webhook.next_at_ms, NOW + 10);
    assert_int_equal(l.webhook.delivered_at_ms, 0);
    assert_int_equal(next_due(f), NOW + 10);

    size_t n = 0;
    struct webhook_msg **msgs = claim_webhooks(f, NOW + 10, &n);
    assert_int_equal(n, 1);
    struct webhook_msg *m = msgs[0];
    assert_string_equal(m->id, l.webhook.id);
    assert_string_equal(m->task_id, id);
    assert_string_equal(m->url, "https://hooks.example.com/done");
    assert_int_equal(m->attempts, 0);
    assert_int_equal(m->claim_token, 1);
    cJSON *body = cJSON_ParseWithLength(m->body, m->body_len);
    assert_non_null(body);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(body, "taskId")->valuestring, id);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(body, "status")->valuestring, "completed");
    cJSON_Delete(body);
    free_msgs(msgs, n);
    loaded_free(&l);
    /* Claimed: delivering, so not claimed twice. */
    assert_int_equal(load(f, id, &l), STORE_OK);
    assert_string_equal(l.webhook.status, "delivering");
    loaded_free(&l);
    msgs = claim_webhooks(f, NOW + 10, &n);
    assert_int_equal(n, 0);
    free_msgs(msgs, n);
}

static void no_outbox_row_without_webhook_url_or_body(void **state)
{
    struct fx *f = *state;
    /* A webhook body for a task without webhookUrl writes nothing. */
    struct task *t = new_task(NOW, NOW);
    insert(f, t);
    task_free(t);
    t = claim_one(f, NOW, 0);
    complete(t, NOW + 1);
    struct attempt a = {
        .n = 1, .started_at_ms = NOW, .finished_at_ms = NOW + 1, .status_code = 200};
    bool applied;
    finish(f, t, &a, "{\"x\":1}", &applied);
    assert_true(applied);
    task_free(t);
    /* A task with webhookUrl finished without a body (a retry) writes nothing. */
    t = new_task(NOW, NOW);
    t->webhook_url = xstrdup("https://hooks.example.com/x");
    insert(f, t);
    task_free(t);
    t = claim_one(f, NOW, 0);
    t->status = TASK_QUEUED;
    t->attempts = 1;
    t->run_at_ms = NOW + 1000;
    finish(f, t, &a, NULL, &applied);
    assert_true(applied);
    size_t n = 0;
    struct webhook_msg **msgs = claim_webhooks(f, NOW + 100000, &n);
    assert_int_equal(n, 0);
    free_msgs(msgs, n);
    task_free(t);
}

static struct webhook_msg *claim_one_webhook(struct fx *f, int64_t now)
{
    size_t n = 0;
    struct webhook_msg **msgs = claim_webhooks(f, now, &n);
    assert_int_equal(n, 1);
    struct webhook_msg *m = msgs[0];
    free(msgs);
    return m;
}

static void webhook_finish(struct fx *f, const struct webhook_result *r)
{
    begin(f);
    must(f, store_webhook_finish(f->w, r), "webhook finish");
    commit(f);
}

static void webhook_delivered(void **state)
{
    struct fx *f = *state;
    char id[ID_LEN];
    finished_task_with_webhook(f, id);
    struct webhook_msg *m = claim_one_webhook(f, NOW + 10);
    struct webhook_result r = {.seq = m->seq,
                               .claim_token = m->claim_token,
                               .attempts = 1,
                               .delivered = true,
                               .started_at_ms = NOW + 10,
                               .finished_at_ms = NOW + 20,
                               .duration_ms = 10,
                               .status_code = 204};
    webhook_finish(f, &r);
    struct loaded l;
    assert_int_equal(load(f, id, &l), STORE_OK);
    assert_string_equal(l.webhook.status, "delivered");
    assert_int_equal(l.webhook.attempts, 1);
    assert_int_equal(l.webhook.delivered_at_ms, NOW + 20);
    assert_int_equal(l.webhook.last_status_code, 204);
    assert_null(l.webhook.last_error);
    loaded_free(&l);
    size_t n = 0;
    struct webhook_msg **msgs = claim_webhooks(f, INT64_MAX / 2, &n);
    assert_int_equal(n, 0);
    free_msgs(msgs, n);
    assert_int_equal(next_due(f), INT64_MAX);
    webhook_msg_free(m);
}

static void webhook_give_up_marks_failed(void **state)
{
    struct fx *f = *state;
    char id[ID_LEN];
    finished_task_with_webhook(f, id);
    struct webhook_msg *m = claim_one_webhook(f, NOW + 10);
    struct webhook_result r = {.seq = m->seq,
                               .claim_token = m->claim_token,
                               .attempts = 8,
                               .give_up = true,
                               .started_at_ms = NOW + 10,
                               .finished_at_ms = NOW + 20,
                               .status_code = 500,
                               .error = "receiver answered 500"};
    webhook_finish(f, &r);
    struct loaded l;
    assert_int_equal(load(f, id, &l), STORE_OK);
    assert_string_equal(l.webhook.status, "failed");
    assert_int_equal(l.webhook.attempts, 8);
    assert_int_equal(l.webhook.delivered_at_ms, 0);
    assert_int_equal(l.webhook.last_status_code, 500);
    assert_string_equal(l.webhook.last_error, "receiver answered 500");
    loaded_free(&l);
    size_t n = 0;
    struct webhook_msg **msgs = claim_webhooks(f, INT64_MAX / 2, &n);
    assert_int_equal(n, 0);
    free_msgs(msgs, n);
    webhook_msg_free(m);
}

static void webhook_retry_waits_for_next_at(void **state)
{
    struct fx *f = *state;
    char id[ID_LEN];
    finished_task_with_webhook(f, id);
    struct webhook_msg *m = claim_one_webhook(f, NOW + 10);
    struct webhook_result r = {.seq = m->seq,
                               .claim_token = m->claim_token,
                               .attempts = 1,
                               .next_at_ms = NOW + 5020,
                               .started_at_ms = NOW + 10,
                               .finished_at_ms = NOW + 20,
                               .error = "connection refused"};
    webhook_finish(f, &r);
    struct loaded l;
    assert_int_equal(load(f, id, &l), STORE_OK);
    assert_string_equal(l.webhook.status, "pending");
    assert_int_equal(l.webhook.attempts, 1);
    assert_int_equal(l.webhook.next_at_ms, NOW + 5020);
    assert_int_equal(l.webhook.last_status_code, 0);
    assert_string_equal(l.webhook.last_error, "connection refused");
    loaded_free(&l);
    assert_int_equal(next_due(f), NOW + 5020);
    size_t n = 0;
    struct webhook_msg **msgs = claim_webhooks(f, NOW + 5019, &n);
    assert_int_equal(n, 0);
    free_msgs(msgs, n);
    struct webhook_msg *again = claim_one_webhook(f, NOW + 5020);
    assert_string_equal(again->id, m->id); /* the same webhook-id on every retry */
    assert_int_equal(again->attempts, 1);
    assert_int_equal(again->claim_token, m->claim_token + 1);
    webhook_msg_free(again);
    webhook_msg_free(m);
}

static void webhook_finish_with_stale_claim_changes_nothing(void **state)
{
    struct fx *f = *state;
    char id[ID_LEN];
    finished_task_with_webhook(f, id);
    struct webhook_msg *m = claim_one_webhook(f, NOW + 10);
    struct webhook_result r = {.seq = m->seq,
                               .claim_token = m->claim_token + 1,
                               .attempts = 1,
                               .delivered = true,
                               .finished_at_ms = NOW + 20,
                               .status_code = 200};
    webhook_finish(f, &r);
    struct loaded l;
    assert_int_equal(load(f, id, &l), STORE_OK);
    assert_string_equal(l.webhook.status, "delivering");
    assert_int_equal(l.webhook.attempts, 0);
    loaded_free(&l);
    webhook_msg_free(m);
}

/* Requeues the leases that ended before at. */
static void requeue_expired(struct fx *f, int64_t at)
{
    int count = -1;
    begin(f);
    must(f, store_requeue_running(f->w, at, at, "lease expired", NULL, NULL, &count), "requeue");
    commit(f);
}

static void assert_webhook_status(struct fx *f, const char *task_id, const char *want)
{
    struct loaded l;
    assert_int_equal(load(f, task_id, &l), STORE_OK);
    assert_string_equal(l.webhook.status, want);
    loaded_free(&l);
}

/* A webhook written claimed is what a claim of it would have returned:
 * delivering under a lease, no claim of its own, finished by its token,
 * and back to pending when the lease is requeued. */
static void webhook_inserted_claimed_is_leased(void **state)
{
    struct fx *f = *state;
    struct task *t = new_task(NOW, NOW);
    t->webhook_url = xstrdup("https://hooks.example.com/done");
    insert(f, t);
    char id[ID_LEN];
    memcpy(id, t->id, ID_LEN);
    t->updated_at_ms = NOW + 10;
    struct webhook_msg m = {0};
    begin(f);
    must(f, store_webhook_insert(f->w, t, "{\"a\":1}", NOW + 90000, &m), "insert claimed");
    commit(f);
    assert_true(m.seq > 0);
    assert_int_equal(m.claim_token, 1);
    assert_memory_equal(m.id, "msg_", 4);
    struct loaded l;
    assert_int_equal(load(f, id, &l), STORE_OK);
    assert_string_equal(l.webhook.status, "delivering");
    assert_string_equal(l.webhook.id, m.id);
    assert_int_equal(l.webhook.attempts, 0);
    assert_int_equal(l.webhook.next_at_ms, NOW + 10);
    loaded_free(&l);
    size_t n = 0;
    struct webhook_msg **msgs = claim_webhooks(f, INT64_MAX / 2, &n);
    assert_int_equal(n, 0); /* claimed already */
    free_msgs(msgs, n);
    assert_int_equal(next_due(f), NOW); /* only the task waits */

    /* Its lease ends at NOW + 90000: requeued then, not before, and the old
     * token is fenced off. */
    requeue_expired(f, NOW + 89999);
    assert_webhook_status(f, id, "delivering");
    requeue_expired(f, NOW + 90001);
    assert_webhook_status(f, id, "pending");
    struct webhook_msg *again = claim_one_webhook(f, NOW + 90001);
    assert_string_equal(again->id, m.id);
    assert_true(again->claim_token > m.claim_token);
    struct webhook_result r = {.seq = m.seq,
                               .claim_token = m.claim_token,
                               .attempts = 1,
                               .delivered = true,
                               .finished_at_ms = NOW + 90002,
                               .status_code = 200};
    webhook_finish(f, &r); /* the first holder's late result */
    assert_webhook_status(f, id, "delivering");
    r.claim_token = again->claim_token;
    webhook_finish(f, &r);
    assert_webhook_status(f, id, "delivered");
    webhook_msg_free(again);
    task_free(t);
}

/* ---- requeue ---- */

static void requeue_running_records_an_interrupted_attempt(void **state)
{
    struct fx *f = *state;
    struct task *short_lease = new_task(NOW, NOW), *long_lease = new_task(NOW, NOW);
    short_lease->timeout_ms = 1000;
    long_lease->timeout_ms = 100000;
    insert(f, short_lease);
    insert(f, long_lease);
    size_t n = 0;
    struct task **claimed = claim(f, NOW, 0, 10, &n);
    assert_int_equal(n, 2);
    int count = -1;
    begin(f);
    must(f, store_requeue_running(f->w, NOW + 2000, NOW + 2000, "lease expired", NULL, NULL, &count),
         "requeue");
    commit(f);
    assert_int_equal(count, 1);

    struct loaded l;
    assert_int_equal(load(f, short_lease->id, &l), STORE_OK);
    assert_int_equal(l.t->status, TASK_QUEUED);
    assert_int_equal(l.t->attempts, 1);
    /* Not counted against the task's retries: the stop was ours. */
    assert_int_equal(l.t->attempts_uncounted, 1);
    /* Due as it was, so it keeps its place in its queue's order (a FIFO
     * queue ran the tasks behind it first when this was now). */
    assert_int_equal(l.t->run_at_ms, NOW);
    assert_int_equal(l.t->lease_until_ms, 0);
    assert_int_equal(l.t->claim_token, 2);
    assert_string_equal(l.t->error_code, "interrupted");
    assert_string_equal(l.t->error_message, "lease expired");
    assert_int_equal(l.n_attempts, 1);
    assert_int_equal(l.attempts[0].n, 1);
    assert_int_equal(l.attempts[0].started_at_ms, NOW);
    assert_int_equal(l.attempts[0].finished_at_ms, NOW + 2000);
    assert_int_equal(l.attempts[0].duration_ms, 2000);
    assert_int_equal(l.attempts[0].status_code, 0);
    assert_string_equal(l.attempts[0].error_code, "interrupted");
    assert_string_equal(l.attempts[0].error_message, "lease expired");
    loaded_free(&l);
    assert_int_equal(load(f, long_lease->id, &l), STORE_OK);
    assert_int_equal(l.t->status, TASK_RUNNING);
    assert_int_equal(l.n_attempts, 0);
    loaded_free(&l);

    /* The interrupted claim can no longer finish its task. */
    struct task *old = strcmp(claimed[0]->id, short_lease->id) == 0 ? claimed[0] : claimed[1];
    complete(old, NOW + 3000);
    struct attempt a = {
        .n = 1, .started_at_ms = NOW, .finished_at_ms = NOW + 3000, .status_code = 200};
    bool applied = true;
    finish(f, old, &a, NULL, &applied);
    assert_false(applied);

    /* INT64_MAX takes every running task (shutdown, start-up). */
    begin(f);
    must(f, store_requeue_running(f->w, NOW + 3000, INT64_MAX, "shutdown", NULL, NULL, &count), "requeue all");
    commit(f);
    assert_int_equal(count, 1);
    assert_int_equal(load(f, long_lease->id, &l), STORE_OK);
    assert_int_equal(l.t->status, TASK_QUEUED);
    assert_string_equal(l.t->error_message, "shutdown");
    loaded_free(&l);
    /* Both are claimable again, the earlier requeued first, its interrupted
     * attempt counted. */
    struct task *again = claim_one(f, NOW + 3000, 0);
    assert_int_equal(again->seq, short_lease->seq);
    assert_int_equal(again->attempts, 1);
    task_free(again);
    begin(f);
    must(f, store_requeue_running(f->w, NOW + 4000, NOW, "nothing expired", NULL, NULL, &count),
         "requeue none");
    commit(f);
    assert_int_equal(count, 0);

    free_tasks(claimed, n);
    task_free(short_lease);
    task_free(long_lease);
}

static void requeue_running_returns_delivering_webhooks_to_pending(void **state)
{
    struct fx *f = *state;
    char id[ID_LEN];
    finished_task_with_webhook(f, id);
    struct webhook_msg *m = claim_one_webhook(f, NOW + 10);
    int count = -1;
    begin(f);
    must(f, store_requeue_running(f->w, NOW + 20, INT64_MAX, "shutdown", NULL, NULL, &count), "requeue");
    commit(f);
    assert_int_equal(count, 0); /* tasks only */
    struct loaded l;
    assert_int_equal(load(f, id, &l), STORE_OK);
    assert_string_equal(l.webhook.status, "pending");
    assert_int_equal(l.webhook.next_at_ms, NOW + 20);
    assert_int_equal(l.webhook.attempts, 0);
    loaded_free(&l);
    /* The old claim is fenced off. */
    struct webhook_result r = {.seq = m->seq,
                               .claim_token = m->claim_token,
                               .attempts = 1,
                               .delivered = true,
                               .finished_at_ms = NOW + 30,
                               .status_code = 200};
    webhook_finish(f, &r);
    assert_int_equal(load(f, id, &l), STORE_OK);
    assert_string_equal(l.webhook.status, "pending");
    loaded_free(&l);
    struct webhook_msg *again = claim_one_webhook(f, NOW + 20);
    assert_int_equal(again->claim_token, m->claim_token + 2);
    webhook_msg_free(again);
    webhook_msg_free(m);
}

/* ---- next_due ---- */

static void next_due_is_the_earliest_waiting_work(void **state)
{
    struct fx *f = *state;
    assert_int_equal(next_due(f), INT64_MAX);
    struct task *a = new_task(NOW, NOW + 500), *b = new_task(NOW, NOW + 300);
    a->webhook_url = xstrdup("https://hooks.example.com/x");
    insert(f, a);
    assert_int_equal(next_due(f), NOW + 500);
    insert(f, b);
    assert_int_equal(next_due(f), NOW + 300);
    struct task *c = claim_one(f, NOW + 300, 0); /* b runs: no longer waiting */
    assert_int_equal(next_due(f), NOW + 500);
    task_free(c);
    c = claim_one(f, NOW + 500, 0);
    assert_int_equal(next_due(f), INT64_MAX);
    /* A pending webhook counts too. */
    assert_int_equal(c->seq, a->seq);
    complete(c, NOW + 600);
    struct attempt at = {
        .n = 1, .started_at_ms = NOW + 500, .finished_at_ms = NOW + 600, .status_code = 200};
    bool applied;
    finish(f, c, &at, "{}", &applied);
    assert_true(applied);
    assert_int_equal(next_due(f), NOW + 600);
    struct task *d = new_task(NOW, NOW + 550);
    insert(f, d);
    assert_int_equal(next_due(f), NOW + 550);
    task_free(a);
    task_free(b);
    task_free(c);
    task_free(d);
}

/* ---- queue depths ---- */

struct depth_rows {
    char names[8][16];
    int64_t queued[8], due[8];
    int n;
};

static void add_depth_row(void *arg, const char *queue, int64_t queued, int64_t due)
{
    struct depth_rows *d = arg;
    assert_true(d->n < 8);
    snprintf(d->names[d->n], sizeof d->names[0], "%s", queue);
    d->queued[d->n] = queued;
    d->due[d->n] = due;
    d->n++;
}

static struct depth_rows depths(struct fx *f, int64_t now, const char *after, int limit)
{
    struct depth_rows d = {.n = 0};
    must(f, store_queue_depths(f->w, now, after, limit, add_depth_row, &d), "queue depths");
    return d;
}

static void put_schedule(struct fx *f, const char *tenant, const char *name, int64_t next, bool *created)
{
    struct schedule s = {.cron = (char *)"* * * * *", .task = (char *)"{\"callbackUrl\": \"https://x/\"}",
                         .next_run_at_ms = next, .updated_at_ms = NOW};
    snprintf(s.tenant, sizeof s.tenant, "%s", tenant);
    snprintf(s.name, sizeof s.name, "%s", name);
    assert_int_equal(store_schedule_put(f->w, &s, created), STORE_OK);
}

/* A schedule is kept whole by tenant and name; a replace keeps its runs and
 * creation; runs are counted, and due ones come earliest first. */
static void schedules_keep_their_runs_and_come_due_in_order(void **state)
{
    struct fx *f = *state;
    bool created = false;
    int64_t due = 0;
    assert_int_equal(store_schedule_next_due(f->w, &due), STORE_OK);
    assert_true(due == INT64_MAX);
    begin(f);
    put_schedule(f, "", "b", NOW + 2000, &created);
    assert_true(created);
    put_schedule(f, "", "a", NOW + 1000, &created);
    put_schedule(f, "acme", "a", NOW - 5, &created);
    assert_true(created); /* another tenant's name is another schedule */
    put_schedule(f, "", "paused", 0, &created);
    commit(f);
    assert_int_equal(store_schedule_next_due(f->w, &due), STORE_OK);
    assert_true(due == NOW - 5);

    begin(f);
    assert_int_equal(store_schedule_ran(f->w, "", "a", NOW + 1000, "0190aaaa-0000-7000-8000-000000000001", NULL,
                                        true, NOW + 61000), STORE_OK);
    assert_int_equal(store_schedule_ran(f->w, "", "a", NOW + 1500, NULL, "the backlog is full", false, 0), STORE_OK);
    assert_int_equal(store_schedule_ran(f->w, "", "nope", NOW, NULL, "x", true, 0), STORE_NOT_FOUND);
    commit(f);
    struct schedule s;
    assert_int_equal(store_schedule_get(f->w, "", "a", &s), STORE_OK);
    assert_int_equal(s.runs, 1);
    assert_string_equal(s.last_task_id, "0190aaaa-0000-7000-8000-000000000001"); /* kept by a run that made none */
    assert_string_equal(s.last_error, "the backlog is full");
    assert_true(s.last_run_at_ms == NOW + 1500);
    assert_true(s.next_run_at_ms == NOW + 61000); /* not moved by a run that does not advance */
    schedule_clear(&s);

    begin(f);
    put_schedule(f, "", "a", NOW + 3000, &created); /* a replace */
    assert_false(created);
    commit(f);
    assert_int_equal(store_schedule_get(f->w, "", "a", &s), STORE_OK);
    assert_int_equal(s.runs, 1);
    assert_true(s.created_at_ms == NOW);
    assert_true(s.next_run_at_ms == NOW + 3000);
    schedule_clear(&s);

    struct schedule *list = NULL;
    size_t n = 0;
    assert_int_equal(store_schedules_due(f->w, NOW + 2500, 10, &list, &n), STORE_OK);
    assert_int_equal(n, 2); /* acme's a, then b; the paused one never */
    assert_string_equal(list[0].tenant, "acme");
    assert_string_equal(list[1].name, "b");
    for (size_t i = 0; i < n; i++) schedule_clear(&list[i]);
    free(list);
    bool cut = true;
    assert_int_equal(store_schedules_list(f->w, "", "a", 10, 0, &list, &n, &cut), STORE_OK);
    assert_false(cut);
    assert_int_equal(n, 2); /* after a: b, paused; not acme's */
    assert_string_equal(list[0].name, "b");
    assert_string_equal(list[1].name, "paused");
    assert_true(list[1].next_run_at_ms == 0);
    for (size_t i = 0; i < n; i++) schedule_clear(&list[i]);
    free(list);

    /* A page stops once the templates read reach max_bytes (each here is
     * 29 bytes), always with one at least. */
    assert_int_equal(store_schedules_list(f->w, "", "", 10, 31, &list, &n, &cut), STORE_OK);
    assert_true(cut);
    assert_int_equal(n, 2); /* a (29), b (58 >= 31): then cut */
    for (size_t i = 0; i < n; i++) schedule_clear(&list[i]);
    free(list);
    assert_int_equal(store_schedules_list(f->w, "", "", 10, 1, &list, &n, &cut), STORE_OK);
    assert_true(cut);
    assert_int_equal(n, 1);
    for (size_t i = 0; i < n; i++) schedule_clear(&list[i]);
    free(list);

    begin(f);
    assert_int_equal(store_schedule_delete(f->w, "acme", "a"), STORE_OK);
    assert_int_equal(store_schedule_delete(f->w, "acme", "a"), STORE_NOT_FOUND);
    commit(f);
    assert_int_equal(store_schedule_get(f->w, "acme", "a", &s), STORE_NOT_FOUND);
    assert_int_equal(store_schedule_next_due(f->w, &due), STORE_OK);
    assert_true(due == NOW + 2000);
}

static void queue_depths_page_after_a_name(void **state)
{
    struct fx *f = *state;
    /* Two waiting tasks in b (one due), one in each of a, c, d; a running
     * task of e is not waiting. */
    static const char *const queues[] = {"c", "b", "a", "b", "d", "e"};
    for (size_t i = 0; i < ARRAY_LEN(queues); i++) {
        struct task *t = new_task(NOW, i == 3 ? NOW - 1 : NOW + 5000);
        free(t->queue);
        t->queue = xstrdup(queues[i]);
        insert(f, t);
        task_free(t);
    }
    begin(f);
    struct task **claimed = NULL;
    size_t n = 0;
    must(f, store_tasks_claim(f->w, "e", 0, NOW + 5000, 0, 1, NULL, &claimed, &n), "claim");
    commit(f);
    assert_int_equal(n, 1);
    task_free(claimed[0]);
    free(claimed);

    struct depth_rows d = depths(f, NOW, NULL, 0); /* every queue, in name order */
    assert_int_equal(d.n, 4);
    assert_string_equal(d.names[0], "a");
    assert_string_equal(d.names[1], "b");
    assert_int_equal(d.queued[1], 2);
    assert_int_equal(d.due[1], 1);
    assert_string_equal(d.names[3], "d");
    d = depths(f, NOW, "", 2); /* "" is the start too; at most 2 */
    assert_int_equal(d.n, 2);
    assert_string_equal(d.names[1], "b");
    d = depths(f, NOW, "b", 0); /* strictly after b */
    assert_int_equal(d.n, 2);
    assert_string_equal(d.names[0], "c");
    assert_string_equal(d.names[1], "d");
    d = depths(f, NOW, "bb", 1); /* a name that has no tasks: after it */
    assert_int_equal(d.n, 1);
    assert_string_equal(d.names[0], "c");
    d = depths(f, NOW, "d", 10);
    assert_int_equal(d.n, 0);
}

/* ---- kv ---- */

static void kv_put_if_absent_keeps_the_first_value(void **state)
{
    struct fx *f = *state;
    char *v = NULL;
    struct store_conn *r = store_conn_acquire(f->store);
    assert_int_equal(store_kv_get(r, "webhook_secret", &v), STORE_NOT_FOUND);
    assert_null(v);
    store_conn_release(r);
    begin(f);
    must(f, store_kv_put_if_absent(f->w, "webhook_secret", "whsec_first", &v), "put");
    commit(f);
    assert_string_equal(v, "whsec_first");
    free(v);
    begin(f);
    must(f, store_kv_put_if_absent(f->w, "webhook_secret", "whsec_second", &v), "put again");
    commit(f);
    assert_string_equal(v, "whsec_first");
    free(v);
    begin(f);
    must(f, store_kv_put_if_absent(f->w, "other", "x", &v), "put other");
    commit(f);
    assert_string_equal(v, "x");
    free(v);
    r = store_conn_acquire(f->store);
    assert_int_equal(store_kv_get(r, "webhook_secret", &v), STORE_OK);
    assert_string_equal(v, "whsec_first");
    free(v);
    store_conn_release(r);
}

/* A claim with a take filter asks about each candidate in due order and
 * claims only those it accepts. */
struct allow_two {
    int asked, taken;
    char first_host[64];
};

static bool take_two_of_a(void *arg, const char *host)
{
    struct allow_two *a = arg;
    if (!a->asked++) snprintf(a->first_host, sizeof a->first_host, "%s", host);
    if (strcmp(host, "a.example") != 0 || a->taken == 2) return false;
    a->taken++;
    return true;
}

static void claim_filter_takes_only_what_it_allows(void **state)
{
    struct fx *f = *state;
    struct task *t[5];
    static const char *const hosts[] = {"b.example", "a.example", "a.example", "c.example", "a.example"};
    for (size_t i = 0; i < 5; i++) {
        t[i] = new_task(NOW, NOW + (int64_t)i);
        free(t[i]->host);
        t[i]->host = xstrdup(hosts[i]);
        insert(f, t[i]);
    }
    struct allow_two a = {0};
    const char *skip[] = {"c.example"};
    struct claim_filter filter = {.exclude_hosts = skip, .n_exclude = 1, .take = take_two_of_a, .arg = &a};
    struct task **list = NULL;
    size_t n = 0;
    begin(f);
    must(f, store_tasks_claim(f->w, "default", 0, NOW + 100, 0, 10, &filter, &list, &n), "claim");
    commit(f);
    assert_int_equal(n, 2);
    assert_string_equal(a.first_host, "b.example"); /* asked in due order */
    assert_int_equal(a.asked, 4);                   /* never about the excluded c.example */
    assert_int_equal(list[0]->seq, t[1]->seq);
    assert_int_equal(list[1]->seq, t[2]->seq);
    assert_int_equal(list[0]->status, TASK_RUNNING);
    free_tasks(list, n);
    assert_int_equal(claim_count(f, NOW + 100), 3); /* the rest is still queued */
    for (size_t i = 0; i < 5; i++) task_free(t[i]);
}

/* store.h: "in due order": the array comes back oldest run_at first, not
 * in whatever order UPDATE ... RETURNING happens to produce. */
static void claim_returns_tasks_in_run_at_order(void **state)
{
    struct fx *f = *state;
    static const int64_t run_at[] = {500, 100, 400, 200, 300};
    struct task *t[5];
    for (size_t i = 0; i < 5; i++) {
        t[i] = new_task(NOW, NOW + run_at[i]);
        insert(f, t[i]);
    }
    size_t n = 0;
    struct task **list = claim(f, NOW + 1000, 0, 10, &n);
    assert_int_equal(n, 5);
    bool ordered = true;
    for (size_t i = 1; i < n; i++)
        ordered &= list[i - 1]->run_at_ms <= list[i]->run_at_ms;
    free_tasks(list, n);
    for (size_t i = 0; i < 5; i++)
        task_free(t[i]);
    assert_true(ordered);
}

/* ---- leases held by this process, clock steps, the write probe ---- */

struct held {
    int64_t task_seq, webhook_seq;
    int asked;
};

static bool held_one(void *arg, bool webhook, int64_t seq)
{
    struct held *h = arg;
    h->asked++;
    return seq == (webhook ? h->webhook_seq : h->task_seq);
}

static void requeue_leaves_leases_this_process_holds(void **state)
{
    struct fx *f = *state;
    struct task *a = new_task(NOW, NOW), *b = new_task(NOW, NOW);
    a->timeout_ms = b->timeout_ms = 1000;
    insert(f, a);
    insert(f, b);
    size_t n = 0;
    struct task **claimed = claim(f, NOW, 0, 10, &n);
    assert_int_equal(n, 2);
    char hook_id[ID_LEN];
    finished_task_with_webhook(f, hook_id); /* a third task, completed, its webhook pending */
    struct webhook_msg *m = claim_one_webhook(f, NOW + 10);

    /* Far past every lease (a wall clock jumped forward): a is held, b is not;
     * the webhook delivery is held too. */
    struct held h = {.task_seq = a->seq, .webhook_seq = m->seq};
    int count = -1;
    begin(f);
    must(f, store_requeue_running(f->w, NOW + 7200000, NOW + 7200000, "lease expired", held_one, &h,
                                  &count), "requeue");
    commit(f);
    assert_int_equal(count, 1);
    assert_int_equal(h.asked, 3); /* two expired tasks, one expired webhook */
    struct loaded l;
    assert_int_equal(load(f, a->id, &l), STORE_OK);
    assert_int_equal(l.t->status, TASK_RUNNING);
    assert_int_equal(l.n_attempts, 0);
    loaded_free(&l);
    assert_int_equal(load(f, b->id, &l), STORE_OK);
    assert_int_equal(l.t->status, TASK_QUEUED);
    assert_string_equal(l.attempts[0].error_code, "interrupted");
    loaded_free(&l);
    assert_int_equal(load(f, hook_id, &l), STORE_OK);
    assert_string_equal(l.webhook.status, "delivering");
    loaded_free(&l);

    /* Once nothing is held, the same sweep takes the rest. */
    h.task_seq = h.webhook_seq = 0;
    begin(f);
    must(f, store_requeue_running(f->w, NOW + 7200000, NOW + 7200000, "lease expired", held_one, &h,
                                  &count), "requeue");
    commit(f);
    assert_int_equal(count, 1);
    assert_int_equal(load(f, a->id, &l), STORE_OK);
    assert_int_equal(l.t->status, TASK_QUEUED);
    loaded_free(&l);
    assert_int_equal(load(f, hook_id, &l), STORE_OK);
    assert_string_equal(l.webhook.status, "pending");
    loaded_free(&l);
    webhook_msg_free(m);
    free_tasks(claimed, n);
    task_free(a);
    task_free(b);
}

/* Makes t (claimed) wait for a retry until run_at. */
static void fail_for_retry(struct fx *f, struct task *t, int64_t now, int64_t run_at)
{
    t->status = TASK_QUEUED;
    t->attempts += 1;
    t->run_at_ms = run_at;
    t->updated_at_ms = now;
    t->error_code = xstrdup("http_error");
    struct attempt a = {.n = t->attempts, .started_at_ms = now, .finished_at_ms = now, .status_code = 503,
                        .error_code = "http_error"};
    bool applied = false;
    finish(f, t, &a, NULL, &applied);
    assert_true(applied);
}

static int64_t run_at_of(struct fx *f, const char *id)
{
    struct loaded l;
    assert_int_equal(load(f, id, &l), STORE_OK);
    int64_t at = l.t->run_at_ms;
    loaded_free(&l);
    return at;
}

static void shift_waits_moves_relative_waits_only(void **state)
{
    struct fx *f = *state;
    const int64_t HOUR = 3600000;
    struct task *retry = new_task(NOW, NOW), *due = new_task(NOW, NOW - 10),
                *later = new_task(NOW, NOW + HOUR);
    char hook_id[ID_LEN];
    finished_task_with_webhook(f, hook_id); /* its webhook due at NOW + 10 */
    insert(f, retry);
    struct task *c = claim_one(f, NOW, 0);
    fail_for_retry(f, c, NOW, NOW + 500); /* a retry due in 500 ms */
    task_free(c);
    insert(f, due);   /* due already, not yet claimed */
    insert(f, later); /* a first attempt at a point in time (runAt) */

    /* The wall clock steps back an hour: now reads NOW - HOUR. */
    int tasks = -1, webhooks = -1;
    begin(f);
    must(f, store_shift_waits(f->w, NOW - HOUR, -HOUR, &tasks, &webhooks), "shift");
    commit(f);
    assert_int_equal(tasks, 2);
    assert_int_equal(webhooks, 1);
    assert_int_equal(run_at_of(f, retry->id), NOW + 500 - HOUR); /* still 500 ms away */
    assert_int_equal(run_at_of(f, due->id), NOW - 10 - HOUR);    /* still due */
    assert_int_equal(run_at_of(f, later->id), NOW + HOUR);       /* a point in time stays */
    struct loaded l;
    assert_int_equal(load(f, hook_id, &l), STORE_OK);
    assert_int_equal(l.webhook.next_at_ms, NOW + 10 - HOUR);
    loaded_free(&l);
    assert_int_equal(claim_count(f, NOW - HOUR), 1); /* the due one, at once */

    /* And forward again: the retry keeps its 500 ms. */
    begin(f);
    must(f, store_shift_waits(f->w, NOW, HOUR, &tasks, &webhooks), "shift");
    commit(f);
    assert_int_equal(run_at_of(f, retry->id), NOW + 500);
    assert_int_equal(run_at_of(f, later->id), NOW + HOUR);
    task_free(retry);
    task_free(due);
    task_free(later);
}

static void finish_keeps_uncounted_attempts(void **state)
{
    struct fx *f = *state;
    struct task *t = new_task(NOW, NOW);
    insert(f, t);
    task_free(t);
    t = claim_one(f, NOW, 0);
    t->attempts_uncounted = 1; /* the daemon's own failure (EMFILE) */
    fail_for_retry(f, t, NOW, NOW + 1000);
    struct task *again = claim_one(f, NOW + 1000, 0);
    assert_int_equal(again->attempts, 1);
    assert_int_equal(again->attempts_uncounted, 1);
    task_free(again);
    task_free(t);
}

static void uncounted_webhook_attempt_keeps_the_schedule(void **state)
{
    struct fx *f = *state;
    char id[ID_LEN];
    finished_task_with_webhook(f, id);
    struct webhook_msg *m = claim_one_webhook(f, NOW + 10);
    struct webhook_result r = {.seq = m->seq, .claim_token = m->claim_token, .attempts = m->attempts,
                               .next_at_ms = NOW + 1500, .started_at_ms = NOW + 10,
                               .finished_at_ms = NOW + 11, .error = "no socket", .uncounted = true};
    webhook_finish(f, &r);
    struct loaded l;
    assert_int_equal(load(f, id, &l), STORE_OK);
    assert_string_equal(l.webhook.status, "pending");
    assert_int_equal(l.webhook.attempts, 0);
    assert_int_equal(l.webhook.next_at_ms, NOW + 1500);
    struct webhook_attempt *wa = NULL;
    size_t n = 99;
    struct store_conn *rd = store_conn_acquire(f->store);
    assert_int_equal(store_webhook_attempts_get(rd, l.t->seq, &wa, &n), STORE_OK);
    store_conn_release(rd);
    assert_int_equal(n, 0); /* no attempt row */
    free(wa);
    loaded_free(&l);
    webhook_msg_free(m);
}

static void write_probe_writes(void **state)
{
    struct fx *f = *state;
    begin(f);
    must(f, store_write_probe(f->w, 4096), "probe");
    must(f, store_write_probe(f->w, 65536), "probe again");
    commit(f);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*), sum(length(value)) FROM kv WHERE key = 'writer.probe'",
                                        -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 1);
    assert_int_equal(sqlite3_column_int(s, 1), 65536);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

/* No statement reads a whole table: each one is answered from an index, or
 * scans only a partial index of waiting or running work (small however many
 * finished tasks there are). SELECT MIN(seq), MAX(seq) in one query was such
 * a scan, run by every retention step: with a million tasks stored it cut the
 * accept rate thirty-fold. store_task_count, a whole-table count by nature,
 * is the one statement allowed to. */
static void no_statement_scans_a_whole_table(void **state)
{
    struct fx *f = *state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    const char *const *sql;
    size_t n = store_sqlite_statements(&sql);
    assert_true(n > 20);
    int checked = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(sql[i], "SELECT count(*) FROM tasks") == 0) continue;
        char *q = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", sql[i]);
        sqlite3_stmt *s;
        int rc = sqlite3_prepare_v2(db, q, -1, &s, NULL);
        sqlite3_free(q);
        if (rc != SQLITE_OK) fail_msg("cannot explain: %s (%s)", sql[i], sqlite3_errmsg(db));
        while (sqlite3_step(s) == SQLITE_ROW) {
            const char *step = (const char *)sqlite3_column_text(s, 3);
            bool scan = strncmp(step, "SCAN ", 5) == 0 && !strstr(step, "CONSTANT ROW") &&
                        !strstr(step, "json_each") && !strstr(step, "SCAN queues");
            bool partial = strstr(step, "INDEX tasks_due") || strstr(step, "INDEX tasks_leased") ||
                           strstr(step, "INDEX webhooks_due") || strstr(step, "INDEX webhooks_leased");
            if (scan && !partial) fail_msg("'%s' in the plan of: %s", step, sql[i]);
        }
        sqlite3_finalize(s);
        checked++;
    }
    assert_true(checked > 20);
    sqlite3_close(db);
}

int main(void)
{
    log_set_level(LOG_OFF);
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(open_applies_the_migrations),
        T(schedules_keep_their_runs_and_come_due_in_order),
        T(second_open_of_the_same_file_is_refused),
        T(open_refuses_tables_that_differ_from_the_migrations),
        T(open_refuses_an_unusable_path),
        T(insert_get_round_trip),
        T(insert_get_keeps_nulls),
        T(stored_json_that_json_does_not_allow_goes_out_rewritten),
        T(damaged_stored_headers_go_out_as_none),
        T(get_unknown_id_is_not_found),
        T(insert_duplicate_id_fails_and_rolls_back),
        T(rollback_discards_writes),
        T(data_survives_reopen),
        T(deferred_sync_applies_to_full_only),
        T(deferred_sync_finds_the_wal_behind_a_symbolic_link),
        T(claim_order_is_run_at_then_insertion),
        T(claim_limit_takes_the_earliest),
        T(claim_skips_tasks_not_yet_due),
        T(claim_sets_the_lease),
        T(finish_with_current_claim_is_applied),
        T(finish_with_stale_claim_writes_nothing),
        T(a_result_a_cancel_overtook_keeps_the_answer_status),
        T(finish_for_retry_requeues_at_run_at),
        T(final_finish_writes_the_outbox_row),
        T(no_outbox_row_without_webhook_url_or_body),
        T(webhook_delivered),
        T(webhook_give_up_marks_failed),
        T(webhook_retry_waits_for_next_at),
        T(webhook_finish_with_stale_claim_changes_nothing),
        T(webhook_inserted_claimed_is_leased),
        T(requeue_running_records_an_interrupted_attempt),
        T(requeue_running_returns_delivering_webhooks_to_pending),
        T(next_due_is_the_earliest_waiting_work),
        T(queue_depths_page_after_a_name),
        T(kv_put_if_absent_keeps_the_first_value),
        T(claim_returns_tasks_in_run_at_order),
        T(claim_filter_takes_only_what_it_allows),
        T(requeue_leaves_leases_this_process_holds),
        T(shift_waits_moves_relative_waits_only),
        T(finish_keeps_uncounted_attempts),
        T(uncounted_webhook_attempt_keeps_the_schedule),
        T(write_probe_writes),
        T(no_statement_scans_a_whole_table),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
