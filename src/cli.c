/*
 * cli: the command-line client. Owns the command line of `asyncqueue task`,
 * `asyncqueue queue` and `asyncqueue schedule`, building request bodies from flags, one libcurl
 * easy handle (reused, so a --wait loop keeps its connection), the long-poll
 * loop behind --wait, and the mapping of outcomes to exit codes (cli.h).
 *
 * Request bodies are written as JSON text rather than built with cJSON, so
 * the client passes --payload and --metadata on exactly as written (cJSON
 * would round integers beyond 2^53 and reformat numbers); they are parsed
 * here only to refuse malformed JSON before anything is sent.
 */
#include "cli.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "util.h"
#include "validate.h"
#include "version.h"

#define DEFAULT_SERVER "http://127.0.0.1:8080"
#define CONNECT_TIMEOUT_MS 10000L
#define REQUEST_TIMEOUT_MS 120000L
/* One long-poll asks for at most this long: below nginx's default 60 s
 * proxy_read_timeout and the daemon's default max_wait (300 s), so --wait
 * works behind an untuned proxy. */
#define WAIT_CHUNK_S 50.0
#define WAIT_SLACK_MS 30000L /* transfer timeout of a long-poll beyond its wait */
#define WAIT_MAX_S 1e9        /* --wait beyond this waits this long: about 31 years */
/* A list page of 200 tasks, each with a 1 MiB payload and a 1 MiB result
 * (base64 makes that 1.4 MiB), fits. */
#define MAX_ANSWER_BYTES ((size_t)512 << 20)
#define MAX_FILE_BYTES ((size_t)64 << 20)
#define UNCAPPED ((size_t)SIZE_MAX / 2) /* buffers fed only by capped inputs */

/* ---- options ---- */

enum opt_id {
    OPT_SERVER,
    OPT_CACERT,
    OPT_API_KEY,
    OPT_HELP,
    OPT_URL,
    OPT_METHOD,
    OPT_HEADER,
    OPT_PAYLOAD,
    OPT_BODY,
    OPT_WEBHOOK,
    OPT_RETRIES,
    OPT_TIMEOUT,
    OPT_DELAY,
    OPT_RUN_AT,
    OPT_QUEUE,
    OPT_METADATA,
    OPT_IDEMPOTENCY_KEY,
    OPT_WAIT,
    OPT_STATUS,
    OPT_LIMIT,
    OPT_ALL,
    OPT_CURSOR,
    OPT_ORDER,
    OPT_CREATED_AFTER,
    OPT_CREATED_BEFORE,
    OPT_MAX_CONCURRENCY,
    OPT_RATE,
    OPT_BURST,
    OPT_PAUSED,
    OPT_DEFAULT_RETRIES,
    OPT_DEFAULT_TIMEOUT,
    OPT_CRON,
    OPT_TIMEZONE,
    OPT_TASK,
    OPT_COUNT
};

enum arg_kind {
    ARG_FLAG,   /* --all */
    ARG_VALUE,  /* --url URL or --url=URL, at most once */
    ARG_REPEAT, /* --header H, any number of times */
    ARG_WAIT,   /* --wait, --wait SECONDS, --wait=SECONDS */
};

struct opt_def {
    const char *name;
    enum arg_kind kind;
};

static const struct opt_def opt_defs[OPT_COUNT] = {
    [OPT_SERVER] = {"server", ARG_VALUE},
    [OPT_CACERT] = {"cacert", ARG_VALUE},
    [OPT_API_KEY] = {"api-key", ARG_VALUE},
    [OPT_HELP] = {"help", ARG_FLAG},
    [OPT_URL] = {"url", ARG_VALUE},
    [OPT_METHOD] = {"method", ARG_VALUE},
    [OPT_HEADER] = {"header", ARG_REPEAT},
    [OPT_PAYLOAD] = {"payload", ARG_VALUE},
    [OPT_BODY] = {"body", ARG_VALUE},
    [OPT_WEBHOOK] = {"webhook", ARG_VALUE},
    [OPT_RETRIES] = {"retries", ARG_VALUE},
    [OPT_TIMEOUT] = {"timeout", ARG_VALUE},
    [OPT_DELAY] = {"delay", ARG_VALUE},
    [OPT_RUN_AT] = {"run-at", ARG_VALUE},
    [OPT_QUEUE] = {"queue", ARG_VALUE},
    [OPT_METADATA] = {"metadata", ARG_VALUE},
    [OPT_IDEMPOTENCY_KEY] = {"idempotency-key", ARG_VALUE},
    [OPT_WAIT] = {"wait", ARG_WAIT},
    [OPT_STATUS] = {"status", ARG_VALUE},
    [OPT_LIMIT] = {"limit", ARG_VALUE},
    [OPT_ALL] = {"all", ARG_FLAG},
    [OPT_CURSOR] = {"cursor", ARG_VALUE},
    [OPT_ORDER] = {"order", ARG_VALUE},
    [OPT_CREATED_AFTER] = {"created-after", ARG_VALUE},
    [OPT_CREATED_BEFORE] = {"created-before", ARG_VALUE},
    [OPT_MAX_CONCURRENCY] = {"max-concurrency", ARG_VALUE},
    [OPT_RATE] = {"rate", ARG_VALUE},
    [OPT_BURST] = {"burst", ARG_VALUE},
    [OPT_PAUSED] = {"paused", ARG_FLAG},
    [OPT_DEFAULT_RETRIES] = {"default-retries", ARG_VALUE},
    [OPT_DEFAULT_TIMEOUT] = {"default-timeout", ARG_VALUE},
    [OPT_CRON] = {"cron", ARG_VALUE},
    [OPT_TIMEZONE] = {"timezone", ARG_VALUE},
    [OPT_TASK] = {"task", ARG_VALUE},
};

#define BIT(o) (UINT64_C(1) << (o))
#define TASK_FIELDS                                                                                \
    (BIT(OPT_URL) | BIT(OPT_METHOD) | BIT(OPT_HEADER) | BIT(OPT_PAYLOAD) | BIT(OPT_BODY) |         \
     BIT(OPT_WEBHOOK) | BIT(OPT_RETRIES) | BIT(OPT_TIMEOUT) | BIT(OPT_DELAY) | BIT(OPT_RUN_AT) |   \
     BIT(OPT_QUEUE) | BIT(OPT_METADATA))
/* The filters a list shares with the bulk cancel and replay; the rest of
 * LIST_FILTERS pages, which a bulk command has no use for. */
#define TASK_FILTERS                                                                               \
    (BIT(OPT_STATUS) | BIT(OPT_QUEUE) | BIT(OPT_CREATED_AFTER) | BIT(OPT_CREATED_BEFORE))
#define LIST_FILTERS                                                                               \
    (TASK_FILTERS | BIT(OPT_LIMIT) | BIT(OPT_ALL) | BIT(OPT_CURSOR) | BIT(OPT_ORDER))
#define QUEUE_PAGES (BIT(OPT_LIMIT) | BIT(OPT_CURSOR) | BIT(OPT_ALL))
/* A schedule's template is a create without runAt (each run is made now). */
#define SCHEDULE_TASK_FIELDS (TASK_FIELDS & ~BIT(OPT_RUN_AT))
#define SCHEDULE_PUT                                                                               \
    (BIT(OPT_CRON) | BIT(OPT_TIMEZONE) | BIT(OPT_TASK) | BIT(OPT_PAUSED) | SCHEDULE_TASK_FIELDS)
#define QUEUE_SETTINGS                                                                             \
    (BIT(OPT_MAX_CONCURRENCY) | BIT(OPT_RATE) | BIT(OPT_BURST) | BIT(OPT_PAUSED) |                 \
     BIT(OPT_DEFAULT_RETRIES) | BIT(OPT_DEFAULT_TIMEOUT))

/* ---- state of one run ---- */

struct cli {
    /* the command line (strings borrowed from argv) */
    const char *noun, *verb, *arg; /* arg: the ID or NAME */
    const char *val[OPT_COUNT];
    bool set[OPT_COUNT];
    const char **headers; /* every --header */
    size_t n_headers;
    double wait_s; /* --wait SECONDS; < 0: until the task finishes */

    /* the connection */
    char *base;        /* server URL without trailing '/' */
    char *auth_header; /* "Authorization: Bearer ..." or NULL */
    const char *cacert; /* CA certificates to trust for https, or NULL: the system's */
    CURL *curl;
};

struct reply {
    long status; /* HTTP status; 0 when no answer arrived */
    struct buf body;
    char retry_after[32];
    char curl_error[CURL_ERROR_SIZE];
    bool too_large;
};

typedef int (*command_fn)(struct cli *c);

struct command {
    const char *noun, *verb;
    const char *arg_name; /* "ID", "NAME", or NULL when the command takes none */
    uint64_t opts;        /* allowed besides --server, --api-key, --help */
    command_fn run;
};

