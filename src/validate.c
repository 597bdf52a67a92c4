/*
 * validate: the create-request schema. Each field's rule lives in one
 * function below; docs/api.md documents the same rules.
 */
#include "validate.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/sha.h>

#include "netpolicy.h"
#include "util.h"

/* True when the object has a key twice. Small objects compare pairs;
 * large ones sort pointers to the keys, so a body with a hundred thousand
 * keys costs n log n, not n squared. */
static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool has_duplicate_key(const cJSON *obj)
{
    size_t n = 0;
    for (const cJSON *a = obj->child; a; a = a->next) n++;
    if (n < 2) return false;
    if (n <= 16) {
        for (const cJSON *a = obj->child; a; a = a->next)
            for (const cJSON *b = a->next; b; b = b->next)
                if (strcmp(a->string, b->string) == 0) return true;
        return false;
    }
    const char **keys = xmalloc(n * sizeof *keys);
    size_t i = 0;
    for (const cJSON *a = obj->child; a; a = a->next) keys[i++] = a->string;
    qsort(keys, n, sizeof *keys, cmp_keys);
    bool dup = false;
    for (i = 1; i < n && !dup; i++) dup = strcmp(keys[i - 1], keys[i]) == 0;
    free(keys);
    return dup;
}

/* A node's type, as cJSON_IsObject() and the others test it, without a
 * call into the library for every node of every request. */
static int node_type(const cJSON *v)
{
    return v->type & 0xFF;
}

/* Depth limit (max_depth) and duplicate keys, over the parsed tree. depth
 * counts the arrays and objects around v. Returns the first problem found
 * as a static message, or NULL. */
static const char *check_tree(const cJSON *v, int depth, int max_depth)
{
    int type = node_type(v);
    if (type == cJSON_Object || type == cJSON_Array) {
        if (depth + 1 > max_depth) return "too_deep";
        if (type == cJSON_Object && has_duplicate_key(v)) return "duplicate_key";
        for (const cJSON *a = v->child; a; a = a->next) {
            const char *why = check_tree(a, depth + 1, max_depth);
            if (why) return why;
        }
    } else if (type == cJSON_Number && !isfinite(v->valuedouble)) {
        return "number_out_of_range";
    }
    return NULL;
}

/* validate_json after its byte order mark: the create and the replay skip
 * it themselves (the raw payload is read from the same text), and a second
 * skip let a body with two marks through, its payload re-printed by cJSON.
 * max_depth: VALIDATE_MAX_DEPTH, or more for a body that wraps creates (a
 * batch: each of its items may nest as deep as a create's body). */
static cJSON *json_doc(const char *body, size_t len, int max_depth, struct api_error *err)
{
    if (len == 0) {
        api_error_set(err, 400, "invalid_json", NULL, "the request body is empty; send a JSON object");
        return NULL;
    }
    if (!util_utf8_valid(body, len)) {
        api_error_set(err, 400, "invalid_json", NULL, "the request body is not valid UTF-8");
        return NULL;
    }
    /* The strings first, then the nesting: the depth is checked before
     * parsing so a deeply nested body cannot exhaust the stack of cJSON's
     * recursive parser before check_tree runs. One pass finds both. */
    int depth = 0;
    const char *bad = util_json_scan(body, len, &depth);
    if (bad) {
        api_error_set(err, 400, "invalid_json", NULL, "%s", bad);
        return NULL;
    }
    if (depth > max_depth) {
        api_error_set(err, 400, "invalid_json", NULL, "JSON is nested deeper than %d levels", max_depth);
        return NULL;
    }
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!doc) {
        size_t at = end && end >= body ? (size_t)(end - body) : 0;
        api_error_set(err, 400, "invalid_json", NULL, "the request body is not valid JSON (near byte %zu)", at);
        return NULL;
    }
    while (end < body + len && isspace((unsigned char)*end)) end++;
    if (end != body + len) {
        cJSON_Delete(doc);
        api_error_set(err, 400, "invalid_json", NULL,
                      "unexpected data after the JSON value (at byte %zu)", (size_t)(end - body));
        return NULL;
    }
    const char *why = check_tree(doc, 0, max_depth);
    if (why) {
        if (!strcmp(why, "too_deep"))
            api_error_set(err, 400, "invalid_json", NULL, "JSON is nested deeper than %d levels", max_depth);
        else if (!strcmp(why, "duplicate_key"))
            api_error_set(err, 400, "invalid_json", NULL,
                          "an object has the same key twice; send each key once");
        else
            api_error_set(err, 400, "invalid_json", NULL,
                          "a number is too large to represent");
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

cJSON *validate_json(const char *body, size_t len, struct api_error *err)
{
    util_json_skip_bom(&body, &len);
    return json_doc(body, len, VALIDATE_MAX_DEPTH, err);
}

bool validate_queue_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > VALIDATE_MAX_QUEUE_NAME) return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!isalnum((unsigned char)c) && c != '.' && c != '_' && c != '-') return false;
    }
    /* A path segment "." or ".." is resolved away by URL parsers: such a
     * queue could never be named in /v1/queues/{name}. */
    return strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

