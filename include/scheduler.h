/*
 * scheduler: the dispatch policy. Decides, each time the writer may claim work,
 * which queues to claim from and how many tasks each, honouring per-queue
 * pause, maximum concurrency and rate (a token bucket), a strict FIFO hold
 * for queues with maximum concurrency 1, and a per-target-host concurrency
 * cap. It knows no SQL: the writer runs the claims it plans and reports back.
 *
 * It also keeps each queue's settings (the one registry of them) and
 * counters (dispatched, completed, failed, with a one-minute window) for
 * GET /v1/queues, metrics and the dashboard. Any key that may create tasks
 * names queues at will, and each costs about 4 KiB here: a queue without
 * settings, work or use for a while is forgotten (scheduler_forget_idle).
 *
 * DESIGN
 * - Threads: the writer thread owns every mutation and planning call.
 *   scheduler_queue_get(), scheduler_snapshot() and scheduler_defaults() may be called
 *   from any thread. One mutex guards everything; no call leaves the module
 *   while holding it, so it cannot deadlock.
 * - Per queue: due_ms, the earliest run_at of its queued tasks (a lower bound
 *   the writer refreshes from the store when a claim comes back short), so a
 *   waiting task costs nothing and a paused queue is never queried.
 * - In-flight counts per queue and host go up on claim and down on release
 *   (after the attempt's result is committed); scheduler_resync() replaces them
 *   with counts from the store now and then, so they cannot drift.
 */
#ifndef AQ_SCHEDULER_H
#define AQ_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct scheduler;

/* A queue as GET /v1/queues shows it. */
struct queue_info {
    char name[65];
    struct queue_settings s;
    bool configured;          /* has settings (config file or API) */
    int inflight;
    int64_t accepted_total;
    int64_t dispatched_total;
    int64_t completed_total;
    int64_t failed_total;
    int64_t cancelled_total;
    int accepted_last_minute;
    int dispatched_last_minute;
    int completed_last_minute;
    int failed_last_minute;
    int cancelled_last_minute;
    int64_t queued;           /* waiting tasks and those of them due now, as the store */
    int64_t due;              /* counts them: set by scheduler_join_depths, 0 before */
};

/* One queue's waiting tasks as the store counts them (store_queue_depths). */
struct queue_depth {
    char name[65];
    int64_t queued, due;
};

/* One claim the writer should run. */
struct scheduler_claim {
    char queue[65];
    int limit;
    int64_t only_seq;         /* > 0: claim just this task (FIFO hold) */
    /* With only_seq: that task's host when known, else NULL. The
     * scheduler's, valid until the next call about this queue. */
    const char *hold_host;
};

struct scheduler *scheduler_new(int max_per_host);
void scheduler_free(struct scheduler *s); /* NULL is a no-op */

/* Sets (or replaces) a queue's settings. */
void scheduler_queue_set(struct scheduler *s, const char *queue, const struct queue_settings *qs);
/* Forgets a queue's settings (its counters stay). */
void scheduler_queue_unset(struct scheduler *s, const char *queue);
/* Copies a queue's settings (defaults when it has none); returns whether it
 * had settings. Any thread. */
bool scheduler_queue_get(struct scheduler *s, const char *queue, struct queue_settings *out);
/* Every queue seen (settings, tasks or counters), ordered by name: a new
 * array (caller frees; NULL when there are none) with *n set. Any thread. */
struct queue_info *scheduler_snapshot(struct scheduler *s, size_t *n);
/* A page of the snapshot: of the queues named after `after` (NULL or "":
 * from the first) that have settings, calls in flight or counts, the first
 * max by name, ordered (a new array, NULL when none, *n set). Costs a look
 * at each queue but copies and sorts only max of them. Any thread. */
struct queue_info *scheduler_snapshot_after(struct scheduler *s, const char *after, size_t max, size_t *n);
/* One queue, into out (default settings and no counts when the scheduler
 * does not know it); returns whether it knows it. Any thread. */
bool scheduler_queue_info(struct scheduler *s, const char *queue, struct queue_info *out);
/* Joins the store's counts of waiting tasks into a snapshot: sets queued and
 * due of each queue depths names, and adds, at their place by name, the
 * queues only depths name (default settings, no counters). qs must be
 * ordered by name, as scheduler_snapshot returns it; depths may come in any
 * order (they are sorted here when they are not already, and a name given
 * twice is counted once, its counts summed). Takes ownership of qs (may be
 * NULL when *n is 0) and returns the joined array, still ordered by name,
 * with *n updated (caller frees; NULL when empty). O((n + nd) log nd) at
 * worst, linear for depths already in order. Pure: any thread. */
struct queue_info *scheduler_join_depths(struct queue_info *qs, size_t *n, struct queue_depth *depths,
                                         size_t nd);

/* A FIFO queue's (max concurrency 1) task waiting for its retry holds the
 * tasks behind it until until_ms: set from the store when the hold is not
 * known from a finished attempt (at start, or when a queue becomes FIFO).
 * No-op for other queues. */
void scheduler_hold(struct scheduler *s, const char *queue, int64_t seq, int64_t until_ms, const char *host);

