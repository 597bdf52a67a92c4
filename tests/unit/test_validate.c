/*
 * test_validate: validate_json (the JSON gate every request body passes) and
 * validate_task_create against every rule of the create table in
 * docs/api.md. Numbers out of range must be refused, never clamped.
 */
#include "testutil.h"

#include "util.h"
#include "validate.h"

#define NOW 1795860742123LL /* 2026-11-28T10:12:22.123Z */

static struct config cfg;
static struct netpolicy *np, *np_private;

static int group_setup(void **state)
{
    (void)state;
    char err[256];
    tu_config_defaults(&cfg);
    np = netpolicy_new(&cfg, err, sizeof err);
    cfg.allow_private_targets = true;
    np_private = netpolicy_new(&cfg, err, sizeof err);
    cfg.allow_private_targets = false;
    return np && np_private ? 0 : -1;
}

/* The policy a config asks for (the tests only vary allow_private_targets). */
static const struct netpolicy *np_for(const struct config *c)
{
    return c->allow_private_targets ? np_private : np;
}

static int group_teardown(void **state)
{
    (void)state;
    netpolicy_free(np);
    netpolicy_free(np_private);
    config_free(&cfg);
    return 0;
}

/* ---- helpers ---- */

static void json_refused_len(const char *body, size_t len, const char *what)
{
    struct api_error err = {0};
    cJSON *doc = validate_json(body, len, &err);
    if (doc) {
        cJSON_Delete(doc);
        fail_msg("accepted: %s", what);
    }
    assert_int_equal(err.status, 400);
    assert_string_equal(err.code, "invalid_json");
    assert_string_equal(err.field, "");
    assert_true(err.message[0] != '\0');
}

static void json_refused(const char *body, const char *what)
{
    json_refused_len(body, strlen(body), what);
}

static void json_accepted(const char *body, const char *what)
{
    struct api_error err = {0};
    cJSON *doc = validate_json(body, strlen(body), &err);
    if (!doc) fail_msg("refused %s: %s", what, err.message);
    cJSON_Delete(doc);
}

/* "[[[...]]]" with n brackets, with inner between the innermost pair. */
static char *nested_arrays(int n, const char *inner)
{
    size_t len = 2 * (size_t)n + strlen(inner) + 1;
    char *s = malloc(len);
    assert_non_null(s);
    memset(s, '[', (size_t)n);
    strcpy(s + n, inner);
    memset(s + n + strlen(inner), ']', (size_t)n);
    s[len - 1] = '\0';
    return s;
}

/* {"a":{"a":...{"a":inner}...}} with n objects. */
static char *nested_objects(int n, const char *inner)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    for (int i = 0; i < n; i++)
        assert_int_equal(buf_append(&b, "{\"a\":", 5), 0);
    assert_int_equal(buf_append(&b, inner, strlen(inner)), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(buf_append(&b, "}", 1), 0);
    return buf_steal(&b, NULL);
}

static struct task *create_ok_with(const struct config *c, const char *json)
{
    static struct task sentinel;
    struct task *t = &sentinel;
    struct api_error err = {0};
    int rc = validate_task_create(json, strlen(json), c, np_for(c), NOW, &t, NULL, false, &err);
    if (rc != 0)
        fail_msg("refused (%s, field '%s'): %s\n  body: %.300s", err.code, err.field, err.message,
                 json);
    assert_non_null(t);
    return t;
}

static struct task *create_ok(const char *json)
{
    return create_ok_with(&cfg, json);
}

static void refused_with(const struct config *c, const char *json, const char *code,
                         const char *field)
{
    static struct task sentinel;
    struct task *t = &sentinel;
    struct api_error err = {0};
    int rc = validate_task_create(json, strlen(json), c, np_for(c), NOW, &t, NULL, false, &err);
    if (rc == 0) {
        task_free(t);
        fail_msg("accepted, want %s on '%s': %.300s", code, field, json);
    }
    assert_int_equal(rc, -1);
    assert_null(t);
    assert_int_equal(err.status, 400);
    if (strcmp(err.code, code) != 0 || strcmp(err.field, field) != 0)
        fail_msg("got %s on '%s' (%s), want %s on '%s'\n  body: %.300s", err.code, err.field,
                 err.message, code, field, json);
    assert_true(err.message[0] != '\0');
}

static void refused(const char *json, const char *code, const char *field)
{
    refused_with(&cfg, json, code, field);
}

/* Refuses {"callbackUrl": "https://example.com/", <extra>}. */
static void refused_extra(const char *extra, const char *code, const char *field)
{
    char *json = xasprintf("{\"callbackUrl\": \"https://example.com/\", %s}", extra);
    refused(json, code, field);
    free(json);
}

static struct task *ok_extra(const char *extra)
{
    char *json = xasprintf("{\"callbackUrl\": \"https://example.com/\", %s}", extra);
    struct task *t = create_ok(json);
    free(json);
    return t;
}

/* ---- validate_json ---- */

static void json_refuses_empty_and_bad_syntax(void **state)
{
    (void)state;
    json_refused_len("", 0, "empty body");
    json_refused("   ", "whitespace only");
    json_refused("{", "unclosed object");
    json_refused("{\"a\":}", "missing value");
    json_refused("{'a':1}", "single quotes");
    json_refused("{\"a\":1,}", "trailing comma");
    json_refused("[1 2]", "missing comma");
    json_refused("\"abc", "unterminated string");
    json_refused("{\"a\":NaN}", "NaN");
}

static void json_refuses_invalid_utf8(void **state)
{
    (void)state;
    json_refused("{\"a\":\"\xff\"}", "FF in a value");
    json_refused("{\"\xc0\xaf\":1}", "overlong in a key");
    json_refused("{\"a\":\"\xed\xa0\x80\"}", "raw surrogate");
    json_refused("{\"a\":\"\xe2\x82\"}", "truncated sequence");
    json_accepted("{\"a\":\"\xe2\x82\xac \xf0\x9d\x84\x9e\"}", "valid multibyte text");
}

static void json_refuses_nul_escapes(void **state)
{
    (void)state;
    json_refused("{\"a\":\"x\\u0000y\"}", "\\u0000 in a value");
    json_refused("{\"a\\u0000b\":1}", "\\u0000 in a key");
    json_refused("[\"\\u0000\"]", "\\u0000 in an array");
    /* An escaped backslash followed by the text u0000 is fine. */
    struct api_error err;
    const char *body = "{\"a\":\"\\\\u0000\"}";
    cJSON *doc = validate_json(body, strlen(body), &err);
    assert_non_null(doc);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(doc, "a")->valuestring, "\\u0000");
    cJSON_Delete(doc);
    json_accepted("{\"a\":\"\\u0001\\u00e9\"}", "other escapes");
}

static void json_refuses_trailing_data(void **state)
{
    (void)state;
    json_refused("{} x", "a word after the object");
    json_refused("{}{}", "two objects");
    json_refused("[1]]", "a stray bracket");
    json_refused("{}//", "a comment");
    json_refused_len("{}\0", 3, "a NUL byte after the object");
    json_accepted("{}\n\t \r\n", "trailing whitespace");
    json_accepted(" \n{\"a\": [1, 2]} ", "leading whitespace");
}

static void json_depth_32_is_the_limit(void **state)
{
    (void)state;
    char *s = nested_arrays(32, "");
    json_accepted(s, "32 nested empty arrays");
    free(s);
    s = nested_arrays(33, "");
    json_refused(s, "33 nested empty arrays");
    free(s);
    s = nested_objects(31, "{}");
    json_accepted(s, "32 nested objects, the innermost empty");
    free(s);
    s = nested_objects(32, "{}");
    json_refused(s, "33 nested objects");
    free(s);
    s = nested_objects(20, "[[[[[[[[[[[[[]]]]]]]]]]]]]"); /* 20 + 13 = 33 */
    json_refused(s, "33 levels of mixed objects and arrays");
    free(s);
}

