/*
 * test_config: the value parsers, the three sources (file, environment,
 * flags) and their order, error reporting (file:line, variable, flag, exit
 * codes), the consistency checks, and that the example and --help list every
 * key.
 */
#include "testutil.h"

#include "util.h"

/* Every key of struct config, written down independently of the table in
 * config.c, so a key that goes missing from the example or --help (or a new
 * key nobody tested) shows here. */
static const char *const all_keys[] = {
    "listen",          "db",          "api_key",      "webhook_secret",   "allow_private_targets",
    "http_threads",    "workers",     "max_inflight", "max_body_bytes",   "max_response_bytes",
    "default_timeout", "max_timeout", "max_delay",    "default_retries",  "max_retries",
    "retry_base",      "retry_cap",   "retry_jitter", "webhook_schedule", "webhook_timeout",
    "connect_timeout", "synchronous", "busy_timeout", "lease_grace",      "shutdown_grace",
    "batch_max",       "log_level",   "metrics_listen", "allow_destinations", "deny_destinations",
    "max_redirects",   "low_speed_limit", "low_speed_time", "http_max_connections",
    "http_max_connections_per_ip", "http_timeout", "http_memory_limit", "trust_proxy",
    "max_per_host",    "max_backlog", "retention",    "idempotency_window", "max_wait",
    "metrics_max_queues",
};

struct fixture {
    char dir[512];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    tu_mkdtemp(f->dir, sizeof f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tu_rmtree(f->dir);
    free(f);
    return 0;
}

/* config_load with argv (NULL-terminated) and envp; returns the exit code. */
static int load(struct config *cfg, char **argv, char **envp, enum config_mode *mode, char *err,
                size_t err_len)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    enum config_mode ignored;
    return config_load(cfg, argc, argv, envp, mode ? mode : &ignored, err, err_len);
}

/* ---- value parsers ---- */

static void duration_parses_every_suffix(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t ms;
    } ok[] = {
        {"0", 0},
        {"5", 5000},
        {"5s", 5000},
        {"250ms", 250},
        {"2m", 120000},
        {"1h", 3600000},
        {"1d", 86400000},
        {"1.5s", 1500},
        {"0.5m", 30000},
        {"1.5", 1500},
        {"0ms", 0},
        {"365d", 31536000000LL},
        {"9000000000000000ms", 9000000000000000LL},
    };
    for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
        int64_t ms = -1;
        if (config_parse_duration_ms(ok[i].text, &ms) != 0) fail_msg("'%s' refused", ok[i].text);
        if (ms != ok[i].ms)
            fail_msg("'%s' gave %lld, want %lld", ok[i].text, (long long)ms, (long long)ok[i].ms);
    }
}

static void duration_refuses_garbage_and_out_of_range(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",           "s",    "ms",  "-1", "-1s",  "+1s", " 5s", "5 s",   "5s ",
        "5sec",       "5S",   "5MS", "5x", "5ms5", "inf", "nan", "1e400", "9000000000000001ms",
        "200000000d", "1,5s", ".5s",  "0x10", "1e3",  "1.5ms", "1.",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        int64_t ms = 77;
        if (config_parse_duration_ms(bad[i], &ms) != -1) fail_msg("'%s' accepted", bad[i]);
        assert_int_equal(ms, 77);
    }
}

static void size_parses_every_suffix(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t bytes;
    } ok[] = {
        {"0", 0},
        {"1024", 1024},
        {"7B", 7},
        {"1K", 1024},
        {"1KB", 1024},
        {"1KiB", 1024},
        {"3M", 3u << 20},
        {"1MB", 1u << 20},
        {"1MiB", 1u << 20},
        {"2G", 2ULL << 30},
        {"1GB", 1u << 30},
        {"1GiB", 1u << 30},
        {"64MiB", 64u << 20},
    };
    for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
        size_t n = 1;
        if (config_parse_size(ok[i].text, &n) != 0) fail_msg("'%s' refused", ok[i].text);
        if (n != ok[i].bytes) fail_msg("'%s' gave %zu, want %zu", ok[i].text, n, ok[i].bytes);
    }
}

static void size_refuses_garbage_and_overflow(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "K",
        "-1",
        "+1",
        " 1",
        "1 MiB",
        "1.5M",
        "1k",
        "1kib",
        "1T",
        "1TiB",
        "1MiBs",
        "0x10",
        "18446744073709551616", /* 2^64 */
        "17179869184G",         /* 2^34 GiB = 2^64 bytes */
        "18014398509481984K",   /* 2^54 KiB = 2^64 bytes */
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        size_t n = 99;
        if (config_parse_size(bad[i], &n) != -1) fail_msg("'%s' accepted", bad[i]);
        assert_int_equal(n, 99);
    }
    size_t n = 0;
    assert_int_equal(config_parse_size("18446744073709551615", &n), 0);
    assert_true(n == SIZE_MAX);
}

/* ---- defaults ---- */

