/*
 * test_task: status names, the result as users see it (JSON, string or
 * base64), and the shape of the task object and the webhook payload
 * described in docs/api.md.
 */
#include "testutil.h"

#include "task.h"
#include "util.h"

#define T0 1795860742123LL /* 2026-11-28T10:12:22.123Z */

/* A task with its response set; everything it owns is heap memory. */
static struct task *task_with_response(const char *content_type, const char *body, size_t len)
{
    struct task *t = xcalloc(1, sizeof *t);
    if (content_type) {
        cJSON *h = cJSON_CreateObject();
        cJSON_AddStringToObject(h, "content-type", content_type);
        t->response_headers_json = cJSON_PrintUnformatted(h);
        cJSON_Delete(h);
    }
    if (body) {
        t->response_body = xmalloc(len + 1);
        memcpy(t->response_body, body, len);
        t->response_body[len] = '\0';
        t->response_body_len = len;
        t->response_status = 200;
    }
    return t;
}

/* The task object as a client reads it: the text, parsed. */
static cJSON *task_doc(const struct task *t, const struct attempt *attempts, size_t n,
                       const struct webhook_state *w)
{
    char *text = task_json(t, attempts, n, w, attempts != NULL);
    assert_non_null(text);
    cJSON *back = cJSON_Parse(text);
    if (!back) fail_msg("the output is not JSON: %.300s", text);
    free(text);
    return back;
}

/* The task's "result" as a client reads it, and whether it came as base64. */
static cJSON *result_of(const char *content_type, const char *body, size_t len, bool *base64)
{
    struct task *t = task_with_response(content_type, body, len);
    cJSON *o = task_doc(t, NULL, 0, NULL);
    task_free(t);
    cJSON *enc = cJSON_GetObjectItemCaseSensitive(o, "resultEncoding");
    *base64 = cJSON_IsString(enc) && strcmp(enc->valuestring, "base64") == 0;
    assert_true(!enc || *base64);
    cJSON *r = cJSON_DetachItemFromObjectCaseSensitive(o, "result");
    cJSON_Delete(o);
    assert_non_null(r);
    return r;
}

/* ---- status ---- */

static void status_names_round_trip(void **state)
{
    (void)state;
    static const struct {
        enum task_status s;
        const char *name;
        bool final;
    } all[] = {
        {TASK_QUEUED, "queued", false},      {TASK_RUNNING, "running", false},
        {TASK_COMPLETED, "completed", true}, {TASK_FAILED, "failed", true},
        {TASK_CANCELLED, "cancelled", true},
    };
    for (size_t i = 0; i < ARRAY_LEN(all); i++) {
        assert_string_equal(task_status_name(all[i].s), all[i].name);
        enum task_status back = (enum task_status)99;
        assert_int_equal(task_status_parse(all[i].name, &back), 0);
        assert_int_equal(back, all[i].s);
        assert_int_equal(task_status_final(all[i].s), all[i].final);
    }
    enum task_status out = TASK_RUNNING;
    assert_int_equal(task_status_parse("Queued", &out), -1);
    assert_int_equal(task_status_parse("", &out), -1);
    assert_int_equal(task_status_parse("canceled", &out), -1);
    assert_int_equal(task_status_parse("queued ", &out), -1);
    assert_int_equal(out, TASK_RUNNING);
    assert_string_equal(task_status_name((enum task_status)5), "unknown");
    assert_string_equal(task_status_name((enum task_status) - 1), "unknown");
}

/* The key of a host's cap: one name for one host and port however the URL
 * writes them. */
