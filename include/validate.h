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
#include "task.h"

#define VALIDATE_MAX_DEPTH 32
#define VALIDATE_MAX_URL 8192
#define VALIDATE_MAX_HEADERS 64
#define VALIDATE_MAX_HEADER_BYTES 16384
#define VALIDATE_MAX_QUEUE_NAME 64

/* Parses and checks a JSON document (UTF-8, depth, duplicates, NUL escapes,
 * trailing bytes). Returns the document (caller frees with cJSON_Delete) or
 * NULL with err set to a 400. */
cJSON *validate_json(const char *body, size_t len, struct api_error *err);

/* Builds a queued task from a create request. On success returns 0 and
 * *out (caller frees with task_free); the id, seq and times other than
 * run_at are left for the caller. On failure returns -1 with err set. */
int validate_task_create(const char *body, size_t len, const struct config *cfg, int64_t now_ms,
                         struct task **out, struct api_error *err);

/* True when name is a valid queue name: 1 to 64 of [A-Za-z0-9._-]. */
bool validate_queue_name(const char *name);

#endif
