/*
 * Tests for log lines: "TIMESTAMP LEVEL event key=value...\n", one write
 * per line or per batch, levels, and lines cut at their limit without
 * overrunning it. Lines go to file descriptor 2, which each test points at
 * a temporary file.
 */
#include "testutil.h"

#include <fcntl.h>

#include "log.h"
#include "util.h"

#define LINE_MAX_BYTES 4096 /* log.c's LOG_LINE_MAX, newline and NUL included */

struct fx {
    char dir[512];
    char path[600];
    int saved_stderr;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    tu_mkdtemp(f->dir, sizeof f->dir);
    snprintf(f->path, sizeof f->path, "%s/stderr", f->dir);
    int fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    fflush(stderr);
    f->saved_stderr = dup(STDERR_FILENO);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    close(fd);
    log_set_level(LOG_INFO);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    dup2(f->saved_stderr, STDERR_FILENO);
    close(f->saved_stderr);
    log_set_level(LOG_OFF);
    unlink(f->path);
    assert_int_equal(rmdir(f->dir), 0);
    free(f);
    return 0;
}

/* What was written to fd 2 so far (caller frees). */
static char *written(struct fx *f)
{
    FILE *in = fopen(f->path, "rb");
    assert_non_null(in);
    char *text = calloc(1, 1 << 16);
    assert_non_null(text);
    size_t n = fread(text, 1, (1 << 16) - 1, in);
    text[n] = '\0';
    fclose(in);
    return text;
}

/* Line i (0-based) of text, without its newline, into out. */
static void line_at(const char *text, int i, char *out, size_t out_len)
{
    const char *p = text;
    for (int k = 0; k < i; k++) {
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    const char *e = strchr(p, '\n');
    assert_non_null(e);
    snprintf(out, out_len, "%.*s", (int)(e - p), p);
}

/* A line: an RFC 3339 timestamp of now, the level, the event, the fields. */
static void a_line_has_time_level_event_and_fields(void **state)
{
    struct fx *f = *state;
    int64_t before = util_now_ms();
    log_msg(LOG_WARN, "task.accepted", "id=%s n=%d", "abc", 7);
    log_msg(LOG_DEBUG, "not.shown", "x=1"); /* below the level */
    log_msg(LOG_INFO, "bare", "%s", "");    /* no fields: no trailing space */
    int64_t after = util_now_ms();
    char *text = written(f);
    char line[256], ts[64];
    line_at(text, 0, line, sizeof line);
    assert_int_equal(sscanf(line, "%63s", ts), 1);
    int64_t at;
    assert_int_equal(util_rfc3339_parse(ts, &at), 0);
    assert_true(at >= before && at <= after);
    assert_string_equal(line + strlen(ts), " WARN task.accepted id=abc n=7");
    line_at(text, 1, line, sizeof line);
    assert_int_equal(sscanf(line, "%63s", ts), 1);
    assert_int_equal(util_rfc3339_parse(ts, &at), 0);
    assert_string_equal(line + strlen(ts), " INFO bare");
    assert_null(strstr(text, "not.shown"));
    assert_int_equal(strlen(text),
                     strlen(ts) * 2 + strlen(" WARN task.accepted id=abc n=7\n INFO bare\n"));
    free(text);
}

/* An event or fields longer than a line are cut at the line's limit: one
 * line, ending in its newline, nothing written past it. */
static void long_lines_are_cut_at_the_limit(void **state)
{
    struct fx *f = *state;
    static char big[10000];
    memset(big, 'e', sizeof big - 1);
    log_msg(LOG_INFO, big, "k=v");
    memset(big, 'v', sizeof big - 1);
    log_msg(LOG_INFO, "ev", "k=%s", big);
    char *text = written(f);
    char *nl = strchr(text, '\n');
    assert_non_null(nl);
    assert_int_equal(nl - text + 1, LINE_MAX_BYTES - 1);
    assert_int_equal(nl[-1], 'e'); /* cut inside the event: no fields */
    char *second = nl + 1;
    nl = strchr(second, '\n');
    assert_non_null(nl);
    assert_int_equal(nl - second + 1, LINE_MAX_BYTES - 1);
    assert_non_null(strstr(second, " INFO ev k=vvv"));
    assert_int_equal(nl[1], '\0');
    free(text);
}

/* A batch's lines are written when it is flushed, in order. */
static void a_batch_is_written_at_its_flush(void **state)
{
    struct fx *f = *state;
    struct log_batch b;
    log_batch_init(&b);
    for (int i = 0; i < 3; i++)
        log_batch_add(&b, LOG_INFO, "step", "i=%d", i);
    log_batch_add(&b, LOG_DEBUG, "hidden", "i=9");
    char *text = written(f);
    assert_string_equal(text, "");
    free(text);
    log_batch_flush(&b);
    text = written(f);
    char line[256];
    for (int i = 0; i < 3; i++) {
        line_at(text, i, line, sizeof line);
        char want[32];
        snprintf(want, sizeof want, " INFO step i=%d", i);
        assert_non_null(strstr(line, want));
    }
    assert_null(strstr(text, "hidden"));
    free(text);
    log_batch_free(&b);
}

/* A logfmt value: plain when it can be, else quoted with '"' and '\\'
 * escaped and every control character (DEL too) a space, so no value can
 * add a field or a line, or reach a terminal as an escape. */
static void values_are_quoted_for_logfmt(void **state)
{
    (void)state;
    char q[64];
    assert_string_equal(log_quote(q, sizeof q, "http://h:1/p"), "http://h:1/p");
    assert_string_equal(log_quote(q, sizeof q, "http://h:1/a\"b"), "\"http://h:1/a\\\"b\"");
    assert_string_equal(log_quote(q, sizeof q, "p\\q"), "\"p\\\\q\"");
    assert_string_equal(log_quote(q, sizeof q, "x=1 outcome=failed"), "\"x=1 outcome=failed\"");
    assert_string_equal(log_quote(q, sizeof q, "a\rb\x1b[31m\x7f"), "\"a b [31m \"");
    assert_string_equal(log_quote(q, sizeof q, ""), "\"\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_line_has_time_level_event_and_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(long_lines_are_cut_at_the_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(a_batch_is_written_at_its_flush, setup, teardown),
        cmocka_unit_test(values_are_quoted_for_logfmt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
