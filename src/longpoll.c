/*
 * longpoll: the registry of waiting requests and its timer thread. See
 * longpoll.h for the design.
 */
#include "longpoll.h"

#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "strmap.h"
#include "util.h"

enum waiter_state { W_REGISTERED, W_SUSPENDED, W_FIRED };

#define HANGUP_CHECK_MS 1000 /* how often suspended clients are looked at */

struct longpoll_waiter {
    char *task_id;
    int64_t deadline_ms;
    int fd;
    void *arg;
    enum waiter_state state;
    bool hung_up; /* fired because the client went away */
    bool linked;
    struct longpoll_waiter *prev, *next; /* in the list of its task */
};

struct longpoll {
    void (*resume)(void *arg);
    pthread_mutex_t lock;          /* guards everything below */
    pthread_cond_t cond;
    struct strmap by_task;         /* task id -> first waiter */
    int count;
    int64_t next_hangup_check;
    bool stopping;
    pthread_t timer;
};

static void unlink_waiter(struct longpoll *lp, struct longpoll_waiter *w)
{
    if (!w->linked) return;
    if (w->prev) {
        w->prev->next = w->next;
    } else if (w->next) {
        strmap_put(&lp->by_task, w->task_id, w->next);
    } else {
        strmap_remove(&lp->by_task, w->task_id);
    }
    if (w->next) w->next->prev = w->prev;
    w->prev = w->next = NULL;
    w->linked = false;
    lp->count--;
}

/* Under the lock: takes w out of the registry and resumes it if suspended. */
static void fire(struct longpoll *lp, struct longpoll_waiter *w)
{
    unlink_waiter(lp, w);
    enum waiter_state was = w->state;
    w->state = W_FIRED;
    if (was == W_SUSPENDED) lp->resume(w->arg);
}

struct expire {
    struct longpoll *lp;
    int64_t now, next;
    struct longpoll_waiter **due;
    size_t n, cap;
};

static void find_expired(const char *key, void *value, void *arg)
{
    struct expire *e = arg;
    (void)key;
    for (struct longpoll_waiter *w = value; w; w = w->next) {
        if (w->deadline_ms <= e->now) {
            if (e->n == e->cap) {
                e->cap = e->cap ? e->cap * 2 : 16;
                e->due = xrealloc(e->due, e->cap * sizeof *e->due);
            }
            e->due[e->n++] = w;
        } else if (w->deadline_ms < e->next) {
            e->next = w->deadline_ms;
        }
    }
}

struct watched {
    struct pollfd *fds;
    struct longpoll_waiter **w;
    size_t n, cap;
};

static void find_suspended(const char *key, void *value, void *arg)
{
    struct watched *s = arg;
    (void)key;
    for (struct longpoll_waiter *w = value; w; w = w->next) {
        if (w->state != W_SUSPENDED || w->fd < 0) continue;
        if (s->n == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 16;
            s->fds = xrealloc(s->fds, s->cap * sizeof *s->fds);
            s->w = xrealloc(s->w, s->cap * sizeof *s->w);
        }
        s->fds[s->n] = (struct pollfd){.fd = w->fd, .events = POLLRDHUP};
        s->w[s->n++] = w;
    }
}

/* Under the lock: resumes the suspended waiters whose client hung up (the
 * socket stays theirs: libmicrohttpd closes it only after the resume). */
static void fire_hung_up(struct longpoll *lp)
{
    struct watched s = {0};
    strmap_each(&lp->by_task, find_suspended, &s);
    if (s.n && poll(s.fds, s.n, 0) > 0) {
        for (size_t i = 0; i < s.n; i++)
            if (s.fds[i].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) {
                s.w[i]->hung_up = true; /* before the resume that makes it read */
                fire(lp, s.w[i]);
            }
    }
    free(s.fds);
    free(s.w);
}

static void *timer_main(void *arg)
{
    struct longpoll *lp = arg;
    pthread_mutex_lock(&lp->lock);
    while (!lp->stopping) {
        struct expire e = {.lp = lp, .now = util_mono_ms(), .next = INT64_MAX};
        strmap_each(&lp->by_task, find_expired, &e);
        for (size_t i = 0; i < e.n; i++) fire(lp, e.due[i]);
        free(e.due);
        if (e.now >= lp->next_hangup_check) {
            fire_hung_up(lp);
            lp->next_hangup_check = e.now + HANGUP_CHECK_MS;
        }
        if (lp->count > 0 && lp->next_hangup_check < e.next) e.next = lp->next_hangup_check;
        int64_t wait = e.next == INT64_MAX ? 60000 : e.next - util_mono_ms();
        if (wait < 1) continue;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&lp->cond, &lp->lock, &ts);
    }
    pthread_mutex_unlock(&lp->lock);
    return NULL;
}

