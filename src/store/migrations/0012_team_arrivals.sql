-- Schema version 12: what a team store said about each run (store::sync).
-- `arrivals`: every run fetched from (or found on) a team store, with its arrival number there
-- and the database role that submitted it (`recorded_by` on the server: who delivered it,
-- beside the owner its record claims).
CREATE TABLE arrivals (
    remote       TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    run_id       TEXT NOT NULL,
    submitted_by TEXT,
    PRIMARY KEY (remote, seq)
) WITHOUT ROWID;
CREATE INDEX arrivals_by_run ON arrivals (run_id);

-- Runs that do not move between this store and a team store: refused by the server when
-- delivered, forgotten (`lineage team forget`: never to be delivered), or quarantined when
-- fetched (kept out of this store, with the reason).
CREATE TABLE held_back (
    remote      TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    why         TEXT NOT NULL CHECK (why IN ('refused', 'forgotten', 'quarantined')),
    seq         INTEGER,
    reason      TEXT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (remote, run_id)
) WITHOUT ROWID;

-- Runs deleted on a team store (its tombstones), applied here.
CREATE TABLE tombstones (
    remote      TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    deleted_at  TEXT NOT NULL,
    deleted_by  TEXT NOT NULL,
    reason      TEXT NOT NULL,
    PRIMARY KEY (remote, run_id)
) WITHOUT ROWID;

-- The run at the last arrival fetched: a pull checks the server still has it there (a
-- restored backup, deleted rows: the history changed, and the replica reads it again).
ALTER TABLE pulled ADD COLUMN run_id TEXT;
