/*
 * http_api: the server, routing, authentication and the write machinery.
 * See http_api.h for the design; the handlers are in http_tasks.c and
 * http_queues.c.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_internal.h"
#include "log.h"
#include "metrics.h"
#include "netpolicy.h"
#include "validate.h"

#define STOP_WAIT_MS 5000
#define DISCARD_MAX (1u << 20) /* body bytes read past max_body_bytes before closing */

/* ---- listening ---- */

/* The addresses host:port names, for a passive socket; NULL with err set. */
static struct addrinfo *listen_addresses(const char *addr, char *err, size_t err_len)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1]) {
        snprintf(err, err_len, "listen '%s' must be host:port, like 127.0.0.1:8080", addr);
        return NULL;
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
        return NULL;
    }
    return res;
}

int http_listen_check(const char *addr, bool *loopback, char *err, size_t err_len)
{
    struct addrinfo *res = listen_addresses(addr, err, err_len);
    if (!res) return -1;
    const char *range = netpolicy_classify(res->ai_addr);
    *loopback = range && strcmp(range, "loopback") == 0;
    freeaddrinfo(res);
    return 0;
}

/* The port a socket is bound to (the one the OS chose for port 0). */
static int bound_port(int fd)
{
    struct sockaddr_storage ss = {0};
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) return 0;
    in_port_t p;
    size_t at = ss.ss_family == AF_INET6 ? offsetof(struct sockaddr_in6, sin6_port)
                                         : offsetof(struct sockaddr_in, sin_port);
    memcpy(&p, (const char *)&ss + at, sizeof p);
    return ntohs(p);
}