static void json_depth_counts_structure_not_text(void **state)
{
    (void)state;
    /* Deep-looking but shallow: brackets inside strings do not nest. */
    char brackets[200];
    memset(brackets, '[', sizeof brackets - 1);
    brackets[sizeof brackets - 1] = '\0';
    char *s = xasprintf("{\"a\":\"%s\",\"b\":\"\\\"%s\\\\\"}", brackets, brackets);
    json_accepted(s, "brackets inside strings");
    free(s);
    /* Shallow-looking but deep: closing brackets hidden in a string do not
     * cancel real nesting, and a shallow sibling does not hide a deep one. */
    char *deep = nested_arrays(32, "");
    s = xasprintf("[\"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\", %s]", deep);
    json_refused(s, "33 levels after a string of closing brackets");
    free(s);
    s = xasprintf("[[], [1, [2]], {\"a\": {}}, %s]", deep);
    json_refused(s, "33 levels behind shallow siblings");
    free(s);
    free(deep);
}

/* One body with several problems gets the message of the first check it
 * fails, in this order: UTF-8, the strings, the depth, the syntax. */
static void json_problems_are_reported_in_order(void **state)
{
    (void)state;
    struct {
        const char *inner, *message;
    } cases[] = {
        {"\"\x01\", \"\xff\"", "the request body is not valid UTF-8"},
        {"\"\x01\", 1 2", "strings must not contain control characters; escape them (\\n, \\t, "
                         "\\u0001)"},
        {"\"\\u0000\", 1 2", "strings must not contain \\u0000 (NUL characters)"},
        {"1 2", "JSON is nested deeper than 32 levels"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *s = nested_arrays(40, cases[i].inner);
        struct api_error err = {0};
        cJSON *doc = validate_json(s, strlen(s), &err);
        assert_null(doc);
        assert_string_equal(err.message, cases[i].message);
        free(s);
    }
    struct api_error err = {0};
    assert_null(validate_json("[[1 2]]", 7, &err));
    assert_string_equal(err.message, "the request body is not valid JSON (near byte 4)");
}

static void json_refuses_very_deep_nesting_without_crashing(void **state)
{
    (void)state;
    char *s = nested_arrays(1000, "");
    json_refused(s, "1000 nested arrays");
    free(s);
    /* Far deeper than any recursive parser's stack: must fail early. */
    size_t n = 200000;
    s = malloc(n + 1);
    assert_non_null(s);
    memset(s, '[', n);
    s[n] = '\0';
    json_refused(s, "200000 open brackets");
    memset(s, '{', n);
    json_refused(s, "200000 open braces");
    free(s);
}

static void json_refuses_duplicate_keys_at_any_depth(void **state)
{
    (void)state;
    json_refused("{\"a\":1,\"a\":2}", "duplicate at the top");
    json_refused("{\"a\":1,\"b\":2,\"a\":1}", "duplicate, not adjacent");
    json_refused("{\"m\":{\"x\":{\"k\":1,\"k\":2}}}", "duplicate three levels down");
    json_refused("{\"m\":[1,{\"k\":1,\"k\":1}]}", "duplicate inside an array");
    json_accepted("[{\"k\":1},{\"k\":1}]", "the same key in two objects");
    json_accepted("{\"k\":1,\"K\":1}", "keys differing in case");
    json_accepted("{\"a\":{\"a\":{\"a\":1}}}", "the same key at different levels");
}

static void json_refuses_numbers_too_large(void **state)
{
    (void)state;
    json_refused("{\"n\":1e400}", "1e400");
    json_refused("{\"n\":-1e400}", "-1e400");
    json_refused("[[{\"n\":[1e999]}]]", "1e999 nested");
    json_accepted("{\"n\":1e308,\"m\":-1e308,\"z\":1e-400}",
                  "large but finite, and underflow to 0");
}

/* ---- validate_task_create: shape ---- */

static void create_minimal_task_gets_defaults(void **state)
{
    (void)state;
    struct task *t = create_ok("{\"callbackUrl\": \"https://example.com/hook\"}");
    assert_string_equal(t->callback_url, "https://example.com/hook");
    assert_string_equal(t->method, "POST");
    assert_string_equal(t->queue, "default");
    assert_int_equal(t->status, TASK_QUEUED);
    /* Left for the queue's defaults, then the daemon's. */
    assert_int_equal(t->max_retries, -1);
    assert_int_equal(t->timeout_ms, 0);
    validate_apply_defaults(t, &cfg, NULL);
    assert_int_equal(t->max_retries, cfg.default_retries);
    assert_int_equal(t->timeout_ms, cfg.default_timeout_ms);
    struct queue_settings qs;
    queue_settings_default(&qs);
    qs.default_retries = 7;
    qs.default_timeout_ms = 1234;
    t->max_retries = -1;
    t->timeout_ms = 0;
    validate_apply_defaults(t, &cfg, &qs);
    assert_int_equal(t->max_retries, 7);
    assert_int_equal(t->timeout_ms, 1234);
    assert_int_equal(t->run_at_ms, NOW);
    assert_null(t->headers_json);
    assert_null(t->body);
    assert_int_equal(t->body_len, 0);
    assert_int_equal(t->body_kind, TASK_BODY_NONE);
    assert_null(t->webhook_url);
    assert_null(t->metadata_json);
    assert_int_equal(t->attempts, 0);
    task_free(t);
}

static void create_full_task_keeps_every_field(void **state)
{
    (void)state;
    struct task *t = create_ok(
        "{\"callbackUrl\": \"https://ai.example.com/generate\", \"method\": \"put\","
        " \"headers\": {\"X-Trace\": \"abc\", \"Content-Type\": \"application/vnd+json\"},"
        " \"payload\": {\"prompt\": \"a lighthouse\", \"n\": [1, 2]},"
        " \"webhookUrl\": \"https://app.example.com/done\", \"retries\": 7, \"timeout\": 1.5,"
        " \"delay\": 2.25, \"queue\": \"img.v2_x-1\", \"metadata\": {\"userId\": 42}}");
    assert_string_equal(t->method, "PUT");
    cJSON *h = cJSON_Parse(t->headers_json);
    assert_non_null(h);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(h, "X-Trace")->valuestring, "abc");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(h, "Content-Type")->valuestring,
                        "application/vnd+json");
    cJSON_Delete(h);
    assert_int_equal(t->body_kind, TASK_BODY_JSON);
    assert_string_equal(t->body, "{\"prompt\": \"a lighthouse\", \"n\": [1, 2]}"); /* as written */
    assert_int_equal(t->body_len, strlen(t->body));
    assert_string_equal(t->webhook_url, "https://app.example.com/done");
    assert_int_equal(t->max_retries, 7);
    assert_int_equal(t->timeout_ms, 1500);
    assert_int_equal(t->run_at_ms, NOW + 2250);
    assert_string_equal(t->queue, "img.v2_x-1");
    assert_string_equal(t->metadata_json, "{\"userId\": 42}"); /* as written */
    task_free(t);
}

static void create_refuses_non_objects(void **state)
{
    (void)state;
    refused("[]", "invalid_body", "");
    refused("\"https://example.com/\"", "invalid_body", "");
    refused("42", "invalid_body", "");
    refused("null", "invalid_body", "");
    refused("", "invalid_json", "");
    refused("{\"callbackUrl\": \"https://example.com/\"} x", "invalid_json", "");
}

static void create_refuses_unknown_fields(void **state)
{
    (void)state;
    refused("{\"callbackURL\": \"https://example.com/\"}", "unknown_field", "callbackURL");
    refused_extra("\"retry\": 3", "unknown_field", "retry");
    refused_extra("\"Method\": \"GET\"", "unknown_field", "Method");
    refused_extra("\"\": 1", "unknown_field", "");
    /* Unknown fields are reported before missing ones. */
    refused("{\"url\": \"https://example.com/\"}", "unknown_field", "url");
}

/* ---- callbackUrl ---- */

static void create_requires_callback_url(void **state)
{
    (void)state;
    refused("{}", "missing_field", "callbackUrl");
    refused("{\"method\": \"POST\"}", "missing_field", "callbackUrl");
    refused("{\"callbackUrl\": null}", "invalid_field", "callbackUrl");
    refused("{\"callbackUrl\": 42}", "invalid_field", "callbackUrl");
    refused("{\"callbackUrl\": [\"https://example.com/\"]}", "invalid_field", "callbackUrl");
    refused("{\"callbackUrl\": \"\"}", "invalid_field", "callbackUrl");
}

