/*
 * http_tasks: the task routes: create (with idempotency and the backlog
 * limit), get (with long-poll), list, attempts, cancel, replay, and the
 * bulk forms of cancel and replay.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "log.h"
#include "metrics.h"
#include "validate.h"

#define LIST_DEFAULT_LIMIT 50
#define LIST_MAX_LIMIT 200
#define LIST_SCAN 10000      /* rows a list request looks at, at most */
#define LIST_BYTES (8u << 20) /* a page ends after this much of bodies and responses */
#define BULK_STEP 500        /* tasks one bulk step handles (one transaction) */

/* ---- create ---- */

/* Sets a 429 queue_full when adding more tasks would put more than
 * max_backlog waiting or running (backlog are there now). */
static bool backlog_full(int64_t backlog, int64_t adding, const struct http_api *api, struct api_error *e)
{
    int64_t max = api->cfg->max_backlog;
    if (backlog + adding <= max) return false;
    if (adding > max) { /* never fits: not a 429 to retry */
        api_error_set(e, 400, "invalid_field", "tasks",
                      "this batch adds %lld tasks, more than the %lld this daemon holds at most "
                      "(max_backlog); send them in smaller batches. Nothing was stored",
                      (long long)adding, (long long)max);
        return true;
    }
    if (adding <= 1)
        api_error_set(e, 429, "queue_full", NULL,
                      "%lld %s waiting or running, the most this daemon takes (max_backlog); "
                      "retry later", (long long)max, max == 1 ? "task is" : "tasks are");
    else
        api_error_set(e, 429, "queue_full", NULL,
                      "%lld %s waiting or running and this batch would add %lld, more than "
                      "the %lld this daemon takes (max_backlog); nothing was stored: retry later",
                      (long long)backlog, backlog == 1 ? "task is" : "tasks are", (long long)adding,
                      (long long)max);
    e->retry_after_s = 1;
    return true;
}

/* Whether the stored hash is this request's (hash, its text len bytes, NULL
 * when not kept): as hashed now, or as builds before hashed it (numbers as
 * doubles; before that, members in the order they came), for keys stored
 * before an upgrade. A hash of this build never equals an older one's for
 * another request: the older forms are tried only when the stored hash is
 * not this request's own. */
static bool same_request(const char *stored, const char *hash, const char *text, size_t len)
{
    if (strcmp(stored, hash) == 0) return true;
    if (!text) return false;
    char legacy[65];
    validate_request_hash_legacy(text, len, true, legacy);
    if (strcmp(stored, legacy) == 0) return true;
    validate_request_hash_legacy(text, len, false, legacy);
    return strcmp(stored, legacy) == 0;
}

/* The key t's idempotency key is stored under: the tenant (64 at most), a
 * separator, the key (255 at most), NUL. 320 bytes cut a 64-character
 * tenant's longest keys short by one, and two keys that differed only in
 * their last character were one. */
#define STORED_KEY_LEN (sizeof ((struct principal *)0)->tenant + 1 + VALIDATE_MAX_IDEMPOTENCY_KEY + 1)

static void stored_key(const struct task *t, char out[STORED_KEY_LEN])
{
    snprintf(out, STORED_KEY_LEN, "%s%c%s", t->tenant ? t->tenant : "", 0x1f, t->idempotency_key);
}

enum key_use { KEY_NEW, KEY_SAME, KEY_OTHER };

/* Looks up keyed task t's key within the window: KEY_NEW (unused), KEY_SAME
 * (used for this request: its task in id) or KEY_OTHER (used for another
 * request: its task in id). Returns STORE_OK or the store's error. */
static int key_lookup(struct store_conn *c, const struct config *cfg, const struct task *t,
                      const char *hash, const char *text, size_t len, enum key_use *use, char id[ID_LEN])
{
    char key[STORED_KEY_LEN];
    stored_key(t, key);
    char *stored = NULL, *task_id = NULL;
    int rc = store_idempotency_get(c, key, t->created_at_ms - cfg->idempotency_window_ms, &stored, &task_id);
    *use = KEY_NEW;
    if (rc == STORE_NOT_FOUND) return STORE_OK;
    if (rc != STORE_OK) return rc;
    *use = same_request(stored, hash, text, len) ? KEY_SAME : KEY_OTHER;
    snprintf(id, ID_LEN, "%s", task_id);
    free(stored);
    free(task_id);
    return STORE_OK;
}

/* Stores new task t (and its key, with the request's hash), and logs it. */
static int insert_new(struct writer_txn *tx, struct http_api *api, struct task *t, const char *hash)
{
    int rc = writer_txn_task_insert(tx, t);
    if (rc == STORE_OK && t->idempotency_key) {
        char key[STORED_KEY_LEN];
        stored_key(t, key);
        rc = store_idempotency_put(writer_txn_conn(tx), key, hash, t->id, t->created_at_ms);
    }
    if (rc != STORE_OK) return rc;
    char q[80];
    log_batch_add(writer_log(api->writer), LOG_INFO, "task.accepted", "id=%s queue=%s host=%s",
                  t->id, log_quote(q, sizeof q, t->queue), t->host);
    return STORE_OK;
}