/* Work became due in queue at run_at_ms (insert, retry, requeue). */
void scheduler_note_due(struct scheduler *s, const char *queue, int64_t run_at_ms);
/* The store says the queue's earliest queued run_at is due_ms (INT64_MAX:
 * none queued). */
void scheduler_set_due(struct scheduler *s, const char *queue, int64_t due_ms);

/* Plans claims for up to slots tasks at now_ms. Fills out (up to max) and
 * returns the count; *hosts receives the hosts at their cap (borrowed, valid
 * until the next sched call), to exclude from the claims. Queues take turns:
 * a plan looks at them from the one whose turn it is, in a ring of all
 * queues, until out is full; the next begins after the last queue served,
 * or, when every queue that could start got its share, after the first. */
int scheduler_plan(struct scheduler *s, int64_t now_ms, int slots, struct scheduler_claim *out, int max,
               const char *const **hosts, size_t *n_hosts);
/* Reports how a planned claim went: got tasks of the limit asked. A short
 * claim means the writer must refresh the queue's due time. When it got none
 * although the queue was due (all its due tasks are on capped hosts), the
 * queue rests until a host slot frees. */
void scheduler_claim_done(struct scheduler *s, const struct scheduler_claim *c, int got, int64_t now_ms);
/* A task was claimed: counts it in flight and takes a rate token. */
void scheduler_claimed(struct scheduler *s, const char *queue, const char *host, int64_t now_ms);

enum scheduler_outcome { SCHEDULER_RETRY, SCHEDULER_COMPLETED, SCHEDULER_FAILED, SCHEDULER_CANCELLED, SCHEDULER_REQUEUED };
/* A claimed task's attempt ended (its result is committed). For SCHEDULER_RETRY
 * in a FIFO queue, seq and run_at_ms set the hold: nothing else in the queue
 * runs before that task. */
void scheduler_released(struct scheduler *s, const char *queue, const char *host,
                        enum scheduler_outcome o, int64_t seq, int64_t run_at_ms);
enum scheduler_count {
    SCHEDULER_COUNT_ACCEPTED,
    SCHEDULER_COUNT_COMPLETED,
    SCHEDULER_COUNT_FAILED,
    SCHEDULER_COUNT_CANCELLED,
};
/* Counts a task accepted into, or finished in, queue. */
void scheduler_count(struct scheduler *s, const char *queue, enum scheduler_count what, int64_t now_ms);

/* A task due at run_at_ms reached a final state without being claimed
 * (cancelled while queued): clears a FIFO hold on it. Returns whether the
 * queue's due time may have been this task's, and so wants
 * scheduler_set_due from the store: a queue that seems to wait for a
 * cancelled task is never idle, and never forgotten, until that time. */
bool scheduler_task_gone(struct scheduler *s, const char *queue, int64_t seq, int64_t run_at_ms);
/* The wall clock stepped by step_ms: FIFO holds (a retry's wait) move with
 * it, as the store's due times do (store_shift_waits). */
void scheduler_clock_step(struct scheduler *s, int64_t step_ms);

/* Replaces in-flight counts: call scheduler_resync_begin(), then
 * scheduler_resync_add() for each (queue, host, count) running in the store. */
void scheduler_resync_begin(struct scheduler *s);
void scheduler_resync_add(struct scheduler *s, const char *queue, const char *host, int count);

/* Whether a task just written to queue, due at now_ms, may start at once
 * without waiting for a plan: the queue sets no pause, concurrency or rate
 * limit and holds no FIFO task, nothing else in it is due (so nothing is
 * overtaken), and host has room for it besides `pending` claims not yet
 * counted (claimed in the same transaction). */
bool scheduler_may_start_now(struct scheduler *s, const char *queue, const char *host, int64_t now_ms,
                             int pending);
/* Free slots of host under max_per_host (INT32_MAX without a cap). */
int scheduler_host_room(struct scheduler *s, const char *host);
/* The fewest free slots of any host with calls in flight (INT32_MAX when
 * no host could reach its cap): a claim of fewer tasks than this cannot
 * overrun any host, whatever hosts its tasks are on. */
int scheduler_min_host_room(struct scheduler *s);

/* The earliest time a claim could succeed (INT64_MAX when only an event,
 * such as a freed slot, can make one possible). */
int64_t scheduler_next_wake(struct scheduler *s, int64_t now_ms);
/* How many times plans and wakes have looked at a queue so far: for tests
 * of what a claim costs with many queues. */
uint64_t scheduler_looks(struct scheduler *s);

/* Forgets every queue without settings that has nothing due, running or
 * held (as far as the scheduler knows: waiting tasks keep their queue's due
 * time), and that no call named since idle_ms before now_mono_ms (the
 * monotonic clock, util_mono_ms()). Only its counters are lost: a queue
 * used again is made anew, with its counters from 0, and is dispatched
 * just as the forgotten one would have been. Returns how many were
 * forgotten. Writer thread. */
size_t scheduler_forget_idle(struct scheduler *s, int64_t now_mono_ms, int64_t idle_ms);

/* Total tasks in flight. Any thread. */
int scheduler_inflight(struct scheduler *s);

#endif
