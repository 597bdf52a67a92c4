/*
 * events: the event ring, subscribers and heartbeat. See events.h for the
 * design.
 */
#include "events.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

#define HEARTBEAT_MS 15000

struct event {
    uint64_t seq;
    char tenant[65];
    char *json;
};

struct events_sub {
    struct events_sub *prev, *next;
    void *arg;
    char tenant[65];
    bool all_tenants;
    uint64_t next_seq;
    bool suspended;
    bool ping;          /* send a heartbeat comment */
    bool hello;         /* the opening comment is still to send */
    bool ended;         /* events_end_streams: reads end-of-stream */
};

struct events {
    void (*resume)(void *arg);
    pthread_mutex_t lock;        /* guards everything below */
    pthread_cond_t cond;
    struct event *ring;
    size_t cap;
    uint64_t next_seq;           /* seq of the next event published */
    uint64_t first_seq;          /* this process's first: its start time in µs */
    struct events_sub *subs;
    int n_subs;
    atomic_int active;           /* n_subs, readable without the lock */
    atomic_llong left_at_ms;     /* when the last subscriber left (monotonic) */
    bool closing;
    bool stopping;
    pthread_t heartbeat;
};

static void wake_sub(struct events *ev, struct events_sub *s)
{
    if (!s->suspended) return;
    s->suspended = false;
    ev->resume(s->arg);
}

static void *heartbeat_main(void *arg)
{
    struct events *ev = arg;
    pthread_mutex_lock(&ev->lock);
    while (!ev->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += HEARTBEAT_MS / 1000;
        pthread_cond_timedwait(&ev->cond, &ev->lock, &ts);
        if (ev->stopping) break;
        for (struct events_sub *s = ev->subs; s; s = s->next) {
            s->ping = true;
            wake_sub(ev, s);
        }
    }
    pthread_mutex_unlock(&ev->lock);
    return NULL;
}

struct events *events_new(size_t capacity, void (*resume)(void *arg))
{
    struct events *ev = xcalloc(1, sizeof *ev);
    ev->resume = resume;
    ev->cap = capacity;
    ev->ring = xcalloc(capacity, sizeof *ev->ring);
    /* Ids go on rising across restarts: a client's Last-Event-ID from the
     * process before is then one this process never had (a reset), not one
     * of its own that had not happened yet. */
    ev->first_seq = ev->next_seq = (uint64_t)util_now_ms() * 1000;
    pthread_mutex_init(&ev->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ev->cond, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&ev->active, 0);
    if (pthread_create(&ev->heartbeat, NULL, heartbeat_main, ev) != 0) {
        free(ev->ring);
        free(ev);
        return NULL;
    }
    pthread_setname_np(ev->heartbeat, "aq-events");
    return ev;
}

void events_close_all(struct events *ev)
{
    if (!ev) return;
    pthread_mutex_lock(&ev->lock);
    ev->closing = true;
    for (struct events_sub *s = ev->subs; s; s = s->next) wake_sub(ev, s);
    pthread_mutex_unlock(&ev->lock);
}

void events_end_streams(struct events *ev)
{
    if (!ev) return;
    pthread_mutex_lock(&ev->lock);
    for (struct events_sub *s = ev->subs; s; s = s->next) {
        s->ended = true;
        wake_sub(ev, s);
    }
    pthread_mutex_unlock(&ev->lock);
}

void events_free(struct events *ev)
{
    if (!ev) return;
    events_close_all(ev);
    pthread_mutex_lock(&ev->lock);
    ev->stopping = true;
    pthread_cond_signal(&ev->cond);
    pthread_mutex_unlock(&ev->lock);
    pthread_join(ev->heartbeat, NULL);
    for (size_t i = 0; i < ev->cap; i++) free(ev->ring[i].json);
    free(ev->ring);
    pthread_mutex_destroy(&ev->lock);
    pthread_cond_destroy(&ev->cond);
    free(ev);
}

/* Events keep being recorded for a while after the last subscriber left,
 * so a client that reconnects with Last-Event-ID misses nothing. */
#define RESUME_WINDOW_MS 60000

bool events_active(struct events *ev)
{
    if (atomic_load_explicit(&ev->active, memory_order_relaxed) > 0) return true;
    long long left = atomic_load_explicit(&ev->left_at_ms, memory_order_relaxed);
    return left > 0 && util_mono_ms() - left < RESUME_WINDOW_MS;
}

