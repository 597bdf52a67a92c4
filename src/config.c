/*
 * config: the settings table and the three sources that fill it. One table
 * row per key gives its type, default, bounds and documentation; parsing,
 * --help, --check-config and asyncqueue.conf.example all read the same
 * rows, so a key cannot exist in one and be missing from another.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "util.h"
#include "validate.h"
#include "version.h"

enum key_type {
    KT_STRING,
    KT_ADDRESS, /* a string, host:port (empty: none) */
    KT_STRING_LIST,
    KT_BOOL,
    KT_INT,
    KT_INT64,
    KT_SIZE,
    KT_DURATION,
    KT_DURATION_LIST,
    KT_SYNC,
    KT_LOGLEVEL,
};

struct config_key {
    const char *name;
    enum key_type type;
    size_t offset;
    const char *def;   /* default, in the same text form a user writes */
    int64_t min, max;  /* bounds for numbers (durations in ms, sizes in bytes) */
    bool secret;       /* masked in --check-config output */
    const char *doc;
    size_t count_off;  /* KT_STRING_LIST: where the item count goes */
};

#define OFF(f) offsetof(struct config, f)
#define DAY_MS (86400LL * 1000)

static const struct config_key keys[] = {
    {"listen", KT_ADDRESS, OFF(listen), "127.0.0.1:8080", 0, 0, false,
     "Address and port to serve the HTTP API on, as host:port ([v6]:port for IPv6).\n"
     "Port 0 picks a free port (logged as port= at log_level info). Without any\n"
     "API key (api_key or a key.<label> line) the daemon refuses any address that\n"
     "is not loopback.", 0},
    {"db", KT_STRING, OFF(db), "asyncqueue.db", 0, 0, false,
     "Path of the SQLite database file (created if missing; -wal and -shm files\n"
     "sit beside it). Only one daemon may use a database file at a time.", 0},
    {"metrics_listen", KT_ADDRESS, OFF(metrics_listen), "", 0, 0, false,
     "An extra host:port that serves only GET /metrics (and GET /healthz, for a\n"
     "probe), without a key, for a Prometheus that cannot send one. Empty:\n"
     "/metrics is served on the main address only, and needs a key when keys\n"
     "are configured. Keep it on loopback or a private network.", 0},
    {"metrics_max_queues", KT_INT, OFF(metrics_max_queues), "1000", 0, 100000, false,
     "Most queues with series of their own in /metrics (six each). Any key that\n"
     "may create tasks can name new queues, so past this many the rest are\n"
     "summed into the series queue=\"(other)\", and asyncqueue_queues_folded\n"
     "says how many. Queues with settings come first, then those with tasks\n"
     "waiting or running, then the rest; the busiest first within each.\n"
     "0: every queue in (other).", 0},
    {"api_key", KT_STRING_LIST, OFF(api_keys), "", 0, 0, true,
     "Admin API keys accepted in 'Authorization: Bearer <key>', separated by\n"
     "commas (several keys allow rotation without downtime); an item may be the\n"
     "key's sha256:<hex> digest instead (asyncqueue --hash-key). Keys with a scope or\n"
     "a tenant are 'key.<label>' lines (see the end of this file). With no key\n"
     "at all there is no authentication, and the daemon only listens on loopback;\n"
     "api_key set but empty (a line uncommented as it is here) is refused.\n"
     "Keys in this file are reloaded on SIGHUP; keys from the environment\n"
     "(ASYNCQUEUE_API_KEY) or a flag are read at start only.", .count_off = OFF(n_api_keys)},
    {"webhook_secret", KT_STRING_LIST, OFF(webhook_secrets), "", 0, 0, true,
     "Secrets for signing webhooks (Standard Webhooks, 'whsec_' + base64 of 24 to\n"
     "64 bytes), at most 8, separated by commas: every delivery is signed with\n"
     "each, so a receiver can move from the old to the new one (list the new one\n"
     "first).\n"
     "Empty: one is generated on first start and kept in the database; print it\n"
     "with 'asyncqueue --print-webhook-secret'. Reloaded from this file on SIGHUP\n"
     "(from the environment or a flag, read at start only).",
     .count_off = OFF(n_webhook_secrets)},
    {"allow_private_targets", KT_BOOL, OFF(allow_private_targets), "false", 0, 0, false,
     "Allow targets and webhooks on loopback, private (RFC 1918, fc00::/7),\n"
     "link-local (including cloud metadata) and other non-public addresses.\n"
     "Checked on the address actually connected to. Keep false in production.", 0},
    {"allow_destinations", KT_STRING_LIST, OFF(allow_destinations), "", 0, 0, false,
     "CIDRs (10.1.0.0/16, fd00::/8) and host names (api.internal, or .internal for\n"
     "every name under it) that targets and webhooks may reach even though they\n"
     "are private, separated by commas. Checked on the address connected to.",
     .count_off = OFF(n_allow_destinations)},
    {"deny_destinations", KT_STRING_LIST, OFF(deny_destinations), "", 0, 0, false,
     "CIDRs and host names targets and webhooks may never reach, even with\n"
     "allow_private_targets; checked before allow_destinations.",
     .count_off = OFF(n_deny_destinations)},
    {"max_redirects", KT_INT, OFF(max_redirects), "5", 0, 50, false,
     "Most redirects a task that asks for followRedirects may follow; each one\n"
     "is checked against the destination rules again.", 0},
    {"low_speed_limit", KT_SIZE, OFF(low_speed_limit), "0", 0, 1LL << 30, false,
     "Abort a call that moves fewer than this many bytes per second for\n"
     "low_speed_time. 0: off, because a slow service (an AI model thinking for\n"
     "minutes) sends nothing until it answers; the task timeout still applies.", 0},
    {"low_speed_time", KT_DURATION, OFF(low_speed_time_ms), "60s", 1000, DAY_MS, false,
     "See low_speed_limit. Counted in whole seconds (a fraction is rounded up).", 0},
    {"http_max_connections", KT_INT, OFF(http_max_connections), "4096", 16, 1000000, false,
     "Most client connections at once (long-polls included). Past it, new\n"
     "connections are not accepted: they wait in the kernel's listen queue\n"
     "until one closes, and the kernel drops them once that queue is full.", 0},
    {"http_max_connections_per_ip", KT_INT, OFF(http_max_connections_per_ip), "0", 0, 1000000, false,
     "Most client connections from one address. 0: no limit, the right setting\n"
     "behind a proxy (every connection then comes from the proxy, which limits\n"
     "clients itself: see deploy/nginx.conf). Set it when clients connect directly.", 0},
    {"http_timeout", KT_DURATION, OFF(http_timeout_ms), "30s", 1000, 3600000, false,
     "A client connection idle this long (mid-request or between requests) is\n"
     "closed, so slow or stalled clients cannot hold the server. Long-polls are\n"
     "not idle. Counted in whole seconds (a fraction is rounded up).", 0},
    {"http_memory_limit", KT_SIZE, OFF(http_memory_limit), "16KiB", 4096, 1LL << 20, false,
     "Memory per client connection for the request line and headers (counted\n"
     "as their bytes and 64 for each header); larger headers get 431 (16KiB\n"
     "takes a header block of about 16 KB, more than nginx's own 8 KB per\n"
     "header line). 2 KiB more is kept for the answer's headers. libmicrohttpd\n"
     "zeroes it for every request, so a larger value costs CPU as well as\n"
     "memory. Bodies are separately capped by max_body_bytes.", 0},
    {"trust_proxy", KT_STRING_LIST, OFF(trust_proxy), "", 0, 0, false,
     "Addresses or CIDRs of reverse proxies whose X-Forwarded-For header is\n"
     "believed (e.g. 127.0.0.1 behind a local nginx). From anyone else it is\n"
     "ignored and the connection's own address is the client's.",
     .count_off = OFF(n_trust_proxy)},
    {"http_threads", KT_INT, OFF(http_threads), "2", 1, 64, false,
     "Threads serving HTTP requests.", 0},
    {"workers", KT_INT, OFF(workers), "2", 1, 64, false,
     "Threads making target and webhook calls. Each runs one libcurl multi loop\n"
     "that holds thousands of concurrent calls, so a few are enough.", 0},
    {"max_inflight", KT_INT, OFF(max_inflight), "10000", 1, 1000000, false,
     "Most target and webhook calls in flight at once, over all workers. Each\n"
     "call holds a socket: the daemon raises its open-files limit to the hard\n"
     "limit and, when that is still too low, runs fewer calls at once (logged\n"
     "as dispatcher.inflight_capped at start).", 0},
    {"max_body_bytes", KT_SIZE, OFF(max_body_bytes), "1MiB", 1024, 64LL << 20, false,
     "Largest request body accepted by POST /v1/tasks (413 beyond it).", 0},
    {"max_response_bytes", KT_SIZE, OFF(max_response_bytes), "1MiB", 1024, 64LL << 20, false,
     "Largest target response body kept as the task's result, counted after\n"
     "decompression. A longer body fails the attempt with response_too_large.\n"
     "Each call in flight may hold this much while its answer arrives: at worst\n"
     "max_inflight x max_response_bytes (10 GiB with the defaults, were every\n"
     "target to answer that much at once). Lower one of them to bound it.", 0},
    {"default_timeout", KT_DURATION, OFF(default_timeout_ms), "300s", 1000, 7 * DAY_MS, false,
     "Timeout of one target call when the task gives none.", 0},
    {"max_timeout", KT_DURATION, OFF(max_timeout_ms), "24h", 1000, 7 * DAY_MS, false,
     "Largest timeout a task may ask for.", 0},
    {"max_delay", KT_DURATION, OFF(max_delay_ms), "365d", 0, 3650 * DAY_MS, false,
     "Furthest ahead a task may be scheduled with delay or runAt. A waiting task\n"
     "costs a row on disk and nothing else.", 0},
    {"default_retries", KT_INT, OFF(default_retries), "3", 0, 1000, false,
     "Retries after the first attempt when the task gives none.", 0},
    {"max_retries", KT_INT, OFF(max_retries), "100", 0, 1000, false,
     "Largest number of retries a task may ask for.", 0},
    {"retry_base", KT_DURATION, OFF(retry_base_ms), "1s", 1, DAY_MS, false,
     "Backoff before the first retry; it doubles with each further retry.", 0},
    {"retry_cap", KT_DURATION, OFF(retry_cap_ms), "1h", 1, 7 * DAY_MS, false,
     "Longest backoff between two attempts.", 0},
    {"retry_jitter", KT_BOOL, OFF(retry_jitter), "true", 0, 0, false,
     "Full jitter: each backoff is a random time between zero and the exponential\n"
     "bound, so many failing tasks do not retry in lock-step. false waits exactly\n"
     "the bound (predictable, for tests and single clients).", 0},
    {"webhook_schedule", KT_DURATION_LIST, OFF(webhook_schedule_ms), "5s,5m,30m,2h,5h,10h,10h", 0,
     7 * DAY_MS, false,
     "Delays before each webhook retry, comma separated; after the last one the\n"
     "delivery is marked failed. The first delivery is immediate.", 0},
    {"webhook_timeout", KT_DURATION, OFF(webhook_timeout_ms), "30s", 100, DAY_MS, false,
     "Timeout of one webhook delivery.", 0},
    {"connect_timeout", KT_DURATION, OFF(connect_timeout_ms), "10s", 100, 600000, false,
     "Timeout for establishing a connection to a target or webhook receiver.", 0},
    {"synchronous", KT_SYNC, OFF(synchronous), "full", 0, 0, false,
     "SQLite durability: full fsyncs every commit, so a task answered 202\n"
     "survives power loss; normal may lose the last commits on power loss (not\n"
     "on a crash of the daemon).", 0},
    {"busy_timeout", KT_DURATION, OFF(busy_timeout_ms), "5s", 0, 600000, false,
     "How long a database operation waits for a lock held by another process.", 0},
    {"lease_grace", KT_DURATION, OFF(lease_grace_ms), "60s", 1000, DAY_MS, false,
     "A claimed task's lease lasts its timeout plus this; a task still running\n"
     "when its lease ends is put back in the queue.", 0},
    {"shutdown_grace", KT_DURATION, OFF(shutdown_grace_ms), "10s", 0, 3600000, false,
     "On SIGTERM or SIGINT, how long calls in flight may finish before they are\n"
     "stopped and their tasks put back in the queue.", 0},
    {"max_per_host", KT_INT, OFF(max_per_host), "1000", 0, 1000000, false,
     "Most calls in flight to one target host (host:port) at once, so one slow\n"
     "host cannot take every slot. 0: no cap. Webhook deliveries do not count.", 0},
    {"max_backlog", KT_INT64, OFF(max_backlog), "1000000", 1, 1000000000, false,
     "Most tasks waiting or running at once. Beyond it POST /v1/tasks answers\n"
     "429 queue_full with Retry-After; nothing is dropped silently.", 0},
    {"retention", KT_DURATION, OFF(retention_ms), "7d", 60000, 3650 * DAY_MS, false,
     "How long finished tasks (with their attempts and webhooks) are kept after\n"
     "they finish. Purged in small batches that never stall the writer. The\n"
     "newest task is kept whatever its age (a new task's seq, which list cursors\n"
     "are made of, is the highest + 1). At least idempotency_window.", 0},
    {"idempotency_window", KT_DURATION, OFF(idempotency_window_ms), "24h", 1000, 365 * DAY_MS, false,
     "How long an Idempotency-Key keeps returning its first task. At most\n"
     "retention, so that the task is still there.", 0},
    {"max_wait", KT_DURATION, OFF(max_wait_ms), "300s", 0, 3600000, false,
     "Longest long-poll a client may ask for with GET /v1/tasks/{id}?wait=SECONDS.\n"
     "Behind a proxy, keep the proxy's read timeout above it.", 0},
    {"batch_max", KT_INT, OFF(batch_max), "1024", 1, 100000, false,
     "Most writes grouped into one database transaction (one fsync). A batch create\n"
     "counts its tasks, waits behind single writes, and always gets a transaction.", 0},
    {"log_level", KT_LOGLEVEL, OFF(log_level), "info", 0, 0, false,
     "debug, info, warn, error or off. Logs go to stderr, one line per event.\n"
     "Even at off, a start that fails says why before it exits.", 0},
};