static void url_host_is_the_host_and_port_as_one_key(void **state)
{
    (void)state;
    static const struct {
        const char *url, *host;
    } cases[] = {
        {"http://Example.COM/x", "example.com"},
        {"http://example.com:80/x", "example.com"},
        {"http://example.com:0080/x", "example.com"},
        {"https://example.com:443", "example.com"},
        {"https://example.com:80/x", "example.com:80"},
        {"http://127.0.0.1:08080/a?b", "127.0.0.1:8080"},
        {"http://user:pw@h.example:09/", "h.example:9"},
        {"http://[::1]:0443/", "[::1]:443"},
        {"https://[::1]/", "[::1]"},
        {"HTTPS://h.example:443#f", "h.example"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *h = task_url_host(cases[i].url);
        if (strcmp(h, cases[i].host)) fail_msg("%s: '%s', want '%s'", cases[i].url, h, cases[i].host);
        free(h);
    }
}

static void free_functions_accept_empty_values(void **state)
{
    (void)state;
    task_free(NULL);
    struct attempt a = {.n = 1, .error_code = xstrdup("timeout"), .error_message = xstrdup("slow")};
    attempt_clear(&a);
    assert_null(a.error_code);
    assert_int_equal(a.n, 0);
    attempt_clear(&a); /* twice is fine */
    struct webhook_state w = {.status = xstrdup("pending"), .url = xstrdup("https://x.example/h"),
                              .last_error = xstrdup("500")};
    webhook_state_clear(&w);
    assert_null(w.status);
    assert_null(w.url);
    webhook_state_clear(&w);
}

/* ---- the result ---- */

static void result_json_content_types_are_parsed(void **state)
{
    (void)state;
    static const char *const types[] = {
        "application/json",         "application/json; charset=utf-8", "Application/JSON",
        "application/problem+json", "application/vnd.api+json",        "text/json",
    };
    for (size_t i = 0; i < ARRAY_LEN(types); i++) {
        bool b64;
        const char *body = "{\"image\":\"x.png\",\"n\":[1,2]}";
        cJSON *r = result_of(types[i], body, strlen(body), &b64);
        if (!cJSON_IsObject(r)) fail_msg("%s: not parsed", types[i]);
        assert_false(b64);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(r, "image")->valuestring, "x.png");
        cJSON_Delete(r);
    }
    bool b64;
    cJSON *r = result_of("application/json", "[1,2,3]", 7, &b64);
    assert_true(cJSON_IsArray(r));
    assert_int_equal(cJSON_GetArraySize(r), 3);
    cJSON_Delete(r);
    r = result_of("application/json", "42", 2, &b64);
    assert_true(cJSON_IsNumber(r));
    assert_int_equal(r->valueint, 42);
    cJSON_Delete(r);
    r = result_of("application/json", "\"text\"", 6, &b64);
    assert_true(cJSON_IsString(r));
    assert_string_equal(r->valuestring, "text");
    cJSON_Delete(r);
}

static void result_other_content_types_are_strings(void **state)
{
    (void)state;
    static const char *const types[] = {"text/plain", "text/html; charset=utf-8", "application/xml",
                                        NULL};
    for (size_t i = 0; i < ARRAY_LEN(types); i++) {
        bool b64;
        cJSON *r = result_of(types[i], "{\"a\":1}", 7, &b64);
        if (!cJSON_IsString(r))
            fail_msg("%s: parsed as JSON", types[i] ? types[i] : "no content-type");
        assert_string_equal(r->valuestring, "{\"a\":1}");
        assert_false(b64);
        cJSON_Delete(r);
    }
}

static void result_invalid_json_under_json_type_is_a_string(void **state)
{
    (void)state;
    static const char *const bodies[] = {"{oops", "not json at all", "{} trailing",
                                         "{\"a\":1}{\"b\":2}", "\xc3\xa9t\xc3\xa9"};
    for (size_t i = 0; i < ARRAY_LEN(bodies); i++) {
        bool b64;
        cJSON *r = result_of("application/json", bodies[i], strlen(bodies[i]), &b64);
        if (!cJSON_IsString(r)) fail_msg("'%s' not kept as a string", bodies[i]);
        assert_string_equal(r->valuestring, bodies[i]);
        assert_false(b64);
        cJSON_Delete(r);
    }
}

static void result_non_utf8_is_base64_with_flag(void **state)
{
    (void)state;
    static const char png[] = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR";
    bool b64 = false;
    cJSON *r = result_of("image/png", png, sizeof png - 1, &b64);
    assert_true(b64);
    assert_true(cJSON_IsString(r));
    unsigned char back[64];
    long n = util_base64_decode(r->valuestring, strlen(r->valuestring), back);
    assert_int_equal(n, sizeof png - 1);
    assert_memory_equal(back, png, sizeof png - 1);
    cJSON_Delete(r);
    /* Also for valid UTF-8 holding a NUL. */
    r = result_of("text/plain", "a\0b", 3, &b64);
    assert_true(b64);
    assert_string_equal(r->valuestring, "YQBi");
    cJSON_Delete(r);
}

