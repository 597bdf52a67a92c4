/*
 * http_queues: the queue routes: list (in pages, by name) and show
 * (settings, depth, in-flight and recent rates), change settings, pause and
 * resume, forget settings.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "log.h"
#include "validate.h"


struct depths {
    struct queue_depth *list;
    size_t n, cap;
};

/* A row of store_queue_depths: only copied here, so the store connection
 * is held for the query alone; the join runs after it is released. */
static void add_depth(void *arg, const char *queue, int64_t queued, int64_t due)
{
    struct depths *d = arg;
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 64;
        d->list = xrealloc(d->list, d->cap * sizeof *d->list);
    }
    struct queue_depth *x = &d->list[d->n++];
    snprintf(x->name, sizeof x->name, "%s", queue);
    x->queued = queued;
    x->due = due;
}

/* The store's counts of waiting tasks of the queues named after `after`
 * (NULL: from the first), at most limit queues (0: all), into d. Returns
 * STORE_OK, or the store's error (logged) with d empty: rows read before
 * the failure would be a partial count. */
static int read_depths(struct http_api *api, const char *after, int limit, struct depths *d)
{
    int rc = STORE_ERROR;
    struct store_conn *c = store_conn_acquire(api->store);
    if (c) {
        rc = store_queue_depths(c, util_now_ms(), after, limit, add_depth, d);
        if (rc != STORE_OK) log_msg(LOG_WARN, "queues.depth_failed", "error=\"%s\"", store_conn_error(c));
        store_conn_release(c);
    } else {
        log_msg(LOG_WARN, "queues.depth_failed", "error=\"no database connection\"");
    }
    if (rc != STORE_OK) d->n = 0;
    return rc;
}

int http_queue_view(struct http_api *api, struct queue_info **out, size_t *n)
{
    struct queue_info *qs = scheduler_snapshot(writer_scheduler(api->writer), n);
    struct depths d = {0};
    int rc = read_depths(api, NULL, 0, &d);
    *out = scheduler_join_depths(qs, n, d.list, d.n);
    free(d.list);
    return rc;
}

static cJSON *queue_json(const struct queue_info *q)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", q->name);
    cJSON_AddBoolToObject(o, "paused", q->s.paused);
    cJSON_AddNumberToObject(o, "maxConcurrency", q->s.max_concurrency);
    cJSON_AddNumberToObject(o, "ratePerSecond", q->s.rate_per_sec);
    cJSON_AddNumberToObject(o, "burst", q->s.burst);
    if (q->s.default_retries >= 0) cJSON_AddNumberToObject(o, "defaultRetries", q->s.default_retries);
    else cJSON_AddNullToObject(o, "defaultRetries");
    if (q->s.default_timeout_ms > 0)
        cJSON_AddNumberToObject(o, "defaultTimeout", (double)q->s.default_timeout_ms / 1000.0);
    else cJSON_AddNullToObject(o, "defaultTimeout");
    cJSON_AddBoolToObject(o, "configured", q->configured);
    cJSON_AddNumberToObject(o, "queued", (double)q->queued);
    cJSON_AddNumberToObject(o, "due", (double)q->due);
    cJSON_AddNumberToObject(o, "inflight", q->inflight);
    cJSON *m = cJSON_AddObjectToObject(o, "lastMinute");
    cJSON_AddNumberToObject(m, "accepted", q->accepted_last_minute);
    cJSON_AddNumberToObject(m, "dispatched", q->dispatched_last_minute);
    cJSON_AddNumberToObject(m, "completed", q->completed_last_minute);
    cJSON_AddNumberToObject(m, "failed", q->failed_last_minute);
    cJSON_AddNumberToObject(m, "cancelled", q->cancelled_last_minute);
    cJSON *t = cJSON_AddObjectToObject(o, "sinceStart");
    cJSON_AddNumberToObject(t, "accepted", (double)q->accepted_total);
    cJSON_AddNumberToObject(t, "dispatched", (double)q->dispatched_total);
    cJSON_AddNumberToObject(t, "completed", (double)q->completed_total);
    cJSON_AddNumberToObject(t, "failed", (double)q->failed_total);
    cJSON_AddNumberToObject(t, "cancelled", (double)q->cancelled_total);
    return o;
}

/* A queue exists while it has settings, tasks, or a history since start;
 * one whose settings were deleted and that never had a task is gone. */
