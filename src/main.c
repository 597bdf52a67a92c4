/*
 * main: start-up order, signals and shutdown; no logic of its own.
 *
 * Start-up: configuration, database (migrations, lock), webhook secret,
 * listening socket, then the threads: writer, workers, HTTP. Each failure
 * before serving exits with its own code (config.h).
 * Shutdown on SIGTERM or SIGINT: stop accepting, stop claiming, let calls in
 * flight finish for shutdown_grace, requeue the rest, close the store, exit 0.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "auth.h"
#include "cli.h"
#include "config.h"
#include "dispatcher.h"
#include "http_api.h"
#include "log.h"
#include "events.h"
#include "metrics.h"
#include "netpolicy.h"
#include <openssl/crypto.h>
#include "longpoll.h"
#include "store.h"
#include "util.h"
#include "version.h"
#include "webhook.h"
#include "writer.h"

extern char **environ;

#define SECRET_KEY "webhook_secret"
#define NEED_KEY                                                                                   \
    "no api_key is configured, so the daemon only serves on a loopback address; set api_key or "   \
    "listen on 127.0.0.1"

/* Raises the open-files limit to its hard maximum: every call in flight and
 * every client connection holds a descriptor. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The configured webhook secrets, or the one kept in the database (made on
 * first use). Returns 0 and fills keys, or an EXIT_* code with err set. */
static int load_webhook_keys(const struct config *cfg, struct store *store,
                             struct webhook_keys *keys, char **first, char *err, size_t err_len)
{
    if (cfg->n_webhook_secrets > 0) {
        if (webhook_keys_decode(cfg->webhook_secrets, cfg->n_webhook_secrets, keys, err, err_len))
            return EXIT_CONFIG;
        if (first) *first = xstrdup(cfg->webhook_secrets[0]);
        return EXIT_OK;
    }
    if (!store) { /* callers open the store whenever no secret is configured */
        snprintf(err, err_len, "no webhook secret configured and no database to keep one in");
        return EXIT_DATABASE;
    }
    struct store_conn *c = store_conn_open(store);
    char *secret = NULL, *fresh = webhook_secret_generate();
    int rc = c ? store_begin(c) : STORE_ERROR;
    if (rc == STORE_OK) rc = store_kv_put_if_absent(c, SECRET_KEY, fresh, &secret);
    if (rc == STORE_OK) rc = store_commit(c);
    if (rc != STORE_OK) {
        snprintf(err, err_len, "cannot keep the webhook secret in the database: %s",
                 c ? store_conn_error(c) : "no connection");
        if (c) store_rollback(c);
    }
    free(fresh);
    store_conn_close(c);
    if (rc != STORE_OK) {
        free(secret);
        return EXIT_DATABASE;
    }
    int code = webhook_keys_decode(&secret, 1, keys, err, err_len) ? EXIT_DATABASE : EXIT_OK;
    if (first && code == EXIT_OK) *first = secret;
    else free(secret);
    return code;
}

/* The writer's hooks: long-polls and the live feed. */
struct hooks {
    struct longpoll *longpoll;
    struct events *events;
};

static void hook_final(void *arg, const char *task_id)
{
    longpoll_notify(((struct hooks *)arg)->longpoll, task_id);
}

static bool hook_want_events(void *arg)
{
    return events_active(((struct hooks *)arg)->events);
}

static void hook_event(void *arg, const char *tenant, char *json)
{
    events_publish(((struct hooks *)arg)->events, tenant, json);
}

static void hook_batch_done(void *arg)
{
    struct events *ev = ((struct hooks *)arg)->events;
    if (events_active(ev)) events_wake(ev);
}

static int inflight(void *arg)
{
    return dispatcher_inflight(arg);
}

static int print_webhook_secret(const struct config *cfg)
{
    char err[1024];
    struct webhook_keys keys;
    char *secret = NULL;
    struct store *store = NULL;
    bool fresh = false;
    if (cfg->n_webhook_secrets == 0) {
        fresh = access(cfg->db, F_OK) != 0;
        store = store_open(cfg, true, err, sizeof err);
        if (!store) {
            fprintf(stderr, "asyncqueue: %s\n", err);
            return EXIT_DATABASE;
        }
    }
    int rc = load_webhook_keys(cfg, store, &keys, &secret, err, sizeof err);
    store_close(store);
    if (rc != EXIT_OK) {
        fprintf(stderr, "asyncqueue: %s\n", err);
        return rc;
    }
    printf("%s\n", secret);
    /* A wrong --db would otherwise print a secret no running daemon signs with. */
    if (fresh)
        fprintf(stderr, "asyncqueue: there was no database at %s: it was created, with this new "
                "secret; for a running daemon's secret, pass the --db it uses\n", cfg->db);
    free(secret);
    return EXIT_OK;
}