static void result_empty_body_is_null(void **state)
{
    (void)state;
    bool b64;
    cJSON *r = result_of("application/json", "", 0, &b64);
    assert_true(cJSON_IsNull(r));
    assert_false(b64);
    cJSON_Delete(r);
    r = result_of("text/plain", NULL, 0, &b64);
    assert_true(cJSON_IsNull(r));
    assert_false(b64);
    cJSON_Delete(r);
}

/* ---- the task object ---- */

static struct task *full_task(void)
{
    struct task *t = xcalloc(1, sizeof *t);
    snprintf(t->id, sizeof t->id, "%s", "01a221b7-4f1f-707d-9c40-a269a508bd38");
    t->seq = 7;
    t->queue = xstrdup("images");
    t->status = TASK_COMPLETED;
    t->method = xstrdup("PUT");
    t->callback_url = xstrdup("https://ai.example.com/generate");
    t->headers_json = xstrdup("{\"X-Trace\":\"abc\"}");
    t->body = xstrdup("{\"prompt\":\"a lighthouse\"}");
    t->body_len = strlen(t->body);
    t->body_kind = TASK_BODY_JSON;
    t->webhook_url = xstrdup("https://app.example.com/done");
    t->metadata_json = xstrdup("{\"userId\":42}");
    t->max_retries = 3;
    t->timeout_ms = 1500;
    t->attempts = 2;
    t->run_at_ms = T0;
    t->created_at_ms = T0 - 1000;
    t->updated_at_ms = T0 + 5000;
    t->started_at_ms = T0 + 1000;
    t->finished_at_ms = T0 + 5000;
    t->response_status = 200;
    t->response_headers_json = xstrdup("{\"content-type\":\"application/json\"}");
    t->response_body = xstrdup("{\"image\":\"1.png\"}");
    t->response_body_len = strlen(t->response_body);
    t->response_ms = 4000;
    return t;
}

static void assert_keys(const cJSON *o, const char *const *keys, size_t n)
{
    size_t count = 0;
    for (const cJSON *c = o->child; c; c = c->next) {
        bool known = false;
        for (size_t i = 0; i < n && !known; i++)
            known = strcmp(c->string, keys[i]) == 0;
        if (!known) fail_msg("unexpected key '%s'", c->string);
        count++;
    }
    for (size_t i = 0; i < n; i++)
        if (!cJSON_GetObjectItemCaseSensitive(o, keys[i])) fail_msg("missing key '%s'", keys[i]);
    assert_int_equal(count, n);
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v)) fail_msg("'%s' is not a string", key);
    return v->valuestring;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) fail_msg("'%s' is not a number", key);
    return v->valuedouble;
}

static bool is_null(const cJSON *o, const char *key)
{
    return cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, key));
}

