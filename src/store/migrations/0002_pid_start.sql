-- Schema version 2: the start time of lineage's own process (clock ticks since boot, from
-- /proc/self/stat), so that a reused pid is never mistaken for a live run; and an index to
-- find the runs still marked running.
ALTER TABLE runs ADD COLUMN pid_start INTEGER;
CREATE INDEX runs_running ON runs (status) WHERE status = 'running';