/* ---- messages ---- */

static void usage_task(FILE *out)
{
    fprintf(out,
            "Usage: asyncqueue task COMMAND [ARG] [options]\n"
            "\n"
            "Commands:\n"
            "  create --url URL [fields] [--idempotency-key KEY] [--wait [SECONDS]]\n"
            "                          submit a task (POST /v1/tasks)\n"
            "  create-many FILE        submit the tasks of FILE, a JSON array of create bodies\n"
            "                          (- reads standard input), all or none (POST /v1/tasks/batch)\n"
            "  get ID [--wait [SECONDS]]\n"
            "                          show a task; with --wait, once it has finished\n"
            "  list [filters]          list tasks, newest first (GET /v1/tasks)\n"
            "  cancel ID               cancel a queued or running task\n"
            "  cancel-many filters     cancel every queued or running task the filters match\n"
            "                          (POST /v1/tasks/cancel); all: --status queued,running\n"
            "  retry ID [fields] [--wait [SECONDS]]\n"
            "                          run a finished task again, with the fields given changed\n"
            "  retry-many filters      run again every failed task the filters match (or each\n"
            "                          one of the --status given; POST /v1/tasks/retry); all\n"
            "                          failed tasks: --status failed\n"
            "  attempts ID             every attempt and webhook delivery of a task\n"
            "\n"
            "Task fields (create, retry):\n"
            "  --url URL               the target to call (callbackUrl)\n"
            "  --method M              GET, POST (default), PUT, PATCH, DELETE, HEAD, OPTIONS\n"
            "  --header 'Name: value'  a header for the target call; repeat for several\n"
            "  --payload JSON|@FILE    a JSON body for the target (@- reads standard input)\n"
            "  --body TEXT             a text body instead of --payload\n"
            "  --webhook URL           where the outcome is POSTed, signed\n"
            "  --retries N             retries after the first attempt\n"
            "  --timeout S             seconds one attempt may take\n"
            "  --delay S               seconds to wait before the first attempt\n"
            "  --run-at TIME           RFC 3339 time of the first attempt (not with --delay)\n"
            "  --queue NAME            the task's queue (default: default)\n"
            "  --metadata JSON|@FILE   kept with the task and echoed in the webhook\n"
            "  --idempotency-key KEY   the same key and request never make a second task\n"
            "  --wait [SECONDS]        wait until the task is completed, failed or cancelled\n"
            "                          (at most SECONDS when given) and print it then\n"
            "\n"
            "Filters (list, cancel-many, retry-many):\n"
            "  --status S[,S...]       queued, running, completed, failed, cancelled\n"
            "                          (cancel-many: queued, running; retry-many: the others)\n"
            "  --queue NAME            one queue\n"
            "  --created-after TIME, --created-before TIME   RFC 3339 times\n"
            "  cancel-many and retry-many need at least one, as the API does, so that a\n"
            "  command line that lost its filter (an empty variable) does not take every task\n"
            "\n"
            "Pages (list):\n"
            "  --order desc|asc        newest first (default) or oldest first\n"
            "  --limit N               tasks per page, 1 to 200 (default 50; 200 with --all)\n"
            "  --cursor C              the nextCursor of the previous page\n"
            "  --all                   follow nextCursor and print every page as one list\n");
}

static void usage_queue(FILE *out)
{
    fprintf(out, "Usage: asyncqueue queue COMMAND [NAME] [options]\n"
                 "\n"
                 "Commands:\n"
                 "  list [pages]            every queue with settings, counters or waiting tasks,\n"
                 "                          by name (GET /v1/queues, page after page)\n"
                 "  get NAME                one queue\n"
                 "  set NAME [settings]     replace the queue's settings (absent ones take their\n"
                 "                          defaults, as PUT /v1/queues/NAME does)\n"
                 "  delete NAME             forget the queue's settings (its tasks stay)\n"
                 "  pause NAME              start no more tasks of the queue (still accepts them)\n"
                 "  resume NAME             start them again\n"
                 "\n"
                 "Settings (set):\n"
                 "  --max-concurrency N     most tasks running at once (0: no limit; 1: in order)\n"
                 "  --rate R                most tasks started per second (0: no limit)\n"
                 "  --burst N               tasks that may start at once when the rate allows\n"
                 "  --paused                set it paused\n"
                 "  --default-retries N     retries for tasks of the queue that give none\n"
                 "  --default-timeout S     timeout for tasks of the queue that give none\n"
                 "\n"
                 "Pages (list):\n"
                 "  --limit N               queues per page, 1 to 1000 (default 1000); alone, print\n"
                 "                          that one page with its nextCursor\n"
                 "  --cursor C              the nextCursor of the previous page; alone, that page\n"
                 "  --all                   follow nextCursor and print every page as one list\n"
                 "                          (what list does without --limit and --cursor)\n");
}

static void usage_schedule(FILE *out)
{
    fprintf(out, "Usage: asyncqueue schedule COMMAND [NAME] [options]\n"
                 "\n"
                 "Commands:\n"
                 "  put NAME --cron EXPR [--timezone ZONE] (--task FILE | --url URL [fields])\n"
                 "      [--paused]          make or replace the schedule (PUT /v1/schedules/NAME):\n"
                 "                          a task from the template each time EXPR fires\n"
                 "  list [pages]            every schedule, by name (GET /v1/schedules, page after\n"
                 "                          page)\n"
                 "  get NAME                one schedule\n"
                 "  delete NAME             delete the schedule (the tasks it made stay)\n"
                 "  pause NAME              make no more tasks from it\n"
                 "  resume NAME             make them again, from now on (missed times are not\n"
                 "                          made up)\n"
                 "  run NAME                make one task from it now and print that task (its next\n"
                 "                          time stays)\n"
                 "\n"
                 "Schedule (put):\n"
                 "  --cron EXPR             min hour dom month dow; or six fields, seconds first;\n"
                 "                          or @hourly, @daily, @weekly, @monthly, @yearly\n"
                 "  --timezone ZONE         read EXPR in this IANA zone, e.g. Europe/Berlin\n"
                 "                          (default UTC)\n"
                 "  --task FILE             the template: a JSON object, the body of POST /v1/tasks\n"
                 "                          without runAt and idempotencyKey (- reads standard\n"
                 "                          input); sent as written\n"
                 "  --paused                make it paused (without: not paused, even on replace)\n"
                 "\n"
                 "Template fields (put, instead of --task), as 'task create' takes them:\n"
                 "  --url URL, --method M, --header 'Name: value', --payload JSON|@FILE,\n"
                 "  --body TEXT, --webhook URL, --retries N, --timeout S, --delay S,\n"
                 "  --queue NAME, --metadata JSON|@FILE (see 'asyncqueue task --help')\n"
                 "\n"
                 "Pages (list):\n"
                 "  --limit N               schedules per page, 1 to 1000 (default 1000); alone,\n"
                 "                          print that one page with its nextCursor\n"
                 "  --cursor C              the nextCursor of the previous page; alone, that page\n"
                 "  --all                   follow nextCursor and print every page as one list\n"
                 "                          (what list does without --limit and --cursor)\n");
}

static void usage_common(FILE *out)
{
    fprintf(out,
            "\n"
            "Connection:\n"
            "  --server URL            the daemon (default: $ASYNCQUEUE_URL, else %s)\n"
            "  --api-key KEY           the API key (default: $ASYNCQUEUE_API_KEY; its first key\n"
            "                          when it lists several, as the daemon's setting may,\n"
            "                          skipping sha256: digests)\n"
            "  --cacert FILE           trust the CA certificates (PEM) in FILE for an https\n"
            "                          server: a self-signed or private CA's (default:\n"
            "                          $ASYNCQUEUE_CACERT, else the system's)\n"
            "\n"
            "The API's JSON answer goes to standard output (an error's too); what went wrong\n"
            "goes to standard error as one line.\n"
            "\n"
            "Exit codes:\n"
            "  0  success; with --wait, the task completed\n"
            "  1  with --wait: the task ended failed or cancelled\n"
            "  2  usage: unknown command or option, bad value, unreadable @FILE\n"
            "  3  with --wait SECONDS: time ran out while the task was still queued or running\n"
            "  4  the API refused the request (HTTP 4xx: invalid field, no such task, wrong\n"
            "     key, task already finished, queue full)\n"
            "  5  the server could not be reached, or answered 5xx or not as the API does\n"
            "     (a 4xx page from a proxy or another server), or stdout cannot be written\n",
            DEFAULT_SERVER);
}

static void print_usage(const char *noun, FILE *out)
{
    if (!strcmp(noun, "queue"))
        usage_queue(out);
    else if (!strcmp(noun, "schedule"))
        usage_schedule(out);
    else
        usage_task(out);
    usage_common(out);
}

