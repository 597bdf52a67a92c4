/*
 * task: names of states, freeing, and the two JSON views of a task.
 */
#include "task.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

static const char *const status_names[] = {"queued", "running", "completed", "failed",
                                           "cancelled"};

const char *task_status_name(enum task_status s)
{
    return (unsigned)s < ARRAY_LEN(status_names) ? status_names[s] : "unknown";
}

int task_status_parse(const char *name, enum task_status *out)
{
    for (size_t i = 0; i < ARRAY_LEN(status_names); i++) {
        if (strcmp(name, status_names[i]) == 0) {
            *out = (enum task_status)i;
            return 0;
        }
    }
    return -1;
}

bool task_status_final(enum task_status s)
{
    return s == TASK_COMPLETED || s == TASK_FAILED || s == TASK_CANCELLED;
}

void task_free(struct task *t)
{
    if (!t) return;
    free(t->tenant);
    free(t->queue);
    free(t->host);
    free(t->idempotency_key);
    free(t->schedule);
    free(t->method);
    free(t->callback_url);
    free(t->headers_json);
    free(t->body);
    free(t->webhook_url);
    free(t->metadata_json);
    free(t->response_headers_json);
    free(t->response_body);
    free(t->error_code);
    free(t->error_message);
    free(t);
}

struct task *task_dup(const struct task *t)
{
    struct task *d = xmalloc(sizeof *d);
    *d = *t;
    d->tenant = xstrdup(t->tenant);
    d->queue = xstrdup(t->queue);
    d->host = xstrdup(t->host);
    d->idempotency_key = xstrdup(t->idempotency_key);
    d->schedule = xstrdup(t->schedule);
    d->method = xstrdup(t->method);
    d->callback_url = xstrdup(t->callback_url);
    d->headers_json = xstrdup(t->headers_json);
    d->body = t->body ? xstrndup(t->body, t->body_len) : NULL;
    d->webhook_url = xstrdup(t->webhook_url);
    d->metadata_json = xstrdup(t->metadata_json);
    d->response_headers_json = xstrdup(t->response_headers_json);
    d->response_body = t->response_body ? xstrndup(t->response_body, t->response_body_len) : NULL;
    d->error_code = xstrdup(t->error_code);
    d->error_message = xstrdup(t->error_message);
    return d;
}

void attempt_clear(struct attempt *a)
{
    free(a->error_code);
    free(a->error_message);
    memset(a, 0, sizeof *a);
}

void webhook_attempt_clear(struct webhook_attempt *a)
{
    free(a->error);
    memset(a, 0, sizeof *a);
}

char *task_url_host(const char *url)
{
    const char *p = strstr(url, "://");
    const char *auth = p ? p + 3 : url;
    size_t n = strcspn(auth, "/?#");
    const char *at = memchr(auth, '@', n);
    if (at) {
        n -= (size_t)(at + 1 - auth);
        auth = at + 1;
    }
    char *h = xstrndup(auth, n);
    for (char *c = h; *c; c++) *c = (char)tolower((unsigned char)*c);
    /* The port as a number, and none when it is the scheme's own: a host's
     * cap counted "h:0080", "h:80" and "h" as three hosts. */
    char *colon = strrchr(h, ':'), *digits = colon ? colon + 1 : NULL;
    size_t len = digits ? strlen(digits) : 0;
    if (len && !strchr(colon, ']') && strspn(digits, "0123456789") == len) {
        size_t zeros = strspn(digits, "0");
        if (zeros == len) zeros--; /* port 0 keeps one */
        memmove(digits, digits + zeros, len - zeros + 1);
        bool https = p && (size_t)(p - url) == 5 && !strncasecmp(url, "https", 5);
        bool http = p && (size_t)(p - url) == 4 && !strncasecmp(url, "http", 4);
        if ((https && !strcmp(digits, "443")) || (http && !strcmp(digits, "80"))) *colon = '\0';
    }
    return h;
}

void webhook_state_clear(struct webhook_state *w)
{
    free(w->url);
    free(w->status);
    free(w->last_error);
    memset(w, 0, sizeof *w);
}

