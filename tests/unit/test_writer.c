/*
 * Tests for the writer's pipeline: who runs an op's done() and when. A real
 * store in a temporary directory with synchronous = full, so the writer
 * runs with its syncer thread, as the daemon does by default.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "id.h"
#include "job.h"
#include "log.h"
#include "scheduler.h"
#include "store.h"
#include "task.h"
#include "util.h"
#include "writer.h"

#define WAIT_MS 5000 /* bound on every wait; a pass takes milliseconds */

struct fx {
    char dir[512];
    struct config cfg;
    struct store *store;
    struct writer *w;
};

/* ---- a dispatcher stand-in: free slots, and a record of what it is handed
 * and of what the writer announces, in order ---- */

struct seen {
    pthread_mutex_t lock;
    char log[512];             /* "accepted started | ..." : events, '|' per batch */
    struct job *jobs;          /* delivered, newest first */
    int n_jobs;
};

static struct seen seen = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void seen_add(const char *word)
{
    pthread_mutex_lock(&seen.lock);
    size_t n = strlen(seen.log);
    snprintf(seen.log + n, sizeof seen.log - n, "%s%s", n ? " " : "", word);
    pthread_mutex_unlock(&seen.lock);
}

static int sink_free_slots(void *arg)
{
    (void)arg;
    return 8;
}

static void sink_deliver(void *arg, struct job *jobs, int count)
{
    (void)arg;
    pthread_mutex_lock(&seen.lock);
    struct job *last = jobs;
    while (last->next) last = last->next;
    last->next = seen.jobs;
    seen.jobs = jobs;
    seen.n_jobs += count;
    pthread_mutex_unlock(&seen.lock);
}

static void sink_abort(void *arg, int64_t seq)
{
    (void)arg;
    (void)seq;
}

static bool hook_want_events(void *arg)
{
    (void)arg;
    return true;
}

static void hook_event(void *arg, const char *tenant, char *json)
{
    (void)arg;
    (void)tenant;
    seen_add(strstr(json, "\"started\"") ? "started" : strstr(json, "\"accepted\"") ? "accepted" : "other");
    free(json);
}

static void hook_batch_done(void *arg)
{
    (void)arg;
    seen_add("|");
}

/* A copy of the log, to assert on without holding the lock. */
static void seen_log(char *out, size_t len)
{
    pthread_mutex_lock(&seen.lock);
    snprintf(out, len, "%s", seen.log);
    pthread_mutex_unlock(&seen.lock);
}

static int seen_jobs(void)
{
    pthread_mutex_lock(&seen.lock);
    int n = seen.n_jobs;
    pthread_mutex_unlock(&seen.lock);
    return n;
}

static int fx_max_per_host; /* when set, the next open_fx uses it */

/* A writer on a fresh store; with a sink and hooks when sink is true. */
static int open_fx(void **state, bool with_sink)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    tu_mkdtemp(f->dir, sizeof f->dir);
    tu_config_defaults(&f->cfg);
    assert_int_equal(f->cfg.synchronous, CONFIG_SYNC_FULL);
    if (fx_max_per_host) f->cfg.max_per_host = fx_max_per_host;
    fx_max_per_host = 0;
    free(f->cfg.db);
    char path[600];
    snprintf(path, sizeof path, "%s/test.db", f->dir);
    f->cfg.db = xstrdup(path);
    char err[512] = "";
    f->store = store_open(&f->cfg, false, err, sizeof err);
    if (!f->store) fail_msg("store_open: %s", err);
    f->w = writer_new(f->store, &f->cfg);
    assert_non_null(f->w);
    if (with_sink) {
        const struct writer_sink sink = {.free_slots = sink_free_slots, .deliver = sink_deliver,
                                         .abort_call = sink_abort};
        const struct writer_hooks hooks = {.want_events = hook_want_events, .event = hook_event,
                                           .batch_done = hook_batch_done};
        writer_set_hooks(f->w, &hooks);
        assert_int_equal(writer_start(f->w, &sink), 0);
    } else {
        assert_int_equal(writer_start(f->w, NULL), 0);
    }
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return open_fx(state, false);
}

static int setup_with_sink(void **state)
{
    seen.log[0] = '\0';
    seen.jobs = NULL;
    seen.n_jobs = 0;
    return open_fx(state, true);
}

static int setup_with_sink_host_cap_2(void **state)
{
    fx_max_per_host = 2;
    return setup_with_sink(state);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    writer_free(f->w, NULL);
    store_close(f->store);
    config_free(&f->cfg);
    tu_rmtree(f->dir);
    free(f);
    return 0;
}