/* Client-side variables that share our prefix and are not daemon keys. */
static const char *const foreign_env[] = {"ASYNCQUEUE_URL", "ASYNCQUEUE_CONFIG", "ASYNCQUEUE_CACERT"};

/* true/yes/on/1 or false/no/off/0, as every boolean setting takes them:
 * 0, or -1 for anything else. */
static int parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1")) *out = true;
    else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "0")) *out = false;
    else return -1;
    return 0;
}

static const struct config_key *find_key(const char *name, size_t len)
{
    for (size_t i = 0; i < ARRAY_LEN(keys); i++)
        if (strlen(keys[i].name) == len && strncmp(keys[i].name, name, len) == 0) return &keys[i];
    return NULL;
}

/* A plain decimal number: digits, optionally a point and more digits (no
 * sign, exponent or hex, which strtod would take). */
static double decimal(const char *s, char **end)
{
    const char *p = s;
    if (!isdigit((unsigned char)*p)) {
        *end = (char *)(uintptr_t)s;
        return 0;
    }
    while (isdigit((unsigned char)*p)) p++;
    if (*p == '.' && isdigit((unsigned char)p[1])) {
        p++;
        while (isdigit((unsigned char)*p)) p++;
    }
    char tmp[64];
    size_t n = (size_t)(p - s);
    if (n == 0 || n >= sizeof tmp) {
        *end = (char *)(uintptr_t)s;
        return 0;
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    *end = (char *)(uintptr_t)p;
    return strtod(tmp, NULL);
}

int config_parse_duration_ms(const char *s, int64_t *out)
{
    char *end;
    double v = decimal(s, &end);
    if (end == s) return -1;
    double mult;
    if (*end == '\0' || strcmp(end, "s") == 0) mult = 1000;
    else if (strcmp(end, "ms") == 0) mult = 1;
    else if (strcmp(end, "m") == 0) mult = 60000;
    else if (strcmp(end, "h") == 0) mult = 3600000;
    else if (strcmp(end, "d") == 0) mult = 86400000;
    else return -1;
    double ms = v * mult;
    if (ms < 0 || ms > 9e15 || ms != (double)(int64_t)ms) return -1; /* whole milliseconds only */
    *out = (int64_t)ms;
    return 0;
}

int config_parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)*s)) return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) return -1;
    unsigned long long mult;
    if (*end == '\0' || strcmp(end, "B") == 0) mult = 1;
    else if (!strcmp(end, "K") || !strcmp(end, "KB") || !strcmp(end, "KiB")) mult = 1ULL << 10;
    else if (!strcmp(end, "M") || !strcmp(end, "MB") || !strcmp(end, "MiB")) mult = 1ULL << 20;
    else if (!strcmp(end, "G") || !strcmp(end, "GB") || !strcmp(end, "GiB")) mult = 1ULL << 30;
    else return -1;
    if (v > SIZE_MAX / mult) return -1;
    *out = (size_t)(v * mult);
    return 0;
}