static void create_callback_url_must_be_http_or_https(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "ftp://example.com/file", "file:///etc/passwd",   "gopher://example.com/",
        "javascript:alert(1)",    "mailto:a@example.com", "example.com/path",
        "//example.com/path",     "/relative/path",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        char *json = xasprintf("{\"callbackUrl\": \"%s\"}", bad[i]);
        refused(json, "invalid_field", "callbackUrl");
        free(json);
    }
    task_free(create_ok("{\"callbackUrl\": \"HTTP://EXAMPLE.COM/\"}"));
    task_free(create_ok("{\"callbackUrl\": \"https://example.com:8443/a?b=c#d\"}"));
}

static void create_callback_url_needs_a_host(void **state)
{
    (void)state;
    refused("{\"callbackUrl\": \"http://\"}", "invalid_field", "callbackUrl");
    refused("{\"callbackUrl\": \"http://:80/\"}", "invalid_field", "callbackUrl");
}

static void create_callback_url_length_limit(void **state)
{
    (void)state;
    const char *prefix = "https://example.com/";
    char url[VALIDATE_MAX_URL + 2];
    size_t p = strlen(prefix);
    memcpy(url, prefix, p);
    memset(url + p, 'a', VALIDATE_MAX_URL - p);
    url[VALIDATE_MAX_URL] = '\0';
    char *json = xasprintf("{\"callbackUrl\": \"%s\"}", url);
    struct task *t = create_ok(json);
    assert_int_equal(strlen(t->callback_url), VALIDATE_MAX_URL);
    task_free(t);
    free(json);
    url[VALIDATE_MAX_URL] = 'a';
    url[VALIDATE_MAX_URL + 1] = '\0';
    json = xasprintf("{\"callbackUrl\": \"%s\"}", url);
    refused(json, "invalid_field", "callbackUrl");
    free(json);
}

static void create_blocks_private_literals_unless_allowed(void **state)
{
    (void)state;
    static const char *const urls[] = {
        "http://127.0.0.1/",
        "http://127.1:8080/",
        "http://[::1]/",
        "http://10.1.2.3/x",
        "http://192.168.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
    };
    struct config allow = cfg;
    allow.allow_private_targets = true;
    for (size_t i = 0; i < ARRAY_LEN(urls); i++) {
        char *json = xasprintf("{\"callbackUrl\": \"%s\"}", urls[i]);
        refused(json, "blocked_destination", "callbackUrl");
        task_free(create_ok_with(&allow, json));
        free(json);
        json = xasprintf("{\"callbackUrl\": \"https://example.com/\", \"webhookUrl\": \"%s\"}",
                         urls[i]);
        refused(json, "blocked_destination", "webhookUrl");
        task_free(create_ok_with(&allow, json));
        free(json);
    }
    /* Names are judged when connecting, not here. */
    task_free(create_ok("{\"callbackUrl\": \"http://localhost:8080/\"}"));
}

/* ---- method ---- */

static void create_method_list(void **state)
{
    (void)state;
    static const char *const ok[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};
    for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
        char lower[16];
        for (size_t k = 0; k <= strlen(ok[i]); k++)
            lower[k] = (char)(ok[i][k] ? ok[i][k] + 32 : 0);
        char *extra = xasprintf("\"method\": \"%s\"", lower);
        struct task *t = ok_extra(extra);
        assert_string_equal(t->method, ok[i]);
        task_free(t);
        free(extra);
    }
    static const char *const bad[] = {"\"CONNECT\"", "\"TRACE\"", "\"\"", "\"POST \"",
                                      "\"P0ST\"",    "1",         "null", "[\"GET\"]"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        char *extra = xasprintf("\"method\": %s", bad[i]);
        refused_extra(extra, "invalid_field", "method");
        free(extra);
    }
}

/* ---- headers ---- */

static void create_headers_must_be_an_object_of_strings(void **state)
{
    (void)state;
    struct task *t = ok_extra("\"headers\": null");
    assert_null(t->headers_json);
    task_free(t);
    t = ok_extra("\"headers\": {}");
    assert_null(t->headers_json);
    task_free(t);
    refused_extra("\"headers\": []", "invalid_field", "headers");
    refused_extra("\"headers\": \"X-A: 1\"", "invalid_field", "headers");
    static const char *const bad_values[] = {"1", "true", "null", "{}", "[\"a\"]"};
    for (size_t i = 0; i < ARRAY_LEN(bad_values); i++) {
        char *extra = xasprintf("\"headers\": {\"X-A\": %s}", bad_values[i]);
        refused_extra(extra, "invalid_field", "headers");
        free(extra);
    }
}

static void create_headers_refuse_bad_names(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "X A", "X:A", "X\\tA", "X\\nA", "(X)", "X/A", "X@A", "\xc3\xa9t\xc3\xa9", "X\\\"A"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        char *extra = xasprintf("\"headers\": {\"%s\": \"v\"}", bad[i]);
        refused_extra(extra, "invalid_field", "headers");
        free(extra);
    }
    struct task *t =
        ok_extra("\"headers\": {\"X-Odd!#$%&'*+.^_`|~\": \"v\", \"Authorization\": \"Bearer x\"}");
    assert_non_null(t->headers_json);
    task_free(t);
}

static void create_headers_refuse_connection_level_names(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Connection",
        "connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "PROXY-CONNECTION",
        "TE",
        "te",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Host",
        "HOST",
        "Content-Length",
        "content-length",
        "Expect",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        char *extra = xasprintf("\"headers\": {\"X-Fine\": \"1\", \"%s\": \"v\"}", bad[i]);
        refused_extra(extra, "invalid_field", "headers");
        free(extra);
    }
    /* Names that merely start like a forbidden one are fine. */
    struct task *t =
        ok_extra("\"headers\": {\"Hosts\": \"a\", \"Content-Type\": \"b\", \"Tea\": \"c\"}");
    task_free(t);
}

static void create_headers_refuse_reserved_prefix(void **state)
{
    (void)state;
    refused_extra("\"headers\": {\"AsyncQueue-Task-Id\": \"x\"}", "invalid_field", "headers");
    refused_extra("\"headers\": {\"asyncqueue-attempt\": \"1\"}", "invalid_field", "headers");
    refused_extra("\"headers\": {\"ASYNCQUEUE-\": \"1\"}", "invalid_field", "headers");
    task_free(ok_extra("\"headers\": {\"AsyncQueueX\": \"1\", \"X-AsyncQueue-A\": \"2\"}"));
}

static void create_headers_refuse_line_breaks_in_values(void **state)
{
    (void)state;
    refused_extra("\"headers\": {\"X-A\": \"a\\r\\nX-Injected: 1\"}", "invalid_field", "headers");
    refused_extra("\"headers\": {\"X-A\": \"a\\n\"}", "invalid_field", "headers");
    refused_extra("\"headers\": {\"X-A\": \"\\ra\"}", "invalid_field", "headers");
    refused_extra("\"headers\": {\"X-A\": \"a\\u000d\\u000ab\"}", "invalid_field", "headers");
    struct task *t = ok_extra("\"headers\": {\"X-A\": \"\", \"X-B\": \"tab\\there\"}");
    task_free(t);
}

static void create_headers_count_limit(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(buf_appendf(&b, "\"headers\": {"), 0);
    for (int i = 0; i < VALIDATE_MAX_HEADERS; i++)
        assert_int_equal(buf_appendf(&b, "%s\"X-H%d\": \"v\"", i ? ", " : "", i), 0);
    char *at_limit = xasprintf("%s}", b.data);
    char *over = xasprintf("%s, \"X-Extra\": \"v\"}", b.data);
    buf_free(&b);
    struct task *t = ok_extra(at_limit);
    cJSON *h = cJSON_Parse(t->headers_json);
    assert_int_equal(cJSON_GetArraySize(h), VALIDATE_MAX_HEADERS);
    cJSON_Delete(h);
    task_free(t);
    refused_extra(over, "invalid_field", "headers");
    free(at_limit);
    free(over);
}