/* JSON as stored: a client's payload and metadata (validated at creation,
 * stored verbatim, repaired when read if an earlier version let in what
 * JSON does not allow: task_json_repair) and the header objects the daemon
 * wrote itself (checked when read: task_json_object_check). So it goes out
 * verbatim, with no second parse on the way out. */
static void write_stored_json(struct jsonw *w, const char *json)
{
    if (json) jw_raw(w, json, strlen(json));
    else jw_null(w);
}

void task_json_object_check(char **json)
{
    if (!*json) return;
    cJSON *v = util_json_strings_bad(*json, strlen(*json)) ? NULL : cJSON_Parse(*json);
    if (!cJSON_IsObject(v)) {
        free(*json);
        *json = NULL;
    }
    cJSON_Delete(v);
}

void task_json_repair(char **json, size_t *len)
{
    if (!*json || !util_json_strings_bad(*json, strlen(*json))) return;
    cJSON *v = cJSON_Parse(*json);
    char *again = v ? cJSON_PrintUnformatted(v) : NULL;
    cJSON_Delete(v);
    if (again && util_json_strings_bad(again, strlen(again))) {
        free(again);
        again = NULL;
    }
    free(*json);
    *json = again;
    if (len) *len = again ? strlen(again) : 0;
}

static bool content_type_is_json(const char *headers_json)
{
    bool json = false;
    cJSON *h = headers_json ? cJSON_Parse(headers_json) : NULL;
    const cJSON *ct = h ? cJSON_GetObjectItemCaseSensitive(h, "content-type") : NULL;
    if (ct && cJSON_IsString(ct) && ct->valuestring) {
        const char *v = ct->valuestring;
        /* application/json, application/problem+json, text/json ... */
        json = strcasestr(v, "/json") != NULL || strcasestr(v, "+json") != NULL;
    }
    cJSON_Delete(h);
    return json;
}

/* Writes the result value; returns whether it is base64. */
static bool write_result_value(struct jsonw *w, const struct task *t)
{
    if (!t->response_body || t->response_body_len == 0) {
        jw_null(w);
        return false;
    }
    const char *body = t->response_body, *body_end = body + t->response_body_len;
    /* Text must be UTF-8 without NULs to go into JSON as it is: anything
     * else is returned as base64. */
    bool text = util_utf8_valid(body, t->response_body_len) && !memchr(body, '\0', t->response_body_len);
    if (text && content_type_is_json(t->response_headers_json)) {
        size_t json_len = t->response_body_len;
        util_json_skip_bom(&body, &json_len); /* JSON after a byte order mark is JSON */
        const char *end = NULL;
        cJSON *v = cJSON_ParseWithLengthOpts(body, json_len, &end, 0);
        while (v && end < body_end && isspace((unsigned char)*end)) end++;
        bool ok = v && end == body_end;
        cJSON_Delete(v);
        /* Valid JSON is passed on as the target wrote it (numbers included),
         * unless its strings hold what JSON forbids. */
        if (ok && !util_json_strings_bad(body, json_len)) {
            const char *start = body;
            while (start < body_end && isspace((unsigned char)*start)) start++;
            while (body_end > start && isspace((unsigned char)body_end[-1])) body_end--;
            jw_raw(w, start, (size_t)(body_end - start));
            return false;
        }
    }
    if (text) {
        jw_string_n(w, t->response_body, t->response_body_len);
        return false;
    }
    char *b = util_base64_encode((const unsigned char *)t->response_body, t->response_body_len);
    jw_string(w, b);
    free(b);
    return true;
}

static void write_response(struct jsonw *w, const struct task *t)
{
    if (t->response_status <= 0) {
        jw_null(w);
        return;
    }
    jw_object(w);
    jw_key(w, "statusCode");
    jw_number(w, t->response_status);
    jw_key(w, "headers");
    write_stored_json(w, t->response_headers_json);
    jw_key(w, "durationMs");
    jw_number(w, (double)t->response_ms);
    jw_object_end(w);
}

static void write_error(struct jsonw *w, const char *code, const char *message)
{
    if (!code) {
        jw_null(w);
        return;
    }
    jw_object(w);
    jw_key(w, "code");
    jw_string(w, code);
    jw_key(w, "message");
    jw_string(w, message ? message : "");
    jw_object_end(w);
}

