/*
 * fuzz_validate: libFuzzer harness for the create-request validator
 * (validate_json, validate_task_create, validate_task_overrides,
 * validate_task_batch), with a
 * fixed configuration from config_load and two destination policies (the
 * default, and one with allow and deny lists).
 *
 * Besides the sanitizers, it checks what an accepted request promises:
 * its URLs pass the destination policy again, its header values carry no
 * CR, LF or NUL, retries, timeout and run time are within the limits, and
 * payload and metadata are kept as the same JSON values they were sent as;
 * and the task as written back, or with the input as a target's response
 * in its result (task and webhook), is strict JSON. The input is also read
 * as a batch body, and as the one item of a batch: what a create accepts, a
 * batch of it accepts as the same task (the same text kept, the same hash).
 * A broken promise aborts, so libFuzzer keeps the input as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "config.h"
#include "netpolicy.h"
#include "task.h"
#include "util.h"
#include "validate.h"

#define NOW_MS 1790000000000LL /* a fixed "now": runs repeat exactly */

struct policy {
    struct config cfg;
    struct netpolicy *np;
};

static struct policy policies[2];
static const char base_body[] = "{\"callbackUrl\":\"https://example.com/run\",\"payload\":{\"a\":1}}";

static void load(struct policy *p, int argc, char **argv)
{
    char err[1024];
    enum config_mode mode;
    char *envp[] = {NULL};
    if (config_load(&p->cfg, argc, argv, envp, &mode, err, sizeof err) != EXIT_OK) {
        fprintf(stderr, "fuzz_validate: config: %s\n", err);
        abort();
    }
    p->np = netpolicy_new(&p->cfg, err, sizeof err);
    if (!p->np) {
        fprintf(stderr, "fuzz_validate: netpolicy: %s\n", err);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char *plain[] = {"fuzz", NULL};
    char *lists[] = {"fuzz", "--allow-destinations", "10.0.0.0/8,fd00::/8,api.internal,.svc.test",
                     "--deny-destinations", "169.254.169.254,evil.test,.bad.test", "--max-retries", "10",
                     "--max-timeout", "1h", "--max-delay", "1d", NULL};
    load(&policies[0], 1, plain);
    load(&policies[1], 11, lists);
    return 0;
}

static void check_url(const struct policy *p, const char *url)
{
    char why[256];
    if (url && netpolicy_check_url(p->np, url, why, sizeof why) != NETPOLICY_URL_OK) {
        fprintf(stderr, "accepted a URL the policy refuses: %s (%s)\n", url, why);
        abort();
    }
}

/* What every accepted task must satisfy. */
static void check_task(const struct policy *p, const struct task *t)
{
    if (!t->callback_url || !t->method || !t->queue) abort();
    check_url(p, t->callback_url);
    check_url(p, t->webhook_url);
    if (t->max_retries < -1 || t->max_retries > p->cfg.max_retries) abort();
    if (t->timeout_ms < 0 || t->timeout_ms > p->cfg.max_timeout_ms) abort();
    if (t->run_at_ms < NOW_MS || t->run_at_ms > NOW_MS + p->cfg.max_delay_ms) abort();
    if (!validate_queue_name(t->queue)) abort();
    if (t->idempotency_key && !validate_idempotency_key(t->idempotency_key)) abort();
    if (t->body && strlen(t->body) != t->body_len) abort();
    if (t->headers_json) {
        cJSON *h = cJSON_Parse(t->headers_json);
        if (!cJSON_IsObject(h)) abort();
        for (const cJSON *it = h->child; it; it = it->next) {
            if (!cJSON_IsString(it) || strpbrk(it->valuestring, "\r\n") || strpbrk(it->string, "\r\n :"))
                abort();
        }
        cJSON_Delete(h);
    }
}

/* An RFC 8259 reader of its own, written from the grammar, to judge what
 * the daemon writes: cJSON cannot, it reads 01, 1. and -.5 as numbers. It
 * only says whether s[*i..] starts with one JSON value, and moves *i past it
 * and the whitespace after it. */
struct strict {
    const char *s;
    size_t n, i;
};

static bool at(const struct strict *j, char c)
{
    return j->i < j->n && j->s[j->i] == c;
}

static bool digit_at(const struct strict *j)
{
    return j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9';
}

static void skip_ws(struct strict *j)
{
    while (j->i < j->n && strchr(" \t\n\r", j->s[j->i]) && j->s[j->i]) j->i++;
}

static bool digits(struct strict *j)
{
    size_t from = j->i;
    while (digit_at(j)) j->i++;
    return j->i > from;
}

static bool strict_number(struct strict *j)
{
    if (at(j, '-')) j->i++;
    if (at(j, '0')) j->i++;
    else if (!digits(j)) return false;
    if (at(j, '.')) {
        j->i++;
        if (!digits(j)) return false;
    }
    if (at(j, 'e') || at(j, 'E')) {
        j->i++;
        if (at(j, '+') || at(j, '-')) j->i++;
        if (!digits(j)) return false;
    }
    return true;
}

static bool strict_string(struct strict *j)
{
    j->i++; /* the opening quote */
    while (j->i < j->n) {
        unsigned char c = (unsigned char)j->s[j->i++];
        if (c == '"') return true;
        if (c < 0x20) return false;
        if (c != '\\') continue;
        if (j->i >= j->n) return false;
        c = (unsigned char)j->s[j->i++];
        if (c == 'u') {
            for (int k = 0; k < 4; k++, j->i++)
                if (j->i >= j->n || !strchr("0123456789abcdefABCDEF", j->s[j->i]) || !j->s[j->i])
                    return false;
        } else if (!c || !strchr("\"\\/bfnrt", c)) {
            return false;
        }
    }
    return false;
}

static bool strict_value(struct strict *j, int depth)
{
    if (depth > 200 || j->i >= j->n) return false;
    char c = j->s[j->i];
    bool ok;
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->i++;
        skip_ws(j);
        if (at(j, close)) {
            j->i++;
        } else {
            for (;;) {
                if (c == '{') {
                    if (!at(j, '"') || !strict_string(j)) return false;
                    skip_ws(j);
                    if (!at(j, ':')) return false;
                    j->i++;
                    skip_ws(j);
                }
                if (!strict_value(j, depth + 1)) return false;
                if (at(j, close)) break;
                if (!at(j, ',')) return false;
                j->i++;
                skip_ws(j);
            }
            j->i++;
        }
        ok = true;
    } else if (c == '"') {
        ok = strict_string(j);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        ok = strict_number(j);
    } else {
        static const char *const words[] = {"true", "false", "null"};
        ok = false;
        for (size_t k = 0; k < 3 && !ok; k++) {
            size_t len = strlen(words[k]);
            if (j->n - j->i >= len && memcmp(j->s + j->i, words[k], len) == 0) {
                j->i += len;
                ok = true;
            }
        }
    }
    skip_ws(j);
    return ok;
}

