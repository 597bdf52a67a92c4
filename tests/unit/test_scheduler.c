/*
 * test_scheduler: the claim plan: due times, pause, max concurrency, the
 * token-bucket rate, the FIFO hold, per-host caps, fairness between queues,
 * wake times, counters and resync. Pure: time is passed in.
 */
#include "testutil.h"

#include "scheduler.h"

#define T0 1795860742000LL

static struct queue_settings settings(int conc, double rate, int burst, bool paused)
{
    struct queue_settings qs;
    queue_settings_default(&qs);
    qs.max_concurrency = conc;
    qs.rate_per_sec = rate;
    qs.burst = burst;
    qs.paused = paused;
    return qs;
}

/* Plans and returns how many tasks the plan gives queue q. */
static int planned(struct scheduler *s, int64_t now, int slots, const char *q, int64_t *only_seq)
{
    struct scheduler_claim plan[16];
    const char *const *hosts;
    size_t n_hosts;
    int n = scheduler_plan(s, now, slots, plan, 16, &hosts, &n_hosts);
    for (int i = 0; i < n; i++) {
        if (strcmp(plan[i].queue, q) == 0) {
            if (only_seq) *only_seq = plan[i].only_seq;
            return plan[i].limit;
        }
    }
    return 0;
}

static void due_work_is_planned_and_future_work_is_not(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(0);
    assert_int_equal(planned(s, T0, 10, "default", NULL), 0);
    assert_true(scheduler_next_wake(s, T0) == INT64_MAX); /* nothing waits */
    scheduler_note_due(s, "default", T0 + 500);
    assert_int_equal(planned(s, T0, 10, "default", NULL), 0);
    assert_true(scheduler_next_wake(s, T0) == T0 + 500);
    assert_int_equal(planned(s, T0 + 500, 10, "default", NULL), 10);
    /* A short claim: the store says nothing more is queued. */
    scheduler_set_due(s, "default", INT64_MAX);
    assert_int_equal(planned(s, T0 + 600, 10, "default", NULL), 0);
    scheduler_free(s);
    scheduler_free(NULL);
}

static void a_paused_queue_gets_nothing_and_no_wake(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(0);
    struct queue_settings qs = settings(0, 0, 0, true);
    scheduler_queue_set(s, "q", &qs);
    scheduler_note_due(s, "q", T0);
    assert_int_equal(planned(s, T0, 10, "q", NULL), 0);
    assert_true(scheduler_next_wake(s, T0) == INT64_MAX);
    qs.paused = false;
    scheduler_queue_set(s, "q", &qs);
    assert_int_equal(planned(s, T0, 10, "q", NULL), 10);
    scheduler_free(s);
}

static void max_concurrency_bounds_what_runs(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(0);
    struct queue_settings qs = settings(3, 0, 0, false);
    scheduler_queue_set(s, "q", &qs);
    scheduler_note_due(s, "q", T0);
    assert_int_equal(planned(s, T0, 10, "q", NULL), 3);
    scheduler_claimed(s, "q", "h", T0);
    scheduler_claimed(s, "q", "h", T0);
    assert_int_equal(planned(s, T0, 10, "q", NULL), 1);
    scheduler_claimed(s, "q", "h", T0);
    assert_int_equal(planned(s, T0, 10, "q", NULL), 0);
    /* Full: no timed wake, only a release can make room. */
    assert_true(scheduler_next_wake(s, T0) == INT64_MAX);
    scheduler_released(s, "q", "h", SCHEDULER_COMPLETED, 1, 0);
    assert_int_equal(planned(s, T0, 10, "q", NULL), 1);
    assert_int_equal(scheduler_inflight(s), 2);
    scheduler_free(s);
}

static void the_rate_is_a_token_bucket(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(0);
    struct queue_settings qs = settings(0, 2, 3, false); /* 2/s, burst 3 */
    scheduler_queue_set(s, "q", &qs);
    scheduler_note_due(s, "q", T0);
    assert_int_equal(planned(s, T0, 100, "q", NULL), 3); /* a full bucket */
    for (int i = 0; i < 3; i++) {
        scheduler_claimed(s, "q", "h", T0);
        scheduler_released(s, "q", "h", SCHEDULER_COMPLETED, i + 1, 0);
    }
    assert_int_equal(planned(s, T0, 100, "q", NULL), 0);
    /* The next token arrives after 1/rate = 500 ms. */
    assert_true(scheduler_next_wake(s, T0) == T0 + 500);
    assert_int_equal(planned(s, T0 + 499, 100, "q", NULL), 0);
    assert_int_equal(planned(s, T0 + 500, 100, "q", NULL), 1);
    /* A long idle refills to the burst, never beyond. */
    assert_int_equal(planned(s, T0 + 60000, 100, "q", NULL), 3);
    /* New limits keep what is left: emptied, then lowered (1/s, burst 2) or
     * raised (4/s, burst 8), the bucket does not refill at once. */
    for (int i = 0; i < 3; i++) {
        scheduler_claimed(s, "q", "h", T0 + 60000);
        scheduler_released(s, "q", "h", SCHEDULER_COMPLETED, 10 + i, 0);
    }
    struct queue_settings lower = settings(0, 1, 2, false), higher = settings(0, 4, 8, false);
    scheduler_queue_set(s, "q", &lower);
    assert_int_equal(planned(s, T0 + 60000, 100, "q", NULL), 0);
    assert_int_equal(planned(s, T0 + 61000, 100, "q", NULL), 1); /* 1 s at 1/s */
    scheduler_queue_set(s, "q", &higher);
    assert_int_equal(planned(s, T0 + 61000, 100, "q", NULL), 1);
    assert_int_equal(planned(s, T0 + 61500, 100, "q", NULL), 3); /* and 0.5 s at 4/s */
    /* Lowered below what is left: capped at the new burst. */
    assert_int_equal(planned(s, T0 + 70000, 100, "q", NULL), 8);
    scheduler_queue_set(s, "q", &lower);
    assert_int_equal(planned(s, T0 + 70000, 100, "q", NULL), 2);
    scheduler_free(s);
}