int http_listen(const char *addr, int *port, bool *loopback, char *err, size_t err_len)
{
    struct addrinfo *res = listen_addresses(addr, err, err_len);
    if (!res) return -1;
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
            *port = bound_port(fd);
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

enum MHD_Result http_respond_text(struct request *r, unsigned status, char *body,
                                  const char *header, const char *value)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (header) MHD_add_response_header(resp, header, value);
    r->status = (int)status;
    enum MHD_Result rc = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

enum MHD_Result http_respond_json(struct request *r, unsigned status, cJSON *doc)
{
    char *s = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (!s) return MHD_NO;
    return http_respond_text(r, status, s, NULL, NULL);
}

enum MHD_Result http_respond_error_with(struct request *r, const struct api_error *e,
                                        const char *header, const char *value)
{
    char *body = api_error_json(e);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (header) MHD_add_response_header(resp, header, value);
    if (e->retry_after_s > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", e->retry_after_s);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    r->status = e->status;
    enum MHD_Result rc = MHD_queue_response(r->conn, (unsigned)e->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

enum MHD_Result http_respond_error(struct request *r, const struct api_error *e)
{
    return http_respond_error_with(r, e, NULL, NULL);
}

enum MHD_Result http_not_found(struct request *r, const char *what)
{
    struct api_error e;
    api_error_set(&e, 404, "not_found", NULL, "%s", what);
    return http_respond_error(r, &e);
}

enum MHD_Result http_unavailable(struct request *r, const char *what)
{
    struct api_error e;
    api_error_set(&e, 503, "unavailable", NULL, "%s", what);
    e.retry_after_s = 1;
    return http_respond_error(r, &e);
}

const char *http_tenant(struct request *r)
{
    return r->who.tenant[0] ? r->who.tenant : NULL;
}

void http_client_ip(struct request *r, char *out, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    snprintf(out, len, "unknown");
    if (!sa) return;
    char peer[INET6_ADDRSTRLEN] = "";
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, peer, sizeof peer);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, peer, sizeof peer);
    snprintf(out, len, "%s", peer);
    const char *xff = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Forwarded-For");
    if (!xff || !cidr_contains(r->api->trusted, r->api->n_trusted, sa)) return;
    /* Walk from the right: the nearest address not itself a trusted proxy
     * is the client (anything further left is the client's own claim). */
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", xff);
    for (char *p = tmp + strlen(tmp); p > tmp;) {
        char *comma = p;
        while (comma > tmp && comma[-1] != ',') comma--;
        char *a = comma;
        while (*a == ' ') a++;
        char *e = p;
        while (e > a && e[-1] == ' ') e--;
        *e = '\0';
        /* Not an address: nothing from here leftwards is believed, and it
         * is not logged (it went into log lines as it came: "1.2.3.4
         * reason=ok key=admin" added fields, a bare CR a line). */
        struct in6_addr scratch;
        if (*a && inet_pton(AF_INET, a, &scratch) != 1 && inet_pton(AF_INET6, a, &scratch) != 1) return;
        if (*a && !cidr_contains_text(r->api->trusted, r->api->n_trusted, a)) {
            snprintf(out, len, "%.45s", a);
            return;
        }
        if (*a) snprintf(out, len, "%.45s", a);
        p = comma > tmp ? comma - 1 : tmp;
    }
}

const char *http_arg(struct request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

bool http_arg_limit(struct request *r, int max, int *limit, struct api_error *e)
{
    const char *v = http_arg(r, "limit");
    int64_t n;
    if (!v) return true;
    if (!util_whole_number(v, 1, max, &n)) {
        api_error_set(e, 400, "invalid_field", "limit", "limit must be a whole number from 1 to %d", max);
        return false;
    }
    *limit = (int)n;
    return true;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* %HH decoding of the path and the query, in place, with two exceptions.
 * %00 becomes DEL (0x7f): a NUL would end the C string early, and
 * /v1/queues/a%00b would act on queue a, limit=10%00 read as 10; DEL is a
 * byte no id, name or parameter takes, so such a request is refused. %2F
 * stays as it is: an encoded slash is data, not a separator (RFC 3986 2.2;
 * decoded first, "q1%2Fpause" paused queue q1), and no name or value the
 * API reads holds a slash. */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    char *w = s;
    for (const char *p = s; *p;) {
        int hi = p[0] == '%' ? hex_digit(p[1]) : -1, lo = hi >= 0 ? hex_digit(p[2]) : -1;
        int c = hi * 16 + lo;
        if (lo < 0 || c == '/') {
            *w++ = *p++;
            continue;
        }
        *w++ = c ? (char)c : '\x7f';
        p += 3;
    }
    *w = '\0';
    return (size_t)(w - s);
}

const char *http_body(struct request *r)
{
    return r->body.data ? r->body.data : "";
}

/* ---- writes ---- */

struct api_error *http_request_error(struct request *r)
{
    if (!r->err) r->err = xcalloc(1, sizeof *r->err);
    return r->err;
}

static int write_apply(struct writer_txn *tx, void *arg)
{
    struct request *r = arg;
    /* A write may run twice (a failed group commit is retried op by op):
     * what a first run refused is forgotten, whatever the route. */
    free(r->err);
    r->err = NULL;
    return r->apply(tx, r);
}

static void write_done(void *arg, int rc)
{
    struct request *r = arg;
    struct http_api *api = r->api;
    r->commit_rc = rc;
    if (rc == STORE_OK && r->again) {
        r->again = false;
        writer_submit(api->writer, &r->op); /* a bulk operation's next step */
        return;
    }
    r->state = REQ_COMMITTED;
    atomic_fetch_sub(&api->committing, 1);
    MHD_resume_connection(r->conn); /* r may be freed by the HTTP thread from here on */
}

enum MHD_Result http_start_write(struct request *r, write_apply_fn apply, write_finish_fn finish)
{
    struct http_api *api = r->api;
    if (atomic_load(&api->quiescing)) {
        struct api_error e;
        api_error_set(&e, 503, "shutting_down", NULL, "the server is shutting down; retry shortly");
        e.retry_after_s = 1;
        return http_respond_error(r, &e);
    }
    r->apply = apply;
    r->finish = finish;
    r->op.apply = write_apply;
    r->op.done = write_done;
    r->op.done_anywhere = true; /* resume and resubmit are thread-safe */
    r->op.arg = r;
    r->state = REQ_COMMITTING;
    /* Suspend before submitting, so the resume can never come first. */
    MHD_suspend_connection(r->conn);
    atomic_fetch_add(&api->committing, 1);
    writer_submit(api->writer, &r->op);
    return MHD_YES;
}

/* ---- long-poll resume ---- */

void http_resume_request(void *arg)
{
    struct request *r = arg;
    MHD_resume_connection(r->conn);
}

/* ---- routing ---- */

struct route_def {
    enum route route;
    const char *allow;   /* methods, for 405 and Allow */
    bool has_body;       /* reads a JSON body */
    const char *name;    /* for metrics */
};

static const struct route_def routes[] = {
    {ROUTE_NONE, "", false, "none"},
    {ROUTE_HEALTH, "GET, HEAD", false, "/healthz"},
    {ROUTE_READY, "GET, HEAD", false, "/readyz"},
    {ROUTE_TASKS, "GET, HEAD, POST", true, "/v1/tasks"},
    {ROUTE_TASKS_CANCEL, "POST", true, "/v1/tasks/cancel"},
    {ROUTE_TASKS_RETRY, "POST", true, "/v1/tasks/retry"},
    {ROUTE_TASKS_BATCH, "POST", true, "/v1/tasks/batch"},
    {ROUTE_TASK, "GET, HEAD", false, "/v1/tasks/{id}"},
    {ROUTE_TASK_ATTEMPTS, "GET, HEAD", false, "/v1/tasks/{id}/attempts"},
    {ROUTE_TASK_CANCEL, "POST", false, "/v1/tasks/{id}/cancel"},
    {ROUTE_TASK_RETRY, "POST", true, "/v1/tasks/{id}/retry"},
    {ROUTE_QUEUES, "GET, HEAD", false, "/v1/queues"},
    {ROUTE_QUEUE, "GET, HEAD, PUT, DELETE", true, "/v1/queues/{name}"},
    {ROUTE_QUEUE_PAUSE, "POST", false, "/v1/queues/{name}/pause"},
    {ROUTE_QUEUE_RESUME, "POST", false, "/v1/queues/{name}/resume"},
    {ROUTE_SCHEDULES, "GET, HEAD", false, "/v1/schedules"},
    {ROUTE_SCHEDULE, "GET, HEAD, PUT, DELETE", true, "/v1/schedules/{name}"},
    {ROUTE_SCHEDULE_PAUSE, "POST", false, "/v1/schedules/{name}/pause"},
    {ROUTE_SCHEDULE_RESUME, "POST", false, "/v1/schedules/{name}/resume"},
    {ROUTE_SCHEDULE_RUN, "POST", false, "/v1/schedules/{name}/run"},
    {ROUTE_EVENTS, "GET, HEAD", false, "/v1/events"},
    {ROUTE_STATS, "GET, HEAD", false, "/v1/stats"},
    {ROUTE_WHOAMI, "GET, HEAD", false, "/v1/whoami"},
    {ROUTE_METRICS, "GET, HEAD", false, "/metrics"},
    {ROUTE_ROOT, "GET, HEAD", false, "/"},
    {ROUTE_DASHBOARD, "GET, HEAD", false, "/dashboard"},
};

_Static_assert(sizeof routes / sizeof routes[0] <= METRICS_ROUTES_MAX,
               "every route needs a row of its own in the metrics (METRICS_ROUTES_MAX)");

/* Splits url into up to 5 segments (pointers into buf). */
static int segments(const char *url, char *buf, size_t len, char *seg[5])
{
    util_strcopy(buf, len, url);
    int n = 0;
    char *p = buf;
    if (*p != '/') return -1;
    while (*p == '/') {
        *p++ = '\0';
        if (n == 5) return -1;
        seg[n++] = p;
        p += strcspn(p, "/");
    }
    if (*p) return -1;
    return n;
}

static enum route match_route(struct request *r, const char *url)
{
    char buf[512], *s[5];
    if (strlen(url) >= sizeof buf) return ROUTE_NONE;
    int n = segments(url, buf, sizeof buf, s);
    if (n == 1 && !strcmp(s[0], "healthz")) return ROUTE_HEALTH;
    if (n == 1 && !strcmp(s[0], "readyz")) return ROUTE_READY;
    if (n == 1 && !strcmp(s[0], "metrics")) return ROUTE_METRICS;
    if (n == 1 && !*s[0]) return ROUTE_ROOT;
    if (n >= 1 && !strcmp(s[0], "dashboard")) {
        if (n == 1 || (n == 2 && !*s[1])) return ROUTE_DASHBOARD;
        if (n != 2 || strlen(s[1]) >= sizeof r->asset) return ROUTE_NONE;
        for (const char *p = s[1]; *p; p++)
            if (!isalnum((unsigned char)*p) && !strchr("._-", *p)) return ROUTE_NONE;
        snprintf(r->asset, sizeof r->asset, "%s", s[1]);
        return ROUTE_DASHBOARD;
    }
    if (n < 2 || strcmp(s[0], "v1")) return ROUTE_NONE;
    if (n == 2 && !strcmp(s[1], "events")) return ROUTE_EVENTS;
    if (n == 2 && !strcmp(s[1], "stats")) return ROUTE_STATS;
    if (n == 2 && !strcmp(s[1], "whoami")) return ROUTE_WHOAMI;
    if (!strcmp(s[1], "tasks")) {
        if (n == 2) return ROUTE_TASKS;
        if (n == 3 && !strcmp(s[2], "cancel")) return ROUTE_TASKS_CANCEL;
        if (n == 3 && !strcmp(s[2], "retry")) return ROUTE_TASKS_RETRY;
        if (n == 3 && !strcmp(s[2], "batch")) return ROUTE_TASKS_BATCH;
        if (n > 4 || !*s[2]) return ROUTE_NONE;
        r->id[0] = '\0';
        if (id_valid(s[2]))
            for (int i = 0; i < ID_LEN; i++) r->id[i] = (char)tolower((unsigned char)s[2][i]);
        if (n == 3) return ROUTE_TASK;
        if (!strcmp(s[3], "attempts")) return ROUTE_TASK_ATTEMPTS;
        if (!strcmp(s[3], "cancel")) return ROUTE_TASK_CANCEL;
        if (!strcmp(s[3], "retry")) return ROUTE_TASK_RETRY;
        return ROUTE_NONE;
    }
    if (!strcmp(s[1], "queues")) {
        if (n == 2) return ROUTE_QUEUES;
        if (n > 4 || !*s[2]) return ROUTE_NONE;
        snprintf(r->name, sizeof r->name, "%s", s[2]);
        r->name_valid = validate_queue_name(s[2]);
        if (n == 3) return ROUTE_QUEUE;
        if (!strcmp(s[3], "pause")) return ROUTE_QUEUE_PAUSE;
        if (!strcmp(s[3], "resume")) return ROUTE_QUEUE_RESUME;
    }
    if (!strcmp(s[1], "schedules")) {
        if (n == 2) return ROUTE_SCHEDULES;
        if (n > 4 || !*s[2]) return ROUTE_NONE;
        snprintf(r->name, sizeof r->name, "%s", s[2]);
        r->name_valid = validate_queue_name(s[2]);
        if (n == 3) return ROUTE_SCHEDULE;
        if (!strcmp(s[3], "pause")) return ROUTE_SCHEDULE_PAUSE;
        if (!strcmp(s[3], "resume")) return ROUTE_SCHEDULE_RESUME;
        if (!strcmp(s[3], "run")) return ROUTE_SCHEDULE_RUN;
    }
    return ROUTE_NONE;
}

static bool method_allowed(enum route route, const char *method)
{
    const char *allow = routes[route].allow;
    size_t n = strlen(method);
    for (const char *p = allow; (p = strstr(p, method)); p += n)
        if ((p == allow || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0')) return true;
    return false;
}

/* Why the key may not do this, or NULL when it may. */
static const char *scope_refusal(const struct principal *p, enum route route, const char *method)
{
    bool read = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    bool queues = route == ROUTE_QUEUES || route == ROUTE_QUEUE || route == ROUTE_QUEUE_PAUSE ||
                  route == ROUTE_QUEUE_RESUME;
    if (queues && p->tenant[0])
        return "queues are shared by every tenant; use a key without a tenant to see or change them";
    if ((route == ROUTE_METRICS || route == ROUTE_STATS) && p->tenant[0])
        return "daemon-wide figures are not per tenant; use a key without a tenant";
    switch (p->scope) {
    case AUTH_SCOPE_ADMIN: return NULL;
    case AUTH_SCOPE_READ:
        return read ? NULL : "this key's scope is read: it may look (GET) but not change anything";
    case AUTH_SCOPE_ENQUEUE:
        return (route == ROUTE_TASKS || route == ROUTE_TASKS_BATCH) && !strcmp(method, "POST")
                   ? NULL
                   : "this key's scope is enqueue: it may only create tasks (POST /v1/tasks, "
                     "POST /v1/tasks/batch)";
    }
    return "this key has no scope";
}

/* ---- health ---- */

static enum MHD_Result handle_health(struct request *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    return http_respond_json(r, MHD_HTTP_OK, o);
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
    return http_respond_json(r, reason ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK, o);
}

/* ---- the access handler ---- */

/* What libmicrohttpd keeps in a connection's memory pool for each header,
 * cookie and query parameter besides its bytes (its list entry, aligned),
 * rounded up; measured on 0.9.75, where 139 headers of 50 bytes filled
 * 16 KiB. */
#define POOL_ENTRY_BYTES 64
/* Pool memory kept beyond http_memory_limit, so that the answer's status
 * line and headers (about 250 bytes for a 202) always fit: a request whose
 * headers filled the pool was acted on and then left unanswered. */
#define POOL_HEADROOM 2048

struct framing {
    int content_length, transfer_encoding, host;
    const char *cl, *te; /* their (first) values: the lookups first_call needs, made here */
    bool chunked;     /* the Transfer-Encoding is "chunked" alone */
    bool bad_name;    /* a header name that is not a token ("Content-Length :") */
    size_t bytes;     /* what the header block takes in the pool, about */
};

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     size_t key_size, const char *value, size_t value_size)
{
    struct framing *f = cls;
    f->bytes += key_size + value_size + 4 + POOL_ENTRY_BYTES;
    if (kind != MHD_HEADER_KIND) return MHD_YES;
    if (!value) value = "";
    if (!util_http_token(key, key_size)) f->bad_name = true;
    /* The length first: most names are none of these three. */
    if (key_size == 14 && !strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
        if (!f->content_length++) f->cl = value;
    } else if (key_size == 17 && !strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        if (!f->transfer_encoding++) f->te = value;
        /* compared as libmicrohttpd compares it (a trailing space fails) */
        f->chunked = !strcasecmp(value, "chunked");
    } else if (key_size == 4 && !strcasecmp(key, MHD_HTTP_HEADER_HOST)) {
        f->host++;
    }
    return MHD_YES;
}

/* The query parameters a route reads, for GET and HEAD (other methods read
 * none): a parameter it does not read was silently ignored, so that a typo
 * (`statuss=failed`) listed every task. */
static const char *route_params(enum route route)
{
    switch (route) {
    case ROUTE_TASKS: return "status, queue, schedule, createdAfter, createdBefore, limit, order, cursor";
    case ROUTE_TASK: return "wait";
    case ROUTE_QUEUES:
    case ROUTE_SCHEDULES: return "limit, cursor";
    case ROUTE_STATS: return "minutes";
    default: return "";
    }
}

struct query_check {
    const char *params, *bad; /* bad: the first parameter unknown, given twice or bare */
    bool twice, bare;
    const char *seen[12]; /* more than any route takes */
    int n;
};

static enum MHD_Result check_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct query_check *q = cls;
    size_t len = strlen(key);
    const char *p = q->params;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == len && !memcmp(p, key, len)) break;
        p += n;
        p += strspn(p, ", ");
    }
    if (!*p) {
        q->bad = key;
        return MHD_NO;
    }
    if (!value) { /* "?limit" with no "=": read as absent before */
        q->bad = key;
        q->bare = true;
        return MHD_NO;
    }
    for (int i = 0; i < q->n; i++) {
        if (!strcmp(q->seen[i], key)) {
            q->bad = key;
            q->twice = true;
            return MHD_NO;
        }
    }
    if (q->n < (int)ARRAY_LEN(q->seen)) q->seen[q->n++] = key;
    return MHD_YES;
}

static bool json_content_type(struct request *r)
{
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    size_t n = ct ? strcspn(ct, "; \t") : 0;
    return ct && n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

static enum MHD_Result unsupported_media_type(struct request *r)
{
    struct api_error e;
    api_error_set(&e, 415, "unsupported_media_type", NULL, "send JSON with 'Content-Type: application/json'");
    return http_respond_error(r, &e);
}

/* Checks made as soon as the headers are in, before any body is read. */
static enum MHD_Result first_call(struct request *r, const char *url, const char *method,
                                   const char *version)
{
    struct http_api *api = r->api;
    struct MHD_Connection *conn = r->conn;
    struct api_error e;
    r->method = method;
    r->started_us = util_mono_us();
    struct framing f = {0};
    MHD_get_connection_values_n(conn, (enum MHD_ValueKind)(MHD_HEADER_KIND | MHD_COOKIE_KIND | MHD_GET_ARGUMENT_KIND),
                                count_framing, &f);
    size_t used = strlen(method) + strlen(url) + 12 + f.bytes;
    if (used > api->cfg->http_memory_limit) {
        /* Answered once the body is in (and dropped): libmicrohttpd frees the
         * room its read buffer took only then, and no answer fitted before. */
        r->header_bytes = used;
        r->too_large = true;
        return MHD_YES;
    }
    /* A header name with a space or other non-token byte (RFC 9112 5.1:
     * "Content-Length : 5" was not read as the length, and the body ran as a
     * second request). */
    if (f.bad_name) {
        api_error_set(&e, 400, "invalid_request", NULL,
                      "a header name holds a space or another byte a name may not have (no "
                      "space before the colon); this connection is closed");
        return http_respond_error_with(r, &e, MHD_HTTP_HEADER_CONNECTION, "close");
    }
    /* libmicrohttpd frames the body by the first Content-Length it finds; a
     * proxy in front may have used another, or the Transfer-Encoding, and
     * would read what follows as another request (smuggling). A message
     * framed two ways is refused and its connection closed (RFC 9112 6.3);
     * so is HTTP/1.0 with a Transfer-Encoding (6.1: its framing is faulty). */
    bool http10 = !strcmp(version, MHD_HTTP_VERSION_1_0);
    if (f.content_length > 1 || f.transfer_encoding > 1 || (f.content_length && f.transfer_encoding) ||
        (http10 && f.transfer_encoding)) {
        api_error_set(&e, 400, "invalid_request", NULL,
                      http10 && f.transfer_encoding
                          ? "an HTTP/1.0 request cannot carry a Transfer-Encoding; send "
                            "Content-Length; this connection is closed"
                          : "a request may carry one Content-Length or one Transfer-Encoding, not "
                            "several or both; this connection is closed");
        return http_respond_error_with(r, &e, MHD_HTTP_HEADER_CONNECTION, "close");
    }
    /* libmicrohttpd reads only the chunked coding; any other (gzip, or gzip
     * then chunked) left it waiting for a body it could not frame until the
     * connection timed out. RFC 9112 6.3: 400, and the connection closed. */
    if (f.transfer_encoding && !f.chunked) {
        api_error_set(&e, 400, "invalid_request", NULL,
                      "the only Transfer-Encoding understood is 'chunked' (send the body as it "
                      "is, with Content-Length or chunked); this connection is closed");
        return http_respond_error_with(r, &e, MHD_HTTP_HEADER_CONNECTION, "close");
    }
    /* RFC 9112 3.2: one Host, and none missing from HTTP/1.1 (and later 1.x,
     * which libmicrohttpd serves as 1.1). */
    if (f.host > 1 || (!f.host && !http10)) {
        api_error_set(&e, 400, "invalid_request", NULL,
                      f.host ? "a request carries one Host header, not several"
                             : "an HTTP/1.1 request must carry a Host header");
        return http_respond_error(r, &e);
    }
    /* The absolute form a server must also take (RFC 9112 3.2.2): the path
     * after the authority names the resource. */
    size_t scheme = !strncasecmp(url, "http://", 7) ? 7 : !strncasecmp(url, "https://", 8) ? 8 : 0;
    if (scheme) {
        const char *path = strchr(url + scheme, '/');
        url = path ? path : "/";
    }
    r->route = match_route(r, url);
    if (api->metrics_only && r->route != ROUTE_METRICS && r->route != ROUTE_HEALTH)
        r->route = ROUTE_NONE;
    /* Authenticate before saying whether a route exists: without a key, every
     * /v1/ path answers 401 alike. */
    bool open = r->route == ROUTE_HEALTH || r->route == ROUTE_READY || r->route == ROUTE_ROOT ||
                r->route == ROUTE_DASHBOARD || api->metrics_only ||
                (r->route == ROUTE_NONE && strncmp(url, "/v1/", 4) != 0 && strcmp(url, "/v1") != 0);
    char ip[64];
    if (!open) {
        const char *authz = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        if (!auth_check(api->auth, authz, &r->who)) {
            char m[48]; /* the method is the client's bytes: quoted, as every such value */
            http_client_ip(r, ip, sizeof ip);
            log_msg(LOG_WARN, "auth.denied", "ip=%s method=%s reason=%s", ip,
                    log_quote(m, sizeof m, method), authz ? "unknown_key" : "no_key");
            api_error_set(&e, 401, "unauthorized", NULL,
                          "send a valid API key as 'Authorization: Bearer <key>'");
            return http_respond_error_with(r, &e, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
        }
    }
    if (r->route == ROUTE_NONE)
        return http_not_found(r, "no such route; the API is described in docs/api.md");
    if (!method_allowed(r->route, method)) {
        api_error_set(&e, 405, "method_not_allowed", NULL, "%s is not allowed here; use %s", method,
                      routes[r->route].allow);
        return http_respond_error_with(r, &e, MHD_HTTP_HEADER_ALLOW, routes[r->route].allow);
    }
    if (!open) {
        const char *why = scope_refusal(&r->who, r->route, method);
        if (why) {
            char m[48];
            http_client_ip(r, ip, sizeof ip);
            log_msg(LOG_WARN, "auth.forbidden", "ip=%s key=%s method=%s", ip, r->who.label,
                    log_quote(m, sizeof m, method));
            api_error_set(&e, 403, "forbidden", NULL, "%s", why);
            return http_respond_error(r, &e);
        }
    }
    if (!strncmp(routes[r->route].name, "/v1/", 4)) {
        bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
        struct query_check q = {.params = get ? route_params(r->route) : ""};
        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, check_param, &q);
        if (q.bad) { /* the method is one the route allows: a plain token */
            if (q.bare)
                api_error_set(&e, 400, "invalid_field", q.bad,
                              "the query parameter '%.64s' has no value: give it one, or leave it out",
                              q.bad);
            else if (q.twice)
                api_error_set(&e, 400, "invalid_field", q.bad,
                              "give the query parameter '%.64s' once (several statuses: one "
                              "comma-separated list)", q.bad);
            else if (*q.params)
                api_error_set(&e, 400, "unknown_field", q.bad,
                              "unknown query parameter '%.64s'; %s %s takes %s", q.bad, method,
                              routes[r->route].name, q.params);
            else
                api_error_set(&e, 400, "unknown_field", q.bad,
                              "unknown query parameter '%.64s'; %s %s takes none", q.bad, method,
                              routes[r->route].name);
            return http_respond_error(r, &e);
        }
    }
    bool body = routes[r->route].has_body && (!strcmp(method, "POST") || !strcmp(method, "PUT"));
    const char *cl = f.cl, *te = f.te;
    if (body) {
        /* A replay may come without a body; everything else needs JSON. A
         * chunked replay's body may turn out empty: judged at its end. */
        bool may_be_empty = r->route == ROUTE_TASK_RETRY && (!cl || strtoull(cl, NULL, 10) == 0);
        if (may_be_empty && te) r->json_if_body = true;
        else if (!may_be_empty && !json_content_type(r)) return unsupported_media_type(r);
    }
    /* Any route: a body it would only read and drop (a cancel, a pause)
     * was read up to the limit and the connection then closed unanswered. */
    if (cl && strtoull(cl, NULL, 10) > api->cfg->max_body_bytes) {
        api_error_set(&e, 413, "body_too_large", NULL,
                      "the request body is larger than %zu bytes (max_body_bytes)",
                      api->cfg->max_body_bytes);
        return http_respond_error(r, &e);
    }
    buf_init(&r->body, api->cfg->max_body_bytes);
    return MHD_YES;
}

static enum MHD_Result dispatch(struct request *r)
{
    const char *m = r->method;
    bool get = !strcmp(m, "GET") || !strcmp(m, "HEAD");
    if (r->header_bytes) {
        struct api_error e;
        api_error_set(&e, 431, "headers_too_large", NULL,
                      "the request line and headers take about %zu bytes here, more than "
                      "http_memory_limit (%zu): send fewer or shorter headers", r->header_bytes,
                      r->api->cfg->http_memory_limit);
        return http_respond_error(r, &e);
    }
    if (r->too_large) {
        struct api_error e;
        api_error_set(&e, 413, "body_too_large", NULL,
                      "the request body is larger than %zu bytes (max_body_bytes)",
                      r->api->cfg->max_body_bytes);
        return http_respond_error(r, &e);
    }
    switch (r->route) {
    case ROUTE_HEALTH: return handle_health(r);
    case ROUTE_READY: return handle_ready(r);
    case ROUTE_TASKS: return get ? http_task_list(r) : http_task_create(r);
    case ROUTE_TASKS_CANCEL:
    case ROUTE_TASKS_RETRY: return http_tasks_bulk(r);
    case ROUTE_TASKS_BATCH: return http_task_batch(r);
    case ROUTE_TASK: return http_task_get(r);
    case ROUTE_TASK_ATTEMPTS: return http_task_attempts(r);
    case ROUTE_TASK_CANCEL: return http_task_cancel(r);
    case ROUTE_TASK_RETRY:
        if (r->json_if_body && r->body.len && !json_content_type(r)) return unsupported_media_type(r);
        return http_task_retry(r);
    case ROUTE_QUEUES: return http_queue_list(r);
    case ROUTE_QUEUE:
        if (get) return http_queue_get(r);
        return !strcmp(m, "PUT") ? http_queue_put(r) : http_queue_delete(r);
    case ROUTE_QUEUE_PAUSE: return http_queue_pause(r, true);
    case ROUTE_QUEUE_RESUME: return http_queue_pause(r, false);
    case ROUTE_SCHEDULES: return http_schedule_list(r);
    case ROUTE_SCHEDULE:
        if (get) return http_schedule_get(r);
        return !strcmp(m, "PUT") ? http_schedule_put(r) : http_schedule_delete(r);
    case ROUTE_SCHEDULE_PAUSE: return http_schedule_pause(r, true);
    case ROUTE_SCHEDULE_RESUME: return http_schedule_pause(r, false);
    case ROUTE_SCHEDULE_RUN: return http_schedule_run(r);
    case ROUTE_EVENTS: return http_events(r);
    case ROUTE_STATS: return http_stats(r);
    case ROUTE_WHOAMI: return http_whoami(r);
    case ROUTE_METRICS: return http_metrics(r);
    case ROUTE_ROOT:
    case ROUTE_DASHBOARD: return http_dashboard(r);
    case ROUTE_NONE: break;
    }
    return MHD_NO;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    struct http_api *api = cls;
    struct request *r = *con_cls;
    if (!r) {
        r = xcalloc(1, sizeof *r);
        r->api = api;
        r->conn = conn;
        *con_cls = r;
        atomic_fetch_add(&api->active, 1);
        return first_call(r, url, method, version);
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->too_large) {
            /* libmicrohttpd cannot answer in the middle of a body, so the rest
             * is read and dropped for the 413 (or 431) at its end; an upload
             * that goes on past DISCARD_MAX is cut off by closing the
             * connection. */
            r->discarded += n;
            return r->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
        }
        if (buf_append(&r->body, upload_data, n) < 0) {
            r->too_large = true;
            r->discarded = n;
            buf_free(&r->body);
        }
        return MHD_YES;
    }
    switch (r->state) {
    case REQ_READING: return dispatch(r);
    case REQ_COMMITTED:
        if (r->commit_rc != STORE_OK)
            return http_unavailable(r, "the change could not be stored (the database is not "
                                       "writable right now); nothing was changed, retry later");
        return r->finish(r);
    case REQ_WAITING: return http_task_get(r); /* a long-poll woke up */
    case REQ_COMMITTING: break;                /* cannot happen while suspended */
    }
    return MHD_YES;
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    struct http_api *api = cls;
    struct request *r = *con_cls;
    (void)conn;
    (void)toe;
    if (!r) return;
    metrics_http(routes[r->route].name, r->status);
    if (r->sub) events_unsubscribe(api->events, r->sub);
    if (r->waiter) longpoll_remove(api->longpoll, r->waiter);
    buf_free(&r->body);
    task_free(r->task);
    http_batch_free(r->batch);
    http_sched_free(r->sched);
    free(r->response);
    free(r->err);
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

struct http_api *http_api_start(const struct http_deps *deps, int listen_fd, bool metrics_only)
{
    const struct config *cfg = deps->cfg;
    struct http_api *api = xcalloc(1, sizeof *api);
    api->deps = *deps;
    api->metrics_only = metrics_only;
    api->cfg = cfg;
    api->auth = deps->auth;
    api->np = deps->np;
    api->store = deps->store;
    api->writer = deps->writer;
    api->longpoll = deps->longpoll;
    api->events = deps->events;
    api->trusted = xcalloc(cfg->n_trust_proxy ? cfg->n_trust_proxy : 1, sizeof *api->trusted);
    for (size_t i = 0; i < cfg->n_trust_proxy; i++)
        if (cidr_parse(cfg->trust_proxy[i], &api->trusted[api->n_trusted])) api->n_trusted++;
    api->listen_fd = listen_fd;
    atomic_init(&api->quiescing, false);
    atomic_init(&api->active, 0);
    atomic_init(&api->committing, 0);
    struct sockaddr_storage ss = {0};
    socklen_t sl = sizeof ss;
    getsockname(listen_fd, (struct sockaddr *)&ss, &sl);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    api->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, handle, api, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, listen_fd, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)cfg->http_threads, MHD_OPTION_NOTIFY_COMPLETED, request_completed, api,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)((cfg->http_timeout_ms + 999) / 1000),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->http_max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->http_max_connections_per_ip,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->http_memory_limit + POOL_HEADROOM, MHD_OPTION_UNESCAPE_CALLBACK,
        unescape, NULL, MHD_OPTION_END);
    if (!api->daemon) {
        log_msg(LOG_ERROR, "http.start_failed", "error=\"libmicrohttpd did not start\"");
        free(api->trusted);
        free(api);
        return NULL;
    }
    if (!metrics_only && !(api->timer = schedule_timer_start(api))) {
        MHD_stop_daemon(api->daemon);
        free(api->trusted);
        free(api);
        return NULL;
    }
    return api;
}