static void key_reused(struct request *r, const char *id)
{
    api_error_set(http_request_error(r), 422, "idempotency_key_reused", "idempotencyKey",
                  "this Idempotency-Key was used for a different request (task %s); "
                  "use a new key for a new task", id);
}

static int create_apply(struct writer_txn *tx, struct request *r)
{
    struct task *t = r->task;
    r->replay_id[0] = '\0'; /* a first run's (the op may run twice) */
    if (t->idempotency_key) {
        enum key_use use;
        char id[ID_LEN];
        /* The body is kept for keyed creates (an older build's hash). */
        int rc = key_lookup(writer_txn_conn(tx), r->api->cfg, t, r->hash, http_body(r), r->body.len, &use, id);
        if (rc != STORE_OK) return rc;
        if (use == KEY_SAME) snprintf(r->replay_id, sizeof r->replay_id, "%s", id);
        if (use == KEY_OTHER) key_reused(r, id);
        if (use != KEY_NEW) return STORE_OK;
    }
    /* A new task: the backlog bound applies here, where creates take turns
     * and the batch's own creates count (a retry of a keyed request already
     * taken got its task above, full or not). */
    struct api_error full;
    if (backlog_full(writer_txn_backlog_count(tx), 1, r->api, &full)) {
        *http_request_error(r) = full;
        return STORE_OK;
    }
    return insert_new(tx, r->api, t, r->hash);
}

static enum MHD_Result respond_task(struct request *r, const char *id, bool replayed);
static char *task_detail(struct store_conn *c, const char *id, const char *tenant, int *rc,
                         enum task_status *status);

/* A task object's text (task_json's: no space after its last '}') with
 * "replayed": true added, for a create whose key found its task. */
static char *mark_replayed(char *s)
{
    static const char mark[] = ",\"replayed\":true}";
    size_t len = strlen(s);
    s = xrealloc(s, len + sizeof mark - 1);
    memcpy(s + len - 1, mark, sizeof mark);
    return s;
}

static enum MHD_Result create_finish(struct request *r)
{
    if (r->err) return http_respond_error(r, r->err);
    if (r->replay_id[0]) return respond_task(r, r->replay_id, true);
    metrics_accept_latency_us(util_mono_us() - r->started_us);
    char location[64] = "/v1/tasks/";
    size_t at = strlen(location);
    util_strcopy(location + at, sizeof location - at, r->task->id);
    char *body = r->response;
    r->response = NULL;
    return http_respond_text(r, MHD_HTTP_ACCEPTED, body, MHD_HTTP_HEADER_LOCATION, location);
}

/* What every new task gets before its write, whatever the route: its
 * queue's defaults, an id, its tenant and times. */
static void prepare_new(struct http_api *api, const char *tenant, struct task *t, int64_t now)
{
    struct queue_settings qs;
    bool configured = scheduler_queue_get(writer_scheduler(api->writer), t->queue, &qs);
    validate_apply_defaults(t, api->cfg, configured ? &qs : NULL);
    id_new(now, t->id);
    t->tenant = xstrdup(tenant);
    t->created_at_ms = now;
    t->updated_at_ms = now;
}

enum MHD_Result http_task_create(struct request *r)
{
    struct http_api *api = r->api;
    struct api_error e;
    int64_t now = util_now_ms();
    const char *header_key = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Idempotency-Key");
    if (validate_task_create(http_body(r), r->body.len, api->cfg, api->np, now, &r->task, r->hash,
                             header_key != NULL, &e))
        return http_respond_error(r, &e);
    struct task *t = r->task;
    if (header_key) {
        if (!validate_idempotency_key(header_key)) {
            api_error_set(&e, 400, "invalid_field", "Idempotency-Key",
                          "the Idempotency-Key header must be 1 to %d printable ASCII characters",
                          VALIDATE_MAX_IDEMPOTENCY_KEY);
            return http_respond_error(r, &e);
        }
        if (t->idempotency_key && strcmp(t->idempotency_key, header_key) != 0) {
            api_error_set(&e, 400, "conflicting_fields", "idempotencyKey",
                          "the Idempotency-Key header and the idempotencyKey field differ; send one");
            return http_respond_error(r, &e);
        }
        if (!t->idempotency_key) t->idempotency_key = xstrdup(header_key);
    }
    if (!t->idempotency_key) buf_free(&r->body); /* a keyed one may be hashed again (same_request) */
    /* Refused early when already full; create_apply decides (a keyed
     * request after its key is looked up). */
    if (!t->idempotency_key && backlog_full(writer_backlog(api->writer), 1, api, &e))
        return http_respond_error(r, &e);
    prepare_new(api, r->who.tenant, t, now);
    r->response = task_json(t, NULL, 0, NULL, false);
    return http_start_write(r, create_apply, create_finish);
}