/* Waits until ready(arg), at most ms; returns whether it came. */
static bool wait_for(bool (*ready)(const void *), const void *arg, int64_t ms)
{
    int64_t until = util_mono_ms() + ms;
    while (!ready(arg)) {
        if (util_mono_ms() >= until) return false;
        nanosleep(&(struct timespec){0, 200000}, NULL);
    }
    return true;
}

static bool flag_set(const void *flag)
{
    return atomic_load((const atomic_bool *)flag);
}

/* Waits until *flag is set, at most ms; returns whether it was. */
static bool wait_flag(atomic_bool *flag, int64_t ms)
{
    return wait_for(flag_set, flag, ms);
}

struct probe {
    struct writer_op op;
    struct writer *w;
    struct probe *then; /* submitted from this op's apply (or done) */
    bool then_from_done;
    atomic_bool *wait_for; /* apply waits (bounded) for this flag */
    bool saw_it;           /* ... and records whether it came */
    atomic_bool *done_waits_for; /* done() waits (bounded) for this flag */
    atomic_bool in_done;
    pthread_t apply_thread, done_thread;
    atomic_bool applied, done;
    int rc;
    int order; /* when its apply ran, counting from 1 */
};

static atomic_int applies;

static int probe_apply(struct writer_txn *tx, void *arg)
{
    (void)tx;
    struct probe *p = arg;
    p->order = atomic_fetch_add(&applies, 1) + 1;
    p->apply_thread = pthread_self();
    atomic_store(&p->applied, true);
    if (p->then && !p->then_from_done) writer_submit(p->w, &p->then->op);
    if (p->wait_for) p->saw_it = wait_flag(p->wait_for, WAIT_MS);
    return STORE_OK;
}

static void probe_done(void *arg, int rc)
{
    struct probe *p = arg;
    p->rc = rc;
    p->done_thread = pthread_self();
    atomic_store(&p->in_done, true);
    if (p->done_waits_for) wait_flag(p->done_waits_for, WAIT_MS);
    if (p->then && p->then_from_done) writer_submit(p->w, &p->then->op);
    atomic_store(&p->done, true);
}

static void probe_init(struct probe *p, struct writer *w, bool anywhere)
{
    memset(p, 0, sizeof *p);
    p->w = w;
    p->op.apply = probe_apply;
    p->op.done = probe_done;
    p->op.arg = p;
    p->op.done_anywhere = anywhere;
    p->rc = -1;
    atomic_init(&p->applied, false);
    atomic_init(&p->done, false);
    atomic_init(&p->in_done, false);
}

/* An op that allows it is answered as soon as its commit is on disk, while
 * the writer is still inside its next transaction: b's apply, on the
 * writer thread, waits for a's done() and sees it come from another
 * thread (the syncer). Were done() left to the writer, b's apply would
 * wait out WAIT_MS and see nothing. */
static void test_done_anywhere_runs_while_the_writer_is_busy(void **state)
{
    struct fx *f = *state;
    static struct probe a, b; /* not on the stack: a failed assert leaves the writer with them */
    probe_init(&a, f->w, true);
    probe_init(&b, f->w, false);
    a.then = &b; /* queued during a's transaction: the next batch */
    b.wait_for = &a.done;
    writer_submit(f->w, &a.op);
    assert_true(wait_flag(&b.done, 2 * WAIT_MS)); /* longer than b waits */
    assert_true(b.saw_it);
    assert_int_equal(a.rc, STORE_OK);
    assert_int_equal(b.rc, STORE_OK);
    assert_true(pthread_equal(a.apply_thread, b.apply_thread)); /* the writer thread */
    assert_false(pthread_equal(a.done_thread, a.apply_thread));
    assert_true(pthread_equal(b.done_thread, b.apply_thread)); /* the default: the writer */
}

/* An op submitted from such a done() (a bulk request's next step) still
 * runs when the writer is stopped right after: the stop waits for the
 * batch, and so for the done() that submitted it. */
static void test_stop_runs_what_an_early_done_submits(void **state)
{
    struct fx *f = *state;
    static struct probe a, b; /* not on the stack: a failed assert leaves the writer with them */
    probe_init(&a, f->w, true);
    probe_init(&b, f->w, true);
    a.then = &b;
    a.then_from_done = true;
    writer_submit(f->w, &a.op);
    assert_true(wait_flag(&a.applied, WAIT_MS));
    writer_free(f->w, NULL);
    f->w = NULL;
    assert_true(atomic_load(&a.done));
    assert_true(atomic_load(&b.applied));
    assert_true(atomic_load(&b.done));
    assert_int_equal(b.rc, STORE_OK);
}