void http_api_quiesce(struct http_api *api)
{
    if (!api || atomic_exchange(&api->quiescing, true)) return;
    schedule_timer_quiesce(api->timer);
    MHD_socket fd = MHD_quiesce_daemon(api->daemon);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    api->listen_fd = -1;
}

void http_api_stop(struct http_api *api)
{
    if (!api) return;
    http_api_quiesce(api);
    schedule_timer_stop(api->timer); /* its last run committed: the writer still runs */
    if (api->longpoll) longpoll_fire_all(api->longpoll);
    if (api->events) events_close_all(api->events);
    /* Let requests in progress (writes waiting for their commit above all)
     * get their answer before the connections close. */
    int64_t deadline = util_mono_ms() + STOP_WAIT_MS;
    /* A suspended connection must be resumed before MHD stops; the writer
     * always completes every op, so this wait ends. */
    while (atomic_load(&api->committing) > 0 ||
           (atomic_load(&api->active) > 0 && util_mono_ms() < deadline)) {
        if (api->longpoll) longpoll_fire_all(api->longpoll); /* one that started meanwhile */
        if (api->events) events_close_all(api->events);
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(api->daemon);
    /* Every request is done, and every write of theirs (the writer
     * completes each op before its request ends): nothing uses the zones. */
    schedule_timer_free(api->timer);
    free(api->trusted);
    free(api);
}
