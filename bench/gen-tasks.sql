-- gen-tasks.sql: fills a database that the daemon has already created (so
-- migrations/0001_init.sql is applied) with @n tasks shaped like the ones the
-- daemon writes itself, in one transaction. Used by `make bench` (scale).
--
--   sqlite3 DB -cmd ".parameter set @n 1000000" -cmd ".parameter set @now MS" \
--              -cmd ".parameter set @target 'http://127.0.0.1:PORT'" < bench/gen-tasks.sql
--
-- Mix (by seq modulo 100): 10 % queued but scheduled a day ahead (so none is
-- due while the benchmark runs), 75 % completed, 10 % failed after 4
-- attempts, 5 % cancelled. Finished tasks have their attempts, and
-- completed and failed ones a delivered webhook with its attempt, as the
-- daemon writes them. Ids are UUIDv7 text (time ordered), created 10 ms apart
-- up to @now.
-- Bulk load: no journal, no fsync (nothing is at stake while generating);
-- the daemon switches the file back to WAL when it opens it.
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -262144;
BEGIN;

CREATE TEMP TABLE gen AS
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < @n)
SELECT i,
       @now - (@n - i) * 10 AS ct,
       CASE WHEN i % 100 < 10 THEN 'queued'
            WHEN i % 100 < 85 THEN 'completed'
            WHEN i % 100 < 95 THEN 'failed'
            ELSE 'cancelled' END AS st
FROM s;

INSERT INTO tasks (seq, id, queue, host, status, method, callback_url, headers, body, body_kind,
                   webhook_url, metadata, max_retries, timeout_ms, attempts, run_at, created_at,
                   updated_at, started_at, finished_at, lease_until, claim_token,
                   response_status, response_headers, response_body, response_ms, error_code,
                   error_message)
SELECT i,
       printf('%08x-%04x-7%03x-%04x-%012x', ct >> 16, ct & 65535, abs(random()) % 4096,
              32768 + abs(random()) % 16384, abs(random()) % 281474976710656),
       CASE i % 4 WHEN 0 THEN 'default' WHEN 1 THEN 'images' WHEN 2 THEN 'reports' ELSE 'emails' END,
       substr(@target, 8), st, 'POST', @target || '/generate', '{"X-Model":"big"}',
       CAST(printf('{"prompt":"a lighthouse at dusk, oil painting #%d","size":"1024x1024"}', i) AS BLOB),
       1, @target || '/webhook',
       printf('{"userId":%d,"requestId":"req_%016x"}', i % 5000, abs(random())),
       3, 300000,
       CASE st WHEN 'queued' THEN 0 WHEN 'completed' THEN 1 WHEN 'failed' THEN 4 ELSE 0 END,
       CASE st WHEN 'queued' THEN @now + 86400000 + i ELSE ct END,
       ct,
       CASE st WHEN 'queued' THEN ct WHEN 'cancelled' THEN ct + 1000 ELSE ct + 5000 END,
       CASE WHEN st IN ('completed', 'failed') THEN ct + 4000 END,
       CASE WHEN st IN ('completed', 'failed') THEN ct + 5000 END,
       NULL,
       CASE st WHEN 'completed' THEN 1 WHEN 'failed' THEN 4 ELSE 0 END,
       CASE st WHEN 'completed' THEN 200 WHEN 'failed' THEN 503 END,
       CASE st WHEN 'completed' THEN '{"content-type":"application/json","content-length":"69"}'
               WHEN 'failed' THEN '{"content-type":"text/plain","content-length":"19"}' END,
       CASE st WHEN 'completed' THEN CAST('{"ok":true,"image":"https://cdn.example.com/out/1.png","seconds":0.4}' AS BLOB)
               WHEN 'failed' THEN CAST('Service Unavailable' AS BLOB) END,
       CASE WHEN st IN ('completed', 'failed') THEN 1000 ELSE 0 END,
       CASE st WHEN 'failed' THEN 'http_error' END,
       CASE st WHEN 'failed' THEN 'the target answered 503' END
FROM gen;

-- One attempt per completed task, four per failed one.
INSERT INTO attempts (task_seq, n, started_at, finished_at, duration_ms, status_code, error_code,
                      error_message)
SELECT i, n.n, ct + n.n * 1000, ct + n.n * 1000 + 1000, 1000,
       CASE st WHEN 'completed' THEN 200 ELSE 503 END,
       CASE st WHEN 'failed' THEN 'http_error' END,
       CASE st WHEN 'failed' THEN 'the target answered 503' END
FROM gen JOIN (SELECT 1 AS n UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4) n
  ON n.n <= CASE st WHEN 'completed' THEN 1 WHEN 'failed' THEN 4 ELSE 0 END;

INSERT INTO webhooks (seq, id, task_seq, task_id, url, body, status, attempts, next_at,
                      lease_until, claim_token, created_at, updated_at, delivered_at,
                      last_status_code, last_error)
SELECT t.seq, 'msg_' || printf('%08x-%04x-7%03x-%04x-%012x', (t.finished_at >> 16),
              t.finished_at & 65535, abs(random()) % 4096, 32768 + abs(random()) % 16384,
              abs(random()) % 281474976710656),
       t.seq, t.id, t.webhook_url,
       CAST(printf('{"taskId":"%s","status":"%s","queue":"%s","result":%s,"response":{"statusCode":%d,"headers":%s,"durationMs":1000},"attempts":%d,"error":%s,"metadata":%s,"createdAt":"%s","finishedAt":"%s"}',
                   t.id, t.status, t.queue,
                   CASE t.status WHEN 'completed' THEN CAST(t.response_body AS TEXT) ELSE '"Service Unavailable"' END,
                   t.response_status, t.response_headers, t.attempts,
                   CASE t.status WHEN 'failed' THEN '{"code":"http_error","message":"the target answered 503"}' ELSE 'null' END,
                   t.metadata,
                   strftime('%Y-%m-%dT%H:%M:%fZ', t.created_at / 1000.0, 'unixepoch'),
                   strftime('%Y-%m-%dT%H:%M:%fZ', t.finished_at / 1000.0, 'unixepoch')) AS BLOB),
       'delivered', 1, t.finished_at, NULL, 1, t.finished_at, t.finished_at + 5,
       t.finished_at + 5, 200, NULL
FROM tasks t WHERE t.status IN ('completed', 'failed');

INSERT INTO webhook_attempts (webhook_seq, n, started_at, finished_at, duration_ms, status_code,
                              error)
SELECT seq, 1, created_at, delivered_at, 5, 200, NULL FROM webhooks;

COMMIT;
