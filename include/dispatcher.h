/*
 * dispatcher: the worker threads that make the calls. Each worker runs one
 * libcurl multi loop, so a few threads hold thousands of concurrent calls
 * that may each last minutes; no call ever occupies a thread.
 *
 * DESIGN
 * - Threads: `workers` worker threads. The writer thread hands claimed jobs
 *   over with dispatcher_deliver(); each worker has an inbox guarded by its
 *   own mutex and is woken with curl_multi_wakeup(). Everything else a
 *   worker touches (its multi handle, easy handles, transfers) is its own.
 * - A finished call becomes a writer op (the attempt, the task's new state,
 *   and the webhook outbox row when final), so results are recorded by the
 *   writer in group commits. Workers never sleep to back off: the next
 *   attempt time is stored and the writer claims the task when it is due.
 * - Every address a call connects to is checked by netpolicy (unless
 *   allow_private_targets), in libcurl's open-socket callback.
 * - Capacity: at most max_inflight jobs at once over all workers; the
 *   writer asks dispatcher_free_slots() before claiming.
 */
#ifndef AQ_DISPATCHER_H
#define AQ_DISPATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "job.h"
#include "netpolicy.h"
#include "webhook.h"
#include "writer.h"

struct dispatcher;

/* keys are the webhook signing keys (copied); np is borrowed and must
 * outlive the dispatcher. Returns NULL on failure (logged). Call
 * curl_global_init() first. */
struct dispatcher *dispatcher_new(const struct config *cfg, struct writer *writer,
                                  const struct netpolicy *np, const struct webhook_keys *keys);
/* Replaces the webhook signing keys (SIGHUP). Any thread. */
void dispatcher_set_webhook_keys(struct dispatcher *d, const struct webhook_keys *keys);
int dispatcher_start(struct dispatcher *d);
/* The sink to give writer_start(). */
struct writer_sink dispatcher_sink(struct dispatcher *d);
/* Jobs in flight right now. Any thread. */
int dispatcher_inflight(struct dispatcher *d);
/* Waits up to grace_ms for calls in flight to finish (their results are
 * recorded as usual), then stops the rest without recording them (the
 * writer requeues them) and joins the threads. Call after
 * writer_stop_claiming(). */
void dispatcher_stop(struct dispatcher *d, int64_t grace_ms);
void dispatcher_free(struct dispatcher *d); /* NULL is a no-op */

#endif