static bool strict_json(const char *s, size_t n)
{
    struct strict j = {s, n, 0};
    skip_ws(&j);
    return strict_value(&j, 0) && j.i == n;
}

/* What the daemon writes must be strict JSON, whatever it was given: valid
 * UTF-8, one value by RFC 8259's grammar with nothing after it, and none of
 * what the daemon refuses even where JSON allows it (\u0000 in strings). */
static void check_json_out(char *text, const char *what)
{
    size_t n = strlen(text);
    if (!strict_json(text, n) || !util_utf8_valid(text, n) || util_json_strings_bad(text, n)) {
        fprintf(stderr, "%s written as invalid JSON: %.2000s\n", what, text);
        abort();
    }
    free(text);
}

/* The input as a target's response body, under a JSON content type and
 * under none: the task read back (GET) and its webhook carry it as the
 * result, as JSON when it is JSON, else as text or base64. */
static void check_result(const char *data, size_t size)
{
    static const char *const types[] = {"{\"content-type\":\"application/json\"}", NULL};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        struct task *t = xcalloc(1, sizeof *t);
        memcpy(t->id, "01a22724-a7a0-77df-b4c5-b49e008cbb95", sizeof t->id);
        t->queue = xstrdup("default");
        t->method = xstrdup("POST");
        t->callback_url = xstrdup("https://example.com/run");
        t->status = TASK_COMPLETED;
        t->response_status = 200;
        t->response_headers_json = types[i] ? xstrdup(types[i]) : NULL;
        t->response_body = xmalloc(size + 1);
        memcpy(t->response_body, data, size);
        t->response_body[size] = '\0';
        t->response_body_len = size;
        check_json_out(task_json(t, NULL, 0, NULL, true), "a task with this result");
        check_json_out(task_webhook_payload(t), "a webhook with this result");
        task_free(t);
    }
}

/* payload and metadata are kept as the client wrote them: the text kept
 * must be the same JSON value as the member in the parsed request. */
