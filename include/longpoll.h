/*
 * longpoll: clients waiting for a task to finish (GET /v1/tasks/{id}?wait=N)
 * without holding a thread each. A waiting request is a suspended
 * libmicrohttpd connection registered here; it is resumed when the writer
 * reports the task final, or when its wait ends.
 *
 * DESIGN
 * - Threads: HTTP threads add and arm waiters; the writer thread calls
 *   longpoll_notify(); one timer thread resumes waiters whose time is up.
 *   One mutex guards the registry and every waiter's state.
 * - The race between "the task finished" and "the request suspends" is
 *   closed by arming under the lock: a waiter is registered before the
 *   request reads the task, and suspended only if it has not fired yet.
 * - A suspended connection is not watched by libmicrohttpd: a client that
 *   went away would hold its connection slot until the wait ended (up to
 *   max_wait, and http_max_connections such clients lock everyone out).
 *   The timer thread polls the suspended waiters' sockets each second and
 *   resumes those whose peer hung up, so their connections close.
 */
#ifndef AQ_LONGPOLL_H
#define AQ_LONGPOLL_H

#include <stdbool.h>
#include <stdint.h>

struct longpoll;
struct longpoll_waiter;

/* resume(arg) is called (from any thread, with no lock held by the caller's
 * code paths) to resume a suspended request. */
struct longpoll *longpoll_new(void (*resume)(void *arg));
/* Fires every waiter, stops the timer thread, frees. NULL is a no-op. */
void longpoll_free(struct longpoll *lp);

/* Registers a waiter for task_id until deadline_mono_ms. arg identifies the
 * request (passed to resume); fd is its client socket, watched for a hang-up
 * while suspended (-1: not watched). */
struct longpoll_waiter *longpoll_add(struct longpoll *lp, const char *task_id,
                                     int64_t deadline_mono_ms, int fd, void *arg);
/* Suspends the request by calling suspend(arg) under the lock, unless the
 * waiter already fired; returns true when suspended. */
bool longpoll_arm(struct longpoll *lp, struct longpoll_waiter *w, void (*suspend)(void *arg));
/* Whether w fired because its client hung up (not for its task or its
 * deadline). */
bool longpoll_hung_up(struct longpoll *lp, struct longpoll_waiter *w);
/* Unregisters (if still registered) and frees the waiter. Call once the
 * request no longer needs it (answered or closed). */
void longpoll_remove(struct longpoll *lp, struct longpoll_waiter *w);
/* The task reached a final state: resume its waiters. Any thread. */
void longpoll_notify(struct longpoll *lp, const char *task_id);
/* Resume every waiter now (shutdown). */
void longpoll_fire_all(struct longpoll *lp);
/* Waiters registered now. */
int longpoll_count(struct longpoll *lp);

#endif