static int usage_error(const struct cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_error(const struct cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "asyncqueue: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "; see 'asyncqueue %s --help'\n", c->noun);
    return CLI_EXIT_USAGE;
}

/* Writes s to stderr with control characters as spaces, so a message from the
 * server cannot break the one-line rule. */
static void put_line_part(const char *s, size_t max)
{
    for (size_t i = 0; i < max && s[i]; i++)
        fputc((unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i], stderr);
}

/* ---- JSON text ---- */

static void json_append_string(struct buf *b, const char *s)
{
    buf_append(b, "\"", 1);
    const char *run = s;
    for (const char *p = s;; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch != '\0' && ch >= 0x20 && ch != '"' && ch != '\\') continue;
        buf_append(b, run, (size_t)(p - run));
        if (ch == '\0') break;
        if (ch == '"' || ch == '\\')
            buf_appendf(b, "\\%c", ch);
        else
            buf_appendf(b, "\\u%04x", ch);
        run = p + 1;
    }
    buf_append(b, "\"", 1);
}

/* An object written field by field. */
struct jobj {
    struct buf b;
    bool any;
};

static void jobj_key(struct jobj *o, const char *key)
{
    buf_append(&o->b, o->any ? "," : "{", 1);
    o->any = true;
    json_append_string(&o->b, key);
    buf_append(&o->b, ":", 1);
}

static void jobj_raw(struct jobj *o, const char *key, const char *raw, size_t len)
{
    jobj_key(o, key);
    buf_append(&o->b, raw, len);
}

static void jobj_string(struct jobj *o, const char *key, const char *value)
{
    jobj_key(o, key);
    json_append_string(&o->b, value);
}

/* True when s is exactly one JSON number (the grammar of RFC 8259, which is
 * stricter than strtod: no hex, no "inf", no leading '+'). */
static bool json_number_valid(const char *s)
{
    size_t len = strlen(s);
    return len > 0 && util_json_number_len(s, len) == len;
}

/* Reads a whole file ("-": standard input), at most MAX_FILE_BYTES. Returns
 * a malloc'd, NUL-terminated copy (caller frees) or NULL with why set. */
static char *read_file(const char *path, size_t *len_out, char *why, size_t why_len)
{
    bool std_in = !strcmp(path, "-");
    FILE *f = std_in ? stdin : fopen(path, "rb");
    if (!f) {
        snprintf(why, why_len, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct buf b;
    buf_init(&b, MAX_FILE_BYTES);
    char chunk[65536];
    size_t n;
    bool ok = true;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (buf_append(&b, chunk, n) < 0) {
            snprintf(why, why_len, "%s is larger than %zu MiB", path, MAX_FILE_BYTES >> 20);
            ok = false;
            break;
        }
    }
    if (ok && ferror(f)) {
        snprintf(why, why_len, "cannot read %s: %s", path, strerror(errno));
        ok = false;
    }
    if (!std_in) fclose(f);
    if (!ok) {
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b, len_out);
}

/* The JSON text of --payload or --metadata: the argument itself, or the
 * contents of @FILE. Checked to be one well-formed JSON value. Returns a
 * malloc'd string (caller frees), or NULL after a usage message. */
static char *json_arg(const struct cli *c, enum opt_id opt, size_t *len_out)
{
    const char *arg = c->val[opt], *name = opt_defs[opt].name;
    char why[512];
    size_t len;
    char *text;
    if (arg[0] == '@') {
        text = read_file(arg + 1, &len, why, sizeof why);
        if (!text) {
            usage_error(c, "--%s %s: %s", name, arg, why);
            return NULL;
        }
    } else {
        text = xstrdup(arg);
        len = strlen(text);
    }
    const char *problem = NULL;
    int depth = 0;
    if (memchr(text, '\0', len)) {
        problem = "contains a NUL byte";
    } else if (!util_utf8_valid(text, len)) {
        problem = "is not valid UTF-8";
    } else if (util_json_scan(text, len, &depth), depth > VALIDATE_MAX_DEPTH - 1) {
        /* Said here, before a parser's own nesting limit calls it invalid. */
        snprintf(why, sizeof why, "nests %d levels deep; inside a task the daemon takes %d", depth,
                 VALIDATE_MAX_DEPTH - 1);
        problem = why;
    } else {
        const char *end = NULL;
        cJSON *v = cJSON_ParseWithLengthOpts(text, len, &end, false);
        if (v) {
            while (end < text + len && isspace((unsigned char)*end))
                end++;
            if (end != text + len) problem = "has more after the JSON value";
        } else {
            problem = "is not valid JSON";
        }
        cJSON_Delete(v);
    }
    if (problem) {
        usage_error(c, "--%s %s", name, problem);
        free(text);
        return NULL;
    }
    *len_out = len;
    return text;
}

/* Adds option opt as a JSON number under key. Returns 0, or -1 after a usage
 * message. */
static int add_number(const struct cli *c, struct jobj *o, enum opt_id opt, const char *key)
{
    if (!c->set[opt]) return 0;
    if (!json_number_valid(c->val[opt])) {
        usage_error(c, "--%s must be a number, not '%s'", opt_defs[opt].name, c->val[opt]);
        return -1;
    }
    jobj_raw(o, key, c->val[opt], strlen(c->val[opt]));
    return 0;
}

static int add_json(const struct cli *c, struct jobj *o, enum opt_id opt, const char *key)
{
    if (!c->set[opt]) return 0;
    size_t len;
    char *text = json_arg(c, opt, &len);
    if (!text) return -1;
    jobj_raw(o, key, text, len);
    free(text);
    return 0;
}

/* The "headers" object from every --header 'Name: value'. */
static int add_headers(const struct cli *c, struct jobj *o)
{
    if (!c->n_headers) return 0;
    struct jobj h = {.any = false};
    buf_init(&h.b, UNCAPPED);
    int rc = -1;
    for (size_t i = 0; i < c->n_headers; i++) {
        const char *hd = c->headers[i], *colon = strchr(hd, ':');
        if (!colon) {
            usage_error(c, "--header '%s' must look like 'Name: value'", hd);
            goto out;
        }
        const char *a = hd, *b = colon;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (a == b) {
            usage_error(c, "--header '%s' has no name before the ':'", hd);
            goto out;
        }
        size_t name_len = (size_t)(b - a);
        for (size_t k = 0; k < i; k++) {
            const char *other = c->headers[k];
            while (isspace((unsigned char)*other))
                other++;
            if (!strncasecmp(other, a, name_len) &&
                (other[name_len] == ':' || isspace((unsigned char)other[name_len]))) {
                usage_error(c, "--header %.*s is given twice; join the values with ', '",
                            (int)name_len, a);
                goto out;
            }
        }
        const char *v = colon + 1;
        while (isspace((unsigned char)*v))
            v++;
        size_t vlen = strlen(v);
        while (vlen && isspace((unsigned char)v[vlen - 1]))
            vlen--;
        char *name = xstrndup(a, name_len), *value = xstrndup(v, vlen);
        jobj_string(&h, name, value);
        free(name);
        free(value);
    }
    buf_append(&h.b, "}", 1);
    jobj_raw(o, "headers", h.b.data, h.b.len);
    rc = 0;
out:
    buf_free(&h.b);
    return rc;
}

/* The body of a create, or of a replay's overrides. Returns a malloc'd JSON
 * object text, or NULL: after a usage message (*failed set), or when no field
 * was given (replay without overrides). */
static char *task_body(const struct cli *c, size_t *len_out, bool *failed)
{
    struct jobj o = {.any = false};
    buf_init(&o.b, UNCAPPED);
    *failed = true;
    if (c->set[OPT_PAYLOAD] && c->set[OPT_BODY]) {
        usage_error(c, "--payload and --body cannot both be given: a task has one body");
        goto fail;
    }
    if (c->set[OPT_DELAY] && c->set[OPT_RUN_AT]) {
        usage_error(c, "--delay and --run-at cannot both be given");
        goto fail;
    }
    if (c->set[OPT_URL]) jobj_string(&o, "callbackUrl", c->val[OPT_URL]);
    if (c->set[OPT_METHOD]) jobj_string(&o, "method", c->val[OPT_METHOD]);
    if (add_headers(c, &o)) goto fail;
    if (add_json(c, &o, OPT_PAYLOAD, "payload")) goto fail;
    if (c->set[OPT_BODY]) jobj_string(&o, "body", c->val[OPT_BODY]);
    if (c->set[OPT_WEBHOOK]) jobj_string(&o, "webhookUrl", c->val[OPT_WEBHOOK]);
    if (add_number(c, &o, OPT_RETRIES, "retries")) goto fail;
    if (add_number(c, &o, OPT_TIMEOUT, "timeout")) goto fail;
    if (add_number(c, &o, OPT_DELAY, "delay")) goto fail;
    if (c->set[OPT_RUN_AT]) jobj_string(&o, "runAt", c->val[OPT_RUN_AT]);
    if (c->set[OPT_QUEUE]) jobj_string(&o, "queue", c->val[OPT_QUEUE]);
    if (add_json(c, &o, OPT_METADATA, "metadata")) goto fail;
    *failed = false;
    if (!o.any) goto fail;
    buf_append(&o.b, "}", 1);
    return buf_steal(&o.b, len_out);
fail:
    buf_free(&o.b);
    return NULL;
}

/* ---- HTTP ---- */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    if (buf_append(&r->body, data, size * n) < 0) {
        r->too_large = true;
        return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
    }
    return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    size_t len = size * n;
    if (len > 12 && !strncasecmp(data, "retry-after:", 12)) {
        const char *v = data + 12;
        size_t vlen = len - 12;
        while (vlen && isspace((unsigned char)*v))
            v++, vlen--;
        while (vlen && isspace((unsigned char)v[vlen - 1]))
            vlen--;
        snprintf(r->retry_after, sizeof r->retry_after, "%.*s", (int)vlen, v);
    }
    return len;
}

