/*
 * events: the live feed behind GET /v1/events (server-sent events) and the
 * dashboard. The writer publishes a small JSON event for every change it
 * commits (accepted, started, retrying, completed, failed, cancelled,
 * replayed); subscribers are suspended libmicrohttpd connections that read
 * from a ring of recent events at their own pace.
 *
 * DESIGN
 * - Threads: the writer thread publishes and, after each batch, wakes
 *   subscribers with something to read; HTTP threads read (in the content
 *   reader callback) and suspend when they have caught up; a heartbeat
 *   thread wakes everyone every 15 s (a comment line keeps proxies from
 *   closing idle streams and finds clients that went away). One mutex
 *   guards the ring and the subscribers.
 * - A subscriber that falls more than the ring's size behind gets a
 *   `reset` event and continues from the oldest event kept: the feed is a
 *   view, the API is the truth.
 * - Publishing costs nothing while nobody subscribes (events_active()),
 *   except for a minute after the last one left, so it can resume with
 *   Last-Event-ID.
 */
#ifndef AQ_EVENTS_H
#define AQ_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct events;
struct events_sub;

/* resume(arg) resumes a suspended subscriber's connection. */
struct events *events_new(size_t capacity, void (*resume)(void *arg));
/* Wakes every subscriber one last time (their streams end), stops the
 * heartbeat, frees. Subscribers must be gone (unsubscribed) before. NULL is
 * a no-op. */
void events_free(struct events *ev);
/* Ends every stream: subscribers are woken and read end-of-stream. */
void events_close_all(struct events *ev);
/* Ends the streams open now, not later ones: each client reconnects (with
 * its Last-Event-ID, missing nothing) and so shows its key again. After the
 * keys change (SIGHUP), a key taken away stops receiving events. */
void events_end_streams(struct events *ev);

/* True while someone subscribes. Any thread, lock-free. */
bool events_active(struct events *ev);
/* Appends an event (takes ownership of json). tenant "" is visible only to
 * keys without a tenant. Writer thread. */
void events_publish(struct events *ev, const char *tenant, char *json);
/* Wakes subscribers that have unread events. Writer thread, after a batch. */
void events_wake(struct events *ev);

/* A new subscriber seeing tenant's events (NULL: all). arg is passed to
 * resume. It starts with the events published from now on, or, given
 * last_id >= 0 (the client's Last-Event-ID), with the one after it: still in
 * the ring, nothing is missed; gone, or an id this process never gave (ids
 * start at the process's start time in µs), the client gets `reset`. */
struct events_sub *events_subscribe(struct events *ev, const char *tenant, void *arg,
                                    long long last_id);
void events_unsubscribe(struct events *ev, struct events_sub *sub);
/* Fills buf (up to max bytes) with SSE text for the subscriber. When there
 * is nothing to send it calls suspend(arg) under the lock and returns 0.
 * Returns -1 when the stream has ended (shutdown). */
ssize_t events_read(struct events *ev, struct events_sub *sub, char *buf, size_t max,
                    void (*suspend)(void *arg));
/* Subscribers now. */
int events_subscribers(struct events *ev);

#endif
