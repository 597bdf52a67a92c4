-- 0001_init: tasks, their attempts, the webhook outbox and its attempts.
-- Released migrations are never edited; later changes are new files.
-- Times are integer milliseconds since the Unix epoch (UTC).

CREATE TABLE tasks (
    seq               INTEGER PRIMARY KEY,   -- insertion order: list order and cursor
    id                TEXT NOT NULL UNIQUE,  -- UUIDv7, time ordered
    tenant            TEXT NOT NULL DEFAULT '',
    queue             TEXT NOT NULL,
    host              TEXT NOT NULL,         -- target host[:port], for per-host caps
    status            TEXT NOT NULL,         -- queued running completed failed cancelled
    method            TEXT NOT NULL,
    callback_url      TEXT NOT NULL,
    headers           TEXT,                  -- JSON object, or NULL
    body              BLOB,                  -- bytes sent to the target
    body_kind         INTEGER NOT NULL,      -- 0 none, 1 JSON payload, 2 raw body
    webhook_url       TEXT,
    metadata          TEXT,                  -- JSON, or NULL
    max_retries       INTEGER NOT NULL,
    timeout_ms        INTEGER NOT NULL,
    follow_redirects  INTEGER NOT NULL DEFAULT 0,
    attempts          INTEGER NOT NULL DEFAULT 0,
    replays           INTEGER NOT NULL DEFAULT 0,
    attempts_uncounted INTEGER NOT NULL DEFAULT 0, -- not counted against retries: before the
                                                    -- last replay, or interrupted by a stop
    idempotency_key   TEXT,
    run_at            INTEGER NOT NULL,      -- not before this
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    started_at        INTEGER,
    finished_at       INTEGER,
    lease_until       INTEGER,
    claim_token       INTEGER NOT NULL DEFAULT 0,
    response_status   INTEGER,
    response_headers  TEXT,
    response_body     BLOB,
    response_ms       INTEGER,
    error_code        TEXT,
    error_message     TEXT
);

-- Only waiting tasks are in these indexes, so they stay small however many
-- finished tasks the table holds. tasks_due covers the claim query (per
-- queue, in due order, skipping capped hosts without reading rows).
CREATE INDEX tasks_due ON tasks (queue, run_at, seq, host) WHERE status = 'queued';
CREATE INDEX tasks_leased ON tasks (lease_until) WHERE status = 'running';

CREATE TABLE attempts (
    task_seq       INTEGER NOT NULL,
    n              INTEGER NOT NULL,
    started_at     INTEGER NOT NULL,
    finished_at    INTEGER NOT NULL,
    duration_ms    INTEGER NOT NULL,
    status_code    INTEGER,
    error_code     TEXT,
    error_message  TEXT,
    PRIMARY KEY (task_seq, n)
) WITHOUT ROWID;

-- The outbox: one row per webhook message, written in the transaction that
-- finishes its task.
CREATE TABLE webhooks (
    seq               INTEGER PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,  -- "msg_" + uuid: the webhook-id header
    task_seq          INTEGER NOT NULL,
    task_id           TEXT NOT NULL,
    url               TEXT NOT NULL,
    body              BLOB NOT NULL,
    status            TEXT NOT NULL,         -- pending delivering delivered failed
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_at           INTEGER NOT NULL,
    lease_until       INTEGER,
    claim_token       INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    delivered_at      INTEGER,
    last_status_code  INTEGER,
    last_error        TEXT
);

CREATE INDEX webhooks_due ON webhooks (next_at) WHERE status = 'pending';
CREATE INDEX webhooks_leased ON webhooks (lease_until) WHERE status = 'delivering';
CREATE INDEX webhooks_task ON webhooks (task_seq);

CREATE TABLE webhook_attempts (
    webhook_seq   INTEGER NOT NULL,
    n             INTEGER NOT NULL,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER NOT NULL,
    duration_ms   INTEGER NOT NULL,
    status_code   INTEGER,
    error         TEXT,
    PRIMARY KEY (webhook_seq, n)
) WITHOUT ROWID;

-- Settings of named queues (from the config file or PUT /v1/queues/{name}).
CREATE TABLE queues (
    name               TEXT PRIMARY KEY,
    max_concurrency    INTEGER NOT NULL DEFAULT 0,  -- 0: no limit
    rate_per_sec       REAL NOT NULL DEFAULT 0,     -- 0: no limit
    burst              INTEGER NOT NULL DEFAULT 0,
    paused             INTEGER NOT NULL DEFAULT 0,
    default_retries    INTEGER,                     -- NULL: the daemon's default
    default_timeout_ms INTEGER,
    updated_at         INTEGER NOT NULL
) WITHOUT ROWID;

-- Idempotency keys: the first task created with a key, for idempotency_window.
CREATE TABLE idempotency (
    key           TEXT PRIMARY KEY,   -- tenant NUL key
    request_hash  TEXT NOT NULL,
    task_id       TEXT NOT NULL,
    created_at    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX idempotency_created ON idempotency (created_at);

CREATE TABLE kv (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) WITHOUT ROWID;
