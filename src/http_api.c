/*
 * http_api: routes and handlers. See http_api.h for the design.
 */
#include "http_api.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "apierr.h"
#include "id.h"
#include "log.h"
#include "netpolicy.h"
#include "util.h"
#include "validate.h"

#define STOP_WAIT_MS 5000

struct http_api {
    const struct config *cfg;
    const struct auth *auth;
    struct store *store;
    struct writer *writer;
    struct MHD_Daemon *daemon;
    int listen_fd;
    atomic_bool quiescing;
    atomic_int active;     /* requests between first call and completion */
    atomic_int committing; /* creates suspended until their commit */
};

enum route {
    ROUTE_NONE,
    ROUTE_HEALTH,
    ROUTE_READY,
    ROUTE_TASKS,
    ROUTE_TASK,
};

enum req_state { REQ_READING, REQ_COMMITTING, REQ_COMMITTED };

struct request {
    struct http_api *api;
    struct MHD_Connection *conn;
    enum route route;
    char id[ID_LEN];
    struct buf body;
    bool too_large;
    enum req_state state;
    struct writer_op op;
    struct task *task;
    char *response;        /* 202 body, built before the commit */
    int commit_rc;
};

/* ---- listening ---- */

int http_listen(const char *addr, int *port, bool *loopback, char *err, size_t err_len)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1]) {
        snprintf(err, err_len, "listen '%s' must be host:port, like 127.0.0.1:8080", addr);
        return -1;
    }
    size_t hlen = (size_t)(colon - addr);
    if (hlen >= sizeof host) hlen = sizeof host - 1;
    memcpy(host, addr, hlen);
    host[hlen] = '\0';
    if (host[0] == '[' && hlen >= 2 && host[hlen - 1] == ']') {
        memmove(host, host + 1, hlen - 2);
        host[hlen - 2] = '\0';
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host, colon + 1, &hints, &res);
    if (gai != 0) {
        snprintf(err, err_len, "listen '%s': %s", addr, gai_strerror(gai));
        return -1;
    }
    int fd = -1;
    char why[128] = "no usable address";
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0) {
            const char *range = netpolicy_classify(ai->ai_addr);
            *loopback = range && strcmp(range, "loopback") == 0;
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            getsockname(fd, (struct sockaddr *)&ss, &sl);
            *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
            break;
        }
        snprintf(why, sizeof why, "%s", strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) snprintf(err, err_len, "cannot listen on %s: %s", addr, why);
    return fd;
}

/* ---- responses ---- */

/* Queues a response whose body (a malloc'd string) MHD frees. */
static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, char *body,
                               const char *content_type)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result respond_json(struct MHD_Connection *conn, unsigned status, cJSON *doc)
{
    char *s = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (!s) return MHD_NO;
    return respond(conn, status, s, "application/json");
}