static int hash_key(void)
{
    char line[4096];
    if (!fgets(line, sizeof line, stdin)) {
        fprintf(stderr, "asyncqueue: --hash-key reads the key on standard input\n");
        return EXIT_USAGE;
    }
    line[strcspn(line, "\r\n")] = '\0';
    if (strlen(line) < 16) {
        fprintf(stderr, "asyncqueue: a key must be at least 16 characters\n");
        return EXIT_USAGE;
    }
    char out[72];
    auth_hash_key(line, out);
    printf("%s\n", out);
    return EXIT_OK;
}

/* The configuration from every source, with the checks that need more
 * than config.c knows (a key given twice): at start and on each reload. */
static int load_config(struct config *cfg, int argc, char **argv, enum config_mode *mode, char *err,
                       size_t err_len)
{
    int rc = config_load(cfg, argc, argv, environ, mode, err, err_len);
    if (rc == EXIT_OK && auth_check_config(cfg, err, err_len)) rc = EXIT_CONFIG;
    return rc;
}

/* SIGHUP: re-read the configuration and apply what can change live (keys
 * and webhook secrets); the rest needs a restart, and the log says so. */
static void reload(int argc, char **argv, struct store *store, struct auth *auth,
                   struct dispatcher *dispatcher, struct events *events)
{
    struct config fresh;
    enum config_mode mode;
    char err[1024];
    int rc = load_config(&fresh, argc, argv, &mode, err, sizeof err);
    struct webhook_keys keys;
    /* As at start: with every secret taken out of the file, the one kept in
     * the database signs (the removed ones kept signing until a restart). */
    if (rc == EXIT_OK) rc = load_webhook_keys(&fresh, store, &keys, NULL, err, sizeof err);
    /* A file left with no key (keys moved to the environment, which a reload
     * does not read) would have opened the whole API to anyone who reaches
     * it, nginx's clients included. */
    if (rc == EXIT_OK && auth_enabled(auth) && fresh.n_api_keys + fresh.n_keys == 0) {
        snprintf(err, sizeof err, "the reloaded configuration has no key, and a reload does not "
                 "turn authentication off: restart to run without keys");
        rc = EXIT_CONFIG;
    }
    if (rc != EXIT_OK) {
        char q[1100];
        log_msg(LOG_ERROR, "config.reload_failed", "error=%s note=\"keeping the running settings\"",
                log_quote(q, sizeof q, err));
    } else {
        auth_reload(auth, &fresh);
        /* Streams were authorised once, when they opened: their clients
         * reconnect (losing nothing) and show their keys again. */
        events_end_streams(events);
        dispatcher_set_webhook_keys(dispatcher, &keys);
        log_msg(LOG_INFO, "config.reloaded", "keys=%zu webhook_secrets=%zu webhook_secret_from=%s note=\"other settings "
                "take effect on restart\"", fresh.n_api_keys + fresh.n_keys, fresh.n_webhook_secrets,
                fresh.n_webhook_secrets ? "config" : "database");
    }
    config_free(&fresh);
}

