/*
 * http_api: the REST front end on libmicrohttpd. Routes, authentication,
 * body caps, and the write paths: validate, hand the write to the writer,
 * suspend the connection, and resume it with the answer once the write is
 * committed. HTTP threads never wait for the disk.
 *
 * DESIGN
 * - Threads: libmicrohttpd's internal pool (http_threads threads, poll
 *   mode). Handlers run there; a write's completion runs on the writer
 *   thread and only records the result and calls MHD_resume_connection().
 * - Reads (GET) use a pooled store connection on the HTTP thread; WAL makes
 *   them independent of the writer.
 * - Long-polls (GET /v1/tasks/{id}?wait=N) are suspended connections in the
 *   longpoll registry, resumed when the task finishes or the wait ends.
 * - Shutdown: http_api_quiesce() stops accepting and answers new writes
 *   with 503; http_api_stop() answers the long-polls, waits for writes in
 *   progress to be answered, then stops the daemon.
 */
#ifndef AQ_HTTP_API_H
#define AQ_HTTP_API_H

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "config.h"
#include "events.h"
#include "longpoll.h"
#include "netpolicy.h"
#include "store.h"
#include "writer.h"

struct http_api;

/* Creates a listening socket for "host:port" ("[v6]:port" for IPv6).
 * Returns the fd and sets *port (the bound port, useful with port 0) and
 * *loopback (whether the address is a loopback one), or -1 with err. */
int http_listen(const char *addr, int *port, bool *loopback, char *err, size_t err_len);

/* Resolves "host:port" as http_listen would, without binding: 0 and
 * *loopback, or -1 with err (for --check-config). */
int http_listen_check(const char *addr, bool *loopback, char *err, size_t err_len);

/* What the HTTP front end uses; all borrowed, all must outlive it. longpoll
 * and events must have been made with http_resume_request as their resume
 * function. */
struct http_deps {
    const struct config *cfg;
    struct auth *auth;
    const struct netpolicy *np;
    struct store *store;
    struct writer *writer;
    struct longpoll *longpoll;
    struct events *events;
    int (*inflight)(void *arg); /* calls in flight, for /metrics */
    void *inflight_arg;
};

/* Starts serving the API on listen_fd (takes ownership). With metrics_only
 * it serves just GET /metrics, without authentication (metrics_listen).
 * Returns NULL on failure (logged). */
struct http_api *http_api_start(const struct http_deps *deps, int listen_fd, bool metrics_only);
/* The resume function for longpoll_new(). */
void http_resume_request(void *arg);
/* Stops accepting connections and refuses new writes with 503. */
void http_api_quiesce(struct http_api *api);
/* Answers long-polls, waits (bounded) for requests in progress, stops the
 * server and frees it. NULL is a no-op. */
void http_api_stop(struct http_api *api);

#endif