static void to_json_full_task_has_every_documented_field(void **state)
{
    (void)state;
    struct task *t = full_task();
    struct attempt attempts[2] = {
        {.n = 1,
         .started_at_ms = T0,
         .finished_at_ms = T0 + 100,
         .duration_ms = 100,
         .error_code = xstrdup("timeout"),
         .error_message = xstrdup("no answer in 0.1 s")},
        {.n = 2,
         .started_at_ms = T0 + 1000,
         .finished_at_ms = T0 + 5000,
         .duration_ms = 4000,
         .status_code = 200},
    };
    struct webhook_state w = {.status = xstrdup("delivered"),
                              .url = xstrdup("https://app.example.com/done"),
                              .attempts = 1,
                              .next_at_ms = T0 + 5000,
                              .delivered_at_ms = T0 + 5004,
                              .last_status_code = 204};
    snprintf(w.id, sizeof w.id, "msg_%s", t->id);
    cJSON *o = task_doc(t, attempts, 2, &w);
    static const char *const keys[] = {
        "id",        "status",     "queue",          "callbackUrl", "method",     "headers",
        "payload",   "webhookUrl", "retries",        "timeout",     "metadata",   "attempts",
        "createdAt", "updatedAt",  "runAt",          "startedAt",   "finishedAt", "result",
        "response",  "error",      "attemptHistory", "webhook",     "followRedirects",
        "replays",   "idempotencyKey", "schedule",
    };
    assert_keys(o, keys, ARRAY_LEN(keys));
    assert_string_equal(str(o, "id"), "01a221b7-4f1f-707d-9c40-a269a508bd38");
    assert_string_equal(str(o, "status"), "completed");
    assert_string_equal(str(o, "queue"), "images");
    assert_string_equal(str(o, "callbackUrl"), "https://ai.example.com/generate");
    assert_string_equal(str(o, "method"), "PUT");
    assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(o, "headers"), "X-Trace"), "abc");
    assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(o, "payload"), "prompt"),
                        "a lighthouse");
    assert_string_equal(str(o, "webhookUrl"), "https://app.example.com/done");
    assert_true(num(o, "retries") == 3);
    assert_true(num(o, "timeout") == 1.5); /* seconds */
    assert_true(num(cJSON_GetObjectItemCaseSensitive(o, "metadata"), "userId") == 42);
    assert_true(num(o, "attempts") == 2);
    assert_string_equal(str(o, "createdAt"), "2026-11-28T10:12:21.123Z");
    assert_string_equal(str(o, "updatedAt"), "2026-11-28T10:12:27.123Z");
    assert_string_equal(str(o, "runAt"), "2026-11-28T10:12:22.123Z");
    assert_string_equal(str(o, "startedAt"), "2026-11-28T10:12:23.123Z");
    assert_string_equal(str(o, "finishedAt"), "2026-11-28T10:12:27.123Z");
    assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(o, "result"), "image"), "1.png");
    const cJSON *resp = cJSON_GetObjectItemCaseSensitive(o, "response");
    static const char *const resp_keys[] = {"statusCode", "headers", "durationMs"};
    assert_keys(resp, resp_keys, ARRAY_LEN(resp_keys));
    assert_true(num(resp, "statusCode") == 200);
    assert_true(num(resp, "durationMs") == 4000);
    assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(resp, "headers"), "content-type"),
                        "application/json");
    assert_true(is_null(o, "error"));

    const cJSON *hist = cJSON_GetObjectItemCaseSensitive(o, "attemptHistory");
    assert_true(cJSON_IsArray(hist));
    assert_int_equal(cJSON_GetArraySize(hist), 2);
    static const char *const att_keys[] = {"n",          "startedAt",  "finishedAt",
                                           "durationMs", "statusCode", "error"};
    const cJSON *a1 = cJSON_GetArrayItem(hist, 0), *a2 = cJSON_GetArrayItem(hist, 1);
    assert_keys(a1, att_keys, ARRAY_LEN(att_keys));
    assert_keys(a2, att_keys, ARRAY_LEN(att_keys));
    assert_true(num(a1, "n") == 1);
    assert_true(is_null(a1, "statusCode")); /* no response arrived */
    const cJSON *err1 = cJSON_GetObjectItemCaseSensitive(a1, "error");
    assert_string_equal(str(err1, "code"), "timeout");
    assert_string_equal(str(err1, "message"), "no answer in 0.1 s");
    assert_true(num(a2, "statusCode") == 200);
    assert_true(num(a2, "durationMs") == 4000);
    assert_true(is_null(a2, "error"));
    assert_string_equal(str(a2, "finishedAt"), "2026-11-28T10:12:27.123Z");

    const cJSON *wh = cJSON_GetObjectItemCaseSensitive(o, "webhook");
    static const char *const wh_keys[] = {
        "id",       "url", "status", "attempts", "nextAttemptAt", "deliveredAt", "lastStatusCode",
        "lastError"};
    assert_keys(wh, wh_keys, ARRAY_LEN(wh_keys));
    assert_string_equal(str(wh, "id"), "msg_01a221b7-4f1f-707d-9c40-a269a508bd38");
    assert_string_equal(str(wh, "url"), "https://app.example.com/done");
    assert_string_equal(str(wh, "status"), "delivered");
    assert_true(num(wh, "attempts") == 1);
    assert_true(is_null(wh, "nextAttemptAt")); /* only while pending */
    assert_string_equal(str(wh, "deliveredAt"), "2026-11-28T10:12:27.127Z");
    assert_true(num(wh, "lastStatusCode") == 204);
    assert_true(is_null(wh, "lastError"));

    cJSON_Delete(o);
    attempt_clear(&attempts[0]);
    attempt_clear(&attempts[1]);
    webhook_state_clear(&w);
    task_free(t);
}