static void fifo_queue_holds_for_a_retry(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(0);
    struct queue_settings qs = settings(1, 0, 0, false);
    scheduler_queue_set(s, "fifo", &qs);
    scheduler_note_due(s, "fifo", T0);
    int64_t only = -1;
    assert_int_equal(planned(s, T0, 10, "fifo", &only), 1);
    assert_int_equal(only, 0);
    scheduler_claimed(s, "fifo", "h", T0);
    /* Task 7 failed and will be retried at T0 + 1000: the queue waits for it. */
    scheduler_released(s, "fifo", "h", SCHEDULER_RETRY, 7, T0 + 1000);
    assert_int_equal(planned(s, T0 + 10, 10, "fifo", NULL), 0);
    assert_true(scheduler_next_wake(s, T0 + 10) == T0 + 1000);
    only = -1;
    assert_int_equal(planned(s, T0 + 1000, 10, "fifo", &only), 1);
    assert_int_equal(only, 7); /* that task and no other */
    scheduler_claimed(s, "fifo", "h", T0 + 1000);
    scheduler_released(s, "fifo", "h", SCHEDULER_COMPLETED, 7, 0);
    only = -1;
    assert_int_equal(planned(s, T0 + 1001, 10, "fifo", &only), 1);
    assert_int_equal(only, 0); /* the hold is gone */
    scheduler_free(s);
}

static void a_cancelled_held_task_releases_the_hold(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(0);
    struct queue_settings qs = settings(1, 0, 0, false);
    scheduler_queue_set(s, "fifo", &qs);
    scheduler_note_due(s, "fifo", T0);
    scheduler_claimed(s, "fifo", "h", T0);
    scheduler_released(s, "fifo", "h", SCHEDULER_RETRY, 9, T0 + 60000);
    assert_int_equal(planned(s, T0 + 1, 10, "fifo", NULL), 0);
    scheduler_task_gone(s, "fifo", 9, T0);
    int64_t only = -1;
    assert_int_equal(planned(s, T0 + 1, 10, "fifo", &only), 1);
    assert_int_equal(only, 0);
    scheduler_free(s);
}

static void a_clock_step_moves_the_hold_with_it(void **state)
{
    (void)state;
    const int64_t HOUR = 3600000;
    struct scheduler *s = scheduler_new(0);
    struct queue_settings qs = settings(1, 0, 0, false);
    scheduler_queue_set(s, "fifo", &qs);
    scheduler_note_due(s, "fifo", T0);
    scheduler_claimed(s, "fifo", "h", T0);
    scheduler_released(s, "fifo", "h", SCHEDULER_RETRY, 7, T0 + 1000);
    /* The wall clock steps back an hour: the retry still waits its second. */
    scheduler_clock_step(s, -HOUR);
    assert_true(scheduler_next_wake(s, T0 - HOUR) == T0 + 1000 - HOUR);
    assert_int_equal(planned(s, T0 + 999 - HOUR, 10, "fifo", NULL), 0);
    int64_t only = -1;
    assert_int_equal(planned(s, T0 + 1000 - HOUR, 10, "fifo", &only), 1);
    assert_int_equal(only, 7);
    scheduler_free(s);
}

static void capped_hosts_are_listed_and_a_blocked_queue_rests(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(2);
    scheduler_note_due(s, "q", T0);
    scheduler_claimed(s, "q", "slow.example.com", T0);
    scheduler_claimed(s, "q", "slow.example.com", T0);
    struct scheduler_claim plan[4];
    const char *const *hosts;
    size_t n_hosts;
    int n = scheduler_plan(s, T0, 10, plan, 4, &hosts, &n_hosts);
    assert_int_equal(n, 1);
    assert_int_equal(n_hosts, 1);
    assert_string_equal(hosts[0], "slow.example.com");
    /* The claim came back empty although work is due: all of it is on the
     * capped host, so the queue rests instead of spinning... */
    scheduler_claim_done(s, &plan[0], 0, T0);
    assert_int_equal(planned(s, T0 + 1, 10, "q", NULL), 0);
    assert_true(scheduler_next_wake(s, T0 + 1) == INT64_MAX);
    /* ...until that host frees a slot. */
    scheduler_released(s, "q", "slow.example.com", SCHEDULER_COMPLETED, 1, 0);
    assert_int_equal(planned(s, T0 + 2, 10, "q", NULL), 10);
    n = scheduler_plan(s, T0 + 2, 10, plan, 4, &hosts, &n_hosts);
    assert_int_equal(n_hosts, 0);
    scheduler_free(s);
}

