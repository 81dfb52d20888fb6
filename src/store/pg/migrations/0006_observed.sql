-- The team store's schema, version 6: observed I/O (the SQLite store's schema version 13,
-- docs/recording.md). `observed`: 0 a declared path the job never opened, 1 a declared path it
-- opened, 2 a path it opened that nobody declared; NULL: the job ran unobserved.
ALTER TABLE edges ADD COLUMN observed BIGINT;
