/*
 * writer: the one thread that writes to the store, and the scheduler loop
 * that claims due work for the dispatcher.
 *
 * DESIGN
 * - Threads: one writer thread. Any thread may writer_submit(); the op
 *   queue is guarded by the writer's mutex, and nothing else is shared
 *   except the scheduler (its own lock) and two atomics.
 * - Group commit: the writer takes every op queued since its last commit
 *   (up to batch_max), runs them all in one transaction, commits once (one
 *   fsync), then calls each op's done() in submission order. An HTTP request
 *   therefore gets its 202 only after its task is durable, and many
 *   requests share each fsync. While the syncer is still syncing the last
 *   commit, ops that arrive join the open transaction, which commits when
 *   the syncer is free: a commit then would only wait for the next sync,
 *   and each commit writes again the pages the one before it wrote.
 * - Pipelined: where the store can split a commit from its sync
 *   (store_defer_sync), a second thread, the syncer, makes the commits
 *   durable while the writer runs the next transaction. A committed batch
 *   waits in a FIFO until the syncer has synced past it; only then does the
 *   writer run what it owes the world: each op's done(), the claimed jobs'
 *   delivery, the live-feed events, final-state hooks and call aborts.
 *   Ops whose done() is thread-safe (done_anywhere: the HTTP requests) are
 *   done by the syncer itself the moment their commit is on disk, so an
 *   answer never waits for the writer to finish the transaction it is in.
 *   Counters and the scheduler's view change at commit (the writer's next
 *   decisions need them; a crash forgets them with the commit). A failed
 *   sync stops the daemon: what reached the disk is then unknown, and a
 *   retried fsync can report success for writes that were lost.
 * - If the batch fails, it is rolled back and each op is retried alone, so
 *   one bad op cannot sink the others; ops that still fail get rc != 0.
 * - Ops announce what their writes change (work due, a slot released, a
 *   task finished) through the writer_txn_* calls. Due times take effect at
 *   once (they are only hints); the others are effects applied after the
 *   op's commit, so a rolled-back op changes no count.
 * - Claims ride in the same transaction: when work is due and the
 *   dispatcher has free slots, the writer asks the scheduler for a plan,
 *   claims those tasks (and due webhooks) and hands them over after the
 *   commit. Waiting tasks cost no polling: the writer sleeps until the
 *   scheduler's next wake time or until an op or a kick arrives.
 * - Housekeeping in the same loop: expired leases of calls this process no
 *   longer holds are requeued every few seconds; retention purges finished
 *   tasks in small windows.
 * - The wall clock may step (NTP, a resumed VM). Due times are wall-clock
 *   times (they outlive the process), so when the writer sees the wall
 *   clock move against the monotonic one it moves the waits that were
 *   relative (retry backoffs, webhook schedules) by the same step. Calls
 *   themselves are timed on the monotonic clock.
 * - Readiness: a failed commit marks the writer degraded; only a commit
 *   that wrote something (ops, or a probe write every sweep while degraded)
 *   clears it. When the database refuses all writes (locked, full,
 *   read-only) a failed batch fails every op at once instead of retrying
 *   each alone.
 */
#ifndef AQ_WRITER_H
#define AQ_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "job.h"
#include "scheduler.h"
#include "store.h"

struct writer;
struct writer_txn;

struct writer_op {
    /* Runs on the writer thread inside the batch transaction. Returns
     * STORE_OK, or an error (the op then counts as failed). */
    int (*apply)(struct writer_txn *tx, void *arg);
    /* Runs on the writer thread once the commit is on disk (rc 0), or after
     * a failure (rc != 0). May free the op. Must not block. */
    void (*done)(void *arg, int rc);
    void *arg;
    /* done() is thread-safe and touches no writer state: the syncer may run
     * it the moment the commit is on disk, before the writer's batch
     * effects are announced (an HTTP answer need not wait for the writer
     * to finish the transaction it is in). */
    bool done_anywhere;
    /* The rows it writes, when many (a batch of creates): such an op waits
     * for the next transaction of its own, and one transaction takes ops of
     * at most batch_max rows but always one of them, after the ops of one
     * row each that are waiting. A thousand-task batch queued ahead of a
     * create held it for as long as every batch before it took. 0 or 1:
     * one row. */
    int weight;
    int rc;
    struct writer_op *next; /* private to the writer */
    uint64_t commit;        /* private to the writer */
};

/* Where claimed work goes, and how running calls are stopped. */
struct writer_sink {
    int (*free_slots)(void *arg);                            /* jobs it can take now */
    void (*deliver)(void *arg, struct job *jobs, int count); /* takes ownership */
    void (*abort_call)(void *arg, int64_t task_seq);         /* stop a running call */
    void *arg;
};

/* Opens the writer's connection, requeues tasks left running by a previous
 * process, and loads queue settings (the config file's win) and due times
 * into a new scheduler. Returns NULL on failure (logged). */
struct writer *writer_new(struct store *store, const struct config *cfg);
/* Starts the thread; sink may be NULL (then nothing is claimed). */
int writer_start(struct writer *w, const struct writer_sink *sink);
/* What the writer tells the rest of the daemon after each commit. Every
 * callback runs on the writer thread and must not block. */
