/*
 * dispatcher: worker threads, each a libcurl multi loop, making target calls
 * and webhook deliveries and turning each result into a writer op. See
 * dispatcher.h for the design.
 */
#include "dispatcher.h"

#include <ctype.h>
#include <errno.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <openssl/crypto.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "netpolicy.h"
#include "retry.h"
#include "util.h"
#include "version.h"
#include "webhook.h"

#define HEADER_BYTES_MAX 32768   /* response headers kept per call */
#define WEBHOOK_RESPONSE_MAX 4096 /* a receiver's answer is only read, not kept */
#define LOCAL_RETRY_MS 1000       /* wait (plus up to as much jitter) after the daemon's own EMFILE */
#define SPARE_EASY_MAX 64         /* finished libcurl handles a worker keeps for its next calls */

struct transfer;

struct worker {
    struct dispatcher *d;
    int index;
    pthread_t thread;
    bool started;
    CURLM *multi;
    pthread_mutex_t lock;        /* guards inbox and aborts */
    struct job *inbox;
    int64_t *aborts;             /* task seqs whose calls must stop */
    size_t n_aborts, cap_aborts;
    atomic_int load;             /* jobs given to this worker and not finished */
    struct transfer *active;     /* worker thread only */
    CURL *spare[SPARE_EASY_MAX]; /* worker thread only: reset handles, reused */
    int n_spare;
    struct log_batch log;        /* worker thread only */
};

struct dispatcher {
    const struct config *cfg;
    struct writer *writer;
    const struct netpolicy *np;
    pthread_mutex_t keys_lock;   /* guards keys (replaced on SIGHUP) */
    struct webhook_keys keys;
    struct worker *workers;
    int n_workers;
    atomic_int inflight;
    int max_inflight;            /* max_inflight, or less when descriptors are fewer */
    atomic_bool stopping;        /* finish what is in flight, then exit */
    atomic_bool aborting;        /* drop what is in flight and exit */
    struct retry_policy policy;
};

struct transfer {
    struct worker *w;
    struct job *job;
    CURL *easy;
    struct curl_slist *headers;
    struct buf body;             /* response body, capped */
    struct buf head;             /* response header lines, capped */
    int64_t started_ms;
    int64_t started_mono;
    const char *blocked_range;   /* set when netpolicy refused an address */
    int local_errno;             /* socket() failed here (EMFILE...): not the target's fault */
    char host[256];              /* the host name being called, no port: set again at each
                                  * connection from the URL libcurl connects for */
    bool follow;                 /* following redirects */
    bool keep_body;              /* a method other than POST with a body: only 307/308 keep it */
    bool redirect_refused;       /* a 301/302/303 not followed because of keep_body */
    int status;                  /* status of the response whose headers arrive */
    int locations;               /* its Location headers so far */
    bool too_large;
    char errbuf[CURL_ERROR_SIZE];
    CURLcode result;             /* set when it ended */
    struct transfer *prev, *next;
    struct transfer *ended_next; /* the worker's list of calls ended in one pass */
};

/* ---- small helpers ---- */

/* "scheme://host[:port]/path" without user-info or query, for logs. */
static char *url_for_log(const char *url, char *out, size_t len)
{
    const char *p = strstr(url, "://");
    const char *auth = p ? p + 3 : url;
    const char *auth_end = auth + strcspn(auth, "/?#");
    const char *at = memchr(auth, '@', (size_t)(auth_end - auth));
    const char *host = at ? at + 1 : auth;
    const char *path_end = auth_end + strcspn(auth_end, "?#");
    snprintf(out, len, "%.*s%.*s%.*s", p ? (int)(auth - url) : 0, url, (int)(auth_end - host),
             host, (int)(path_end - auth_end), auth_end);
    return out;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * n;
    if (buf_append(&t->body, data, len) < 0) {
        t->too_large = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    return len;
}

/* The host name the destination rules judge: the URL's host without port
 * or brackets ("api.example.com:8443" -> "api.example.com"). */
static void set_policy_host(struct transfer *t, const char *url)
{
    char *h = task_url_host(url);
    const char *start = h;
    size_t n;
    if (*h == '[') {
        start = h + 1;
        n = strcspn(start, "]");
    } else {
        const char *colon = strrchr(h, ':');
        n = colon && colon == strchr(h, ':') ? (size_t)(colon - h) : strlen(h);
    }
    snprintf(t->host, sizeof t->host, "%.*s", (int)n, start);
    free(h);
}

/* A redirect is followed only if its target passes the same URL check as a
 * new task; the address it connects to is checked again in on_open_socket. */
static bool redirect_allowed(struct transfer *t, const char *location, size_t len)
{
    char *effective = NULL, *loc = xstrndup(location, len), *url = NULL;
    bool ok = false;
    curl_easy_getinfo(t->easy, CURLINFO_EFFECTIVE_URL, &effective);
    CURLU *u = curl_url();
    if (u && effective && curl_url_set(u, CURLUPART_URL, effective, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_URL, loc, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, &url, 0) == CURLUE_OK) {
        char why[256];
        ok = netpolicy_check_url(t->w->d->np, url, why, sizeof why) == NETPOLICY_URL_OK;
    }
    curl_free(url);
    curl_url_cleanup(u);
    free(loc);
    if (!ok) t->blocked_range = "redirect to a refused destination";
    return ok;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * n;
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        t->head.len = 0; /* a new response (after 1xx or a redirect) */
        const char *sp = memchr(data, ' ', len);
        t->status = sp ? atoi(sp + 1) : 0;
        t->locations = 0;
    } else if (t->follow && t->status >= 300 && t->status <= 399 && len > 9 &&
               strncasecmp(data, "location:", 9) == 0) {
        /* libcurl repeats a custom method after 301/302/303 but drops the
         * body: a PUT would arrive empty. Not followed; 307 and 308 are. */
        if (t->keep_body && t->status >= 301 && t->status <= 303) {
            t->redirect_refused = true;
            return 0; /* aborts the transfer */
        }
        /* libcurl follows the first Location and this checked each: with a
         * second one, an allowed name, the policy judged the connection to
         * the first by the second's name. One Location, or no redirect. */
        if (++t->locations > 1) {
            t->blocked_range = "redirect with more than one Location header";
            return 0; /* aborts the transfer */
        }
        const char *v = data + 9, *end = data + len;
        while (v < end && (*v == ' ' || *v == '\t')) v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (!redirect_allowed(t, v, (size_t)(end - v))) return 0; /* aborts the transfer */
    }
    buf_append(&t->head, data, len); /* past the cap, extra headers are dropped */
    return len;
}

