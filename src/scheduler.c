/*
 * scheduler: queues' settings and counters, host in-flight counts, and the
 * claim plan. See scheduler.h for the design.
 */
#include "scheduler.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"
#include "util.h"

#define WINDOW_S 60

struct window {
    int64_t sec[WINDOW_S];
    int n[WINDOW_S];
};

struct squeue {
    char name[65];
    struct queue_settings s;
    bool configured;
    int64_t due_ms;         /* earliest queued run_at known, INT64_MAX: none */
    int inflight;
    double tokens;
    int64_t tokens_at_ms;
    int64_t hold_seq;       /* FIFO: the task that must run next */
    int64_t hold_until_ms;
    char *hold_host;        /* its host when known: it waits while that host is at its cap */
    bool resting;           /* all due tasks are on capped hosts */
    uint64_t rest_epoch;
    int64_t accepted, dispatched, completed, failed, cancelled;
    struct window w_accepted, w_dispatched, w_completed, w_failed, w_cancelled;
    int64_t touched_ms;     /* monotonic: the last call about this queue (forget_idle) */
    struct squeue *ring_prev, *ring_next; /* every queue, in the order of turns */
};

struct shost {
    int inflight;
};

struct scheduler {
    pthread_mutex_t lock;
    struct strmap queues;   /* name -> struct squeue */
    struct strmap hosts;    /* host -> struct shost */
    int max_per_host;
    uint64_t host_epoch;    /* bumps whenever a capped host frees a slot */
    /* Every queue is on a ring, and a plan looks at the queues from the one
     * whose turn it is, until its list is full: the turns go round all of
     * them however many there are, and a plan with many queues due stops
     * looking once it has enough. */
    struct squeue *turn;
    const char **capped;
    size_t n_capped, cap_capped;
    int inflight;
    /* The earliest time any queue may start a task, as scheduler_next_wake
     * last found it by looking at every queue, or earlier: a change that can
     * only make some queue's time earlier (a task due) lowers it, any other
     * that can let a queue start sooner forgets it. Until then neither the
     * writer's wake nor its claim looks at every queue again: with tens of
     * thousands of queue names each waiting for later, each did at every
     * batch, and took tasks in at a tenth of the rate. */
    int64_t wake_at;
    bool wake_known;
    /* The last plan left out a queue that could start a task then (its
     * slots ran out, or its list was full): the wake is now, whatever has
     * changed since, until a plan finds none left. With thousands of queues
     * due, each freed slot forgot the known wake, and the writer looked at
     * every queue before each claim to learn that it was now. */
    bool start_pending;
    /* How the claims of the last plan move the turn (scheduler_claim_done):
     * past the first queue that got tasks when every queue that could start
     * was given its share, else past the last one that got tasks. The plan
     * cannot decide it: where a host's cap is what limits, the first queue
     * claimed takes the room, and a queue given a share that found none
     * must keep its place, or it loses its turn to every plan. */
    bool turn_after_first, turn_moved;
    uint64_t looks; /* queues looked at by plans and wakes (scheduler_looks) */
};

/* A queue may start a task at at (or later): the known wake is at most that. */
static void wake_no_later_than(struct scheduler *s, int64_t at)
{
    if (s->wake_known && at < s->wake_at) s->wake_at = at;
}

/* Something may let a queue start sooner than known: look at all again. */
static void wake_forget(struct scheduler *s)
{
    s->wake_known = false;
}

static void hold_set(struct squeue *q, int64_t seq, int64_t until_ms, const char *host)
{
    q->hold_seq = seq;
    q->hold_until_ms = until_ms;
    free(q->hold_host);
    q->hold_host = host && *host ? xstrdup(host) : NULL;
}

static void hold_clear(struct squeue *q)
{
    q->hold_seq = 0;
    free(q->hold_host);
    q->hold_host = NULL;
}

static void queue_free(void *value)
{
    struct squeue *q = value;
    free(q->hold_host);
    free(q);
}

/* Calls to host that may start now (INT32_MAX when hosts are not capped);
 * s->lock held. */