static int serve(const struct config *cfg, sigset_t *signals, int argc, char **argv)
{
    char err[1024];
    struct webhook_keys keys;
    int rc = EXIT_RUNTIME, port = 0, listen_fd = -1;
    bool loopback = false;
    struct store *store = NULL;
    struct writer *writer = NULL;
    struct dispatcher *dispatcher = NULL;
    struct http_api *api = NULL;
    struct longpoll *longpoll = NULL;
    struct events *events = NULL;
    struct http_api *metrics_api = NULL;
    int metrics_fd = -1;
    struct netpolicy *np = NULL;
    struct auth *auth = auth_new(cfg);

    np = netpolicy_new(cfg, err, sizeof err);
    if (!np) {
        log_msg(LOG_ERROR, "config.invalid", "error=\"%s\"", err);
        rc = EXIT_CONFIG;
        goto out;
    }
    store = store_open(cfg, false, err, sizeof err);
    if (!store) {
        log_msg(LOG_ERROR, "store.open_failed", "error=\"%s\"", err);
        rc = EXIT_DATABASE;
        goto out;
    }
    rc = load_webhook_keys(cfg, store, &keys, NULL, err, sizeof err);
    if (rc != EXIT_OK) {
        log_msg(LOG_ERROR, rc == EXIT_CONFIG ? "config.invalid" : "store.open_failed", "error=\"%s\"", err);
        goto out;
    }
    rc = EXIT_RUNTIME;
    listen_fd = http_listen(cfg->listen, &port, &loopback, err, sizeof err);
    if (listen_fd < 0) {
        log_msg(LOG_ERROR, "http.listen_failed", "error=\"%s\"", err);
        rc = EXIT_LISTEN;
        goto out;
    }
    if (!auth_enabled(auth) && !loopback) {
        log_msg(LOG_ERROR, "auth.required", "listen=%s error=\"%s\"", cfg->listen, NEED_KEY);
        rc = EXIT_INSECURE;
        goto out;
    }
    writer = writer_new(store, cfg);
    if (!writer) {
        rc = EXIT_DATABASE;
        goto out;
    }
    if (cfg->metrics_listen) {
        int mport = 0;
        bool mloop = false;
        metrics_fd = http_listen(cfg->metrics_listen, &mport, &mloop, err, sizeof err);
        if (metrics_fd < 0) {
            log_msg(LOG_ERROR, "http.listen_failed", "what=metrics error=\"%s\"", err);
            rc = EXIT_LISTEN;
            goto out;
        }
        log_msg(mloop ? LOG_INFO : LOG_WARN, "metrics.listening", "listen=%s port=%d auth=none%s",
                cfg->metrics_listen, mport, mloop ? "" : " note=\"not loopback: anyone who can reach it reads the metrics\"");
    }
    /* The checks that can refuse a start are behind us, and threads start
     * next: the configured level from here on (main() kept errors on). */
    log_set_level(cfg->log_level);
    dispatcher = dispatcher_new(cfg, writer, np, &keys);
    longpoll = longpoll_new(http_resume_request);
    events = events_new(8192, http_resume_request);
    if (!dispatcher || !longpoll || !events) goto out;
    struct hooks hooks = {.longpoll = longpoll, .events = events};
    struct writer_hooks wh = {.task_final = hook_final, .want_events = hook_want_events,
                              .event = hook_event, .batch_done = hook_batch_done, .arg = &hooks};
    writer_set_hooks(writer, &wh);
    struct http_deps deps = {.cfg = cfg, .auth = auth, .np = np, .store = store, .writer = writer,
                             .longpoll = longpoll, .events = events, .inflight = inflight,
                             .inflight_arg = dispatcher};
    api = http_api_start(&deps, listen_fd, false);
    if (!api) goto out;
    listen_fd = -1; /* owned by the api now */
    if (metrics_fd >= 0) {
        metrics_api = http_api_start(&deps, metrics_fd, true);
        if (!metrics_api) goto out;
        metrics_fd = -1;
    }
    struct writer_sink sink = dispatcher_sink(dispatcher);
    if (writer_start(writer, &sink) != 0 || dispatcher_start(dispatcher) != 0) goto out;

    /* The warnings first: "started" is the last line of a start, the one
     * scripts (and the tests) wait for. */
    if (!auth_enabled(auth))
        log_msg(LOG_WARN, "auth.disabled", "reason=\"no api_key configured\" note=\"serving on "
                "loopback only; set api_key before exposing the daemon\"");
    if (cfg->allow_private_targets)
        log_msg(LOG_WARN, "netpolicy.private_allowed", "note=\"targets and webhooks may reach "
                "loopback and private addresses (allow_private_targets = true)\"");
    log_msg(LOG_INFO, "asyncqueue.started", "version=%s listen=%s port=%d db=%s auth=%s workers=%d",
            AQ_VERSION, cfg->listen, port, cfg->db, auth_enabled(auth) ? "on" : "off", cfg->workers);

    for (;;) {
        int sig = 0;
        if (sigwait(signals, &sig) != 0) continue;
        if (sig == SIGHUP) {
            reload(argc, argv, store, auth, dispatcher, events);
            continue;
        }
        log_msg(LOG_INFO, "asyncqueue.stopping", "signal=%s inflight=%d",
                sig == SIGTERM ? "TERM" : "INT", dispatcher_inflight(dispatcher));
        break;
    }
    http_api_quiesce(api);
    writer_stop_claiming(writer);
    dispatcher_stop(dispatcher, cfg->shutdown_grace_ms);
    rc = EXIT_OK;
out:
    http_api_stop(api);
    http_api_stop(metrics_api);
    if (dispatcher) dispatcher_stop(dispatcher, 0);
    writer_free(writer, "interrupted: the daemon shut down during this attempt");
    dispatcher_free(dispatcher);
    longpoll_free(longpoll);
    events_free(events);
    store_close(store);
    if (metrics_fd >= 0) close(metrics_fd);
    netpolicy_free(np);
    if (listen_fd >= 0) close(listen_fd);
    auth_free(auth);
    OPENSSL_cleanse(&keys, sizeof keys);
    if (rc == EXIT_OK) log_msg(LOG_INFO, "asyncqueue.stopped", "status=clean");
    return rc;
}