static int check_url(const cJSON *v, const char *field, const struct netpolicy *np, char **out,
                     struct api_error *err)
{
    if (!cJSON_IsString(v)) {
        api_error_set(err, 400, "invalid_field", field, "%s must be a string holding an http or https URL", field);
        return -1;
    }
    if (strlen(v->valuestring) > VALIDATE_MAX_URL) {
        api_error_set(err, 400, "invalid_field", field, "%s is longer than %d characters", field,
                      VALIDATE_MAX_URL);
        return -1;
    }
    char why[256];
    switch (netpolicy_check_url(np, v->valuestring, why, sizeof why)) {
    case NETPOLICY_URL_OK:
        *out = xstrdup(v->valuestring);
        return 0;
    case NETPOLICY_URL_BLOCKED:
        api_error_set(err, 400, "blocked_destination", field, "%s %s", field, why);
        return -1;
    case NETPOLICY_URL_INVALID:
        break;
    }
    api_error_set(err, 400, "invalid_field", field, "%s %s", field, why);
    return -1;
}

/* An integer field: a JSON number with no fraction, within [min, max]. */
static int check_int(const cJSON *v, const char *field, double min, double max, double *out,
                     struct api_error *err)
{
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble)) {
        api_error_set(err, 400, "invalid_field", field, "%s must be a whole number", field);
        return -1;
    }
    if (v->valuedouble < min || v->valuedouble > max) {
        api_error_set(err, 400, "invalid_field", field, "%s must be between %.0f and %.0f", field,
                      min, max);
        return -1;
    }
    *out = v->valuedouble;
    return 0;
}

static int check_seconds(const cJSON *v, const char *field, double min_s, double max_s,
                         int64_t *out_ms, struct api_error *err)
{
    if (!cJSON_IsNumber(v)) {
        api_error_set(err, 400, "invalid_field", field, "%s must be a number of seconds", field);
        return -1;
    }
    if (v->valuedouble < min_s || v->valuedouble > max_s) {
        api_error_set(err, 400, "invalid_field", field, "%s must be between %g and %g seconds",
                      field, min_s, max_s);
        return -1;
    }
    *out_ms = (int64_t)llround(v->valuedouble * 1000.0);
    return 0;
}

/* Headers a caller may not set: they belong to the connection (hop-by-hop)
 * or are computed by libcurl, and letting them through invites request
 * smuggling. */
static const char *const forbidden_headers[] = {
    "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "host",
    "content-length", "expect", /* and every Proxy-* name, checked apart */
};

