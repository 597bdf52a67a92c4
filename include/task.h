/*
 * task: the task, its life (queued -> running -> completed | failed, and
 * cancelled), the record of one attempt, and the JSON a user sees: the task
 * object of the API and the webhook payload. Both are built here so the two
 * never disagree about what a result is.
 *
 * Pure data and functions; thread-safe as long as one task is not shared.
 */
#ifndef AQ_TASK_H
#define AQ_TASK_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "id.h"
#include "jsonw.h"

enum task_status {
    TASK_QUEUED = 0,
    TASK_RUNNING,
    TASK_COMPLETED,
    TASK_FAILED,
    TASK_CANCELLED,
};

enum task_body_kind {
    TASK_BODY_NONE = 0, /* no request body */
    TASK_BODY_JSON = 1, /* from "payload": JSON text */
    TASK_BODY_RAW = 2,  /* from "body": bytes as given */
};

/* One attempt at calling the target. */
struct attempt {
    int n;                 /* 1-based */
    int64_t started_at_ms;
    int64_t finished_at_ms;
    int64_t duration_ms;   /* monotonic, so a clock jump cannot skew it */
    int status_code;       /* 0 when no HTTP response arrived */
    char *error_code;      /* NULL on success */
    char *error_message;
};

/* One webhook delivery attempt. */
struct webhook_attempt {
    char webhook_id[48];
    int n;
    int64_t started_at_ms;
    int64_t finished_at_ms;
    int64_t duration_ms;
    int status_code;
    char *error;
};

/* The state of a task's webhook delivery (the outbox row). */
struct webhook_state {
    char id[48];           /* "msg_" + uuid: the webhook-id header */
    char *url;             /* where this message goes (the task's webhookUrl when it was written) */
    char *status;          /* "pending", "delivering", "delivered", "failed" */
    int attempts;
    int64_t next_at_ms;
    int64_t delivered_at_ms;
    int last_status_code;
    char *last_error;
};

struct task {
    int64_t seq;           /* store's insertion order; 0 until stored */
    char id[ID_LEN];
    char *tenant;          /* owner; "" when keys have no tenants */
    char *queue;
    char *host;            /* callbackUrl's host[:port], lower case */
    enum task_status status;
    char *method;
    char *callback_url;
    char *headers_json;    /* JSON object of string values, or NULL */
    char *body;            /* bytes sent to the target, or NULL */
    size_t body_len;
    enum task_body_kind body_kind;
    char *webhook_url;     /* or NULL */
    char *metadata_json;   /* any JSON value, or NULL */
    int max_retries;
    int64_t timeout_ms;
    bool follow_redirects; /* follow up to max_redirects, each checked again */
    int attempts;          /* attempts recorded so far, over all replays */
    int replays;           /* times replayed with POST /v1/tasks/{id}/retry */
    int attempts_uncounted; /* not counted against retries: made before the last replay,
                               or interrupted by the daemon's stop */
    char *idempotency_key; /* or NULL */
    char *schedule;        /* the schedule that made it, or NULL */
    int64_t run_at_ms;     /* not before this */
    int64_t created_at_ms;
    int64_t updated_at_ms;
    int64_t started_at_ms; /* start of the current or last attempt, 0 if none */
    int64_t finished_at_ms;
    int64_t lease_until_ms;
    int64_t claim_token;   /* fences a finished attempt against a newer claim */
    /* The last response and error. */
    int response_status;
    char *response_headers_json;
    char *response_body;
    size_t response_body_len;
    int64_t response_ms;
    char *error_code;
    char *error_message;
};

const char *task_status_name(enum task_status s);
/* Returns 0 and sets *out, or -1 for an unknown name. */
int task_status_parse(const char *name, enum task_status *out);
bool task_status_final(enum task_status s);

/* Frees everything the task owns and the task itself; NULL is a no-op. */
void task_free(struct task *t);
/* Stored client JSON (payload, metadata) that an earlier version let in
 * though JSON does not allow it (cJSON reads 01, 1. and a \u without hex
 * digits): replaces *json with cJSON's reading of it written again (NULL
 * when cJSON cannot read it either) and sets *len (when not NULL). JSON
 * that passes util_json_strings_bad is left alone. */
void task_json_repair(char **json, size_t *len);
/* A header object the daemon stored itself (a task's headers, a target's
 * response headers): left alone when it is a JSON object JSON allows, else
 * freed and set to NULL (a damaged row shows no headers rather than broken
 * output, and the call goes out without them). */
void task_json_object_check(char **json);
/* A deep copy (free with task_free). */
struct task *task_dup(const struct task *t);
void attempt_clear(struct attempt *a);
void webhook_state_clear(struct webhook_state *w);
void webhook_attempt_clear(struct webhook_attempt *a);
/* JSON of one attempt / one webhook delivery attempt, written to w. */
void attempt_write_json(struct jsonw *w, const struct attempt *a);
void webhook_attempt_write_json(struct jsonw *w, const struct webhook_attempt *a);
/* Extracts "host[:port]" (lower case, user-info dropped) from an http(s)
 * URL; caller frees. Never NULL. */
char *task_url_host(const char *url);

/* The API's task object (docs/api.md), written straight as text. Its
 * "result" is the target's response body as users see it: the JSON the
 * target wrote when it is JSON, else a string (base64 when it is not UTF-8
 * without NULs, with "resultEncoding": "base64"). "attemptHistory" is there
 * when history is true or n > 0; "webhook" when webhook is not NULL. */
void task_write_json(struct jsonw *w, const struct task *t, const struct attempt *attempts, size_t n,
                     const struct webhook_state *webhook, bool history);
/* task_write_json's members alone, inside an object the caller opened (to
 * add members of its own). */
void task_write_members(struct jsonw *w, const struct task *t, const struct attempt *attempts, size_t n,
                        const struct webhook_state *webhook, bool history);
/* The same as a string the caller frees. */
char *task_json(const struct task *t, const struct attempt *attempts, size_t n,
                const struct webhook_state *webhook, bool history);

/* A live-feed event: {"change", "id", "status", "queue", "attempts",
 * "runAt", "updatedAt", "statusCode", "error"}. Caller frees. */
char *task_event_json(const struct task *t, const char *change);

/* The webhook body for a task in a final state (see docs/api.md). Returns
 * a new string the caller frees. */
char *task_webhook_payload(const struct task *t);

#endif