int http_task_from_schedule(struct writer_txn *tx, struct http_api *api, const struct schedule *s,
                            struct task **out, struct api_error *err)
{
    *out = NULL;
    int64_t now = writer_txn_now(tx);
    struct task *t = NULL;
    if (validate_task_create(s->task, strlen(s->task), api->cfg, api->np, now, &t, NULL, false, err))
        return STORE_OK;
    if (backlog_full(writer_txn_backlog_count(tx), 1, api, err)) {
        task_free(t);
        return STORE_OK;
    }
    prepare_new(api, s->tenant, t, now);
    t->schedule = xstrdup(s->name);
    int rc = insert_new(tx, api, t, "");
    if (rc != STORE_OK) {
        task_free(t);
        return rc;
    }
    *out = t;
    return STORE_OK;
}

/* ---- create many ---- */

struct batch {
    struct validate_batch_item *items;
    size_t n;
    char **replayed; /* per item: the task its key matched, as GET shows it and marked, or NULL */
    size_t n_new;
};

void http_batch_free(struct batch *b)
{
    if (!b) return;
    for (size_t i = 0; i < b->n; i++) free(b->replayed[i]);
    free(b->replayed);
    validate_batch_free(b->items, b->n);
    free(b);
}

/* All of the batch or none of it, in this one transaction: every key is
 * looked up before anything is written, so a refusal (a key used for
 * another request, the backlog) leaves nothing behind. */
static int batch_apply(struct writer_txn *tx, struct request *r)
{
    struct batch *b = r->batch;
    struct store_conn *c = writer_txn_conn(tx);
    for (size_t i = 0; i < b->n; i++) { /* a first run's (the op may run twice) */
        free(b->replayed[i]);
        b->replayed[i] = NULL;
    }
    b->n_new = b->n;
    for (size_t i = 0; i < b->n; i++) {
        const struct validate_batch_item *it = &b->items[i];
        if (!it->task->idempotency_key) continue;
        enum key_use use;
        char id[ID_LEN];
        int rc = key_lookup(c, r->api->cfg, it->task, it->hash, it->text, it->len, &use, id);
        if (rc != STORE_OK) return rc;
        if (use == KEY_NEW) continue;
        char field[sizeof r->err->field];
        snprintf(field, sizeof field, "tasks[%zu].idempotencyKey", i);
        if (use == KEY_OTHER) {
            api_error_set(http_request_error(r), 422, "idempotency_key_reused", field,
                          "tasks[%zu]: this idempotencyKey was used for a different request (task "
                          "%s); use a new key for a new task. Nothing of this batch was stored",
                          i, id);
            return STORE_OK;
        }
        b->replayed[i] = task_detail(c, id, http_tenant(r), &rc, NULL);
        if (rc == STORE_NOT_FOUND) { /* the key outlived its task: retention is shorter than the window */
            api_error_set(http_request_error(r), 404, "not_found", field,
                          "tasks[%zu]: this idempotencyKey was used for task %s, which is no longer "
                          "stored; use a new key", i, id);
            return STORE_OK;
        }
        if (rc != STORE_OK) return rc;
        b->replayed[i] = mark_replayed(b->replayed[i]);
        b->n_new--;
    }
    struct api_error full;
    if (b->n_new && backlog_full(writer_txn_backlog_count(tx), (int64_t)b->n_new, r->api, &full)) {
        *http_request_error(r) = full;
        return STORE_OK;
    }
    for (size_t i = 0; i < b->n; i++) {
        if (b->replayed[i]) continue;
        int rc = insert_new(tx, r->api, b->items[i].task, b->items[i].hash);
        if (rc != STORE_OK) return rc;
    }
    return STORE_OK;
}

static enum MHD_Result batch_finish(struct request *r)
{
    if (r->err) return http_respond_error(r, r->err);
    struct batch *b = r->batch;
    struct jsonw w;
    jw_init(&w);
    jw_object(&w);
    jw_key(&w, "tasks");
    jw_array(&w);
    for (size_t i = 0; i < b->n; i++) {
        if (!b->replayed[i]) { /* as accepted, as a create answers it */
            task_write_json(&w, b->items[i].task, NULL, 0, NULL, false);
            continue;
        }
        /* the task as this batch's transaction found it, as a create's replay shows it */
        jw_raw(&w, b->replayed[i], strlen(b->replayed[i]));
    }
    jw_array_end(&w);
    jw_object_end(&w);
    if (!b->n_new) /* nothing new: a repeat of a batch taken, as a create's replay */
        return http_respond_text(r, MHD_HTTP_OK, jw_finish(&w), "Idempotent-Replayed", "true");
    metrics_accept_latency_us(util_mono_us() - r->started_us);
    return http_respond_text(r, MHD_HTTP_ACCEPTED, jw_finish(&w), NULL, NULL);
}