static curl_socket_t on_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct transfer *t = arg;
    (void)purpose;
    /* The name judged is the one of the URL libcurl is connecting for, read
     * from libcurl itself, whatever the headers of a redirect said. */
    char *current = NULL;
    if (curl_easy_getinfo(t->easy, CURLINFO_EFFECTIVE_URL, &current) == CURLE_OK && current && *current)
        set_policy_host(t, current);
    const char *range = netpolicy_check_addr(t->w->d->np, t->host, &addr->addr);
    if (range) {
        t->blocked_range = range;
        return CURL_SOCKET_BAD;
    }
    curl_socket_t fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (fd == CURL_SOCKET_BAD) t->local_errno = errno;
    return fd;
}

/* Parses captured header lines into a JSON object of lower-case names;
 * repeated headers are joined with ", ". Also picks out Retry-After and
 * AsyncQueue-Retry. */
static cJSON *parse_headers(const struct buf *head, int64_t now_ms, int64_t *retry_after_ms,
                            bool *target_final)
{
    cJSON *o = cJSON_CreateObject();
    *retry_after_ms = -1;
    *target_final = false;
    const char *p = head->data ? head->data : "";
    const char *end = p + head->len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        /* A name that is not a token is not a header: dropped, so that no
         * byte of it (invalid UTF-8, say) reaches the JSON written later. */
        if (colon && util_http_token(p, (size_t)(colon - p))) {
            char name[128];
            size_t nlen = (size_t)(colon - p) < sizeof name - 1 ? (size_t)(colon - p) : sizeof name - 1;
            for (size_t i = 0; i < nlen; i++) name[i] = (char)tolower((unsigned char)p[i]);
            name[nlen] = '\0';
            const char *v = colon + 1, *ve = line_end;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            char *value = xstrndup(v, (size_t)(ve - v));
            if (!util_utf8_valid(value, strlen(value))) {
                free(value);
                value = xstrdup("(not UTF-8)");
            }
            cJSON *prev = cJSON_GetObjectItemCaseSensitive(o, name);
            if (prev) {
                char *joined = xasprintf("%s, %s", prev->valuestring, value);
                cJSON_ReplaceItemInObjectCaseSensitive(o, name, cJSON_CreateString(joined));
                free(joined);
            } else {
                cJSON_AddStringToObject(o, name, value);
            }
            if (strcmp(name, "retry-after") == 0) *retry_after_ms = retry_parse_retry_after(value, now_ms);
            if (strcmp(name, "asyncqueue-retry") == 0 && strcasecmp(value, "false") == 0)
                *target_final = true;
            free(value);
        }
        p = eol ? eol + 1 : end;
    }
    return o;
}

static enum retry_transport classify(CURLcode rc, const struct transfer *t)
{
    if (t->blocked_range && (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
                             rc == CURLE_WRITE_ERROR))
        return RETRY_TRANSPORT_BLOCKED;
    if (t->too_large) return RETRY_TRANSPORT_TOO_LARGE;
    if (t->redirect_refused && rc == CURLE_WRITE_ERROR) return RETRY_TRANSPORT_OK; /* its 3xx */
    switch (rc) {
    case CURLE_OK:
    case CURLE_TOO_MANY_REDIRECTS: return RETRY_TRANSPORT_OK; /* an answer: the last 3xx */
    case CURLE_OPERATION_TIMEDOUT: return RETRY_TRANSPORT_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST: return RETRY_TRANSPORT_DNS;
    case CURLE_COULDNT_CONNECT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return RETRY_TRANSPORT_CONNECT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE: return RETRY_TRANSPORT_TLS;
    default: return RETRY_TRANSPORT_OTHER;
    }
}