static void to_json_new_task_has_nulls_and_no_history(void **state)
{
    (void)state;
    struct task *t = xcalloc(1, sizeof *t);
    snprintf(t->id, sizeof t->id, "%s", "01a221b7-4f1f-707d-9c40-a269a508bd38");
    t->queue = xstrdup("default");
    t->method = xstrdup("POST");
    t->callback_url = xstrdup("https://example.com/");
    t->max_retries = 3;
    t->timeout_ms = 300000;
    t->run_at_ms = t->created_at_ms = t->updated_at_ms = T0;
    cJSON *o = task_doc(t, NULL, 0, NULL);
    static const char *const keys[] = {
        "id",         "status",     "queue",     "callbackUrl", "method",
        "headers",    "webhookUrl", "retries",   "timeout",     "metadata",
        "attempts",   "createdAt",  "updatedAt", "runAt",       "startedAt",
        "finishedAt", "result",     "response",  "error",       "followRedirects",
        "replays",    "idempotencyKey", "schedule",
    };
    assert_keys(o, keys, ARRAY_LEN(keys)); /* neither payload nor body, no history, no webhook */
    assert_string_equal(str(o, "status"), "queued");
    assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o, "headers")));
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "headers")->child);
    assert_true(is_null(o, "webhookUrl"));
    assert_true(is_null(o, "metadata"));
    assert_true(is_null(o, "startedAt"));
    assert_true(is_null(o, "finishedAt"));
    assert_true(is_null(o, "result"));
    assert_true(is_null(o, "response"));
    assert_true(is_null(o, "error"));
    assert_true(num(o, "timeout") == 300);
    assert_true(num(o, "attempts") == 0);
    cJSON_Delete(o);
    /* An empty history (attempts given, none made) is an empty array. */
    struct attempt none[1] = {{0}};
    o = task_doc(t, none, 0, NULL);
    const cJSON *hist = cJSON_GetObjectItemCaseSensitive(o, "attemptHistory");
    assert_true(cJSON_IsArray(hist));
    assert_int_equal(cJSON_GetArraySize(hist), 0);
    cJSON_Delete(o);
    task_free(t);
}

static void to_json_raw_body_and_error_while_retrying(void **state)
{
    (void)state;
    struct task *t = full_task();
    free(t->body);
    t->body = xstrdup("plain text\nbody");
    t->body_len = strlen(t->body);
    t->body_kind = TASK_BODY_RAW;
    t->status = TASK_QUEUED;
    t->finished_at_ms = 0;
    t->response_status = 503;
    free(t->response_headers_json);
    t->response_headers_json = xstrdup("{\"content-type\":\"text/plain\",\"retry-after\":\"5\"}");
    free(t->response_body);
    t->response_body = xstrdup("busy");
    t->response_body_len = 4;
    t->error_code = xstrdup("http_error");
    t->error_message = xstrdup("target answered 503");
    cJSON *o = task_doc(t, NULL, 0, NULL);
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "payload"));
    assert_string_equal(str(o, "body"), "plain text\nbody");
    assert_string_equal(str(o, "status"), "queued");
    assert_true(is_null(o, "finishedAt"));
    assert_string_equal(str(o, "result"), "busy");
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "resultEncoding"));
    const cJSON *resp = cJSON_GetObjectItemCaseSensitive(o, "response");
    assert_true(num(resp, "statusCode") == 503);
    assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(resp, "headers"), "retry-after"), "5");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    static const char *const err_keys[] = {"code", "message"};
    assert_keys(e, err_keys, ARRAY_LEN(err_keys));
    assert_string_equal(str(e, "code"), "http_error");
    assert_string_equal(str(e, "message"), "target answered 503");
    cJSON_Delete(o);
    task_free(t);
}

