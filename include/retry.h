/*
 * retry: pure decisions about an attempt's outcome. Given what happened
 * (transport error, HTTP status, Retry-After, attempts so far) it says
 * whether the task is done, failed for good, or tried again after how long.
 *
 * Retried: connection errors, timeouts, 408, 425, 429 and 5xx. Not retried:
 * other 4xx and 3xx (the request itself is wrong; retrying cannot help), a
 * destination refused by policy, and a response over the size cap.
 * Backoff: exponential from a base, bounded by a cap, with full jitter
 * (a uniformly random wait in [0, bound]). Retry-After wins when present.
 *
 * Pure: randomness comes in through a function pointer so tests can fix it.
 */
#ifndef AQ_RETRY_H
#define AQ_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RETRY_AFTER_MAX_MS (24LL * 3600 * 1000)

enum retry_verdict {
    RETRY_DONE,     /* 2xx: completed */
    RETRY_AGAIN,    /* failed, will be tried again after delay_ms */
    RETRY_GIVE_UP,  /* failed for good */
};

enum retry_transport {
    RETRY_TRANSPORT_OK = 0,        /* an HTTP response arrived */
    RETRY_TRANSPORT_TIMEOUT,
    RETRY_TRANSPORT_DNS,
    RETRY_TRANSPORT_CONNECT,       /* refused, reset, closed early */
    RETRY_TRANSPORT_TLS,
    RETRY_TRANSPORT_BLOCKED,       /* destination refused by netpolicy */
    RETRY_TRANSPORT_TOO_LARGE,     /* response over max_response_bytes */
    RETRY_TRANSPORT_OTHER,
};

struct retry_outcome {
    enum retry_transport transport;
    const char *transport_detail;  /* libcurl's text, for the message */
    int http_status;               /* valid when transport is OK or TOO_LARGE (0: none) */
    int redirects;                 /* > 0: the call followed redirects, up to this many */
    bool follow_asked;             /* the task set followRedirects (max_redirects may be 0) */
    bool redirect_drops_body;      /* a 301/302/303 not followed: it would resend without the body */
    int64_t retry_after_ms;        /* from Retry-After, or -1 */
    bool target_final;             /* the target sent AsyncQueue-Retry: false */
    int attempts;                  /* attempts made, including this one */
    int max_retries;
};

struct retry_policy {
    int64_t base_ms;
    int64_t cap_ms;
    bool jitter;
    uint64_t (*random_below)(uint64_t bound); /* util_random_below in production */
};

struct retry_decision {
    enum retry_verdict verdict;
    int64_t delay_ms;              /* for RETRY_AGAIN */
    const char *error_code;        /* NULL for RETRY_DONE */
    char message[256];
};

void retry_decide(const struct retry_outcome *o, const struct retry_policy *p,
                  struct retry_decision *d);

/* The backoff before retry number `retry` (1-based). */
int64_t retry_backoff_ms(int retry, const struct retry_policy *p);

/* Parses a Retry-After value: delta-seconds or an HTTP date. Returns the
 * wait in ms (0 for dates in the past), capped at RETRY_AFTER_MAX_MS, or -1
 * when the value is not one. */
int64_t retry_parse_retry_after(const char *value, int64_t now_ms);

/* Whether a status is worth retrying (408, 425, 429, 5xx). */
bool retry_status_retryable(int status);

/* The delay before webhook delivery attempt attempts+1, from the schedule,
 * or -1 when the schedule is exhausted. attempts >= 1. */
int64_t retry_webhook_delay_ms(int attempts, const int64_t *schedule_ms, size_t n);

#endif
