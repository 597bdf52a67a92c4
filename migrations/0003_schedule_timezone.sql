-- The time zone a schedule's cron expression is read in (an IANA name).
ALTER TABLE schedules ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';