static void host_room_counts_down_to_the_cap(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(3);
    assert_int_equal(scheduler_host_room(s, "a"), 3);
    assert_int_equal(scheduler_min_host_room(s), 3);
    scheduler_claimed(s, "q", "a", T0);
    scheduler_claimed(s, "q", "a", T0);
    scheduler_claimed(s, "q", "b", T0);
    assert_int_equal(scheduler_host_room(s, "a"), 1);
    assert_int_equal(scheduler_host_room(s, "b"), 2);
    assert_int_equal(scheduler_min_host_room(s), 1);
    scheduler_free(s);
    s = scheduler_new(0); /* no cap */
    scheduler_claimed(s, "q", "a", T0);
    assert_true(scheduler_host_room(s, "a") == INT32_MAX);
    assert_true(scheduler_min_host_room(s) == INT32_MAX);
    scheduler_free(s);
}

/* A new task due now may skip the plan only where the plan could not decide
 * otherwise: no limit of any kind, nothing overtaken, room on its host. */
static void a_new_task_may_start_at_once_only_without_limits(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(2);
    assert_true(scheduler_may_start_now(s, "new", "h", T0, 0)); /* a queue never seen */
    struct queue_settings qs = settings(0, 0, 1, false);
    scheduler_queue_set(s, "plain", &qs);
    assert_true(scheduler_may_start_now(s, "plain", "h", T0, 0));
    /* Something else due in the queue would be overtaken; later work would not. */
    scheduler_note_due(s, "plain", T0 + 1000);
    assert_true(scheduler_may_start_now(s, "plain", "h", T0, 0));
    scheduler_note_due(s, "plain", T0);
    assert_false(scheduler_may_start_now(s, "plain", "h", T0, 0));
    scheduler_set_due(s, "plain", INT64_MAX);
    assert_true(scheduler_may_start_now(s, "plain", "h", T0, 0));
    /* The host's cap counts calls in flight and claims not yet counted. */
    scheduler_claimed(s, "plain", "h", T0);
    assert_true(scheduler_may_start_now(s, "plain", "h", T0, 0));
    assert_false(scheduler_may_start_now(s, "plain", "h", T0, 1));
    assert_true(scheduler_may_start_now(s, "plain", "other", T0, 1));
    scheduler_claimed(s, "plain", "h", T0);
    assert_false(scheduler_may_start_now(s, "plain", "h", T0, 0));
    /* Any limit sends the task through the plan. */
    const struct queue_settings limited[] = {
        settings(0, 0, 1, true),  /* paused */
        settings(5, 0, 1, false), /* max concurrency */
        settings(1, 0, 1, false), /* FIFO */
        settings(0, 10, 5, false), /* rate */
    };
    for (size_t i = 0; i < sizeof limited / sizeof *limited; i++) {
        scheduler_queue_set(s, "limited", &limited[i]);
        assert_false(scheduler_may_start_now(s, "limited", "x", T0, 0));
    }
    scheduler_free(s);
    s = scheduler_new(0); /* no host cap */
    assert_true(scheduler_may_start_now(s, "q", "h", T0, 1000000));
    scheduler_free(s);
}

static void slots_are_shared_fairly_between_queues(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(0);
    scheduler_note_due(s, "a", T0);
    scheduler_note_due(s, "b", T0);
    struct queue_settings small = settings(2, 0, 0, false);
    scheduler_queue_set(s, "c", &small);
    scheduler_note_due(s, "c", T0);
    /* 10 slots over three queues: c can take only 2, a and b share the rest. */
    assert_int_equal(planned(s, T0, 10, "c", NULL), 2);
    int a = planned(s, T0, 10, "a", NULL), b = planned(s, T0, 10, "b", NULL);
    assert_true(a >= 3 && b >= 3);
    assert_true(a + b <= 8);
    scheduler_free(s);
}

/* The plan is claimed in its order, and when a host's cap limits, the first
 * queue takes the room that frees: the first place goes round. */
static void each_queue_comes_first_in_turn(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(0);
    const char *names[] = {"flood", "q1", "q2", "q3"};
    for (size_t i = 0; i < ARRAY_LEN(names); i++) scheduler_note_due(s, names[i], T0);
    int first[ARRAY_LEN(names)] = {0};
    for (int round = 0; round < 8; round++) {
        struct scheduler_claim plan[16];
        const char *const *hosts;
        size_t n_hosts;
        int n = scheduler_plan(s, T0, 100, plan, 16, &hosts, &n_hosts);
        assert_int_equal(n, 4);
        for (size_t i = 0; i < ARRAY_LEN(names); i++)
            if (!strcmp(plan[0].queue, names[i])) first[i]++;
        for (int k = 0; k < n; k++) scheduler_claim_done(s, &plan[k], plan[k].limit, T0);
    }
    for (size_t i = 0; i < ARRAY_LEN(names); i++)
        if (first[i] != 2) fail_msg("%s came first %d times in 8 plans, not 2", names[i], first[i]);
    scheduler_free(s);
}