void queue_settings_default(struct queue_settings *s)
{
    memset(s, 0, sizeof *s);
    s->burst = 1;
    s->default_retries = -1;
}

int config_parse_rate(const char *s, double *per_sec)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)*s)) return -1;
    double v = decimal(s, &end);
    if (end == s || v > 1e9) return -1;
    double div;
    if (*end == '\0' || strcmp(end, "/s") == 0) div = 1;
    else if (strcmp(end, "/m") == 0) div = 60;
    else if (strcmp(end, "/h") == 0) div = 3600;
    else return -1;
    *per_sec = v / div;
    return 0;
}

/* "queue.<name>.<key> = value" lines of the config file. */
static int set_queue_value(struct config *cfg, const char *name, const char *v, char *err,
                           size_t err_len)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name + 6) {
        snprintf(err, err_len, "queue settings are written queue.<name>.<key>");
        return -1;
    }
    size_t qlen = (size_t)(dot - (name + 6));
    char qname[80];
    if (qlen >= sizeof qname) qlen = sizeof qname - 1;
    memcpy(qname, name + 6, qlen);
    qname[qlen] = '\0';
    if (!validate_queue_name(qname)) {
        snprintf(err, err_len, "'%s' is not a valid queue name (1 to 64 of letters, digits, '.', "
                 "'_', '-'; not . or ..)", qname);
        return -1;
    }
    struct config_queue *q = NULL;
    for (size_t i = 0; i < cfg->n_queues && !q; i++)
        if (strcmp(cfg->queues[i].name, qname) == 0) q = &cfg->queues[i];
    if (!q) {
        cfg->queues = xrealloc(cfg->queues, (cfg->n_queues + 1) * sizeof *cfg->queues);
        q = &cfg->queues[cfg->n_queues++];
        q->name = xstrdup(qname);
        queue_settings_default(&q->s);
    }
    const char *key = dot + 1;
    char *end;
    long long n;
    int64_t ms;
    errno = 0;
    if (strcmp(key, "max_concurrency") == 0 || strcmp(key, "burst") == 0 || strcmp(key, "retries") == 0) {
        /* The ranges PUT /v1/queues takes; retries is held to max_retries
         * once every source is read (check_consistency). */
        long long lo = key[0] == 'b' ? 1 : 0;
        n = strtoll(v, &end, 10);
        if (errno || end == v || *end || n < lo || n > 1000000) {
            snprintf(err, err_len, "%s must be a whole number from %lld to 1000000, not '%s'", name, lo, v);
            return -1;
        }
        if (key[0] == 'm') q->s.max_concurrency = (int)n;
        else if (key[0] == 'b') q->s.burst = (int)n;
        else q->s.default_retries = (int)n;
    } else if (strcmp(key, "rate") == 0) {
        double per_sec;
        if (config_parse_rate(v, &per_sec) || per_sec > 1e6) {
            snprintf(err, err_len, "%s must be a rate such as 10/s, 600/m or 36000/h, at most "
                     "1000000/s, not '%s'", name, v);
            return -1;
        }
        q->s.rate_per_sec = per_sec;
    } else if (strcmp(key, "timeout") == 0) {
        if (config_parse_duration_ms(v, &ms) || ms < 100) {
            snprintf(err, err_len, "%s must be a duration such as 300s or 10m (at least 100ms), not "
                     "'%s'", name, v);
            return -1;
        }
        q->s.default_timeout_ms = ms;
    } else if (strcmp(key, "paused") == 0) {
        if (parse_bool(v, &q->s.paused)) {
            snprintf(err, err_len, "%s must be true or false, not '%s'", name, v);
            return -1;
        }
    } else {
        snprintf(err, err_len, "unknown queue setting '%s' (max_concurrency, rate, burst, retries, "
                 "timeout, paused)", key);
        return -1;
    }
    if (q->s.rate_per_sec > 0 && q->s.burst < 1) q->s.burst = 1;
    return 0;
}

