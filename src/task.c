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
    return h;
}

void webhook_state_clear(struct webhook_state *w)
{
    free(w->status);
    free(w->last_error);
    memset(w, 0, sizeof *w);
}

static void add_time(cJSON *o, const char *name, int64_t ms)
{
    char ts[UTIL_RFC3339_LEN];
    if (ms > 0) cJSON_AddStringToObject(o, name, util_rfc3339(ms, ts));
    else cJSON_AddNullToObject(o, name);
}

/* Parses stored JSON text; stored text was produced by us, so a failure
 * means corruption and shows as null rather than crashing a reader. */
static cJSON *parse_stored(const char *json)
{
    cJSON *v = json ? cJSON_Parse(json) : NULL;
    return v ? v : cJSON_CreateNull();
}

/* A client's JSON (payload, metadata) as it was written: validated at
 * creation and stored verbatim, so it goes out verbatim. */
static cJSON *stored_raw(const char *json)
{
    return json ? cJSON_CreateRaw(json) : cJSON_CreateNull();
}

static bool content_type_is_json(const char *headers_json)
{
    bool json = false;
    cJSON *h = headers_json ? cJSON_Parse(headers_json) : NULL;
    const cJSON *ct = h ? cJSON_GetObjectItemCaseSensitive(h, "content-type") : NULL;
    if (cJSON_IsString(ct)) {
        const char *v = ct->valuestring;
        /* application/json, application/problem+json, text/json ... */
        json = strcasestr(v, "/json") != NULL || strcasestr(v, "+json") != NULL;
    }
    cJSON_Delete(h);
    return json;
}

cJSON *task_result_json(const struct task *t, bool *base64)
{
    *base64 = false;
    if (!t->response_body || t->response_body_len == 0) return cJSON_CreateNull();
    const char *body = t->response_body, *body_end = body + t->response_body_len;
    /* Text must be UTF-8 without NULs to go into JSON as it is (cJSON does
     * not check): anything else is returned as base64. */
    bool text = util_utf8_valid(body, t->response_body_len) && !memchr(body, '\0', t->response_body_len);
    if (text && content_type_is_json(t->response_headers_json)) {
        const char *end = NULL;
        cJSON *v = cJSON_ParseWithLengthOpts(body, t->response_body_len, &end, 0);
        while (v && end < body_end && isspace((unsigned char)*end)) end++;
        bool ok = v && end == body_end;
        cJSON_Delete(v);
        /* Valid JSON is passed on as the target wrote it (numbers included),
         * unless its strings hold what JSON forbids. */
        if (ok && !util_json_strings_bad(body, t->response_body_len)) {
            const char *start = body;
            while (start < body_end && isspace((unsigned char)*start)) start++;
            while (body_end > start && isspace((unsigned char)body_end[-1])) body_end--;
            char *raw = xstrndup(start, (size_t)(body_end - start));
            cJSON *r = cJSON_CreateRaw(raw);
            free(raw);
            return r;
        }
    }
    if (text) {
        char *s = xstrndup(t->response_body, t->response_body_len);
        cJSON *v = cJSON_CreateString(s);
        free(s);
        return v;
    }
    *base64 = true;
    char *b = util_base64_encode((const unsigned char *)t->response_body, t->response_body_len);
    cJSON *v = cJSON_CreateString(b);
    free(b);
    return v;
}

static cJSON *response_json(const struct task *t)
{
    if (t->response_status <= 0) return cJSON_CreateNull();
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "statusCode", t->response_status);
    cJSON_AddItemToObject(r, "headers", parse_stored(t->response_headers_json));
    cJSON_AddNumberToObject(r, "durationMs", (double)t->response_ms);
    return r;
}

static cJSON *error_json(const char *code, const char *message)
{
    if (!code) return cJSON_CreateNull();
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", message ? message : "");
    return e;
}

static void add_result(cJSON *o, const struct task *t)
{
    bool base64;
    cJSON_AddItemToObject(o, "result", task_result_json(t, &base64));
    if (base64) cJSON_AddStringToObject(o, "resultEncoding", "base64");
}

cJSON *attempt_to_json(const struct attempt *a)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n", a->n);
    add_time(o, "startedAt", a->started_at_ms);
    add_time(o, "finishedAt", a->finished_at_ms);
    cJSON_AddNumberToObject(o, "durationMs", (double)a->duration_ms);
    if (a->status_code > 0) cJSON_AddNumberToObject(o, "statusCode", a->status_code);
    else cJSON_AddNullToObject(o, "statusCode");
    cJSON_AddItemToObject(o, "error", error_json(a->error_code, a->error_message));
    return o;
}

cJSON *webhook_attempt_to_json(const struct webhook_attempt *a)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "webhookId", a->webhook_id);
    cJSON_AddNumberToObject(o, "n", a->n);
    add_time(o, "startedAt", a->started_at_ms);
    add_time(o, "finishedAt", a->finished_at_ms);
    cJSON_AddNumberToObject(o, "durationMs", (double)a->duration_ms);
    if (a->status_code > 0) cJSON_AddNumberToObject(o, "statusCode", a->status_code);
    else cJSON_AddNullToObject(o, "statusCode");
    if (a->error) cJSON_AddStringToObject(o, "error", a->error);
    else cJSON_AddNullToObject(o, "error");
    return o;
}