static void reply_init(struct reply *r)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->body, MAX_ANSWER_BYTES);
}

static void reply_clear(struct reply *r)
{
    buf_free(&r->body);
}

/* Escapes s for a path segment or a query value; caller frees. */
static char *url_escape(struct cli *c, const char *s)
{
    char *e = curl_easy_escape(c->curl, s, 0);
    if (!e) abort(); /* only fails on out-of-memory */
    char *copy = xstrdup(e);
    curl_free(e);
    return copy;
}

/* Sends one request (body may be NULL) and fills r, which the caller has
 * initialised. Returns 0 when an HTTP answer arrived, whatever its status,
 * or -1 when none did (r->curl_error says why). */
static int http_call(struct cli *c, const char *method, const char *path, const char *body,
                     size_t body_len, const char *idempotency_key, long timeout_ms, struct reply *r)
{
    CURL *h = c->curl;
    struct curl_slist *headers = NULL;
    char *url = xasprintf("%s%s", c->base, path), *idem = NULL;
    curl_easy_reset(h); /* keeps the connection cache, so keep-alive still works */
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "asyncqueue-cli/" AQ_VERSION);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (c->cacert) curl_easy_setopt(h, CURLOPT_CAINFO, c->cacert);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->curl_error);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    headers = curl_slist_append(headers, "Accept: application/json");
    /* Without this libcurl waits for "100 Continue" before larger bodies:
     * a round trip that buys nothing against our own API. */
    headers = curl_slist_append(headers, "Expect:");
    if (c->auth_header) headers = curl_slist_append(headers, c->auth_header);
    if (idempotency_key) {
        idem = xasprintf("Idempotency-Key: %s", idempotency_key);
        headers = curl_slist_append(headers, idem);
    }
    if (!strcmp(method, "GET")) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (body || !strcmp(method, "POST")) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
            /* An empty POST goes without a Content-Type rather than libcurl's
             * form default, which the API would not understand. */
            headers = curl_slist_append(headers,
                                        body ? "Content-Type: application/json" : "Content-Type:");
        }
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    else if (r->too_large)
        snprintf(r->curl_error, sizeof r->curl_error, "the answer is larger than %zu MiB",
                 MAX_ANSWER_BYTES >> 20);
    else if (!r->curl_error[0])
        snprintf(r->curl_error, sizeof r->curl_error, "%s", curl_easy_strerror(rc));
    curl_slist_free_all(headers);
    free(url);
    free(idem);
    return rc == CURLE_OK ? 0 : -1;
}

/* Writes the answer's body to stdout, ending in a newline. Returns 0, or -1
 * when stdout cannot be written. */