static void defaults_match_the_documentation(void **state)
{
    (void)state;
    struct config cfg;
    tu_config_defaults(&cfg);
    assert_string_equal(cfg.listen, "127.0.0.1:8080");
    assert_string_equal(cfg.db, "asyncqueue.db");
    assert_int_equal(cfg.n_api_keys, 0);
    assert_true(cfg.api_keys == NULL || cfg.api_keys[0] == NULL);
    assert_int_equal(cfg.n_webhook_secrets, 0);
    assert_false(cfg.allow_private_targets);
    assert_int_equal(cfg.http_threads, 2);
    assert_int_equal(cfg.workers, 2);
    assert_int_equal(cfg.max_inflight, 10000);
    assert_int_equal(cfg.max_body_bytes, 1 << 20);
    assert_int_equal(cfg.max_response_bytes, 1 << 20);
    assert_int_equal(cfg.default_timeout_ms, 300000);
    assert_int_equal(cfg.max_timeout_ms, 86400000);
    assert_int_equal(cfg.max_delay_ms, 365LL * 86400000);
    assert_int_equal(cfg.default_retries, 3);
    assert_int_equal(cfg.max_retries, 100);
    assert_int_equal(cfg.retry_base_ms, 1000);
    assert_int_equal(cfg.retry_cap_ms, 3600000);
    assert_true(cfg.retry_jitter);
    static const int64_t schedule[] = {5000,     300000,   1800000, 7200000,
                                       18000000, 36000000, 36000000};
    assert_int_equal(cfg.n_webhook_schedule, ARRAY_LEN(schedule));
    for (size_t i = 0; i < ARRAY_LEN(schedule); i++)
        assert_int_equal(cfg.webhook_schedule_ms[i], schedule[i]);
    assert_int_equal(cfg.webhook_timeout_ms, 30000);
    assert_int_equal(cfg.connect_timeout_ms, 10000);
    assert_int_equal(cfg.synchronous, CONFIG_SYNC_FULL);
    assert_int_equal(cfg.busy_timeout_ms, 5000);
    assert_int_equal(cfg.lease_grace_ms, 60000);
    assert_int_equal(cfg.shutdown_grace_ms, 10000);
    assert_int_equal(cfg.batch_max, 1024);
    assert_int_equal(cfg.log_level, LOG_INFO);
    assert_null(cfg.config_path);
    config_free(&cfg);
}

/* ---- the file ---- */

static void file_sets_values_with_quotes_comments_and_spaces(void **state)
{
    struct fixture *f = *state;
    char *path = tu_write_file(f->dir, "a.conf",
                               "# a comment line\n"
                               "\n"
                               "   # an indented comment\n"
                               "listen = 127.0.0.1:9000   # trailing comment\n"
                               "db = \" spaced #name.db \"\n"
                               "workers=4\n"
                               "  http_threads   =   3  \n"
                               "webhook_secret = whsec_abc#def\n"
                               "api_key = one, two ,three\n"
                               "allow_private_targets = yes\n"
                               "retry_jitter = off\n"
                               "webhook_schedule = 1s, 2m ,3h\n"
                               "max_body_bytes = 2MiB\n"
                               "default_timeout = 90s\n"
                               "synchronous = normal\n"
                               "log_level = debug"); /* no newline at the end */
    char *argv[] = {"asyncqueue", "--config", path, NULL};
    char *envp[] = {NULL};
    struct config cfg;
    char err[512];
    int rc = load(&cfg, argv, envp, NULL, err, sizeof err);
    if (rc != EXIT_OK) fail_msg("rc %d: %s", rc, err);
    assert_string_equal(cfg.config_path, path);
    assert_string_equal(cfg.listen, "127.0.0.1:9000");
    assert_string_equal(cfg.db, " spaced #name.db ");
    assert_int_equal(cfg.workers, 4);
    assert_int_equal(cfg.http_threads, 3);
    assert_int_equal(cfg.n_webhook_secrets, 1);
    assert_string_equal(cfg.webhook_secrets[0], "whsec_abc#def");
    assert_int_equal(cfg.n_api_keys, 3);
    assert_string_equal(cfg.api_keys[0], "one");
    assert_string_equal(cfg.api_keys[1], "two");
    assert_string_equal(cfg.api_keys[2], "three");
    assert_null(cfg.api_keys[3]);
    assert_true(cfg.allow_private_targets);
    assert_false(cfg.retry_jitter);
    assert_int_equal(cfg.n_webhook_schedule, 3);
    assert_int_equal(cfg.webhook_schedule_ms[0], 1000);
    assert_int_equal(cfg.webhook_schedule_ms[1], 120000);
    assert_int_equal(cfg.webhook_schedule_ms[2], 10800000);
    assert_int_equal(cfg.max_body_bytes, 2 << 20);
    assert_int_equal(cfg.default_timeout_ms, 90000);
    assert_int_equal(cfg.synchronous, CONFIG_SYNC_NORMAL);
    assert_int_equal(cfg.log_level, LOG_DEBUG);
    config_free(&cfg);
    free(path);
}

/* Loads text as the config file and expects rc with "<path>:<line>:" and
 * needle in the message. */