static bool name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i])) return false;
    return true;
}

/* "key.<label> = <key or sha256:hex> [scope=...] [tenant=...]" lines. */
static int set_key_value(struct config *cfg, const char *name, const char *v, char *err,
                         size_t err_len)
{
    const char *label = name + 4;
    if (!name_ok(label, 64)) {
        snprintf(err, err_len, "key labels are 1 to 64 of letters, digits, '.', '_', '-'");
        return -1;
    }
    for (size_t i = 0; i < cfg->n_keys; i++) {
        if (strcmp(cfg->keys[i].label, label) == 0) {
            snprintf(err, err_len, "key.%s is given twice", label);
            return -1;
        }
    }
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", v);
    char *save = NULL, *secret = strtok_r(buf, " \t", &save);
    if (!secret) {
        snprintf(err, err_len, "key.%s needs a key (or sha256:<hex> of one)", label);
        return -1;
    }
    if (strncmp(secret, "sha256:", 7) == 0) {
        size_t n = strlen(secret + 7);
        bool hex = n == 64;
        for (size_t i = 0; i < n && hex; i++) hex = isxdigit((unsigned char)secret[7 + i]);
        if (!hex) {
            snprintf(err, err_len, "key.%s: sha256: must be followed by 64 hex digits (asyncqueue "
                     "--hash-key prints them)", label);
            return -1;
        }
    } else if (strlen(secret) < 16) {
        snprintf(err, err_len, "key.%s: a key must be at least 16 characters (use e.g. "
                 "openssl rand -hex 32)", label);
        return -1;
    }
    const char *scope = "admin", *tenant = NULL;
    for (char *opt; (opt = strtok_r(NULL, " \t", &save));) {
        if (strncmp(opt, "scope=", 6) == 0 &&
            (!strcmp(opt + 6, "admin") || !strcmp(opt + 6, "enqueue") || !strcmp(opt + 6, "read"))) {
            scope = opt + 6;
        } else if (strncmp(opt, "tenant=", 7) == 0 && name_ok(opt + 7, 64)) {
            tenant = opt + 7;
        } else {
            snprintf(err, err_len, "key.%s: '%s' is not scope=admin|enqueue|read or tenant=<name>",
                     label, opt);
            return -1;
        }
    }
    cfg->keys = xrealloc(cfg->keys, (cfg->n_keys + 1) * sizeof *cfg->keys);
    struct config_api_key *k = &cfg->keys[cfg->n_keys++];
    k->label = xstrdup(label);
    k->secret = xstrdup(secret);
    k->scope = xstrdup(scope);
    k->tenant = xstrdup(tenant);
    return 0;
}

static void free_string_list(char **list)
{
    if (!list) return;
    for (char **p = list; *p; p++) free(*p);
    free(list);
}

/* Splits on commas, trimming spaces and dropping empty items. */
static char **split_list(const char *s, size_t *n_out)
{
    size_t n = 0, cap = 4;
    char **list = xcalloc(cap + 1, sizeof *list);
    const char *p = s;
    while (*p) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && isspace((unsigned char)*a)) a++;
        while (b > a && isspace((unsigned char)b[-1])) b--;
        if (b > a) {
            if (n == cap) {
                cap *= 2;
                list = xrealloc(list, (cap + 1) * sizeof *list);
            }
            list[n++] = xstrndup(a, (size_t)(b - a));
        }
        p = comma ? comma + 1 : end;
    }
    list[n] = NULL;
    *n_out = n;
    return list;
}

/* host:port with a port of digits from 0 to 65535 (the resolver took
 * 65537 as port 1) and a host, bracketed or not for IPv6. */
static bool address_ok(const char *v)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v) return false;
    const char *port = colon + 1;
    size_t n = strspn(port, "0123456789");
    if (n == 0 || n > 5 || port[n] || atoi(port) > 65535) return false;
    return v[0] != '[' || (colon - v >= 3 && colon[-1] == ']');
}

/* Sets one key from its text form. On error writes why (without the
 * source, which the caller adds) to err and returns -1. */