static void transport_message(CURLcode rc, const struct transfer *t, const struct config *cfg,
                              int64_t timeout_ms, int64_t elapsed_ms, char *out, size_t len)
{
    if (t->blocked_range && strncmp(t->blocked_range, "redirect", 8) == 0)
        snprintf(out, len, "refused to follow a %s", t->blocked_range);
    else if (t->blocked_range && strcmp(t->blocked_range, "denied") == 0)
        snprintf(out, len, "refused to connect: the destination is in deny_destinations");
    else if (t->blocked_range)
        snprintf(out, len, "refused to connect to a %s address; allow it with allow_destinations "
                 "(or allow_private_targets = true) to call local services", t->blocked_range);
    else if (t->too_large)
        snprintf(out, len, "the response body is larger than max_response_bytes (%zu bytes)",
                 cfg->max_response_bytes);
    else if (rc == CURLE_OPERATION_TIMEDOUT && elapsed_ms + 100 < timeout_ms)
        /* Not the call's own timeout: connecting (connect_timeout, a TLS
         * handshake) or a transfer slower than low_speed_limit. */
        snprintf(out, len, "gave up after %lld ms, before the timeout of %lld ms: no connection "
                 "within connect_timeout (%lld ms), or slower than low_speed_limit (%.120s)",
                 (long long)elapsed_ms, (long long)timeout_ms, (long long)cfg->connect_timeout_ms,
                 t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        snprintf(out, len, "no complete response within the timeout of %lld ms (%s)",
                 (long long)timeout_ms, t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
    else
        snprintf(out, len, "%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
}

/* ---- finishing a task attempt ---- */

struct finish_op {
    struct writer_op op;
    struct writer *writer;
    struct task *task;
    struct attempt attempt;
    char *webhook_body;
    enum retry_verdict verdict;
    bool applied;            /* the result was stored (not cancelled or requeued meanwhile) */
    int64_t run_at_ms;       /* a retry's due time as decided, before any reframe */
    int64_t clock_offset_ms; /* util_clock_offset_ms() when it was decided */
};

static int finish_apply(struct writer_txn *tx, void *arg)
{
    struct finish_op *f = arg;
    if (f->task->status == TASK_QUEUED) /* apply may run twice: from the decided time */
        f->task->run_at_ms = f->run_at_ms + writer_txn_reframe(tx, f->clock_offset_ms);
    const struct task *t = f->task;
    bool applied;
    struct task_result r = {.task = t, .attempt = &f->attempt};
    int rc = store_task_finish(writer_txn_conn(tx), &r, &applied);
    f->applied = rc == STORE_OK && applied;
    if (rc != STORE_OK || !applied) return rc; /* not applied: cancelled or requeued meanwhile */
    if (f->webhook_body && t->webhook_url) rc = writer_txn_webhook(tx, t, f->webhook_body);
    if (rc != STORE_OK) return rc;
    enum scheduler_outcome o = t->status == TASK_QUEUED      ? SCHEDULER_RETRY
                               : t->status == TASK_COMPLETED ? SCHEDULER_COMPLETED
                                                             : SCHEDULER_FAILED;
    writer_txn_released(tx, t->queue, t->host, o, t->seq, t->run_at_ms);
    if (t->status == TASK_QUEUED) {
        writer_txn_task_due(tx, t->queue, t->run_at_ms);
        writer_txn_event(tx, t, "retrying");
    } else {
        writer_txn_backlog(tx, -1);
        writer_txn_final(tx, t);
    }
    return STORE_OK;
}

static void finish_done(void *arg, int rc)
{
    struct finish_op *f = arg;
    if (rc != STORE_OK)
        log_msg(LOG_ERROR, "attempt.record_failed", "task=%s n=%d (the task stays running and is "
                "requeued when its lease ends)", f->task->id, f->attempt.n);
    /* Counted as stored: an attempt a cancel ended meanwhile is recorded
     * as cancelled, not as the success or failure decided here. */
    if (rc == STORE_OK && f->applied)
        metrics_attempt(f->attempt.status_code,
                        f->verdict == RETRY_DONE    ? "success"
                        : f->verdict == RETRY_AGAIN ? "retry"
                                                    : "failure",
                        f->attempt.duration_ms);
    /* attempt.end was logged when the call ended, as the worker decided it;
     * a cancel (or a stop) that got to the task first recorded its own end. */
    if (rc == STORE_OK && !f->applied)
        log_msg(LOG_INFO, "attempt.discarded", "task=%s n=%d status=%d reason=\"the task was cancelled "
                "or requeued before this result was stored; the task shows that instead\"",
                f->task->id, f->attempt.n, f->attempt.status_code);
    writer_lease_done(f->writer, false, f->task->seq);
    task_free(f->task);
    attempt_clear(&f->attempt);
    free(f->webhook_body);
    free(f);
}

static void finish_task(struct worker *w, struct transfer *t, CURLcode rc)
{
    struct dispatcher *d = w->d;
    struct task *task = t->job->task;
    t->job->task = NULL; /* ownership moves to the finish op */
    int64_t now = util_now_ms();
    int64_t clock_offset = now - util_mono_ms(); /* the frame of the times decided here */
    int64_t duration = util_mono_ms() - t->started_mono;
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);

    struct retry_outcome o = {0};
    o.transport = classify(rc, t);
    o.http_status = (int)status;
    o.attempts = task->attempts + 1 - task->attempts_uncounted; /* this attempt series */
    o.max_retries = task->max_retries;
    o.redirects = task->follow_redirects ? d->cfg->max_redirects : 0;
    o.follow_asked = task->follow_redirects;
    o.redirect_drops_body = t->redirect_refused; /* the status is that 3xx */
    char detail[384];
    transport_message(rc, t, d->cfg, task->timeout_ms, duration, detail, sizeof detail);
    o.transport_detail = detail;
    cJSON *headers = parse_headers(&t->head, now, &o.retry_after_ms, &o.target_final);
    /* A complete answer, or one whose body was too large: its status and
     * Retry-After count. A cut one says nothing. */
    bool answered = o.transport == RETRY_TRANSPORT_OK || o.transport == RETRY_TRANSPORT_TOO_LARGE;
    if (!answered) o.retry_after_ms = -1;
    struct retry_decision dec;
    retry_decide(&o, &d->policy, &dec);
    if (t->local_errno && o.transport == RETRY_TRANSPORT_CONNECT) {
        /* The daemon's own limit, not the target: the attempt is not
         * counted, and the task runs again once descriptors free up. */
        dec.verdict = RETRY_AGAIN;
        dec.delay_ms = LOCAL_RETRY_MS + (int64_t)util_random_below(LOCAL_RETRY_MS);
        dec.error_code = "local_resources";
        snprintf(dec.message, sizeof dec.message, "the daemon could not open a socket (%s); the "
                 "target was not called and this attempt does not count", strerror(t->local_errno));
        task->attempts_uncounted += 1;
    }

    task->attempts += 1;
    task->updated_at_ms = now;
    free(task->response_headers_json);
    free(task->response_body);
    free(task->error_code);
    free(task->error_message);
    task->response_headers_json = NULL;
    task->response_body = NULL;
    task->response_body_len = 0;
    task->response_status = 0;
    if (status > 0) {
        task->response_status = (int)status;
        task->response_headers_json = cJSON_PrintUnformatted(headers);
        /* Only a whole body is a result: not one cut short (a closed
         * connection, a timeout) nor one past max_response_bytes. */
        if (o.transport == RETRY_TRANSPORT_OK)
            task->response_body = buf_steal(&t->body, &task->response_body_len);
    }
    task->response_ms = duration;
    task->error_code = xstrdup(dec.error_code);
    task->error_message = dec.error_code ? xstrdup(dec.message) : NULL;
    cJSON_Delete(headers);

    const char *outcome;
    switch (dec.verdict) {
    case RETRY_DONE:
        task->status = TASK_COMPLETED;
        task->finished_at_ms = now;
        outcome = "completed";
        break;
    case RETRY_AGAIN:
        task->status = TASK_QUEUED;
        task->run_at_ms = now + dec.delay_ms;
        outcome = "retry";
        break;
    default:
        task->status = TASK_FAILED;
        task->finished_at_ms = now;
        outcome = "failed";
        break;
    }

    struct finish_op *f = xcalloc(1, sizeof *f);
    f->attempt.n = task->attempts;
    f->attempt.started_at_ms = t->started_ms;
    f->attempt.finished_at_ms = now;
    f->attempt.duration_ms = duration;
    f->attempt.status_code = (int)status;
    f->attempt.error_code = xstrdup(dec.error_code);
    f->attempt.error_message = dec.error_code ? xstrdup(dec.message) : NULL;
    f->verdict = dec.verdict;
    f->run_at_ms = task->run_at_ms;
    f->clock_offset_ms = clock_offset;
    if (task_status_final(task->status) && task->webhook_url)
        f->webhook_body = task_webhook_payload(task);

    char err[300];
    if (dec.verdict == RETRY_AGAIN)
        log_batch_add(&w->log, LOG_INFO, "attempt.end", "task=%s n=%d status=%ld ms=%lld outcome=retry retry_in_ms=%lld error=%s",
                      task->id, task->attempts, status, (long long)duration, (long long)dec.delay_ms,
                      log_quote(err, sizeof err, dec.error_code));
    else
        log_batch_add(&w->log, dec.verdict == RETRY_DONE ? LOG_INFO : LOG_WARN, "attempt.end",
                      "task=%s n=%d status=%ld ms=%lld outcome=%s%s%s", task->id, task->attempts, status,
                      (long long)duration, outcome, dec.error_code ? " error=" : "",
                      dec.error_code ? log_quote(err, sizeof err, dec.message) : "");

    f->task = task;
    f->writer = d->writer;
    f->op.apply = finish_apply;
    f->op.done = finish_done;
    f->op.arg = f;
    writer_submit(d->writer, &f->op);
}

/* ---- finishing a webhook delivery ---- */

struct webhook_op {
    struct writer_op op;
    struct writer *writer;
    struct webhook_result r;
    char *error;
    int64_t next_at_ms;      /* the next delivery as decided, before any reframe */
    int64_t clock_offset_ms; /* util_clock_offset_ms() when it was decided */
};

static int webhook_apply(struct writer_txn *tx, void *arg)
{
    struct webhook_op *f = arg;
    if (!f->r.delivered && !f->r.give_up)
        f->r.next_at_ms = f->next_at_ms + writer_txn_reframe(tx, f->clock_offset_ms);
    int rc = store_webhook_finish(writer_txn_conn(tx), &f->r);
    if (rc == STORE_OK && !f->r.delivered && !f->r.give_up) writer_txn_webhook_due(tx, f->r.next_at_ms);
    return rc;
}

static void webhook_done(void *arg, int rc)
{
    struct webhook_op *f = arg;
    if (rc != STORE_OK)
        log_msg(LOG_ERROR, "webhook.record_failed", "seq=%lld (it is delivered again when its lease ends)",
                (long long)f->r.seq);
    writer_lease_done(f->writer, true, f->r.seq);
    free(f->error);
    free(f);
}

static void finish_webhook(struct worker *w, struct transfer *t, CURLcode rc)
{
    struct dispatcher *d = w->d;
    struct webhook_msg *m = t->job->webhook;
    int64_t now = util_now_ms();
    int64_t clock_offset = now - util_mono_ms(); /* the frame of the times decided here */
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    struct webhook_op *f = xcalloc(1, sizeof *f);
    struct webhook_result *r = &f->r;
    r->seq = m->seq;
    r->claim_token = m->claim_token;
    r->attempts = m->attempts + 1;
    r->started_at_ms = t->started_ms;
    r->finished_at_ms = now;
    r->duration_ms = util_mono_ms() - t->started_mono;
    r->status_code = (int)status;
    /* The receiver's body is not kept, so hitting its small cap is fine. */
    bool ok = (rc == CURLE_OK || (t->too_large && rc == CURLE_WRITE_ERROR)) && status >= 200 &&
              status <= 299;
    char detail[384];
    if (ok) {
        r->delivered = true;
    } else {
        if (rc == CURLE_OK || t->too_large)
            snprintf(detail, sizeof detail, "receiver answered %ld", status);
        else
            transport_message(rc, t, d->cfg, d->cfg->webhook_timeout_ms, util_mono_ms() - t->started_mono,
                              detail, sizeof detail);
        int64_t delay = retry_webhook_delay_ms(r->attempts, d->cfg->webhook_schedule_ms,
                                               d->cfg->n_webhook_schedule);
        if (t->local_errno && !t->blocked_range && rc == CURLE_COULDNT_CONNECT) {
            /* The daemon's own limit: not an attempt, the schedule is kept. */
            snprintf(detail, sizeof detail, "the daemon could not open a socket (%s); the receiver "
                     "was not called", strerror(t->local_errno));
            r->uncounted = true;
            r->attempts = m->attempts;
            delay = LOCAL_RETRY_MS + (int64_t)util_random_below(LOCAL_RETRY_MS);
        }
        f->error = xstrdup(detail);
        r->error = f->error;
        if (delay < 0 || t->blocked_range) r->give_up = true;
        else r->next_at_ms = now + delay;
    }
    f->next_at_ms = r->next_at_ms;
    f->clock_offset_ms = clock_offset;
    metrics_webhook(r->delivered ? "delivered" : r->give_up ? "failed" : "retry");
    char err[300];
    if (r->delivered)
        log_batch_add(&w->log, LOG_INFO, "webhook.delivered", "id=%s task=%s n=%d status=%ld ms=%lld",
                      m->id, m->task_id, r->attempts, status, (long long)r->duration_ms);
    else if (r->give_up)
        log_batch_add(&w->log, LOG_WARN, "webhook.failed", "id=%s task=%s n=%d status=%ld error=%s",
                      m->id, m->task_id, r->attempts, status, log_quote(err, sizeof err, detail));
    else
        log_batch_add(&w->log, LOG_INFO, "webhook.retry", "id=%s task=%s n=%d status=%ld retry_in_ms=%lld error=%s",
                      m->id, m->task_id, r->attempts, status, (long long)(r->next_at_ms - now),
                      log_quote(err, sizeof err, detail));
    f->writer = d->writer;
    f->op.apply = webhook_apply;
    f->op.done = webhook_done;
    f->op.arg = f;
    writer_submit(d->writer, &f->op);
}

/* ---- starting transfers ---- */

/* A handle for the next call: a spare one if there is, else a new one.
 * curl_easy_init and curl_easy_cleanup were 4 % of the daemon's
 * instructions end to end (a 5 KiB handle zeroed, set up and freed every
 * call); curl_easy_reset puts every option back to its default, and what it
 * keeps (connections are the multi's, the DNS cache too; no cookies or HSTS
 * are turned on) carries nothing of one task into the next. */
static CURL *easy_get(struct worker *w)
{
    return w->n_spare > 0 ? w->spare[--w->n_spare] : curl_easy_init();
}

static void easy_put(struct worker *w, CURL *e)
{
    if (!e) return;
    if (w->n_spare < SPARE_EASY_MAX) {
        curl_easy_reset(e);
        w->spare[w->n_spare++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

/* Frees the transfer; its handle, out of the multi already, goes back to
 * the worker's spares. */
static void transfer_free(struct worker *w, struct transfer *t)
{
    if (!t) return;
    easy_put(w, t->easy);
    curl_slist_free_all(t->headers);
    buf_free(&t->body);
    buf_free(&t->head);
    job_list_free(t->job);
    free(t);
}

static void common_options(struct dispatcher *d, struct transfer *t, const char *url,
                           int64_t timeout_ms)
{
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)d->cfg->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* ignore *_proxy variables */
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L); /* long calls through NATs */
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 60L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, AQ_USER_AGENT);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
    if (d->cfg->low_speed_limit > 0) {
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, (long)d->cfg->low_speed_limit);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)((d->cfg->low_speed_time_ms + 999) / 1000));
    }
    set_policy_host(t, url);
    t->headers = curl_slist_append(t->headers, "Expect:"); /* no 100-continue round trip */
}