static void expect_file_error(const char *dir, const char *text, int line, const char *needle)
{
    char *path = tu_write_file(dir, "bad.conf", text);
    char *argv[] = {"asyncqueue", "--config", path, NULL};
    char *envp[] = {NULL};
    struct config cfg;
    char err[512], where[600];
    int rc = load(&cfg, argv, envp, NULL, err, sizeof err);
    if (rc != EXIT_CONFIG) fail_msg("rc %d (want %d) for file %s", rc, EXIT_CONFIG, text);
    snprintf(where, sizeof where, "%s:%d:", path, line);
    if (strncmp(err, where, strlen(where)) != 0)
        fail_msg("'%s' does not start with '%s'", err, where);
    if (!strstr(err, needle)) fail_msg("'%s' does not mention '%s'", err, needle);
    config_free(&cfg);
    free(path);
}

static void file_errors_name_file_and_line(void **state)
{
    struct fixture *f = *state;
    expect_file_error(f->dir, "# ok\nworkers = 2\nbogus_key = 1\n", 3, "bogus_key");
    expect_file_error(f->dir, "workers = lots\n", 1, "lots");
    expect_file_error(f->dir, "\n\n\nworkers = 0\n", 4, "workers");
    expect_file_error(f->dir, "workers = 65\n", 1, "workers");
    expect_file_error(f->dir, "listen = a:1\njust some words\n", 2, "key = value");
    expect_file_error(f->dir, "db = \"unterminated\n", 1, "quoted");
    expect_file_error(f->dir, "allow_private_targets = maybe\n", 1, "maybe");
    expect_file_error(f->dir, "default_timeout = 5 seconds\n", 1, "default_timeout");
    expect_file_error(f->dir, "max_body_bytes = 1023\n", 1, "max_body_bytes");
    expect_file_error(f->dir, "synchronous = sometimes\n", 1, "sometimes");
    expect_file_error(f->dir, "log_level = loud\n", 1, "loud");
    expect_file_error(f->dir, "webhook_schedule = 5s, 8d\n", 1, "8d");
    expect_file_error(f->dir, "Workers = 2\n", 1, "Workers"); /* keys are case-sensitive */
    /* The later line replaced the earlier: 10.0.0.0/8 was no longer denied. */
    expect_file_error(f->dir, "deny_destinations = 10.0.0.0/8\nworkers = 2\n"
                      "deny_destinations = 169.254.0.0/16\n", 3, "already set on line 1");
    expect_file_error(f->dir, "api_key = 0123456789abcdef0\n\napi_key = 0123456789abcdef1\n", 3,
                      "separated by commas");
    expect_file_error(f->dir, "workers = 2\nworkers = 3\n", 2, "workers is already set on line 1");
    /* Uncommented and not filled in: authentication was off, with a warning. */
    expect_file_error(f->dir, "api_key =\n", 1, "api_key is set but empty");
}

/* Loads text as the config file with envp; returns the exit code, err set. */
static int load_text(const char *dir, const char *text, char **envp, char *err, size_t err_len)
{
    char *path = tu_write_file(dir, "q.conf", text);
    char *argv[] = {"asyncqueue", "--config", path, NULL};
    struct config cfg;
    int rc = load(&cfg, argv, envp, NULL, err, err_len);
    config_free(&cfg);
    free(path);
    return rc;
}

/* Loads text as the config file, which must load; cfg is the caller's to free. */
static void load_ok(const char *dir, const char *text, struct config *cfg)
{
    char *path = tu_write_file(dir, "ok.conf", text);
    char *argv[] = {"asyncqueue", "--config", path, NULL};
    char *envp[] = {NULL};
    char err[512];
    if (load(cfg, argv, envp, NULL, err, sizeof err) != EXIT_OK) fail_msg("%s", err);
    free(path);
}

/* A queue's settings in the file are held to what PUT /v1/queues takes and
 * to the bounds every task is held to; a trusted proxy is an address; the
 * queues /metrics lists, from 0 to 100000. */