static bool queue_exists(const struct queue_info *q)
{
    return q->configured || q->queued > 0 || q->inflight > 0 || q->accepted_total > 0 ||
           q->dispatched_total > 0 || q->completed_total > 0 || q->failed_total > 0 ||
           q->cancelled_total > 0;
}

/* The queue named `only` (settings, counters, or queued tasks): the
 * scheduler's entry and the store's count of its own tasks, whatever the
 * number of other queues. */
static enum MHD_Result respond_queue(struct request *r, const char *only)
{
    struct queue_info q;
    (void)scheduler_queue_info(writer_scheduler(r->api->writer), only, &q);
    int rc = STORE_ERROR;
    struct store_conn *c = store_conn_acquire(r->api->store);
    if (c) {
        rc = store_queue_depth(c, util_now_ms(), only, &q.queued, &q.due);
        if (rc != STORE_OK) log_msg(LOG_WARN, "queues.depth_failed", "error=\"%s\"", store_conn_error(c));
        store_conn_release(c);
    } else {
        log_msg(LOG_WARN, "queues.depth_failed", "error=\"no database connection\"");
    }
    if (rc != STORE_OK) return http_unavailable(r, "the database cannot be read right now; try again");
    if (!queue_exists(&q)) return http_not_found(r, "no queue has this name (it has no settings and no tasks)");
    return http_respond_json(r, MHD_HTTP_OK, queue_json(&q));
}

/* ---- the list, in pages ---- */

#define QUEUES_DEFAULT_LIMIT 1000 /* every queue in one answer, up to 1000 */
#define QUEUES_MAX_LIMIT 1000

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The cursor after a queue: its name in base64url, unpadded. A name is the
 * whole position, as the list is ordered by name: the next page starts
 * strictly after it, so a queue made or forgotten between pages moves no
 * other queue from one page to another (none skipped, none twice). */
void http_cursor_encode(const char *name, char out[HTTP_CURSOR_MAX + 1])
{
    size_t len = strlen(name), k = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t w = (uint32_t)(unsigned char)name[i] << 16;
        if (i + 1 < len) w |= (uint32_t)(unsigned char)name[i + 1] << 8;
        if (i + 2 < len) w |= (unsigned char)name[i + 2];
        out[k++] = b64url[w >> 18 & 63];
        out[k++] = b64url[w >> 12 & 63];
        if (i + 1 < len) out[k++] = b64url[w >> 6 & 63];
        if (i + 2 < len) out[k++] = b64url[w & 63];
    }
    out[k] = '\0';
}

/* The queue name a cursor stands for, into name; false when it is not a
 * cursor this list gives (not base64url, not the one way to write a name,
 * or not a queue name). */
bool http_cursor_decode(const char *s, char name[VALIDATE_MAX_QUEUE_NAME + 1])
{
    size_t len = strlen(s);
    if (len < 2 || len > HTTP_CURSOR_MAX || len % 4 == 1) return false;
    size_t k = 0;
    uint32_t w = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        const char *p = strchr(b64url, s[i]);
        if (!p || !*p) return false;
        w = w << 6 | (uint32_t)(p - b64url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            name[k++] = (char)(w >> bits & 0xff);
        }
    }
    name[k] = '\0';
    char again[HTTP_CURSOR_MAX + 1];
    http_cursor_encode(name, again); /* unused low bits set: another spelling of the name */
    return strlen(name) == k && !strcmp(again, s) && validate_queue_name(name);
}

bool http_name_page(struct request *r, int max, const char *list, int *limit,
                    char after[VALIDATE_MAX_QUEUE_NAME + 1], struct api_error *e)
{
    after[0] = '\0';
    if (!http_arg_limit(r, max, limit, e)) return false;
    const char *v = http_arg(r, "cursor");
    if (v && *v && !http_cursor_decode(v, after)) {
        api_error_set(e, 400, "invalid_field", "cursor",
                      "cursor must be the nextCursor of an earlier page of GET %s", list);
        return false;
    }
    return true;
}

/* One page: the first `limit` queues named after the cursor, and the
 * cursor of the next page when there are more. The store is asked for the
 * waiting tasks of limit + 1 queues after the cursor, no more: a page costs
 * its own queues' rows, not every queue's; the scheduler copies only as
 * many of its queues, though it looks at each to find them. */
enum MHD_Result http_queue_list(struct request *r)
{
    struct api_error e;
    int limit = QUEUES_DEFAULT_LIMIT;
    char after[VALIDATE_MAX_QUEUE_NAME + 1] = "";
    if (!http_name_page(r, QUEUES_MAX_LIMIT, "/v1/queues", &limit, after, &e)) return http_respond_error(r, &e);