int main(int argc, char **argv)
{
    /* Started with 0, 1 or 2 closed, the next file opened (a socket, the
     * database) would take its number, and what is written to stdout or
     * stderr would land in it: put /dev/null there first. */
    for (int fd = 0; fd <= 2; fd++) /* the lowest free number is fd: those below are open */
        if (fcntl(fd, F_GETFD) == -1 && open("/dev/null", O_RDWR) != fd) return EXIT_RUNTIME;
    /* The command-line client shares the binary, not the daemon's start-up. */
    if (argc > 1 && (!strcmp(argv[1], "task") || !strcmp(argv[1], "queue") ||
                     !strcmp(argv[1], "schedule")))
        return cli_main(argc, argv);
    struct config cfg;
    enum config_mode mode;
    char err[1024];
    int rc = load_config(&cfg, argc, argv, &mode, err, sizeof err);
    if (rc != EXIT_OK) {
        fprintf(stderr, "asyncqueue: %s\n", err);
        config_free(&cfg);
        return rc;
    }
    switch (mode) {
    case CONFIG_MODE_HELP:
        config_print_usage(stdout);
        break;
    case CONFIG_MODE_VERSION:
        printf("asyncqueue %s\n", AQ_VERSION);
        break;
    case CONFIG_MODE_PRINT_EXAMPLE:
        config_print_example(stdout);
        break;
    case CONFIG_MODE_CHECK: {
        struct webhook_keys keys;
        struct netpolicy *np = netpolicy_new(&cfg, err, sizeof err);
        netpolicy_free(np);
        if (!np || webhook_keys_decode(cfg.webhook_secrets, cfg.n_webhook_secrets, &keys, err, sizeof err)) {
            fprintf(stderr, "asyncqueue: %s\n", err);
            rc = EXIT_CONFIG;
            break;
        }
        /* What the start would refuse after binding (exit 5 or 6), said now. */
        bool loopback = false, mloop = false;
        if (http_listen_check(cfg.listen, &loopback, err, sizeof err) ||
            (cfg.metrics_listen && http_listen_check(cfg.metrics_listen, &mloop, err, sizeof err))) {
            fprintf(stderr, "asyncqueue: %s\n", err);
            rc = EXIT_LISTEN;
            break;
        }
        if (!loopback && cfg.n_api_keys + cfg.n_keys == 0) {
            fprintf(stderr, "asyncqueue: listen %s: %s\n", cfg.listen, NEED_KEY);
            rc = EXIT_INSECURE;
            break;
        }
        config_print_effective(&cfg, stdout);
        printf("# configuration OK\n");
        break;
    }
    case CONFIG_MODE_PRINT_SECRET:
        rc = print_webhook_secret(&cfg);
        break;
    case CONFIG_MODE_HASH_KEY:
        rc = hash_key();
        break;
    case CONFIG_MODE_RUN: {
        /* Until the start is past what can refuse it, errors are shown even
         * at log_level off: an exit code alone does not say why. serve()
         * sets the configured level before any thread starts. */
        log_set_level(cfg.log_level < LOG_ERROR ? cfg.log_level : LOG_ERROR);
        /* Signals are taken by sigwait() in this thread only: block them
         * before any thread starts so every thread inherits the mask. */
        sigset_t signals;
        sigemptyset(&signals);
        sigaddset(&signals, SIGINT);
        sigaddset(&signals, SIGTERM);
        sigaddset(&signals, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &signals, NULL);
        signal(SIGPIPE, SIG_IGN);
        raise_nofile();
        metrics_init();
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            fprintf(stderr, "asyncqueue: libcurl failed to initialise\n");
            rc = EXIT_RUNTIME;
            break;
        }
        rc = serve(&cfg, &signals, argc, argv);
        curl_global_cleanup();
        break;
    }
    }
    /* A --print-config-example or --print-webhook-secret that did not reach
     * a full disk or a closed pipe must not look done. */
    if (mode != CONFIG_MODE_RUN) {
        int e = fflush(stdout) != 0 ? errno : 0;
        if (e || ferror(stdout)) {
            fprintf(stderr, "asyncqueue: cannot write to standard output: %s\n",
                    e ? strerror(e) : "write error");
            if (rc == EXIT_OK) rc = EXIT_RUNTIME;
        }
    }
    config_free(&cfg);
    return rc;
}