enum MHD_Result http_task_batch(struct request *r)
{
    struct http_api *api = r->api;
    struct api_error e;
    int64_t now = util_now_ms();
    /* One header cannot key many tasks: the keys go in the items. */
    if (MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Idempotency-Key")) {
        api_error_set(&e, 400, "invalid_field", "Idempotency-Key",
                      "a batch takes no Idempotency-Key header: give each item of tasks its own "
                      "idempotencyKey field");
        return http_respond_error(r, &e);
    }
    struct validate_batch_item *items = NULL;
    size_t n = 0;
    if (validate_task_batch(http_body(r), r->body.len, api->cfg, api->np, now, &items, &n, &e))
        return http_respond_error(r, &e);
    struct batch *b = xcalloc(1, sizeof *b);
    b->items = items;
    b->n = n;
    b->replayed = xcalloc(n, sizeof *b->replayed);
    r->batch = b;
    bool keyed = false;
    for (size_t i = 0; i < n && !keyed; i++) keyed = items[i].task->idempotency_key != NULL;
    if (!keyed) {
        for (size_t i = 0; i < n; i++) items[i].text = NULL; /* they point into the body */
        buf_free(&r->body);
        /* Refused early when it cannot fit; batch_apply decides. */
        if (backlog_full(writer_backlog(api->writer), (int64_t)n, api, &e)) return http_respond_error(r, &e);
    }
    for (size_t i = 0; i < n; i++) prepare_new(r->api, r->who.tenant, items[i].task, now);
    r->op.weight = (int)n; /* waits behind single writes: see writer_op */
    return http_start_write(r, batch_apply, batch_finish);
}

/* ---- get, attempts ---- */

/* The task in the GET shape (attempts and webhook) as c sees it, or NULL
 * with *rc set (STORE_NOT_FOUND or STORE_ERROR, logged). */
static char *task_detail(struct store_conn *c, const char *id, const char *tenant, int *rc,
                         enum task_status *status)
{
    struct task *t = NULL;
    struct attempt *attempts = NULL;
    size_t n = 0;
    struct webhook_state wh = {0};
    bool has_wh = false;
    *rc = store_task_get(c, id, tenant, &t, &attempts, &n, &wh, &has_wh);
    char q[96]; /* the id is the client's text, not yet known to be an id */
    if (*rc == STORE_ERROR)
        log_msg(LOG_ERROR, "store.read_failed", "task=%s error=\"%s\"", log_quote(q, sizeof q, id),
                store_conn_error(c));
    if (*rc != STORE_OK) return NULL;
    if (status) *status = t->status;
    char *s = task_json(t, attempts, n, has_wh ? &wh : NULL, true);
    for (size_t i = 0; i < n; i++) attempt_clear(&attempts[i]);
    free(attempts);
    if (has_wh) webhook_state_clear(&wh);
    task_free(t);
    return s;
}

/* Task id in the GET shape, and its status, as one read. Returns the JSON,
 * or NULL after answering the error in *res. A long-poll answers only a
 * final task with what it read: read twice (the status, then the task), a
 * replay in between was answered as if it were the outcome. */
static char *read_detail(struct request *r, const char *id, enum task_status *status,
                         enum MHD_Result *res)
{
    struct store_conn *c = store_conn_acquire(r->api->store);
    if (!c) {
        *res = http_unavailable(r, "the database cannot be read right now; try again");
        return NULL;
    }
    int rc;
    char *s = task_detail(c, id, http_tenant(r), &rc, status);
    store_conn_release(c);
    if (rc == STORE_NOT_FOUND) *res = http_not_found(r, "no task has this id");
    else if (rc != STORE_OK) *res = http_unavailable(r, "the database cannot be read right now; try again");
    return s;
}

/* Answers 200 with the stored task id (GET shape: attempts and webhook);
 * replayed: for a create whose key found it, marked as a batch marks such
 * an item, with Idempotent-Replayed. */
static enum MHD_Result respond_task(struct request *r, const char *id, bool replayed)
{
    enum MHD_Result res = MHD_NO; /* set by read_detail when it returns NULL */
    char *s = read_detail(r, id, NULL, &res);
    if (!s) return res;
    if (!replayed) return http_respond_text(r, MHD_HTTP_OK, s, NULL, NULL);
    return http_respond_text(r, MHD_HTTP_OK, mark_replayed(s), "Idempotent-Replayed", "true");
}

static void suspend_request(void *arg)
{
    struct request *r = arg;
    MHD_suspend_connection(r->conn);
}

/* A wait the daemon's stop ends before the task is final: 503, to ask
 * again (the task's state is about to change: a running call is put back in
 * the queue, and answered "running" the client took it as the outcome of
 * its wait). */
static enum MHD_Result wait_cut_by_stop(struct request *r)
{
    enum task_status status;
    enum MHD_Result res = MHD_NO; /* set by read_detail when it returns NULL */
    char *s = read_detail(r, r->id, &status, &res);
    if (!s) return res;
    if (task_status_final(status)) return http_respond_text(r, MHD_HTTP_OK, s, NULL, NULL);
    free(s);
    struct api_error e;
    api_error_set(&e, 503, "shutting_down", NULL,
                  "the server is shutting down before the task finished; ask again shortly");
    e.retry_after_s = 1;
    return http_respond_error(r, &e);
}

/* Suspends the request until its task is final or deadline_ms (monotonic),
 * or answers at once when the task is final already. */
