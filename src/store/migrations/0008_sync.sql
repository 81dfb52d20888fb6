-- Schema version 8: what this store exchanged with team stores (PostgreSQL). `pushed` lists
-- the runs a team store already holds (sent from here, or received from it); `pulled` is the
-- last arrival (`runs.seq` on the server) this store has received from each.
CREATE TABLE pushed (
    remote      TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    PRIMARY KEY (remote, run_id)
) WITHOUT ROWID;

CREATE TABLE pulled (
    remote      TEXT PRIMARY KEY NOT NULL,
    seq         INTEGER NOT NULL
) WITHOUT ROWID;

-- How far the runs table was scanned for runs to deliver to each team store (its rowid), and
-- the runs that were still going then (to look at again): finding what to deliver costs the
-- new rows, not the whole store.
CREATE TABLE push_mark (
    remote      TEXT PRIMARY KEY NOT NULL,
    upto        INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE held (
    remote      TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    PRIMARY KEY (remote, run_id)
) WITHOUT ROWID;
