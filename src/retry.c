/*
 * retry: outcome classification and backoff arithmetic.
 */
#include "retry.h"

#include <curl/curl.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool retry_status_retryable(int status)
{
    return status == 408 || status == 425 || status == 429 || (status >= 500 && status <= 599);
}

int64_t retry_backoff_ms(int retry, const struct retry_policy *p)
{
    int64_t bound = p->base_ms;
    for (int i = 1; i < retry && bound < p->cap_ms; i++) bound *= 2;
    if (bound > p->cap_ms) bound = p->cap_ms;
    if (!p->jitter) return bound;
    return (int64_t)p->random_below((uint64_t)bound + 1);
}

int64_t retry_parse_retry_after(const char *value, int64_t now_ms)
{
    while (isspace((unsigned char)*value)) value++;
    if (!*value) return -1;
    if (isdigit((unsigned char)*value)) {
        char *end;
        unsigned long long s = strtoull(value, &end, 10);
        while (isspace((unsigned char)*end)) end++;
        if (*end) return -1;
        if (s > (unsigned long long)(RETRY_AFTER_MAX_MS / 1000)) return RETRY_AFTER_MAX_MS;
        return (int64_t)s * 1000;
    }
    time_t t = curl_getdate(value, NULL);
    if (t == (time_t)-1) return -1;
    int64_t wait = (int64_t)t * 1000 - now_ms;
    if (wait < 0) return 0;
    return wait > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : wait;
}

static const char *transport_code(enum retry_transport t)
{
    switch (t) {
    case RETRY_TRANSPORT_TIMEOUT: return "timeout";
    case RETRY_TRANSPORT_DNS: return "dns_failed";
    case RETRY_TRANSPORT_CONNECT: return "connection_failed";
    case RETRY_TRANSPORT_TLS: return "tls_failed";
    case RETRY_TRANSPORT_BLOCKED: return "blocked_destination";
    case RETRY_TRANSPORT_TOO_LARGE: return "response_too_large";
    case RETRY_TRANSPORT_OTHER: return "transport_error";
    case RETRY_TRANSPORT_OK: break;
    }
    return "error";
}

void retry_decide(const struct retry_outcome *o, const struct retry_policy *p,
                  struct retry_decision *d)
{
    bool retryable;
    d->delay_ms = 0;
    d->message[0] = '\0';
    if (o->transport == RETRY_TRANSPORT_OK) {
        int s = o->http_status;
        if (s >= 200 && s <= 299) {
            d->verdict = RETRY_DONE;
            d->error_code = NULL;
            return;
        }
        d->error_code = "http_error";
        retryable = retry_status_retryable(s);
        /* The statuses that redirect; 300, 304, 305 and 306 do not. */
        bool redirect = s == 301 || s == 302 || s == 303 || s == 307 || s == 308;
        if (retryable)
            snprintf(d->message, sizeof d->message, "target answered %d", s);
        else if (redirect && o->redirect_drops_body)
            snprintf(d->message, sizeof d->message,
                     "target answered %d (a redirect) that was not followed: it would repeat the "
                     "request without its body (only 307 and 308 keep it); point the task at "
                     "the final URL", s);
        else if (redirect && o->redirects > 0)
            snprintf(d->message, sizeof d->message,
                     "target answered %d (a redirect) that was not followed: more than "
                     "max_redirects (%d), or no Location to follow; not retried, as the same "
                     "chain would end the same way", s, o->redirects);
        else if (redirect && o->follow_asked)
            snprintf(d->message, sizeof d->message,
                     "target answered %d (a redirect) that was not followed: max_redirects is 0 "
                     "on this daemon, so no redirect is; point the task at the final URL", s);
        else if (redirect)
            snprintf(d->message, sizeof d->message,
                     "target answered %d (a redirect); redirects are not followed unless the "
                     "task sets followRedirects, so point the task at the final URL", s);
        else if (s >= 400 && s <= 499)
            snprintf(d->message, sizeof d->message,
                     "target answered %d; client errors other than 408, 425 and 429 are not "
                     "retried because the same request would fail again", s);
        else
            snprintf(d->message, sizeof d->message, "target answered %d, a status that is not retried", s);
    } else {
        d->error_code = transport_code(o->transport);
        /* An oversized body still came with a status: a 503 is worth a retry. */
        retryable = o->transport != RETRY_TRANSPORT_BLOCKED &&
                    (o->transport != RETRY_TRANSPORT_TOO_LARGE || retry_status_retryable(o->http_status));
        snprintf(d->message, sizeof d->message, "%s", o->transport_detail ? o->transport_detail : d->error_code);
        if (o->transport == RETRY_TRANSPORT_TOO_LARGE && o->http_status > 0) {
            size_t n = strlen(d->message);
            snprintf(d->message + n, sizeof d->message - n, " (status %d)", o->http_status);
        }
    }
    if (retryable && o->target_final) {
        retryable = false;
        size_t n = strlen(d->message);
        snprintf(d->message + n, sizeof d->message - n, "; the target asked for no retry");
    }
    if (!retryable || o->attempts > o->max_retries) {
        d->verdict = RETRY_GIVE_UP;
        if (retryable) {
            size_t n = strlen(d->message);
            snprintf(d->message + n, sizeof d->message - n, "; gave up after %d attempt%s",
                     o->attempts, o->attempts == 1 ? "" : "s");
        }
        return;
    }
    d->verdict = RETRY_AGAIN;
    d->delay_ms = o->retry_after_ms >= 0 ? o->retry_after_ms : retry_backoff_ms(o->attempts, p);
}

int64_t retry_webhook_delay_ms(int attempts, const int64_t *schedule_ms, size_t n)
{
    if (attempts < 1 || (size_t)attempts > n) return -1;
    return schedule_ms[attempts - 1];
}