static void queue_and_proxy_settings_keep_their_bounds(void **state)
{
    struct fixture *f = *state;
    expect_file_error(f->dir, "queue.q.burst = 0\n", 1, "queue.q.burst");
    expect_file_error(f->dir, "queue.q.rate = 2000000/s\n", 1, "queue.q.rate");
    expect_file_error(f->dir, "queue.q.timeout = 50ms\n", 1, "queue.q.timeout");
    expect_file_error(f->dir, "queue.q.paused = maybe\n", 1, "queue.q.paused");
    /* A byte order mark before the first key is skipped (it made that key
     * unknown, the mark unseen in the message). */
    struct config cfg;
    load_ok(f->dir, "\xEF\xBB\xBFworkers = 3\n", &cfg);
    assert_int_equal(cfg.workers, 3);
    config_free(&cfg);
    /* paused takes what every boolean setting takes (it took true and false only). */
    load_ok(f->dir, "queue.a.paused = yes\nqueue.b.paused = off\n", &cfg);
    assert_int_equal(cfg.n_queues, 2);
    for (size_t i = 0; i < cfg.n_queues; i++)
        assert_int_equal(cfg.queues[i].s.paused, !strcmp(cfg.queues[i].name, "a"));
    config_free(&cfg);
    char *none[] = {NULL};
    char err[512];
    static const struct {
        const char *text, *needle;
    } refused[] = {
        {"queue.q.retries = 101\n", "max_retries"},
        {"max_retries = 10\nqueue.q.retries = 11\n", "max_retries (10, "}, /* and its file:line */
        {"queue.q.timeout = 25h\n", "max_timeout"},
        {"trust_proxy = 127.0.0.1, nginx.local\n", "'nginx.local'"},
        {"trust_proxy = 10.0.0.0/33\n", "10.0.0.0/33"},
        {"metrics_max_queues = 100001\n", "metrics_max_queues must be a whole number from 0 to 100000"},
        {"metrics_max_queues = -1\n", "metrics_max_queues must be"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        int rc = load_text(f->dir, refused[i].text, none, err, sizeof err);
        if (rc != EXIT_CONFIG) fail_msg("rc %d for %s", rc, refused[i].text);
        if (!strstr(err, refused[i].needle)) fail_msg("'%s' does not mention %s", err, refused[i].needle);
        if (i == 1 && !strstr(err, "q.conf:1)")) fail_msg("'%s' does not say where max_retries is set", err);
    }
    static const char *const taken[] = {
        "queue.q.retries = 100\nqueue.q.timeout = 24h\nqueue.q.burst = 1\nqueue.q.rate = 1000000/s\n",
        "max_retries = 500\nqueue.q.retries = 400\nmax_timeout = 48h\nqueue.q.timeout = 30h\n",
        "trust_proxy = 127.0.0.1, 10.0.0.0/8, ::1, fd00::/8\n",
        "metrics_max_queues = 0\n", /* no queue of its own: all in queue="(other)" */
        "metrics_max_queues = 100000\n",
    };
    for (size_t i = 0; i < sizeof taken / sizeof taken[0]; i++)
        if (load_text(f->dir, taken[i], none, err, sizeof err) != EXIT_OK) fail_msg("%s: %s", taken[i], err);
    /* The bound is checked once every source is read: a later source may raise it. */
    char *raised[] = {"ASYNCQUEUE_MAX_RETRIES=1000", NULL};
    if (load_text(f->dir, "queue.q.retries = 900\n", raised, err, sizeof err) != EXIT_OK) fail_msg("%s", err);
}

static void file_refuses_overlong_lines(void **state)
{
    struct fixture *f = *state;
    size_t n = 10000;
    char *text = malloc(n + 32);
    assert_non_null(text);
    strcpy(text, "workers = 2\ndb = ");
    size_t at = strlen(text);
    memset(text + at, 'x', n);
    strcpy(text + at + n, "\n");
    expect_file_error(f->dir, text, 2, "longer");
    free(text);
}

static void file_missing_is_a_config_error(void **state)
{
    struct fixture *f = *state;
    char path[600];
    snprintf(path, sizeof path, "%s/does-not-exist.conf", f->dir);
    char *argv[] = {"asyncqueue", "--config", path, NULL};
    char *envp[] = {NULL};
    struct config cfg;
    char err[512];
    assert_int_equal(load(&cfg, argv, envp, NULL, err, sizeof err), EXIT_CONFIG);
    assert_non_null(strstr(err, path));
    config_free(&cfg);
}

/* A directory opens for reading on Linux and then fails to read: taken as
 * an empty file, the daemon started on the defaults. */
static void file_that_cannot_be_read_is_a_config_error(void **state)
{
    struct fixture *f = *state;
    char *argv[] = {"asyncqueue", "--config", f->dir, NULL};
    char *envp[] = {NULL};
    struct config cfg;
    char err[512];
    assert_int_equal(load(&cfg, argv, envp, NULL, err, sizeof err), EXIT_CONFIG);
    assert_non_null(strstr(err, f->dir));
    assert_non_null(strstr(err, "cannot read config file"));
    config_free(&cfg);
}

/* An empty --config (an unset shell variable) read no file at all, and
 * hid the one ASYNCQUEUE_CONFIG named. */
static void empty_config_flag_is_a_usage_error(void **state)
{
    struct fixture *f = *state;
    char *path = tu_write_file(f->dir, "c.conf", "workers = 3\n");
    char env_config[700];
    snprintf(env_config, sizeof env_config, "ASYNCQUEUE_CONFIG=%s", path);
    char *envp[] = {env_config, NULL};
    char *forms[][4] = {{"asyncqueue", "--config", "", NULL}, {"asyncqueue", "--config=", NULL}};
    for (size_t i = 0; i < 2; i++) {
        struct config cfg;
        char err[512];
        assert_int_equal(load(&cfg, forms[i], envp, NULL, err, sizeof err), EXIT_USAGE);
        assert_non_null(strstr(err, "--config needs a file name"));
        config_free(&cfg);
    }
    free(path);
}

/* ---- environment and flags, and who wins ---- */

static void env_beats_file_and_flags_beat_env(void **state)
{
    struct fixture *f = *state;
    char *path = tu_write_file(f->dir, "c.conf",
                               "workers = 3\nhttp_threads = 3\nbatch_max = 3\nmax_inflight = 3\n");
    char env_config[700];
    snprintf(env_config, sizeof env_config, "ASYNCQUEUE_CONFIG=%s", path);
    char *envp[] = {"PATH=/usr/bin",
                    env_config,
                    "ASYNCQUEUE_WORKERS=5",
                    "ASYNCQUEUE_HTTP_THREADS=5",
                    "ASYNCQUEUE_URL=http://ignored.example",
                    "ASYNCQUEUE_NO_EQUALS_SIGN",
                    NULL};
    char *argv[] = {"asyncqueue", "--workers", "7", "--batch-max=9", NULL};
    struct config cfg;
    char err[512];
    int rc = load(&cfg, argv, envp, NULL, err, sizeof err);
    if (rc != EXIT_OK) fail_msg("rc %d: %s", rc, err);
    assert_string_equal(cfg.config_path, path);
    assert_int_equal(cfg.max_inflight, 3); /* file only */
    assert_int_equal(cfg.http_threads, 5); /* env beats file */
    assert_int_equal(cfg.workers, 7);      /* flag beats env and file */
    assert_int_equal(cfg.batch_max, 9);    /* flag beats file */
    config_free(&cfg);
    free(path);
}

static void config_flag_beats_config_variable(void **state)
{
    struct fixture *f = *state;
    char *a = tu_write_file(f->dir, "a.conf", "workers = 11\n");
    char *b = tu_write_file(f->dir, "b.conf", "workers = 12\n");
    char env_config[700], flag[700];
    snprintf(env_config, sizeof env_config, "ASYNCQUEUE_CONFIG=%s", a);
    snprintf(flag, sizeof flag, "--config=%s", b);
    char *envp[] = {env_config, NULL};
    char *argv[] = {"asyncqueue", flag, NULL};
    struct config cfg;
    char err[512];
    assert_int_equal(load(&cfg, argv, envp, NULL, err, sizeof err), EXIT_OK);
    assert_int_equal(cfg.workers, 12);
    config_free(&cfg);
    free(a);
    free(b);
}

static void env_errors_name_the_variable(void **state)
{
    (void)state;
    char *argv[] = {"asyncqueue", NULL};
    struct config cfg;
    char err[512];
    char *unknown[] = {"ASYNCQUEUE_BOGUS=1", NULL};
    assert_int_equal(load(&cfg, argv, unknown, NULL, err, sizeof err), EXIT_CONFIG);
    assert_non_null(strstr(err, "ASYNCQUEUE_BOGUS"));
    config_free(&cfg);
    char *bad[] = {"ASYNCQUEUE_WORKERS=many", NULL};
    assert_int_equal(load(&cfg, argv, bad, NULL, err, sizeof err), EXIT_CONFIG);
    assert_non_null(strstr(err, "ASYNCQUEUE_WORKERS"));
    assert_non_null(strstr(err, "many"));
    config_free(&cfg);
    /* Variable names are upper case; the lower-case form is not ours. */
    /* An empty key (an unset shell variable) would turn authentication off. */
    char *empty_key[] = {"ASYNCQUEUE_API_KEY=", NULL};
    assert_int_equal(load(&cfg, argv, empty_key, NULL, err, sizeof err), EXIT_CONFIG);
    assert_non_null(strstr(err, "ASYNCQUEUE_API_KEY"));
    assert_non_null(strstr(err, "set but empty"));
    config_free(&cfg);
    char *lower[] = {"asyncqueue_workers=9", NULL};
    assert_int_equal(load(&cfg, argv, lower, NULL, err, sizeof err), EXIT_OK);
    assert_int_equal(cfg.workers, 2);
    config_free(&cfg);
}

static void bare_boolean_flags_switch_on(void **state)
{
    (void)state;
    char *envp[] = {"ASYNCQUEUE_RETRY_JITTER=false", NULL};
    struct config cfg;
    char err[512];

    char *at_end[] = {"asyncqueue", "--allow-private-targets", NULL};
    assert_int_equal(load(&cfg, at_end, envp, NULL, err, sizeof err), EXIT_OK);
    assert_true(cfg.allow_private_targets);
    config_free(&cfg);

    char *before_flag[] = {"asyncqueue", "--retry-jitter", "--workers", "3", NULL};
    assert_int_equal(load(&cfg, before_flag, envp, NULL, err, sizeof err), EXIT_OK);
    assert_true(cfg.retry_jitter);
    assert_int_equal(cfg.workers, 3);
    config_free(&cfg);

    char *explicit_false[] = {"asyncqueue", "--allow-private-targets", "false", NULL};
    assert_int_equal(load(&cfg, explicit_false, envp, NULL, err, sizeof err), EXIT_OK);
    assert_false(cfg.allow_private_targets);
    config_free(&cfg);

    char *explicit_true[] = {"asyncqueue", "--retry-jitter", "true", NULL};
    assert_int_equal(load(&cfg, explicit_true, envp, NULL, err, sizeof err), EXIT_OK);
    assert_true(cfg.retry_jitter);
    config_free(&cfg);

    char *with_eq[] = {"asyncqueue", "--allow-private-targets=off", NULL};
    assert_int_equal(load(&cfg, with_eq, envp, NULL, err, sizeof err), EXIT_OK);
    assert_false(cfg.allow_private_targets);
    config_free(&cfg);
}

static void flag_usage_errors_exit_2(void **state)
{
    (void)state;
    char *envp[] = {NULL};
    struct config cfg;
    char err[512];
    struct {
        char *argv[5];
        const char *needle;
    } cases[] = {
        {{"asyncqueue", "--bogus", NULL}, "--bogus"},
        {{"asyncqueue", "--bogus=1", NULL}, "--bogus"},
        {{"asyncqueue", "--workers", NULL}, "--workers"},
        {{"asyncqueue", "positional", NULL}, "positional"},
        {{"asyncqueue", "-x", NULL}, "-x"},
        {{"asyncqueue", "--config", NULL}, "--config"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        int rc = load(&cfg, cases[i].argv, envp, NULL, err, sizeof err);
        if (rc != EXIT_USAGE) fail_msg("case %zu: rc %d, want %d (%s)", i, rc, EXIT_USAGE, err);
        if (!strstr(err, cases[i].needle))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].needle);
        config_free(&cfg);
    }
}