static enum MHD_Result arm_wait(struct request *r, int64_t deadline_ms)
{
    struct http_api *api = r->api;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->wait_deadline_ms = deadline_ms;
    for (;;) {
        if (r->waiter) longpoll_remove(api->longpoll, r->waiter);
        /* Register before reading, so a finish in between is not missed. */
        r->waiter = longpoll_add(api->longpoll, r->id, deadline_ms, ci ? ci->connect_fd : -1, r);
        enum task_status status;
        enum MHD_Result res = MHD_NO; /* set by read_detail when it returns NULL */
        char *s = read_detail(r, r->id, &status, &res);
        /* Answered with the task as read: final, or the wait over. */
        bool done = !s || task_status_final(status) || util_mono_ms() >= deadline_ms;
        if (!done && longpoll_arm(api->longpoll, r->waiter, suspend_request)) {
            free(s);
            r->state = REQ_WAITING;
            return MHD_YES;
        }
        if (done) {
            longpoll_remove(api->longpoll, r->waiter);
            r->waiter = NULL;
            return s ? http_respond_text(r, MHD_HTTP_OK, s, NULL, NULL) : res;
        }
        free(s); /* it fired between the registration and the read: read again */
    }
}

enum MHD_Result http_task_get(struct request *r)
{
    if (!r->id[0]) return http_not_found(r, "no task has this id");
    struct http_api *api = r->api;
    const char *wait = http_arg(r, "wait");
    if (r->state == REQ_WAITING) {
        if (atomic_load(&api->quiescing)) return wait_cut_by_stop(r);
        /* Woken for the task: final, unless a replay made it run again
         * before this read (answered "running" at once, the outcome waited
         * for was only in attemptHistory): then it waits on, for the new
         * run, until its deadline. */
        if (!longpoll_hung_up(api->longpoll, r->waiter) && util_mono_ms() < r->wait_deadline_ms)
            return arm_wait(r, r->wait_deadline_ms);
        return respond_task(r, r->id, false);
    }
    if (!wait) return respond_task(r, r->id, false);

    /* A number as JSON writes it (clients print floats so: Python's str()
     * gives 5e-05): strtod would also take " 5", "+5", "0x10" and "inf". */
    size_t len = strlen(wait);
    bool plain = len > 0 && util_json_number_len(wait, len) == len;
    double s = plain ? strtod(wait, NULL) : 0; /* all of it: a JSON number is one strtod reads */
    double max_s = (double)api->cfg->max_wait_ms / 1000.0;
    if (!plain || !isfinite(s) || s < 0 || s > max_s) {
        struct api_error e;
        api_error_set(&e, 400, "invalid_field", "wait", "wait must be a number of seconds from 0 to %g",
                      max_s);
        return http_respond_error(r, &e);
    }
    if (s == 0) return respond_task(r, r->id, false);
    if (atomic_load(&api->quiescing)) return wait_cut_by_stop(r);
    return arm_wait(r, util_mono_ms() + (int64_t)(s * 1000));
}

enum MHD_Result http_task_attempts(struct request *r)
{
    if (!r->id[0]) return http_not_found(r, "no task has this id");
    struct store_conn *c = store_conn_acquire(r->api->store);
    if (!c) return http_unavailable(r, "the database cannot be read right now; try again");
    struct task *t = NULL;
    struct attempt *attempts = NULL;
    struct webhook_attempt *deliveries = NULL;
    size_t n = 0, m = 0;
    int rc = store_task_get(c, r->id, http_tenant(r), &t, NULL, NULL, NULL, NULL);
    if (rc == STORE_OK) rc = store_attempts_get(c, t->seq, &attempts, &n);
    if (rc == STORE_OK) rc = store_webhook_attempts_get(c, t->seq, &deliveries, &m);
    store_conn_release(c);
    enum MHD_Result res;
    if (rc == STORE_NOT_FOUND) {
        res = http_not_found(r, "no task has this id");
    } else if (rc != STORE_OK) {
        res = http_unavailable(r, "the database cannot be read right now; try again");
    } else {
        struct jsonw w;
        jw_init(&w);
        jw_object(&w);
        jw_key(&w, "taskId");
        jw_string(&w, t->id);
        jw_key(&w, "attempts");
        jw_array(&w);
        for (size_t i = 0; i < n; i++) attempt_write_json(&w, &attempts[i]);
        jw_array_end(&w);
        jw_key(&w, "webhookDeliveries");
        jw_array(&w);
        for (size_t i = 0; i < m; i++) webhook_attempt_write_json(&w, &deliveries[i]);
        jw_array_end(&w);
        jw_object_end(&w);
        res = http_respond_text(r, MHD_HTTP_OK, jw_finish(&w), NULL, NULL);
    }
    for (size_t i = 0; i < n; i++) attempt_clear(&attempts[i]);
    for (size_t i = 0; i < m; i++) webhook_attempt_clear(&deliveries[i]);
    free(attempts);
    free(deliveries);
    task_free(t);
    return res;
}

/* ---- list ---- */

/* Parses status, queue, createdAfter, createdBefore from a JSON object (bulk
 * bodies) or the query string (doc NULL). */
