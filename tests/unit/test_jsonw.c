/*
 * test_jsonw: the direct JSON writer prints what cJSON prints for the same
 * values (escapes, numbers), places commas right in nested objects and
 * arrays, and writes raw JSON and times as they are.
 */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>

#include "jsonw.h"

static char *cjson_text(cJSON *v)
{
    char *s = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    return s;
}

static void strings_are_escaped_as_cjson_does(void **state)
{
    (void)state;
    static const char *const strings[] = {
        "", "plain", "quote \" and backslash \\", "\b\f\n\r\t", "\x01\x1f\x7f", "/slash/",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "tail\\",
    };
    for (size_t i = 0; i < ARRAY_LEN(strings); i++) {
        struct jsonw w;
        jw_init(&w);
        jw_string(&w, strings[i]);
        char *got = jw_finish(&w);
        char *want = cjson_text(cJSON_CreateString(strings[i]));
        assert_string_equal(got, want);
        free(got);
        free(want);
    }
}

static void numbers_print_as_cjson_does(void **state)
{
    (void)state;
    static const double numbers[] = {
        0, -0.0, 1, -1, 42, 300, 0.5, 0.25, 1.5, 0.1, 1.0 / 3, 2.5e-7, 123456789012.0, 999999999999999.0,
        1e15, 1e16, 12345678901234567890.0, -2147483648.0, 2147483648.0, 1e300, -1e-300, NAN, INFINITY,
    };
    for (size_t i = 0; i < ARRAY_LEN(numbers); i++) {
        struct jsonw w;
        jw_init(&w);
        jw_number(&w, numbers[i]);
        char *got = jw_finish(&w);
        char *want = cjson_text(cJSON_CreateNumber(numbers[i]));
        if (strcmp(got, want) != 0) fail_msg("%.17g: got %s, cJSON prints %s", numbers[i], got, want);
        free(got);
        free(want);
    }
}

static void nesting_places_commas(void **state)
{
    (void)state;
    struct jsonw w;
    jw_init(&w);
    jw_object(&w);
    jw_key(&w, "a");
    jw_number(&w, 1);
    jw_key(&w, "list");
    jw_array(&w);
    jw_object(&w);
    jw_object_end(&w);
    jw_array(&w);
    jw_array_end(&w);
    jw_null(&w);
    jw_bool(&w, true);
    jw_raw(&w, "{\"x\": 1.10}", 11);
    jw_array_end(&w);
    jw_key(&w, "empty");
    jw_object(&w);
    jw_object_end(&w);
    jw_key(&w, "t");
    jw_time(&w, 1795860742123LL);
    jw_key(&w, "none");
    jw_time(&w, 0);
    jw_key(&w, "s");
    jw_string(&w, NULL);
    jw_object_end(&w);
    char *got = jw_finish(&w);
    assert_string_equal(got, "{\"a\":1,\"list\":[{},[],null,true,{\"x\": 1.10}],\"empty\":{},"
                             "\"t\":\"2026-11-28T10:12:22.123Z\",\"none\":null,\"s\":null}");
    cJSON *back = cJSON_Parse(got);
    assert_non_null(back);
    cJSON_Delete(back);
    free(got);
}

static void string_n_takes_embedded_bytes(void **state)
{
    (void)state;
    struct jsonw w;
    jw_init(&w);
    jw_string_n(&w, "ab\0cd", 5);
    char *got = jw_finish(&w);
    assert_string_equal(got, "\"ab\\u0000cd\"");
    free(got);
    /* A finished writer is ready again; an empty one yields "". */
    got = jw_finish(&w);
    assert_string_equal(got, "");
    free(got);
}

/* Whatever bytes a string holds, the text written is UTF-8: a byte that
 * does not start a well-formed character becomes U+FFFD, and well-formed
 * characters (two, three and four bytes) pass as they are. */
static void strings_are_written_as_utf8_whatever_they_hold(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e\""},
        {"cut \xc3", "\"cut \\ufffd\""},                   /* a message cut inside a character */
        {"\xff\xfe", "\"\\ufffd\\ufffd\""},
        {"a\xe2\x82z", "\"a\\ufffd\\ufffdz\""},          /* a three-byte form cut short */
        {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""},    /* a surrogate */
        {"\xc0\xaf\"", "\"\\ufffd\\ufffd\\\"\""},          /* an overlong, then a quote */
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct jsonw w;
        jw_init(&w);
        jw_string(&w, cases[i].in);
        char *got = jw_finish(&w);
        assert_string_equal(got, cases[i].out);
        assert_true(util_utf8_valid(got, strlen(got)));
        free(got);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(strings_are_escaped_as_cjson_does),
        cmocka_unit_test(numbers_print_as_cjson_does),
        cmocka_unit_test(nesting_places_commas),
        cmocka_unit_test(string_n_takes_embedded_bytes),
        cmocka_unit_test(strings_are_written_as_utf8_whatever_they_hold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