static void flag_bad_values_exit_3(void **state)
{
    (void)state;
    char *envp[] = {NULL};
    struct config cfg;
    char err[512];
    struct {
        char *argv[4];
        const char *needle;
    } cases[] = {
        {{"asyncqueue", "--workers", "abc", NULL}, "--workers"},
        {{"asyncqueue", "--workers=0", NULL}, "--workers"},
        {{"asyncqueue", "--http-threads", "65", NULL}, "--http-threads"},
        {{"asyncqueue", "--max-body-bytes", "65MiB", NULL}, "--max-body-bytes"},
        {{"asyncqueue", "--webhook-timeout", "99ms", NULL}, "--webhook-timeout"},
        {{"asyncqueue", "--retry-cap", "8d", NULL}, "--retry-cap"},
        {{"asyncqueue", "--allow-private-targets=maybe", NULL}, "maybe"},
        {{"asyncqueue", "--log-level", "verbose", NULL}, "verbose"},
        {{"asyncqueue", "--synchronous", "off", NULL}, "--synchronous"},
        {{"asyncqueue", "--workers", "3x", NULL}, "3x"},
        {{"asyncqueue", "--api-key=", NULL}, "set but empty"},
        {{"asyncqueue", "--workers", "+3", NULL}, "--workers"},
        {{"asyncqueue", "--workers", " 3", NULL}, "--workers"},
        {{"asyncqueue", "--max-backlog", "+100", NULL}, "--max-backlog"},
        {{"asyncqueue", "--max-retries", "-1", NULL}, "--max-retries"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        int rc = load(&cfg, cases[i].argv, envp, NULL, err, sizeof err);
        if (rc != EXIT_CONFIG) fail_msg("case %zu: rc %d, want %d (%s)", i, rc, EXIT_CONFIG, err);
        if (!strstr(err, cases[i].needle))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].needle);
        config_free(&cfg);
    }
}