static int check_headers(const cJSON *v, char **out, struct api_error *err)
{
    if (!cJSON_IsObject(v)) {
        api_error_set(err, 400, "invalid_field", "headers",
                      "headers must be an object of header names to string values");
        return -1;
    }
    int n = 0;
    size_t bytes = 0;
    for (const cJSON *h = v->child; h; h = h->next) {
        const char *name = h->string;
        if (++n > VALIDATE_MAX_HEADERS) {
            api_error_set(err, 400, "invalid_field", "headers", "at most %d headers are allowed",
                          VALIDATE_MAX_HEADERS);
            return -1;
        }
        if (!*name) {
            api_error_set(err, 400, "invalid_field", "headers", "a header name is empty");
            return -1;
        }
        if (!util_http_token(name, strlen(name))) {
            api_error_set(err, 400, "invalid_field", "headers",
                          "header name '%.64s' has a character not allowed in HTTP header names", name);
            return -1;
        }
        for (size_t i = 0; i < ARRAY_LEN(forbidden_headers); i++) {
            if (strcasecmp(name, forbidden_headers[i]) == 0) {
                api_error_set(err, 400, "invalid_field", "headers",
                              "header '%s' is managed by the connection and cannot be set", name);
                return -1;
            }
        }
        if (strncasecmp(name, "proxy-", 6) == 0) {
            api_error_set(err, 400, "invalid_field", "headers",
                          "header '%.64s' is for proxies and cannot be set", name);
            return -1;
        }
        if (strncasecmp(name, "asyncqueue-", 11) == 0) {
            api_error_set(err, 400, "invalid_field", "headers",
                          "header names starting with AsyncQueue- are reserved");
            return -1;
        }
        if (!cJSON_IsString(h)) {
            api_error_set(err, 400, "invalid_field", "headers", "header '%.64s' must have a string value", name);
            return -1;
        }
        for (const char *p = h->valuestring; *p; p++) {
            unsigned char c = (unsigned char)*p;
            if (c == '\r' || c == '\n') {
                api_error_set(err, 400, "invalid_field", "headers",
                              "header '%.64s' has a line break in its value", name);
                return -1;
            }
            /* RFC 9110 5.5: no control characters but the tab (a strict
             * server answers 400, which is not retried) */
            if ((c < 0x20 && c != '\t') || c == 0x7f) {
                api_error_set(err, 400, "invalid_field", "headers",
                              "header '%.64s' has a control character (0x%02X) in its value; "
                              "values hold visible characters, spaces and tabs",
                              name, c);
                return -1;
            }
        }
        bytes += strlen(name) + strlen(h->valuestring) + 4;
    }
    if (bytes > VALIDATE_MAX_HEADER_BYTES) {
        api_error_set(err, 400, "invalid_field", "headers", "headers add up to more than %d bytes",
                      VALIDATE_MAX_HEADER_BYTES);
        return -1;
    }
    *out = n ? cJSON_PrintUnformatted(v) : NULL;
    return 0;
}

/* ---- the raw text of a member ----
 * payload and metadata are kept exactly as the client wrote them: parsing
 * and printing again would change numbers (12345678901234567890 becomes
 * 1.2345678901234567e+19, 1.0 becomes 1). The body was validated already,
 * so the scanner (util_json_next_member) only has to find where a top-level
 * member's value starts and ends. */

/* Where a top-level member's value is written in the body, or {NULL, 0}. */
struct raw_text {
    const char *p;
    size_t n;
};

/* Finds how the members payload and metadata are written in the (valid)
 * JSON object text, in one pass that stops once each one wanted is found
 * (their names may be written with escapes); a member not there stays
 * {NULL, 0}. */
static void raw_members(const char *body, size_t len, bool want_payload, bool want_metadata,
                        struct raw_text *payload, struct raw_text *metadata)
{
    *payload = *metadata = (struct raw_text){0};
    const char *end = body + len, *p = util_json_first_member(body, end), *k, *v;
    size_t klen, vlen;
    while ((want_payload || want_metadata) && util_json_next_member(&p, end, &k, &klen, &v, &vlen)) {
        if (want_payload && util_json_key_is(k, klen, "payload")) {
            *payload = (struct raw_text){v, vlen};
            want_payload = false;
        } else if (want_metadata && util_json_key_is(k, klen, "metadata")) {
            *metadata = (struct raw_text){v, vlen};
            want_metadata = false;
        }
    }
}

/* The text to keep for a member: as written, else cJSON's rendering. */
static char *member_text(const struct raw_text *raw, const cJSON *v)
{
    return raw->p ? xstrndup(raw->p, raw->n) : cJSON_PrintUnformatted(v);
}

static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};

/* The fields of a create, in the order of enum field. */
static const char *const task_fields[] = {
    "callbackUrl", "method", "headers", "payload", "body", "webhookUrl", "retries",
    "timeout",     "delay",  "runAt",   "queue",   "metadata", "followRedirects",
    "idempotencyKey", /* last: replays take every field but this one */
};
enum field {
    F_CALLBACK_URL, F_METHOD, F_HEADERS, F_PAYLOAD, F_BODY, F_WEBHOOK_URL, F_RETRIES,
    F_TIMEOUT, F_DELAY, F_RUN_AT, F_QUEUE, F_METADATA, F_FOLLOW_REDIRECTS, F_IDEMPOTENCY_KEY,
    F_COUNT,
};
_Static_assert(F_COUNT == ARRAY_LEN(task_fields), "enum field follows task_fields");

/* Refuses a member that is not one of the first n fields, and sorts the
 * members into found[] (duplicates were refused by validate_json), so each
 * field is looked up once. */
