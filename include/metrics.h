/*
 * metrics: process-wide counters and histograms, rendered in the Prometheus
 * text format for GET /metrics, and a one-hour, per-minute history for the
 * dashboard's charts (GET /v1/stats). Per-queue counts live in the
 * scheduler (which already keys everything by queue); metrics renders them.
 *
 * DESIGN
 * - Threads: any thread records; increments are relaxed atomics, so the hot
 *   paths (accept, the curl loops, the writer) never take a lock. The
 *   per-minute history is a ring of atomic counters indexed by minute; a
 *   slot is reset by the first recorder of a new minute (a compare-and-swap
 *   on the slot's minute), so a few counts at a minute boundary may land in
 *   the old minute, which charts tolerate.
 * - Values are counted since the process started.
 */
#ifndef AQ_METRICS_H
#define AQ_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "scheduler.h"
#include "util.h"

/* Call once before threads start. */
void metrics_init(void);

/* A task was accepted / reached a final state (after the commit). */
void metrics_task_accepted(void);
enum metrics_final { METRICS_COMPLETED, METRICS_FAILED, METRICS_CANCELLED };
void metrics_task_final(enum metrics_final f);

/* One target attempt: status_code 0 when no response came. outcome is
 * "success", "retry" or "failure". */
void metrics_attempt(int status_code, const char *outcome, int64_t duration_ms);
/* One webhook delivery attempt: "delivered", "retry" or "failed". */
void metrics_webhook(const char *outcome);
/* One writer transaction: ops in it, and the time to commit it. */
void metrics_writer_batch(int ops, int64_t commit_us);
/* One fsync by the writer's syncer thread. */
void metrics_writer_sync_us(int64_t us);
/* Time from a create request's arrival to its 202. */
void metrics_accept_latency_us(int64_t us);
/* Schedule runs committed: made a task, or made none (lastError says why). */
void metrics_schedule_runs(int made, int skipped);
/* An HTTP answer: route name (a fixed string) and status. */
/* route: one of at most METRICS_ROUTES_MAX static names (http_api.c's
 * table, which checks its size against it at compile time). */
#define METRICS_ROUTES_MAX 32
void metrics_http(const char *route, int status);

/* Gauges and per-queue figures the renderer needs, gathered by the caller. */
struct metrics_gauges {
    int64_t backlog;
    int inflight;
    int longpoll_waiters;
    /* every queue, with queued set (scheduler_join_depths); any order */
    const struct queue_info *queues;
    size_t n_queues;
    /* most queues with series of their own (metrics_max_queues); the rest
     * are summed into queue="(other)" */
    size_t max_queues;
};

/* The Prometheus exposition text; caller frees. The families without a
 * queue label come first, then asyncqueue_queues and
 * asyncqueue_queues_folded, then the six per-queue families: the
 * max_queues queues ranked first (settings, then tasks waiting or running,
 * then the rest; the most tasks first within each), ordered by name, and
 * one queue="(other)" series summing the rest when there are more. The
 * buffer is sized from the number of series, so the text always fits;
 * NULL only if it did not (never a text cut short). Any thread. */
char *metrics_render(const struct metrics_gauges *g);

/* The last `minutes` minutes (up to 60), oldest first, as a JSON array of
 * {"minute", "accepted", "completed", "failed", "cancelled", "attempts",
 *  "p50Ms", "p95Ms", "p99Ms"}; caller frees. */
char *metrics_history_json(int minutes);

#endif
