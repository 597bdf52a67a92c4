/*
 * writer: the one thread that writes to the store, and the scheduler that
 * claims due work for the dispatcher.
 *
 * DESIGN
 * - Threads: one writer thread. Any thread may writer_submit(); the op
 *   queue is guarded by the writer's mutex, and nothing else is shared.
 * - Group commit: the writer takes every op queued since its last commit
 *   (up to batch_max), runs them all in one transaction, commits once (one
 *   fsync), then calls each op's done() in submission order. An HTTP request
 *   therefore gets its 202 only after its task is durable, and many
 *   requests share each fsync.
 * - If the batch fails, it is rolled back and each op is retried alone, so
 *   one bad op cannot sink the others; ops that still fail get rc != 0.
 * - Claims ride in the same transaction: when work is due and the
 *   dispatcher has free slots, the writer claims up to that many tasks and
 *   webhooks, and hands them over after the commit. The next due time is
 *   kept in memory (ops lower it via *due_ms), so waiting tasks cost no
 *   polling: the writer sleeps until the earliest one is due.
 * - Leases: at start and every few seconds expired leases are requeued.
 */
#ifndef AQ_WRITER_H
#define AQ_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "job.h"
#include "store.h"

struct writer_op {
    /* Runs on the writer thread inside the batch transaction. Returns 0 or
     * STORE_ERROR. May lower *due_ms when it makes work due earlier. */
    int (*apply)(struct store_conn *c, void *arg, int64_t *due_ms);
    /* Runs on the writer thread after the commit (rc 0) or failure (rc != 0).
     * May free the op. Must not block. */
    void (*done)(void *arg, int rc);
    void *arg;
    int rc;
    struct writer_op *next; /* private to the writer */
};

/* Where claimed work goes. */
struct writer_sink {
    int (*free_slots)(void *arg);             /* how many jobs it can take now */
    void (*deliver)(void *arg, struct job *jobs, int count); /* takes ownership */
    void *arg;
};

/* Opens the writer's connection and requeues tasks left running by a
 * previous process. Returns NULL on failure (logged). */
struct writer *writer_new(struct store *store, const struct config *cfg);
/* Starts the thread; sink may be NULL (then nothing is claimed). */
int writer_start(struct writer *w, const struct writer_sink *sink);
/* Queues op (the caller keeps it alive until done runs). Thread-safe. */
void writer_submit(struct writer *w, struct writer_op *op);
/* Wakes the writer to look for due work (capacity was freed). */
void writer_kick(struct writer *w);
/* Stops claiming new work (shutdown, first step). */
void writer_stop_claiming(struct writer *w);
/* Writer thread only (inside apply or done): lines added here are written
 * once the batch is done, in one system call. */
struct log_batch *writer_log(struct writer *w);
/* True when the last transaction failed and none has succeeded since. */
bool writer_degraded(struct writer *w);
/* Runs every queued op, requeues work still running (reason logged),
 * stops the thread and frees the writer. NULL is a no-op. */
void writer_free(struct writer *w, const char *requeue_reason);

#endif