static int set_value(struct config *cfg, const struct config_key *k, const char *v, char *err,
                     size_t err_len)
{
    char *field = (char *)cfg + k->offset;
    switch (k->type) {
    case KT_ADDRESS:
        if (*v && !address_ok(v)) {
            snprintf(err, err_len, "%s must be host:port with a port from 0 to 65535, like "
                     "127.0.0.1:8080 or [::1]:8080, not '%s'", k->name, v);
            return -1;
        }
        /* fall through */
    case KT_STRING: {
        char **dst = (char **)field;
        free(*dst);
        *dst = *v ? xstrdup(v) : NULL;
        return 0;
    }
    case KT_STRING_LIST: {
        char ***dst = (char ***)field;
        free_string_list(*dst);
        *dst = split_list(v, (size_t *)((char *)cfg + k->count_off));
        return 0;
    }
    case KT_BOOL:
        if (parse_bool(v, (bool *)field)) {
            snprintf(err, err_len, "%s must be true or false, not '%s'", k->name, v);
            return -1;
        }
        return 0;
    case KT_INT:
    case KT_INT64: {
        /* Digits, with a '-' before them at most: strtoll also took " 5"
         * and "+5", which durations and sizes refuse. */
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        bool digits = v[v[0] == '-'] >= '0' && v[v[0] == '-'] <= '9';
        if (!digits || errno || *end || n < k->min || n > k->max) {
            snprintf(err, err_len, "%s must be a whole number from %" PRId64 " to %" PRId64
                     ", not '%s'", k->name, k->min, k->max, v);
            return -1;
        }
        if (k->type == KT_INT) *(int *)field = (int)n;
        else *(int64_t *)field = n;
        return 0;
    }
    case KT_SIZE: {
        size_t n;
        if (config_parse_size(v, &n) || (int64_t)n < k->min || (int64_t)n > k->max) {
            snprintf(err, err_len, "%s must be a size from %" PRId64 " to %" PRId64
                     " bytes (suffix KiB, MiB or GiB allowed), not '%s'", k->name, k->min,
                     k->max, v);
            return -1;
        }
        *(size_t *)field = n;
        return 0;
    }
    case KT_DURATION: {
        int64_t ms;
        if (config_parse_duration_ms(v, &ms) || ms < k->min || ms > k->max) {
            snprintf(err, err_len, "%s must be a duration from %" PRId64 "ms to %" PRId64
                     "ms (suffix ms, s, m, h or d; bare numbers are seconds), not '%s'",
                     k->name, k->min, k->max, v);
            return -1;
        }
        *(int64_t *)field = ms;
        return 0;
    }
    case KT_DURATION_LIST: {
        size_t n;
        char **items = split_list(v, &n);
        int64_t *ms = xcalloc(n ? n : 1, sizeof *ms);
        for (size_t i = 0; i < n; i++) {
            if (config_parse_duration_ms(items[i], &ms[i]) || ms[i] < k->min || ms[i] > k->max) {
                snprintf(err, err_len, "%s: item %zu, '%s', is not a duration from 0 to 7d "
                         "(suffix ms, s, m, h or d)", k->name, i + 1, items[i]);
                free(ms);
                free_string_list(items);
                return -1;
            }
        }
        free_string_list(items);
        free(cfg->webhook_schedule_ms);
        cfg->webhook_schedule_ms = ms;
        cfg->n_webhook_schedule = n;
        return 0;
    }
    case KT_SYNC:
        if (!strcmp(v, "full")) cfg->synchronous = CONFIG_SYNC_FULL;
        else if (!strcmp(v, "normal")) cfg->synchronous = CONFIG_SYNC_NORMAL;
        else {
            snprintf(err, err_len, "%s must be full or normal, not '%s'", k->name, v);
            return -1;
        }
        return 0;
    case KT_LOGLEVEL:
        if (log_level_parse(v, (enum log_level *)field)) {
            snprintf(err, err_len, "%s must be debug, info, warn, error or off, not '%s'",
                     k->name, v);
            return -1;
        }
        return 0;
    }
    return -1;
}

/* A value the user gave (file, environment, flag). An empty api_key would
 * mean no authentication at all: a line uncommented and not filled in, or
 * an unset shell variable, turned keys off with only a warning, and behind
 * a proxy on loopback the API was open. */
static int set_given(struct config *cfg, const struct config_key *k, const char *v, char *err,
                     size_t err_len)
{
    if (k->offset == OFF(api_keys) && *v == '\0') {
        snprintf(err, err_len, "api_key is set but empty, which would turn authentication off; give "
                 "a key (make one with: openssl rand -hex 32), or leave api_key out to run without "
                 "keys on loopback");
        return -1;
    }
    return set_value(cfg, k, v, err, err_len);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

/* Where each key's value came from ("the default", "FILE:LINE",
 * "ASYNCQUEUE_X", "--x"), for errors that weigh two settings. */
struct sources {
    char of[ARRAY_LEN(keys)][96];
};

/* where, or where:line when line is not 0 */
static void note_source(struct sources *src, const struct config_key *k, const char *where, int line)
{
    if (line) snprintf(src->of[k - keys], sizeof src->of[0], "%s:%d", where, line);
    else snprintf(src->of[k - keys], sizeof src->of[0], "%s", where);
}

static const char *source_of(const struct sources *src, const char *name)
{
    const struct config_key *k = find_key(name, strlen(name));
    return k ? src->of[k - keys] : "?";
}

static int load_file(struct config *cfg, const char *path, struct sources *src, char *err, size_t err_len)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_len, "%s: cannot open config file: %s", path, strerror(errno));
        return EXIT_CONFIG;
    }
    char line[8192], why[512];
    int lineno = 0, rc = EXIT_OK;
    int set_on[ARRAY_LEN(keys)] = {0}; /* the line each key was set on */
    while (fgets(line, sizeof line, f)) {
        lineno++;
        /* A byte order mark (an editor's UTF-8 "with BOM") is not text:
         * kept, the first key read as unknown with the mark unseen. */
        if (lineno == 1 && !memcmp(line, "\xEF\xBB\xBF", 3)) memmove(line, line + 3, strlen(line + 3) + 1);
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, err_len, "%s:%d: line longer than %zu bytes", path, lineno,
                     sizeof line - 1);
            rc = EXIT_CONFIG;
            break;
        }
        char *s = trim(line);
        if (*s == '\0' || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, err_len, "%s:%d: expected 'key = value'", path, lineno);
            rc = EXIT_CONFIG;
            break;
        }
        *eq = '\0';
        char *name = trim(s), *value = trim(eq + 1);
        if (*value == '"') {
            /* The value ends at the next quote; after it only a comment. */
            char *close = strchr(value + 1, '"');
            char *rest = close ? trim(close + 1) : NULL;
            if (!close || (*rest != '\0' && *rest != '#')) {
                snprintf(err, err_len, "%s:%d: a quoted value must end with '\"' (and may be "
                         "followed only by a # comment)", path, lineno);
                rc = EXIT_CONFIG;
                break;
            }
            *close = '\0';
            value++;
        } else {
            /* An unquoted value ends at " #", so trailing comments work. */
            for (char *h = value; *h; h++) {
                if (*h == '#' && h > value && isspace((unsigned char)h[-1])) {
                    *h = '\0';
                    value = trim(value);
                    break;
                }
            }
        }
        if (strncmp(name, "queue.", 6) == 0 || strncmp(name, "key.", 4) == 0) {
            int bad = name[0] == 'q' ? set_queue_value(cfg, name, value, why, sizeof why)
                                     : set_key_value(cfg, name, value, why, sizeof why);
            if (bad) {
                snprintf(err, err_len, "%s:%d: %s", path, lineno, why);
                rc = EXIT_CONFIG;
                break;
            }
            continue;
        }
        const struct config_key *k = find_key(name, strlen(name));
        if (!k) {
            snprintf(err, err_len, "%s:%d: unknown key '%s' (see asyncqueue.conf.example)", path,
                     lineno, name);
            rc = EXIT_CONFIG;
            break;
        }
        /* The later line won, and a list key (deny_destinations, api_key)
         * lost the items of the earlier one without a word. */
        if (set_on[k - keys]) {
            snprintf(err, err_len, "%s:%d: %s is already set on line %d; give each key once%s",
                     path, lineno, k->name, set_on[k - keys],
                     k->type == KT_STRING_LIST || k->type == KT_DURATION_LIST
                         ? " (several items go on one line, separated by commas)" : "");
            rc = EXIT_CONFIG;
            break;
        }
        set_on[k - keys] = lineno;
        if (set_given(cfg, k, value, why, sizeof why)) {
            snprintf(err, err_len, "%s:%d: %s", path, lineno, why);
            rc = EXIT_CONFIG;
            break;
        }
        note_source(src, k, path, lineno);
    }
    /* A directory opens and then fails to read: not an empty file. */
    if (rc == EXIT_OK && ferror(f)) {
        snprintf(err, err_len, "%s: cannot read config file: %s", path, strerror(errno));
        rc = EXIT_CONFIG;
    }
    fclose(f);
    return rc;
}