static int host_room_locked(const struct scheduler *s, const char *host)
{
    if (s->max_per_host <= 0) return INT32_MAX;
    const struct shost *h = strmap_get(&s->hosts, host);
    int room = s->max_per_host - (h ? h->inflight : 0);
    return room > 0 ? room : 0;
}

struct scheduler *scheduler_new(int max_per_host)
{
    struct scheduler *s = xcalloc(1, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    strmap_init(&s->queues);
    strmap_init(&s->hosts);
    s->max_per_host = max_per_host;
    return s;
}

void scheduler_free(struct scheduler *s)
{
    if (!s) return;
    strmap_free(&s->queues, queue_free);
    strmap_free(&s->hosts, free);
    free(s->capped);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* A new queue takes its turn last, after every queue already there. */
static void ring_add(struct scheduler *s, struct squeue *q)
{
    if (!s->turn) {
        q->ring_prev = q->ring_next = q;
        s->turn = q;
        return;
    }
    q->ring_next = s->turn;
    q->ring_prev = s->turn->ring_prev;
    q->ring_prev->ring_next = q;
    s->turn->ring_prev = q;
}

static void ring_remove(struct scheduler *s, struct squeue *q)
{
    if (q->ring_next == q) {
        s->turn = NULL;
        return;
    }
    q->ring_prev->ring_next = q->ring_next;
    q->ring_next->ring_prev = q->ring_prev;
    if (s->turn == q) s->turn = q->ring_next;
}

static struct squeue *queue_get(struct scheduler *s, const char *name)
{
    struct squeue *q = strmap_get(&s->queues, name);
    if (!q) {
        q = xcalloc(1, sizeof *q);
        snprintf(q->name, sizeof q->name, "%s", name);
        queue_settings_default(&q->s);
        q->due_ms = INT64_MAX;
        strmap_put(&s->queues, name, q);
        ring_add(s, q);
    }
    q->touched_ms = util_mono_ms();
    return q;
}

static void window_add(struct window *w, int64_t now_ms)
{
    int64_t sec = now_ms / 1000;
    int i = (int)(sec % WINDOW_S);
    if (w->sec[i] != sec) {
        w->sec[i] = sec;
        w->n[i] = 0;
    }
    w->n[i]++;
}

static int window_sum(const struct window *w, int64_t now_ms)
{
    int64_t sec = now_ms / 1000;
    int sum = 0;
    for (int i = 0; i < WINDOW_S; i++)
        if (w->sec[i] > sec - WINDOW_S && w->sec[i] <= sec) sum += w->n[i];
    return sum;
}

static void refill(struct squeue *q, int64_t now_ms)
{
    if (q->s.rate_per_sec <= 0) return;
    if (q->tokens_at_ms == 0) {
        q->tokens = q->s.burst;
    } else if (now_ms > q->tokens_at_ms) {
        q->tokens += q->s.rate_per_sec * (double)(now_ms - q->tokens_at_ms) / 1000.0;
        if (q->tokens > q->s.burst) q->tokens = q->s.burst;
    }
    q->tokens_at_ms = now_ms;
}

void scheduler_queue_set(struct scheduler *s, const char *queue, const struct queue_settings *qs)
{
    pthread_mutex_lock(&s->lock);
    struct squeue *q = queue_get(s, queue);
    bool rate_changed = q->s.rate_per_sec != qs->rate_per_sec || q->s.burst != qs->burst;
    q->s = *qs;
    if (q->s.rate_per_sec > 0 && q->s.burst < 1) q->s.burst = 1;
    if (q->s.max_concurrency != 1) hold_clear(q); /* only a FIFO queue holds */
    q->configured = true;
    /* New limits keep what is left in the bucket, at most the new burst:
     * refilled to the burst, a lowered rate let a burst through at once. A
     * rate set where there was none starts with a full bucket. */
    if (rate_changed && q->s.rate_per_sec <= 0) q->tokens_at_ms = 0;
    else if (rate_changed && q->tokens > q->s.burst) q->tokens = q->s.burst;
    wake_forget(s);
    pthread_mutex_unlock(&s->lock);
}

void scheduler_queue_unset(struct scheduler *s, const char *queue)
{
    pthread_mutex_lock(&s->lock);
    struct squeue *q = strmap_get(&s->queues, queue);
    if (q) {
        queue_settings_default(&q->s);
        q->configured = false;
        hold_clear(q);
        q->touched_ms = util_mono_ms();
    }
    wake_forget(s);
    pthread_mutex_unlock(&s->lock);
}

bool scheduler_queue_get(struct scheduler *s, const char *queue, struct queue_settings *out)
{
    pthread_mutex_lock(&s->lock);
    struct squeue *q = strmap_get(&s->queues, queue);
    bool configured = q && q->configured;
    if (configured) *out = q->s;
    else queue_settings_default(out);
    pthread_mutex_unlock(&s->lock);
    return configured;
}

struct snap {
    struct queue_info *out;
    size_t max, n;
    int64_t now;
};

static void fill_info(struct queue_info *i, const struct squeue *q, int64_t now)
{
    memset(i, 0, sizeof *i);
    memcpy(i->name, q->name, sizeof i->name);
    i->s = q->s;
    i->configured = q->configured;
    i->inflight = q->inflight;
    i->accepted_total = q->accepted;
    i->dispatched_total = q->dispatched;
    i->completed_total = q->completed;
    i->failed_total = q->failed;
    i->cancelled_total = q->cancelled;
    i->accepted_last_minute = window_sum(&q->w_accepted, now);
    i->dispatched_last_minute = window_sum(&q->w_dispatched, now);
    i->completed_last_minute = window_sum(&q->w_completed, now);
    i->failed_last_minute = window_sum(&q->w_failed, now);
    i->cancelled_last_minute = window_sum(&q->w_cancelled, now);
}

static void snap_one(const char *name, void *value, void *arg)
{
    struct snap *sn = arg;
    (void)name;
    if (sn->n < sn->max) fill_info(&sn->out[sn->n++], value, sn->now);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct queue_info *)a)->name, ((const struct queue_info *)b)->name);
}

