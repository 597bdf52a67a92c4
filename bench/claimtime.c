/*
 * claimtime: how long the daemon's claim takes on a given database. Runs
 * the claim statement of src/store_sqlite.c (ST_CLAIM_TASKS, copied here;
 * bench/run.sh checks the daemon's binary holds the same text) for one queue
 * with no host at its cap, in a BEGIN IMMEDIATE ... ROLLBACK, reading every
 * column of every claimed row as row_to_task() does, and prints the time
 * of each try in microseconds. The rollback leaves the database as it was.
 *
 *   claimtime DB --ahead-ms MS [--queue Q] [--limit N] [--tries K]
 *   claimtime --print-sql   (bench/run.sh checks the daemon binary holds it)
 *
 * --ahead-ms: claim as if the clock were this far ahead (0: what is due
 * now; a day or more: the tasks scheduled for later come due).
 * Prints "claimed=N" and one "us=T" line per try.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TASK_COLS                                                                              \
    "seq, id, tenant, queue, host, status, method, callback_url, headers, body, body_kind, "   \
    "webhook_url, metadata, max_retries, timeout_ms, follow_redirects, attempts, replays, "    \
    "attempts_uncounted, "                                                                            \
    "idempotency_key, run_at, created_at, updated_at, started_at, finished_at, lease_until, "  \
    "claim_token, response_status, response_headers, response_body, response_ms, error_code, " \
    "error_message"

#define CLAIM_SET                                                                              \
    "UPDATE tasks SET status = 'running', started_at = ?1, updated_at = ?1, "                  \
    "lease_until = ?1 + timeout_ms + ?2, claim_token = claim_token + 1 "

/* ST_CLAIM_TASKS: one queue's due tasks, skipping hosts at their cap. */
static const char *claim_sql =
    CLAIM_SET "WHERE seq IN (SELECT seq FROM tasks WHERE status = 'queued' AND queue = ?3 "
    "AND run_at <= ?1 AND host NOT IN (SELECT value FROM json_each(?4)) "
    "ORDER BY run_at, seq LIMIT ?5) RETURNING " TASK_COLS;

static long long mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--print-sql") == 0) {
        printf("%s\n", claim_sql);
        return 0;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: claimtime DB --ahead-ms MS [--queue Q] [--limit N] [--tries K]\n");
        return 2;
    }
    const char *queue = "default";
    long long ahead_ms = 0;
    int limit = 512, tries = 5;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--ahead-ms") == 0) ahead_ms = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--queue") == 0) queue = argv[i + 1];
        else if (strcmp(argv[i], "--limit") == 0) limit = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--tries") == 0) tries = atoi(argv[i + 1]);
    }
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        fprintf(stderr, "claimtime: %s: %s\n", argv[1], sqlite3_errmsg(db));
        return 1;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, claim_sql, -1, &s, NULL) != SQLITE_OK) {
        fprintf(stderr, "claimtime: %s\n", sqlite3_errmsg(db));
        return 1;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long now_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 + ahead_ms;
    int claimed = 0;
    for (int t = 0; t < tries; t++) {
        sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        long long t0 = mono_us();
        sqlite3_bind_int64(s, 1, now_ms);
        sqlite3_bind_int64(s, 2, 60000);
        sqlite3_bind_text(s, 3, queue, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, "[]", -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 5, limit);
        int rc, n = 0;
        size_t bytes = 0;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            for (int c = 0; c < sqlite3_column_count(s); c++) {
                if (sqlite3_column_type(s, c) == SQLITE_BLOB) sqlite3_column_blob(s, c);
                else sqlite3_column_text(s, c);
                bytes += (size_t)sqlite3_column_bytes(s, c);
            }
            n++;
        }
        sqlite3_reset(s);
        long long us = mono_us() - t0;
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        if (rc != SQLITE_DONE) {
            fprintf(stderr, "claimtime: %s\n", sqlite3_errmsg(db));
            return 1;
        }
        claimed = n;
        printf("us=%lld\n", us);
        (void)bytes;
    }
    printf("claimed=%d\n", claimed);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return 0;
}