static void env_name(const struct config_key *k, char *out, size_t len)
{
    size_t o = (size_t)snprintf(out, len, "ASYNCQUEUE_");
    for (const char *p = k->name; *p && o + 1 < len; p++) out[o++] = (char)toupper((unsigned char)*p);
    out[o] = '\0';
}

static int load_env(struct config *cfg, char **envp, struct sources *src, char *err, size_t err_len)
{
    char why[512], name[96];
    for (char **e = envp; e && *e; e++) {
        if (strncmp(*e, "ASYNCQUEUE_", 11) != 0) continue;
        const char *eq = strchr(*e, '=');
        if (!eq) continue;
        bool foreign = false;
        for (size_t i = 0; i < ARRAY_LEN(foreign_env); i++)
            if ((size_t)(eq - *e) == strlen(foreign_env[i]) &&
                strncmp(*e, foreign_env[i], (size_t)(eq - *e)) == 0)
                foreign = true;
        if (foreign) continue;
        const struct config_key *k = NULL;
        for (size_t i = 0; i < ARRAY_LEN(keys) && !k; i++) {
            env_name(&keys[i], name, sizeof name);
            if (strlen(name) == (size_t)(eq - *e) && strncmp(*e, name, strlen(name)) == 0)
                k = &keys[i];
        }
        if (!k) {
            snprintf(err, err_len, "%.*s: unknown setting (see asyncqueue.conf.example)",
                     (int)(eq - *e), *e);
            return EXIT_CONFIG;
        }
        if (set_given(cfg, k, eq + 1, why, sizeof why)) {
            snprintf(err, err_len, "%s: %s", name, why);
            return EXIT_CONFIG;
        }
        note_source(src, k, name, 0);
    }
    return EXIT_OK;
}

/* The flag form of a key: "--" + name with '_' as '-'. */
static const struct config_key *flag_key(const char *flag, size_t len)
{
    char name[96];
    if (len >= sizeof name) return NULL;
    for (size_t i = 0; i < len; i++) name[i] = flag[i] == '-' ? '_' : flag[i];
    return find_key(name, len);
}

static bool bool_word(const char *s)
{
    static const char *const words[] = {"true", "false", "yes", "no", "on", "off", "1", "0"};
    for (size_t i = 0; i < ARRAY_LEN(words); i++)
        if (strcmp(s, words[i]) == 0) return true;
    return false;
}

static const char *find_config_path(int argc, char **argv, char **envp)
{
    const char *path = NULL;
    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, "ASYNCQUEUE_CONFIG=", 18) == 0) path = *e + 18;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) path = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0) path = argv[i] + 9;
    }
    return path && *path ? path : NULL;
}

static int load_flags(struct config *cfg, int argc, char **argv, enum config_mode *mode,
                      struct sources *src, char *err, size_t err_len)
{
    char why[512];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { *mode = CONFIG_MODE_HELP; continue; }
        if (!strcmp(a, "-V") || !strcmp(a, "--version")) { *mode = CONFIG_MODE_VERSION; continue; }
        if (!strcmp(a, "--check-config")) { *mode = CONFIG_MODE_CHECK; continue; }
        if (!strcmp(a, "--print-config-example")) { *mode = CONFIG_MODE_PRINT_EXAMPLE; continue; }
        if (!strcmp(a, "--print-webhook-secret")) { *mode = CONFIG_MODE_PRINT_SECRET; continue; }
        if (!strcmp(a, "--hash-key")) { *mode = CONFIG_MODE_HASH_KEY; continue; }
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, err_len, "unexpected argument '%s' (try --help)", a);
            return EXIT_USAGE;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        if (name_len == 6 && strncmp(name, "config", 6) == 0) {
            if (!eq) i++; /* already read by find_config_path */
            /* Empty (an unset shell variable): no file would be read, and
             * the one ASYNCQUEUE_CONFIG names would be skipped too. */
            if (i >= argc || !*(eq ? eq + 1 : argv[i])) {
                snprintf(err, err_len, "--config needs a file name");
                return EXIT_USAGE;
            }
            continue;
        }
        const struct config_key *k = flag_key(name, name_len);
        if (!k) {
            snprintf(err, err_len, "unknown option '--%.*s' (try --help)", (int)name_len, name);
            return EXIT_USAGE;
        }
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (k->type == KT_BOOL && (i + 1 >= argc || !bool_word(argv[i + 1]))) {
            value = "true"; /* a bare boolean flag switches it on */
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(err, err_len, "--%.*s needs a value", (int)name_len, name);
            return EXIT_USAGE;
        }
        if (set_given(cfg, k, value, why, sizeof why)) {
            snprintf(err, err_len, "--%.*s: %s", (int)name_len, name, why);
            return EXIT_CONFIG;
        }
        char flag[64];
        snprintf(flag, sizeof flag, "--%.*s", (int)(name_len < 60 ? name_len : 60), name);
        note_source(src, k, flag, 0);
    }
    return EXIT_OK;
}