static void mode_flags_set_the_mode(void **state)
{
    (void)state;
    char *envp[] = {NULL};
    struct {
        const char *flag;
        enum config_mode mode;
    } cases[] = {
        {"--help", CONFIG_MODE_HELP},
        {"-h", CONFIG_MODE_HELP},
        {"--version", CONFIG_MODE_VERSION},
        {"-V", CONFIG_MODE_VERSION},
        {"--check-config", CONFIG_MODE_CHECK},
        {"--print-config-example", CONFIG_MODE_PRINT_EXAMPLE},
        {"--print-webhook-secret", CONFIG_MODE_PRINT_SECRET},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *argv[] = {"asyncqueue", (char *)(uintptr_t)cases[i].flag, NULL};
        struct config cfg;
        enum config_mode mode = CONFIG_MODE_RUN;
        char err[512];
        assert_int_equal(load(&cfg, argv, envp, &mode, err, sizeof err), EXIT_OK);
        assert_int_equal(mode, cases[i].mode);
        config_free(&cfg);
    }
}

/* ---- consistency ---- */

static void consistency_checks_refuse_contradictions(void **state)
{
    (void)state;
    char *envp[] = {NULL};
    struct config cfg;
    char err[512];
    /* The message names both settings and where each value came from. */
    struct {
        char *argv[6];
        const char *needle;
    } bad[] = {
        {{"asyncqueue", "--default-timeout", "2h", "--max-timeout", "1h", NULL},
         "default_timeout (--default-timeout) must not exceed max_timeout (--max-timeout)"},
        {{"asyncqueue", "--default-retries", "5", "--max-retries", "4", NULL},
         "default_retries (--default-retries) must not exceed max_retries (--max-retries)"},
        {{"asyncqueue", "--max-retries", "2", NULL}, /* default 3 > 2 */
         "default_retries (the default) must not exceed max_retries (--max-retries)"},
        {{"asyncqueue", "--retry-base", "2h", NULL}, /* cap 1h */
         "retry_base (--retry-base) must not exceed retry_cap (the default)"},
        /* A key outliving its task answered a repeated create with 404. */
        {{"asyncqueue", "--retention", "1h", NULL},
         "idempotency_window (the default) must not exceed retention (--retention)"},
        {{"asyncqueue", "--idempotency-window", "8d", NULL},
         "idempotency_window (--idempotency-window) must not exceed retention (the default)"},
        {{"asyncqueue", "--db=", NULL}, "db (--db) must"},
        {{"asyncqueue", "--listen", "", NULL}, "listen (--listen) must"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        int rc = load(&cfg, bad[i].argv, envp, NULL, err, sizeof err);
        if (rc != EXIT_CONFIG) fail_msg("case %zu: rc %d, want %d (%s)", i, rc, EXIT_CONFIG, err);
        if (!strstr(err, bad[i].needle))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].needle);
        config_free(&cfg);
    }
    char *env_max[] = {"ASYNCQUEUE_MAX_RETRIES=2", NULL};
    char *plain[] = {"asyncqueue", NULL};
    assert_int_equal(load(&cfg, plain, env_max, NULL, err, sizeof err), EXIT_CONFIG);
    if (!strstr(err, "max_retries (ASYNCQUEUE_MAX_RETRIES)")) fail_msg("'%s'", err);
    config_free(&cfg);
    /* Equal is fine. */
    char *equal[] = {"asyncqueue", "--default-timeout", "1h", "--max-timeout",
                     "1h",         "--default-retries", "4",  "--max-retries",
                     "4",          "--retry-base",      "1h", "--retention", "2h",
                     "--idempotency-window", "2h", NULL};
    assert_int_equal(load(&cfg, equal, envp, NULL, err, sizeof err), EXIT_OK);
    config_free(&cfg);
}

