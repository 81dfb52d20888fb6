-- Schema version 13: observed I/O (docs/recording.md). For each edge, what observing the
-- job's file calls said of it: 0 a declared path the job never opened, 1 a declared path it
-- opened, 2 a path it opened that nobody declared. NULL: the job ran unobserved (or was
-- recorded before lineage observed).
ALTER TABLE edges ADD COLUMN observed INTEGER;
