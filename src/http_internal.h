/*
 * http_internal: what the HTTP modules share: the server state, the
 * per-request context, and response helpers. http_api.c owns the server and
 * routing; http_tasks.c and http_queues.c hold the handlers.
 */
#ifndef AQ_HTTP_INTERNAL_H
#define AQ_HTTP_INTERNAL_H

#include <microhttpd.h>
#include <stdatomic.h>

#include "apierr.h"
#include "cidr.h"
#include "http_api.h"
#include "id.h"
#include "longpoll.h"
#include "task.h"
#include "util.h"
#include "validate.h"

struct http_api {
    struct http_deps deps;
    bool metrics_only;
    const struct config *cfg;
    struct auth *auth;
    const struct netpolicy *np;
    struct cidr *trusted;  /* trust_proxy */
    size_t n_trusted;
    struct store *store;
    struct writer *writer;
    struct longpoll *longpoll;
    struct events *events;
    struct schedule_timer *timer; /* NULL on the metrics-only API */
    struct MHD_Daemon *daemon;
    int listen_fd;
    atomic_bool quiescing;
    atomic_int active;     /* requests between first call and completion */
    atomic_int committing; /* writes suspended until their commit */
};

enum route {
    ROUTE_NONE,
    ROUTE_HEALTH,
    ROUTE_READY,
    ROUTE_TASKS,          /* /v1/tasks */
    ROUTE_TASKS_CANCEL,   /* /v1/tasks/cancel */
    ROUTE_TASKS_RETRY,    /* /v1/tasks/retry */
    ROUTE_TASKS_BATCH,    /* /v1/tasks/batch */
    ROUTE_TASK,           /* /v1/tasks/{id} */
    ROUTE_TASK_ATTEMPTS,  /* /v1/tasks/{id}/attempts */
    ROUTE_TASK_CANCEL,    /* /v1/tasks/{id}/cancel */
    ROUTE_TASK_RETRY,     /* /v1/tasks/{id}/retry */
    ROUTE_QUEUES,         /* /v1/queues */
    ROUTE_QUEUE,          /* /v1/queues/{name} */
    ROUTE_QUEUE_PAUSE,    /* /v1/queues/{name}/pause */
    ROUTE_QUEUE_RESUME,   /* /v1/queues/{name}/resume */
    ROUTE_SCHEDULES,      /* /v1/schedules */
    ROUTE_SCHEDULE,       /* /v1/schedules/{name} */
    ROUTE_SCHEDULE_PAUSE, /* /v1/schedules/{name}/pause */
    ROUTE_SCHEDULE_RESUME,/* /v1/schedules/{name}/resume */
    ROUTE_SCHEDULE_RUN,   /* /v1/schedules/{name}/run */
    ROUTE_EVENTS,         /* /v1/events */
    ROUTE_STATS,          /* /v1/stats */
    ROUTE_WHOAMI,         /* /v1/whoami */
    ROUTE_METRICS,        /* /metrics */
    ROUTE_ROOT,           /* / */
    ROUTE_DASHBOARD,      /* /dashboard/... */
};

enum req_state { REQ_READING, REQ_COMMITTING, REQ_COMMITTED, REQ_WAITING };

struct request;
struct sched_req;
struct schedule_timer;
typedef int (*write_apply_fn)(struct writer_txn *tx, struct request *r);
typedef enum MHD_Result (*write_finish_fn)(struct request *r);

struct request {
    struct http_api *api;
    struct MHD_Connection *conn;
    struct principal who;     /* the key the request authenticated with */
    int status;               /* the status answered, for metrics */
    int64_t started_us;       /* arrival, for the accept latency */
    char asset[64];           /* ROUTE_DASHBOARD: the file asked for */
    struct events_sub *sub;   /* ROUTE_EVENTS */
    enum route route;
    const char *method;
    char id[ID_LEN];          /* {id}; "" when malformed */
    char name[72];            /* {name} */
    bool name_valid;
    struct buf body;
    bool too_large;           /* the body went past max_body_bytes: 413 at its end */
    size_t header_bytes;      /* nonzero: the headers went past http_memory_limit, 431 at the end */
    size_t discarded;         /* body bytes dropped after the cap */
    bool json_if_body;        /* a chunked replay: its Content-Type is checked if a body came */
    int64_t wait_deadline_ms; /* a long-poll's end (monotonic) */
    enum req_state state;

    /* A write: apply runs on the writer thread, finish answers after. */
    struct writer_op op;
    write_apply_fn apply;
    write_finish_fn finish;
    int commit_rc;
    bool again;               /* bulk: submit the op once more */

    /* Results the write leaves for finish. */
    struct task *task;
    char hash[65];
    char *response;           /* a prepared body */
    char replay_id[ID_LEN];   /* idempotent replay: the first task */
    struct api_error *err;    /* a refusal the write decided (http_request_error), or NULL */

    /* Batch create (POST /v1/tasks/batch). */
    struct batch *batch;
    /* Schedule routes. */
    struct sched_req *sched;

    /* Bulk operations. */
    struct task_filter filter;
    char filter_queue[72];
    int64_t after_seq;
    int64_t count;

    /* Queue settings (PUT, pause, resume). */
    struct queue_settings qs;

    /* Long-poll. */
    struct longpoll_waiter *waiter;
};

/* Responses. Each queues the answer and returns MHD's result. */
enum MHD_Result http_respond_json(struct request *r, unsigned status, cJSON *doc);
enum MHD_Result http_respond_text(struct request *r, unsigned status, char *json_body,
                                  const char *header, const char *value);