/* listen and metrics_listen: host:port, the port digits from 0 to 65535 (the
 * resolver wrapped 65537 round to port 1). */
static void listen_addresses_are_host_and_a_port_in_range(void **state)
{
    (void)state;
    char *envp[] = {NULL};
    struct config cfg;
    char err[512];
    char *bad[] = {"127.0.0.1:65536", "127.0.0.1:65537", "127.0.0.1:99999", "127.0.0.1:080800",
                         "127.0.0.1",       ":8080",           "127.0.0.1:",      "127.0.0.1:+80",
                         "127.0.0.1:8o",    "[::1:80",         "[]:80",           "127.0.0.1:-1"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        for (int metrics = 0; metrics < 2; metrics++) {
            char *argv[] = {"asyncqueue", metrics ? "--metrics-listen" : "--listen", bad[i], NULL};
            int rc = load(&cfg, argv, envp, NULL, err, sizeof err);
            if (rc != EXIT_CONFIG) fail_msg("%s %s: rc %d (%s)", argv[1], bad[i], rc, err);
            if (!strstr(err, metrics ? "metrics_listen must be host:port" : "listen must be host:port"))
                fail_msg("%s: '%s'", bad[i], err);
            config_free(&cfg);
        }
    }
    char *good[] = {"127.0.0.1:0", "127.0.0.1:65535", "[::1]:8080", "::1:8080", "localhost:80",
                          "0.0.0.0:00080"};
    for (size_t i = 0; i < ARRAY_LEN(good); i++) {
        char *argv[] = {"asyncqueue", "--listen", good[i], "--metrics-listen", good[i], NULL};
        if (load(&cfg, argv, envp, NULL, err, sizeof err) != EXIT_OK) fail_msg("%s: %s", good[i], err);
        assert_string_equal(cfg.listen, good[i]);
        config_free(&cfg);
    }
}

/* ---- documentation ---- */

static void print_example(FILE *out)
{
    config_print_example(out);
}
static void print_usage(FILE *out)
{
    config_print_usage(out);
}