static int print_body(const char *data, size_t len)
{
    if (len) {
        fwrite(data, 1, len, stdout);
        if (data[len - 1] != '\n') fputc('\n', stdout);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "asyncqueue: cannot write to standard output: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

/* The one stderr line for an answer that is not 2xx. Returns whether it
 * was an error of the API ({"error": {"code": ...}}). */
static bool report_http_error(const struct cli *c, const struct reply *r)
{
    cJSON *doc = r->body.len ? cJSON_ParseWithLength(r->body.data, r->body.len) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(doc, "error");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *field = cJSON_GetObjectItemCaseSensitive(e, "field");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
    fprintf(stderr, "asyncqueue: HTTP %ld", r->status);
    if (cJSON_IsString(code)) {
        fputc(' ', stderr);
        put_line_part(code->valuestring, 64);
        if (cJSON_IsString(field)) {
            fputs(" (", stderr);
            put_line_part(field->valuestring, 64);
            fputc(')', stderr);
        }
        if (cJSON_IsString(msg)) {
            fputs(": ", stderr);
            put_line_part(msg->valuestring, 512);
        }
    } else {
        fprintf(stderr, " from %s, which is not an AsyncQueue API error", c->base);
        if (r->body.len) {
            fputs(": ", stderr);
            put_line_part(r->body.data, 160);
        }
    }
    if (r->retry_after[0]) {
        fputs(" (retry after ", stderr);
        put_line_part(r->retry_after, 31);
        fputs(" s)", stderr);
    }
    fputc('\n', stderr);
    bool api = cJSON_IsString(code);
    cJSON_Delete(doc);
    return api;
}

static void report_unreachable(const struct cli *c, const struct reply *r)
{
    fprintf(stderr, "asyncqueue: no answer from %s: ", c->base);
    put_line_part(r->curl_error, sizeof r->curl_error);
    fputc('\n', stderr);
}

/* Prints the outcome of a plain call and returns its exit code. */
static int finish(const struct cli *c, int call_rc, const struct reply *r)
{
    if (call_rc != 0) {
        report_unreachable(c, r);
        return CLI_EXIT_SERVER;
    }
    if (print_body(r->body.data, r->body.len)) return CLI_EXIT_SERVER;
    if (r->status >= 200 && r->status < 300) {
        /* The API answers JSON (or nothing, 204): anything else came from
         * another server at that address, "not as the API does". */
        cJSON *doc = r->body.len ? cJSON_ParseWithLength(r->body.data, r->body.len) : NULL;
        bool json = !r->body.len || doc;
        cJSON_Delete(doc);
        if (json) return CLI_EXIT_OK;
        fprintf(stderr, "asyncqueue: HTTP %ld from %s is not an AsyncQueue API answer (not JSON)\n",
                r->status, c->base);
        return CLI_EXIT_SERVER;
    }
    /* A 4xx the API did not write (another server at that address, a proxy's
     * page) is "not as the API does": 5, not 4. */
    bool api = report_http_error(c, r);
    return api && r->status >= 400 && r->status < 500 ? CLI_EXIT_API : CLI_EXIT_SERVER;
}

/* One request, printed: the shape of most commands. */
static int simple(struct cli *c, const char *method, const char *path, const char *body,
                  size_t body_len)
{
    struct reply r;
    reply_init(&r);
    int rc = http_call(c, method, path, body, body_len, NULL, REQUEST_TIMEOUT_MS, &r);
    rc = finish(c, rc, &r);
    reply_clear(&r);
    return rc;
}

/* A string member of a JSON answer, copied (caller frees), or NULL. */
static char *answer_string(const struct reply *r, const char *name, const char *inner)
{
    cJSON *doc = cJSON_ParseWithLength(r->body.data ? r->body.data : "", r->body.len);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, name);
    if (inner) v = cJSON_GetObjectItemCaseSensitive(v, inner);
    char *s = cJSON_IsString(v) ? xstrdup(v->valuestring) : NULL;
    cJSON_Delete(doc);
    return s;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* --wait: long-polls the task until it is final or c->wait_s has passed,
 * then prints it. Returns the exit code. */
static int wait_task(struct cli *c, const char *id)
{
    bool forever = c->wait_s < 0;
    int64_t deadline = util_mono_ms() + (forever ? 0 : (int64_t)llround(c->wait_s * 1000.0));
    double chunk_max = WAIT_CHUNK_S;
    char *esc = url_escape(c, id);
    struct reply r;
    int rc;
    bool answered = false; /* the daemon knew the task: an outage after that is a restart */
    for (;;) {
        int64_t start = util_mono_ms();
        double left = forever ? chunk_max : (double)(deadline - start) / 1000.0;
        double chunk = left < 0 ? 0 : left < chunk_max ? left : chunk_max;
        char *path = xasprintf("/v1/tasks/%s?wait=%.3f", esc, chunk);
        reply_init(&r);
        int call =
            http_call(c, "GET", path, NULL, 0, NULL, (long)(chunk * 1000) + WAIT_SLACK_MS, &r);
        free(path);
        if (call == 0 && r.status == 400 && chunk_max > 0) {
            /* The daemon's max_wait is below our chunk: ask for less, down to
             * plain polls (wait=0) for a daemon that takes no wait at all. */
            char *field = answer_string(&r, "error", "field");
            bool wait_refused = field && !strcmp(field, "wait");
            free(field);
            if (wait_refused) {
                chunk_max = chunk_max >= 2 ? floor(chunk_max / 2) : 0;
                reply_clear(&r);
                continue;
            }
        }
        /* A daemon stopping answers a wait 503 ("ask again"), then none
         * until it is back: within the wait, ask again after a pause. Behind
         * a proxy (deploy/nginx.conf) "none" arrives as its 502 or 504. */
        bool proxy_no_answer = call == 0 && (r.status == 502 || r.status == 504);
        bool again = call == 0 ? r.status == 503 || (answered && proxy_no_answer) : answered;
        if (again && (forever || util_mono_ms() + 1000 < deadline)) {
            reply_clear(&r);
            sleep_ms(1000);
            continue;
        }
        if (call != 0 || r.status != 200) {
            rc = finish(c, call, &r);
            break;
        }
        answered = true;
        char *status = answer_string(&r, "status", NULL);
        if (!status) {
            fprintf(stderr, "asyncqueue: the answer from %s has no task status\n", c->base);
            rc = CLI_EXIT_SERVER;
            break;
        }
        bool completed = !strcmp(status, "completed");
        bool final = completed || !strcmp(status, "failed") || !strcmp(status, "cancelled");
        int64_t now = util_mono_ms();
        if (final || (!forever && now >= deadline)) {
            rc = print_body(r.body.data, r.body.len) ? CLI_EXIT_SERVER : CLI_EXIT_OK;
            if (rc == CLI_EXIT_OK && !completed) {
                fprintf(stderr, "asyncqueue: task %s ", id);
                if (final) {
                    char *code = answer_string(&r, "error", "code");
                    char *msg = answer_string(&r, "error", "message");
                    fprintf(stderr, "ended %s", status);
                    if (code) {
                        fputs(" (", stderr);
                        put_line_part(code, 64);
                        if (msg) {
                            fputs(": ", stderr);
                            put_line_part(msg, 512);
                        }
                        fputc(')', stderr);
                    }
                    free(code);
                    free(msg);
                    rc = CLI_EXIT_TASK_FAILED;
                } else {
                    fprintf(stderr, "is still %s after waiting %g s", status, c->wait_s);
                    rc = CLI_EXIT_WAIT_TIMEOUT;
                }
                fputc('\n', stderr);
            }
            free(status);
            break;
        }
        free(status);
        reply_clear(&r);
        /* A long-poll the daemon ended early (it is shutting down, say), or
         * plain polls, must not turn this loop into a busy one. */
        if (chunk == 0 || (double)(now - start) < chunk * 500.0) {
            int64_t pause = 250;
            if (!forever && deadline - now < pause) pause = deadline - now;
            if (pause > 0) sleep_ms(pause);
        }
    }
    reply_clear(&r);
    free(esc);
    return rc;
}

/* ---- commands ---- */

static int cmd_task_create(struct cli *c)
{
    if (!c->set[OPT_URL]) return usage_error(c, "task create needs --url URL");
    size_t len = 0;
    bool failed;
    char *body = task_body(c, &len, &failed);
    if (!body) return CLI_EXIT_USAGE; /* --url makes a body, so NULL means failed */
    struct reply r;
    reply_init(&r);
    int rc = http_call(c, "POST", "/v1/tasks", body, len, c->val[OPT_IDEMPOTENCY_KEY],
                       REQUEST_TIMEOUT_MS, &r);
    free(body);
    if (rc != 0 || !c->set[OPT_WAIT] || r.status < 200 || r.status >= 300) {
        rc = finish(c, rc, &r);
    } else {
        char *id = answer_string(&r, "id", NULL);
        if (id) {
            rc = wait_task(c, id);
            if (rc == CLI_EXIT_API || rc == CLI_EXIT_SERVER) /* the task exists all the same */
                fprintf(stderr, "asyncqueue: task %s was created; the wait for it failed (see "
                        "above): 'asyncqueue task get %s' looks at it\n", id, id);
        } else {
            fprintf(stderr, "asyncqueue: the answer from %s has no task id\n", c->base);
            rc = CLI_EXIT_SERVER;
        }
        free(id);
    }
    reply_clear(&r);
    return rc;
}

/* create-many FILE: the tasks of FILE ("-": standard input), a JSON array
 * of what create takes, or the batch's whole body ({"tasks": [...]}), in
 * one request: all are stored or none. The daemon checks each item (a 400
 * names it: tasks[i].field); here only the file's outer shape. */
static int cmd_task_create_many(struct cli *c)
{
    char why[512];
    size_t len = 0;
    char *text = read_file(c->arg, &len, why, sizeof why);
    if (!text) return usage_error(c, "task create-many %s: %s", c->arg, why);
    size_t i = 0;
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) i = 3; /* a byte order mark */
    while (i < len && isspace((unsigned char)text[i]))
        i++;
    char *body = NULL;
    size_t body_len = 0;
    if (memchr(text, '\0', len)) {
        snprintf(why, sizeof why, "contains a NUL byte");
    } else if (i < len && text[i] == '[') {
        body = xasprintf("{\"tasks\":%s}", text + i);
        body_len = strlen(body);
    } else if (i < len && text[i] == '{') {
        body = xstrdup(text + i);
        body_len = len - i;
    } else {
        snprintf(why, sizeof why, "must hold a JSON array of tasks, each as 'task create' makes it "
                 "(e.g. [{\"callbackUrl\": \"https://...\"}]), or {\"tasks\": [...]}");
    }
    free(text);
    if (!body) return usage_error(c, "task create-many %s: %s", c->arg, why);
    int rc = simple(c, "POST", "/v1/tasks/batch", body, body_len);
    free(body);
    return rc;
}

static int cmd_task_get(struct cli *c)
{
    if (c->set[OPT_WAIT]) return wait_task(c, c->arg);
    char *esc = url_escape(c, c->arg), *path = xasprintf("/v1/tasks/%s", esc);
    int rc = simple(c, "GET", path, NULL, 0);
    free(path);
    free(esc);
    return rc;
}

static int cmd_task_action(struct cli *c, const char *action, const char *body, size_t len)
{
    char *esc = url_escape(c, c->arg), *path = xasprintf("/v1/tasks/%s/%s", esc, action);
    int rc = simple(c, strcmp(action, "attempts") ? "POST" : "GET", path, body, len);
    free(path);
    free(esc);
    return rc;
}

static int cmd_task_cancel(struct cli *c)
{
    return cmd_task_action(c, "cancel", NULL, 0);
}

static int cmd_task_attempts(struct cli *c)
{
    return cmd_task_action(c, "attempts", NULL, 0);
}

static int cmd_task_retry(struct cli *c)
{
    size_t len = 0;
    bool failed;
    char *body = task_body(c, &len, &failed);
    if (failed) return CLI_EXIT_USAGE;
    if (!c->set[OPT_WAIT]) {
        int rc = cmd_task_action(c, "retry", body, len);
        free(body);
        return rc;
    }
    char *esc = url_escape(c, c->arg), *path = xasprintf("/v1/tasks/%s/retry", esc);
    struct reply r;
    reply_init(&r);
    int rc = http_call(c, "POST", path, body, len, NULL, REQUEST_TIMEOUT_MS, &r);
    if (rc != 0 || r.status < 200 || r.status >= 300)
        rc = finish(c, rc, &r);
    else
        rc = wait_task(c, c->arg);
    reply_clear(&r);
    free(path);
    free(esc);
    free(body);
    return rc;
}

/* What a list sends, option by option. Those in TASK_FILTERS are also the
 * members of a bulk cancel's or replay's body, under the same names. */
static const struct {
    enum opt_id opt;
    const char *param;
} list_params[] = {
    {OPT_STATUS, "status"},
    {OPT_QUEUE, "queue"},
    {OPT_CREATED_AFTER, "createdAfter"},
    {OPT_CREATED_BEFORE, "createdBefore"},
    {OPT_ORDER, "order"},
    {OPT_LIMIT, "limit"},
};

/* The query string of a list, without cursor. */
static char *list_query(struct cli *c)
{
    struct buf q;
    buf_init(&q, UNCAPPED);
    buf_appendf(&q, "/v1/tasks?");
    for (size_t i = 0; i < ARRAY_LEN(list_params); i++) {
        const char *v = c->val[list_params[i].opt];
        if (list_params[i].opt == OPT_LIMIT && !v && c->set[OPT_ALL]) v = "200";
        if (!v) continue;
        char *esc = url_escape(c, v);
        buf_appendf(&q, "%s=%s&", list_params[i].param, esc);
        free(esc);
    }
    q.data[--q.len] = '\0'; /* the last '&', or the '?' when there is no parameter */
    return buf_steal(&q, NULL);
}

/* The body of a bulk cancel or replay: the filters given, as a list sends
 * them, but --status as an array of the names between its commas (a body
 * takes several statuses only as an array). Empty names are skipped, as the
 * daemon skips them in a query string, so "--status ''" is an empty array,
 * which it refuses rather than reading as every status. Returns a malloc'd
 * JSON object text, or NULL when no filter was given. */
static char *filter_body(const struct cli *c, size_t *len_out)
{
    struct jobj o = {.any = false};
    buf_init(&o.b, UNCAPPED);
    for (size_t i = 0; i < ARRAY_LEN(list_params); i++) {
        enum opt_id opt = list_params[i].opt;
        const char *v = c->val[opt];
        if (!v || !(TASK_FILTERS & BIT(opt))) continue;
        if (opt != OPT_STATUS) {
            jobj_string(&o, list_params[i].param, v);
            continue;
        }
        jobj_key(&o, list_params[i].param);
        buf_append(&o.b, "[", 1);
        bool first = true;
        for (const char *p = v; *p;) {
            size_t n = strcspn(p, ",");
            if (n > 0) {
                char *name = xstrndup(p, n);
                if (!first) buf_append(&o.b, ",", 1);
                json_append_string(&o.b, name);
                free(name);
                first = false;
            }
            p += n + (p[n] == ',');
        }
        buf_append(&o.b, "]", 1);
    }
    if (!o.any) {
        buf_free(&o.b);
        return NULL;
    }
    buf_append(&o.b, "}", 1);
    return buf_steal(&o.b, len_out);
}

/* Where a top-level member of a (valid) JSON object is written, or NULL. */
static const char *raw_member(const char *json, size_t len, const char *name, size_t *n)
{
    const char *end = json + len, *p = util_json_first_member(json, end), *k, *v;
    size_t klen, name_len = strlen(name);
    while (util_json_next_member(&p, end, &k, &klen, &v, n))
        if (klen == name_len && !memcmp(k, name, name_len)) return v;
    return NULL;
}

/* --all: every page, printed as one {"<key>": [...], "nextCursor": null}
 * as the pages arrive, so memory holds one page at a time. key: "tasks" or
 * "queues", the member that holds a page's items. */
static int list_all(struct cli *c, const char *query, const char *key)
{
    char *cursor = c->set[OPT_CURSOR] ? xstrdup(c->val[OPT_CURSOR]) : NULL;
    char *last = cursor ? xstrdup(cursor) : NULL;
    bool started = false, first_task = true;
    int rc = CLI_EXIT_OK;
    for (;;) {
        char *esc = cursor ? url_escape(c, cursor) : NULL;
        char *path = esc ? xasprintf("%s%scursor=%s", query, strchr(query, '?') ? "&" : "?", esc)
                         : xstrdup(query);
        struct reply r;
        reply_init(&r);
        int call = http_call(c, "GET", path, NULL, 0, NULL, REQUEST_TIMEOUT_MS, &r);
        free(path);
        free(esc);
        free(cursor);
        cursor = NULL;
        if (call != 0 || r.status != 200) {
            if (!started) {
                rc = finish(c, call, &r);
            } else { /* stdout holds an unfinished list: leave it so, to show it is cut */
                bool api = false;
                if (call != 0)
                    report_unreachable(c, &r);
                else
                    api = report_http_error(c, &r);
                rc = api && r.status >= 400 && r.status < 500 ? CLI_EXIT_API : CLI_EXIT_SERVER;
            }
            reply_clear(&r);
            break;
        }
        cJSON *doc = cJSON_ParseWithLength(r.body.data, r.body.len);
        const cJSON *items = cJSON_GetObjectItemCaseSensitive(doc, key);
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(doc, "nextCursor");
        size_t raw_len = 0;
        const char *raw = cJSON_IsArray(items) ? raw_member(r.body.data, r.body.len, key, &raw_len) : NULL;
        if (!raw || raw[0] != '[') {
            fprintf(stderr, "asyncqueue: the answer from %s is not a %s list\n", c->base, c->noun);
            cJSON_Delete(doc);
            reply_clear(&r);
            rc = CLI_EXIT_SERVER;
            break;
        }
        if (!started) printf("{\"%s\":[", key);
        started = true;
        /* Each item as the daemon wrote it: printed again from cJSON, numbers
         * in payloads and results changed (9007199254740993 became
         * 9.00719925474099e+15, 1.50 became 1.5). */
        const char *end = raw + raw_len, *p = util_json_skip_ws(raw + 1, end);
        while (p < end && *p != ']') {
            const char *vend = util_json_skip_value(p, end);
            if (!first_task) fputc(',', stdout);
            fwrite(p, 1, (size_t)(vend - p), stdout);
            first_task = false;
            p = util_json_skip_ws(vend, end);
            if (p < end && *p == ',') p = util_json_skip_ws(p + 1, end);
        }
        if (cJSON_IsString(next)) cursor = xstrdup(next->valuestring);
        cJSON_Delete(doc);
        reply_clear(&r);
        /* The daemon's cursors only move on; the same one twice would loop. */
        if (cursor && last && !strcmp(cursor, last)) {
            fprintf(stderr, "asyncqueue: %s answered the same nextCursor twice; the list stops\n",
                    c->base);
            rc = CLI_EXIT_SERVER;
            break;
        }
        free(last);
        last = cursor ? xstrdup(cursor) : NULL;
        if (!cursor) {
            fputs("],\"nextCursor\":null}", stdout);
            if (print_body("\n", 1)) rc = CLI_EXIT_SERVER;
            break;
        }
    }
    free(cursor);
    free(last);
    return rc;
}

/* One page of a list: query (a path with its query string, if any) and
 * --cursor when given. */
static int one_page(struct cli *c, const char *query)
{
    if (!c->set[OPT_CURSOR]) return simple(c, "GET", query, NULL, 0);
    char *esc = url_escape(c, c->val[OPT_CURSOR]);
    char *path = xasprintf("%s%scursor=%s", query, strchr(query, '?') ? "&" : "?", esc);
    free(esc);
    int rc = simple(c, "GET", path, NULL, 0);
    free(path);
    return rc;
}

static int cmd_task_list(struct cli *c)
{
    char *query = list_query(c);
    int rc;
    if (c->set[OPT_ALL]) {
        rc = list_all(c, query, "tasks");
    } else {
        rc = one_page(c, query);
    }
    free(query);
    return rc;
}

/* cancel-many, retry-many: the filters POSTed to path. The daemon refuses a
 * body without any (400 missing_field): it wants "every task" said out loud,
 * as a status. So does this, before anything is sent, and says how. */
static int bulk(struct cli *c, const char *path, const char *every, const char *statuses)
{
    size_t len = 0;
    char *body = filter_body(c, &len);
    if (!body)
        return usage_error(c, "task %s needs a filter (--status, --queue, --created-after, "
                           "--created-before); to %s, say so: --status %s", c->verb, every,
                           statuses);
    int rc = simple(c, "POST", path, body, len);
    free(body);
    return rc;
}

static int cmd_task_cancel_many(struct cli *c)
{
    return bulk(c, "/v1/tasks/cancel", "cancel every queued and running task", "queued,running");
}

static int cmd_task_retry_many(struct cli *c)
{
    return bulk(c, "/v1/tasks/retry", "replay every failed task", "failed");
}

/* A list cut by name (GET /v1/queues, /v1/schedules; key: the member that
 * holds a page's items): every item, over as many pages as it takes (the
 * daemon answers at most 1000 a page); with --limit or --cursor and no
 * --all, the one page. */
static int name_list(struct cli *c, const char *collection, const char *key)
{
    char *esc = c->set[OPT_LIMIT] ? url_escape(c, c->val[OPT_LIMIT]) : NULL;
    char *query = esc ? xasprintf("%s?limit=%s", collection, esc) : xstrdup(collection);
    free(esc);
    int rc;
    if (c->set[OPT_ALL] || !(c->set[OPT_LIMIT] || c->set[OPT_CURSOR])) {
        rc = list_all(c, query, key);
    } else {
        rc = one_page(c, query);
    }
    free(query);
    return rc;
}

/* One request about the item c->arg names: collection/NAME[/action]. */
static int name_call(struct cli *c, const char *collection, const char *method,
                     const char *action, const char *body, size_t len)
{
    char *esc = url_escape(c, c->arg);
    char *path =
        xasprintf("%s/%s%s%s", collection, esc, action ? "/" : "", action ? action : "");
    int rc = simple(c, method, path, body, len);
    free(path);
    free(esc);
    return rc;
}

static int cmd_queue_list(struct cli *c)
{
    return name_list(c, "/v1/queues", "queues");
}

static int queue_call(struct cli *c, const char *method, const char *action, const char *body,
                      size_t len)
{
    return name_call(c, "/v1/queues", method, action, body, len);
}

static int cmd_queue_get(struct cli *c)
{
    return queue_call(c, "GET", NULL, NULL, 0);
}

static int cmd_queue_delete(struct cli *c)
{
    return queue_call(c, "DELETE", NULL, NULL, 0);
}

static int cmd_queue_pause(struct cli *c)
{
    return queue_call(c, "POST", "pause", NULL, 0);
}

static int cmd_queue_resume(struct cli *c)
{
    return queue_call(c, "POST", "resume", NULL, 0);
}

static int cmd_queue_set(struct cli *c)
{
    struct jobj o = {.any = false};
    buf_init(&o.b, UNCAPPED);
    int rc = CLI_EXIT_USAGE;
    if (add_number(c, &o, OPT_MAX_CONCURRENCY, "maxConcurrency") ||
        add_number(c, &o, OPT_RATE, "ratePerSecond") || add_number(c, &o, OPT_BURST, "burst") ||
        add_number(c, &o, OPT_DEFAULT_RETRIES, "defaultRetries") ||
        add_number(c, &o, OPT_DEFAULT_TIMEOUT, "defaultTimeout"))
        goto out;
    if (c->set[OPT_PAUSED]) jobj_raw(&o, "paused", "true", 4);
    if (!o.any) buf_append(&o.b, "{", 1);
    buf_append(&o.b, "}", 1);
    rc = queue_call(c, "PUT", NULL, o.b.data, o.b.len);
out:
    buf_free(&o.b);
    return rc;
}

/* --task FILE: the template as written ("-": standard input), checked here
 * only to be one JSON object (the daemon checks its fields, naming them
 * task.<field>). Returns a malloc'd text (caller frees), or NULL after a
 * usage message. */
static char *schedule_task_file(const struct cli *c, size_t *len_out)
{
    const char *path = c->val[OPT_TASK];
    char why[512];
    size_t len = 0;
    char *text = read_file(path, &len, why, sizeof why);
    if (!text) {
        usage_error(c, "--task %s: %s", path, why);
        return NULL;
    }
    size_t i = 0;
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) i = 3; /* a byte order mark */
    while (i < len && isspace((unsigned char)text[i]))
        i++;
    const char *problem = NULL;
    if (memchr(text, '\0', len)) {
        problem = "contains a NUL byte";
    } else if (!util_utf8_valid(text + i, len - i)) {
        problem = "is not valid UTF-8";
    } else {
        const char *end = NULL;
        cJSON *v = cJSON_ParseWithLengthOpts(text + i, len - i, &end, false);
        if (!v) {
            problem = "is not valid JSON";
        } else if (!cJSON_IsObject(v)) {
            problem = "must hold a JSON object, the task as 'task create' sends it "
                      "(e.g. {\"callbackUrl\": \"https://...\"})";
        } else {
            while (end < text + len && isspace((unsigned char)*end))
                end++;
            if (end != text + len) problem = "has more after the JSON object";
        }
        cJSON_Delete(v);
    }
    if (problem) {
        usage_error(c, "--task %s %s", path, problem);
        free(text);
        return NULL;
    }
    size_t n = len - i;
    while (n && isspace((unsigned char)text[i + n - 1]))
        n--;
    char *task = xstrndup(text + i, n);
    free(text);
    *len_out = n;
    return task;
}

