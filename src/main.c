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
#include "longpoll.h"
#include "store.h"
#include "util.h"
#include "version.h"
#include "webhook.h"
#include "writer.h"

extern char **environ;

#define SECRET_KEY "webhook_secret"

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

/* The configured webhook secret, or the one kept in the database (made on
 * first use). Returns a malloc'd string or NULL (err set). */
static char *load_webhook_secret(const struct config *cfg, struct store *store, char *err,
                                 size_t err_len)
{
    if (cfg->webhook_secret) return xstrdup(cfg->webhook_secret);
    struct store_conn *c = store_conn_open(store);
    char *secret = NULL, *fresh = webhook_secret_generate();
    int rc = c ? store_begin(c) : STORE_ERROR;
    if (rc == STORE_OK) rc = store_kv_put_if_absent(c, SECRET_KEY, fresh, &secret);
    if (rc == STORE_OK) rc = store_commit(c);
    if (rc != STORE_OK) {
        snprintf(err, err_len, "cannot keep the webhook secret in the database: %s",
                 c ? store_conn_error(c) : "no connection");
        if (c) store_rollback(c);
        free(secret);
        secret = NULL;
    }
    free(fresh);
    store_conn_close(c);
    return secret;
}

static void notify_longpoll(void *arg, const char *task_id)
{
    longpoll_notify(arg, task_id);
}

static int print_webhook_secret(const struct config *cfg)
{
    char err[1024];
    if (cfg->webhook_secret) {
        printf("%s\n", cfg->webhook_secret);
        return EXIT_OK;
    }
    struct store *store = store_open(cfg, true, err, sizeof err);
    if (!store) {
        fprintf(stderr, "asyncqueue: %s\n", err);
        return EXIT_DATABASE;
    }
    char *secret = load_webhook_secret(cfg, store, err, sizeof err);
    store_close(store);
    if (!secret) {
        fprintf(stderr, "asyncqueue: %s\n", err);
        return EXIT_DATABASE;
    }
    printf("%s\n", secret);
    free(secret);
    return EXIT_OK;
}

static int serve(const struct config *cfg, sigset_t *signals)
{
    char err[1024];
    unsigned char key[WEBHOOK_KEY_MAX];
    int rc = EXIT_RUNTIME, key_len, port = 0, listen_fd = -1;
    bool loopback = false;
    char *secret = NULL;
    struct store *store = NULL;
    struct writer *writer = NULL;
    struct dispatcher *dispatcher = NULL;
    struct http_api *api = NULL;
    struct longpoll *longpoll = NULL;
    struct auth *auth = auth_new(cfg->api_keys);

    store = store_open(cfg, false, err, sizeof err);
    if (!store) {
        log_msg(LOG_ERROR, "store.open_failed", "error=\"%s\"", err);
        rc = EXIT_DATABASE;
        goto out;
    }
    secret = load_webhook_secret(cfg, store, err, sizeof err);
    if (!secret) {
        log_msg(LOG_ERROR, "store.open_failed", "error=\"%s\"", err);
        rc = EXIT_DATABASE;
        goto out;
    }
    key_len = webhook_secret_decode(secret, key);
    if (key_len < 0) {
        log_msg(LOG_ERROR, "config.invalid", "error=\"webhook_secret must be whsec_ followed by "
                "base64 of 24 to 64 bytes\"");
        rc = EXIT_CONFIG;
        goto out;
    }
    listen_fd = http_listen(cfg->listen, &port, &loopback, err, sizeof err);
    if (listen_fd < 0) {
        log_msg(LOG_ERROR, "http.listen_failed", "error=\"%s\"", err);
        rc = EXIT_LISTEN;
        goto out;
    }
    if (!auth_enabled(auth) && !loopback) {
        log_msg(LOG_ERROR, "auth.required", "listen=%s error=\"no api_key is configured, so the "
                "daemon only serves on a loopback address; set api_key or listen on 127.0.0.1\"",
                cfg->listen);
        rc = EXIT_INSECURE;
        goto out;
    }
    writer = writer_new(store, cfg);
    if (!writer) {
        rc = EXIT_DATABASE;
        goto out;
    }
    dispatcher = dispatcher_new(cfg, writer, key, (size_t)key_len);
    longpoll = longpoll_new(http_resume_request);
    if (!dispatcher || !longpoll) goto out;
    writer_on_final(writer, notify_longpoll, longpoll);
    api = http_api_start(cfg, auth, store, writer, longpoll, listen_fd);
    if (!api) goto out;
    listen_fd = -1; /* owned by the api now */
    struct writer_sink sink = dispatcher_sink(dispatcher);
    if (writer_start(writer, &sink) != 0 || dispatcher_start(dispatcher) != 0) goto out;

    log_msg(LOG_INFO, "asyncqueue.started", "version=%s listen=%s port=%d db=%s auth=%s workers=%d",
            AQ_VERSION, cfg->listen, port, cfg->db, auth_enabled(auth) ? "on" : "off", cfg->workers);
    if (!auth_enabled(auth))
        log_msg(LOG_WARN, "auth.disabled", "reason=\"no api_key configured\" note=\"serving on "
                "loopback only; set api_key before exposing the daemon\"");
    if (cfg->allow_private_targets)
        log_msg(LOG_WARN, "netpolicy.private_allowed", "note=\"targets and webhooks may reach "
                "loopback and private addresses (allow_private_targets = true)\"");

    for (;;) {
        int sig = 0;
        if (sigwait(signals, &sig) != 0) continue;
        if (sig == SIGHUP) {
            log_msg(LOG_INFO, "signal.ignored", "signal=HUP note=\"restart to apply new settings\"");
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
    if (dispatcher) dispatcher_stop(dispatcher, 0);
    writer_free(writer, "interrupted: the daemon shut down during this attempt");
    dispatcher_free(dispatcher);
    longpoll_free(longpoll);
    store_close(store);
    if (listen_fd >= 0) close(listen_fd);
    free(secret);
    auth_free(auth);
    if (rc == EXIT_OK) log_msg(LOG_INFO, "asyncqueue.stopped", "status=clean");
    return rc;
}

int main(int argc, char **argv)
{
    /* The command-line client shares the binary, not the daemon's start-up. */
    if (argc > 1 && (!strcmp(argv[1], "task") || !strcmp(argv[1], "queue")))
        return cli_main(argc, argv);
    struct config cfg;
    enum config_mode mode;
    char err[1024];
    int rc = config_load(&cfg, argc, argv, environ, &mode, err, sizeof err);
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
        unsigned char key[WEBHOOK_KEY_MAX];
        if (cfg.webhook_secret && webhook_secret_decode(cfg.webhook_secret, key) < 0) {
            fprintf(stderr, "asyncqueue: webhook_secret must be whsec_ followed by base64 of 24 "
                            "to 64 bytes\n");
            rc = EXIT_CONFIG;
            break;
        }
        config_print_effective(&cfg, stdout);
        printf("# configuration OK\n");
        break;
    }
    case CONFIG_MODE_PRINT_SECRET:
        rc = print_webhook_secret(&cfg);
        break;
    case CONFIG_MODE_RUN: {
        log_set_level(cfg.log_level);
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
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            fprintf(stderr, "asyncqueue: libcurl failed to initialise\n");
            rc = EXIT_RUNTIME;
            break;
        }
        rc = serve(&cfg, &signals);
        curl_global_cleanup();
        break;
    }
    }
    config_free(&cfg);
    return rc;
}