static void create_headers_size_limit(void **state)
{
    (void)state;
    /* Each header counts name + value + 4 (": " and CRLF). */
    size_t value_len = VALIDATE_MAX_HEADER_BYTES - strlen("X-Big") - 4;
    char *value = malloc(value_len + 2);
    assert_non_null(value);
    memset(value, 'v', value_len + 1);
    value[value_len] = '\0';
    char *extra = xasprintf("\"headers\": {\"X-Big\": \"%s\"}", value);
    task_free(ok_extra(extra));
    free(extra);
    value[value_len] = 'v';
    value[value_len + 1] = '\0';
    extra = xasprintf("\"headers\": {\"X-Big\": \"%s\"}", value);
    refused_extra(extra, "invalid_field", "headers");
    free(extra);
    free(value);
}

/* ---- payload and body ---- */

static void create_payload_or_body_not_both(void **state)
{
    (void)state;
    refused_extra("\"payload\": {}, \"body\": \"x\"", "conflicting_fields", "body");
    refused_extra("\"payload\": null, \"body\": \"x\"", "conflicting_fields", "body");
    refused_extra("\"body\": {\"a\": 1}", "invalid_field", "body");
    refused_extra("\"body\": 42", "invalid_field", "body");
    refused_extra("\"body\": null", "invalid_field", "body");
}

static void create_payload_is_json_and_body_is_raw(void **state)
{
    (void)state;
    struct task *t = ok_extra("\"payload\": [1, \"two\", {\"three\": 3.5}, null, true]");
    assert_int_equal(t->body_kind, TASK_BODY_JSON);
    assert_string_equal(t->body, "[1, \"two\", {\"three\": 3.5}, null, true]"); /* as written */
    task_free(t);
    t = ok_extra("\"payload\": \"just a string\"");
    assert_int_equal(t->body_kind, TASK_BODY_JSON);
    assert_string_equal(t->body, "\"just a string\"");
    task_free(t);
    t = ok_extra("\"body\": \"line 1\\nline 2 \\u00e9 {not json\"");
    assert_int_equal(t->body_kind, TASK_BODY_RAW);
    assert_string_equal(t->body, "line 1\nline 2 \xc3\xa9 {not json");
    assert_int_equal(t->body_len, strlen("line 1\nline 2 \xc3\xa9 {not json"));
    task_free(t);
    t = ok_extra("\"body\": \"\"");
    assert_int_equal(t->body_kind, TASK_BODY_RAW);
    assert_int_equal(t->body_len, 0);
    task_free(t);
}

static void create_get_and_head_cannot_carry_a_body(void **state)
{
    (void)state;
    refused_extra("\"method\": \"GET\", \"payload\": {}", "invalid_field", "payload");
    refused_extra("\"method\": \"get\", \"body\": \"x\"", "invalid_field", "body");
    refused_extra("\"method\": \"HEAD\", \"payload\": 1", "invalid_field", "payload");
    refused_extra("\"method\": \"head\", \"body\": \"\"", "invalid_field", "body");
    static const char *const ok[] = {"POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
    for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
        char *extra = xasprintf("\"method\": \"%s\", \"body\": \"x\"", ok[i]);
        task_free(ok_extra(extra));
        free(extra);
    }
    task_free(ok_extra("\"method\": \"GET\""));
}

/* ---- webhookUrl ---- */

static void create_webhook_url_rules(void **state)
{
    (void)state;
    struct task *t = ok_extra("\"webhookUrl\": null");
    assert_null(t->webhook_url);
    task_free(t);
    t = ok_extra("\"webhookUrl\": \"http://hooks.example.com/x\"");
    assert_string_equal(t->webhook_url, "http://hooks.example.com/x");
    task_free(t);
    refused_extra("\"webhookUrl\": \"ftp://example.com/\"", "invalid_field", "webhookUrl");
    refused_extra("\"webhookUrl\": 1", "invalid_field", "webhookUrl");
    refused_extra("\"webhookUrl\": \"\"", "invalid_field", "webhookUrl");
    char long_url[VALIDATE_MAX_URL + 2];
    memcpy(long_url, "https://e.com/", 14);
    memset(long_url + 14, 'a', VALIDATE_MAX_URL + 1 - 14);
    long_url[VALIDATE_MAX_URL + 1] = '\0';
    char *extra = xasprintf("\"webhookUrl\": \"%s\"", long_url);
    refused_extra(extra, "invalid_field", "webhookUrl");
    free(extra);
}

/* ---- numbers: refused, never clamped ---- */

static void create_retries_range(void **state)
{
    (void)state;
    struct task *t = ok_extra("\"retries\": 0");
    assert_int_equal(t->max_retries, 0);
    task_free(t);
    t = ok_extra("\"retries\": 100");
    assert_int_equal(t->max_retries, cfg.max_retries);
    task_free(t);
    t = ok_extra("\"retries\": 5.0");
    assert_int_equal(t->max_retries, 5);
    task_free(t);
    static const char *const bad[] = {"101", "-1", "1.5", "\"3\"", "true", "null", "1e9", "[]"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        char *extra = xasprintf("\"retries\": %s", bad[i]);
        refused_extra(extra, "invalid_field", "retries");
        free(extra);
    }
    struct config low = cfg;
    low.max_retries = 5;
    low.default_retries = 2;
    refused_with(&low, "{\"callbackUrl\": \"https://example.com/\", \"retries\": 6}",
                 "invalid_field", "retries");
}

static void create_timeout_range(void **state)
{
    (void)state;
    struct task *t = ok_extra("\"timeout\": 0.1");
    assert_int_equal(t->timeout_ms, 100);
    task_free(t);
    t = ok_extra("\"timeout\": 86400");
    assert_int_equal(t->timeout_ms, 86400000);
    task_free(t);
    t = ok_extra("\"timeout\": 2.5");
    assert_int_equal(t->timeout_ms, 2500);
    task_free(t);
    static const char *const bad[] = {"0",     "0.09",   "-1",   "86400.5",
                                      "86401", "\"10\"", "null", "false"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        char *extra = xasprintf("\"timeout\": %s", bad[i]);
        refused_extra(extra, "invalid_field", "timeout");
        free(extra);
    }
}

static void create_delay_range(void **state)
{
    (void)state;
    struct task *t = ok_extra("\"delay\": 0");
    assert_int_equal(t->run_at_ms, NOW);
    task_free(t);
    t = ok_extra("\"delay\": 10.5");
    assert_int_equal(t->run_at_ms, NOW + 10500);
    task_free(t);
    t = ok_extra("\"delay\": 31536000"); /* max_delay, 365 days */
    assert_int_equal(t->run_at_ms, NOW + cfg.max_delay_ms);
    task_free(t);
    static const char *const bad[] = {"31536000.5", "-1", "-0.001", "\"5\"", "null", "1e300"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        char *extra = xasprintf("\"delay\": %s", bad[i]);
        refused_extra(extra, "invalid_field", "delay");
        free(extra);
    }
    refused_extra("\"delay\": 5, \"runAt\": \"2026-11-28T10:12:30Z\"", "conflicting_fields",
                  "runAt");
}

static void create_run_at_rules(void **state)
{
    (void)state;
    struct task *t = ok_extra("\"runAt\": \"2026-11-28T11:00:00.5+01:00\""); /* 10:00:00.5Z, past */
    assert_int_equal(t->run_at_ms, NOW);
    task_free(t);
    t = ok_extra("\"runAt\": \"2026-11-28T10:12:32.123Z\"");
    assert_int_equal(t->run_at_ms, NOW + 10000);
    task_free(t);
    t = ok_extra("\"runAt\": \"1970-01-01T00:00:00Z\"");
    assert_int_equal(t->run_at_ms, NOW);
    task_free(t);
    char ts[UTIL_RFC3339_LEN];
    char *extra = xasprintf("\"runAt\": \"%s\"", util_rfc3339(NOW + cfg.max_delay_ms, ts));
    t = ok_extra(extra);
    assert_int_equal(t->run_at_ms, NOW + cfg.max_delay_ms);
    task_free(t);
    free(extra);
    extra = xasprintf("\"runAt\": \"%s\"", util_rfc3339(NOW + cfg.max_delay_ms + 1, ts));
    refused_extra(extra, "invalid_field", "runAt");
    free(extra);
    static const char *const bad[] = {"\"tomorrow\"",
                                      "\"2026-11-28\"",
                                      "\"2026-02-31T00:00:00Z\"",
                                      "\"2026-11-28T10:12:22\"",
                                      "1795860742123",
                                      "null",
                                      "\"\""};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        extra = xasprintf("\"runAt\": %s", bad[i]);
        refused_extra(extra, "invalid_field", "runAt");
        free(extra);
    }
}

