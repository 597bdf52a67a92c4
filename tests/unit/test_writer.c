/*
 * Tests for the writer's pipeline: who runs an op's done() and when. A real
 * store in a temporary directory with synchronous = full, so the writer
 * runs with its syncer thread, as the daemon does by default.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "log.h"
#include "store.h"
#include "util.h"
#include "writer.h"

#define WAIT_MS 5000 /* bound on every wait; a pass takes milliseconds */

struct fx {
    char dir[512];
    struct config cfg;
    struct store *store;
    struct writer *w;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    tu_mkdtemp(f->dir, sizeof f->dir);
    tu_config_defaults(&f->cfg);
    assert_int_equal(f->cfg.synchronous, CONFIG_SYNC_FULL);
    free(f->cfg.db);
    char path[600];
    snprintf(path, sizeof path, "%s/test.db", f->dir);
    f->cfg.db = xstrdup(path);
    char err[512] = "";
    f->store = store_open(&f->cfg, false, err, sizeof err);
    if (!f->store) fail_msg("store_open: %s", err);
    f->w = writer_new(f->store, &f->cfg);
    assert_non_null(f->w);
    assert_int_equal(writer_start(f->w, NULL), 0);
    *state = f;
    return 0;
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

/* Waits until *flag is set, at most ms; returns whether it was. */
static bool wait_flag(atomic_bool *flag, int64_t ms)
{
    int64_t until = util_mono_ms() + ms;
    while (!atomic_load(flag)) {
        if (util_mono_ms() >= until) return false;
        nanosleep(&(struct timespec){0, 200000}, NULL);
    }
    return true;
}

struct probe {
    struct writer_op op;
    struct writer *w;
    struct probe *then; /* submitted from this op's apply (or done) */
    bool then_from_done;
    atomic_bool *wait_for; /* apply waits (bounded) for this flag */
    bool saw_it;           /* ... and records whether it came */
    pthread_t apply_thread, done_thread;
    atomic_bool applied, done;
    int rc;
};

static int probe_apply(struct writer_txn *tx, void *arg)
{
    (void)tx;
    struct probe *p = arg;
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

int main(void)
{
    log_set_level(LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_done_anywhere_runs_while_the_writer_is_busy, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stop_runs_what_an_early_done_submits, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
