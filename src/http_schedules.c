/*
 * http_schedules: schedules (recurring tasks). A schedule keeps a task's
 * template (the body of POST /v1/tasks, as written) and a cron expression
 * (cron.h) read in its time zone (tz.h; UTC by default); each time the
 * expression fires, the template is made into a task, as a create would
 * make it then. The routes (put, list, show,
 * delete, pause, resume, run now) and the timer thread that runs the due
 * schedules.
 *
 * DESIGN
 * - A run is one write: the task's insert and the schedule's move to its
 *   next time commit together, so a run happens once per time however the
 *   daemon stops (kill -9 included): before the commit neither happened and
 *   the schedule is still due, after it both did.
 * - The timer thread only waits: for the earliest next run it knows of,
 *   then submits the run op to the writer and waits for its commit. The op
 *   reads which schedules are due inside its transaction, so a schedule
 *   changed or deleted meanwhile runs as it then is (or not at all).
 * - Times missed while the daemon was stopped (or the schedule's run was
 *   late for any reason) make one run, at once; the next time is the first
 *   after that run, so a long stop does not make a burst of tasks.
 * - The wall clock is looked at least every TIMER_LOOK_MS. A step forward
 *   makes the times it passed due (one run, as a stop does); a step back
 *   moves every next time by the step, and a time that is then not one of
 *   its cron's is moved on to the next that is, without a run.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"
#include "http_internal.h"
#include "jsonw.h"
#include "log.h"
#include "metrics.h"
#include "tz.h"

#define RUN_MAX 64            /* schedules one run op takes; more wait for the next op */
#define TIMER_LOOK_MS 1000    /* the longest wait between looks at the wall clock */
#define RETRY_AFTER_FAIL_MS 1000
#define CLOCK_STEP_BACK_MS 1000 /* the wall clock going back more than this, against the monotonic one */
#define STEP_PAGE 256         /* schedules read at a time when a step back moves them all */
#define SCHEDULES_DEFAULT_LIMIT 1000
#define SCHEDULES_MAX_LIMIT 1000
#define PAGE_TEMPLATE_BYTES (4 << 20) /* a page stops after this much of templates */
#define ZONES_MAX 1024        /* time zones kept loaded (the IANA database has about 600) */

struct sched_req {
    struct schedule s;
    bool created;           /* put: a new schedule */
    bool paused;            /* pause, resume */
    struct task *made;      /* run: the task made */
};

void http_sched_free(struct sched_req *q)
{
    if (!q) return;
    schedule_clear(&q->s);
    task_free(q->made);
    free(q);
}

static const struct tz *zone(struct schedule_timer *t, const char *name, char err[TZ_ERR_LEN]);

/* The next time s's cron fires after now_ms in s's time zone, or 0 when it
 * does not (or the zone is gone from the system's database: logged). */
static int64_t next_time(struct schedule_timer *t, const struct schedule *s, int64_t now_ms)
{
    struct cron c;
    if (cron_parse(s->cron, &c, NULL)) return 0;
    char err[TZ_ERR_LEN];
    const struct tz *z = zone(t, s->timezone, err);
    if (!z) {
        log_msg(LOG_WARN, "schedule.zone_failed", "name=%s error=\"%s\"", s->name, err);
        return 0;
    }
    int64_t next = tz_cron_next(&c, z, now_ms);
    return next > 0 ? next : 0;
}

/* One run of s, inside tx: the task made, or why none was; with advance, s
 * moves to its next time (the timer's runs; "run now" leaves it). *made
 * receives the task when not NULL (else it is freed); *err why none was. */