struct longpoll *longpoll_new(void (*resume)(void *arg))
{
    struct longpoll *lp = xcalloc(1, sizeof *lp);
    lp->resume = resume;
    pthread_mutex_init(&lp->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&lp->cond, &ca);
    pthread_condattr_destroy(&ca);
    strmap_init(&lp->by_task);
    if (pthread_create(&lp->timer, NULL, timer_main, lp) != 0) {
        strmap_free(&lp->by_task, NULL);
        pthread_mutex_destroy(&lp->lock);
        pthread_cond_destroy(&lp->cond);
        free(lp);
        return NULL;
    }
    pthread_setname_np(lp->timer, "aq-longpoll");
    return lp;
}

static void fire_list(const char *key, void *value, void *arg)
{
    (void)key;
    struct longpoll_waiter ***acc = arg;
    for (struct longpoll_waiter *w = value; w; w = w->next) *(*acc)++ = w;
}

void longpoll_fire_all(struct longpoll *lp)
{
    pthread_mutex_lock(&lp->lock);
    struct longpoll_waiter **all = xcalloc((size_t)lp->count + 1, sizeof *all), **p = all;
    strmap_each(&lp->by_task, fire_list, &p);
    for (struct longpoll_waiter **q = all; q < p; q++) fire(lp, *q);
    free(all);
    pthread_mutex_unlock(&lp->lock);
}

void longpoll_free(struct longpoll *lp)
{
    if (!lp) return;
    longpoll_fire_all(lp);
    pthread_mutex_lock(&lp->lock);
    lp->stopping = true;
    pthread_cond_signal(&lp->cond);
    pthread_mutex_unlock(&lp->lock);
    pthread_join(lp->timer, NULL);
    strmap_free(&lp->by_task, NULL);
    pthread_mutex_destroy(&lp->lock);
    pthread_cond_destroy(&lp->cond);
    free(lp);
}

struct longpoll_waiter *longpoll_add(struct longpoll *lp, const char *task_id,
                                     int64_t deadline_mono_ms, int fd, void *arg)
{
    struct longpoll_waiter *w = xcalloc(1, sizeof *w);
    w->task_id = xstrdup(task_id);
    w->deadline_ms = deadline_mono_ms;
    w->fd = fd;
    w->arg = arg;
    w->state = W_REGISTERED;
    pthread_mutex_lock(&lp->lock);
    struct longpoll_waiter *first = strmap_get(&lp->by_task, task_id);
    w->next = first;
    if (first) first->prev = w;
    strmap_put(&lp->by_task, task_id, w);
    w->linked = true;
    lp->count++;
    pthread_cond_signal(&lp->cond); /* it may be the earliest deadline */
    pthread_mutex_unlock(&lp->lock);
    return w;
}

bool longpoll_arm(struct longpoll *lp, struct longpoll_waiter *w, void (*suspend)(void *arg))
{
    pthread_mutex_lock(&lp->lock);
    bool armed = w->state == W_REGISTERED;
    if (armed) {
        suspend(w->arg);
        w->state = W_SUSPENDED;
    }
    pthread_mutex_unlock(&lp->lock);
    return armed;
}

bool longpoll_hung_up(struct longpoll *lp, struct longpoll_waiter *w)
{
    pthread_mutex_lock(&lp->lock);
    bool gone = w->hung_up;
    pthread_mutex_unlock(&lp->lock);
    return gone;
}

void longpoll_remove(struct longpoll *lp, struct longpoll_waiter *w)
{
    if (!w) return;
    pthread_mutex_lock(&lp->lock);
    unlink_waiter(lp, w);
    pthread_mutex_unlock(&lp->lock);
    free(w->task_id);
    free(w);
}

void longpoll_notify(struct longpoll *lp, const char *task_id)
{
    pthread_mutex_lock(&lp->lock);
    struct longpoll_waiter *w;
    while ((w = strmap_get(&lp->by_task, task_id))) fire(lp, w);
    pthread_mutex_unlock(&lp->lock);
}

int longpoll_count(struct longpoll *lp)
{
    pthread_mutex_lock(&lp->lock);
    int n = lp->count;
    pthread_mutex_unlock(&lp->lock);
    return n;
}
