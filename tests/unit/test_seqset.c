/*
 * test_seqset: the set of held leases. Checked against a plain array model
 * under a long random mix of adds and removes (which exercises growth and
 * backward-shift deletion across wrapped runs), plus the edge cases.
 */
#include "testutil.h"

#include <stdlib.h>

#include "seqset.h"

static void empty_set_has_nothing(void **state)
{
    (void)state;
    struct seqset s;
    seqset_init(&s);
    assert_false(seqset_has(&s, 1));
    assert_false(seqset_remove(&s, 1));
    assert_int_equal(s.count, 0);
    seqset_free(&s);
}

static void add_has_remove(void **state)
{
    (void)state;
    struct seqset s;
    seqset_init(&s);
    seqset_add(&s, 42);
    seqset_add(&s, 42);
    assert_int_equal(s.count, 1);
    assert_true(seqset_has(&s, 42));
    assert_false(seqset_has(&s, 43));
    assert_true(seqset_remove(&s, 42));
    assert_false(seqset_remove(&s, 42));
    assert_false(seqset_has(&s, 42));
    assert_int_equal(s.count, 0);
    seqset_free(&s);
}

static void matches_a_model_under_random_operations(void **state)
{
    (void)state;
    enum { RANGE = 3000, OPS = 200000 };
    static bool model[RANGE + 1];
    struct seqset s;
    seqset_init(&s);
    srand(7);
    size_t count = 0;
    for (int k = 0; k < OPS; k++) {
        int64_t seq = 1 + rand() % RANGE;
        if (rand() % 3) { /* adds outnumber removes early, then it churns */
            if (!model[seq]) count++;
            model[seq] = true;
            seqset_add(&s, seq);
        } else {
            assert_int_equal(seqset_remove(&s, seq), model[seq]);
            if (model[seq]) count--;
            model[seq] = false;
        }
        if (k % 997 == 0)
            for (int64_t q = 1; q <= RANGE; q++) assert_int_equal(seqset_has(&s, q), model[q]);
    }
    assert_int_equal(s.count, count);
    for (int64_t q = 1; q <= RANGE; q++) {
        assert_int_equal(seqset_has(&s, q), model[q]);
        if (model[q]) assert_true(seqset_remove(&s, q));
    }
    assert_int_equal(s.count, 0);
    seqset_free(&s);
}

static void large_sequence_numbers_work(void **state)
{
    (void)state;
    struct seqset s;
    seqset_init(&s);
    for (int64_t i = 0; i < 1000; i++) seqset_add(&s, INT64_MAX - i * 4096);
    for (int64_t i = 0; i < 1000; i++) assert_true(seqset_has(&s, INT64_MAX - i * 4096));
    assert_false(seqset_has(&s, 5));
    for (int64_t i = 0; i < 1000; i += 2) assert_true(seqset_remove(&s, INT64_MAX - i * 4096));
    for (int64_t i = 0; i < 1000; i++) assert_int_equal(seqset_has(&s, INT64_MAX - i * 4096), i % 2 == 1);
    seqset_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_set_has_nothing),
        cmocka_unit_test(add_has_remove),
        cmocka_unit_test(matches_a_model_under_random_operations),
        cmocka_unit_test(large_sequence_numbers_work),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
