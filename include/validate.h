/*
 * validate: turns the body of POST /v1/tasks into a task, or into an API
 * error that names the field and says what to fix. Strict on purpose: an
 * unknown field is an error (a typo such as "callbackURL" must not silently
 * drop the target), as are duplicate keys, invalid UTF-8, "\u0000", trailing
 * garbage, nesting deeper than VALIDATE_MAX_DEPTH and numbers out of range
 * (refused, never clamped).
 *
 * Pure; thread-safe.
 */
#ifndef AQ_VALIDATE_H
#define AQ_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "apierr.h"
#include "config.h"
#include "netpolicy.h"
#include "scheduler.h"
#include "task.h"

#define VALIDATE_MAX_DEPTH 32
#define VALIDATE_MAX_URL 8192
#define VALIDATE_MAX_HEADERS 64
#define VALIDATE_MAX_HEADER_BYTES 16384
#define VALIDATE_MAX_QUEUE_NAME 64
#define VALIDATE_MAX_IDEMPOTENCY_KEY 255

/* Parses and checks a JSON document (UTF-8, depth, duplicates, NUL escapes,
 * trailing bytes). Returns the document (caller frees with cJSON_Delete) or
 * NULL with err set to a 400. */
cJSON *validate_json(const char *body, size_t len, struct api_error *err);

/* Builds a queued task from a create request. On success returns 0, *out
 * (caller frees with task_free) and, when hash is not NULL and the request
 * is keyed (keyed: an Idempotency-Key header came with it, or the body has
 * idempotencyKey), the request's hash for idempotency (hex SHA-256 of the
 * request without its idempotencyKey); unkeyed, hash is set to "". The id, seq and times other than run_at are left for the
 * caller, and retries and timeout are -1 and 0 when the request gave none
 * (see validate_apply_defaults). On failure returns -1 with err set. */
int validate_task_create(const char *body, size_t len, const struct config *cfg,
                         const struct netpolicy *np, int64_t now_ms, struct task **out,
                         char hash[65], bool keyed, struct api_error *err);

/* Most tasks one POST /v1/tasks/batch creates. */
#define VALIDATE_MAX_BATCH 1000

/* One item of a batch create, as validate_task_batch leaves it. */
struct validate_batch_item {
    struct task *task;  /* as validate_task_create makes it */
    char hash[65];      /* the item's request hash when it has idempotencyKey, else "" */
    const char *text;   /* where the item is written in the body (NULL: not found as */
    size_t len;         /* written), for validate_request_hash_legacy */
};

/* Builds the tasks of a batch create (POST /v1/tasks/batch: {"tasks": [...]},
 * 1 to VALIDATE_MAX_BATCH items, each the body of POST /v1/tasks checked as
 * validate_task_create checks one, keyed or not by its own idempotencyKey).
 * All or nothing: returns 0 with *out (free with validate_batch_free) and
 * *n, or -1 with err set for the first item at fault, its field named
 * tasks[i].field. Two items with one idempotencyKey are refused. The items'
 * text points into body. */
int validate_task_batch(const char *body, size_t len, const struct config *cfg,
                        const struct netpolicy *np, int64_t now_ms, struct validate_batch_item **out,
                        size_t *n, struct api_error *err);
void validate_batch_free(struct validate_batch_item *items, size_t n);

/* The request hash as builds before 2026-11-30 made it, numbers as
 * doubles, with object members in name order (sorted), or as builds before
 * 2026-11-29 made it, in the order they came (!sorted); body already
 * validated. An Idempotency-Key stored by such a build, within its window
 * after an upgrade, still matches the same request. "" when body is not an
 * object. */
void validate_request_hash_legacy(const char *body, size_t len, bool sorted, char out[65]);

/* Applies the overrides of a replay (POST /v1/tasks/{id}/retry: any create
 * field but idempotencyKey; an empty body changes nothing) to t, and sets
 * t->run_at_ms (now, or from delay/runAt). Returns 0, or -1 with err set
 * (t may then be partly changed: discard it). */
int validate_task_overrides(const char *body, size_t len, const struct config *cfg,
                            const struct netpolicy *np, int64_t now_ms, struct task *t,
                            struct api_error *err);

/* Fills retries and timeout the request left out, from the queue's settings
 * (qs may be NULL) or the daemon's defaults. */
void validate_apply_defaults(struct task *t, const struct config *cfg, const struct queue_settings *qs);

/* True when key is a valid idempotency key: 1 to 255 printable ASCII. */
bool validate_idempotency_key(const char *key);

/* True when name is a valid queue name: 1 to 64 of [A-Za-z0-9._-]. */
bool validate_queue_name(const char *name);

#endif