static void to_json_pending_webhook_shows_next_attempt(void **state)
{
    (void)state;
    struct task *t = full_task();
    struct webhook_state w = {.status = xstrdup("pending"),
                              .attempts = 2,
                              .next_at_ms = T0 + 300000,
                              .last_status_code = 500,
                              .last_error = xstrdup("receiver answered 500")};
    snprintf(w.id, sizeof w.id, "msg_x");
    cJSON *o = task_doc(t, NULL, 0, &w);
    const cJSON *wh = cJSON_GetObjectItemCaseSensitive(o, "webhook");
    assert_string_equal(str(wh, "status"), "pending");
    assert_string_equal(str(wh, "nextAttemptAt"), "2026-11-28T10:17:22.123Z");
    assert_true(is_null(wh, "deliveredAt"));
    assert_true(num(wh, "lastStatusCode") == 500);
    assert_string_equal(str(wh, "lastError"), "receiver answered 500");
    cJSON_Delete(o);
    webhook_state_clear(&w);
    task_free(t);
}

static void to_json_base64_result_is_flagged(void **state)
{
    (void)state;
    struct task *t = full_task();
    free(t->response_body);
    t->response_body = xmalloc(3);
    memcpy(t->response_body, "\xff\x00\x01", 3);
    t->response_body_len = 3;
    cJSON *o = task_doc(t, NULL, 0, NULL);
    assert_string_equal(str(o, "result"), "/wAB");
    assert_string_equal(str(o, "resultEncoding"), "base64");
    cJSON_Delete(o);
    task_free(t);
}

/* ---- webhook payload ---- */

static void webhook_payload_shape(void **state)
{
    (void)state;
    struct task *t = full_task();
    char *s = task_webhook_payload(t);
    cJSON *o = cJSON_Parse(s);
    assert_non_null(o);
    static const char *const keys[] = {"taskId",   "status",  "queue", "result",   "response", "attempts",
                                       "replays", "error", "metadata", "createdAt", "finishedAt"};
    assert_keys(o, keys, ARRAY_LEN(keys));
    assert_string_equal(str(o, "taskId"), "01a221b7-4f1f-707d-9c40-a269a508bd38");
    assert_string_equal(str(o, "status"), "completed");
    assert_string_equal(str(o, "queue"), "images");
    assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(o, "result"), "image"), "1.png");
    assert_true(num(cJSON_GetObjectItemCaseSensitive(o, "response"), "statusCode") == 200);
    assert_true(num(o, "attempts") == 2);
    assert_true(is_null(o, "error"));
    assert_true(num(cJSON_GetObjectItemCaseSensitive(o, "metadata"), "userId") == 42);
    assert_string_equal(str(o, "createdAt"), "2026-11-28T10:12:21.123Z");
    assert_string_equal(str(o, "finishedAt"), "2026-11-28T10:12:27.123Z");
    /* Never sent to the webhook: the request the target got. */
    assert_null(strstr(s, "lighthouse"));
    assert_null(strstr(s, "X-Trace"));
    cJSON_Delete(o);
    free(s);
    task_free(t);
}

static void webhook_payload_for_a_failed_task(void **state)
{
    (void)state;
    struct task *t = full_task();
    t->status = TASK_FAILED;
    t->response_status = 0;
    free(t->response_body);
    t->response_body = NULL;
    t->response_body_len = 0;
    free(t->metadata_json);
    t->metadata_json = NULL;
    t->error_code = xstrdup("dns_failed");
    t->error_message = xstrdup("could not resolve host");
    char *s = task_webhook_payload(t);
    cJSON *o = cJSON_Parse(s);
    assert_non_null(o);
    assert_string_equal(str(o, "status"), "failed");
    assert_true(is_null(o, "result"));
    assert_true(is_null(o, "response"));
    assert_true(is_null(o, "metadata"));
    assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(o, "error"), "code"), "dns_failed");
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "resultEncoding"));
    cJSON_Delete(o);
    free(s);
    /* A base64 result carries the flag in the webhook too. */
    t->status = TASK_COMPLETED;
    t->response_status = 200;
    t->response_body = xstrdup("\xfe");
    t->response_body_len = 1;
    s = task_webhook_payload(t);
    o = cJSON_Parse(s);
    assert_string_equal(str(o, "resultEncoding"), "base64");
    assert_string_equal(str(o, "result"), "/g==");
    cJSON_Delete(o);
    free(s);
    task_free(t);
}

