/*
 * testutil: small helpers shared by the unit tests: cmocka's includes in the
 * order it needs them, temporary directories that are always removed, the
 * default configuration, and capturing what a function prints to a FILE.
 *
 * Header-only (static inline) so each test binary stays one .c file.
 * Include this before anything else in a test.
 */
#ifndef AQ_TESTUTIL_H
#define AQ_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

/* Makes a fresh directory under $TMPDIR (or /tmp) and writes its path to
 * out[PATH_MAX-ish]. Fails the test when it cannot. */
static inline void tu_mkdtemp(char *out, size_t out_len)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, out_len, "%s/aq-unit-XXXXXX", base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(out));
}

/* Removes dir and the plain files in it (the tests create no subdirectories). */
static inline void tu_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[4096];
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    assert_int_equal(rmdir(dir), 0);
}

/* Writes text to dir/name; returns the path, which the caller frees. */
static inline char *tu_write_file(const char *dir, const char *name, const char *text)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    assert_non_null(path);
    snprintf(path, n, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return path;
}

/* Fills cfg with the built-in defaults: no file, no environment, no flags.
 * Free with config_free. */
static inline void tu_config_defaults(struct config *cfg)
{
    char *argv[] = {"asyncqueue", NULL};
    char *envp[] = {NULL};
    enum config_mode mode;
    char err[512];
    int rc = config_load(cfg, 1, argv, envp, &mode, err, sizeof err);
    if (rc != EXIT_OK) fail_msg("config_load with defaults failed: %s", err);
    assert_int_equal(mode, CONFIG_MODE_RUN);
}

/* Runs fn(out) on an in-memory stream and returns what it wrote (caller
 * frees). */
static inline char *tu_capture(void (*fn)(FILE *out))
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    fn(f);
    assert_int_equal(fclose(f), 0);
    return text;
}

#endif
