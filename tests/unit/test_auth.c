/*
 * test_auth: API keys in "Authorization: Bearer <key>": none configured,
 * several, wrong scheme, missing header, wrong key, stray spaces.
 */
#include "testutil.h"

#include "auth.h"

static void no_keys_allows_everything(void **state)
{
    (void)state;
    char *empty[] = {NULL};
    struct auth *lists[] = {auth_new(NULL), auth_new(empty)};
    for (size_t i = 0; i < 2; i++) {
        assert_false(auth_enabled(lists[i]));
        assert_true(auth_check(lists[i], NULL));
        assert_true(auth_check(lists[i], ""));
        assert_true(auth_check(lists[i], "Bearer anything"));
        assert_true(auth_check(lists[i], "Basic dXNlcjpwYXNz"));
        auth_free(lists[i]);
    }
    auth_free(NULL);
}

static void several_keys_each_work(void **state)
{
    (void)state;
    char *keys[] = {"k1", "second-key", "a much longer third key with spaces", NULL};
    struct auth *a = auth_new(keys);
    assert_true(auth_enabled(a));
    assert_true(auth_check(a, "Bearer k1"));
    assert_true(auth_check(a, "Bearer second-key"));
    assert_true(auth_check(a, "Bearer a much longer third key with spaces"));
    assert_true(auth_check(a, "bearer k1")); /* the scheme is case-insensitive */
    assert_true(auth_check(a, "BEARER second-key"));
    auth_free(a);
}

static void wrong_scheme_or_missing_header_is_refused(void **state)
{
    (void)state;
    char *keys[] = {"k1", NULL};
    struct auth *a = auth_new(keys);
    assert_false(auth_check(a, NULL));
    assert_false(auth_check(a, ""));
    assert_false(auth_check(a, "k1"));
    assert_false(auth_check(a, "Basic k1"));
    assert_false(auth_check(a, "Token k1"));
    assert_false(auth_check(a, "Bearerk1"));
    assert_false(auth_check(a, "Bearer"));
    assert_false(auth_check(a, "Bearer "));
    assert_false(auth_check(a, "Bear k1"));
    auth_free(a);
}

static void wrong_key_is_refused(void **state)
{
    (void)state;
    char *keys[] = {"k1", "second-key", NULL};
    struct auth *a = auth_new(keys);
    assert_false(auth_check(a, "Bearer k2"));
    assert_false(auth_check(a, "Bearer K1"));   /* keys are case-sensitive */
    assert_false(auth_check(a, "Bearer k"));    /* a prefix */
    assert_false(auth_check(a, "Bearer k1k1")); /* an extension */
    assert_false(auth_check(a, "Bearer second-ke"));
    assert_false(auth_check(a, "Bearer k1,second-key"));
    assert_false(auth_check(a, "Bearer k1 second-key"));
    auth_free(a);
}

static void spaces_around_the_key(void **state)
{
    (void)state;
    char *keys[] = {"k1", NULL};
    struct auth *a = auth_new(keys);
    /* RFC 7235 allows more than one space after the scheme. */
    assert_true(auth_check(a, "Bearer   k1"));
    /* A space that is part of the value is part of the key. */
    assert_false(auth_check(a, "Bearer k1 "));
    assert_false(auth_check(a, " Bearer k1"));
    assert_false(auth_check(a, "Bearer\tk1"));
    assert_false(auth_check(a, "Bearer k 1"));
    auth_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_keys_allows_everything),
        cmocka_unit_test(several_keys_each_work),
        cmocka_unit_test(wrong_scheme_or_missing_header_is_refused),
        cmocka_unit_test(wrong_key_is_refused),
        cmocka_unit_test(spaces_around_the_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