static void example_and_help_list_every_key(void **state)
{
    (void)state;
    char *example = tu_capture(print_example);
    char *usage = tu_capture(print_usage);
    for (size_t i = 0; i < ARRAY_LEN(all_keys); i++) {
        const char *k = all_keys[i];
        char line[128], env[128], flag[128];
        snprintf(line, sizeof line, "\n#%s =", k);
        snprintf(env, sizeof env, "# Environment: ASYNCQUEUE_");
        size_t o = strlen(env);
        for (const char *p = k; *p; p++)
            env[o++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        env[o] = '\0';
        snprintf(flag, sizeof flag, "  --");
        o = strlen(flag);
        for (const char *p = k; *p; p++)
            flag[o++] = *p == '_' ? '-' : *p;
        strcpy(flag + o, " (default: ");
        if (!strstr(example, line)) fail_msg("example lacks '%s'", line + 1);
        if (!strstr(example, env)) fail_msg("example lacks '%s'", env);
        if (!strstr(usage, flag)) fail_msg("--help lacks '%s'", flag);
    }
    /* And nothing more: one settings line per key in each. */
    size_t in_example = 0, in_usage = 0;
    for (const char *p = example; (p = strstr(p, "\n#")) != NULL; p++) {
        const char *q = p + 2;
        while ((*q >= 'a' && *q <= 'z') || *q == '_')
            q++;
        if (q > p + 2 && strncmp(q, " =", 2) == 0) in_example++;
    }
    for (const char *p = usage; (p = strstr(p, "\n  --")) != NULL; p++) {
        const char *eol = strchr(p + 1, '\n'), *d = strstr(p, " (default: ");
        if (d && (!eol || d < eol)) in_usage++;
    }
    assert_int_equal(in_example, ARRAY_LEN(all_keys));
    assert_int_equal(in_usage, ARRAY_LEN(all_keys));
    free(example);
    free(usage);
}

/* The example, uncommented, is a valid file that yields the defaults. */
static void example_uncommented_loads_to_the_defaults(void **state)
{
    struct fixture *f = *state;
    char *example = tu_capture(print_example);
    size_t n = strlen(example);
    char *conf = malloc(n + 1);
    assert_non_null(conf);
    size_t o = 0;
    int settings = 0;
    for (const char *line = example; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
        const char *q = line + 1;
        while ((*q >= 'a' && *q <= 'z') || *q == '_')
            q++;
        /* api_key uncommented as it stands (empty) is refused: the mistake
         * of a line uncommented and not filled in. */
        if (line[0] == '#' && q > line + 1 && strncmp(q, " =", 2) == 0 && strncmp(line, "#api_key =", 10) != 0) {
            memcpy(conf + o, line + 1, len - 1); /* drop the '#' */
            o += len - 1;
            settings++;
        }
        line += len;
    }
    conf[o] = '\0';
    assert_int_equal(settings, ARRAY_LEN(all_keys) - 1);
    char *path = tu_write_file(f->dir, "example.conf", conf);
    char *argv[] = {"asyncqueue", "--config", path, NULL};
    char *envp[] = {NULL};
    struct config from_file, defaults;
    char err[512];
    int rc = load(&from_file, argv, envp, NULL, err, sizeof err);
    if (rc != EXIT_OK) fail_msg("rc %d: %s", rc, err);
    tu_config_defaults(&defaults);
    /* Compare through the effective printout, which covers every key. */
    char *a = NULL, *b = NULL;
    size_t alen, blen;
    FILE *fa = open_memstream(&a, &alen), *fb = open_memstream(&b, &blen);
    free(from_file.config_path);
    from_file.config_path = NULL;
    config_print_effective(&from_file, fa);
    config_print_effective(&defaults, fb);
    fclose(fa);
    fclose(fb);
    assert_string_equal(a, b);
    free(a);
    free(b);
    config_free(&from_file);
    config_free(&defaults);
    free(path);
    free(conf);
    free(example);
}

static void effective_config_masks_secrets(void **state)
{
    (void)state;
    char *argv[] = {"asyncqueue",       "--api-key",    "sekrit-key-1,sekrit-key-2",
                    "--webhook-secret", "whsec_sekrit", NULL};
    char *envp[] = {NULL};
    struct config cfg;
    char err[512];
    assert_int_equal(load(&cfg, argv, envp, NULL, err, sizeof err), EXIT_OK);
    assert_int_equal(cfg.n_api_keys, 2);
    char *text = NULL;
    size_t len;
    FILE *out = open_memstream(&text, &len);
    config_print_effective(&cfg, out);
    fclose(out);
    assert_null(strstr(text, "sekrit"));
    assert_non_null(strstr(text, "api_key = (2 set)"));
    assert_non_null(strstr(text, "webhook_secret = (1 set)"));
    free(text);
    config_free(&cfg);
}

/* docs: "Quote a value to keep a '#' ... '#' starts a comment". A quoted
 * value followed by a comment is refused as "unterminated quoted value". */
static void quoted_value_with_trailing_comment(void **state)
{
    struct fixture *f = *state;
    char *path = tu_write_file(f->dir, "q.conf", "db = \"my#db.db\"   # the database\n");
    char *argv[] = {"asyncqueue", "--config", path, NULL};
    char *envp[] = {NULL};
    struct config cfg;
    char err[512];
    int rc = load(&cfg, argv, envp, NULL, err, sizeof err);
    if (rc != EXIT_OK) fail_msg("rc %d: %s", rc, err);
    assert_string_equal(cfg.db, "my#db.db");
    config_free(&cfg);
    free(path);
}

int main(void)
{
    log_set_level(LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(duration_parses_every_suffix),
        cmocka_unit_test(duration_refuses_garbage_and_out_of_range),
        cmocka_unit_test(size_parses_every_suffix),
        cmocka_unit_test(size_refuses_garbage_and_overflow),
        cmocka_unit_test(defaults_match_the_documentation),
        cmocka_unit_test_setup_teardown(file_sets_values_with_quotes_comments_and_spaces, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(file_errors_name_file_and_line, setup, teardown),
        cmocka_unit_test_setup_teardown(queue_and_proxy_settings_keep_their_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(file_refuses_overlong_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(file_missing_is_a_config_error, setup, teardown),
        cmocka_unit_test_setup_teardown(file_that_cannot_be_read_is_a_config_error, setup, teardown),
        cmocka_unit_test_setup_teardown(empty_config_flag_is_a_usage_error, setup, teardown),
        cmocka_unit_test_setup_teardown(env_beats_file_and_flags_beat_env, setup, teardown),
        cmocka_unit_test_setup_teardown(config_flag_beats_config_variable, setup, teardown),
        cmocka_unit_test(env_errors_name_the_variable),
        cmocka_unit_test(bare_boolean_flags_switch_on),
        cmocka_unit_test(flag_usage_errors_exit_2),
        cmocka_unit_test(flag_bad_values_exit_3),
        cmocka_unit_test(mode_flags_set_the_mode),
        cmocka_unit_test(consistency_checks_refuse_contradictions),
        cmocka_unit_test(listen_addresses_are_host_and_a_port_in_range),
        cmocka_unit_test(example_and_help_list_every_key),
        cmocka_unit_test_setup_teardown(example_uncommented_loads_to_the_defaults, setup, teardown),
        cmocka_unit_test(effective_config_masks_secrets),
        cmocka_unit_test_setup_teardown(quoted_value_with_trailing_comment, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