/* ---- queue and metadata ---- */

static void create_queue_names(void **state)
{
    (void)state;
    char name64[VALIDATE_MAX_QUEUE_NAME + 2];
    memset(name64, 'q', VALIDATE_MAX_QUEUE_NAME + 1);
    name64[VALIDATE_MAX_QUEUE_NAME] = '\0';
    char *extra = xasprintf("\"queue\": \"%s\"", name64);
    struct task *t = ok_extra(extra);
    assert_string_equal(t->queue, name64);
    task_free(t);
    free(extra);
    name64[VALIDATE_MAX_QUEUE_NAME] = 'q';
    name64[VALIDATE_MAX_QUEUE_NAME + 1] = '\0';
    extra = xasprintf("\"queue\": \"%s\"", name64);
    refused_extra(extra, "invalid_field", "queue");
    free(extra);
    t = ok_extra("\"queue\": null");
    assert_string_equal(t->queue, "default");
    task_free(t);
    t = ok_extra("\"queue\": \"Az09._-\"");
    assert_string_equal(t->queue, "Az09._-");
    task_free(t);
    static const char *const bad[] = {"\"\"",         "\"a b\"", "\"a/b\"", "\"a:b\"",
                                      "\"\xc3\xa4\"", "5",       "[\"q\"]", "\"a\\nb\""};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        extra = xasprintf("\"queue\": %s", bad[i]);
        refused_extra(extra, "invalid_field", "queue");
        free(extra);
    }
}

static void queue_name_predicate(void **state)
{
    (void)state;
    assert_true(validate_queue_name("a"));
    assert_true(validate_queue_name("default"));
    assert_true(validate_queue_name("A.b_c-9"));
    assert_false(validate_queue_name(""));
    assert_false(validate_queue_name("a b"));
    assert_false(validate_queue_name("a*"));
    assert_false(validate_queue_name("."));  /* resolved away in a URL path */
    assert_false(validate_queue_name(".."));
    assert_true(validate_queue_name("..."));
    assert_true(validate_queue_name(".a"));
    char name[80];
    memset(name, 'x', sizeof name);
    name[64] = '\0';
    assert_true(validate_queue_name(name));
    name[64] = 'x';
    name[65] = '\0';
    assert_false(validate_queue_name(name));
}

static void create_metadata_is_kept_as_json(void **state)
{
    (void)state;
    struct task *t = ok_extra("\"metadata\": {\"userId\": 42, \"tags\": [\"a\", \"b\"]}");
    assert_string_equal(t->metadata_json, "{\"userId\": 42, \"tags\": [\"a\", \"b\"]}"); /* as written */
    task_free(t);
    t = ok_extra("\"metadata\": 42");
    assert_string_equal(t->metadata_json, "42");
    task_free(t);
    t = ok_extra("\"metadata\": \"note\"");
    assert_string_equal(t->metadata_json, "\"note\"");
    task_free(t);
    t = ok_extra("\"metadata\": null");
    assert_null(t->metadata_json);
    task_free(t);
    /* Metadata obeys the JSON rules too. */
    refused_extra("\"metadata\": {\"k\": 1, \"k\": 2}", "invalid_json", "");
}

/* docs/api.md: headers refused include "Proxy-*". validate.c lists only
 * Proxy-Authenticate, Proxy-Authorization and Proxy-Connection. */
static void any_proxy_header_is_refused(void **state)
{
    (void)state;
    refused_extra("\"headers\": {\"Proxy-Foo\": \"x\"}", "invalid_field", "headers");
}

/* docs/api.md: invalid_json for "nesting deeper than 32". 32 nested arrays
 * holding a number are 32 levels deep, yet refused, while the same 32
 * arrays empty are accepted. */
static void scalar_inside_32_levels_is_accepted(void **state)
{
    (void)state;
    char *s = nested_arrays(32, "1");
    json_accepted(s, "32 nested arrays holding a number");
    free(s);
    s = nested_objects(32, "1");
    json_accepted(s, "32 nested objects holding a number");
    free(s);
}

/* RFC 8259 forbids raw control characters in strings; cJSON accepts them,
 * and a raw NUL byte silently cuts the string (the very thing the \u0000
 * check exists to prevent): "https://example.com/ok<NUL>.evil/" is stored
 * as "https://example.com/ok". */
static void raw_nul_byte_in_a_string_is_refused(void **state)
{
    (void)state;
    json_refused_len("{\"a\":\"x\0y\"}", 11, "raw NUL byte in a string");
    refused("{\"callbackUrl\": \"https://example.com/\", \"metadata\": \"a\x01\"}", "invalid_json",
            "");
}

/* Between values RFC 8259 allows space, tab, CR and LF; cJSON skips every
 * byte up to a space, a NUL too. A body with such bytes between its values
 * was accepted, and the metadata kept as written was cut at the NUL
 * ("[[[" stored, not JSON at all): such bodies are refused. */
static void control_characters_between_values_are_refused(void **state)
{
    (void)state;
    static const char *const msg = "between values JSON allows only spaces, tabs and line breaks; "
                                   "remove the other control characters";
    struct {
        const char *body;
        size_t len;
    } bad[] = {
#define BODY(s) {s, sizeof(s) - 1}
        BODY("{\"a\":1,\x05\"b\":2}"),
        BODY("[1\0,2]"),
        BODY("{}\v"),
        BODY("\f{}"),
        BODY("{\"callbackUrl\":\"https://example.com/\",\"metadata\":[[[\0\x05\0]]]}"),
#undef BODY
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct api_error err = {0};
        cJSON *doc = validate_json(bad[i].body, bad[i].len, &err);
        if (doc) fail_msg("accepted case %zu", i);
        assert_string_equal(err.message, msg);
    }
    struct task *t = NULL;
    struct api_error err = {0};
    assert_int_equal(validate_task_create(bad[4].body, bad[4].len, &cfg, np_for(&cfg), NOW, &t, NULL,
                                          false, &err),
                     -1);
    assert_null(t);
    json_accepted(" {\t\"a\" :\r\n[1 , 2]\n}\r\n", "space, tab, CR and LF between values");
}

/* cJSON reads numbers RFC 8259 does not allow (01, 1., -.5), and payload
 * and metadata are kept as written: {"a":01} was accepted and sent on to
 * the target, and written into GET answers, exactly so. Such numbers are
 * refused now, and every number JSON allows still passes. */
static void numbers_json_does_not_allow_are_refused(void **state)
{
    (void)state;
    static const char *const msg = "numbers must be written as JSON writes them: no leading zeros "
                                   "(1, not 01), digits on both sides of a decimal point (0.5 and "
                                   "1.0, not .5 or 1.), an exponent with digits (1e5)";
    static const char *const bad[] = {
        "{\"a\":01}", "[00]", "[-01]", "[1.]", "[1.e5]", "[-.5]", "[-]", "[1e]", "[1e+]", "[0.5.]",
        "[1.5e5e5]", "[01.5]",
        "{\"callbackUrl\":\"https://example.com/\",\"payload\":{\"n\":007}}",
        "{\"callbackUrl\":\"https://example.com/\",\"retries\":03}",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct api_error err = {0};
        cJSON *doc = validate_json(bad[i], strlen(bad[i]), &err);
        if (doc) fail_msg("accepted %s", bad[i]);
        assert_string_equal(err.message, msg);
        struct task *t = NULL;
        assert_int_equal(validate_task_create(bad[i], strlen(bad[i]), &cfg, np_for(&cfg), NOW, &t,
                                              NULL, false, &err),
                         -1);
        assert_null(t);
    }
    json_accepted("[0, -0, 1, -1, 10, 0.5, -0.5, 1.0, 1e5, 1E5, 1e+5, 1e-5, 1.5E+3, -0.0e0, "
                  "123456789, \"01\", \"1.\"]",
                  "every number JSON allows, and strings that look like bad ones");
}

