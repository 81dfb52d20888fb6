-- Schema version 1. Migrations are append-only: never edit this file once released;
-- add 0002_*.sql instead. Hashes are 64 lowercase hex digits (BLAKE3), times RFC 3339 UTC.

CREATE TABLE runs (
    id          TEXT PRIMARY KEY NOT NULL,          -- UUIDv7
    status      TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
    argv        BLOB NOT NULL,                      -- raw argument bytes, NUL-separated
    cwd         BLOB NOT NULL,                      -- raw path bytes
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    exit_code   INTEGER,
    signal      INTEGER,
    hostname    TEXT,
    pid         INTEGER,                            -- lineage's own pid, to detect stale runs
    boot_id     TEXT,
    git_commit  TEXT,
    git_dirty   INTEGER,
    code_hash   TEXT,
    capture     TEXT NOT NULL,                      -- JSON: model::Capture (secrets already redacted)
    resources   TEXT,                               -- JSON: model::Resources
    rerun_of    TEXT REFERENCES runs (id)
);
CREATE INDEX runs_by_start ON runs (started_at);

-- Content-addressed: one row per distinct file or directory content.
CREATE TABLE artifacts (
    hash        TEXT PRIMARY KEY NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('file', 'dir')),
    size        INTEGER NOT NULL,
    file_count  INTEGER NOT NULL
) WITHOUT ROWID;

-- The files of each distinct directory, stored once per directory hash.
CREATE TABLE dir_entries (
    dir_hash    TEXT NOT NULL REFERENCES artifacts (hash),
    path        TEXT NOT NULL,
    file_hash   TEXT NOT NULL,
    size        INTEGER NOT NULL,
    executable  INTEGER NOT NULL,
    PRIMARY KEY (dir_hash, path)
) WITHOUT ROWID;
CREATE INDEX dir_entries_by_file ON dir_entries (file_hash);

-- What each run read (input, config) and wrote (output).
CREATE TABLE edges (
    run_id      TEXT NOT NULL REFERENCES runs (id),
    role        TEXT NOT NULL CHECK (role IN ('input', 'output', 'config')),
    position    INTEGER NOT NULL,
    artifact    TEXT REFERENCES artifacts (hash),   -- NULL: a declared output that was missing
    path        TEXT NOT NULL,                      -- as given on the command line
    abs_path    TEXT NOT NULL,
    missing     INTEGER NOT NULL DEFAULT 0,
    changed     INTEGER NOT NULL DEFAULT 0,         -- an input modified while the job ran
    PRIMARY KEY (run_id, role, position)
) WITHOUT ROWID;
CREATE INDEX edges_by_artifact ON edges (artifact, role);

CREATE TABLE params (
    run_id      TEXT NOT NULL REFERENCES runs (id),
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,                      -- JSON scalar
    source      TEXT NOT NULL,                      -- the config path, or 'cli'
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;

-- Exact bytes of configs, patches, untracked files and package lists, deduplicated.
CREATE TABLE blobs (
    hash        TEXT PRIMARY KEY NOT NULL,
    size        INTEGER NOT NULL,
    data        BLOB NOT NULL
) WITHOUT ROWID;