static cJSON *webhook_json(const struct task *t, const struct webhook_state *w)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", w->id);
    cJSON_AddStringToObject(o, "url", t->webhook_url ? t->webhook_url : "");
    cJSON_AddStringToObject(o, "status", w->status ? w->status : "pending");
    cJSON_AddNumberToObject(o, "attempts", w->attempts);
    add_time(o, "nextAttemptAt", strcmp(w->status ? w->status : "", "pending") == 0 ? w->next_at_ms : 0);
    add_time(o, "deliveredAt", w->delivered_at_ms);
    if (w->last_status_code > 0) cJSON_AddNumberToObject(o, "lastStatusCode", w->last_status_code);
    else cJSON_AddNullToObject(o, "lastStatusCode");
    if (w->last_error) cJSON_AddStringToObject(o, "lastError", w->last_error);
    else cJSON_AddNullToObject(o, "lastError");
    return o;
}

cJSON *task_to_json(const struct task *t, const struct attempt *attempts, size_t n,
                    const struct webhook_state *webhook)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", t->id);
    cJSON_AddStringToObject(o, "status", task_status_name(t->status));
    cJSON_AddStringToObject(o, "queue", t->queue ? t->queue : "default");
    cJSON_AddStringToObject(o, "callbackUrl", t->callback_url ? t->callback_url : "");
    cJSON_AddStringToObject(o, "method", t->method ? t->method : "POST");
    cJSON_AddItemToObject(o, "headers",
                          t->headers_json ? parse_stored(t->headers_json) : cJSON_CreateObject());
    if (t->body_kind == TASK_BODY_JSON) {
        cJSON_AddItemToObject(o, "payload", stored_raw(t->body));
    } else if (t->body_kind == TASK_BODY_RAW) {
        char *s = xstrndup(t->body ? t->body : "", t->body_len);
        cJSON_AddStringToObject(o, "body", s);
        free(s);
    }
    if (t->webhook_url) cJSON_AddStringToObject(o, "webhookUrl", t->webhook_url);
    else cJSON_AddNullToObject(o, "webhookUrl");
    cJSON_AddNumberToObject(o, "retries", t->max_retries);
    cJSON_AddNumberToObject(o, "timeout", (double)t->timeout_ms / 1000.0);
    cJSON_AddBoolToObject(o, "followRedirects", t->follow_redirects);
    cJSON_AddItemToObject(o, "metadata", stored_raw(t->metadata_json));
    cJSON_AddNumberToObject(o, "attempts", t->attempts);
    cJSON_AddNumberToObject(o, "replays", t->replays);
    if (t->idempotency_key) cJSON_AddStringToObject(o, "idempotencyKey", t->idempotency_key);
    else cJSON_AddNullToObject(o, "idempotencyKey");
    add_time(o, "createdAt", t->created_at_ms);
    add_time(o, "updatedAt", t->updated_at_ms);
    add_time(o, "runAt", t->run_at_ms);
    add_time(o, "startedAt", t->started_at_ms);
    add_time(o, "finishedAt", t->finished_at_ms);
    add_result(o, t);
    cJSON_AddItemToObject(o, "response", response_json(t));
    cJSON_AddItemToObject(o, "error", error_json(t->error_code, t->error_message));
    if (attempts || n) {
        cJSON *list = cJSON_AddArrayToObject(o, "attemptHistory");
        for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(list, attempt_to_json(&attempts[i]));
    }
    if (webhook) cJSON_AddItemToObject(o, "webhook", webhook_json(t, webhook));
    return o;
}

char *task_webhook_payload(const struct task *t)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "taskId", t->id);
    cJSON_AddStringToObject(o, "status", task_status_name(t->status));
    cJSON_AddStringToObject(o, "queue", t->queue ? t->queue : "default");
    add_result(o, t);
    cJSON_AddItemToObject(o, "response", response_json(t));
    cJSON_AddNumberToObject(o, "attempts", t->attempts);
    cJSON_AddItemToObject(o, "error", error_json(t->error_code, t->error_message));
    cJSON_AddItemToObject(o, "metadata", stored_raw(t->metadata_json));
    add_time(o, "createdAt", t->created_at_ms);
    add_time(o, "finishedAt", t->finished_at_ms);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) abort(); /* cJSON only fails on out-of-memory */
    return s;
}

char *task_event_json(const struct task *t, const char *change)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "change", change);
    cJSON_AddStringToObject(o, "id", t->id);
    cJSON_AddStringToObject(o, "status", task_status_name(t->status));
    cJSON_AddStringToObject(o, "queue", t->queue ? t->queue : "default");
    cJSON_AddStringToObject(o, "host", t->host ? t->host : "");
    cJSON_AddNumberToObject(o, "attempts", t->attempts);
    add_time(o, "createdAt", t->created_at_ms);
    add_time(o, "runAt", t->run_at_ms);
    add_time(o, "updatedAt", t->updated_at_ms);
    if (t->response_status > 0) cJSON_AddNumberToObject(o, "statusCode", t->response_status);
    else cJSON_AddNullToObject(o, "statusCode");
    if (t->response_ms > 0) cJSON_AddNumberToObject(o, "durationMs", (double)t->response_ms);
    else cJSON_AddNullToObject(o, "durationMs");
    cJSON_AddItemToObject(o, "error", error_json(t->error_code, t->error_message));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) abort();
    return s;
}