/* More queues with work due than a plan holds (the writer's is 64 long):
 * the turns go round all of them. The plan once looked at the first 64
 * queues of the map only, and a queue past them waited until those ran dry. */
static void the_turns_go_round_more_queues_than_a_plan_holds(void **state)
{
    (void)state;
    enum { N = 100, MAX = 64 };
    struct scheduler *s = scheduler_new(0);
    char names[N][8];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "q%d", i);
        scheduler_note_due(s, names[i], T0);
    }
    for (int slots = 10; slots <= 1000; slots *= 100) {
        /* 10 slots a plan: 10 plans give each queue one. 1000: two plans
         * of 64 queues cover all 100. */
        int plans = slots == 10 ? N / 10 : 2;
        int got[N] = {0};
        for (int p = 0; p < plans; p++) {
            struct scheduler_claim plan[MAX];
            const char *const *hosts;
            size_t n_hosts;
            int n = scheduler_plan(s, T0, slots, plan, MAX, &hosts, &n_hosts);
            assert_true(n > 0 && n <= MAX);
            for (int k = 0; k < n; k++) {
                got[atoi(plan[k].queue + 1)] += plan[k].limit;
                scheduler_claim_done(s, &plan[k], plan[k].limit, T0);
            }
        }
        for (int i = 0; i < N; i++)
            if (got[i] == 0) fail_msg("with %d slots, %s got nothing in %d plans", slots, names[i], plans);
        if (slots == 10)
            for (int i = 0; i < N; i++) assert_int_equal(got[i], 1);
    }
    scheduler_free(s);
}

/* Ten thousand queues due: a plan looks at the few it fills its list with,
 * and a slot freed since does not make the writer look at every queue to
 * learn that the next claim is due at once (it did at each freed slot: a
 * fifth of the writer's time with 20,000 queues due). */
static void a_claim_among_many_queues_due_looks_at_a_few(void **state)
{
    (void)state;
    enum { N = 10000, ROUNDS = 100, SLOTS = 10 };
    struct scheduler *s = scheduler_new(0);
    char name[16];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "q%d", i);
        scheduler_note_due(s, name, T0);
    }
    assert_true(scheduler_next_wake(s, T0) <= T0);
    uint64_t before = scheduler_looks(s);
    for (int r = 0; r < ROUNDS; r++) {
        struct scheduler_claim plan[64];
        const char *const *hosts;
        size_t n_hosts;
        int n = scheduler_plan(s, T0 + r, SLOTS, plan, 64, &hosts, &n_hosts);
        assert_int_equal(n, SLOTS);
        for (int k = 0; k < n; k++) {
            scheduler_claimed(s, plan[k].queue, "h", T0 + r);
            scheduler_claim_done(s, &plan[k], plan[k].limit, T0 + r);
        }
        scheduler_released(s, plan[0].queue, "h", SCHEDULER_COMPLETED, 0, 0);
        assert_true(scheduler_next_wake(s, T0 + r) <= T0 + r);
    }
    uint64_t looks = scheduler_looks(s) - before;
    if (looks > (uint64_t)ROUNDS * 64)
        fail_msg("%d claims looked at queues %llu times", ROUNDS, (unsigned long long)looks);
    scheduler_free(s);
}

/* A page of the snapshot: the first names after the cursor, in order, of
 * the queues with settings or counts (one known only for its due time is
 * the store's to show), the same as the whole snapshot cut there. */
static void a_page_of_the_snapshot_is_the_whole_cut_after_a_name(void **state)
{
    (void)state;
    enum { N = 500 };
    struct scheduler *s = scheduler_new(0);
    char name[16];
    for (int i = 0; i < N; i++) {
        int k = (i * 7919) % N; /* made in no order */
        snprintf(name, sizeof name, "q%03d", k);
        if (k % 5 == 0) scheduler_note_due(s, name, T0); /* known, shown by nobody here */
        else scheduler_count(s, name, SCHEDULER_COUNT_ACCEPTED, T0);
    }
    size_t n_all;
    struct queue_info *all = scheduler_snapshot(s, &n_all);
    assert_int_equal(n_all, N);
    const char *afters[] = {NULL, "", "q000", "q1", "q250", "q498", "q499", "z"};
    size_t maxes[] = {1, 10, 399, 400, 1000};
    for (size_t a = 0; a < ARRAY_LEN(afters); a++) {
        for (size_t m = 0; m < ARRAY_LEN(maxes); m++) {
            size_t n;
            struct queue_info *page = scheduler_snapshot_after(s, afters[a], maxes[m], &n);
            size_t want = 0;
            for (size_t i = 0; i < n_all; i++) {
                if (afters[a] && strcmp(all[i].name, afters[a]) <= 0) continue;
                if (all[i].accepted_total == 0) continue;
                if (want == maxes[m]) break;
                if (want >= n) fail_msg("after %s, max %zu: %zu queues, wanted more", afters[a], maxes[m], n);
                assert_string_equal(page[want].name, all[i].name);
                assert_int_equal(page[want].accepted_total, 1);
                want++;
            }
            assert_int_equal(n, want);
            free(page);
        }
    }
    free(all);
    struct queue_info one;
    assert_true(scheduler_queue_info(s, "q001", &one));
    assert_string_equal(one.name, "q001");
    assert_int_equal(one.accepted_total, 1);
    assert_false(scheduler_queue_info(s, "nobody", &one));
    assert_string_equal(one.name, "nobody");
    assert_int_equal(one.accepted_total, 0);
    assert_false(one.configured);
    scheduler_free(s);
}

