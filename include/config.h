/*
 * config: every setting the daemon has, in one table that drives parsing,
 * defaults, validation and the documentation (asyncqueue.conf.example is
 * printed from it). Sources, weakest first: built-in defaults, the file
 * given by --config (or ASYNCQUEUE_CONFIG), ASYNCQUEUE_* environment
 * variables, command-line flags.
 *
 * The struct is filled once in main() and is immutable afterwards, so any
 * thread may read it without locking.
 */
#ifndef AQ_CONFIG_H
#define AQ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"

/* Exit codes of the daemon; documented in README.md. */
enum {
    EXIT_OK = 0,
    EXIT_RUNTIME = 1,   /* failure after start-up, e.g. a thread could not start; or
                           --help, --check-config etc. could not write their output */
    EXIT_USAGE = 2,     /* unknown flag or missing flag value */
    EXIT_CONFIG = 3,    /* bad config file, variable or flag value */
    EXIT_DATABASE = 4,  /* database cannot be opened, migrated or locked; or a sync failed */
    EXIT_LISTEN = 5,    /* cannot listen on the configured address */
    EXIT_INSECURE = 6,  /* no API key while listening beyond loopback */
};

enum config_sync { CONFIG_SYNC_FULL, CONFIG_SYNC_NORMAL };

/* A named queue's settings (config file `queue.<name>.<key>` lines, or
 * PUT /v1/queues/{name}). */
struct queue_settings {
    int max_concurrency;        /* 0: no limit; 1: strict FIFO, one at a time */
    double rate_per_sec;        /* 0: no limit */
    int burst;                  /* token bucket size (>= 1 when rate is set) */
    bool paused;
    int default_retries;        /* -1: the daemon's default */
    int64_t default_timeout_ms; /* 0: the daemon's default */
};

void queue_settings_default(struct queue_settings *s);

struct config_queue {
    char *name;
    struct queue_settings s;
};

/* A `key.<label> = <key or sha256:hex> [scope=...] [tenant=...]` line. */
struct config_api_key {
    char *label;
    char *secret;   /* the key itself, or "sha256:<64 hex>" of it */
    char *scope;    /* "admin", "enqueue" or "read" */
    char *tenant;   /* or NULL */
};

struct config {
    char *listen;            /* "host:port"; port 0 picks a free one */
    char *db;                /* path of the SQLite database */
    char *metrics_listen;    /* extra host:port serving only /metrics, no key; NULL: none */
    int metrics_max_queues;  /* queues with their own /metrics series; the rest are summed */
    char **api_keys;         /* admin keys, NULL-terminated; none (and no key.*) = no auth */
    size_t n_api_keys;
    struct config_api_key *keys; /* key.<label> lines */
    size_t n_keys;
    char **webhook_secrets;  /* "whsec_..."; the first signs, all sign during rotation;
                                none = generated and kept in the db */
    size_t n_webhook_secrets;
    char **allow_destinations; /* CIDRs and host names allowed even when private */
    size_t n_allow_destinations;
    char **deny_destinations;  /* CIDRs and host names always refused */
    size_t n_deny_destinations;
    char **trust_proxy;      /* peers whose X-Forwarded-For is believed */
    size_t n_trust_proxy;
    int max_redirects;
    size_t low_speed_limit;
    int64_t low_speed_time_ms;
    int http_max_connections;
    int http_max_connections_per_ip;
    int64_t http_timeout_ms;
    size_t http_memory_limit;
    bool allow_private_targets;
    int http_threads;
    int workers;
    int max_inflight;
    size_t max_body_bytes;
    size_t max_response_bytes;
    int64_t default_timeout_ms;
    int64_t max_timeout_ms;
    int64_t max_delay_ms;
    int default_retries;
    int max_retries;
    int64_t retry_base_ms;
    int64_t retry_cap_ms;
    bool retry_jitter;
    int64_t *webhook_schedule_ms; /* delays before retries 1..n */
    size_t n_webhook_schedule;
    int64_t webhook_timeout_ms;
    int64_t connect_timeout_ms;
    enum config_sync synchronous;
    int64_t busy_timeout_ms;
    int64_t lease_grace_ms;
    int64_t shutdown_grace_ms;
    int batch_max;
    enum log_level log_level;
    int max_per_host;
    int64_t max_backlog;
    int64_t retention_ms;
    int64_t idempotency_window_ms;
    int64_t max_wait_ms;
    struct config_queue *queues; /* from queue.<name>.<key> lines */
    size_t n_queues;
    char *config_path;       /* the file read, or NULL */
};

/* What main() should do after loading. */
enum config_mode {
    CONFIG_MODE_RUN,
    CONFIG_MODE_HELP,
    CONFIG_MODE_VERSION,
    CONFIG_MODE_CHECK,          /* --check-config: validate, print, exit */
    CONFIG_MODE_PRINT_EXAMPLE,  /* --print-config-example */
    CONFIG_MODE_PRINT_SECRET,   /* --print-webhook-secret */
    CONFIG_MODE_HASH_KEY,       /* --hash-key: sha256 of a key read on stdin */
};

/* Fills cfg from defaults, the file, environment (envp, NULL-terminated
 * "K=V" strings; pass environ) and argv. On error writes one line naming
 * the source (file:line, the variable, or the flag) to err and returns an
 * EXIT_* code; returns EXIT_OK on success. cfg must be freed with
 * config_free() either way. */
int config_load(struct config *cfg, int argc, char **argv, char **envp, enum config_mode *mode,
                char *err, size_t err_len);
void config_free(struct config *cfg);

/* Writes the annotated example configuration (every key, its default and
 * meaning) to out. */
void config_print_example(FILE *out);
/* Writes the effective configuration (secrets masked) to out. */
void config_print_effective(const struct config *cfg, FILE *out);
/* Writes --help text to out. */
void config_print_usage(FILE *out);

/* Value parsers, exposed for tests. Return 0 or -1. Durations take a
 * suffix ms, s, m, h or d; a bare number is seconds. Sizes take B, KiB,
 * MiB or GiB (K, M, G accepted); a bare number is bytes. */
int config_parse_duration_ms(const char *s, int64_t *out);
int config_parse_size(const char *s, size_t *out);
/* A rate: "10/s", "600/m", "36000/h", or a bare number per second. */
int config_parse_rate(const char *s, double *per_sec);

#endif
