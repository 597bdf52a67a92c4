/*
 * test_auth: API keys in "Authorization: Bearer <key>": none configured,
 * several, wrong scheme, missing header, wrong key, stray spaces; scopes and
 * tenants from key.<label> lines, hashed keys, and reload.
 */
#include "testutil.h"

#include "auth.h"

/* A config from an optional file text and optional --api-key value. */
static void load(struct config *cfg, const char *file_text, const char *api_keys)
{
    char dir[512], err[512];
    tu_mkdtemp(dir, sizeof dir);
    char *path = tu_write_file(dir, "aq.conf", file_text ? file_text : "");
    char keys[512];
    snprintf(keys, sizeof keys, "%s", api_keys ? api_keys : "");
    char *argv[] = {"asyncqueue", "--config", path, "--api-key", keys, NULL};
    char *envp[] = {NULL};
    enum config_mode mode;
    int rc = config_load(cfg, api_keys ? 5 : 3, argv, envp, &mode, err, sizeof err);
    if (rc != EXIT_OK) fail_msg("config_load failed: %s", err);
    unlink(path);
    free(path);
    tu_rmtree(dir);
}

static struct auth *auth_from(const char *file_text, const char *api_keys)
{
    struct config cfg;
    load(&cfg, file_text, api_keys);
    struct auth *a = auth_new(&cfg);
    config_free(&cfg);
    return a;
}

static bool check(struct auth *a, const char *header)
{
    struct principal p;
    return auth_check(a, header, &p);
}

static void no_keys_allows_everything_as_admin(void **state)
{
    (void)state;
    struct auth *a = auth_from(NULL, NULL);
    struct principal p;
    assert_false(auth_enabled(a));
    assert_true(auth_check(a, NULL, &p));
    assert_int_equal(p.scope, AUTH_SCOPE_ADMIN);
    assert_string_equal(p.tenant, "");
    assert_true(check(a, ""));
    assert_true(check(a, "Bearer anything"));
    assert_true(check(a, "Basic dXNlcjpwYXNz"));
    auth_free(a);
    auth_free(NULL);
}

static void several_keys_each_work(void **state)
{
    (void)state;
    struct auth *a = auth_from(NULL, "k1,second-key,a much longer third key with spaces");
    assert_true(auth_enabled(a));
    assert_true(check(a, "Bearer k1"));
    assert_true(check(a, "Bearer second-key"));
    assert_true(check(a, "Bearer a much longer third key with spaces"));
    assert_true(check(a, "bearer k1")); /* the scheme is case-insensitive */
    assert_true(check(a, "BEARER second-key"));
    struct principal p;
    assert_true(auth_check(a, "Bearer k1", &p));
    assert_int_equal(p.scope, AUTH_SCOPE_ADMIN);
    assert_string_equal(p.label, "api_key");
    auth_free(a);
}

static void wrong_scheme_or_missing_header_is_refused(void **state)
{
    (void)state;
    struct auth *a = auth_from(NULL, "k1");
    assert_false(check(a, NULL));
    assert_false(check(a, ""));
    assert_false(check(a, "k1"));
    assert_false(check(a, "Basic k1"));
    assert_false(check(a, "Token k1"));
    assert_false(check(a, "Bearerk1"));
    assert_false(check(a, "Bearer"));
    assert_false(check(a, "Bearer "));
    assert_false(check(a, "Bear k1"));
    auth_free(a);
}

static void wrong_key_is_refused(void **state)
{
    (void)state;
    struct auth *a = auth_from(NULL, "k1,second-key");
    assert_false(check(a, "Bearer k2"));
    assert_false(check(a, "Bearer K1"));   /* keys are case-sensitive */
    assert_false(check(a, "Bearer k"));    /* a prefix */
    assert_false(check(a, "Bearer k1k1")); /* an extension */
    assert_false(check(a, "Bearer second-ke"));
    assert_false(check(a, "Bearer k1,second-key"));
    assert_false(check(a, "Bearer k1 second-key"));
    auth_free(a);
}

static void spaces_around_the_key(void **state)
{
    (void)state;
    struct auth *a = auth_from(NULL, "k1");
    /* RFC 7235 allows more than one space after the scheme. */
    assert_true(check(a, "Bearer   k1"));
    /* A space that is part of the value is part of the key. */
    assert_false(check(a, "Bearer k1 "));
    assert_false(check(a, " Bearer k1"));
    assert_false(check(a, "Bearer\tk1"));
    assert_false(check(a, "Bearer k 1"));
    auth_free(a);
}