static void add_header(struct transfer *t, const char *name, const char *value)
{
    /* "Name: value", or "Name;": libcurl's way to send an empty value. Put
     * together by hand: nine headers a task went through vsnprintf twice
     * each, 3 % of the daemon's instructions end to end. Spaces and tabs
     * around a value are not part of it (RFC 9110 5.5); libcurl read a value
     * of only spaces as "remove this header", and a Content-Type of " "
     * sent the payload with none. */
    while (*value == ' ' || *value == '\t') value++;
    size_t n = strlen(name), v = strlen(value);
    while (v > 0 && (value[v - 1] == ' ' || value[v - 1] == '\t')) v--;
    char *line = xmalloc(n + v + 3);
    memcpy(line, name, n);
    if (v) {
        memcpy(line + n, ": ", 2);
        memcpy(line + n + 2, value, v);
        line[n + 2 + v] = '\0';
    } else {
        memcpy(line + n, ";", 2);
    }
    t->headers = curl_slist_append(t->headers, line);
    free(line);
}

static void setup_task(struct dispatcher *d, struct transfer *t)
{
    struct task *task = t->job->task;
    CURL *e = t->easy;
    buf_init(&t->body, d->cfg->max_response_bytes);
    common_options(d, t, task->callback_url, task->timeout_ms);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* the cap counts decoded bytes */
    if (task->follow_redirects && d->cfg->max_redirects > 0) {
        t->follow = true;
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)d->cfg->max_redirects);
        curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    }
    bool has_content_type = false;
    cJSON *h = task->headers_json ? cJSON_Parse(task->headers_json) : NULL;
    for (const cJSON *it = h ? h->child : NULL; it; it = it->next) {
        if (!cJSON_IsString(it)) continue;
        if (strcasecmp(it->string, "content-type") == 0) has_content_type = true;
        add_header(t, it->string, it->valuestring);
    }
    cJSON_Delete(h);
    if (task->body && !has_content_type)
        add_header(t, "Content-Type", task->body_kind == TASK_BODY_JSON ? "application/json"
                                                                        : "text/plain; charset=utf-8");
    char n[16];
    snprintf(n, sizeof n, "%d", task->attempts + 1);
    add_header(t, "AsyncQueue-Task-Id", task->id);
    add_header(t, "AsyncQueue-Attempt", n);
    add_header(t, "AsyncQueue-Queue", task->queue ? task->queue : "default");
    if (task->schedule) add_header(t, "AsyncQueue-Schedule", task->schedule);

    const char *m = task->method ? task->method : "POST";
    if (task->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, task->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)task->body_len);
        if (strcmp(m, "POST") != 0) {
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
            t->keep_body = true;
        }
    } else if (strcmp(m, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
        if (strcmp(m, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
        /* No body, no type: libcurl would add a form Content-Type. */
        if (!has_content_type) t->headers = curl_slist_append(t->headers, "Content-Type:");
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    char u[256], q[300]; /* quoted: a URL may hold '"', '\\' and '=' */
    log_batch_add(&t->w->log, LOG_INFO, "attempt.start", "task=%s n=%d method=%s url=%s", task->id,
                  task->attempts + 1, m, log_quote(q, sizeof q, url_for_log(task->callback_url, u, sizeof u)));
}

static void setup_webhook(struct dispatcher *d, struct transfer *t)
{
    struct webhook_msg *m = t->job->webhook;
    buf_init(&t->body, WEBHOOK_RESPONSE_MAX);
    common_options(d, t, m->url, d->cfg->webhook_timeout_ms);
    int64_t ts = util_now_ms() / 1000;
    char sig[WEBHOOK_SIGNATURE_LEN * WEBHOOK_KEYS_MAX], tsbuf[24];
    pthread_mutex_lock(&d->keys_lock);
    webhook_sign_all(&d->keys, m->id, ts, m->body, m->body_len, sig, sizeof sig);
    pthread_mutex_unlock(&d->keys_lock);
    snprintf(tsbuf, sizeof tsbuf, "%lld", (long long)ts);
    add_header(t, "Content-Type", "application/json");
    add_header(t, "webhook-id", m->id);
    add_header(t, "webhook-timestamp", tsbuf);
    add_header(t, "webhook-signature", sig);
    curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, m->body);
    curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)m->body_len);
    curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
}

