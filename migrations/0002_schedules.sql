-- Schedules: a task template made into a task each time a cron expression
-- fires (POST /v1/schedules/{name}). Names are unique per tenant.
CREATE TABLE schedules (
    tenant        TEXT NOT NULL DEFAULT '',
    name          TEXT NOT NULL,
    cron          TEXT NOT NULL,
    task          TEXT NOT NULL,     -- the body of POST /v1/tasks, as written
    paused        INTEGER NOT NULL DEFAULT 0,
    next_run_at   INTEGER,           -- NULL: paused, or no time left to fire
    last_run_at   INTEGER,
    last_task_id  TEXT,
    last_error    TEXT,              -- why the last run made no task, or NULL
    runs          INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant, name)
) WITHOUT ROWID;

CREATE INDEX schedules_due ON schedules (next_run_at) WHERE next_run_at IS NOT NULL;