static void scopes_and_tenants_come_from_key_lines(void **state)
{
    (void)state;
    struct auth *a = auth_from("key.ci = enqueue-key-0123456789 scope=enqueue tenant=acme\n"
                               "key.ro = readonly-key-0123456789 scope=read\n"
                               "key.ops = operator-key-012345678\n",
                               NULL);
    struct principal p;
    assert_true(auth_check(a, "Bearer enqueue-key-0123456789", &p));
    assert_int_equal(p.scope, AUTH_SCOPE_ENQUEUE);
    assert_string_equal(p.tenant, "acme");
    assert_string_equal(p.label, "ci");
    assert_true(auth_check(a, "Bearer readonly-key-0123456789", &p));
    assert_int_equal(p.scope, AUTH_SCOPE_READ);
    assert_string_equal(p.tenant, "");
    assert_true(auth_check(a, "Bearer operator-key-012345678", &p));
    assert_int_equal(p.scope, AUTH_SCOPE_ADMIN); /* the default scope */
    assert_string_equal(auth_scope_name(AUTH_SCOPE_ENQUEUE), "enqueue");
    auth_free(a);
}

static void a_hashed_key_matches_the_key_it_was_made_from(void **state)
{
    (void)state;
    char hash[72], line[200];
    auth_hash_key("the-real-key-0123456789", hash);
    assert_int_equal(strlen(hash), 7 + 64);
    assert_memory_equal(hash, "sha256:", 7);
    snprintf(line, sizeof line, "key.hashed = %s scope=read tenant=t1\n", hash);
    struct auth *a = auth_from(line, NULL);
    struct principal p;
    assert_true(auth_check(a, "Bearer the-real-key-0123456789", &p));
    assert_string_equal(p.tenant, "t1");
    /* The digest itself is not a key. */
    char bearer[100];
    snprintf(bearer, sizeof bearer, "Bearer %s", hash);
    assert_false(check(a, bearer));
    auth_free(a);
}

/* A key on two lines (the first would win) is a configuration error. */
static void a_key_given_twice_is_refused(void **state)
{
    (void)state;
    char hash[72], text[400], err[400];
    auth_hash_key("the-shared-key-0123456789", hash);
    static const struct {
        const char *file, *api_keys, *needle;
    } bad[] = {
        {"key.ro = the-shared-key-0123456789 scope=read tenant=a\n", "the-shared-key-0123456789",
         "as api_key item 1 and as key.ro"},
        {"key.a = the-shared-key-0123456789 scope=read\nkey.b = ", NULL, "as key.a and as key.b"},
        {"", "key-one-0123456789ab,key-two-0123456789ab,key-one-0123456789ab", "as api_key item 1 and as api_key item 3"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct config cfg;
        snprintf(text, sizeof text, "%s%s", bad[i].file, i == 1 ? hash : ""); /* b: the digest of a's key */
        if (i == 1) strcat(text, " scope=enqueue\n");
        load(&cfg, text, bad[i].api_keys);
        if (auth_check_config(&cfg, err, sizeof err) != -1) fail_msg("case %zu: taken", i);
        if (!strstr(err, bad[i].needle)) fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].needle);
        assert_null(strstr(err, "the-shared-key")); /* never the key itself */
        config_free(&cfg);
    }
    struct config ok;
    load(&ok, "key.a = the-shared-key-0123456789 scope=read\nkey.b = another-key-0123456789 scope=read\n",
         "key-one-0123456789ab");
    assert_int_equal(auth_check_config(&ok, err, sizeof err), 0);
    config_free(&ok);
}

static void reload_swaps_the_keys(void **state)
{
    (void)state;
    struct auth *a = auth_from(NULL, "old-key");
    assert_true(check(a, "Bearer old-key"));
    struct config both, new_only;
    load(&both, NULL, "new-key,old-key");
    load(&new_only, NULL, "new-key");
    auth_reload(a, &both); /* rotation: both valid for a while */
    assert_true(check(a, "Bearer old-key"));
    assert_true(check(a, "Bearer new-key"));
    auth_reload(a, &new_only);
    assert_false(check(a, "Bearer old-key"));
    assert_true(check(a, "Bearer new-key"));
    config_free(&both);
    config_free(&new_only);
    auth_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_keys_allows_everything_as_admin),
        cmocka_unit_test(several_keys_each_work),
        cmocka_unit_test(wrong_scheme_or_missing_header_is_refused),
        cmocka_unit_test(wrong_key_is_refused),
        cmocka_unit_test(spaces_around_the_key),
        cmocka_unit_test(scopes_and_tenants_come_from_key_lines),
        cmocka_unit_test(a_hashed_key_matches_the_key_it_was_made_from),
        cmocka_unit_test(a_key_given_twice_is_refused),
        cmocka_unit_test(reload_swaps_the_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