struct writer_hooks {
    void (*task_final)(void *arg, const char *task_id); /* a task reached a final state */
    bool (*want_events)(void *arg);                     /* is anyone watching the feed? */
    void (*event)(void *arg, const char *tenant, char *json); /* takes ownership of json */
    void (*batch_done)(void *arg);                      /* after each batch's effects */
    void *arg;
};

/* Set before writer_start. */
void writer_set_hooks(struct writer *w, const struct writer_hooks *hooks);
/* Queues op (the caller keeps it alive until done runs). Thread-safe. */
void writer_submit(struct writer *w, struct writer_op *op);
/* Wakes the writer to look for due work (capacity was freed). */
void writer_kick(struct writer *w);
/* Stops claiming new work (shutdown, first step). */
void writer_stop_claiming(struct writer *w);
/* True when the last transaction failed and none has succeeded since. */
bool writer_degraded(struct writer *w);
/* Tasks queued or running now. Any thread. */
int64_t writer_backlog(struct writer *w);
/* The scheduler (queue settings and counters); any thread may read it. */
struct scheduler *writer_scheduler(struct writer *w);
/* Writer thread only (inside apply or done): lines added here are written
 * once the batch is done, in one system call. */
struct log_batch *writer_log(struct writer *w);
/* Writer thread only (from a done()): the dispatcher is through with a
 * claimed job (task, or webhook when webhook is true) with this seq; its
 * result is recorded or could not be. From its claim until then the lease
 * is held: the sweep never requeues it, however the wall clock moves. */
void writer_lease_done(struct writer *w, bool webhook, int64_t seq);
/* Runs every queued op, requeues work still running (reason logged),
 * stops the thread and frees the writer. NULL is a no-op. */
void writer_free(struct writer *w, const char *requeue_reason);

/* ---- inside apply ---- */

struct store_conn *writer_txn_conn(struct writer_txn *tx);
/* Writes new task t (sets t->seq) and, after commit, counts it accepted and
 * tells the live feed. When it is due now, the dispatcher has a free slot
 * and the scheduler lets it skip the plan (scheduler_may_start_now: no
 * queue limits, nothing overtaken), it is written already claimed (running,
 * leased, claim token 1) and a copy is handed over with this batch once it
 * is on disk, as a claim would (no second transaction to claim it); else
 * it waits, due at its run_at. t itself stays as given (queued). */
int writer_txn_task_insert(struct writer_txn *tx, struct task *t);
/* A task in queue became due at run_at_ms (retry, replay). */
void writer_txn_task_due(struct writer_txn *tx, const char *queue, int64_t run_at_ms);
/* A webhook became due at at_ms. */
void writer_txn_webhook_due(struct writer_txn *tx, int64_t at_ms);
/* Writes task t's webhook message (body) to the outbox, due at
 * t->updated_at_ms. When the dispatcher has a free slot it is written
 * already claimed and handed over with this batch once it is on disk, as a
 * claim would (no second transaction to claim it); else it waits in the
 * outbox for the next claim. */
int writer_txn_webhook(struct writer_txn *tx, const struct task *t, const char *body);
/* The wall-clock time the transaction decides with (Unix ms). */
int64_t writer_txn_now(const struct writer_txn *tx);
/* How far to move a wait an op decided from the wall clock while
 * util_clock_offset_ms() was decided_offset_ms: by the clock step the writer
 * has seen since (its batches move the waits already stored by the same
 * step), else 0. A retry decided just before a step and written just after
 * it then keeps its backoff instead of coming due at once, or an hour late. */
int64_t writer_txn_reframe(struct writer_txn *tx, int64_t decided_offset_ms);
/* After commit: a claimed task's attempt ended (see scheduler_released). */
void writer_txn_released(struct writer_txn *tx, const char *queue, const char *host,
                         enum scheduler_outcome o, int64_t seq, int64_t run_at_ms);
/* After commit: the backlog grew or shrank. */
void writer_txn_backlog(struct writer_txn *tx, int delta);
/* After commit: a run of a task entered queue (a create, or a replay):
 * counted as accepted, so that accepted = completed + failed + cancelled
 * + what is waiting or running. */
void writer_txn_accepted(struct writer_txn *tx, const char *queue);
/* Tasks waiting or running, this transaction's changes so far included:
 * what an op that would add one weighs against max_backlog (writer_backlog
 * counts only what has committed, and a batch holds many creates). */
int64_t writer_txn_backlog_count(struct writer_txn *tx);
/* After commit: task t (as now stored) reached a final state: counts it,
 * wakes its long-polls, and tells the live feed. */
void writer_txn_final(struct writer_txn *tx, const struct task *t);
/* After commit: tell the live feed that t changed (change: "started",
 * "retrying", "replayed"). */
void writer_txn_event(struct writer_txn *tx, const struct task *t, const char *change);
/* After commit: stop the running call of task seq. */
void writer_txn_abort(struct writer_txn *tx, int64_t task_seq);
/* After commit: a queued task, due at run_at_ms, left queue without running
 * (a FIFO hold on it ends; the queue's due time is read again when it may
 * have been this task's). */
void writer_txn_gone(struct writer_txn *tx, const char *queue, int64_t seq, int64_t run_at_ms);
/* After commit: a queue's settings changed (qs NULL: removed). */
void writer_txn_queue(struct writer_txn *tx, const char *name, const struct queue_settings *qs);

#endif