/* "A (from where) must not exceed B (from where)", then ": why" when given. */
static int must_not_exceed(const struct sources *src, const char *a, const char *b, const char *why,
                           char *err, size_t err_len)
{
    snprintf(err, err_len, "%s (%s) must not exceed %s (%s)%s%s", a, source_of(src, a), b,
             source_of(src, b), why ? ": " : "", why ? why : "");
    return EXIT_CONFIG;
}

static int check_consistency(const struct config *cfg, const struct sources *src, char *err,
                             size_t err_len)
{
    for (size_t i = 0; i < cfg->n_api_keys; i++) {
        const char *k = cfg->api_keys[i];
        if (strncmp(k, "sha256:", 7) != 0) continue;
        bool hex = strlen(k) == 7 + 64;
        for (const char *p = k + 7; *p && hex; p++) hex = isxdigit((unsigned char)*p);
        if (!hex) {
            snprintf(err, err_len, "api_key: item %zu starts with sha256: but is not followed by 64 "
                     "hex digits (asyncqueue --hash-key prints them)", i + 1);
            return EXIT_CONFIG;
        }
    }
    if (cfg->default_timeout_ms > cfg->max_timeout_ms)
        return must_not_exceed(src, "default_timeout", "max_timeout", NULL, err, err_len);
    if (cfg->default_retries > cfg->max_retries)
        return must_not_exceed(src, "default_retries", "max_retries", NULL, err, err_len);
    /* A key outliving its task answered a repeated create with 404 until
     * the key expired: within the window a repeat must find the task. */
    if (cfg->idempotency_window_ms > cfg->retention_ms)
        return must_not_exceed(src, "idempotency_window", "retention",
                               "a repeated create must still find the task its key made", err, err_len);
    for (size_t i = 0; i < cfg->n_trust_proxy; i++) {
        struct cidr c;
        if (!cidr_parse(cfg->trust_proxy[i], &c)) {
            snprintf(err, err_len, "trust_proxy: '%s' is not an address or CIDR (127.0.0.1, "
                     "10.0.0.0/8, ::1); names are not looked up", cfg->trust_proxy[i]);
            return EXIT_CONFIG;
        }
    }
    for (size_t i = 0; i < cfg->n_queues; i++) { /* the bounds a task itself is held to */
        const struct config_queue *q = &cfg->queues[i];
        if (q->s.default_retries > cfg->max_retries) {
            snprintf(err, err_len, "queue.%s.retries (%d) must not exceed max_retries (%d, %s)",
                     q->name, q->s.default_retries, cfg->max_retries, source_of(src, "max_retries"));
            return EXIT_CONFIG;
        }
        if (q->s.default_timeout_ms > cfg->max_timeout_ms) {
            snprintf(err, err_len, "queue.%s.timeout must not exceed max_timeout (%llds, %s)",
                     q->name, (long long)(cfg->max_timeout_ms / 1000), source_of(src, "max_timeout"));
            return EXIT_CONFIG;
        }
    }
    if (cfg->retry_base_ms > cfg->retry_cap_ms)
        return must_not_exceed(src, "retry_base", "retry_cap", NULL, err, err_len);
    if (!cfg->db) {
        snprintf(err, err_len, "db (%s) must name a database file", source_of(src, "db"));
        return EXIT_CONFIG;
    }
    if (!cfg->listen) {
        snprintf(err, err_len, "listen (%s) must be host:port", source_of(src, "listen"));
        return EXIT_CONFIG;
    }
    return EXIT_OK;
}

int config_load(struct config *cfg, int argc, char **argv, char **envp, enum config_mode *mode,
                char *err, size_t err_len)
{
    memset(cfg, 0, sizeof *cfg);
    *mode = CONFIG_MODE_RUN;
    err[0] = '\0';
    struct sources *src = xcalloc(1, sizeof *src);
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        if (set_value(cfg, &keys[i], keys[i].def, err, err_len)) { /* a bug */
            free(src);
            return EXIT_CONFIG;
        }
        note_source(src, &keys[i], "the default", 0);
    }
    const char *path = find_config_path(argc, argv, envp);
    int rc = EXIT_OK;
    if (path) {
        cfg->config_path = xstrdup(path);
        rc = load_file(cfg, path, src, err, err_len);
    }
    if (!rc) rc = load_env(cfg, envp, src, err, err_len);
    if (!rc) rc = load_flags(cfg, argc, argv, mode, src, err, err_len);
    if (!rc) rc = check_consistency(cfg, src, err, err_len);
    free(src);
    return rc;
}

void config_free(struct config *cfg)
{
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        char *field = (char *)cfg + keys[i].offset;
        if (keys[i].type == KT_STRING || keys[i].type == KT_ADDRESS) free(*(char **)field);
        else if (keys[i].type == KT_STRING_LIST) free_string_list(*(char ***)field);
    }
    free(cfg->webhook_schedule_ms);
    for (size_t i = 0; i < cfg->n_queues; i++) free(cfg->queues[i].name);
    free(cfg->queues);
    for (size_t i = 0; i < cfg->n_keys; i++) {
        free(cfg->keys[i].label);
        free(cfg->keys[i].secret);
        free(cfg->keys[i].scope);
        free(cfg->keys[i].tenant);
    }
    free(cfg->keys);
    free(cfg->config_path);
    memset(cfg, 0, sizeof *cfg);
}

static void print_doc(FILE *out, const char *doc)
{
    const char *p = doc;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        fprintf(out, "# %.*s\n", (int)n, p);
        p += n + (nl ? 1 : 0);
    }
}