void events_publish(struct events *ev, const char *tenant, char *json)
{
    pthread_mutex_lock(&ev->lock);
    struct event *e = &ev->ring[ev->next_seq % ev->cap];
    free(e->json);
    e->seq = ev->next_seq++;
    snprintf(e->tenant, sizeof e->tenant, "%s", tenant ? tenant : "");
    e->json = json;
    pthread_mutex_unlock(&ev->lock);
}

void events_wake(struct events *ev)
{
    pthread_mutex_lock(&ev->lock);
    for (struct events_sub *s = ev->subs; s; s = s->next)
        if (s->next_seq < ev->next_seq) wake_sub(ev, s);
    pthread_mutex_unlock(&ev->lock);
}

struct events_sub *events_subscribe(struct events *ev, const char *tenant, void *arg,
                                    long long last_id)
{
    struct events_sub *s = xcalloc(1, sizeof *s);
    s->arg = arg;
    s->all_tenants = tenant == NULL;
    snprintf(s->tenant, sizeof s->tenant, "%s", tenant ? tenant : "");
    s->hello = true;
    pthread_mutex_lock(&ev->lock);
    s->next_seq = ev->next_seq;
    /* A resume: from the event after the last one seen (events_read sends
     * reset when that one has left the ring). An id this process never gave
     * (from before a restart, or another daemon's) is a reset too: started
     * "now", a restart silently lost what was published before the client
     * came back. */
    if (last_id >= 0) {
        uint64_t want = (uint64_t)last_id + 1;
        s->next_seq = want >= ev->first_seq && want <= ev->next_seq ? want : 0;
    }
    s->next = ev->subs;
    if (ev->subs) ev->subs->prev = s;
    ev->subs = s;
    ev->n_subs++;
    atomic_store(&ev->active, ev->n_subs);
    pthread_mutex_unlock(&ev->lock);
    return s;
}

void events_unsubscribe(struct events *ev, struct events_sub *s)
{
    if (!s) return;
    pthread_mutex_lock(&ev->lock);
    if (s->prev) s->prev->next = s->next;
    else ev->subs = s->next;
    if (s->next) s->next->prev = s->prev;
    ev->n_subs--;
    atomic_store(&ev->active, ev->n_subs);
    if (ev->n_subs == 0) atomic_store(&ev->left_at_ms, util_mono_ms());
    pthread_mutex_unlock(&ev->lock);
    free(s);
}

static bool append(char *buf, size_t max, size_t *o, const char *text)
{
    size_t n = strlen(text);
    if (*o + n > max) return false;
    memcpy(buf + *o, text, n);
    *o += n;
    return true;
}

ssize_t events_read(struct events *ev, struct events_sub *s, char *buf, size_t max,
                    void (*suspend)(void *arg))
{
    size_t o = 0;
    pthread_mutex_lock(&ev->lock);
    if (ev->closing || s->ended) {
        pthread_mutex_unlock(&ev->lock);
        return -1;
    }
    if (s->hello) {
        /* Sent at once so clients (and proxies) see the stream open. */
        if (append(buf, max, &o, ": asyncqueue events\nretry: 2000\n\n")) s->hello = false;
    }
    uint64_t oldest = ev->next_seq > ev->first_seq + ev->cap ? ev->next_seq - ev->cap : ev->first_seq;
    if (s->next_seq < oldest) {
        if (append(buf, max, &o, "event: reset\ndata: {}\n\n")) s->next_seq = oldest;
    }
    char head[64];
    while (s->next_seq < ev->next_seq) {
        const struct event *e = &ev->ring[s->next_seq % ev->cap];
        if (s->all_tenants || strcmp(s->tenant, e->tenant) == 0) {
            snprintf(head, sizeof head, "id: %llu\nevent: task\ndata: ", (unsigned long long)e->seq);
            size_t need = strlen(head) + strlen(e->json) + 2;
            if (o + need > max) break;
            append(buf, max, &o, head);
            append(buf, max, &o, e->json);
            append(buf, max, &o, "\n\n");
        }
        s->next_seq++;
    }
    if (o == 0 && s->ping) append(buf, max, &o, ": ping\n\n");
    s->ping = false;
    if (o == 0) {
        suspend(s->arg);
        s->suspended = true;
    }
    pthread_mutex_unlock(&ev->lock);
    return (ssize_t)o;
}

int events_subscribers(struct events *ev)
{
    return atomic_load(&ev->active);
}