/* put NAME --cron EXPR, the template from --task FILE or from the flags of
 * task create, [--paused]: the whole schedule, as PUT replaces it. */
static int cmd_schedule_put(struct cli *c)
{
    if (!c->set[OPT_CRON]) return usage_error(c, "schedule put needs --cron EXPR");
    bool flags = false;
    for (int k = 0; k < OPT_COUNT; k++)
        if (c->set[k] && (SCHEDULE_TASK_FIELDS & BIT(k))) flags = true;
    if (c->set[OPT_TASK] && flags)
        return usage_error(c, "--task FILE is the whole template: give the task's fields in it, "
                           "not also as --url, --payload ...");
    if (!c->set[OPT_TASK] && !c->set[OPT_URL])
        return usage_error(c, "schedule put needs the task it makes: --task FILE (- reads "
                           "standard input), or --url URL and the other fields of 'task create'");
    size_t task_len = 0;
    bool failed = false;
    char *task =
        c->set[OPT_TASK] ? schedule_task_file(c, &task_len) : task_body(c, &task_len, &failed);
    if (!task) return CLI_EXIT_USAGE; /* --task or --url makes a template, so NULL means failed */
    struct jobj o = {.any = false};
    buf_init(&o.b, UNCAPPED);
    jobj_string(&o, "cron", c->val[OPT_CRON]);
    if (c->set[OPT_TIMEZONE]) jobj_string(&o, "timezone", c->val[OPT_TIMEZONE]);
    jobj_raw(&o, "task", task, task_len);
    if (c->set[OPT_PAUSED]) jobj_raw(&o, "paused", "true", 4);
    buf_append(&o.b, "}", 1);
    free(task);
    int rc = name_call(c, "/v1/schedules", "PUT", NULL, o.b.data, o.b.len);
    buf_free(&o.b);
    return rc;
}