static void write_result(struct jsonw *w, const struct task *t)
{
    jw_key(w, "result");
    if (write_result_value(w, t)) {
        jw_key(w, "resultEncoding");
        jw_string(w, "base64");
    }
}

static void write_status_code(struct jsonw *w, int code)
{
    if (code > 0) jw_number(w, code);
    else jw_null(w);
}

/* The members a call attempt and a webhook delivery attempt share. */
static void write_attempt_common(struct jsonw *w, int n, int64_t started_at_ms,
                                 int64_t finished_at_ms, int64_t duration_ms, int status_code)
{
    jw_key(w, "n");
    jw_number(w, n);
    jw_key(w, "startedAt");
    jw_time(w, started_at_ms);
    jw_key(w, "finishedAt");
    jw_time(w, finished_at_ms);
    jw_key(w, "durationMs");
    jw_number(w, (double)duration_ms);
    jw_key(w, "statusCode");
    write_status_code(w, status_code);
}

void attempt_write_json(struct jsonw *w, const struct attempt *a)
{
    jw_object(w);
    write_attempt_common(w, a->n, a->started_at_ms, a->finished_at_ms, a->duration_ms,
                         a->status_code);
    jw_key(w, "error");
    write_error(w, a->error_code, a->error_message);
    jw_object_end(w);
}

void webhook_attempt_write_json(struct jsonw *w, const struct webhook_attempt *a)
{
    jw_object(w);
    jw_key(w, "webhookId");
    jw_string(w, a->webhook_id);
    write_attempt_common(w, a->n, a->started_at_ms, a->finished_at_ms, a->duration_ms,
                         a->status_code);
    jw_key(w, "error");
    jw_string(w, a->error);
    jw_object_end(w);
}

static void write_webhook(struct jsonw *w, const struct webhook_state *wh)
{
    jw_object(w);
    jw_key(w, "id");
    jw_string(w, wh->id);
    jw_key(w, "url"); /* the message's: a replay may have changed the task's since */
    jw_string(w, wh->url ? wh->url : "");
    jw_key(w, "status");
    jw_string(w, wh->status ? wh->status : "pending");
    jw_key(w, "attempts");
    jw_number(w, wh->attempts);
    jw_key(w, "nextAttemptAt");
    jw_time(w, strcmp(wh->status ? wh->status : "", "pending") == 0 ? wh->next_at_ms : 0);
    jw_key(w, "deliveredAt");
    jw_time(w, wh->delivered_at_ms);
    jw_key(w, "lastStatusCode");
    write_status_code(w, wh->last_status_code);
    jw_key(w, "lastError");
    jw_string(w, wh->last_error);
    jw_object_end(w);
}

void task_write_json(struct jsonw *w, const struct task *t, const struct attempt *attempts, size_t n,
                     const struct webhook_state *webhook, bool history)
{
    jw_object(w);
    task_write_members(w, t, attempts, n, webhook, history);
    jw_object_end(w);
}