/* A JSON response that ends in a newline (Flask's jsonify, many others) is
 * stored as a string: the task's result compares cJSON's parse end, which
 * stops before trailing whitespace, with the end of the body. */
static void json_result_with_trailing_newline_is_parsed(void **state)
{
    (void)state;
    bool b64;
    cJSON *r = result_of("application/json", "{\"a\":1}\n", 8, &b64);
    bool parsed = cJSON_IsObject(r);
    cJSON_Delete(r);
    assert_true(parsed);
}

/* docs/api.md: "when the body is not UTF-8 it is base64". Under a JSON
 * content type the body goes to cJSON first, which does not check UTF-8,
 * so {"a":"<FF>"} comes back parsed, and the task object and webhook
 * payload then carry invalid UTF-8. */
static void non_utf8_json_body_is_base64(void **state)
{
    (void)state;
    bool b64 = false;
    cJSON *r = result_of("application/json", "{\"a\":\"\xff\"}", 9, &b64);
    bool is_b64_string = b64 && cJSON_IsString(r) && strcmp(r->valuestring, "eyJhIjoi/yJ9") == 0;
    cJSON_Delete(r);
    assert_true(is_b64_string);
}

/* payload, metadata and a JSON result go out exactly as written: numbers a
 * double cannot hold are not rounded, and formatting is the writer's. */
static void json_is_passed_through_verbatim(void **state)
{
    (void)state;
    const char *big = "{\"id\": 12345678901234567890, \"x\": 1.0}";
    struct task *t = task_with_response("application/json", big, strlen(big));
    t->body = xstrdup("{\"order\":12345678901234567890,\"price\":1.10}");
    t->body_len = strlen(t->body);
    t->body_kind = TASK_BODY_JSON;
    t->metadata_json = xstrdup("{\"n\": 1e2}");
    char *text = task_json(t, NULL, 0, NULL, false);
    assert_non_null(strstr(text, "\"payload\":{\"order\":12345678901234567890,\"price\":1.10}"));
    assert_non_null(strstr(text, "\"metadata\":{\"n\": 1e2}"));
    assert_non_null(strstr(text, "\"result\":{\"id\": 12345678901234567890, \"x\": 1.0}"));
    free(text);
    char *hook = task_webhook_payload(t);
    assert_non_null(strstr(hook, "12345678901234567890, \"x\": 1.0}"));
    cJSON *parsed = cJSON_Parse(hook);
    assert_non_null(parsed); /* still valid JSON */
    cJSON_Delete(parsed);
    free(hook);
    task_free(t);
}

/* A JSON result whose strings hold raw control characters is not passed on
 * verbatim (it would make the answer invalid JSON). */
static void a_result_with_raw_control_bytes_is_not_raw(void **state)
{
    (void)state;
    const char *bad = "{\"a\":\"line\nbreak\"}";
    bool b64;
    cJSON *r = result_of("application/json", bad, strlen(bad), &b64);
    assert_true(cJSON_IsString(r)); /* kept as text, escaped */
    assert_string_equal(r->valuestring, bad);
    cJSON_Delete(r);
}

/* Nor one with control characters between its values (cJSON skips them as
 * whitespace; JSON allows only space, tab, CR and LF there). */
static void a_result_with_control_bytes_between_values_is_not_raw(void **state)
{
    (void)state;
    const char bad[] = "[1,\x0b" "2]";
    bool b64;
    cJSON *r = result_of("application/json", bad, sizeof bad - 1, &b64);
    assert_true(cJSON_IsString(r));
    assert_string_equal(r->valuestring, bad);
    cJSON_Delete(r);
}

/* Nor one that cJSON reads but JSON does not allow: numbers such as 01 and
 * 1., \u escapes without four hex digits. Written raw they would make the
 * task's JSON and its webhook invalid; they come back as the text sent. */
static void a_result_json_does_not_allow_is_not_raw(void **state)
{
    (void)state;
    static const char *const bad[] = {"{\"n\":01}", "[1.]", "[-.5]", "[\"a\\u://9b\"]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bool b64;
        cJSON *r = result_of("application/json", bad[i], strlen(bad[i]), &b64);
        if (!cJSON_IsString(r)) fail_msg("%s written as JSON", bad[i]);
        assert_string_equal(r->valuestring, bad[i]);
        assert_false(b64);
        cJSON_Delete(r);
    }
}