static int cmd_schedule_list(struct cli *c)
{
    return name_list(c, "/v1/schedules", "schedules");
}

static int cmd_schedule_get(struct cli *c)
{
    return name_call(c, "/v1/schedules", "GET", NULL, NULL, 0);
}

static int cmd_schedule_delete(struct cli *c)
{
    return name_call(c, "/v1/schedules", "DELETE", NULL, NULL, 0);
}

static int cmd_schedule_pause(struct cli *c)
{
    return name_call(c, "/v1/schedules", "POST", "pause", NULL, 0);
}

static int cmd_schedule_resume(struct cli *c)
{
    return name_call(c, "/v1/schedules", "POST", "resume", NULL, 0);
}

/* run NAME: the task made now, printed as task create prints it (202). */
static int cmd_schedule_run(struct cli *c)
{
    return name_call(c, "/v1/schedules", "POST", "run", NULL, 0);
}

static const struct command commands[] = {
    {"task", "create", NULL, TASK_FIELDS | BIT(OPT_IDEMPOTENCY_KEY) | BIT(OPT_WAIT),
     cmd_task_create},
    {"task", "create-many", "FILE", 0, cmd_task_create_many},
    {"task", "get", "ID", BIT(OPT_WAIT), cmd_task_get},
    {"task", "list", NULL, LIST_FILTERS, cmd_task_list},
    {"task", "cancel", "ID", 0, cmd_task_cancel},
    {"task", "cancel-many", NULL, TASK_FILTERS, cmd_task_cancel_many},
    {"task", "retry", "ID", TASK_FIELDS | BIT(OPT_WAIT), cmd_task_retry},
    {"task", "retry-many", NULL, TASK_FILTERS, cmd_task_retry_many},
    {"task", "attempts", "ID", 0, cmd_task_attempts},
    {"queue", "list", NULL, QUEUE_PAGES, cmd_queue_list},
    {"queue", "get", "NAME", 0, cmd_queue_get},
    {"queue", "set", "NAME", QUEUE_SETTINGS, cmd_queue_set},
    {"queue", "delete", "NAME", 0, cmd_queue_delete},
    {"queue", "pause", "NAME", 0, cmd_queue_pause},
    {"queue", "resume", "NAME", 0, cmd_queue_resume},
    {"schedule", "put", "NAME", SCHEDULE_PUT, cmd_schedule_put},
    {"schedule", "list", NULL, QUEUE_PAGES, cmd_schedule_list},
    {"schedule", "get", "NAME", 0, cmd_schedule_get},
    {"schedule", "delete", "NAME", 0, cmd_schedule_delete},
    {"schedule", "pause", "NAME", 0, cmd_schedule_pause},
    {"schedule", "resume", "NAME", 0, cmd_schedule_resume},
    {"schedule", "run", "NAME", 0, cmd_schedule_run},
};

/* ---- the command line ---- */

/* True when s is a number of seconds for --wait (so "--wait 30" takes it,
 * while "--wait ID" leaves ID alone: an id is never a bare number). */
static bool wait_seconds(const char *s, double *out)
{
    if (!json_number_valid(s) || s[0] == '-') return false;
    *out = strtod(s, NULL);
    if (*out > WAIT_MAX_S) *out = WAIT_MAX_S; /* at most: 31 years is as good as forever */
    return isfinite(*out);
}