static void check_as_written(const cJSON *doc, const char *key, const char *kept)
{
    const cJSON *member = cJSON_GetObjectItemCaseSensitive(doc, key);
    if (!kept) {
        if (member && !cJSON_IsNull(member)) abort();
        return;
    }
    cJSON *again = cJSON_Parse(kept);
    if (!again || !cJSON_Compare(again, member, true)) {
        fprintf(stderr, "%s kept as %s, not the value sent\n", key, kept);
        abort();
    }
    cJSON_Delete(again);
}

static bool same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* t, made by a create from the input, against the batch of one made of it. */
static void check_batch_of_one(const struct policy *p, const char *body, size_t size, const struct task *t,
                               const char *hash)
{
    static const char head[] = "{\"tasks\": [", tail[] = "]}";
    char *wrapped = xmalloc(sizeof head - 1 + size + sizeof tail);
    memcpy(wrapped, head, sizeof head - 1);
    memcpy(wrapped + sizeof head - 1, body, size);
    memcpy(wrapped + sizeof head - 1 + size, tail, sizeof tail - 1);
    size_t len = sizeof head - 1 + size + sizeof tail - 1;
    struct validate_batch_item *items = NULL;
    size_t n = 0;
    struct api_error err;
    if (validate_task_batch(wrapped, len, &p->cfg, p->np, NOW_MS, &items, &n, &err) != 0) {
        fprintf(stderr, "a create accepts what a batch of it refuses (%s %s: %s)\n", err.code, err.field,
                err.message);
        abort();
    }
    const struct task *b = items[0].task;
    if (n != 1 || !same_text(b->callback_url, t->callback_url) || !same_text(b->method, t->method) ||
        !same_text(b->headers_json, t->headers_json) || !same_text(b->body, t->body) ||
        b->body_kind != t->body_kind || !same_text(b->webhook_url, t->webhook_url) ||
        b->max_retries != t->max_retries || b->timeout_ms != t->timeout_ms || b->run_at_ms != t->run_at_ms ||
        !same_text(b->queue, t->queue) || !same_text(b->metadata_json, t->metadata_json) ||
        b->follow_redirects != t->follow_redirects || !same_text(b->idempotency_key, t->idempotency_key) ||
        (t->idempotency_key && strcmp(items[0].hash, hash) != 0)) {
        fprintf(stderr, "a batch of one is not the task its create makes\n");
        abort();
    }
    validate_batch_free(items, n);
    free(wrapped);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy: any read past the length is caught by ASan. */
    char *body = malloc(size ? size : 1);
    memcpy(body, data, size);
    struct api_error err;

    cJSON *doc = validate_json(body, size, &err);

    for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++) {
        const struct policy *p = &policies[i];
        struct task *t = NULL;
        char hash[65];
        if (validate_task_create(body, size, &p->cfg, p->np, NOW_MS, &t, hash, true, &err) == 0) {
            check_task(p, t);
            if (!doc) abort(); /* a create accepted what the JSON gate refused */
            check_as_written(doc, "payload", t->body_kind == TASK_BODY_JSON ? t->body : NULL);
            check_as_written(doc, "metadata", t->metadata_json);
            check_json_out(task_json(t, NULL, 0, NULL, false), "an accepted task");
            if (strlen(hash) != 64) abort();
            /* A byte order mark is skipped before a body, not inside one. */
            if (size < 3 || memcmp(body, "\xEF\xBB\xBF", 3) != 0) check_batch_of_one(p, body, size, t, hash);
            task_free(t);
        } else if (t || err.status < 400 || err.status > 499 || !err.code) {
            abort();
        }
        /* The same bytes as a batch: each item accepted is a task. */
        struct validate_batch_item *items = NULL;
        size_t n = 0;
        if (validate_task_batch(body, size, &p->cfg, p->np, NOW_MS, &items, &n, &err) == 0) {
            if (!doc || n < 1 || n > VALIDATE_MAX_BATCH) abort();
            for (size_t k = 0; k < n; k++) {
                check_task(p, items[k].task);
                if (items[k].task->idempotency_key && strlen(items[k].hash) != 64) abort();
            }
            validate_batch_free(items, n);
        } else if (items || n || err.status != 400 || !err.code) {
            abort();
        }
        /* The same bytes as the overrides of a replay. */
        struct task *base = NULL;
        if (validate_task_create(base_body, sizeof base_body - 1, &p->cfg, p->np, NOW_MS, &base, NULL,
                                 false, &err) != 0)
            abort();
        if (validate_task_overrides(body, size, &p->cfg, p->np, NOW_MS, base, &err) == 0)
            check_task(p, base);
        task_free(base);
    }
    cJSON_Delete(doc);
    check_result(body, size);
    free(body);
    return 0;
}