static int check_known(const cJSON *doc, size_t n, const cJSON *found[F_COUNT], struct api_error *err)
{
    for (size_t i = 0; i < F_COUNT; i++) found[i] = NULL;
    for (const cJSON *f = doc->child; f; f = f->next) {
        bool known = false;
        for (size_t i = 0; i < n && !known; i++) {
            known = f->string[0] == task_fields[i][0] && strcmp(f->string, task_fields[i]) == 0;
            if (known) found[i] = f;
        }
        if (!known) {
            api_error_set(err, 400, "unknown_field", f->string,
                          "unknown field '%.64s'; the fields are listed in docs/api.md", f->string);
            return -1;
        }
    }
    return 0;
}

bool validate_idempotency_key(const char *key)
{
    size_t n = strlen(key);
    if (n == 0 || n > VALIDATE_MAX_IDEMPOTENCY_KEY) return false;
    for (size_t i = 0; i < n; i++)
        if (key[i] < 0x20 || key[i] > 0x7e) return false;
    return true;
}

/* Applies every field present in doc to t. When creating, callbackUrl is
 * required and absent fields get their defaults (retries and timeout are
 * left -1 and 0 for validate_apply_defaults). */
static int apply_fields(const cJSON *const found[F_COUNT], const char *body, size_t len, struct task *t,
                        const struct config *cfg, const struct netpolicy *np, int64_t now_ms,
                        bool creating, struct api_error *err)
{
    const cJSON *v = found[F_CALLBACK_URL];
    if (!v && creating) {
        api_error_set(err, 400, "missing_field", "callbackUrl",
                      "callbackUrl is required: the http or https URL to call");
        return -1;
    }
    if (v) {
        char *url = NULL;
        if (check_url(v, "callbackUrl", np, &url, err)) return -1;
        free(t->callback_url);
        free(t->host);
        t->callback_url = url;
        t->host = task_url_host(url);
    }

    v = found[F_METHOD];
    if (!t->method) t->method = xstrdup("POST");
    if (v) {
        const char *m = NULL;
        for (size_t i = 0; cJSON_IsString(v) && i < ARRAY_LEN(methods) && !m; i++)
            if (strcasecmp(v->valuestring, methods[i]) == 0) m = methods[i];
        if (!m) {
            api_error_set(err, 400, "invalid_field", "method",
                          "method must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS");
            return -1;
        }
        free(t->method);
        t->method = xstrdup(m);
    }

    v = found[F_HEADERS];
    if (v) {
        char *h = NULL;
        if (!cJSON_IsNull(v) && check_headers(v, &h, err)) return -1;
        free(t->headers_json);
        t->headers_json = h;
    }

    const cJSON *payload = found[F_PAYLOAD];
    const cJSON *raw = found[F_BODY];
    if (payload && raw) {
        api_error_set(err, 400, "conflicting_fields", "body",
                      "send either payload (JSON, sent as application/json) or body (a string "
                      "sent as is), not both");
        return -1;
    }
    if (raw && !cJSON_IsString(raw)) {
        api_error_set(err, 400, "invalid_field", "body",
                      "body must be a string; use payload for JSON values");
        return -1;
    }
    /* payload and metadata are kept as the client wrote them. */
    struct raw_text raw_payload = {0}, raw_metadata = {0};
    bool keep_metadata = found[F_METADATA] && !cJSON_IsNull(found[F_METADATA]);
    if (body && (payload || keep_metadata))
        raw_members(body, len, payload != NULL, keep_metadata, &raw_payload, &raw_metadata);
    if (payload || raw) {
        free(t->body);
        if (payload) {
            t->body = member_text(&raw_payload, payload);
            t->body_kind = TASK_BODY_JSON;
        } else {
            t->body = xstrdup(raw->valuestring);
            t->body_kind = TASK_BODY_RAW;
        }
        t->body_len = strlen(t->body);
    }
    if (t->body && (!strcmp(t->method, "GET") || !strcmp(t->method, "HEAD"))) {
        const char *field = t->body_kind == TASK_BODY_JSON ? "payload" : "body";
        api_error_set(err, 400, "invalid_field", field,
                      "a %s request cannot carry a body; use POST, PUT or PATCH, or drop %s",
                      t->method, field);
        return -1;
    }

    v = found[F_WEBHOOK_URL];
    if (v) {
        char *url = NULL;
        if (!cJSON_IsNull(v) && check_url(v, "webhookUrl", np, &url, err)) return -1;
        free(t->webhook_url);
        t->webhook_url = url;
    }

    double d;
    if (creating) t->max_retries = -1;
    v = found[F_RETRIES];
    if (v) {
        if (check_int(v, "retries", 0, cfg->max_retries, &d, err)) return -1;
        t->max_retries = (int)d;
    }

    if (creating) t->timeout_ms = 0;
    v = found[F_TIMEOUT];
    if (v && check_seconds(v, "timeout", 0.1, (double)cfg->max_timeout_ms / 1000.0, &t->timeout_ms, err))
        return -1;

    t->run_at_ms = now_ms;
    const cJSON *delay = found[F_DELAY];
    const cJSON *run_at = found[F_RUN_AT];
    if (delay && run_at) {
        api_error_set(err, 400, "conflicting_fields", "runAt",
                      "send either delay (seconds from now) or runAt (a time), not both");
        return -1;
    }
    if (delay) {
        int64_t ms;
        if (check_seconds(delay, "delay", 0, (double)cfg->max_delay_ms / 1000.0, &ms, err)) return -1;
        t->run_at_ms = now_ms + ms;
    } else if (run_at) {
        int64_t at;
        if (!cJSON_IsString(run_at) || util_rfc3339_parse(run_at->valuestring, &at)) {
            api_error_set(err, 400, "invalid_field", "runAt",
                          "runAt must be an RFC 3339 time such as 2026-01-02T15:04:05Z");
            return -1;
        }
        if (at - now_ms > cfg->max_delay_ms) {
            api_error_set(err, 400, "invalid_field", "runAt",
                          "runAt is further ahead than max_delay allows (%lld seconds)",
                          (long long)(cfg->max_delay_ms / 1000));
            return -1;
        }
        t->run_at_ms = at > now_ms ? at : now_ms; /* a past time means now */
    }

    v = found[F_QUEUE];
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v) || !validate_queue_name(v->valuestring)) {
            api_error_set(err, 400, "invalid_field", "queue",
                          "queue must be 1 to %d characters of letters, digits, '.', '_' or '-' "
                          "(not . or ..)", VALIDATE_MAX_QUEUE_NAME);
            return -1;
        }
        free(t->queue);
        t->queue = xstrdup(v->valuestring);
    } else if (creating || (v && cJSON_IsNull(v))) {
        free(t->queue);
        t->queue = xstrdup("default");
    }

    v = found[F_METADATA];
    if (v) {
        free(t->metadata_json);
        t->metadata_json = keep_metadata ? member_text(&raw_metadata, v) : NULL;
    }

    v = found[F_FOLLOW_REDIRECTS];
    if (v) {
        if (!cJSON_IsBool(v)) {
            api_error_set(err, 400, "invalid_field", "followRedirects",
                          "followRedirects must be true or false");
            return -1;
        }
        t->follow_redirects = cJSON_IsTrue(v);
    }

    v = found[F_IDEMPOTENCY_KEY];
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v) || !validate_idempotency_key(v->valuestring)) {
            api_error_set(err, 400, "invalid_field", "idempotencyKey",
                          "idempotencyKey must be 1 to %d printable ASCII characters",
                          VALIDATE_MAX_IDEMPOTENCY_KEY);
            return -1;
        }
        t->idempotency_key = xstrdup(v->valuestring);
    }
    return 0;
}