/* cJSON reads \u followed by anything but four hex digits as U+0000, and
 * a string value with one came out cut there ("a\uZZb" read as "a"); kept
 * as written it was not JSON either. Such escapes, and escapes JSON does
 * not have, are refused. */
static void escapes_json_does_not_have_are_refused(void **state)
{
    (void)state;
    struct {
        const char *body, *message;
    } bad[] = {
        {"[\"a\\uZZb\"]", "\\u in a string takes four hex digits (\\u00e9)"},
        {"[\"\\u://9\"]", "\\u in a string takes four hex digits (\\u00e9)"},
        {"[\"\\u12\"]", "\\u in a string takes four hex digits (\\u00e9)"},
        {"[\"\\x41\"]", "a backslash in a string escapes one of \" \\ / b f n r t u; write "
                          "\\\\ for a backslash"},
        {"[\"\\'\"]", "a backslash in a string escapes one of \" \\ / b f n r t u; write "
                        "\\\\ for a backslash"},
        {"{\"callbackUrl\":\"https://example.com/\",\"headers\":{\"X-A\":\"a\\uZZZZb\"}}",
         "\\u in a string takes four hex digits (\\u00e9)"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct api_error err = {0};
        cJSON *doc = validate_json(bad[i].body, strlen(bad[i].body), &err);
        if (doc) fail_msg("accepted %s", bad[i].body);
        assert_string_equal(err.message, bad[i].message);
    }
    json_accepted("[\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uD83D\\uDE00 \\u00E9\"]",
                  "every escape JSON has");
}

/* ---- the idempotency hash ---- */

static void hash_of(const char *json, bool keyed, char out[65])
{
    struct task *t = NULL;
    struct api_error err = {0};
    assert_int_equal(validate_task_create(json, strlen(json), &cfg, np_for(&cfg), NOW, &t, out, keyed, &err), 0);
    task_free(t);
}

static void request_hash_only_for_keyed_requests(void **state)
{
    (void)state;
    char a[65], b[65], c[65], d[65];
    const char *plain = "{\"callbackUrl\":\"https://example.com/x\",\"payload\":{\"n\":1}}";
    hash_of(plain, false, a);
    assert_string_equal(a, ""); /* no key anywhere: no hash work */
    hash_of(plain, true, b);    /* the key came in the header */
    assert_int_equal(strlen(b), 64);
    assert_int_equal(strspn(b, "0123456789abcdef"), 64);
    /* A key in the body keys it too, and is not part of what is compared. */
    hash_of("{\"callbackUrl\":\"https://example.com/x\",\"payload\":{\"n\":1},\"idempotencyKey\":\"k1\"}", false, c);
    assert_string_equal(c, b);
    /* Another request, another hash. */
    hash_of("{\"callbackUrl\":\"https://example.com/x\",\"payload\":{\"n\":2}}", true, d);
    assert_string_not_equal(d, b);
}

/* Objects are unordered: the members' order, at any depth, is not part of
 * the request; the order of array items is. */
static void request_hash_ignores_member_order(void **state)
{
    (void)state;
    char a[65], b[65], c[65], d[65];
    hash_of("{\"callbackUrl\":\"https://example.com/x\",\"retries\":2,"
            "\"payload\":{\"a\":1,\"b\":{\"z\":[{\"q\":1,\"p\":2}],\"y\":null},\"c\":3}}", true, a);
    hash_of("{\"payload\":{\"c\":3,\"b\":{\"y\":null,\"z\":[{\"p\":2,\"q\":1}]},\"a\":1},"
            "\"retries\":2,\"callbackUrl\":\"https://example.com/x\"}", true, b);
    assert_string_equal(a, b);
    hash_of("{\"callbackUrl\":\"https://example.com/x\",\"payload\":[1,2]}", true, c);
    hash_of("{\"callbackUrl\":\"https://example.com/x\",\"payload\":[2,1]}", true, d);
    assert_string_not_equal(c, d);
}

/* Numbers count by their exact value: spelled otherwise, the same; two
 * values one double cannot tell apart, two requests; and at any depth,
 * beside strings and keys that hold digits. */
static void request_hash_compares_numbers_exactly(void **state)
{
    (void)state;
    char a[65], b[65], c[65], d[65];
    hash_of("{\"callbackUrl\":\"https://example.com/x\",\"payload\":"
            "{\"1\":[\"-2\",12345678901234567891,{\"x\":0.1}],\"t\":true}}", true, a);
    hash_of("{\"payload\":{\"t\":true,\"1\":[\"-2\",1.2345678901234567891e19,{\"x\":1e-1}]},"
            "\"callbackUrl\":\"https://example.com/x\"}", true, b);
    assert_string_equal(a, b);
    hash_of("{\"callbackUrl\":\"https://example.com/x\",\"payload\":"
            "{\"1\":[\"-2\",12345678901234567890,{\"x\":0.1}],\"t\":true}}", true, c);
    assert_string_not_equal(a, c);
    hash_of("{\"callbackUrl\":\"https://example.com/x\",\"payload\":"
            "{\"1\":[\"-2\",12345678901234567891,{\"x\":0.10000000000000001}],\"t\":true}}", true, d);
    assert_string_not_equal(a, d);
}

/* RFC 8259 lets a parser ignore a byte order mark: a body that starts with
 * one is taken, and its payload and metadata are still kept as written (they
 * went through cJSON, and a large number lost its digits). Elsewhere outside
 * strings a non-ASCII byte is refused. */
static void a_body_after_a_byte_order_mark_keeps_its_payload_as_written(void **state)
{
    (void)state;
    struct task *t = create_ok("\xEF\xBB\xBF{\"callbackUrl\": \"https://ai.example.com/g\", "
                               "\"payload\": {\"n\": 12345678901234567890}, \"metadata\": {\"m\": 1.50}}");
    assert_int_equal(t->body_kind, TASK_BODY_JSON);
    assert_string_equal(t->body, "{\"n\": 12345678901234567890}");
    assert_string_equal(t->metadata_json, "{\"m\": 1.50}");
    task_free(t);
    /* One mark is skipped, once: a second is not JSON (it was skipped twice,
     * and the payload after it went through cJSON). */
    struct api_error err = {0};
    struct task *none = NULL;
    const char two[] = "\xEF\xBB\xBF\xEF\xBB\xBF{\"callbackUrl\": \"https://ai.example.com/g\", "
                       "\"payload\": {\"n\": 12345678901234567890}}";
    assert_int_equal(validate_task_create(two, sizeof two - 1, &cfg, np_for(&cfg), NOW, &none, NULL, false, &err), -1);
    assert_null(none);
    assert_string_equal(err.code, "invalid_json");
    assert_non_null(strstr(err.message, "byte order mark"));
}

/* ---- batch create ---- */

/* Accepted; frees the items and returns how many there were. */
static size_t batch_count(const char *json);

static struct validate_batch_item *batch_ok(const char *json, size_t *n)
{
    struct validate_batch_item *items = NULL;
    struct api_error err = {0};
    if (validate_task_batch(json, strlen(json), &cfg, np_for(&cfg), NOW, &items, n, &err) != 0)
        fail_msg("refused (%s, field '%s'): %s\n  body: %.300s", err.code, err.field, err.message, json);
    assert_non_null(items);
    return items;
}

static size_t batch_count(const char *json)
{
    size_t n = 0;
    struct validate_batch_item *items = batch_ok(json, &n);
    validate_batch_free(items, n);
    return n;
}

/* Refused with code on field; returns the message (static). */
static const char *batch_refused(const char *json, const char *code, const char *field)
{
    static struct api_error err;
    static struct validate_batch_item sentinel;
    struct validate_batch_item *items = &sentinel; /* must be reset */
    size_t n = 7;
    memset(&err, 0, sizeof err);
    if (validate_task_batch(json, strlen(json), &cfg, np_for(&cfg), NOW, &items, &n, &err) == 0) {
        validate_batch_free(items, n);
        fail_msg("accepted, want %s on '%s': %.300s", code, field, json);
    }
    assert_null(items);
    assert_int_equal(n, 0);
    assert_int_equal(err.status, 400);
    if (strcmp(err.code, code) != 0 || strcmp(err.field, field) != 0)
        fail_msg("got %s on '%s' (%s), want %s on '%s'\n  body: %.300s", err.code, err.field,
                 err.message, code, field, json);
    return err.message;
}

static void batch_items_are_creates_in_order(void **state)
{
    (void)state;
    size_t n = 0;
    const char *json = "\xEF\xBB\xBF{\"tasks\": [\n"
                       "  {\"callbackUrl\": \"https://a.example/1\", \"payload\": {\"n\": 12345678901234567890}},\n"
                       "  {\"callbackUrl\": \"https://a.example/2\", \"method\": \"put\", \"body\": \"raw\", \"retries\": 1,"
                       "   \"metadata\": [1.50, {\"x\": null}], \"queue\": \"q2\"} ,\n"
                       "  {\"idempotencyKey\": \"k\", \"callbackUrl\": \"https://a.example/3\", \"delay\": 10}\n"
                       "]}";
    struct validate_batch_item *items = batch_ok(json, &n);
    assert_int_equal(n, 3);
    assert_string_equal(items[0].task->callback_url, "https://a.example/1");
    assert_string_equal(items[0].task->body, "{\"n\": 12345678901234567890}"); /* as written */
    assert_int_equal(items[0].task->max_retries, -1);                           /* left for the defaults */
    assert_string_equal(items[0].hash, "");                                     /* no key: no hash */
    assert_string_equal(items[1].task->method, "PUT");
    assert_string_equal(items[1].task->body, "raw");
    assert_int_equal(items[1].task->body_kind, TASK_BODY_RAW);
    assert_string_equal(items[1].task->metadata_json, "[1.50, {\"x\": null}]");
    assert_string_equal(items[1].task->queue, "q2");
    assert_int_equal(items[1].task->max_retries, 1);
    assert_string_equal(items[2].task->idempotency_key, "k");
    assert_int_equal(items[2].task->run_at_ms, NOW + 10000);
    assert_int_equal(strlen(items[2].hash), 64);
    /* Each item's text is where it is written. */
    assert_non_null(items[1].text);
    assert_int_equal(strncmp(items[1].text, "{\"callbackUrl\": \"https://a.example/2\"", 37), 0);
    assert_int_equal(items[1].text[items[1].len - 1], '}');
    for (size_t i = 0; i < n; i++) assert_int_equal(items[i].task->status, TASK_QUEUED);
    validate_batch_free(items, n);
}

/* An item is hashed as the same body sent to POST /v1/tasks would be: a key
 * means the same request whichever route it came by. */
static void batch_item_hash_is_the_create_hash(void **state)
{
    (void)state;
    char single[65];
    hash_of("{\"payload\": {\"b\": 2, \"a\": [1, 2]}, \"callbackUrl\": \"https://example.com/x\"}", true, single);
    size_t n = 0;
    struct validate_batch_item *items = batch_ok(
        "{\"tasks\": [{\"callbackUrl\": \"https://example.com/y\"}, {\"callbackUrl\": \"https://example.com/x\", "
        "\"idempotencyKey\": \"k2\", \"payload\": {\"a\": [1, 2], \"b\": 2.0}}]}", &n);
    assert_string_equal(items[1].hash, single);
    validate_batch_free(items, n);
}

static void batch_refuses_items_as_a_create_would_naming_the_item(void **state)
{
    (void)state;
    const char *m = batch_refused("{\"tasks\": [{\"callbackUrl\": \"https://example.com/\"}, "
                                  "{\"callbackUrl\": \"ftp://example.com/\"}]}",
                                  "invalid_field", "tasks[1].callbackUrl");
    assert_string_equal(m, "tasks[1]: callbackUrl must use http or https, not ftp");
    batch_refused("{\"tasks\": [{\"payload\": 1}]}", "missing_field", "tasks[0].callbackUrl");
    batch_refused("{\"tasks\": [{\"callbackUrl\": \"https://example.com/\", \"retries\": -1}]}", "invalid_field",
                  "tasks[0].retries");
    batch_refused("{\"tasks\": [{\"callbackUrl\": \"http://10.0.0.1/\"}]}", "blocked_destination",
                  "tasks[0].callbackUrl");
    batch_refused("{\"tasks\": [{\"callbackUrl\": \"https://example.com/\"}, 3]}", "invalid_field", "tasks[1]");
    /* A long unknown name is cut to fit the field. */
    char *long_name = xasprintf("{\"tasks\": [{\"callbackUrl\": \"https://example.com/\", \"%0100d\": 1}]}", 0);
    struct api_error err = {0};
    struct validate_batch_item *items = NULL;
    size_t n = 0;
    assert_int_equal(validate_task_batch(long_name, strlen(long_name), &cfg, np, NOW, &items, &n, &err), -1);
    assert_string_equal(err.code, "unknown_field");
    assert_int_equal(strncmp(err.field, "tasks[0].0000", 13), 0);
    assert_int_equal(strlen(err.field), sizeof err.field - 1);
    free(long_name);
    /* The first item at fault is named. */
    batch_refused("{\"tasks\": [{\"callbackUrl\": \"https://example.com/\"}, {}, {\"x\": 1}]}", "missing_field",
                  "tasks[1].callbackUrl");
}

static void batch_body_shape(void **state)
{
    (void)state;
    batch_refused("[]", "invalid_body", "");
    batch_refused("{}", "missing_field", "tasks");
    batch_refused("{\"tasks\": {}}", "invalid_field", "tasks");
    batch_refused("{\"tasks\": null}", "invalid_field", "tasks");
    batch_refused("{\"tasks\": []}", "invalid_field", "tasks");
    batch_refused("{\"tasks\": [{\"callbackUrl\": \"https://example.com/\"}], \"queue\": \"q\"}", "unknown_field",
                  "queue");
    batch_refused("{\"tasks\": [], \"tasks\": []}", "invalid_json", "");
    batch_refused("{\"tasks\": [{\"callbackUrl\": \"https://example.com/\"}] x", "invalid_json", "");
}

/* A fault in an item's JSON itself (a member twice, a number out of range,
 * nesting too deep for a create) names the item, as a field's refusal
 * does, and says the item's own depth limit; a body whose items cannot be
 * told apart is refused without a field. Once every such fault was the
 * body's alone: no field, and "deeper than 34 levels". */
static void batch_json_faults_name_the_item(void **state)
{
    (void)state;
    const char *ok = "{\"callbackUrl\": \"https://example.com/\"}";
    char *twice = xasprintf("{\"tasks\": [%s, %s, {\"callbackUrl\": \"https://example.com/\", \"retries\": 1, "
                            "\"retries\": 2}]}", ok, ok);
    batch_refused(twice, "invalid_json", "tasks[2]");
    char *huge = xasprintf("{\"tasks\": [%s, {\"callbackUrl\": \"https://example.com/\", \"payload\": 1e999}]}", ok);
    batch_refused(huge, "invalid_json", "tasks[1]");
    struct buf deep;
    buf_init(&deep, 1 << 16);
    buf_appendf(&deep, "{\"tasks\": [%s, {\"callbackUrl\": \"https://example.com/\", \"payload\": ", ok);
    for (int i = 0; i < VALIDATE_MAX_DEPTH; i++) buf_append(&deep, "[", 1);
    for (int i = 0; i < VALIDATE_MAX_DEPTH; i++) buf_append(&deep, "]", 1);
    buf_appendf(&deep, "}]}");
    const char *m = batch_refused(deep.data, "invalid_json", "tasks[1]");
    char want[64];
    snprintf(want, sizeof want, "deeper than %d levels", VALIDATE_MAX_DEPTH);
    if (!strstr(m, want)) fail_msg("'%s' does not say '%s'", m, want);
    batch_refused("{\"tasks\": [{\"callbackUrl\": \"https://example.com/\"} {}]}", "invalid_json", "");
    free(twice);
    free(huge);
    buf_free(&deep);
}

static char *batch_of(size_t n)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(buf_append(&b, "{\"tasks\":[", 10), 0);
    for (size_t i = 0; i < n; i++) {
        char item[80];
        int len = snprintf(item, sizeof item, "%s{\"callbackUrl\":\"https://example.com/%zu\"}", i ? "," : "", i);
        assert_int_equal(buf_append(&b, item, (size_t)len), 0);
    }
    assert_int_equal(buf_append(&b, "]}", 2), 0);
    return buf_steal(&b, NULL);
}