/* One host with room for one call, two queues due for it: the first queue
 * claimed takes the room, the other's share finds none. The one that got
 * nothing comes first next: the calls alternate. When the plan moved the
 * turn past every queue it gave a share, the first queue took each freed
 * slot and the other waited until it ran dry. */
static void a_queue_whose_share_found_no_room_keeps_its_turn(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(1);
    scheduler_note_due(s, "a", T0);
    scheduler_note_due(s, "b", T0);
    char won[8] = "";
    for (int round = 0; round < 8; round++) {
        struct scheduler_claim plan[16];
        const char *const *hosts;
        size_t n_hosts;
        int n = scheduler_plan(s, T0, 100, plan, 16, &hosts, &n_hosts);
        assert_int_equal(n, 2);
        assert_int_equal(n_hosts, 0);
        /* As the writer claims: the first takes the host's room. */
        scheduler_claimed(s, plan[0].queue, "h", T0);
        scheduler_claim_done(s, &plan[0], 1, T0);
        scheduler_claim_done(s, &plan[1], 0, T0);
        won[round % 2] = plan[0].queue[0];
        if (round % 2) assert_true(won[0] != won[1]);
        /* The host is full now: the next plan lists it and claims nothing. */
        n = scheduler_plan(s, T0, 100, plan, 16, &hosts, &n_hosts);
        assert_int_equal(n_hosts, 1);
        for (int k = 0; k < n; k++) scheduler_claim_done(s, &plan[k], 0, T0);
        scheduler_released(s, won[round % 2] == 'a' ? "a" : "b", "h", SCHEDULER_COMPLETED, 0, 0);
    }
    scheduler_free(s);
}

/* A FIFO queue's task waiting for its retry waits for room on its host: while
 * the host is at its cap the plan leaves the queue out (and no wake comes
 * of it), and once a call there ends the plan takes that task alone, with
 * its host for the writer's own count. The held task was planned, and
 * claimed, whatever its host's calls. */
static void a_held_task_waits_for_room_on_its_host(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(1);
    struct queue_settings fifo = settings(1, 0, 0, false);
    scheduler_queue_set(s, "f", &fifo);
    scheduler_note_due(s, "f", T0);
    scheduler_claimed(s, "f", "h", T0); /* it ran, and failed: its retry is due at T0 + 10 */
    scheduler_released(s, "f", "h", SCHEDULER_RETRY, 7, T0 + 10);
    scheduler_claimed(s, "o", "h", T0 + 5); /* another queue's call fills h */
    int64_t seq = 0;
    assert_int_equal(planned(s, T0 + 20, 10, "f", &seq), 0);
    assert_true(scheduler_next_wake(s, T0 + 20) > T0 + 20);
    scheduler_released(s, "o", "h", SCHEDULER_COMPLETED, 0, 0);
    struct scheduler_claim plan[16];
    const char *const *hosts;
    size_t n_hosts;
    assert_int_equal(scheduler_plan(s, T0 + 30, 10, plan, 16, &hosts, &n_hosts), 1);
    assert_string_equal(plan[0].queue, "f");
    assert_int_equal(plan[0].limit, 1);
    assert_int_equal(plan[0].only_seq, 7);
    assert_non_null(plan[0].hold_host);
    assert_string_equal(plan[0].hold_host, "h");
    /* A hold read back from the store carries its host the same way. */
    scheduler_claimed(s, "o", "h", T0 + 31);
    scheduler_hold(s, "f", 7, T0 + 10, "h");
    assert_int_equal(planned(s, T0 + 40, 10, "f", &seq), 0);
    scheduler_free(s);
}

static void counters_and_snapshot(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(0);
    struct queue_settings qs = settings(5, 1.5, 2, false);
    qs.default_retries = 7;
    scheduler_queue_set(s, "emails", &qs);
    scheduler_count(s, "emails", SCHEDULER_COUNT_ACCEPTED, T0);
    scheduler_count(s, "emails", SCHEDULER_COUNT_ACCEPTED, T0);
    scheduler_claimed(s, "emails", "h", T0);
    scheduler_count(s, "emails", SCHEDULER_COUNT_FAILED, T0);
    scheduler_count(s, "other", SCHEDULER_COUNT_CANCELLED, T0);
    size_t n;
    struct queue_info *info = scheduler_snapshot(s, &n);
    assert_int_equal(n, 2);
    assert_string_equal(info[0].name, "emails"); /* by name */
    assert_true(info[0].configured);
    assert_int_equal(info[0].s.max_concurrency, 5);
    assert_int_equal(info[0].s.default_retries, 7);
    assert_int_equal(info[0].accepted_total, 2);
    assert_int_equal(info[0].dispatched_total, 1);
    assert_int_equal(info[0].failed_total, 1);
    assert_int_equal(info[0].inflight, 1);
    assert_string_equal(info[1].name, "other");
    assert_false(info[1].configured);
    assert_int_equal(info[1].cancelled_total, 1);
    free(info);
    /* Every queue, however many (a fixed 1024 once hid the rest). */
    char name[16];
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof name, "q%04d", i);
        scheduler_queue_set(s, name, &qs);
    }
    info = scheduler_snapshot(s, &n);
    assert_int_equal(n, 3002);
    assert_string_equal(info[n - 1].name, "q2999");
    free(info);
    struct queue_settings got;
    assert_true(scheduler_queue_get(s, "emails", &got));
    assert_true(got.rate_per_sec == 1.5);
    assert_false(scheduler_queue_get(s, "nobody", &got));
    assert_int_equal(got.default_retries, -1); /* defaults */
    scheduler_queue_unset(s, "emails");
    assert_false(scheduler_queue_get(s, "emails", &got));
    scheduler_free(s);
}