static void complete(struct worker *w, struct transfer *t, CURLcode rc);

static void start(struct worker *w, struct job *job)
{
    struct transfer *t = xcalloc(1, sizeof *t);
    t->w = w;
    t->job = job;
    job->next = NULL;
    buf_init(&t->head, HEADER_BYTES_MAX);
    t->started_ms = util_now_ms();
    t->started_mono = util_mono_ms();
    t->easy = easy_get(w);
    if (!t->easy) {
        snprintf(t->errbuf, sizeof t->errbuf, "cannot create a libcurl handle (out of memory?)");
        complete(w, t, CURLE_OUT_OF_MEMORY);
        return;
    }
    if (job->kind == JOB_TASK) setup_task(w->d, t);
    else setup_webhook(w->d, t);
    t->next = w->active;
    if (w->active) w->active->prev = t;
    w->active = t;
    CURLMcode mc = curl_multi_add_handle(w->multi, t->easy);
    if (mc != CURLM_OK) {
        snprintf(t->errbuf, sizeof t->errbuf, "cannot start the call: %s", curl_multi_strerror(mc));
        complete(w, t, CURLE_FAILED_INIT);
    }
}

static void unlink_transfer(struct worker *w, struct transfer *t)
{
    if (t->prev) t->prev->next = t->next;
    else if (w->active == t) w->active = t->next;
    if (t->next) t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

/* Records the result and releases the slot. */
static void complete(struct worker *w, struct transfer *t, CURLcode rc)
{
    if (t->job->kind == JOB_TASK) finish_task(w, t, rc);
    else finish_webhook(w, t, rc);
    unlink_transfer(w, t);
    if (t->easy) curl_multi_remove_handle(w->multi, t->easy);
    transfer_free(w, t);
    atomic_fetch_sub(&w->load, 1);
    atomic_fetch_sub(&w->d->inflight, 1);
}

/* Stops the calls of tasks cancelled while running. Their result is not
 * recorded: the cancel already was. */
static void run_aborts(struct worker *w)
{
    pthread_mutex_lock(&w->lock);
    int64_t *seqs = w->aborts;
    size_t n = w->n_aborts;
    w->aborts = NULL;
    w->n_aborts = w->cap_aborts = 0;
    pthread_mutex_unlock(&w->lock);
    for (size_t i = 0; i < n; i++) {
        for (struct transfer *t = w->active; t; t = t->next) {
            if (t->job->kind != JOB_TASK || t->job->task->seq != seqs[i]) continue;
            log_batch_add(&w->log, LOG_INFO, "attempt.aborted", "task=%s reason=cancelled",
                          t->job->task->id);
            unlink_transfer(w, t);
            curl_multi_remove_handle(w->multi, t->easy); /* closes the connection */
            transfer_free(w, t);
            atomic_fetch_sub(&w->load, 1);
            atomic_fetch_sub(&w->d->inflight, 1);
            break;
        }
    }
    free(seqs);
}

/* ---- the loop ---- */

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct dispatcher *d = w->d;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        struct job *jobs = w->inbox;
        w->inbox = NULL;
        pthread_mutex_unlock(&w->lock);
        while (jobs) {
            struct job *next = jobs->next;
            start(w, jobs);
            jobs = next;
        }
        run_aborts(w);
        int running = 0;
        curl_multi_perform(w->multi, &running);
        /* Every message is read before any call is completed: libcurl's
         * curl_multi_remove_handle walks the messages still unread, so
         * completing each as it was read cost O(n^2) when many calls ended
         * in one pass (5 % of the worker's time with one worker). */
        CURLMsg *msg;
        int left;
        struct transfer *ended = NULL, **tail = &ended;
        while ((msg = curl_multi_info_read(w->multi, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            struct transfer *t = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
            t->result = msg->data.result;
            t->ended_next = NULL;
            *tail = t;
            tail = &t->ended_next;
        }
        while (ended) {
            struct transfer *t = ended;
            ended = t->ended_next;
            complete(w, t, t->result);
        }
        log_batch_flush(&w->log);
        if (atomic_load(&d->aborting)) break;
        if (atomic_load(&d->stopping) && atomic_load(&w->load) == 0) break;
        curl_multi_poll(w->multi, NULL, 0, 1000, NULL);
    }
    /* Whatever is still in flight is dropped unrecorded; the writer puts its
     * tasks back in the queue. */
    int dropped = 0;
    for (struct transfer *t = w->active, *next; t; t = next) {
        next = t->next;
        curl_multi_remove_handle(w->multi, t->easy);
        transfer_free(w, t);
        dropped++;
    }
    w->active = NULL;
    while (w->n_spare > 0) curl_easy_cleanup(w->spare[--w->n_spare]);
    pthread_mutex_lock(&w->lock);
    for (struct job *j = w->inbox; j; j = j->next) dropped++;
    job_list_free(w->inbox);
    w->inbox = NULL;
    pthread_mutex_unlock(&w->lock);
    atomic_fetch_sub(&d->inflight, dropped);
    atomic_store(&w->load, 0);
    if (dropped) log_msg(LOG_WARN, "worker.stopped", "worker=%d dropped=%d", w->index, dropped);
    log_batch_free(&w->log);
    return NULL;
}

/* ---- the sink the writer feeds ---- */

static int sink_free_slots(void *arg)
{
    struct dispatcher *d = arg;
    if (atomic_load(&d->stopping)) return 0;
    int free = d->max_inflight - atomic_load(&d->inflight);
    return free > 0 ? free : 0;
}

static void sink_deliver(void *arg, struct job *jobs, int count)
{
    struct dispatcher *d = arg;
    atomic_fetch_add(&d->inflight, count);
    struct job *per_worker[64] = {0};
    int n = d->n_workers < 64 ? d->n_workers : 64;
    while (jobs) {
        struct job *next = jobs->next;
        int best = 0, best_load = atomic_load(&d->workers[0].load);
        for (int i = 1; i < n; i++) {
            int l = atomic_load(&d->workers[i].load);
            if (l < best_load) {
                best = i;
                best_load = l;
            }
        }
        atomic_fetch_add(&d->workers[best].load, 1);
        jobs->next = per_worker[best];
        per_worker[best] = jobs;
        jobs = next;
    }
    for (int i = 0; i < n; i++) {
        if (!per_worker[i]) continue;
        struct worker *w = &d->workers[i];
        pthread_mutex_lock(&w->lock);
        struct job *tail = per_worker[i];
        while (tail->next) tail = tail->next;
        tail->next = w->inbox;
        w->inbox = per_worker[i];
        pthread_mutex_unlock(&w->lock);
        curl_multi_wakeup(w->multi);
    }
}

static void sink_abort(void *arg, int64_t task_seq)
{
    struct dispatcher *d = arg;
    /* Which worker holds the call is not known here; each looks. */
    for (int i = 0; i < d->n_workers; i++) {
        struct worker *w = &d->workers[i];
        pthread_mutex_lock(&w->lock);
        if (w->n_aborts == w->cap_aborts) {
            w->cap_aborts = w->cap_aborts ? w->cap_aborts * 2 : 8;
            w->aborts = xrealloc(w->aborts, w->cap_aborts * sizeof *w->aborts);
        }
        w->aborts[w->n_aborts++] = task_seq;
        pthread_mutex_unlock(&w->lock);
        curl_multi_wakeup(w->multi);
    }
}

struct writer_sink dispatcher_sink(struct dispatcher *d)
{
    struct writer_sink s = {.free_slots = sink_free_slots, .deliver = sink_deliver,
                            .abort_call = sink_abort, .arg = d};
    return s;
}

int dispatcher_inflight(struct dispatcher *d)
{
    return atomic_load(&d->inflight);
}

void dispatcher_set_webhook_keys(struct dispatcher *d, const struct webhook_keys *keys)
{
    pthread_mutex_lock(&d->keys_lock);
    d->keys = *keys;
    pthread_mutex_unlock(&d->keys_lock);
}

/* Each call holds a descriptor, and so does each client connection. Calls
 * claimed past what the process may open would only fail (EMFILE), so the
 * calls in flight stay within the open-files limit less a share for the
 * HTTP side (up to http_max_connections, at most a quarter of the limit)
 * and FD_RESERVE for the database, logs and listeners. */
#define FD_RESERVE 32
static int inflight_budget(const struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return cfg->max_inflight;
    long nofile = rl.rlim_cur > 100000000 ? 100000000 : (long)rl.rlim_cur;
    long http = cfg->http_max_connections < nofile / 4 ? cfg->http_max_connections : nofile / 4;
    long budget = nofile - FD_RESERVE - http;
    if (budget < nofile / 4) budget = nofile / 4;
    if (budget < 1) budget = 1;
    if (budget >= cfg->max_inflight) return cfg->max_inflight;
    log_msg(LOG_WARN, "dispatcher.inflight_capped", "max_inflight=%d open_files_limit=%ld used=%ld "
            "note=\"raise the open-files limit (LimitNOFILE=) to allow more calls at once\"",
            cfg->max_inflight, nofile, budget);
    return (int)budget;
}

struct dispatcher *dispatcher_new(const struct config *cfg, struct writer *writer,
                                  const struct netpolicy *np, const struct webhook_keys *keys)
{
    struct dispatcher *d = xcalloc(1, sizeof *d);
    d->cfg = cfg;
    d->writer = writer;
    d->np = np;
    pthread_mutex_init(&d->keys_lock, NULL);
    d->keys = *keys;
    d->n_workers = cfg->workers > 64 ? 64 : cfg->workers;
    d->workers = xcalloc((size_t)d->n_workers, sizeof *d->workers);
    d->policy.base_ms = cfg->retry_base_ms;
    d->policy.cap_ms = cfg->retry_cap_ms;
    d->policy.jitter = cfg->retry_jitter;
    d->policy.random_below = util_random_below;
    atomic_init(&d->inflight, 0);
    d->max_inflight = inflight_budget(cfg);
    atomic_init(&d->stopping, false);
    atomic_init(&d->aborting, false);
    for (int i = 0; i < d->n_workers; i++) {
        struct worker *w = &d->workers[i];
        w->d = d;
        w->index = i;
        pthread_mutex_init(&w->lock, NULL);
        atomic_init(&w->load, 0);
        log_batch_init(&w->log);
        w->multi = curl_multi_init();
        if (!w->multi) {
            log_msg(LOG_ERROR, "dispatcher.init_failed", "error=\"curl_multi_init failed\"");
            dispatcher_free(d);
            return NULL;
        }
    }
    return d;
}

int dispatcher_start(struct dispatcher *d)
{
    for (int i = 0; i < d->n_workers; i++) {
        if (pthread_create(&d->workers[i].thread, NULL, worker_main, &d->workers[i]) != 0) {
            log_msg(LOG_ERROR, "dispatcher.thread_failed", "worker=%d", i);
            return -1;
        }
        char name[16]; /* a thread name is at most 15 characters */
        snprintf(name, sizeof name, "aq-worker-%d", i % 10000);
        pthread_setname_np(d->workers[i].thread, name);
        d->workers[i].started = true;
    }
    return 0;
}

void dispatcher_stop(struct dispatcher *d, int64_t grace_ms)
{
    atomic_store(&d->stopping, true);
    for (int i = 0; i < d->n_workers; i++)
        if (d->workers[i].multi) curl_multi_wakeup(d->workers[i].multi);
    int64_t deadline = util_mono_ms() + grace_ms;
    int inflight = atomic_load(&d->inflight);
    if (inflight > 0)
        log_msg(LOG_INFO, "dispatcher.draining", "inflight=%d grace_ms=%lld", inflight, (long long)grace_ms);
    while (atomic_load(&d->inflight) > 0 && util_mono_ms() < deadline) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&d->aborting, true);
    for (int i = 0; i < d->n_workers; i++) {
        struct worker *w = &d->workers[i];
        if (!w->started) continue;
        curl_multi_wakeup(w->multi);
        pthread_join(w->thread, NULL);
        w->started = false;
    }
}

void dispatcher_free(struct dispatcher *d)
{
    if (!d) return;
    for (int i = 0; i < d->n_workers; i++) {
        struct worker *w = &d->workers[i];
        if (w->started) {
            atomic_store(&d->aborting, true);
            curl_multi_wakeup(w->multi);
            pthread_join(w->thread, NULL);
        }
        job_list_free(w->inbox);
        free(w->aborts);
        if (w->multi) curl_multi_cleanup(w->multi);
        pthread_mutex_destroy(&w->lock);
        if (!w->started && w->log.buf.data) log_batch_free(&w->log);
    }
    free(d->workers);
    pthread_mutex_destroy(&d->keys_lock);
    OPENSSL_cleanse(&d->keys, sizeof d->keys);
    free(d);
}