static int run_one(struct writer_txn *tx, struct http_api *api, const struct schedule *s, bool advance,
                   struct task **made, struct api_error *err)
{
    struct task *t = NULL;
    int64_t now = writer_txn_now(tx);
    if (advance) {
        /* A due time that is not one of its cron's (a clock step back moved
         * it, or the zone's rules changed since it was computed) makes no
         * task: the schedule moves to its first time from there. */
        int64_t at = next_time(api->timer, s, s->next_run_at_ms - 1);
        if (at != s->next_run_at_ms) {
            log_batch_add(writer_log(api->writer), LOG_INFO, "schedule.moved", "name=%s tenant=%s",
                          s->name, s->tenant[0] ? s->tenant : "-");
            return store_schedule_set_next(writer_txn_conn(tx), s->tenant, s->name, at);
        }
    }
    int rc = http_task_from_schedule(tx, api, s, &t, err);
    if (rc != STORE_OK) return rc;
    int64_t next = advance ? next_time(api->timer, s, now) : 0;
    rc = store_schedule_ran(writer_txn_conn(tx), s->tenant, s->name, now, t ? t->id : NULL,
                            t ? NULL : err->message, advance, next);
    if (rc == STORE_OK && t)
        log_batch_add(writer_log(api->writer), LOG_INFO, "schedule.ran", "name=%s tenant=%s task=%s",
                      s->name, s->tenant[0] ? s->tenant : "-", t->id);
    else if (rc == STORE_OK) /* once, not at every run of an every-second schedule */
        log_batch_add(writer_log(api->writer),
                      s->last_error && !strcmp(s->last_error, err->message) ? LOG_DEBUG : LOG_WARN,
                      "schedule.skipped", "name=%s tenant=%s code=%s", s->name,
                      s->tenant[0] ? s->tenant : "-", err->code);
    if (rc == STORE_OK && made) *made = t;
    else task_free(t);
    return rc;
}

/* ---- the timer ---- */

struct schedule_timer {
    struct http_api *api;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;    /* on CLOCK_MONOTONIC */
    int64_t due_ms;         /* the earliest next run known, INT64_MAX: none */
    int64_t kicked_ms;      /* the earliest kick while an op runs */
    bool stop, in_op;
    int64_t clock_offset_ms;  /* wall minus monotonic at the last look */
    int64_t step_back_ms;     /* a step back of the wall clock not yet applied (< 0) */
    struct writer_op op;
    int64_t op_next_ms;     /* what the op's transaction found */
    int64_t op_step_ms;     /* the step back the op applies (set before it is submitted) */
    int op_made, op_skipped; /* the op's runs, counted once it is committed */
    /* Time zones loaded so far, by name: immutable, shared by every thread. */
    pthread_mutex_t zones_lock;
    struct tz *zones[ZONES_MAX];
    size_t n_zones;
};

/* The zone called name ("" is UTC), loaded once; NULL with err set when
 * there is none of that name. */
static const struct tz *zone(struct schedule_timer *t, const char *name, char err[TZ_ERR_LEN])
{
    if (!*name) name = "UTC";
    pthread_mutex_lock(&t->zones_lock);
    struct tz *z = NULL;
    for (size_t i = 0; i < t->n_zones && !z; i++)
        if (!strcmp(tz_name(t->zones[i]), name)) z = t->zones[i];
    if (!z && (z = tz_load(NULL, name, err))) {
        if (t->n_zones < ZONES_MAX) {
            t->zones[t->n_zones++] = z;
        } else { /* more names than zones exist: aliases; answer, keep none */
            tz_free(z);
            snprintf(err, TZ_ERR_LEN, "too many time zones in use (%d)", ZONES_MAX);
            z = NULL;
        }
    }
    pthread_mutex_unlock(&t->zones_lock);
    return z;
}

/* The wall clock went back by -step_ms: every next time was computed with
 * the clock before, and would come only when the new clock reaches it (an
 * hour's step back silenced an every-minute schedule for the hour). Each
 * moves with the step to the first time of its cron from there: where it
 * was, on the new clock, when that is one of its times. */
static int step_back(struct writer_txn *tx, struct schedule_timer *t, int64_t step_ms)
{
    struct store_conn *c = writer_txn_conn(tx);
    char tenant[sizeof ((struct schedule *)0)->tenant] = "", name[sizeof tenant] = "";
    int moved = 0, rc = STORE_OK;
    for (;;) {
        struct schedule *page = NULL;
        size_t n = 0;
        rc = store_schedules_waiting(c, tenant, name, STEP_PAGE, &page, &n);
        for (size_t i = 0; i < n && rc == STORE_OK; i++) {
            rc = store_schedule_set_next(c, page[i].tenant, page[i].name,
                                         next_time(t, &page[i], page[i].next_run_at_ms + step_ms - 1));
            moved++;
        }
        if (n) {
            util_strcopy(tenant, sizeof tenant, page[n - 1].tenant);
            util_strcopy(name, sizeof name, page[n - 1].name);
        }
        for (size_t i = 0; i < n; i++) schedule_clear(&page[i]);
        free(page);
        if (rc != STORE_OK || n < STEP_PAGE) break;
    }
    if (rc == STORE_OK)
        log_batch_add(writer_log(t->api->writer), LOG_WARN, "schedules.clock_stepped", "ms=%lld moved=%d",
                      (long long)step_ms, moved);
    return rc;
}