static int by_member_name(const void *a, const void *b)
{
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/* Puts the members of every object in v in name order (names are unique:
 * validate_json refuses duplicates), keeping cJSON's list links (the first
 * item's prev is the last). Depth is bounded by validate_json. */
static void sort_members(cJSON *v)
{
    size_t n = 0;
    for (cJSON *c = v->child; c; c = c->next, n++) sort_members(c);
    if (!cJSON_IsObject(v) || n < 2) return;
    cJSON **items = xmalloc(n * sizeof *items);
    n = 0;
    for (cJSON *c = v->child; c; c = c->next) items[n++] = c;
    qsort(items, n, sizeof *items, by_member_name);
    for (size_t i = 0; i < n; i++) {
        items[i]->prev = items[i ? i - 1 : n - 1];
        items[i]->next = i + 1 < n ? items[i + 1] : NULL;
    }
    v->child = items[0];
    free(items);
}

/* The number nodes of v's tree, depth first, are the numbers written in
 * text, in order: each becomes its exact value (util_json_number_exact),
 * which cJSON prints as it is (a raw node). Numbers past the last one
 * written (none, text being what v was parsed from) are left as doubles. */
static void exact_numbers(cJSON *v, const char **p, const char *end)
{
    for (cJSON *c = v->child; c; c = c->next) {
        if (cJSON_IsNumber(c)) {
            while (*p < end && **p != '-' && (**p < '0' || **p > '9'))
                *p = **p == '"' ? util_json_skip_value(*p, end) : *p + 1;
            size_t n = util_json_number_len(*p, (size_t)(end - *p));
            if (n == 0) return;
            c->type = cJSON_Raw;
            c->valuestring = util_json_number_exact(*p, n);
            *p += n;
        } else if (c->child) {
            exact_numbers(c, p, end);
        }
    }
}

/* SHA-256 (hex) of the request without its idempotencyKey: what makes two
 * requests with one key "the same request". JSON as parsed, so spacing,
 * the spelling of a number and the order of object members do not count;
 * numbers by their exact value when text (len bytes), what doc was parsed
 * from, is known. Builds before 2026-11-30 hashed numbers as doubles, and
 * before 2026-11-29 the members in the order they came (!sorted): the
 * exact form hashes a line before the JSON, so that it never hashes what an
 * older form does (12 and 12.0000000000000001 print alike as doubles). */
static void request_hash(cJSON *doc, const char *text, size_t len, bool sorted, char out[65])
{
    static const char exact_form[] = "exact\n";
    cJSON *key = cJSON_DetachItemFromObjectCaseSensitive(doc, "idempotencyKey");
    const char *p = text;
    if (text) exact_numbers(doc, &p, text + len);
    if (sorted) sort_members(doc);
    char *printed = cJSON_PrintUnformatted(doc);
    size_t n = strlen(printed), at = text ? sizeof exact_form - 1 : 0;
    char *hashed = xmalloc(at + n);
    memcpy(hashed, exact_form, at);
    memcpy(hashed + at, printed, n);
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)hashed, at + n, md);
    util_hex(md, SHA256_DIGEST_LENGTH, out);
    free(hashed);
    free(printed);
    if (key) cJSON_AddItemToObject(doc, "idempotencyKey", key);
}