    /* The scheduler's queues after the cursor, up to the (limit + 1)th that
     * exists without counting waiting tasks (those only add queues, and the
     * store's first limit + 1 after the cursor are read below): past both,
     * no queue can be among the first limit + 1 of the page. */
    size_t n;
    struct queue_info *qs =
        scheduler_snapshot_after(writer_scheduler(r->api->writer), after, (size_t)limit + 1, &n);

    struct depths d = {0};
    if (read_depths(r->api, after, limit + 1, &d) != STORE_OK) {
        free(d.list);
        free(qs);
        return http_unavailable(r, "the database cannot be read right now; try again");
    }
    qs = scheduler_join_depths(qs, &n, d.list, d.n);
    free(d.list);

    cJSON *list = cJSON_CreateArray();
    const char *last = NULL;
    bool more = false;
    int shown = 0;
    for (size_t i = 0; i < n; i++) {
        if (!queue_exists(&qs[i])) continue;
        if (shown == limit) {
            more = true;
            break;
        }
        cJSON_AddItemToArray(list, queue_json(&qs[i]));
        last = qs[i].name;
        shown++;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "queues", list);
    if (more && last) { /* last is set: limit is at least 1 (http_arg_limit) */
        char cur[HTTP_CURSOR_MAX + 1];
        http_cursor_encode(last, cur);
        cJSON_AddStringToObject(o, "nextCursor", cur);
    } else {
        cJSON_AddNullToObject(o, "nextCursor");
    }
    free(qs);
    return http_respond_json(r, MHD_HTTP_OK, o);
}

static enum MHD_Result bad_name(struct request *r)
{
    struct api_error e;
    api_error_set(&e, 400, "invalid_field", "name",
                  "a queue name is 1 to 64 characters of letters, digits, '.', '_' or '-'");
    return http_respond_error(r, &e);
}

enum MHD_Result http_queue_get(struct request *r)
{
    if (!r->name_valid) return bad_name(r);
    return respond_queue(r, r->name);
}

static int put_apply(struct writer_txn *tx, struct request *r)
{
    int rc = store_queue_put(writer_txn_conn(tx), r->name, &r->qs, util_now_ms());
    if (rc == STORE_OK) {
        writer_txn_queue(tx, r->name, &r->qs);
        const struct queue_settings *q = &r->qs;
        log_batch_add(writer_log(r->api->writer), LOG_INFO,
                      r->route == ROUTE_QUEUE_PAUSE    ? "queue.paused"
                      : r->route == ROUTE_QUEUE_RESUME ? "queue.resumed"
                                                       : "queue.updated",
                      "name=%s paused=%s maxConcurrency=%d ratePerSecond=%g burst=%d key=%s", r->name,
                      q->paused ? "true" : "false", q->max_concurrency, q->rate_per_sec, q->burst,
                      r->who.label);
    }
    return rc;
}

static enum MHD_Result show_finish(struct request *r)
{
    return respond_queue(r, r->name);
}