static int parse_filter(struct request *r, const cJSON *doc, struct api_error *e)
{
    struct task_filter *f = &r->filter;
    memset(f, 0, sizeof *f);
    const char *status = NULL, *queue = NULL, *after = NULL, *before = NULL;
    const cJSON *st = NULL;
    if (doc) {
        st = cJSON_GetObjectItemCaseSensitive(doc, "status");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "queue");
        if (v && !cJSON_IsString(v)) goto bad_queue;
        queue = v ? v->valuestring : NULL;
        v = cJSON_GetObjectItemCaseSensitive(doc, "createdAfter");
        if (v && !cJSON_IsString(v)) goto bad_after;
        after = v ? v->valuestring : NULL;
        v = cJSON_GetObjectItemCaseSensitive(doc, "createdBefore");
        if (v && !cJSON_IsString(v)) goto bad_before;
        before = v ? v->valuestring : NULL;
    } else {
        status = http_arg(r, "status");
        queue = http_arg(r, "queue");
        /* MHD's copy lives as long as the request, which reads the list now. */
        f->schedule = http_arg(r, "schedule");
        if (f->schedule && !validate_queue_name(f->schedule)) {
            api_error_set(e, 400, "invalid_field", "schedule",
                          "schedule must be a schedule's name: 1 to 64 characters of letters, "
                          "digits, '.', '_' or '-'");
            return -1;
        }
        after = http_arg(r, "createdAfter");
        before = http_arg(r, "createdBefore");
    }
    if (st) {
        if (!cJSON_IsArray(st) && !cJSON_IsString(st)) goto bad_status;
        if (cJSON_IsArray(st) && !st->child) { /* no status at all, not every status */
            api_error_set(e, 400, "invalid_field", "status",
                          "status must name at least one status (queued, running, completed, "
                          "failed, cancelled); an empty list would take every task");
            return -1;
        }
        for (const cJSON *it = cJSON_IsArray(st) ? st->child : st; it; it = cJSON_IsArray(st) ? it->next : NULL) {
            enum task_status s;
            if (!cJSON_IsString(it) || task_status_parse(it->valuestring, &s)) goto bad_status;
            f->status_mask |= 1u << s;
        }
    } else if (status) {
        /* Names between commas (empty ones skipped), read in place: a copy
         * of bounded size once cut a long list short. "status=" names no
         * status, as an empty array does in a body: refused, not every task. */
        for (const char *p = status; *p;) {
            size_t n = strcspn(p, ",");
            char name[16];
            enum task_status s;
            if (n > 0) {
                if (n >= sizeof name) goto bad_status;
                memcpy(name, p, n);
                name[n] = '\0';
                if (task_status_parse(name, &s)) goto bad_status;
                f->status_mask |= 1u << s;
            }
            p += n + (p[n] == ',');
        }
        if (!f->status_mask) goto bad_status;
    }
    if (queue) {
        if (!validate_queue_name(queue)) goto bad_queue;
        snprintf(r->filter_queue, sizeof r->filter_queue, "%s", queue);
        f->queue = r->filter_queue;
    }
    f->tenant = http_tenant(r);
    if (after && util_rfc3339_parse(after, &f->created_after_ms)) goto bad_after;
    if (before && util_rfc3339_parse(before, &f->created_before_ms)) goto bad_before;
    return 0;
bad_status:
    api_error_set(e, 400, "invalid_field", "status",
                  "status must be queued, running, completed, failed or cancelled (several: a "
                  "comma-separated list, or an array in a body)");
    return -1;
bad_queue:
    api_error_set(e, 400, "invalid_field", "queue", "queue must be a queue name");
    return -1;
bad_after:
    api_error_set(e, 400, "invalid_field", "createdAfter", "createdAfter must be an RFC 3339 time");
    return -1;
bad_before:
    api_error_set(e, 400, "invalid_field", "createdBefore", "createdBefore must be an RFC 3339 time");
    return -1;
}

enum MHD_Result http_task_list(struct request *r)
{
    struct api_error e;
    if (parse_filter(r, NULL, &e)) return http_respond_error(r, &e);
    int limit = LIST_DEFAULT_LIMIT;
    if (!http_arg_limit(r, LIST_MAX_LIMIT, &limit, &e)) return http_respond_error(r, &e);
    const char *order = http_arg(r, "order");
    bool asc = order && strcmp(order, "asc") == 0;
    if (order && !asc && strcmp(order, "desc") != 0) {
        api_error_set(&e, 400, "invalid_field", "order", "order must be desc (newest first) or asc");
        return http_respond_error(r, &e);
    }
    int64_t cursor = 0;
    const char *v = http_arg(r, "cursor");
    if (v && *v) {
        if (v[0] != (asc ? 'a' : 'd') || !util_whole_number(v + 1, 1, INT64_MAX, &cursor)) {
            api_error_set(&e, 400, "invalid_field", "cursor",
                          "cursor must be a nextCursor from a list with the same order");
            return http_respond_error(r, &e);
        }
    }
    struct store_conn *c = store_conn_acquire(r->api->store);
    if (!c) return http_unavailable(r, "the database cannot be read right now; try again");
    struct task **tasks = NULL;
    size_t n = 0;
    int64_t next = 0;
    int rc = store_tasks_list(c, &r->filter, cursor, asc, limit, LIST_SCAN, LIST_BYTES, &tasks, &n, &next);
    if (rc != STORE_OK)
        log_msg(LOG_ERROR, "store.read_failed", "list error=\"%s\"", store_conn_error(c));
    store_conn_release(c);
    if (rc != STORE_OK) return http_unavailable(r, "the database cannot be read right now; try again");
    struct jsonw w;
    jw_init(&w);
    jw_object(&w);
    jw_key(&w, "tasks");
    jw_array(&w);
    for (size_t i = 0; i < n; i++) {
        task_write_json(&w, tasks[i], NULL, 0, NULL, false);
        task_free(tasks[i]);
    }
    free(tasks);
    jw_array_end(&w);
    jw_key(&w, "nextCursor");
    if (next > 0) {
        char cur[32];
        snprintf(cur, sizeof cur, "%c%lld", asc ? 'a' : 'd', (long long)next);
        jw_string(&w, cur);
    } else {
        jw_null(&w);
    }
    jw_object_end(&w);
    return http_respond_text(r, MHD_HTTP_OK, jw_finish(&w), NULL, NULL);
}