static void resync_replaces_inflight_counts(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(1);
    scheduler_claimed(s, "q", "a", T0);
    scheduler_claimed(s, "q", "b", T0);
    assert_int_equal(scheduler_inflight(s), 2);
    scheduler_resync_begin(s);
    scheduler_resync_add(s, "q", "b", 1);
    assert_int_equal(scheduler_inflight(s), 1);
    scheduler_note_due(s, "q", T0);
    struct scheduler_claim plan[2];
    const char *const *hosts;
    size_t n_hosts;
    scheduler_plan(s, T0, 10, plan, 2, &hosts, &n_hosts);
    assert_int_equal(n_hosts, 1); /* only b is at its cap of 1 now */
    assert_string_equal(hosts[0], "b");
    scheduler_free(s);
}

static struct queue_depth depth(const char *name, int64_t queued, int64_t due)
{
    struct queue_depth d;
    memset(&d, 0, sizeof d);
    snprintf(d.name, sizeof d.name, "%s", name);
    d.queued = queued;
    d.due = due;
    return d;
}

/* The store's waiting counts joined into a snapshot: matched by name,
 * queues only the store names added in their place, whatever order the
 * rows come in, a name given twice counted once. */
static void depths_join_by_name_and_add_the_queues_only_tasks_name(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(0);
    struct queue_settings qs = settings(3, 0, 1, false);
    scheduler_queue_set(s, "b", &qs);
    scheduler_count(s, "d", SCHEDULER_COUNT_ACCEPTED, T0);
    scheduler_count(s, "f", SCHEDULER_COUNT_ACCEPTED, T0);
    size_t n;
    struct queue_info *info = scheduler_snapshot(s, &n);
    assert_int_equal(n, 3);
    assert_true(info[0].queued == 0 && info[0].due == 0); /* a snapshot has no store counts */
    /* Out of order, with "a" before all, "c" between, "g" after all, "d" twice. */
    struct queue_depth d[] = {depth("g", 7, 0), depth("d", 2, 1), depth("a", 5, 5), depth("c", 1, 0),
                              depth("d", 3, 3)};
    info = scheduler_join_depths(info, &n, d, 5);
    const char *names[] = {"a", "b", "c", "d", "f", "g"};
    const int64_t queued[] = {5, 0, 1, 5, 0, 7}, due[] = {5, 0, 0, 4, 0, 0};
    assert_int_equal(n, 6);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(info[i].name, names[i]);
        assert_int_equal(info[i].queued, queued[i]);
        assert_int_equal(info[i].due, due[i]);
    }
    assert_true(info[1].configured); /* b kept its settings and counters */
    assert_int_equal(info[1].s.max_concurrency, 3);
    assert_int_equal(info[3].accepted_total, 1);
    assert_false(info[0].configured); /* a: defaults, no counts */
    assert_int_equal(info[0].s.burst, 1);
    assert_int_equal(info[0].s.default_retries, -1);
    assert_int_equal(info[0].accepted_total, 0);
    free(info);

    /* No queues at all, or no waiting tasks. */
    n = 0;
    assert_null(scheduler_join_depths(NULL, &n, NULL, 0));
    assert_int_equal(n, 0);
    struct queue_depth one = depth("x", 1, 1);
    info = scheduler_join_depths(NULL, &n, &one, 1);
    assert_int_equal(n, 1);
    assert_string_equal(info[0].name, "x");
    free(info);
    info = scheduler_snapshot(s, &n);
    info = scheduler_join_depths(info, &n, NULL, 0);
    assert_int_equal(n, 3);
    assert_string_equal(info[2].name, "f");
    free(info);
    scheduler_free(s);
}

/* Many queues, as an enqueue key can make them: exact. (The join is a merge;
 * it was a scan of every queue for each row, so 40,000 queue names took
 * /metrics 8 s.) */