static int parse_args(struct cli *c, int argc, char **argv)
{
    bool options_done = false;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!options_done && !strcmp(a, "--")) {
            options_done = true;
            continue;
        }
        if (!options_done && (!strcmp(a, "-h"))) {
            c->set[OPT_HELP] = true;
            continue;
        }
        /* An id or a name never starts with '-': "-x" is a mistyped option
         * (a value that does, such as "-1" for --delay, follows its option). */
        if (!options_done && a[0] == '-' && a[1] && a[1] != '-')
            return usage_error(c, "unknown option '%s' (options are --name; '--' ends them)", a);
        if (options_done || strncmp(a, "--", 2) != 0) {
            if (!c->verb)
                c->verb = a;
            else if (!c->arg)
                c->arg = a;
            else
                return usage_error(c, "unexpected argument '%s'", a);
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        int id = -1;
        for (int k = 0; k < OPT_COUNT && id < 0; k++)
            if (strlen(opt_defs[k].name) == len && !strncmp(opt_defs[k].name, name, len)) id = k;
        if (id < 0) return usage_error(c, "unknown option '%.*s'", (int)len + 2, a);
        switch (opt_defs[id].kind) {
        case ARG_FLAG:
            if (eq) return usage_error(c, "--%s takes no value", opt_defs[id].name);
            break;
        case ARG_WAIT:
            c->wait_s = -1;
            if (eq) {
                if (!wait_seconds(eq + 1, &c->wait_s))
                    return usage_error(c, "--wait takes a number of seconds, not '%s'", eq + 1);
            } else if (i + 1 < argc && wait_seconds(argv[i + 1], &c->wait_s)) {
                i++;
            }
            break;
        case ARG_VALUE:
        case ARG_REPEAT: {
            const char *v = eq ? eq + 1 : NULL;
            if (!v) {
                if (i + 1 >= argc) return usage_error(c, "--%s needs a value", opt_defs[id].name);
                v = argv[++i];
            }
            if (opt_defs[id].kind == ARG_REPEAT) {
                c->headers = xrealloc(c->headers, (c->n_headers + 1) * sizeof *c->headers);
                c->headers[c->n_headers++] = v;
            } else if (c->set[id]) {
                return usage_error(c, "--%s is given twice", opt_defs[id].name);
            }
            c->val[id] = v;
            break;
        }
        }
        c->set[id] = true;
    }
    return CLI_EXIT_OK;
}

static bool has_control(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return true;
    return false;
}

/* The server URL and the key, from flags or the environment. */
static int resolve_connection(struct cli *c)
{
    const char *server = c->val[OPT_SERVER], *from = "--server";
    if (server && !*server) return usage_error(c, "--server needs a URL");
    if (!server && (server = getenv("ASYNCQUEUE_URL")) && *server) from = "ASYNCQUEUE_URL";
    if (!server || !*server) server = DEFAULT_SERVER;
    if (strncasecmp(server, "http://", 7) != 0 && strncasecmp(server, "https://", 8) != 0)
        return usage_error(c, "the server URL (%s) must start with http:// or https://, not '%s'",
                           from, server);
    /* Refused here, with nothing sent, rather than as a failed request. */
    CURLU *u = curl_url();
    char *host = NULL;
    bool ok = u && curl_url_set(u, CURLUPART_URL, server, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host && *host;
    curl_free(host);
    curl_url_cleanup(u);
    if (!ok) return usage_error(c, "the server URL (%s) '%s' is not a URL with a host and a valid port", from, server);
    c->base = xstrdup(server);
    size_t n = strlen(c->base);
    while (n && c->base[n - 1] == '/')
        c->base[--n] = '\0';

    const char *ca = c->val[OPT_CACERT], *ca_from = "--cacert";
    if (!ca && (ca = getenv("ASYNCQUEUE_CACERT")) && *ca) ca_from = "ASYNCQUEUE_CACERT";
    if (ca && *ca) {
        /* Said here, not as a TLS failure of the first request (exit 5). */
        FILE *f = fopen(ca, "r");
        if (!f) return usage_error(c, "%s %s: %s", ca_from, ca, strerror(errno));
        fclose(f);
        c->cacert = ca;
    } else if (c->val[OPT_CACERT]) {
        return usage_error(c, "--cacert needs a file of PEM certificates");
    }

    const char *key = c->val[OPT_API_KEY];
    if (!key) key = getenv("ASYNCQUEUE_API_KEY");
    if (has_control(key))
        return usage_error(c, "the API key (%s) must not hold control characters (a line break "
                           "would add a header)", c->val[OPT_API_KEY] ? "--api-key" : "ASYNCQUEUE_API_KEY");
    /* The daemon's setting may list several keys (rotation): use the first
     * that is a key, not the sha256: digest of one (the daemon's alone). */
    bool digests = false;
    for (const char *k = key; k && *k && !c->auth_header;) {
        while (isspace((unsigned char)*k))
            k++;
        size_t len = strcspn(k, ",");
        size_t end = len;
        while (end && isspace((unsigned char)k[end - 1]))
            end--;
        if (end > 7 && !strncmp(k, "sha256:", 7)) digests = true;
        else if (end) c->auth_header = xasprintf("Authorization: Bearer %.*s", (int)end, k);
        k += len + (k[len] == ',');
    }
    if (digests && !c->auth_header)
        return usage_error(c, "the API key (%s) lists only sha256: digests, which the daemon "
                           "checks keys against; give the key itself", c->val[OPT_API_KEY] ?
                           "--api-key" : "ASYNCQUEUE_API_KEY");
    return CLI_EXIT_OK;
}

int cli_main(int argc, char **argv)
{
    /* A closed output pipe: the write fails (exit 5), not the process. */
    signal(SIGPIPE, SIG_IGN);
    struct cli c;
    memset(&c, 0, sizeof c);
    c.noun = argv[1];
    int rc = parse_args(&c, argc, argv);
    if (rc != CLI_EXIT_OK) goto out;
    if (c.set[OPT_HELP]) {
        print_usage(c.noun, stdout);
        if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "asyncqueue: cannot write to standard output: %s\n", strerror(errno));
            rc = CLI_EXIT_SERVER;
        }
        goto out;
    }
    if (!c.verb) {
        print_usage(c.noun, stderr);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    const struct command *cmd = NULL;
    for (size_t i = 0; i < ARRAY_LEN(commands) && !cmd; i++)
        if (!strcmp(commands[i].noun, c.noun) && !strcmp(commands[i].verb, c.verb))
            cmd = &commands[i];
    if (!cmd) {
        rc = usage_error(&c, "unknown command '%s %s'", c.noun, c.verb);
        goto out;
    }
    uint64_t allowed = cmd->opts | BIT(OPT_SERVER) | BIT(OPT_API_KEY) | BIT(OPT_CACERT) | BIT(OPT_HELP);
    for (int k = 0; k < OPT_COUNT; k++) {
        if (c.set[k] && !(allowed & BIT(k))) {
            rc = usage_error(&c, "--%s is not an option of '%s %s'", opt_defs[k].name, c.noun,
                             c.verb);
            goto out;
        }
    }
    if (cmd->arg_name && !c.arg) {
        rc = usage_error(&c, "'%s %s' needs %s", c.noun, c.verb, cmd->arg_name);
        goto out;
    }
    if (!cmd->arg_name && c.arg) {
        rc = usage_error(&c, "unexpected argument '%s'", c.arg);
        goto out;
    }
    if (cmd->arg_name && !*c.arg) {
        rc = usage_error(&c, "%s must not be empty", cmd->arg_name);
        goto out;
    }
    /* "." and ".." are path steps to libcurl, not names: "task retry ." went
     * out as POST /v1/tasks/retry, the bulk replay of every failed task. */
    if (cmd->arg_name && (!strcmp(c.arg, ".") || !strcmp(c.arg, ".."))) {
        rc = usage_error(&c, "%s must not be '%s'", cmd->arg_name, c.arg);
        goto out;
    }
    /* A page size is the client's to get right: said here (exit 2), not as
     * the API's refusal of a query (exit 4). The API bounds it above. */
    int64_t page_size;
    if (c.set[OPT_LIMIT] && !util_whole_number(c.val[OPT_LIMIT], 1, INT32_MAX, &page_size)) {
        rc = usage_error(&c, "--limit must be a whole number of items a page (1 or more), not '%s'",
                         c.val[OPT_LIMIT]);
        goto out;
    }
    /* A value that goes out as a header line: a line break would add headers. */
    if (has_control(c.val[OPT_IDEMPOTENCY_KEY])) {
        rc = usage_error(&c, "--idempotency-key must not hold control characters (a line break "
                         "would add a header)");
        goto out;
    }
    rc = resolve_connection(&c);
    if (rc != CLI_EXIT_OK) goto out;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(c.curl = curl_easy_init())) {
        fprintf(stderr, "asyncqueue: libcurl failed to initialise\n");
        rc = CLI_EXIT_SERVER;
        goto out;
    }
    rc = cmd->run(&c);
    curl_easy_cleanup(c.curl);
    curl_global_cleanup();
out:
    free(c.headers);
    free(c.base);
    free(c.auth_header);
    return rc;
}
