/*
 * test_id: the UUIDv7 layout (time stamp, version, variant), ordering by
 * time, and id_valid.
 */
#include "testutil.h"

#include <ctype.h>

#include "id.h"
#include "util.h"

/* The 48-bit time stamp from the first 12 hex digits (dash at 8 skipped). */
static uint64_t id_ms(const char *id)
{
    uint64_t v = 0;
    for (int i = 0; i < 13; i++) {
        if (i == 8) continue;
        int c = id[i];
        v = v << 4 | (uint64_t)(isdigit(c) ? c - '0' : c - 'a' + 10);
    }
    return v;
}

static int hexval(char c)
{
    return isdigit((unsigned char)c) ? c - '0' : c - 'a' + 10;
}

static void layout_is_uuid_v7(void **state)
{
    (void)state;
    static const int64_t times[] = {0, 1, 1795860742123LL, 0x0123456789abLL, 0xffffffffffffLL};
    for (size_t i = 0; i < ARRAY_LEN(times); i++) {
        for (int k = 0; k < 50; k++) {
            char id[ID_LEN];
            memset(id, 'z', sizeof id);
            id_new(times[i], id);
            assert_int_equal(strlen(id), 36);
            for (int p = 0; p < 36; p++) {
                if (p == 8 || p == 13 || p == 18 || p == 23)
                    assert_int_equal(id[p], '-');
                else if (!isdigit((unsigned char)id[p]) && !(id[p] >= 'a' && id[p] <= 'f'))
                    fail_msg("'%s': not lower-case hex at %d", id, p);
            }
            assert_int_equal(id[14], '7');                   /* version */
            assert_int_equal(hexval(id[19]) & 0xc, 0x8);     /* variant 10xx */
            assert_int_equal(id_ms(id), (uint64_t)times[i]); /* first 48 bits */
            assert_true(id_valid(id));
        }
    }
}

/* Many ids in the same millisecond still sort in the order they were made. */
static void ids_of_one_millisecond_sort_in_order(void **state)
{
    (void)state;
    char prev[ID_LEN], next[ID_LEN];
    id_new(1795860742999LL, prev);
    for (int i = 0; i < 1500; i++) {
        id_new(1795860742999LL, next);
        if (strcmp(prev, next) >= 0) fail_msg("%s then %s", prev, next);
        memcpy(prev, next, ID_LEN);
    }
}

static void ids_sort_by_time(void **state)
{
    (void)state;
    static const int64_t starts[] = {1795860742123LL, 0x00ffffffffffLL, 0x0fffffffffffLL, 999, 0};
    for (size_t i = 0; i < ARRAY_LEN(starts); i++) {
        char prev[ID_LEN], next[ID_LEN];
        id_new(starts[i], prev);
        for (int64_t ms = starts[i] + 1; ms < starts[i] + 20; ms++) {
            id_new(ms, next);
            if (strcmp(prev, next) >= 0)
                fail_msg("%s (ms %lld) !< %s", prev, (long long)ms - 1, next);
            memcpy(prev, next, sizeof prev);
        }
    }
    /* Far apart too. */
    char a[ID_LEN], b[ID_LEN];
    id_new(1000, a);
    id_new(1795860742123LL, b);
    assert_true(strcmp(a, b) < 0);
}

/* Ids asked for with a time a moment older than the last id's (a batch
 * takes its time once, then makes an id for each task while other requests
 * make theirs) still come after it, in the order they were made: a batch's
 * ids sorted out of order in 3-7 % of batches while single creates ran. A
 * clock stepped back further gives the time it was given. */
static void an_id_asked_for_with_a_slightly_older_time_comes_after(void **state)
{
    (void)state;
    const int64_t t = 1795860742000LL;
    for (int round = 0; round < 200; round++) {
        char batch[ID_LEN], other[ID_LEN], next[ID_LEN];
        id_new(t + round * 10, batch);
        id_new(t + round * 10 + 7, other); /* another request, 7 ms later */
        id_new(t + round * 10, next);      /* the batch's next task */
        if (strcmp(batch, next) >= 0) fail_msg("%s then %s", batch, next);
        if (strcmp(other, next) >= 0) fail_msg("%s then %s", other, next);
    }
    char before[ID_LEN], stepped[ID_LEN];
    id_new(t + 10000, before);
    id_new(t, stepped); /* ten seconds back: a step, not a late reading */
    assert_memory_equal(stepped, "01a221a4-3f70", 13);
    assert_true(strcmp(before, stepped) > 0);
}

static void ids_in_one_millisecond_differ(void **state)
{
    (void)state;
    char a[ID_LEN], b[ID_LEN];
    id_new(1795860742123LL, a);
    id_new(1795860742123LL, b);
    assert_string_not_equal(a, b);
    assert_memory_equal(a, b, 13); /* same time stamp */
}

static void valid_ids(void **state)
{
    (void)state;
    assert_true(id_valid("01a221b7-4f1f-707d-9c40-a269a508bd38"));
    assert_true(id_valid("01A221B7-4F1F-707D-9C40-A269A508BD38"));
    assert_true(id_valid("f47ac10b-58cc-4372-a567-0e02b2c3d479")); /* v4 is a UUID too */
    assert_true(id_valid("00000000-0000-0000-0000-000000000000"));
}

static void invalid_ids(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "01a221b7-4f1f-707d-9c40-a269a508bd3",   /* 35 */
        "01a221b7-4f1f-707d-9c40-a269a508bd388", /* 37 */
        "01a221b74f1f707d9c40a269a508bd38",      /* no dashes */
        "01a221b7-4f1f-707d-9c40a-269a508bd38",  /* dash moved */
        "01a221b7_4f1f_707d_9c40_a269a508bd38",
        "01a221b7-4f1f-707d-9c40-a269a508bd3g", /* not hex */
        "{1a221b7-4f1f-707d-9c40-a269a508bd3}",
        "01a221b7-4f1f-707d-9c40-a269a508bd3\n",
        " 1a221b7-4f1f-707d-9c40-a269a508bd38",
        "urn:uuid:01a221b7-4f1f-707d-9c40-a269a508bd38",
        "../../../../../../../../../etc/passwd",
        "01a221b7-4f1f-707d-9c40-a269a508bd38/x",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        if (id_valid(bad[i])) fail_msg("'%s' accepted", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(layout_is_uuid_v7),
        cmocka_unit_test(ids_sort_by_time),
        cmocka_unit_test(ids_of_one_millisecond_sort_in_order),
        cmocka_unit_test(an_id_asked_for_with_a_slightly_older_time_comes_after),
        cmocka_unit_test(ids_in_one_millisecond_differ),
        cmocka_unit_test(valid_ids),
        cmocka_unit_test(invalid_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