static void depths_join_many_queues(void **state)
{
    (void)state;
    enum { N = 60000 };
    struct scheduler *s = scheduler_new(0);
    char name[65];
    /* The scheduler knows the even ones; the store has tasks in every third. */
    for (int i = 0; i < N; i += 2) {
        snprintf(name, sizeof name, "q%06d", i);
        scheduler_count(s, name, SCHEDULER_COUNT_ACCEPTED, T0);
    }
    struct queue_depth *d = calloc(N / 3 + 1, sizeof *d);
    assert_non_null(d);
    size_t nd = 0;
    for (int i = 0; i < N; i += 3) {
        snprintf(name, sizeof name, "q%06d", i);
        d[nd++] = depth(name, i + 1, i % 2);
    }
    size_t n;
    struct queue_info *info = scheduler_snapshot(s, &n);
    info = scheduler_join_depths(info, &n, d, nd);
    /* Evens, plus the odd multiples of 3. */
    size_t want = N / 2 + N / 6;
    assert_int_equal(n, want);
    size_t k = 0;
    for (int i = 0; i < N; i++) {
        if (i % 2 && i % 3) continue;
        snprintf(name, sizeof name, "q%06d", i);
        assert_string_equal(info[k].name, name);
        assert_int_equal(info[k].queued, i % 3 ? 0 : i + 1);
        assert_int_equal(info[k].accepted_total, i % 2 ? 0 : 1);
        k++;
    }
    assert_int_equal(k, n);
    free(info);
    free(d);
    scheduler_free(s);
}

/* Queues without settings whose work is done are forgotten once unused for
 * the idle time, counters and all; one with settings, waiting, running or
 * held work stays, and a forgotten queue used again starts anew. */
static void idle_queues_without_settings_are_forgotten(void **state)
{
    (void)state;
    const int64_t hour = 3600 * 1000;
    struct scheduler *s = scheduler_new(0);
    struct queue_settings fifo = settings(1, 0, 1, false), plain = settings(2, 0, 1, false);
    scheduler_count(s, "done", SCHEDULER_COUNT_ACCEPTED, T0);      /* finished: nothing left */
    scheduler_count(s, "done", SCHEDULER_COUNT_COMPLETED, T0);
    scheduler_queue_set(s, "set", &plain);                         /* settings */
    scheduler_note_due(s, "waiting", T0 + hour);                   /* a delayed task */
    scheduler_claimed(s, "running", "h", T0);                      /* a call in flight */
    scheduler_queue_set(s, "unset", &plain);                       /* settings deleted since */
    scheduler_queue_unset(s, "unset");
    scheduler_queue_set(s, "held", &fifo);                         /* FIFO holding a retry */
    scheduler_hold(s, "held", 42, T0 + hour, "h");
    size_t n;
    free(scheduler_snapshot(s, &n));
    assert_int_equal(n, 6);

    int64_t now = util_mono_ms();
    assert_int_equal(scheduler_forget_idle(s, now, hour), 0);      /* all used just now */
    assert_int_equal(scheduler_forget_idle(s, now + 2 * hour, hour), 2); /* done, unset */
    struct queue_info *info = scheduler_snapshot(s, &n);
    assert_int_equal(n, 4);
    assert_string_equal(info[0].name, "held");
    assert_string_equal(info[1].name, "running");
    assert_string_equal(info[2].name, "set");
    assert_string_equal(info[3].name, "waiting");
    free(info);
    int64_t seq = 0;
    assert_int_equal(planned(s, T0 + hour, 10, "held", &seq), 1); /* the hold is kept */
    assert_int_equal(seq, 42);
    /* Dispatch is as before: the delayed task is planned when due (beside the held one). */
    assert_int_equal(planned(s, T0 + hour - 1, 10, "waiting", NULL), 0);
    assert_int_equal(planned(s, T0 + hour, 10, "waiting", NULL), 9);

    /* Once its work is done and reported, a queue goes too. */
    scheduler_released(s, "running", "h", SCHEDULER_COMPLETED, 0, 0);
    scheduler_set_due(s, "waiting", INT64_MAX);
    assert_int_equal(scheduler_forget_idle(s, util_mono_ms() + 2 * hour, hour), 2);
    assert_int_equal(scheduler_inflight(s), 0);

    /* Used again: a new queue, its counters from 0. */
    scheduler_count(s, "done", SCHEDULER_COUNT_ACCEPTED, T0);
    info = scheduler_snapshot(s, &n);
    assert_int_equal(n, 3);
    assert_string_equal(info[0].name, "done");
    assert_int_equal(info[0].accepted_total, 1);
    assert_int_equal(info[0].completed_total, 0);
    free(info);
    scheduler_free(s);
}

/* The wake the scheduler keeps between looks at every queue: each change
 * that may let a queue start sooner must reach the plan at once, and with
 * thousands of queues waiting for later nothing is planned before time. */