struct queue_info *scheduler_snapshot(struct scheduler *s, size_t *n)
{
    struct snap sn = {.now = util_now_ms()};
    pthread_mutex_lock(&s->lock);
    sn.max = s->queues.count; /* all of them: a fixed cap hid queues past it */
    sn.out = sn.max ? xcalloc(sn.max, sizeof *sn.out) : NULL;
    strmap_each(&s->queues, snap_one, &sn);
    pthread_mutex_unlock(&s->lock);
    if (sn.n) qsort(sn.out, sn.n, sizeof *sn.out, by_name);
    *n = sn.n;
    return sn.out;
}

/* A queue the scheduler alone shows: settings, calls in flight or counts
 * (one with none of these is shown only for its waiting tasks, which the
 * store counts). */
static bool shows(const struct squeue *q)
{
    return q->configured || q->inflight > 0 || q->accepted > 0 || q->dispatched > 0 || q->completed > 0 ||
           q->failed > 0 || q->cancelled > 0;
}

struct page {
    const char *after;
    const struct squeue **heap; /* a max-heap by name: the first max names seen so far */
    size_t n, max;
};

static int name_cmp(const struct squeue *a, const struct squeue *b)
{
    return strcmp(a->name, b->name);
}

static void heap_down(const struct squeue **h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, top = i;
        if (l < n && name_cmp(h[l], h[top]) > 0) top = l;
        if (r < n && name_cmp(h[r], h[top]) > 0) top = r;
        if (top == i) return;
        const struct squeue *t = h[i];
        h[i] = h[top];
        h[top] = t;
        i = top;
    }
}