/* ---- a new task's claim ---- */

struct create {
    struct writer_op op;
    struct task *t;
    atomic_bool applied, done;
    int rc;
};

static int create_apply(struct writer_txn *tx, void *arg)
{
    struct create *c = arg;
    int rc = writer_txn_task_insert(tx, c->t);
    atomic_store(&c->applied, true);
    return rc;
}

static bool create_applied(const void *arg)
{
    return atomic_load(&((const struct create *)arg)->applied);
}

static void create_done(void *arg, int rc)
{
    struct create *c = arg;
    c->rc = rc;
    atomic_store(&c->done, true);
}

/* Submits a new task of queue to 127.0.0.1:9, due ago_ms ago, without
 * waiting. */
static void submit_create(struct fx *f, struct create *c, const char *queue, int64_t ago_ms)
{
    memset(c, 0, sizeof *c);
    int64_t now = util_now_ms();
    struct task *t = xcalloc(1, sizeof *t);
    id_new(now, t->id);
    t->tenant = xstrdup("");
    t->queue = xstrdup(queue);
    t->status = TASK_QUEUED;
    t->method = xstrdup("POST");
    t->callback_url = xstrdup("http://127.0.0.1:9/work");
    t->host = xstrdup("127.0.0.1:9");
    t->body = xstrdup("{}");
    t->body_len = 2;
    t->body_kind = TASK_BODY_JSON;
    t->timeout_ms = 30000;
    t->created_at_ms = t->updated_at_ms = now;
    t->run_at_ms = now - ago_ms;
    c->t = t;
    c->op.apply = create_apply;
    c->op.done = create_done;
    c->op.arg = c;
    c->rc = -1;
    atomic_init(&c->applied, false);
    atomic_init(&c->done, false);
    writer_submit(f->w, &c->op);
}

static void create_task(struct fx *f, struct create *c, const char *queue)
{
    submit_create(f, c, queue, 0);
    assert_true(wait_flag(&c->done, WAIT_MS));
    assert_int_equal(c->rc, STORE_OK);
}

/* Waits until the sink holds n jobs, at most WAIT_MS. */
static bool jobs_reached(const void *n)
{
    return seen_jobs() >= *(const int *)n;
}

static void wait_jobs(int n)
{
    wait_for(jobs_reached, &n, WAIT_MS);
    assert_int_equal(seen_jobs(), n);
}

/* What the writer announced, in order, is want. */
static void expect_seen(const char *want)
{
    char log[sizeof seen.log];
    seen_log(log, sizeof log);
    assert_string_equal(log, want);
}

/* Stops the writer (it may still hold the jobs' leases), then frees what
 * the sink was handed and the created task. */
static void stop_and_free(struct fx *f, struct create *c)
{
    writer_free(f->w, NULL);
    f->w = NULL;
    job_list_free(seen.jobs);
    task_free(c->t);
}

/* Writes of many rows (a batch create, weight 1000) wait behind writes of
 * one, and one transaction takes at most batch_max (1024) rows of them but
 * always one: a create queued after two big batches is applied before
 * them, and the second batch goes to a transaction of its own. In the
 * order they came, the create waited for both batches' inserts. */
static void a_write_of_one_row_goes_before_writes_of_many(void **state)
{
    struct fx *f = *state;
    static struct probe gate, big1, big2, one;
    static atomic_bool open;
    atomic_init(&open, false);
    probe_init(&gate, f->w, false);
    gate.wait_for = &open; /* holds the writer while the others queue */
    probe_init(&big1, f->w, true); /* done_anywhere: the writer notes their commit */
    probe_init(&big2, f->w, true);
    probe_init(&one, f->w, false);
    big1.op.weight = big2.op.weight = 1000;
    writer_submit(f->w, &gate.op);
    assert_true(wait_flag(&gate.applied, WAIT_MS));
    writer_submit(f->w, &big1.op);
    writer_submit(f->w, &big2.op);
    writer_submit(f->w, &one.op);
    atomic_store(&open, true);
    assert_true(wait_flag(&big2.done, WAIT_MS));
    assert_true(wait_flag(&one.done, WAIT_MS));
    assert_true(gate.saw_it);
    if (!(one.order < big1.order && big1.order < big2.order))
        fail_msg("applied in the order one %d, big1 %d, big2 %d", one.order, big1.order, big2.order);
    assert_true(big1.op.commit != big2.op.commit);
    assert_int_equal(big1.rc, STORE_OK);
    assert_int_equal(big2.rc, STORE_OK);
    assert_int_equal(one.rc, STORE_OK);
}