static void the_known_wake_follows_every_change_that_frees_a_queue(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(2);
    char name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "q%d", i);
        scheduler_note_due(s, name, T0 + 3600000 + i);
    }
    assert_true(scheduler_next_wake(s, T0) == T0 + 3600000);
    assert_int_equal(planned(s, T0, 10, "q0", NULL), 0);
    /* A task due sooner, after the wake was known. */
    scheduler_note_due(s, "late", T0 + 100);
    assert_true(scheduler_next_wake(s, T0) == T0 + 100);
    assert_int_equal(planned(s, T0 + 100, 10, "late", NULL), 10);
    /* A paused queue with work due: nothing, until its settings change. */
    struct queue_settings paused = settings(0, 0, 0, true), open = settings(0, 0, 0, false);
    scheduler_queue_set(s, "p", &paused);
    scheduler_note_due(s, "p", T0);
    scheduler_set_due(s, "late", INT64_MAX);
    assert_int_equal(planned(s, T0 + 200, 10, "p", NULL), 0);
    assert_true(scheduler_next_wake(s, T0 + 200) == T0 + 3600000);
    scheduler_queue_set(s, "p", &open);
    assert_int_equal(planned(s, T0 + 200, 10, "p", NULL), 10);
    /* A full queue (max concurrency 1) starts its next task once the
     * running one is released. */
    struct queue_settings one = settings(2, 0, 0, false);
    scheduler_queue_set(s, "c", &one);
    scheduler_note_due(s, "c", T0);
    scheduler_claimed(s, "c", "h1", T0 + 300);
    scheduler_claimed(s, "c", "h2", T0 + 300);
    scheduler_queue_set(s, "p", &paused);
    assert_int_equal(planned(s, T0 + 300, 10, "c", NULL), 0);
    assert_true(scheduler_next_wake(s, T0 + 300) == T0 + 3600000);
    scheduler_released(s, "c", "h1", SCHEDULER_COMPLETED, 1, 0);
    assert_int_equal(planned(s, T0 + 300, 10, "c", NULL), 1);
    /* A host at its cap (2) frees a slot: the queue resting behind it goes on. */
    scheduler_claimed(s, "c", "h1", T0 + 400);
    scheduler_note_due(s, "h", T0);
    scheduler_claimed(s, "h", "h2", T0 + 400); /* h2 now holds 2: capped */
    struct scheduler_claim plan[16];
    const char *const *hosts;
    size_t n_hosts;
    scheduler_plan(s, T0 + 400, 10, plan, 16, &hosts, &n_hosts);
    struct scheduler_claim rest = {.limit = 10};
    snprintf(rest.queue, sizeof rest.queue, "h");
    scheduler_claim_done(s, &rest, 0, T0 + 400); /* every due task of h is on h2 */
    assert_int_equal(planned(s, T0 + 400, 10, "h", NULL), 0);
    scheduler_released(s, "h", "h2", SCHEDULER_COMPLETED, 2, 0);
    assert_true(planned(s, T0 + 400, 10, "h", NULL) > 0);
    /* A rate-limited queue: the known wake is when its bucket has a token. */
    struct queue_settings slow = settings(0, 1, 1, false);
    scheduler_queue_set(s, "r", &slow);
    scheduler_note_due(s, "r", T0);
    scheduler_set_due(s, "c", INT64_MAX);
    scheduler_set_due(s, "h", INT64_MAX);
    scheduler_set_due(s, "p", INT64_MAX);
    assert_int_equal(planned(s, T0 + 500, 10, "r", NULL), 1);
    scheduler_claimed(s, "r", "h3", T0 + 500);
    scheduler_released(s, "r", "h3", SCHEDULER_COMPLETED, 3, 0);
    int64_t at = scheduler_next_wake(s, T0 + 500);
    assert_true(at > T0 + 500 && at <= T0 + 1500);
    assert_int_equal(planned(s, T0 + 600, 10, "r", NULL), 0);
    assert_int_equal(planned(s, at, 10, "r", NULL), 1);
    scheduler_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(due_work_is_planned_and_future_work_is_not),
        cmocka_unit_test(a_paused_queue_gets_nothing_and_no_wake),
        cmocka_unit_test(max_concurrency_bounds_what_runs),
        cmocka_unit_test(the_rate_is_a_token_bucket),
        cmocka_unit_test(fifo_queue_holds_for_a_retry),
        cmocka_unit_test(a_cancelled_held_task_releases_the_hold),
        cmocka_unit_test(a_clock_step_moves_the_hold_with_it),
        cmocka_unit_test(capped_hosts_are_listed_and_a_blocked_queue_rests),
        cmocka_unit_test(host_room_counts_down_to_the_cap),
        cmocka_unit_test(a_new_task_may_start_at_once_only_without_limits),
        cmocka_unit_test(slots_are_shared_fairly_between_queues),
        cmocka_unit_test(each_queue_comes_first_in_turn),
        cmocka_unit_test(the_turns_go_round_more_queues_than_a_plan_holds),
        cmocka_unit_test(a_claim_among_many_queues_due_looks_at_a_few),
        cmocka_unit_test(a_queue_whose_share_found_no_room_keeps_its_turn),
        cmocka_unit_test(a_held_task_waits_for_room_on_its_host),
        cmocka_unit_test(a_page_of_the_snapshot_is_the_whole_cut_after_a_name),
        cmocka_unit_test(counters_and_snapshot),
        cmocka_unit_test(resync_replaces_inflight_counts),
        cmocka_unit_test(depths_join_by_name_and_add_the_queues_only_tasks_name),
        cmocka_unit_test(depths_join_many_queues),
        cmocka_unit_test(idle_queues_without_settings_are_forgotten),
        cmocka_unit_test(the_known_wake_follows_every_change_that_frees_a_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