/* JSON after a UTF-8 byte order mark is that JSON, as the target wrote it.
 * cJSON skips the mark, and the raw copy kept it: the task, every list page
 * holding it and its webhook were not JSON. */
static void a_json_result_after_a_byte_order_mark_is_that_json(void **state)
{
    (void)state;
    const char body[] = "\xEF\xBB\xBF{\"n\":12345678901234567890}";
    struct task *t = task_with_response("application/json", body, sizeof body - 1);
    char *text = task_json(t, NULL, 0, NULL, false);
    assert_non_null(strstr(text, "\"result\":{\"n\":12345678901234567890}"));
    free(text);
    cJSON *o = task_doc(t, NULL, 0, NULL); /* the whole answer parses */
    cJSON_Delete(o);
    task_free(t);
    /* Not JSON after the mark (two marks: cJSON skips one, the second is not
     * JSON): the text as it came, marks included. */
    static const char *const not_json[] = {"\xEF\xBB\xBF\xEF\xBB\xBF{\"n\":1}", "\xEF\xBB\xBFnot json"};
    for (size_t i = 0; i < sizeof not_json / sizeof not_json[0]; i++) {
        bool b64;
        cJSON *r = result_of("application/json", not_json[i], strlen(not_json[i]), &b64);
        assert_true(cJSON_IsString(r));
        assert_string_equal(r->valuestring, not_json[i]);
        cJSON_Delete(r);
    }
}

/* The header objects the daemon stored are written out as stored, with no
 * parse on the way out; a row whose text is not a JSON object JSON allows
 * loses it when read instead. */
static void only_stored_header_objects_survive_the_read_check(void **state)
{
    (void)state;
    static const char *const kept[] = {"{}", "{\"content-type\":\"text/plain\"}",
                                       "{\"x\":\"a, b\",\"y\":\"\\u00e9\"}"};
    static const char *const dropped[] = {"{\"x\":\"a\"", "[\"x\"]", "\"x\"", "null", "",
                                          "{\"x\":01}", "{\"x\":\"\\u0000\"}"};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        char *j = xstrdup(kept[i]);
        task_json_object_check(&j);
        if (!j) fail_msg("%s dropped", kept[i]);
        assert_string_equal(j, kept[i]);
        free(j);
    }
    for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++) {
        char *j = xstrdup(dropped[i]);
        task_json_object_check(&j);
        if (j) fail_msg("%s kept", dropped[i]);
    }
    char *none = NULL;
    task_json_object_check(&none);
    assert_null(none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_is_passed_through_verbatim),
        cmocka_unit_test(a_result_with_raw_control_bytes_is_not_raw),
        cmocka_unit_test(a_result_with_control_bytes_between_values_is_not_raw),
        cmocka_unit_test(a_result_json_does_not_allow_is_not_raw),
        cmocka_unit_test(only_stored_header_objects_survive_the_read_check),
        cmocka_unit_test(status_names_round_trip),
        cmocka_unit_test(url_host_is_the_host_and_port_as_one_key),
        cmocka_unit_test(free_functions_accept_empty_values),
        cmocka_unit_test(result_json_content_types_are_parsed),
        cmocka_unit_test(result_other_content_types_are_strings),
        cmocka_unit_test(result_invalid_json_under_json_type_is_a_string),
        cmocka_unit_test(result_non_utf8_is_base64_with_flag),
        cmocka_unit_test(result_empty_body_is_null),
        cmocka_unit_test(to_json_full_task_has_every_documented_field),
        cmocka_unit_test(to_json_new_task_has_nulls_and_no_history),
        cmocka_unit_test(to_json_raw_body_and_error_while_retrying),
        cmocka_unit_test(to_json_pending_webhook_shows_next_attempt),
        cmocka_unit_test(to_json_base64_result_is_flagged),
        cmocka_unit_test(webhook_payload_shape),
        cmocka_unit_test(webhook_payload_for_a_failed_task),
        cmocka_unit_test(json_result_with_trailing_newline_is_parsed),
        cmocka_unit_test(non_utf8_json_body_is_base64),
        cmocka_unit_test(a_json_result_after_a_byte_order_mark_is_that_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