/* Ops that arrive while the syncer is busy join the open transaction, and
 * it commits when the syncer is free: b and c, submitted one after the
 * other while the syncer is held inside a's done(), end in one batch. A
 * writer that committed b at once would make three batches. */
static void ops_arriving_during_a_sync_share_one_commit(void **state)
{
    struct fx *f = *state;
    static struct probe a, b, c; /* not on the stack: a failed assert leaves the writer with them */
    static atomic_bool release;
    atomic_init(&release, false);
    probe_init(&a, f->w, true); /* its done() runs on the syncer, before the sync counts as done */
    a.done_waits_for = &release;
    probe_init(&b, f->w, false);
    probe_init(&c, f->w, false);
    writer_submit(f->w, &a.op);
    assert_true(wait_flag(&a.in_done, WAIT_MS)); /* the syncer is busy from here */
    writer_submit(f->w, &b.op);
    assert_true(wait_flag(&b.applied, WAIT_MS));
    writer_submit(f->w, &c.op);
    assert_true(wait_flag(&c.applied, WAIT_MS));
    assert_false(atomic_load(&b.done)); /* nothing is done before its sync */
    atomic_store(&release, true);
    assert_true(wait_flag(&c.done, WAIT_MS));
    writer_free(f->w, NULL); /* waits for every batch's end */
    f->w = NULL;
    assert_int_equal(b.rc, STORE_OK);
    assert_int_equal(c.rc, STORE_OK);
    expect_seen("| |");
}

/* A task due now in a queue without limits starts from its insert: written
 * running and leased, and handed over with the batch that wrote it (its
 * "started" comes before that batch's end, with its "accepted"). */
static void a_new_task_due_now_starts_from_its_insert(void **state)
{
    struct fx *f = *state;
    static struct create c;
    create_task(f, &c, "default");
    wait_jobs(1);
    expect_seen("accepted started |");
    const struct task *run = seen.jobs->task;
    assert_int_equal(seen.jobs->kind, JOB_TASK);
    assert_string_equal(run->id, c.t->id);
    assert_true(run->seq == c.t->seq && run->seq > 0);
    assert_int_equal(run->status, TASK_RUNNING);
    assert_int_equal(run->claim_token, 1);
    assert_true(run->lease_until_ms == run->started_at_ms + run->timeout_ms + f->cfg.lease_grace_ms);
    assert_int_equal(c.t->status, TASK_QUEUED); /* the caller's task is left as given */

    struct store_conn *rd = store_conn_open(f->store);
    struct task *stored = NULL;
    assert_int_equal(store_task_get(rd, c.t->id, NULL, &stored, NULL, NULL, NULL, NULL), STORE_OK);
    assert_int_equal(stored->status, TASK_RUNNING);
    assert_int_equal(stored->claim_token, 1);
    assert_true(stored->lease_until_ms == run->lease_until_ms);
    assert_true(stored->started_at_ms == run->started_at_ms);
    assert_int_equal(stored->attempts, 0);
    task_free(stored);
    store_conn_close(rd);
    stop_and_free(f, &c);
}

/* A queue with a limit leaves the decision to the plan: the task is
 * written queued and claimed by a later batch. */
static void a_task_in_a_limited_queue_waits_for_the_plan(void **state)
{
    struct fx *f = *state;
    struct queue_settings qs;
    queue_settings_default(&qs);
    qs.max_concurrency = 5;
    scheduler_queue_set(writer_scheduler(f->w), "limited", &qs);
    static struct create c;
    create_task(f, &c, "limited");
    wait_jobs(1);
    expect_seen("accepted | started |");
    assert_int_equal(seen.jobs->task->status, TASK_RUNNING);
    assert_int_equal(seen.jobs->task->claim_token, 1);
    stop_and_free(f, &c);
}

struct cancel {
    struct writer_op op;
    const char *id;
    atomic_bool done;
    int rc;
};

/* Cancels a queued task as the API's cancel does. */
static int cancel_apply(struct writer_txn *tx, void *arg)
{
    struct cancel *x = arg;
    struct task *t = NULL;
    bool was_running = false;
    int rc = store_task_cancel(writer_txn_conn(tx), x->id, NULL, util_now_ms(), &t, &was_running);
    if (rc == STORE_OK) {
        assert_false(was_running);
        writer_txn_gone(tx, t->queue, t->seq, t->run_at_ms);
    }
    task_free(t);
    return rc;
}