void validate_request_hash_legacy(const char *body, size_t len, bool sorted, char out[65])
{
    cJSON *doc = cJSON_ParseWithLength(body, len);
    out[0] = '\0';
    if (cJSON_IsObject(doc)) request_hash(doc, NULL, 0, sorted, out);
    cJSON_Delete(doc);
}

/* The create of one object, doc: the body of POST /v1/tasks, or one item of
 * a batch. text (len bytes) is how doc is written, for payload and metadata
 * as written; NULL when that is not known (cJSON's rendering is kept then).
 * doc's members may be put in name order (the hash). */
static int create_from_doc(cJSON *doc, const char *text, size_t len, const struct config *cfg,
                           const struct netpolicy *np, int64_t now_ms, struct task **out,
                           char hash[65], bool keyed, struct api_error *err)
{
    *out = NULL;
    const cJSON *found[F_COUNT];
    if (check_known(doc, F_COUNT, found, err)) return -1;
    struct task *t = xcalloc(1, sizeof *t);
    if (apply_fields(found, text, len, t, cfg, np, now_ms, true, err)) {
        task_free(t);
        return -1;
    }
    /* Only a keyed request is ever compared: the others skip the work. */
    if (hash && (keyed || t->idempotency_key)) request_hash(doc, text, len, true, hash);
    else if (hash) hash[0] = '\0';
    t->status = TASK_QUEUED;
    *out = t;
    return 0;
}

int validate_task_create(const char *body, size_t len, const struct config *cfg,
                         const struct netpolicy *np, int64_t now_ms, struct task **out,
                         char hash[65], bool keyed, struct api_error *err)
{
    *out = NULL;
    util_json_skip_bom(&body, &len); /* for the raw payload and metadata too */
    cJSON *doc = json_doc(body, len, VALIDATE_MAX_DEPTH, err);
    if (!doc) return -1;
    int rc = -1;
    if (!cJSON_IsObject(doc))
        api_error_set(err, 400, "invalid_body", NULL, "the request body must be a JSON object");
    else
        rc = create_from_doc(doc, body, len, cfg, np, now_ms, out, hash, keyed, err);
    cJSON_Delete(doc);
    return rc;
}

/* ---- batch create ---- */

/* Where each item of the array written at p (its '[') is written:
 * items[i].text and .len, for at most max items. Returns how many, or 0
 * when the text does not hold an array of at most max items as expected
 * (then no item's text is used). */