static enum MHD_Result respond_error_with(struct MHD_Connection *conn, const struct api_error *e,
                                          const char *header, const char *value)
{
    char *body = api_error_json(e);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (header) MHD_add_response_header(r, header, value);
    if (e->retry_after_s > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", e->retry_after_s);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)e->status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result respond_error(struct MHD_Connection *conn, const struct api_error *e)
{
    return respond_error_with(conn, e, NULL, NULL);
}

/* ---- routing ---- */

static enum route match_route(const char *url, char id[ID_LEN])
{
    if (strcmp(url, "/healthz") == 0) return ROUTE_HEALTH;
    if (strcmp(url, "/readyz") == 0) return ROUTE_READY;
    if (strcmp(url, "/v1/tasks") == 0) return ROUTE_TASKS;
    if (strncmp(url, "/v1/tasks/", 10) == 0) {
        const char *rest = url + 10;
        if (strlen(rest) == ID_LEN - 1 && id_valid(rest)) {
            for (int i = 0; i < ID_LEN; i++) id[i] = (char)tolower((unsigned char)rest[i]);
            return ROUTE_TASK;
        }
        id[0] = '\0';
        return ROUTE_TASK; /* a malformed id is simply not found */
    }
    return ROUTE_NONE;
}

/* The methods each route answers, for 405 and its Allow header. */
static const char *route_allow(enum route r)
{
    switch (r) {
    case ROUTE_HEALTH:
    case ROUTE_READY:
    case ROUTE_TASK: return "GET, HEAD";
    case ROUTE_TASKS: return "POST";
    case ROUTE_NONE: break;
    }
    return "";
}

static bool method_allowed(enum route r, const char *method)
{
    const char *allow = route_allow(r);
    size_t n = strlen(method);
    for (const char *p = allow; (p = strstr(p, method)); p += n)
        if ((p == allow || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0')) return true;
    return false;
}

/* ---- handlers ---- */

static enum MHD_Result handle_health(struct request *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    return respond_json(r->conn, MHD_HTTP_OK, o);
}

static enum MHD_Result handle_ready(struct request *r)
{
    struct http_api *api = r->api;
    const char *reason = NULL;
    if (atomic_load(&api->quiescing)) reason = "shutting down";
    else if (writer_degraded(api->writer)) reason = "database writes are failing";
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", reason ? "unavailable" : "ready");
    if (reason) cJSON_AddStringToObject(o, "reason", reason);
    return respond_json(r->conn, reason ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK, o);
}

static enum MHD_Result not_found(struct request *r, const char *what)
{
    struct api_error e;
    api_error_set(&e, 404, "not_found", NULL, "%s", what);
    return respond_error(r->conn, &e);
}

static enum MHD_Result handle_get_task(struct request *r)
{
    if (!r->id[0]) return not_found(r, "no task has this id");
    struct store_conn *c = store_conn_acquire(r->api->store);
    struct api_error e;
    if (!c) {
        api_error_set(&e, 503, "unavailable", NULL, "the database cannot be read right now; try again");
        e.retry_after_s = 1;
        return respond_error(r->conn, &e);
    }
    struct task *t = NULL;
    struct attempt *attempts = NULL;
    size_t n = 0;
    struct webhook_state wh = {0};
    bool has_wh = false;
    int rc = store_task_get(c, r->id, &t, &attempts, &n, &wh, &has_wh);
    if (rc == STORE_ERROR)
        log_msg(LOG_ERROR, "store.read_failed", "task=%s error=\"%s\"", r->id, store_conn_error(c));
    store_conn_release(c);
    if (rc == STORE_NOT_FOUND) return not_found(r, "no task has this id");
    if (rc != STORE_OK) {
        api_error_set(&e, 503, "unavailable", NULL, "the database cannot be read right now; try again");
        e.retry_after_s = 1;
        return respond_error(r->conn, &e);
    }
    cJSON *o = task_to_json(t, attempts, n, has_wh ? &wh : NULL);
    if (!n) cJSON_AddArrayToObject(o, "attemptHistory");
    for (size_t i = 0; i < n; i++) attempt_clear(&attempts[i]);
    free(attempts);
    if (has_wh) webhook_state_clear(&wh);
    task_free(t);
    return respond_json(r->conn, MHD_HTTP_OK, o);
}

static int insert_apply(struct store_conn *c, void *arg, int64_t *due_ms)
{
    struct request *r = arg;
    int rc = store_task_insert(c, r->task);
    if (rc == STORE_OK && r->task->run_at_ms < *due_ms) *due_ms = r->task->run_at_ms;
    return rc;
}

static void insert_done(void *arg, int rc)
{
    struct request *r = arg;
    struct http_api *api = r->api;
    if (rc == STORE_OK) {
        char u[256], q[80];
        const char *url = r->task->callback_url;
        const char *p = strstr(url, "://");
        const char *host = p ? p + 3 : url;
        snprintf(u, sizeof u, "%.*s", (int)strcspn(host, "/?#"), host);
        const char *at = strchr(u, '@'); /* never log user-info */
        log_batch_add(writer_log(api->writer), LOG_INFO, "task.accepted", "id=%s queue=%s host=%s",
                      r->task->id, log_quote(q, sizeof q, r->task->queue), at ? at + 1 : u);
    }
    r->commit_rc = rc;
    r->state = REQ_COMMITTED;
    atomic_fetch_sub(&api->committing, 1);
    MHD_resume_connection(r->conn); /* r may be freed by the HTTP thread from here on */
}

static enum MHD_Result start_create(struct request *r)
{
    struct http_api *api = r->api;
    struct api_error e;
    if (r->too_large) {
        api_error_set(&e, 413, "body_too_large", NULL,
                      "the request body is larger than %zu bytes (max_body_bytes)", api->cfg->max_body_bytes);
        return respond_error(r->conn, &e);
    }
    if (atomic_load(&api->quiescing)) {
        api_error_set(&e, 503, "shutting_down", NULL, "the server is shutting down; retry shortly");
        e.retry_after_s = 1;
        return respond_error(r->conn, &e);
    }
    int64_t now = util_now_ms();
    if (validate_task_create(r->body.data ? r->body.data : "", r->body.len, api->cfg, now, &r->task, &e))
        return respond_error(r->conn, &e);
    buf_free(&r->body);
    id_new(now, r->task->id);
    r->task->created_at_ms = now;
    r->task->updated_at_ms = now;
    cJSON *o = task_to_json(r->task, NULL, 0, NULL);
    r->response = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    r->op.apply = insert_apply;
    r->op.done = insert_done;
    r->op.arg = r;
    r->state = REQ_COMMITTING;
    /* Suspend before submitting, so the resume can never come first. */
    MHD_suspend_connection(r->conn);
    atomic_fetch_add(&api->committing, 1);
    writer_submit(api->writer, &r->op);
    return MHD_YES;
}

static enum MHD_Result finish_create(struct request *r)
{
    if (r->commit_rc != STORE_OK) {
        struct api_error e;
        api_error_set(&e, 503, "unavailable", NULL,
                      "the task could not be stored (the database is not writable right now); "
                      "nothing was stored, retry later");
        e.retry_after_s = 1;
        return respond_error(r->conn, &e);
    }
    char *body = r->response;
    r->response = NULL;
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    char location[64];
    snprintf(location, sizeof location, "/v1/tasks/%s", r->task->id);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
    enum MHD_Result rc = MHD_queue_response(r->conn, MHD_HTTP_ACCEPTED, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* Checks made as soon as the headers are in, before any body is read. */
static enum MHD_Result first_call(struct request *r, const char *url, const char *method)
{
    struct http_api *api = r->api;
    struct MHD_Connection *conn = r->conn;
    struct api_error e;
    r->route = match_route(url, r->id);
    if (r->route == ROUTE_NONE) return not_found(r, "no such route; the API is described in docs/api.md");
    if (!method_allowed(r->route, method)) {
        api_error_set(&e, 405, "method_not_allowed", NULL, "%s is not allowed here; use %s", method,
                      route_allow(r->route));
        return respond_error_with(conn, &e, MHD_HTTP_HEADER_ALLOW, route_allow(r->route));
    }
    if (r->route != ROUTE_HEALTH && r->route != ROUTE_READY &&
        !auth_check(api->auth, MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                           MHD_HTTP_HEADER_AUTHORIZATION))) {
        api_error_set(&e, 401, "unauthorized", NULL,
                      "send a valid API key as 'Authorization: Bearer <key>'");
        return respond_error_with(conn, &e, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    }
    if (r->route == ROUTE_TASKS) {
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        size_t n = ct ? strcspn(ct, "; ") : 0;
        if (!ct || n != 16 || strncasecmp(ct, "application/json", 16) != 0) {
            api_error_set(&e, 415, "unsupported_media_type", NULL,
                          "send the task as JSON with 'Content-Type: application/json'");
            return respond_error(conn, &e);
        }
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > api->cfg->max_body_bytes) {
            api_error_set(&e, 413, "body_too_large", NULL,
                          "the request body is larger than %zu bytes (max_body_bytes)",
                          api->cfg->max_body_bytes);
            return respond_error(conn, &e);
        }
        buf_init(&r->body, api->cfg->max_body_bytes);
    }
    return MHD_YES;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    struct http_api *api = cls;
    (void)version;
    struct request *r = *con_cls;
    if (!r) {
        r = xcalloc(1, sizeof *r);
        r->api = api;
        r->conn = conn;
        *con_cls = r;
        atomic_fetch_add(&api->active, 1);
        return first_call(r, url, method);
    }
    if (*upload_data_size) {
        if (!r->too_large && buf_append(&r->body, upload_data, *upload_data_size) < 0) {
            r->too_large = true;
            buf_free(&r->body);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    switch (r->route) {
    case ROUTE_HEALTH: return handle_health(r);
    case ROUTE_READY: return handle_ready(r);
    case ROUTE_TASK: return handle_get_task(r);
    case ROUTE_TASKS:
        if (r->state == REQ_READING) return start_create(r);
        if (r->state == REQ_COMMITTED) return finish_create(r);
        return MHD_YES; /* still committing: cannot happen while suspended */
    case ROUTE_NONE: break;
    }
    return MHD_NO;
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    struct http_api *api = cls;
    struct request *r = *con_cls;
    (void)conn;
    (void)toe;
    if (!r) return;
    buf_free(&r->body);
    task_free(r->task);
    free(r->response);
    free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&api->active, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512], q[600];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '.')) msg[--n] = '\0';
    log_msg(LOG_WARN, "http.error", "message=%s", log_quote(q, sizeof q, msg));
}

struct http_api *http_api_start(const struct config *cfg, const struct auth *auth,
                                struct store *store, struct writer *writer, int listen_fd)
{
    struct http_api *api = xcalloc(1, sizeof *api);
    api->cfg = cfg;
    api->auth = auth;
    api->store = store;
    api->writer = writer;
    api->listen_fd = listen_fd;
    atomic_init(&api->quiescing, false);
    atomic_init(&api->active, 0);
    atomic_init(&api->committing, 0);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(listen_fd, (struct sockaddr *)&ss, &sl);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    api->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, handle, api, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, listen_fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->http_threads, MHD_OPTION_NOTIFY_COMPLETED,
        request_completed, api, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
    if (!api->daemon) {
        log_msg(LOG_ERROR, "http.start_failed", "error=\"libmicrohttpd did not start\"");
        free(api);
        return NULL;
    }
    return api;
}

void http_api_quiesce(struct http_api *api)
{
    if (!api || atomic_exchange(&api->quiescing, true)) return;
    MHD_socket fd = MHD_quiesce_daemon(api->daemon);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    api->listen_fd = -1;
}

void http_api_stop(struct http_api *api)
{
    if (!api) return;
    http_api_quiesce(api);
    /* Let requests in progress (creates waiting for their commit above all)
     * get their answer before the connections close. */
    int64_t deadline = util_mono_ms() + STOP_WAIT_MS;
    /* A suspended connection must be resumed before MHD stops; the writer
     * always completes every op, so this wait ends. */
    while (atomic_load(&api->committing) > 0 ||
           (atomic_load(&api->active) > 0 && util_mono_ms() < deadline)) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(api->daemon);
    free(api);
}