static void cancel_done(void *arg, int rc)
{
    struct cancel *x = arg;
    x->rc = rc;
    atomic_store(&x->done, true);
}

/* Whether the scheduler still knows queue. */
static bool knows_queue(struct scheduler *s, const char *queue)
{
    size_t n = 0;
    struct queue_info *qs = scheduler_snapshot(s, &n);
    bool found = false;
    for (size_t i = 0; i < n && !found; i++) found = !strcmp(qs[i].name, queue);
    free(qs);
    return found;
}

/* A queue whose only task, due in a day, is cancelled has nothing due: it
 * is forgotten once idle, not a day later. The scheduler kept the cancelled
 * task's time as the queue's, and a queue waiting for work is not idle. */
static void a_queue_whose_task_is_cancelled_has_nothing_due(void **state)
{
    struct fx *f = *state;
    static struct create c;
    submit_create(f, &c, "later", -24 * 3600 * 1000LL);
    assert_true(wait_flag(&c.done, WAIT_MS));
    assert_int_equal(c.rc, STORE_OK);
    struct scheduler *s = writer_scheduler(f->w);
    int64_t idle = 3600 * 1000LL, later = util_mono_ms() + 2 * idle;
    assert_int_equal(scheduler_forget_idle(s, later, idle), 0); /* waiting for its task */
    assert_true(knows_queue(s, "later"));

    static struct cancel x;
    x.id = c.t->id;
    x.op.apply = cancel_apply;
    x.op.done = cancel_done;
    x.op.arg = &x;
    x.rc = -1;
    atomic_init(&x.done, false);
    writer_submit(f->w, &x.op);
    assert_true(wait_flag(&x.done, WAIT_MS));
    assert_int_equal(x.rc, STORE_OK);
    assert_int_equal(scheduler_forget_idle(s, later, idle), 1);
    assert_false(knows_queue(s, "later"));
    stop_and_free(f, &c);
}

/* A claim in the transaction that started tasks from their insert counts
 * them on their host: their starts reach the scheduler only at the commit.
 * With a cap of 2, c1 and c2 start from their inserts and c3, queued and
 * due, is left for later: a claim that saw the host's room as 2 took it
 * too (three calls to one host). The syncer is held busy, so c2 and c3
 * join c1's transaction, whose claim, after the join, runs because c3 is
 * due. */
static void a_claim_counts_the_tasks_its_transaction_started(void **state)
{
    struct fx *f = *state;
    static struct probe a; /* not on the stack: a failed assert leaves the writer with them */
    static struct create c[3];
    static atomic_bool release;
    atomic_init(&release, false);
    probe_init(&a, f->w, true);
    a.done_waits_for = &release;
    writer_submit(f->w, &a.op);
    assert_true(wait_flag(&a.in_done, WAIT_MS)); /* the syncer is busy from here */
    for (int i = 0; i < 3; i++) { /* one by one: c[1] and c[2] join c[0]'s transaction */
        submit_create(f, &c[i], "default", 1000);
        assert_true(wait_for(create_applied, &c[i], WAIT_MS));
    }
    atomic_store(&release, true);
    for (int i = 0; i < 3; i++) assert_true(wait_flag(&c[i].done, WAIT_MS));
    writer_free(f->w, NULL); /* every batch ended, its jobs handed over */
    f->w = NULL;
    assert_int_equal(seen_jobs(), 2);
    for (const struct job *j = seen.jobs; j; j = j->next)
        assert_true(j->task->seq == c[0].t->seq || j->task->seq == c[1].t->seq);
    job_list_free(seen.jobs);
    for (int i = 0; i < 3; i++) task_free(c[i].t);
}

int main(void)
{
    log_set_level(LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_done_anywhere_runs_while_the_writer_is_busy, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stop_runs_what_an_early_done_submits, setup, teardown),
        cmocka_unit_test_setup_teardown(a_write_of_one_row_goes_before_writes_of_many, setup, teardown),
        cmocka_unit_test_setup_teardown(ops_arriving_during_a_sync_share_one_commit, setup_with_sink,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_new_task_due_now_starts_from_its_insert, setup_with_sink, teardown),
        cmocka_unit_test_setup_teardown(a_queue_whose_task_is_cancelled_has_nothing_due, setup_with_sink,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_task_in_a_limited_queue_waits_for_the_plan, setup_with_sink,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_claim_counts_the_tasks_its_transaction_started,
                                        setup_with_sink_host_cap_2, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