void task_write_members(struct jsonw *w, const struct task *t, const struct attempt *attempts, size_t n,
                        const struct webhook_state *webhook, bool history)
{
    jw_key(w, "id");
    jw_string(w, t->id);
    jw_key(w, "status");
    jw_string(w, task_status_name(t->status));
    jw_key(w, "queue");
    jw_string(w, t->queue ? t->queue : "default");
    jw_key(w, "callbackUrl");
    jw_string(w, t->callback_url ? t->callback_url : "");
    jw_key(w, "method");
    jw_string(w, t->method ? t->method : "POST");
    jw_key(w, "headers");
    if (t->headers_json) write_stored_json(w, t->headers_json);
    else jw_raw(w, "{}", 2);
    if (t->body_kind == TASK_BODY_JSON) {
        jw_key(w, "payload");
        write_stored_json(w, t->body);
    } else if (t->body_kind == TASK_BODY_RAW) {
        jw_key(w, "body");
        /* As a C string: a raw body is UTF-8 text without NULs (validated). */
        const char *b = t->body ? t->body : "";
        jw_string_n(w, b, strnlen(b, t->body_len));
    }
    jw_key(w, "webhookUrl");
    jw_string(w, t->webhook_url);
    jw_key(w, "retries");
    jw_number(w, t->max_retries);
    jw_key(w, "timeout");
    jw_number(w, (double)t->timeout_ms / 1000.0);
    jw_key(w, "followRedirects");
    jw_bool(w, t->follow_redirects);
    jw_key(w, "metadata");
    write_stored_json(w, t->metadata_json);
    jw_key(w, "attempts");
    jw_number(w, t->attempts);
    jw_key(w, "replays");
    jw_number(w, t->replays);
    jw_key(w, "idempotencyKey");
    jw_string(w, t->idempotency_key);
    jw_key(w, "schedule");
    jw_string(w, t->schedule);
    jw_key(w, "createdAt");
    jw_time(w, t->created_at_ms);
    jw_key(w, "updatedAt");
    jw_time(w, t->updated_at_ms);
    jw_key(w, "runAt");
    jw_time(w, t->run_at_ms);
    jw_key(w, "startedAt");
    jw_time(w, t->started_at_ms);
    jw_key(w, "finishedAt");
    jw_time(w, t->finished_at_ms);
    write_result(w, t);
    jw_key(w, "response");
    write_response(w, t);
    jw_key(w, "error");
    write_error(w, t->error_code, t->error_message);
    if (history || n) {
        jw_key(w, "attemptHistory");
        jw_array(w);
        for (size_t i = 0; i < n; i++) attempt_write_json(w, &attempts[i]);
        jw_array_end(w);
    }
    if (webhook) {
        jw_key(w, "webhook");
        write_webhook(w, webhook);
    }
}

char *task_json(const struct task *t, const struct attempt *attempts, size_t n,
                const struct webhook_state *webhook, bool history)
{
    struct jsonw w;
    jw_init(&w);
    task_write_json(&w, t, attempts, n, webhook, history);
    return jw_finish(&w);
}

char *task_webhook_payload(const struct task *t)
{
    struct jsonw w;
    jw_init(&w);
    jw_object(&w);
    jw_key(&w, "taskId");
    jw_string(&w, t->id);
    jw_key(&w, "status");
    jw_string(&w, task_status_name(t->status));
    jw_key(&w, "queue");
    jw_string(&w, t->queue ? t->queue : "default");
    write_result(&w, t);
    jw_key(&w, "response");
    write_response(&w, t);
    jw_key(&w, "attempts");
    jw_number(&w, t->attempts);
    /* Which run this is the outcome of: an earlier run's message may still
     * be in its retries when a replay's arrives. */
    jw_key(&w, "replays");
    jw_number(&w, t->replays);
    jw_key(&w, "error");
    write_error(&w, t->error_code, t->error_message);
    jw_key(&w, "metadata");
    write_stored_json(&w, t->metadata_json);
    jw_key(&w, "createdAt");
    jw_time(&w, t->created_at_ms);
    jw_key(&w, "finishedAt");
    jw_time(&w, t->finished_at_ms);
    jw_object_end(&w);
    return jw_finish(&w);
}

char *task_event_json(const struct task *t, const char *change)
{
    struct jsonw w;
    jw_init(&w);
    jw_object(&w);
    jw_key(&w, "change");
    jw_string(&w, change);
    jw_key(&w, "id");
    jw_string(&w, t->id);
    jw_key(&w, "status");
    jw_string(&w, task_status_name(t->status));
    jw_key(&w, "queue");
    jw_string(&w, t->queue ? t->queue : "default");
    jw_key(&w, "host");
    jw_string(&w, t->host ? t->host : "");
    jw_key(&w, "attempts");
    jw_number(&w, t->attempts);
    jw_key(&w, "createdAt");
    jw_time(&w, t->created_at_ms);
    jw_key(&w, "runAt");
    jw_time(&w, t->run_at_ms);
    jw_key(&w, "updatedAt");
    jw_time(&w, t->updated_at_ms);
    jw_key(&w, "statusCode");
    write_status_code(&w, t->response_status);
    jw_key(&w, "durationMs");
    if (t->response_ms > 0) jw_number(&w, (double)t->response_ms);
    else jw_null(&w);
    jw_key(&w, "error");
    write_error(&w, t->error_code, t->error_message);
    jw_object_end(&w);
    return jw_finish(&w);
}