static int run_apply(struct writer_txn *tx, void *arg)
{
    struct schedule_timer *t = arg;
    struct store_conn *c = writer_txn_conn(tx);
    struct schedule *due = NULL;
    size_t n = 0;
    int rc = t->op_step_ms ? step_back(tx, t, t->op_step_ms) : STORE_OK;
    if (rc == STORE_OK) rc = store_schedules_due(c, writer_txn_now(tx), RUN_MAX, &due, &n);
    t->op_made = t->op_skipped = 0;
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        struct api_error e = {0};
        struct task *made = NULL;
        rc = run_one(tx, t->api, &due[i], true, &made, &e);
        if (made) t->op_made++;
        else if (rc == STORE_OK && e.code) t->op_skipped++;
        task_free(made);
    }
    for (size_t i = 0; i < n; i++) schedule_clear(&due[i]);
    free(due);
    if (rc == STORE_OK) rc = store_schedule_next_due(c, &t->op_next_ms);
    return rc;
}

static void run_done(void *arg, int rc)
{
    struct schedule_timer *t = arg;
    pthread_mutex_lock(&t->lock);
    if (rc != STORE_OK) t->step_back_ms += t->op_step_ms; /* rolled back: again next time */
    else metrics_schedule_runs(t->op_made, t->op_skipped);
    t->op_step_ms = 0;
    t->due_ms = rc == STORE_OK ? t->op_next_ms : util_now_ms() + RETRY_AFTER_FAIL_MS;
    if (t->kicked_ms < t->due_ms) t->due_ms = t->kicked_ms;
    t->kicked_ms = INT64_MAX;
    t->in_op = false;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

static void *timer_main(void *arg)
{
    struct schedule_timer *t = arg;
    pthread_mutex_lock(&t->lock);
    for (;;) {
        if (t->in_op) {
            pthread_cond_wait(&t->cond, &t->lock);
            continue;
        }
        if (t->stop) break;
        int64_t now = util_now_ms();
        int64_t offset = now - util_mono_ms();
        if (offset < t->clock_offset_ms - CLOCK_STEP_BACK_MS) t->step_back_ms += offset - t->clock_offset_ms;
        t->clock_offset_ms = offset;
        if (t->due_ms <= now || t->step_back_ms) {
            t->op_step_ms = t->step_back_ms;
            t->step_back_ms = 0;
            t->in_op = true;
            pthread_mutex_unlock(&t->lock);
            writer_submit(t->api->writer, &t->op);
            pthread_mutex_lock(&t->lock);
            continue;
        }
        /* At least every TIMER_LOOK_MS, schedules due or not: a step back
         * seen late would move next times computed after it. */
        int64_t ms = t->due_ms - now < TIMER_LOOK_MS ? t->due_ms - now : TIMER_LOOK_MS;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + ms * 1000000;
        ts.tv_sec += (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&t->cond, &t->lock, &ts);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

struct schedule_timer *schedule_timer_start(struct http_api *api)
{
    struct schedule_timer *t = xcalloc(1, sizeof *t);
    t->api = api;
    t->kicked_ms = INT64_MAX;
    t->due_ms = INT64_MAX;
    t->clock_offset_ms = util_now_ms() - util_mono_ms();
    struct store_conn *c = store_conn_acquire(api->store);
    if (!c || store_schedule_next_due(c, &t->due_ms) != STORE_OK) {
        /* Looked at again in a second: the first run op reads the truth. */
        log_msg(LOG_WARN, "schedules.read_failed", "error=\"%s\"",
                c ? store_conn_error(c) : "no database connection");
        t->due_ms = util_now_ms() + RETRY_AFTER_FAIL_MS;
    }
    if (c) store_conn_release(c);
    t->op.apply = run_apply;
    t->op.done = run_done;
    t->op.done_anywhere = true; /* it only signals the timer */
    t->op.weight = RUN_MAX;     /* up to RUN_MAX tasks: waits behind single writes, as a batch does */
    t->op.arg = t;
    pthread_mutex_init(&t->lock, NULL);
    pthread_mutex_init(&t->zones_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&t->thread, NULL, timer_main, t) != 0) {
        log_msg(LOG_ERROR, "schedules.start_failed", "error=\"no thread\"");
        pthread_cond_destroy(&t->cond);
        pthread_mutex_destroy(&t->lock);
        pthread_mutex_destroy(&t->zones_lock);
        free(t);
        return NULL;
    }
    return t;
}

void schedule_timer_kick(struct schedule_timer *t, int64_t due_ms)
{
    if (!t || due_ms <= 0) return;
    pthread_mutex_lock(&t->lock);
    if (due_ms < t->due_ms) t->due_ms = due_ms;
    if (t->in_op && due_ms < t->kicked_ms) t->kicked_ms = due_ms;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

void schedule_timer_quiesce(struct schedule_timer *t)
{
    if (!t) return;
    pthread_mutex_lock(&t->lock);
    t->stop = true;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

void schedule_timer_stop(struct schedule_timer *t)
{
    if (!t) return;
    schedule_timer_quiesce(t);
    pthread_join(t->thread, NULL); /* after its op's commit: the writer completes every op */
}

void schedule_timer_free(struct schedule_timer *t)
{
    if (!t) return;
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->lock);
    for (size_t i = 0; i < t->n_zones; i++) tz_free(t->zones[i]);
    pthread_mutex_destroy(&t->zones_lock);
    free(t);
}

/* ---- the routes ---- */

static char *schedule_json(const struct schedule *s)
{
    struct jsonw w;
    jw_init(&w);
    jw_object(&w);
    jw_key(&w, "name");
    jw_string(&w, s->name);
    jw_key(&w, "cron");
    jw_string(&w, s->cron);
    jw_key(&w, "timezone");
    jw_string(&w, s->timezone[0] ? s->timezone : "UTC");
    jw_key(&w, "task");
    jw_raw(&w, s->task, strlen(s->task));
    jw_key(&w, "paused");
    jw_bool(&w, s->paused);
    jw_key(&w, "nextRunAt");
    jw_time(&w, s->next_run_at_ms);
    jw_key(&w, "lastRunAt");
    jw_time(&w, s->last_run_at_ms);
    jw_key(&w, "lastTaskId");
    jw_string(&w, s->last_task_id[0] ? s->last_task_id : NULL);
    jw_key(&w, "lastError");
    jw_string(&w, s->last_error);
    jw_key(&w, "runs");
    jw_number(&w, (double)s->runs);
    jw_key(&w, "createdAt");
    jw_time(&w, s->created_at_ms);
    jw_key(&w, "updatedAt");
    jw_time(&w, s->updated_at_ms);
    jw_object_end(&w);
    return jw_finish(&w);
}

static const char *tenant_of(struct request *r)
{
    return r->who.tenant;
}

static enum MHD_Result bad_name(struct request *r)
{
    struct api_error e;
    api_error_set(&e, 400, "invalid_field", "name",
                  "a schedule name is 1 to 64 characters of letters, digits, '.', '_' or '-' "
                  "(not . or ..)");
    return http_respond_error(r, &e);
}

/* The schedule r names, as stored now, answered with status. */
static enum MHD_Result respond_schedule(struct request *r, unsigned status)
{
    struct schedule s;
    int rc = STORE_ERROR;
    struct store_conn *c = store_conn_acquire(r->api->store);
    if (c) {
        rc = store_schedule_get(c, tenant_of(r), r->name, &s);
        if (rc == STORE_ERROR)
            log_msg(LOG_WARN, "schedules.read_failed", "error=\"%s\"", store_conn_error(c));
        store_conn_release(c);
    }
    if (rc == STORE_NOT_FOUND) return http_not_found(r, "no schedule has this name");
    if (rc != STORE_OK) return http_unavailable(r, "the database cannot be read right now; try again");
    char *body = schedule_json(&s);
    schedule_clear(&s);
    return http_respond_text(r, status, body, NULL, NULL);
}

enum MHD_Result http_schedule_get(struct request *r)
{
    if (!r->name_valid) return bad_name(r);
    return respond_schedule(r, MHD_HTTP_OK);
}

enum MHD_Result http_schedule_list(struct request *r)
{
    struct api_error e;
    int limit = SCHEDULES_DEFAULT_LIMIT;
    char after[VALIDATE_MAX_QUEUE_NAME + 1] = "";
    if (!http_name_page(r, SCHEDULES_MAX_LIMIT, "/v1/schedules", &limit, after, &e))
        return http_respond_error(r, &e);
    struct schedule *list = NULL;
    size_t n = 0;
    bool cut = false;
    int rc = STORE_ERROR;
    struct store_conn *c = store_conn_acquire(r->api->store);
    if (c) {
        rc = store_schedules_list(c, tenant_of(r), after, limit + 1, PAGE_TEMPLATE_BYTES, &list, &n, &cut);
        if (rc != STORE_OK) log_msg(LOG_WARN, "schedules.read_failed", "error=\"%s\"", store_conn_error(c));
        store_conn_release(c);
    }
    if (rc != STORE_OK) return http_unavailable(r, "the database cannot be read right now; try again");
    bool more = n > (size_t)limit || cut;
    if ((size_t)limit > n) limit = (int)n; /* cut short: this page ends at what was read */
    struct jsonw w;
    jw_init(&w);
    jw_object(&w);
    jw_key(&w, "schedules");
    jw_array(&w);
    for (size_t i = 0; i < n && i < (size_t)limit; i++) {
        char *one = schedule_json(&list[i]);
        jw_raw(&w, one, strlen(one));
        free(one);
    }
    jw_array_end(&w);
    jw_key(&w, "nextCursor");
    if (more) {
        char cur[HTTP_CURSOR_MAX + 1];
        http_cursor_encode(list[limit - 1].name, cur);
        jw_string(&w, cur);
    } else {
        jw_null(&w);
    }
    jw_object_end(&w);
    for (size_t i = 0; i < n; i++) schedule_clear(&list[i]);
    free(list);
    return http_respond_text(r, MHD_HTTP_OK, jw_finish(&w), NULL, NULL);
}

/* Reads PUT's body into q->s (cron, task as written, paused); 0 or -1 with
 * e set. */
static int parse_put(struct request *r, struct sched_req *q, struct api_error *e)
{
    const char *body = http_body(r);
    size_t len = r->body.len;
    util_json_skip_bom(&body, &len);
    cJSON *doc = validate_json(body, len, e);
    if (!doc) return -1;
    int rc = -1;
    if (!cJSON_IsObject(doc)) {
        api_error_set(e, 400, "invalid_body", NULL,
                      "the body must be a JSON object: {\"cron\": \"...\", \"task\": {...}}");
        goto out;
    }
    const cJSON *cron = NULL, *task = NULL, *paused = NULL, *zone_name = NULL;
    for (const cJSON *f = doc->child; f; f = f->next) {
        if (!strcmp(f->string, "cron")) cron = f;
        else if (!strcmp(f->string, "task")) task = f;
        else if (!strcmp(f->string, "paused")) paused = f;
        else if (!strcmp(f->string, "timezone")) zone_name = f;
        else {
            api_error_set(e, 400, "unknown_field", f->string,
                          "unknown field '%.64s'; a schedule is cron, timezone, task and paused",
                          f->string);
            goto out;
        }
    }
    if (!cron) {
        api_error_set(e, 400, "missing_field", "cron",
                      "cron is required: when to run, e.g. \"*/5 * * * *\" (every 5 minutes)");
        goto out;
    }
    struct cron parsed;
    char why[CRON_ERR_LEN];
    if (!cJSON_IsString(cron)) {
        api_error_set(e, 400, "invalid_field", "cron",
                      "cron must be a string, e.g. \"0 3 * * *\" (every day at 03:00)");
        goto out;
    }
    if (cron_parse(cron->valuestring, &parsed, why)) {
        api_error_set(e, 400, "invalid_field", "cron", "cron: %s", why);
        goto out;
    }
    if (zone_name && !cJSON_IsNull(zone_name)) {
        char zerr[TZ_ERR_LEN];
        if (!cJSON_IsString(zone_name)) {
            api_error_set(e, 400, "invalid_field", "timezone",
                          "timezone must be an IANA time zone name, e.g. \"Europe/Berlin\"");
            goto out;
        }
        if (!zone(r->api->timer, zone_name->valuestring, zerr)) {
            api_error_set(e, 400, "invalid_field", "timezone", "timezone: %s", zerr);
            goto out;
        }
        util_strcopy(q->s.timezone, sizeof q->s.timezone, zone_name->valuestring);
    }
    if (!task) {
        api_error_set(e, 400, "missing_field", "task",
                      "task is required: the body of POST /v1/tasks that each run makes a task of");
        goto out;
    }
    if (!cJSON_IsObject(task)) {
        api_error_set(e, 400, "invalid_field", "task",
                      "task must be a JSON object: the body of POST /v1/tasks");
        goto out;
    }
    if (cJSON_GetObjectItemCaseSensitive(task, "runAt")) {
        api_error_set(e, 400, "invalid_field", "task.runAt",
                      "a schedule's task has no runAt: cron says when each run is (delay puts off "
                      "each run's task by seconds)");
        goto out;
    }
    if (cJSON_GetObjectItemCaseSensitive(task, "idempotencyKey")) {
        api_error_set(e, 400, "invalid_field", "task.idempotencyKey",
                      "a schedule's task has no idempotencyKey: each run makes a new task, once");
        goto out;
    }
    if (paused && !cJSON_IsBool(paused)) {
        api_error_set(e, 400, "invalid_field", "paused", "paused must be true or false");
        goto out;
    }
    /* The template as written (numbers and all), checked as a create. */
    const char *text = NULL;
    size_t text_len = 0;
    struct task *t = NULL;
    struct api_error te;
    if (!util_json_member(body, len, "task", &text, &text_len)) {
        api_error_set(e, 400, "invalid_field", "task", "task could not be read as written");
        goto out;
    }
    if (validate_task_create(text, text_len, r->api->cfg, r->api->np, util_now_ms(), &t, NULL, false, &te)) {
        api_error_within(e, "task", &te);
        goto out;
    }
    task_free(t);
    q->s.cron = xstrdup(cron->valuestring);
    q->s.task = xstrndup(text, text_len);
    q->s.paused = cJSON_IsTrue(paused);
    rc = 0;
out:
    cJSON_Delete(doc);
    return rc;
}

static int put_apply(struct writer_txn *tx, struct request *r)
{
    struct sched_req *q = r->sched;
    struct store_conn *c = writer_txn_conn(tx);
    int64_t now = writer_txn_now(tx);
    q->s.next_run_at_ms = q->s.paused ? 0 : next_time(r->api->timer, &q->s, now);
    q->s.updated_at_ms = now;
    /* A time already due that the timer has not run yet (its op waits
     * behind this write, or catches up on many) still runs: a replace that
     * lands in that moment, as a deploy that PUTs its schedules again does,
     * must not skip it. */
    struct schedule old;
    int rc = store_schedule_get(c, q->s.tenant, q->s.name, &old);
    if (rc == STORE_ERROR) return rc;
    if (rc == STORE_OK && !q->s.paused && !old.paused && old.next_run_at_ms > 0 &&
        old.next_run_at_ms <= now)
        q->s.next_run_at_ms = old.next_run_at_ms;
    schedule_clear(&old);
    rc = store_schedule_put(c, &q->s, &q->created);
    if (rc == STORE_OK)
        log_batch_add(writer_log(r->api->writer), LOG_INFO, q->created ? "schedule.created" : "schedule.updated",
                      "name=%s tenant=%s paused=%s key=%s", q->s.name, q->s.tenant[0] ? q->s.tenant : "-",
                      q->s.paused ? "true" : "false", r->who.label);
    return rc;
}

static enum MHD_Result put_finish(struct request *r)
{
    if (r->err) return http_respond_error(r, r->err);
    schedule_timer_kick(r->api->timer, r->sched->s.next_run_at_ms);
    return respond_schedule(r, r->sched->created ? MHD_HTTP_CREATED : MHD_HTTP_OK);
}

static struct sched_req *sched_req_new(struct request *r)
{
    struct sched_req *q = xcalloc(1, sizeof *q);
    util_strcopy(q->s.tenant, sizeof q->s.tenant, tenant_of(r));
    util_strcopy(q->s.name, sizeof q->s.name, r->name);
    r->sched = q;
    return q;
}

enum MHD_Result http_schedule_put(struct request *r)
{
    struct api_error e;
    if (!r->name_valid) return bad_name(r);
    struct sched_req *q = sched_req_new(r);
    if (parse_put(r, q, &e)) return http_respond_error(r, &e);
    return http_start_write(r, put_apply, put_finish);
}

static void no_schedule(struct request *r)
{
    api_error_set(http_request_error(r), 404, "not_found", NULL, "no schedule has this name");
}

static int pause_apply(struct writer_txn *tx, struct request *r)
{
    struct sched_req *q = r->sched;
    struct store_conn *c = writer_txn_conn(tx);
    struct schedule s;
    int rc = store_schedule_get(c, q->s.tenant, q->s.name, &s);
    if (rc == STORE_NOT_FOUND) {
        no_schedule(r);
        return STORE_OK;
    }
    if (rc != STORE_OK) return rc;
    int64_t now = writer_txn_now(tx);
    if (s.paused != q->paused) { /* resuming a running one keeps its time */
        s.paused = q->paused;
        s.next_run_at_ms = s.paused ? 0 : next_time(r->api->timer, &s, now);
        s.updated_at_ms = now;
        bool created;
        rc = store_schedule_put(c, &s, &created);
        if (rc == STORE_OK)
            log_batch_add(writer_log(r->api->writer), LOG_INFO,
                          s.paused ? "schedule.paused" : "schedule.resumed", "name=%s tenant=%s key=%s",
                          s.name, s.tenant[0] ? s.tenant : "-", r->who.label);
    }
    q->s.next_run_at_ms = s.next_run_at_ms;
    schedule_clear(&s);
    return rc;
}

static enum MHD_Result show_finish(struct request *r)
{
    if (r->err) return http_respond_error(r, r->err);
    schedule_timer_kick(r->api->timer, r->sched->s.next_run_at_ms);
    return respond_schedule(r, MHD_HTTP_OK);
}

enum MHD_Result http_schedule_pause(struct request *r, bool paused)
{
    if (!r->name_valid) return bad_name(r);
    sched_req_new(r)->paused = paused;
    return http_start_write(r, pause_apply, show_finish);
}

static int delete_apply(struct writer_txn *tx, struct request *r)
{
    int rc = store_schedule_delete(writer_txn_conn(tx), r->sched->s.tenant, r->sched->s.name);
    if (rc == STORE_NOT_FOUND) {
        no_schedule(r);
        return STORE_OK;
    }
    if (rc == STORE_OK)
        log_batch_add(writer_log(r->api->writer), LOG_INFO, "schedule.deleted", "name=%s tenant=%s key=%s",
                      r->sched->s.name, r->sched->s.tenant[0] ? r->sched->s.tenant : "-", r->who.label);
    return rc;
}

enum MHD_Result http_schedule_delete(struct request *r)
{
    if (!r->name_valid) return bad_name(r);
    sched_req_new(r);
    return http_start_write(r, delete_apply, http_finish_no_content);
}

static int run_now_apply(struct writer_txn *tx, struct request *r)
{
    struct sched_req *q = r->sched;
    task_free(q->made); /* a first run's (the op may run twice) */
    q->made = NULL;
    struct schedule s;
    int rc = store_schedule_get(writer_txn_conn(tx), q->s.tenant, q->s.name, &s);
    if (rc == STORE_NOT_FOUND) {
        no_schedule(r);
        return STORE_OK;
    }
    if (rc != STORE_OK) return rc;
    struct api_error e;
    rc = run_one(tx, r->api, &s, false, &q->made, &e);
    if (rc == STORE_OK && !q->made) {
        if (e.status == 429) *http_request_error(r) = e; /* the backlog: as a create says it */
        else api_error_within(http_request_error(r), "task", &e);
    }
    schedule_clear(&s);
    return rc;
}

static enum MHD_Result run_now_finish(struct request *r)
{
    if (r->err) return http_respond_error(r, r->err);
    struct task *t = r->sched->made;
    metrics_schedule_runs(1, 0);
    char location[64] = "/v1/tasks/";
    size_t at = strlen(location);
    util_strcopy(location + at, sizeof location - at, t->id);
    return http_respond_text(r, MHD_HTTP_ACCEPTED, task_json(t, NULL, 0, NULL, false),
                             MHD_HTTP_HEADER_LOCATION, location);
}

enum MHD_Result http_schedule_run(struct request *r)
{
    if (!r->name_valid) return bad_name(r);
    sched_req_new(r);
    return http_start_write(r, run_now_apply, run_now_finish);
}
