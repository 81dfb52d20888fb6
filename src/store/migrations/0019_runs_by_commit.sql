-- Schema version 19: the places runs were recorded, by commit. A project moved since its runs
-- were recorded (`mv proj proj2`) is found by the commits its repository still holds:
-- `lineage status` and `lineage rerun` read each distinct (commit, cwd) from this index
-- alone, never the runs' rows (docs/guide.md, the daily loop).
CREATE INDEX IF NOT EXISTS runs_by_commit ON runs (git_commit, cwd);
