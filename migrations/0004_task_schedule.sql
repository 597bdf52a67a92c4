-- The schedule a task was made by (POST /v1/schedules/{name}), or NULL.
ALTER TABLE tasks ADD COLUMN schedule TEXT;