static size_t item_spans(const char *p, const char *end, struct validate_batch_item *items, size_t max)
{
    if (!p || p >= end || *p != '[') return 0;
    p = util_json_skip_ws(p + 1, end);
    size_t i = 0;
    while (p < end && *p != ']') {
        const char *v = p, *vend = util_json_skip_value(p, end);
        if (i == max || vend == v) return 0;
        items[i].text = v;
        items[i].len = (size_t)(vend - v);
        i++;
        p = util_json_skip_ws(vend, end);
        if (p < end && *p == ',') p = util_json_skip_ws(p + 1, end);
    }
    return i;
}

/* item_spans of the "tasks" member of a batch body (its name may be written
 * with escapes). */
static size_t tasks_item_spans(const char *body, size_t len, struct validate_batch_item *items, size_t max)
{
    const char *v;
    size_t vlen;
    return util_json_member(body, len, "tasks", &v, &vlen) ? item_spans(v, v + vlen, items, max) : 0;
}

/* Sets err to an item's refusal: the field named as tasks[i].field, the
 * message after "tasks[i]: ". */
static void item_error(struct api_error *err, size_t i, const struct api_error *item)
{
    char where[32];
    snprintf(where, sizeof where, "tasks[%zu]", i);
    api_error_within(err, where, item);
}

/* The whole body failed the JSON checks. When the fault is inside one item
 * (a member twice, a number out of range, nesting too deep) err names it,
 * as a field's refusal does: each item's text is checked alone, as the
 * body of a create, and the first that fails is named. Left as it is when
 * the items cannot be told apart (broken syntax) or none fails alone. */
static void name_item_at_fault(const char *body, size_t len, struct api_error *err)
{
    struct validate_batch_item *items = xcalloc(VALIDATE_MAX_BATCH, sizeof *items);
    size_t n = tasks_item_spans(body, len, items, VALIDATE_MAX_BATCH);
    for (size_t i = 0; i < n; i++) {
        struct api_error e;
        cJSON *one = json_doc(items[i].text, items[i].len, VALIDATE_MAX_DEPTH, &e);
        if (!one) {
            item_error(err, i, &e);
            break;
        }
        cJSON_Delete(one);
    }
    free(items);
}

static int by_key(const void *a, const void *b)
{
    const struct validate_batch_item *x = *(const struct validate_batch_item *const *)a;
    const struct validate_batch_item *y = *(const struct validate_batch_item *const *)b;
    int c = strcmp(x->task->idempotency_key, y->task->idempotency_key);
    return c ? c : (x < y ? -1 : x > y);
}

/* Refuses two items with one idempotencyKey, naming the later one. */
static int check_keys_unique(struct validate_batch_item *items, size_t n, struct api_error *err)
{
    struct validate_batch_item **keyed = xmalloc((n ? n : 1) * sizeof *keyed);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (items[i].task->idempotency_key) keyed[m++] = &items[i];
    qsort(keyed, m, sizeof *keyed, by_key);
    int rc = 0;
    size_t first = 0, second = 0;
    for (size_t i = 1; i < m; i++) {
        if (strcmp(keyed[i - 1]->task->idempotency_key, keyed[i]->task->idempotency_key) != 0) continue;
        size_t a = (size_t)(keyed[i - 1] - items), b = (size_t)(keyed[i] - items);
        if (!rc || b < second) { /* the earliest second use, for a stable answer */
            first = a;
            second = b;
        }
        rc = -1;
    }
    free(keyed);
    if (rc) {
        char field[64];
        snprintf(field, sizeof field, "tasks[%zu].idempotencyKey", second);
        api_error_set(err, 400, "conflicting_fields", field,
                      "tasks[%zu] has the idempotencyKey of tasks[%zu]; each item of a batch needs "
                      "its own key (one key is one task)", second, first);
    }
    return rc;
}

void validate_batch_free(struct validate_batch_item *items, size_t n)
{
    for (size_t i = 0; items && i < n; i++) task_free(items[i].task);
    free(items);
}