static void page_one(const char *name, void *value, void *arg)
{
    struct page *p = arg;
    const struct squeue *q = value;
    (void)name;
    if (!shows(q) || strcmp(q->name, p->after) <= 0) return;
    if (p->n < p->max) {
        size_t i = p->n++;
        p->heap[i] = q;
        while (i > 0 && name_cmp(p->heap[(i - 1) / 2], p->heap[i]) < 0) { /* up */
            const struct squeue *t = p->heap[i];
            p->heap[i] = p->heap[(i - 1) / 2];
            p->heap[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
    } else if (name_cmp(q, p->heap[0]) < 0) {
        p->heap[0] = q;
        heap_down(p->heap, p->n, 0);
    }
}

struct queue_info *scheduler_snapshot_after(struct scheduler *s, const char *after, size_t max, size_t *n)
{
    struct page p = {.after = after ? after : "", .max = max};
    struct queue_info *out = NULL;
    int64_t now = util_now_ms();
    pthread_mutex_lock(&s->lock);
    if (max > s->queues.count) p.max = s->queues.count;
    if (p.max) {
        p.heap = xmalloc(p.max * sizeof *p.heap);
        strmap_each(&s->queues, page_one, &p);
    }
    if (p.n) {
        out = xmalloc(p.n * sizeof *out);
        /* Taking the largest off the heap each time fills the array from its end. */
        for (size_t k = p.n; k > 0; k--) {
            fill_info(&out[k - 1], p.heap[0], now);
            p.heap[0] = p.heap[k - 1];
            heap_down(p.heap, k - 1, 0);
        }
    }
    pthread_mutex_unlock(&s->lock);
    free(p.heap);
    *n = p.n;
    return out;
}

bool scheduler_queue_info(struct scheduler *s, const char *queue, struct queue_info *out)
{
    pthread_mutex_lock(&s->lock);
    const struct squeue *q = strmap_get(&s->queues, queue);
    if (q) {
        fill_info(out, q, util_now_ms());
    } else {
        memset(out, 0, sizeof *out);
        snprintf(out->name, sizeof out->name, "%s", queue);
        queue_settings_default(&out->s);
    }
    pthread_mutex_unlock(&s->lock);
    return q != NULL;
}

static int depth_by_name(const void *a, const void *b)
{
    return strcmp(((const struct queue_depth *)a)->name, ((const struct queue_depth *)b)->name);
}

/* Sorts depths by name unless they already are (SQLite hands them over in
 * order) and folds repeated names into one; returns the count left. */
static size_t depths_normalize(struct queue_depth *d, size_t nd)
{
    bool sorted = true;
    for (size_t j = 1; j < nd && sorted; j++) sorted = strcmp(d[j - 1].name, d[j].name) <= 0;
    if (!sorted) qsort(d, nd, sizeof *d, depth_by_name);
    size_t k = 0;
    for (size_t j = 0; j < nd; j++) {
        if (k > 0 && strcmp(d[k - 1].name, d[j].name) == 0) {
            d[k - 1].queued += d[j].queued;
            d[k - 1].due += d[j].due;
        } else {
            d[k++] = d[j];
        }
    }
    return k;
}

struct queue_info *scheduler_join_depths(struct queue_info *qs, size_t *n, struct queue_depth *depths,
                                         size_t nd)
{
    nd = depths_normalize(depths, nd);
    /* A merge of two sorted lists: first count the queues only the store
     * names, then merge from the back into the grown array, in place. */
    size_t i = 0, j = 0, extra = 0;
    while (j < nd) {
        int c = i < *n ? strcmp(qs[i].name, depths[j].name) : 1;
        if (c < 0) {
            i++;
        } else {
            if (c > 0) extra++;
            else i++;
            j++;
        }
    }
    size_t total = *n + extra;
    if (total == 0) {
        free(qs);
        *n = 0;
        return NULL;
    }
    if (extra) qs = xrealloc(qs, total * sizeof *qs);
    i = *n;
    j = nd;
    size_t k = total;
    while (j > 0) {
        int c = i > 0 ? strcmp(qs[i - 1].name, depths[j - 1].name) : -1;
        if (c >= 0) {
            i--;
            k--;
            if (k != i) qs[k] = qs[i]; /* (a self-copy would be memcpy onto itself) */
        }
        if (c > 0) continue;
        const struct queue_depth *d = &depths[--j];
        if (c < 0) {
            struct queue_info *q = &qs[--k];
            memset(q, 0, sizeof *q);
            snprintf(q->name, sizeof q->name, "%s", d->name);
            queue_settings_default(&q->s);
        }
        qs[k].queued = d->queued;
        qs[k].due = d->due;
    }
    /* What is left below k is qs[0..i), already in place (k == i). */
    *n = total;
    return qs;
}

void scheduler_hold(struct scheduler *s, const char *queue, int64_t seq, int64_t until_ms, const char *host)
{
    pthread_mutex_lock(&s->lock);
    struct squeue *q = queue_get(s, queue);
    if (q->s.max_concurrency == 1 && seq > 0) hold_set(q, seq, until_ms, host);
    wake_forget(s);
    pthread_mutex_unlock(&s->lock);
}

void scheduler_note_due(struct scheduler *s, const char *queue, int64_t run_at_ms)
{
    pthread_mutex_lock(&s->lock);
    struct squeue *q = queue_get(s, queue);
    if (run_at_ms < q->due_ms) q->due_ms = run_at_ms;
    q->resting = false; /* a new task may be on another host */
    wake_no_later_than(s, q->hold_seq > 0 ? q->hold_until_ms : q->due_ms);
    pthread_mutex_unlock(&s->lock);
}

void scheduler_set_due(struct scheduler *s, const char *queue, int64_t due_ms)
{
    pthread_mutex_lock(&s->lock);
    queue_get(s, queue)->due_ms = due_ms;
    wake_no_later_than(s, due_ms); /* a later one leaves the known wake early: a look too many */
    pthread_mutex_unlock(&s->lock);
}

/* How many tasks queue q may start now (ignoring global slots). */
static int budget(const struct scheduler *s, struct squeue *q, int64_t now_ms)
{
    if (q->s.paused) return 0;
    if (q->resting && q->rest_epoch == s->host_epoch) return 0;
    int b = INT32_MAX;
    if (q->s.max_concurrency > 0) b = q->s.max_concurrency - q->inflight;
    if (q->s.rate_per_sec > 0) {
        refill(q, now_ms);
        int t = (int)floor(q->tokens);
        if (t < b) b = t;
    }
    if (q->hold_seq > 0) {
        if (q->hold_until_ms > now_ms || q->inflight > 0) return 0;
        if (q->hold_host && host_room_locked(s, q->hold_host) <= 0) return 0; /* its host is full */
        return b > 0 ? 1 : 0;
    }
    if (q->due_ms > now_ms) return 0;
    return b > 0 ? b : 0;
}

static void collect_capped(const char *name, void *value, void *arg)
{
    struct scheduler *s = arg;
    const struct shost *h = value;
    if (h->inflight < s->max_per_host) return;
    if (s->n_capped == s->cap_capped) {
        s->cap_capped = s->cap_capped ? s->cap_capped * 2 : 16;
        s->capped = xrealloc(s->capped, s->cap_capped * sizeof *s->capped);
    }
    s->capped[s->n_capped++] = name;
}

int scheduler_plan(struct scheduler *s, int64_t now_ms, int slots, struct scheduler_claim *out, int max,
               const char *const **hosts, size_t *n_hosts)
{
    pthread_mutex_lock(&s->lock);
    s->n_capped = 0;
    if (!s->start_pending && s->wake_known && s->wake_at > now_ms) { /* no queue may start one yet */
        *hosts = s->capped;
        *n_hosts = 0;
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    if (s->max_per_host > 0) strmap_each(&s->hosts, collect_capped, s);
    *hosts = s->capped;
    *n_hosts = s->n_capped;

    /* The queues that may start tasks now, from the one whose turn it is. */
    struct squeue *list[256];
    int budgets[256];
    int max_n = max < 256 ? max : 256, n_c = 0;
    struct squeue *q = s->turn;
    size_t looked = 0;
    for (; q && looked < s->queues.count && n_c < max_n; looked++, q = q->ring_next) {
        int b = budget(s, q, now_ms);
        if (b <= 0) continue;
        list[n_c] = q;
        budgets[n_c++] = b;
    }
    s->looks += looked;
    bool whole_ring = looked == s->queues.count, all_served = slots > 0;
    int n = 0;
    if (n_c > 0 && slots > 0) {
        /* Fair shares first, then what is left over to queues that can
         * take more, in turn order. */
        int share = (slots + n_c - 1) / n_c, left = slots;
        int give[256] = {0};
        for (int pass = 0; pass < 2 && left > 0; pass++) {
            for (int i = 0; i < n_c && left > 0; i++) {
                int want = budgets[i] - give[i];
                if (pass == 0 && want > share) want = share;
                if (want > left) want = left;
                if (want <= 0) continue;
                give[i] += want;
                left -= want;
            }
        }
        /* Claimed in turn order: when a host's cap is what limits, the
         * first queue claimed takes the room that frees, and a fixed first
         * queue starved the others behind its flood. */
        for (int i = 0; i < n_c; i++) {
            if (!give[i]) {
                all_served = false;
                continue;
            }
            struct scheduler_claim *cl = &out[n++];
            snprintf(cl->queue, sizeof cl->queue, "%s", list[i]->name);
            cl->limit = give[i];
            cl->only_seq = list[i]->hold_seq;
            cl->hold_host = list[i]->hold_seq > 0 ? list[i]->hold_host : NULL;
        }
        /* The claims move the turn: past the last queue that got tasks when
         * some went without (slots ran out) or some were not looked at (the
         * list was full), so they come first next time; when every queue
         * that could start got its share, past the first, so that the first
         * place goes round. */
        s->turn_after_first = all_served && whole_ring;
        s->turn_moved = false;
    }
    s->start_pending = n_c > 0 && (!all_served || !whole_ring);
    pthread_mutex_unlock(&s->lock);
    return n;
}

void scheduler_claim_done(struct scheduler *s, const struct scheduler_claim *c, int got, int64_t now_ms)
{
    pthread_mutex_lock(&s->lock);
    struct squeue *q = queue_get(s, c->queue);
    if (got > 0 && !(s->turn_after_first && s->turn_moved)) s->turn = q->ring_next;
    if (got > 0) s->turn_moved = true;
    if (c->only_seq > 0 && got == 0) {
        hold_clear(q); /* the held task is gone (cancelled, purged) */
        wake_forget(s);
    } else if (got == 0 && q->due_ms <= now_ms && s->n_capped > 0) {
        q->resting = true;
        q->rest_epoch = s->host_epoch;
    }
    pthread_mutex_unlock(&s->lock);
}

void scheduler_claimed(struct scheduler *s, const char *queue, const char *host, int64_t now_ms)
{
    pthread_mutex_lock(&s->lock);
    struct squeue *q = queue_get(s, queue);
    q->inflight++;
    if (q->s.rate_per_sec > 0) {
        refill(q, now_ms);
        q->tokens -= 1;
    }
    if (q->hold_seq > 0) hold_clear(q); /* the held task is running now */
    q->dispatched++;
    window_add(&q->w_dispatched, now_ms);
    struct shost *h = strmap_get(&s->hosts, host);
    if (!h) {
        h = xcalloc(1, sizeof *h);
        strmap_put(&s->hosts, host, h);
    }
    h->inflight++;
    s->inflight++;
    pthread_mutex_unlock(&s->lock);
}

void scheduler_released(struct scheduler *s, const char *queue, const char *host,
                        enum scheduler_outcome o, int64_t seq, int64_t run_at_ms)
{
    pthread_mutex_lock(&s->lock);
    struct squeue *q = queue_get(s, queue);
    if (q->inflight > 0) q->inflight--;
    if (s->inflight > 0) s->inflight--;
    struct shost *h = strmap_get(&s->hosts, host);
    if (h) {
        if (s->max_per_host > 0 && h->inflight >= s->max_per_host) s->host_epoch++;
        if (--h->inflight <= 0) free(strmap_remove(&s->hosts, host));
    }
    switch (o) {
    case SCHEDULER_RETRY:
        if (q->s.max_concurrency == 1) hold_set(q, seq, run_at_ms, host);
        if (run_at_ms < q->due_ms) q->due_ms = run_at_ms;
        break;
    case SCHEDULER_REQUEUED:
        if (run_at_ms < q->due_ms) q->due_ms = run_at_ms;
        break;
    case SCHEDULER_COMPLETED:
    case SCHEDULER_FAILED:
    case SCHEDULER_CANCELLED:
        break; /* counted by scheduler_count */
    }
    if (o != SCHEDULER_RETRY && q->hold_seq == seq) hold_clear(q);
    wake_forget(s); /* a slot, a host's room, a retry's time */
    pthread_mutex_unlock(&s->lock);
}

void scheduler_count(struct scheduler *s, const char *queue, enum scheduler_count what, int64_t now_ms)
{
    pthread_mutex_lock(&s->lock);
    struct squeue *q = queue_get(s, queue);
    switch (what) {
    case SCHEDULER_COUNT_ACCEPTED:
        q->accepted++;
        window_add(&q->w_accepted, now_ms);
        break;
    case SCHEDULER_COUNT_COMPLETED:
        q->completed++;
        window_add(&q->w_completed, now_ms);
        break;
    case SCHEDULER_COUNT_FAILED:
        q->failed++;
        window_add(&q->w_failed, now_ms);
        break;
    case SCHEDULER_COUNT_CANCELLED:
        q->cancelled++;
        window_add(&q->w_cancelled, now_ms);
        break;
    }
    pthread_mutex_unlock(&s->lock);
}

bool scheduler_task_gone(struct scheduler *s, const char *queue, int64_t seq, int64_t run_at_ms)
{
    pthread_mutex_lock(&s->lock);
    struct squeue *q = strmap_get(&s->queues, queue);
    if (q && q->hold_seq == seq) hold_clear(q);
    bool stale = q && q->due_ms != INT64_MAX && run_at_ms <= q->due_ms;
    wake_forget(s);
    pthread_mutex_unlock(&s->lock);
    return stale;
}

static void shift_hold(const char *name, void *value, void *arg)
{
    (void)name;
    struct squeue *q = value;
    if (q->hold_seq > 0) q->hold_until_ms += *(const int64_t *)arg;
}

void scheduler_clock_step(struct scheduler *s, int64_t step_ms)
{
    pthread_mutex_lock(&s->lock);
    strmap_each(&s->queues, shift_hold, &step_ms);
    wake_forget(s);
    pthread_mutex_unlock(&s->lock);
}

static void zero_queue(const char *name, void *value, void *arg)
{
    (void)name;
    (void)arg;
    ((struct squeue *)value)->inflight = 0;
}

void scheduler_resync_begin(struct scheduler *s)
{
    pthread_mutex_lock(&s->lock);
    strmap_each(&s->queues, zero_queue, NULL);
    strmap_free(&s->hosts, free);
    strmap_init(&s->hosts);
    s->inflight = 0;
    s->host_epoch++;
    wake_forget(s);
    pthread_mutex_unlock(&s->lock);
}

void scheduler_resync_add(struct scheduler *s, const char *queue, const char *host, int count)
{
    pthread_mutex_lock(&s->lock);
    queue_get(s, queue)->inflight += count;
    struct shost *h = strmap_get(&s->hosts, host);
    if (!h) {
        h = xcalloc(1, sizeof *h);
        strmap_put(&s->hosts, host, h);
    }
    h->inflight += count;
    s->inflight += count;
    pthread_mutex_unlock(&s->lock);
}


bool scheduler_may_start_now(struct scheduler *s, const char *queue, const char *host, int64_t now_ms,
                             int pending)
{
    pthread_mutex_lock(&s->lock);
    const struct squeue *q = strmap_get(&s->queues, queue);
    bool may = !q || (!q->s.paused && q->s.max_concurrency == 0 && q->s.rate_per_sec <= 0 &&
                      q->hold_seq == 0 && q->due_ms > now_ms);
    may = may && host_room_locked(s, host) > pending;
    pthread_mutex_unlock(&s->lock);
    return may;
}

int scheduler_host_room(struct scheduler *s, const char *host)
{
    pthread_mutex_lock(&s->lock);
    int room = host_room_locked(s, host);
    pthread_mutex_unlock(&s->lock);
    return room;
}

static void min_room(const char *name, void *value, void *arg)
{
    (void)name;
    int *room = arg;
    const struct shost *h = value;
    int r = *(room + 1) - h->inflight;
    if (r < *room) *room = r;
}

int scheduler_min_host_room(struct scheduler *s)
{
    if (s->max_per_host <= 0) return INT32_MAX;
    int acc[2] = {s->max_per_host, s->max_per_host}; /* [0] the minimum, [1] the cap */
    pthread_mutex_lock(&s->lock);
    strmap_each(&s->hosts, min_room, acc);
    pthread_mutex_unlock(&s->lock);
    return acc[0] > 0 ? acc[0] : 0;
}

struct wake {
    const struct scheduler *s;
    int64_t now, at;
};

static void wake_one(const char *name, void *value, void *arg)
{
    struct wake *w = arg;
    struct squeue *q = value;
    (void)name;
    int64_t at;
    if (q->s.paused) return;
    if (q->s.max_concurrency > 0 && q->inflight >= q->s.max_concurrency) return;
    if (q->resting && q->rest_epoch == w->s->host_epoch) return;
    if (q->hold_seq > 0 && q->hold_host && host_room_locked(w->s, q->hold_host) <= 0) return; /* a freed slot forgets the wake */
    if (q->hold_seq > 0) at = q->hold_until_ms;
    else if (q->due_ms == INT64_MAX) return;
    else at = q->due_ms;
    if (q->s.rate_per_sec > 0) {
        refill(q, w->now);
        if (q->tokens < 1) {
            int64_t t = w->now + (int64_t)ceil((1 - q->tokens) * 1000.0 / q->s.rate_per_sec);
            if (t > at) at = t;
        }
    }
    if (at < w->at) w->at = at;
}

int64_t scheduler_next_wake(struct scheduler *s, int64_t now_ms)
{
    struct wake w = {.s = s, .now = now_ms, .at = INT64_MAX};
    pthread_mutex_lock(&s->lock);
    if (s->start_pending) {
        w.at = now_ms;
    } else if (s->wake_known && s->wake_at > now_ms) {
        w.at = s->wake_at;
    } else {
        s->looks += s->queues.count;
        strmap_each(&s->queues, wake_one, &w);
        s->wake_at = w.at;
        s->wake_known = true;
    }
    pthread_mutex_unlock(&s->lock);
    return w.at;
}

struct idle {
    struct squeue **list;
    size_t n, cap;
    int64_t before_ms;
};

/* Whether dropping q loses nothing but its counters: a queue made anew
 * behaves the same (default settings, nothing due, running or held; the
 * rest of its state only matters with settings or work). */
static void collect_idle(const char *name, void *value, void *arg)
{
    struct idle *id = arg;
    struct squeue *q = value;
    (void)name;
    if (q->configured || q->inflight != 0 || q->due_ms != INT64_MAX || q->hold_seq != 0 ||
        q->touched_ms > id->before_ms)
        return;
    if (id->n == id->cap) {
        id->cap = id->cap ? id->cap * 2 : 64;
        id->list = xrealloc(id->list, id->cap * sizeof *id->list);
    }
    id->list[id->n++] = q;
}

size_t scheduler_forget_idle(struct scheduler *s, int64_t now_mono_ms, int64_t idle_ms)
{
    struct idle id = {.before_ms = now_mono_ms - idle_ms};
    pthread_mutex_lock(&s->lock);
    strmap_each(&s->queues, collect_idle, &id);
    for (size_t i = 0; i < id.n; i++) {
        ring_remove(s, id.list[i]);
        strmap_remove(&s->queues, id.list[i]->name);
        queue_free(id.list[i]);
    }
    pthread_mutex_unlock(&s->lock);
    free(id.list);
    return id.n;
}

int scheduler_inflight(struct scheduler *s)
{
    pthread_mutex_lock(&s->lock);
    int n = s->inflight;
    pthread_mutex_unlock(&s->lock);
    return n;
}

uint64_t scheduler_looks(struct scheduler *s)
{
    pthread_mutex_lock(&s->lock);
    uint64_t n = s->looks;
    pthread_mutex_unlock(&s->lock);
    return n;
}