/* ---- cancel ---- */

/* Cancels one task inside a write. Returns STORE_OK, STORE_NOT_FOUND,
 * STORE_CONFLICT (final already; *out set) or STORE_ERROR. */
static int cancel_one(struct writer_txn *tx, struct request *r, const char *id, int64_t now,
                      struct task **out)
{
    struct store_conn *c = writer_txn_conn(tx);
    bool was_running;
    struct task *t = NULL;
    int rc = store_task_cancel(c, id, http_tenant(r), now, &t, &was_running);
    if (rc != STORE_OK) {
        if (out) *out = t;
        else task_free(t);
        return rc;
    }
    if (was_running) {
        writer_txn_released(tx, t->queue, t->host, SCHEDULER_CANCELLED, t->seq, 0);
        writer_txn_abort(tx, t->seq);
    } else {
        writer_txn_gone(tx, t->queue, t->seq, t->run_at_ms);
    }
    writer_txn_backlog(tx, -1);
    writer_txn_final(tx, t);
    log_batch_add(writer_log(r->api->writer), LOG_INFO, "task.cancelled", "id=%s queue=%s was=%s key=%s",
                  t->id, t->queue, was_running ? "running" : "queued", r->who.label);
    if (t->webhook_url) {
        char *body = task_webhook_payload(t);
        rc = writer_txn_webhook(tx, t, body);
        free(body);
    }
    if (out) *out = t;
    else task_free(t);
    return rc;
}

static int cancel_apply(struct writer_txn *tx, struct request *r)
{
    int rc = cancel_one(tx, r, r->id, util_now_ms(), &r->task);
    /* The answer is the task as this transaction left it: read after the
     * commit, a replay in between showed its next run as cancelled's answer. */
    if (rc == STORE_OK) r->response = task_detail(writer_txn_conn(tx), r->id, http_tenant(r), &rc, NULL);
    if (rc == STORE_NOT_FOUND) {
        api_error_set(http_request_error(r), 404, "not_found", NULL, "no task has this id");
        return STORE_OK;
    }
    if (rc == STORE_CONFLICT) {
        api_error_set(http_request_error(r), 409, "task_finished", NULL,
                      "the task is already %s; only queued or running tasks can be cancelled",
                      task_status_name(r->task->status));
        return STORE_OK;
    }
    return rc;
}

static enum MHD_Result cancel_finish(struct request *r)
{
    if (r->err) return http_respond_error(r, r->err);
    char *body = r->response;
    r->response = NULL;
    return http_respond_text(r, MHD_HTTP_OK, body, NULL, NULL);
}

enum MHD_Result http_task_cancel(struct request *r)
{
    if (!r->id[0]) return http_not_found(r, "no task has this id");
    return http_start_write(r, cancel_apply, cancel_finish);
}

/* ---- replay ---- */

/* Replays one task inside a write, with overrides (body may be NULL). */
static int replay_one(struct writer_txn *tx, struct request *r, const char *id, const char *body,
                      size_t len, struct task **out)
{
    struct store_conn *c = writer_txn_conn(tx);
    struct task *t = NULL;
    int64_t now = util_now_ms();
    int rc = store_task_get(c, id, http_tenant(r), &t, NULL, NULL, NULL, NULL);
    if (rc != STORE_OK) return rc;
    if (!task_status_final(t->status)) {
        *out = t;
        return STORE_CONFLICT;
    }
    char *old_queue = xstrdup(t->queue);
    struct api_error e;
    if (validate_task_overrides(body, len, r->api->cfg, r->api->np, now, t, &e)) {
        *http_request_error(r) = e;
        free(old_queue);
        task_free(t);
        return STORE_OK;
    }
    t->updated_at_ms = now;
    rc = store_task_replay(c, t);
    if (rc == STORE_OK) {
        writer_txn_task_due(tx, t->queue, t->run_at_ms);
        writer_txn_backlog(tx, 1);
        writer_txn_accepted(tx, t->queue);
        writer_txn_event(tx, t, "replayed");
        log_batch_add(writer_log(r->api->writer), LOG_INFO, "task.replayed", "id=%s queue=%s replays=%d",
                      t->id, t->queue, t->replays);
    }
    free(old_queue);
    *out = t;
    return rc;
}