static void batch_takes_1_to_1000_items(void **state)
{
    (void)state;
    char *one = batch_of(1), *max = batch_of(VALIDATE_MAX_BATCH), *over = batch_of(VALIDATE_MAX_BATCH + 1);
    size_t n = 0;
    assert_int_equal(batch_count(one), 1);
    struct validate_batch_item *items = batch_ok(max, &n);
    assert_int_equal(n, VALIDATE_MAX_BATCH);
    assert_string_equal(items[999].task->callback_url, "https://example.com/999");
    validate_batch_free(items, n);
    const char *m = batch_refused(over, "invalid_field", "tasks");
    assert_non_null(strstr(m, "more than 1000"));
    free(one);
    free(max);
    free(over);
}

/* Each item may nest as deep as the body of POST /v1/tasks, no deeper. */
static void batch_items_nest_as_deep_as_a_create(void **state)
{
    (void)state;
    char *payload = nested_objects(31, "1"); /* with the item: 32 levels, the create limit */
    char *create = xasprintf("{\"callbackUrl\": \"https://example.com/\", \"payload\": %s}", payload);
    task_free(create_ok(create));
    char *json = xasprintf("{\"tasks\": [%s]}", create);
    assert_int_equal(batch_count(json), 1);
    free(payload);
    free(create);
    free(json);
    payload = nested_objects(32, "1");
    create = xasprintf("{\"callbackUrl\": \"https://example.com/\", \"payload\": %s}", payload);
    refused(create, "invalid_json", "");
    json = xasprintf("{\"tasks\": [%s]}", create);
    batch_refused(json, "invalid_json", "tasks[0]"); /* the item at fault is named */
    free(payload);
    free(create);
    free(json);
}