int validate_task_batch(const char *body, size_t len, const struct config *cfg,
                        const struct netpolicy *np, int64_t now_ms, struct validate_batch_item **out,
                        size_t *n_out, struct api_error *err)
{
    *out = NULL;
    *n_out = 0;
    util_json_skip_bom(&body, &len);
    /* The items sit two levels down (the object, the array): each may nest
     * as deep as the body of POST /v1/tasks. */
    cJSON *doc = json_doc(body, len, VALIDATE_MAX_DEPTH + 2, err);
    if (!doc) {
        name_item_at_fault(body, len, err);
        return -1;
    }
    int rc = -1;
    struct validate_batch_item *items = NULL;
    size_t n = 0;
    const cJSON *tasks = NULL;
    if (!cJSON_IsObject(doc)) {
        api_error_set(err, 400, "invalid_body", NULL,
                      "the request body must be a JSON object: {\"tasks\": [...]}");
        goto out;
    }
    for (const cJSON *f = doc->child; f; f = f->next) {
        if (strcmp(f->string, "tasks") != 0) {
            api_error_set(err, 400, "unknown_field", f->string,
                          "unknown field '%.64s'; a batch is {\"tasks\": [...]}, each item the body of "
                          "POST /v1/tasks", f->string);
            goto out;
        }
        tasks = f;
    }
    if (!tasks) {
        api_error_set(err, 400, "missing_field", "tasks",
                      "tasks is required: an array of 1 to %d tasks, each the body of POST /v1/tasks",
                      VALIDATE_MAX_BATCH);
        goto out;
    }
    if (!cJSON_IsArray(tasks)) {
        api_error_set(err, 400, "invalid_field", "tasks",
                      "tasks must be an array of 1 to %d tasks, each the body of POST /v1/tasks",
                      VALIDATE_MAX_BATCH);
        goto out;
    }
    for (const cJSON *it = tasks->child; it && n <= VALIDATE_MAX_BATCH; it = it->next) n++;
    if (n == 0 || n > VALIDATE_MAX_BATCH) {
        api_error_set(err, 400, "invalid_field", "tasks",
                      n ? "tasks holds more than %d tasks; send them in several batches"
                        : "tasks is empty; send 1 to %d tasks",
                      VALIDATE_MAX_BATCH);
        n = 0;
        goto out;
    }
    items = xcalloc(n, sizeof *items);
    /* Each item's text, for its payload and metadata as written and the
     * exact numbers of its hash. */
    if (tasks_item_spans(body, len, items, n) != n)
        for (size_t j = 0; j < n; j++) items[j] = (struct validate_batch_item){0};
    size_t i = 0;
    for (cJSON *it = tasks->child; it; it = it->next, i++) {
        if (!cJSON_IsObject(it)) {
            char field[32];
            snprintf(field, sizeof field, "tasks[%zu]", i);
            api_error_set(err, 400, "invalid_field", field,
                          "tasks[%zu] must be a JSON object: the body POST /v1/tasks takes", i);
            goto out;
        }
        struct api_error e;
        if (create_from_doc(it, items[i].text, items[i].len, cfg, np, now_ms, &items[i].task,
                            items[i].hash, false, &e)) {
            item_error(err, i, &e);
            goto out;
        }
    }
    if (check_keys_unique(items, n, err)) goto out;
    *out = items;
    *n_out = n;
    items = NULL;
    rc = 0;
out:
    validate_batch_free(items, n);
    cJSON_Delete(doc);
    return rc;
}

int validate_task_overrides(const char *body, size_t len, const struct config *cfg,
                            const struct netpolicy *np, int64_t now_ms, struct task *t,
                            struct api_error *err)
{
    t->run_at_ms = now_ms;
    util_json_skip_bom(&body, &len); /* for the raw payload and metadata too */
    if (len == 0) return 0; /* no overrides: replay as it was */
    cJSON *doc = json_doc(body, len, VALIDATE_MAX_DEPTH, err);
    if (!doc) return -1;
    int rc = -1;
    if (!cJSON_IsObject(doc)) {
        api_error_set(err, 400, "invalid_body", NULL, "the request body must be a JSON object of "
                      "fields to change, or empty");
        goto out;
    }
    /* Everything a create takes except the idempotency key. */
    const cJSON *found[F_COUNT];
    if (check_known(doc, F_COUNT - 1, found, err)) goto out;
    rc = apply_fields(found, body, len, t, cfg, np, now_ms, false, err);
out:
    cJSON_Delete(doc);
    return rc;
}

void validate_apply_defaults(struct task *t, const struct config *cfg, const struct queue_settings *qs)
{
    if (t->max_retries < 0)
        t->max_retries = qs && qs->default_retries >= 0 ? qs->default_retries : cfg->default_retries;
    if (t->timeout_ms <= 0)
        t->timeout_ms = qs && qs->default_timeout_ms > 0 ? qs->default_timeout_ms : cfg->default_timeout_ms;
}