void config_print_example(FILE *out)
{
    fprintf(out,
            "# asyncqueue.conf.example: every setting of the AsyncQueue daemon, with its\n"
            "# default. Copy to asyncqueue.conf, uncomment what you change, and start\n"
            "# with 'asyncqueue --config asyncqueue.conf'.\n"
            "#\n"
            "# Syntax: 'key = value', one per line, each key once; '#' starts a comment.\n"
            "# Quote a value (\"...\") to keep a '#' or surrounding spaces in it.\n"
            "# Every key can also be set by an environment variable ASYNCQUEUE_<KEY>\n"
            "# (upper case) or a flag --<key> (with '-' for '_'). Flags beat the\n"
            "# environment, which beats this file.\n"
            "# Durations take ms, s, m, h or d (a bare number is seconds); sizes take\n"
            "# KiB, MiB or GiB (also written K or KB, M or MB, G or GB: powers of 1024\n"
            "# all the same; a bare number is bytes).\n"
            "#\n"
            "# This file is generated by 'asyncqueue --print-config-example'.\n");
    char env[96];
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        const struct config_key *k = &keys[i];
        env_name(k, env, sizeof env);
        fprintf(out, "\n");
        print_doc(out, k->doc);
        fprintf(out, "# Environment: %s. Flag: --", env);
        for (const char *p = k->name; *p; p++) fputc(*p == '_' ? '-' : *p, out);
        fprintf(out, ".\n#%s =%s%s\n", k->name, *k->def ? " " : "", k->def);
    }
    fprintf(out,
            "\n# Named queues: settings for queue <name>, as lines queue.<name>.<key> (this\n"
            "# file only). Keys: max_concurrency (0: no limit; 1: strict FIFO, one task at\n"
            "# a time), rate (dispatches: 10/s, 600/m, 36000/h), burst (tasks that may\n"
            "# start at once when the rate allows, default 1), retries and timeout (the\n"
            "# queue's defaults for tasks that give none, at most max_retries and\n"
            "# max_timeout), paused (true/false). At start\n"
            "# these replace what PUT /v1/queues/{name} stored for the same queue.\n"
            "#queue.emails.max_concurrency = 5\n"
            "#queue.emails.rate = 10/s\n"
            "#queue.emails.burst = 20\n"
            "#queue.reports.max_concurrency = 1\n"
            "\n# API keys with a scope and a tenant (this file only), one line each:\n"
            "#   key.<label> = <key, or sha256:<hex> of it> [scope=admin|enqueue|read] [tenant=<name>]\n"
            "# scope: admin (everything, the default), enqueue (create tasks only), read\n"
            "# (look only). A key with a tenant sees only its tenant's tasks; another\n"
            "# tenant's task answers 404. Store keys hashed: 'asyncqueue --hash-key' reads\n"
            "# a key on stdin and prints its sha256: form. Keys in this file are reloaded\n"
            "# on SIGHUP, so a new key can be added, clients moved, and the old one\n"
            "# removed with no restart. Plain keys must be at least 16 characters.\n"
            "#key.ci = sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 scope=enqueue tenant=acme\n"
            "#key.dashboard = 3f1c0e8a2b7d4c6e9a1b5d3f7c2e8a4b scope=read\n");
}

static void print_value(const struct config *cfg, const struct config_key *k, FILE *out)
{
    const char *field = (const char *)cfg + k->offset;
    switch (k->type) {
    case KT_STRING:
    case KT_ADDRESS: {
        const char *s = *(char *const *)field;
        fputs(!s ? "" : k->secret ? "(set)" : s, out);
        break;
    }
    case KT_STRING_LIST: {
        char *const *list = *(char **const *)field;
        size_t n = 0;
        for (char *const *p = list; p && *p; p++) n++;
        if (n) fprintf(out, "(%zu set)", n);
        break;
    }
    case KT_BOOL: fputs(*(const bool *)field ? "true" : "false", out); break;
    case KT_INT: fprintf(out, "%d", *(const int *)field); break;
    case KT_INT64: fprintf(out, "%" PRId64, *(const int64_t *)field); break;
    case KT_SIZE: fprintf(out, "%zu", *(const size_t *)field); break;
    case KT_DURATION: fprintf(out, "%" PRId64 "ms", *(const int64_t *)field); break;
    case KT_DURATION_LIST:
        for (size_t i = 0; i < cfg->n_webhook_schedule; i++)
            fprintf(out, "%s%" PRId64 "ms", i ? "," : "", cfg->webhook_schedule_ms[i]);
        break;
    case KT_SYNC: fputs(cfg->synchronous == CONFIG_SYNC_FULL ? "full" : "normal", out); break;
    case KT_LOGLEVEL: {
        static const char *const names[] = {"debug", "info", "warn", "error", "off"};
        fputs(names[cfg->log_level], out);
        break;
    }
    }
}

void config_print_effective(const struct config *cfg, FILE *out)
{
    fprintf(out, "# effective configuration%s%s\n", cfg->config_path ? " from " : "",
            cfg->config_path ? cfg->config_path : "");
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        fprintf(out, "%s = ", keys[i].name);
        print_value(cfg, &keys[i], out);
        fputc('\n', out);
    }
    for (size_t i = 0; i < cfg->n_keys; i++)
        fprintf(out, "key.%s: scope=%s tenant=%s\n", cfg->keys[i].label, cfg->keys[i].scope,
                cfg->keys[i].tenant ? cfg->keys[i].tenant : "(none)");
    for (size_t i = 0; i < cfg->n_queues; i++) {
        const struct config_queue *q = &cfg->queues[i];
        fprintf(out, "queue.%s: max_concurrency=%d rate=%g/s burst=%d paused=%s retries=%d timeout=%" PRId64 "ms\n",
                q->name, q->s.max_concurrency, q->s.rate_per_sec, q->s.burst,
                q->s.paused ? "true" : "false", q->s.default_retries, q->s.default_timeout_ms);
    }
}

void config_print_usage(FILE *out)
{
    fprintf(out,
            "AsyncQueue %s: a self-hosted HTTP task queue.\n"
            "\n"
            "Usage: asyncqueue [--config FILE] [--listen ADDR:PORT] [--db PATH]\n"
            "                  [--allow-private-targets] [--<key> VALUE ...]\n"
            "       asyncqueue --check-config [options]   validate and print the settings\n"
            "       asyncqueue --print-webhook-secret [options]\n"
            "       asyncqueue --print-config-example\n"
            "       asyncqueue --hash-key < key.txt       print sha256:<hex> for key.<label> lines\n"
            "       asyncqueue --help | -h | --version | -V\n"
            "       asyncqueue task|queue|schedule ...       the command-line client (task --help)\n"
            "\n"
            "Every setting is a flag --<key> (with '-' for '_'), an environment variable\n"
            "ASYNCQUEUE_<KEY>, or a line in the config file; flags beat the environment,\n"
            "which beats the file. Settings:\n\n",
            AQ_VERSION);
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        fprintf(out, "  --");
        for (const char *p = keys[i].name; *p; p++) fputc(*p == '_' ? '-' : *p, out);
        fprintf(out, " (default: %s)\n", *keys[i].def ? keys[i].def : "none");
    }
    fprintf(out, "\nExit codes: 0 ok, 1 runtime failure, 2 usage, 3 configuration, 4 database,\n"
                 "5 cannot listen, 6 refusing to listen beyond loopback without an API key.\n");
}