static int retry_apply(struct writer_txn *tx, struct request *r)
{
    int rc = replay_one(tx, r, r->id, http_body(r), r->body.len, &r->task);
    if (rc == STORE_NOT_FOUND) {
        api_error_set(http_request_error(r), 404, "not_found", NULL, "no task has this id");
        return STORE_OK;
    }
    if (rc == STORE_CONFLICT) {
        api_error_set(http_request_error(r), 409, "task_not_finished", NULL,
                      "the task is %s; only completed, failed or cancelled tasks can be run again",
                      task_status_name(r->task->status));
        return STORE_OK;
    }
    return rc;
}

static enum MHD_Result retry_finish(struct request *r)
{
    if (r->err) return http_respond_error(r, r->err);
    /* The task as committed (queued): read back later it could already be
     * running, which is not what this answer is about. */
    return http_respond_text(r, MHD_HTTP_ACCEPTED, task_json(r->task, NULL, 0, NULL, false), NULL, NULL);
}

enum MHD_Result http_task_retry(struct request *r)
{
    if (!r->id[0]) return http_not_found(r, "no task has this id");
    return http_start_write(r, retry_apply, retry_finish);
}

/* ---- bulk cancel and replay ---- */

static int bulk_apply(struct writer_txn *tx, struct request *r)
{
    bool cancel = r->route == ROUTE_TASKS_CANCEL;
    char (*ids)[ID_LEN] = NULL;
    size_t n = 0;
    int64_t last = 0;
    bool more = false;
    int rc = store_tasks_select(writer_txn_conn(tx), &r->filter, r->after_seq, BULK_STEP, &ids, &n,
                                &last, &more);
    int64_t now = util_now_ms();
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        struct task *t = NULL;
        int one = cancel ? cancel_one(tx, r, ids[i], now, &t)
                         : replay_one(tx, r, ids[i], NULL, 0, &t);
        task_free(t);
        if (one == STORE_OK) r->count++;
        else if (one == STORE_ERROR) rc = one;
        /* NOT_FOUND / CONFLICT: changed since it was selected; skip it */
    }
    free(ids);
    if (rc == STORE_OK) {
        r->after_seq = last;
        r->again = more;
    }
    return rc;
}

static enum MHD_Result bulk_finish(struct request *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, r->route == ROUTE_TASKS_CANCEL ? "cancelled" : "retried", (double)r->count);
    return http_respond_json(r, MHD_HTTP_OK, o);
}

enum MHD_Result http_tasks_bulk(struct request *r)
{
    struct api_error e;
    bool cancel = r->route == ROUTE_TASKS_CANCEL;
    cJSON *doc = validate_json(http_body(r), r->body.len, &e);
    if (!doc) return http_respond_error(r, &e);
    enum MHD_Result res;
    static const char *const fields[] = {"status", "queue", "createdAfter", "createdBefore"};
    if (!cJSON_IsObject(doc)) {
        api_error_set(&e, 400, "invalid_body", NULL, "the body must be a JSON object of filters");
        goto error;
    }
    for (const cJSON *f = doc->child; f; f = f->next) {
        bool known = false;
        for (size_t i = 0; i < ARRAY_LEN(fields) && !known; i++) known = !strcmp(f->string, fields[i]);
        if (!known) {
            api_error_set(&e, 400, "unknown_field", f->string,
                          "unknown filter '%.64s'; filters are status, queue, createdAfter, createdBefore",
                          f->string);
            goto error;
        }
    }
    if (parse_filter(r, doc, &e)) goto error;
    unsigned open_mask = (1u << TASK_QUEUED) | (1u << TASK_RUNNING);
    unsigned final_mask = (1u << TASK_COMPLETED) | (1u << TASK_FAILED) | (1u << TASK_CANCELLED);
    if (!doc->child) {
        api_error_set(&e, 400, "missing_field", NULL,
                      "give at least one filter (status, queue, createdAfter, createdBefore); to "
                      "take every task, say so with a status, e.g. {\"status\": [\"%s\"]}",
                      cancel ? "queued\", \"running" : "failed");
        goto error;
    }
    if (cancel) {
        if (r->filter.status_mask & ~open_mask) {
            api_error_set(&e, 400, "invalid_field", "status", "only queued and running tasks can be cancelled");
            goto error;
        }
        if (!r->filter.status_mask) r->filter.status_mask = open_mask;
    } else {
        if (r->filter.status_mask & ~final_mask) {
            api_error_set(&e, 400, "invalid_field", "status",
                          "only completed, failed and cancelled tasks can be run again");
            goto error;
        }
        if (!r->filter.status_mask) r->filter.status_mask = 1u << TASK_FAILED;
    }
    cJSON_Delete(doc);
    return http_start_write(r, bulk_apply, bulk_finish);
error:
    res = http_respond_error(r, &e);
    cJSON_Delete(doc);
    return res;
}