enum MHD_Result http_respond_error(struct request *r, const struct api_error *e);
/* The refusal a write decides (on the writer thread) for its finish to
 * answer: allocated on first use, so a request that goes well does not
 * carry its 472 bytes (with them a request took a large-bin allocation,
 * and glibc consolidated its fast bins on every one). */
struct api_error *http_request_error(struct request *r);
enum MHD_Result http_respond_error_with(struct request *r, const struct api_error *e,
                                        const char *header, const char *value);
enum MHD_Result http_not_found(struct request *r, const char *what);
enum MHD_Result http_unavailable(struct request *r, const char *what);

/* Starts a write: suspends the request and submits apply to the writer;
 * finish answers once it is committed (r->commit_rc tells how it went). */
enum MHD_Result http_start_write(struct request *r, write_apply_fn apply, write_finish_fn finish);

/* The tenant the request is confined to, or NULL (a key without one). */
const char *http_tenant(struct request *r);
/* The client's address (X-Forwarded-For believed only from trust_proxy). */
void http_client_ip(struct request *r, char *out, size_t len);

/* A query argument, or NULL. */
const char *http_arg(struct request *r, const char *name);
/* The list's ?limit= into *limit (left as it is when absent): false with a
 * 400 in e when it is not a whole number from 1 to max. */
bool http_arg_limit(struct request *r, int max, int *limit, struct api_error *e);
/* The body as text ("" when empty). */
const char *http_body(struct request *r);

/* Handlers (http_tasks.c). */
enum MHD_Result http_task_create(struct request *r);
enum MHD_Result http_task_list(struct request *r);
enum MHD_Result http_task_get(struct request *r);
enum MHD_Result http_task_attempts(struct request *r);
enum MHD_Result http_task_cancel(struct request *r);
enum MHD_Result http_task_retry(struct request *r);
enum MHD_Result http_tasks_bulk(struct request *r);
enum MHD_Result http_task_batch(struct request *r);
/* A schedule's run, on the writer thread inside tx: s's template made into
 * a task of s's tenant, as a create would make it at the transaction's
 * time. STORE_OK with *out the task stored (the caller frees it), or with
 * *out NULL and err saying why none was made (the template is refused now,
 * the backlog is full); else the store's error. */
int http_task_from_schedule(struct writer_txn *tx, struct http_api *api, const struct schedule *s,
                            struct task **out, struct api_error *err);
/* Frees what a batch create kept (r->batch); NULL is a no-op. */
void http_batch_free(struct batch *b);
/* Handlers (http_observe.c). */
enum MHD_Result http_metrics(struct request *r);
enum MHD_Result http_events(struct request *r);
enum MHD_Result http_stats(struct request *r);
enum MHD_Result http_whoami(struct request *r);
enum MHD_Result http_dashboard(struct request *r);
/* Every queue the scheduler knows of, with the store's counts of waiting
 * tasks joined in (queued, due), and the queues only waiting tasks name:
 * ordered by name, in *out (caller frees; NULL when none), *n set. Returns
 * STORE_OK, or the store's error (logged), after which *out still holds the
 * scheduler's queues, with no counts of waiting tasks. Any HTTP thread.
 * (http_queues.c) */
int http_queue_view(struct http_api *api, struct queue_info **out, size_t *n);
/* Handlers (http_queues.c). */
enum MHD_Result http_queue_list(struct request *r);
enum MHD_Result http_queue_get(struct request *r);
enum MHD_Result http_queue_put(struct request *r);
enum MHD_Result http_queue_delete(struct request *r);
enum MHD_Result http_queue_pause(struct request *r, bool paused);
/* A write's finish that answers 204, or the refusal the write decided. */
enum MHD_Result http_finish_no_content(struct request *r);

/* The cursor of a list ordered by name (queues, schedules): the last name
 * shown, base64url, unpadded; decode is false for a string that is not
 * such a cursor of a valid name. (http_queues.c) */
#define HTTP_CURSOR_MAX 86 /* base64url of a 64-byte name */
void http_cursor_encode(const char *name, char out[HTTP_CURSOR_MAX + 1]);
bool http_cursor_decode(const char *s, char name[VALIDATE_MAX_QUEUE_NAME + 1]);
/* A list by name's ?limit= (1 to max; *limit left as it is when absent) and
 * ?cursor= (the name to start after, "" from the first): false with a 400
 * in e naming list ("/v1/queues") when either is not one it takes. */
bool http_name_page(struct request *r, int max, const char *list, int *limit,
                    char after[VALIDATE_MAX_QUEUE_NAME + 1], struct api_error *e);

/* Handlers (http_schedules.c). */
enum MHD_Result http_schedule_list(struct request *r);
enum MHD_Result http_schedule_get(struct request *r);
enum MHD_Result http_schedule_put(struct request *r);
enum MHD_Result http_schedule_delete(struct request *r);
enum MHD_Result http_schedule_pause(struct request *r, bool paused);
enum MHD_Result http_schedule_run(struct request *r);
/* Frees what a schedule route kept (r->sched); NULL is a no-op. */
void http_sched_free(struct sched_req *q);
/* The thread that runs due schedules: started with the API (not the
 * metrics-only one), stopped (no run started after) by quiesce, joined
 * once its last run is committed by stop, and freed (with the time zones
 * the routes share) by free, once no request or write can use it. */
struct schedule_timer *schedule_timer_start(struct http_api *api);
void schedule_timer_quiesce(struct schedule_timer *t);
void schedule_timer_stop(struct schedule_timer *t);
void schedule_timer_free(struct schedule_timer *t);
/* A schedule may now be due at due_ms (Unix ms; a put or a resume). */
void schedule_timer_kick(struct schedule_timer *t, int64_t due_ms);

#endif