/* Reads PUT's body: every setting, absent ones at their defaults. */
static int parse_settings(struct request *r, struct api_error *e)
{
    cJSON *doc = validate_json(http_body(r), r->body.len, e);
    if (!doc) return -1;
    int rc = -1;
    struct queue_settings *qs = &r->qs;
    queue_settings_default(qs);
    static const char *const fields[] = {"maxConcurrency", "ratePerSecond", "burst", "paused",
                                         "defaultRetries", "defaultTimeout"};
    if (!cJSON_IsObject(doc)) {
        api_error_set(e, 400, "invalid_body", NULL, "the body must be a JSON object of settings");
        goto out;
    }
    for (const cJSON *f = doc->child; f; f = f->next) {
        bool known = false;
        for (size_t i = 0; i < ARRAY_LEN(fields) && !known; i++) known = !strcmp(f->string, fields[i]);
        if (!known) {
            api_error_set(e, 400, "unknown_field", f->string,
                          "unknown setting '%.64s'; settings are maxConcurrency, ratePerSecond, "
                          "burst, paused, defaultRetries, defaultTimeout", f->string);
            goto out;
        }
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "maxConcurrency");
    if (v && (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 ||
              v->valuedouble > 1000000)) {
        api_error_set(e, 400, "invalid_field", "maxConcurrency",
                      "maxConcurrency must be a whole number from 0 (no limit) to 1000000; 1 runs "
                      "the queue strictly in order");
        goto out;
    }
    if (v) qs->max_concurrency = (int)v->valuedouble;
    v = cJSON_GetObjectItemCaseSensitive(doc, "ratePerSecond");
    if (v && (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e6)) {
        api_error_set(e, 400, "invalid_field", "ratePerSecond",
                      "ratePerSecond must be a number from 0 (no limit) to 1000000");
        goto out;
    }
    if (v) qs->rate_per_sec = v->valuedouble;
    v = cJSON_GetObjectItemCaseSensitive(doc, "burst");
    if (v && (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 ||
              v->valuedouble > 1000000)) {
        api_error_set(e, 400, "invalid_field", "burst", "burst must be a whole number from 1 to 1000000");
        goto out;
    }
    if (v) qs->burst = (int)v->valuedouble;
    if (qs->rate_per_sec > 0 && qs->burst < 1) qs->burst = 1;
    v = cJSON_GetObjectItemCaseSensitive(doc, "paused");
    if (v && !cJSON_IsBool(v)) {
        api_error_set(e, 400, "invalid_field", "paused", "paused must be true or false");
        goto out;
    }
    if (v) qs->paused = cJSON_IsTrue(v);
    const struct config *cfg = r->api->cfg;
    v = cJSON_GetObjectItemCaseSensitive(doc, "defaultRetries");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 ||
            v->valuedouble > cfg->max_retries) {
            api_error_set(e, 400, "invalid_field", "defaultRetries",
                          "defaultRetries must be a whole number from 0 to %d, or null", cfg->max_retries);
            goto out;
        }
        qs->default_retries = (int)v->valuedouble;
    }
    v = cJSON_GetObjectItemCaseSensitive(doc, "defaultTimeout");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0.1 || v->valuedouble * 1000 > (double)cfg->max_timeout_ms) {
            api_error_set(e, 400, "invalid_field", "defaultTimeout",
                          "defaultTimeout must be seconds from 0.1 to %g, or null",
                          (double)cfg->max_timeout_ms / 1000.0);
            goto out;
        }
        qs->default_timeout_ms = (int64_t)llround(v->valuedouble * 1000.0);
    }
    rc = 0;
out:
    cJSON_Delete(doc);
    return rc;
}

enum MHD_Result http_queue_put(struct request *r)
{
    struct api_error e;
    if (!r->name_valid) return bad_name(r);
    if (parse_settings(r, &e)) return http_respond_error(r, &e);
    return http_start_write(r, put_apply, show_finish);
}

static int pause_apply(struct writer_txn *tx, struct request *r)
{
    /* Keep the other settings: read them on the writer thread, where every
     * change to them is made, so nothing is lost between read and write. */
    bool paused = r->qs.paused;
    scheduler_queue_get(writer_scheduler(r->api->writer), r->name, &r->qs);
    r->qs.paused = paused;
    return put_apply(tx, r);
}

enum MHD_Result http_queue_pause(struct request *r, bool paused)
{
    if (!r->name_valid) return bad_name(r);
    r->qs.paused = paused; /* the rest is read by pause_apply */
    return http_start_write(r, pause_apply, show_finish);
}

static int delete_apply(struct writer_txn *tx, struct request *r)
{
    int rc = store_queue_delete(writer_txn_conn(tx), r->name);
    if (rc == STORE_NOT_FOUND) {
        api_error_set(http_request_error(r), 404, "not_found", NULL, "queue %s has no settings", r->name);
        return STORE_OK;
    }
    if (rc == STORE_OK) {
        writer_txn_queue(tx, r->name, NULL);
        log_batch_add(writer_log(r->api->writer), LOG_INFO, "queue.deleted", "name=%s key=%s", r->name,
                      r->who.label);
    }
    return rc;
}

enum MHD_Result http_finish_no_content(struct request *r)
{
    if (r->err) return http_respond_error(r, r->err);
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    r->status = MHD_HTTP_NO_CONTENT;
    enum MHD_Result rc = MHD_queue_response(r->conn, MHD_HTTP_NO_CONTENT, resp);
    MHD_destroy_response(resp);
    return rc;
}

enum MHD_Result http_queue_delete(struct request *r)
{
    if (!r->name_valid) return bad_name(r);
    return http_start_write(r, delete_apply, http_finish_no_content);
}