static void batch_refuses_one_key_on_two_items(void **state)
{
    (void)state;
    const char *m = batch_refused(
        "{\"tasks\": [{\"callbackUrl\": \"https://example.com/a\", \"idempotencyKey\": \"b\"},"
        "{\"callbackUrl\": \"https://example.com/b\", \"idempotencyKey\": \"a\"},"
        "{\"callbackUrl\": \"https://example.com/c\"},"
        "{\"callbackUrl\": \"https://example.com/d\", \"idempotencyKey\": \"a\"},"
        "{\"callbackUrl\": \"https://example.com/e\", \"idempotencyKey\": \"b\"}]}",
        "conflicting_fields", "tasks[3].idempotencyKey");
    assert_string_equal(m, "tasks[3] has the idempotencyKey of tasks[1]; each item of a batch needs its own "
                           "key (one key is one task)");
    assert_int_equal(batch_count("{\"tasks\": [{\"callbackUrl\": \"https://example.com/a\", \"idempotencyKey\": \"a\"},"
                                 "{\"callbackUrl\": \"https://example.com/a\", \"idempotencyKey\": \"A\"},"
                                 "{\"callbackUrl\": \"https://example.com/a\", \"idempotencyKey\": null},"
                                 "{\"callbackUrl\": \"https://example.com/a\"}]}"), 4);
}

/* A "tasks" key written with an escape is the same member; the items'
 * text is then not known, and their payload is kept as cJSON renders it. */
static void batch_with_an_escaped_key_still_reads_its_items(void **state)
{
    (void)state;
    size_t n = 0;
    struct validate_batch_item *items =
        batch_ok("{\"t\\u0061sks\": [{\"callbackUrl\": \"https://example.com/\", \"payload\": {\"n\": 1.50}}]}", &n);
    assert_int_equal(n, 1);
    assert_non_null(items[0].text); /* found through the name as it reads */
    assert_string_equal(items[0].task->body, "{\"n\": 1.50}");
    validate_batch_free(items, n);
}

int main(void)
{
    log_set_level(LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_refuses_empty_and_bad_syntax),
        cmocka_unit_test(json_refuses_invalid_utf8),
        cmocka_unit_test(json_refuses_nul_escapes),
        cmocka_unit_test(json_refuses_trailing_data),
        cmocka_unit_test(json_depth_32_is_the_limit),
        cmocka_unit_test(json_depth_counts_structure_not_text),
        cmocka_unit_test(json_problems_are_reported_in_order),
        cmocka_unit_test(control_characters_between_values_are_refused),
        cmocka_unit_test(numbers_json_does_not_allow_are_refused),
        cmocka_unit_test(escapes_json_does_not_have_are_refused),
        cmocka_unit_test(json_refuses_very_deep_nesting_without_crashing),
        cmocka_unit_test(json_refuses_duplicate_keys_at_any_depth),
        cmocka_unit_test(json_refuses_numbers_too_large),
        cmocka_unit_test(create_minimal_task_gets_defaults),
        cmocka_unit_test(create_full_task_keeps_every_field),
        cmocka_unit_test(create_refuses_non_objects),
        cmocka_unit_test(create_refuses_unknown_fields),
        cmocka_unit_test(create_requires_callback_url),
        cmocka_unit_test(create_callback_url_must_be_http_or_https),
        cmocka_unit_test(create_callback_url_needs_a_host),
        cmocka_unit_test(create_callback_url_length_limit),
        cmocka_unit_test(create_blocks_private_literals_unless_allowed),
        cmocka_unit_test(create_method_list),
        cmocka_unit_test(create_headers_must_be_an_object_of_strings),
        cmocka_unit_test(create_headers_refuse_bad_names),
        cmocka_unit_test(create_headers_refuse_connection_level_names),
        cmocka_unit_test(create_headers_refuse_reserved_prefix),
        cmocka_unit_test(create_headers_refuse_line_breaks_in_values),
        cmocka_unit_test(create_headers_count_limit),
        cmocka_unit_test(create_headers_size_limit),
        cmocka_unit_test(create_payload_or_body_not_both),
        cmocka_unit_test(create_payload_is_json_and_body_is_raw),
        cmocka_unit_test(create_get_and_head_cannot_carry_a_body),
        cmocka_unit_test(create_webhook_url_rules),
        cmocka_unit_test(create_retries_range),
        cmocka_unit_test(create_timeout_range),
        cmocka_unit_test(create_delay_range),
        cmocka_unit_test(create_run_at_rules),
        cmocka_unit_test(create_queue_names),
        cmocka_unit_test(queue_name_predicate),
        cmocka_unit_test(create_metadata_is_kept_as_json),
        cmocka_unit_test(any_proxy_header_is_refused),
        cmocka_unit_test(scalar_inside_32_levels_is_accepted),
        cmocka_unit_test(a_body_after_a_byte_order_mark_keeps_its_payload_as_written),
        cmocka_unit_test(raw_nul_byte_in_a_string_is_refused),
        cmocka_unit_test(request_hash_only_for_keyed_requests),
        cmocka_unit_test(request_hash_ignores_member_order),
        cmocka_unit_test(request_hash_compares_numbers_exactly),
        cmocka_unit_test(batch_items_are_creates_in_order),
        cmocka_unit_test(batch_item_hash_is_the_create_hash),
        cmocka_unit_test(batch_refuses_items_as_a_create_would_naming_the_item),
        cmocka_unit_test(batch_body_shape),
        cmocka_unit_test(batch_json_faults_name_the_item),
        cmocka_unit_test(batch_takes_1_to_1000_items),
        cmocka_unit_test(batch_items_nest_as_deep_as_a_create),
        cmocka_unit_test(batch_refuses_one_key_on_two_items),
        cmocka_unit_test(batch_with_an_escaped_key_still_reads_its_items),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
