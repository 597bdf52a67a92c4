/*
 * http_observe: the routes for watching the daemon: GET /metrics
 * (Prometheus), GET /v1/events (server-sent events), GET /v1/stats (the
 * last hour per minute), GET /v1/whoami, and the dashboard's files.
 */
#include <stdlib.h>
#include <string.h>

#include "embedded.h"
#include "http_internal.h"
#include "log.h"
#include "metrics.h"


/* ---- /metrics ---- */

enum MHD_Result http_metrics(struct request *r)
{
    struct http_api *api = r->api;
    size_t n;
    struct queue_info *qs;
    /* A failed read of the waiting counts is logged there; the rest is still worth serving. */
    (void)http_queue_view(api, &qs, &n);
    struct metrics_gauges g = {
        .backlog = writer_backlog(api->writer),
        .inflight = api->deps.inflight ? api->deps.inflight(api->deps.inflight_arg) : 0,
        .longpoll_waiters = api->longpoll ? longpoll_count(api->longpoll) : 0,
        .queues = qs,
        .n_queues = n,
        .max_queues = (size_t)api->cfg->metrics_max_queues,
    };
    char *text = metrics_render(&g);
    free(qs);
    if (!text) {
        /* Cannot happen (the text's buffer is sized from its series); if it
         * ever does, say so rather than serve a text cut short. */
        log_msg(LOG_ERROR, "metrics.render_failed", "queues=%zu", n);
        struct api_error e;
        api_error_set(&e, 500, "internal_error", NULL,
                      "the metrics text did not fit its buffer (%zu queues); this is a bug, "
                      "please report it", n);
        return http_respond_error(r, &e);
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    r->status = MHD_HTTP_OK;
    enum MHD_Result rc = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* ---- /v1/events ---- */

static void suspend_request(void *arg)
{
    struct request *r = arg;
    MHD_suspend_connection(r->conn);
}

static ssize_t read_events(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct request *r = cls;
    (void)pos;
    ssize_t n = events_read(r->api->events, r->sub, buf, max, suspend_request);
    return n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : n;
}

enum MHD_Result http_events(struct request *r)
{
    struct http_api *api = r->api;
    if (atomic_load(&api->quiescing)) return http_unavailable(r, "the server is shutting down");
    bool head = !strcmp(r->method, "HEAD"); /* the stream's headers, and no stream */
    const char *last = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Last-Event-ID");
    char *end = NULL;
    long long last_id = last ? strtoll(last, &end, 10) : -1;
    if (last && (end == last || *end || last_id < 0)) last_id = -1;
    if (!head) r->sub = events_subscribe(api->events, http_tenant(r), r, last_id);
    struct MHD_Response *resp =
        head ? MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT)
             : MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, read_events, r, NULL);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no"); /* nginx: pass events at once */
    r->status = MHD_HTTP_OK;
    enum MHD_Result rc = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* ---- /v1/stats, /v1/whoami ---- */

enum MHD_Result http_stats(struct request *r)
{
    struct http_api *api = r->api;
    const char *m = http_arg(r, "minutes");
    int64_t minutes = 60;
    if (m && !util_whole_number(m, 1, 60, &minutes)) {
        struct api_error e;
        api_error_set(&e, 400, "invalid_field", "minutes", "minutes must be from 1 to 60");
        return http_respond_error(r, &e);
    }
    char *hist = metrics_history_json((int)minutes);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "minutes", cJSON_Parse(hist));
    free(hist);
    cJSON_AddNumberToObject(o, "backlog", (double)writer_backlog(api->writer));
    cJSON_AddNumberToObject(o, "inflight", api->deps.inflight ? api->deps.inflight(api->deps.inflight_arg) : 0);
    cJSON_AddNumberToObject(o, "subscribers", events_subscribers(api->events));
    return http_respond_json(r, MHD_HTTP_OK, o);
}

enum MHD_Result http_whoami(struct request *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "scope", auth_scope_name(r->who.scope));
    if (r->who.tenant[0]) cJSON_AddStringToObject(o, "tenant", r->who.tenant);
    else cJSON_AddNullToObject(o, "tenant");
    cJSON_AddStringToObject(o, "key", r->who.label);
    cJSON_AddBoolToObject(o, "authRequired", auth_enabled(r->api->auth));
    return http_respond_json(r, MHD_HTTP_OK, o);
}

/* ---- the dashboard's files ---- */

static const char *content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot) return "application/octet-stream";
    if (!strcmp(dot, ".html")) return "text/html; charset=utf-8";
    if (!strcmp(dot, ".js")) return "text/javascript; charset=utf-8";
    if (!strcmp(dot, ".css")) return "text/css; charset=utf-8";
    if (!strcmp(dot, ".svg")) return "image/svg+xml";
    if (!strcmp(dot, ".png")) return "image/png";
    if (!strcmp(dot, ".json")) return "application/json";
    return "application/octet-stream";
}

enum MHD_Result http_dashboard(struct request *r)
{
    struct MHD_Response *resp;
    enum MHD_Result rc;
    if (r->route == ROUTE_ROOT) {
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (!resp) return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, "/dashboard/");
        r->status = MHD_HTTP_FOUND;
        rc = MHD_queue_response(r->conn, MHD_HTTP_FOUND, resp);
        MHD_destroy_response(resp);
        return rc;
    }
    const char *name = r->asset[0] ? r->asset : "index.html";
    const struct embedded_file *f = NULL;
    for (const struct embedded_file *e = embedded_dashboard; e->name && !f; e++)
        if (strcmp(e->name, name) == 0) f = e;
    if (!f) return http_not_found(r, "no such dashboard file");
    resp = MHD_create_response_from_buffer(f->len, (void *)(uintptr_t)f->data, MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type(name));
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    /* The page only talks to this daemon: no inline scripts or framing. */
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                            "script-src 'self'; connect-src 'self'; frame-ancestors 'none'");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    r->status = MHD_HTTP_OK;
    rc = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return rc;
}
