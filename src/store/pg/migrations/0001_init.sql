-- The team store's schema, version 1: the same tables and columns as the SQLite store's
-- shared rows (runs, artifacts, manifests, edges, params, blobs, extra digests), in
-- PostgreSQL types. Every row is keyed by a run id (UUIDv7) or a content hash, so inserts
-- from any number of writers are `ON CONFLICT DO NOTHING`. `runs.seq` orders arrivals: a
-- client pulls the runs past the last seq it saw. Per-machine caches (stat cache, directory
-- cache) stay in each client's local store.
CREATE TABLE runs (
    seq         BIGSERIAL UNIQUE,
    id          TEXT PRIMARY KEY,
    status      TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
    argv        BYTEA NOT NULL,
    cwd         BYTEA NOT NULL,
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    exit_code   BIGINT,
    signal      BIGINT,
    hostname    TEXT,
    pid         BIGINT,
    boot_id     TEXT,
    git_commit  TEXT,
    git_dirty   BIGINT,
    code_hash   TEXT,
    capture     TEXT NOT NULL,
    resources   TEXT,
    rerun_of    TEXT,
    pid_start   BIGINT
);
CREATE INDEX runs_by_start ON runs (started_at);

CREATE TABLE artifacts (
    hash        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('file', 'dir')),
    size        BIGINT NOT NULL,
    file_count  BIGINT NOT NULL
);

CREATE TABLE dir_entries (
    dir_hash    TEXT NOT NULL,
    path        TEXT NOT NULL,
    file_hash   TEXT NOT NULL,
    size        BIGINT NOT NULL,
    executable  BIGINT NOT NULL,
    PRIMARY KEY (dir_hash, path)
);
CREATE INDEX dir_entries_by_file ON dir_entries (file_hash);

CREATE TABLE edges (
    run_id      TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('input', 'output', 'config')),
    position    BIGINT NOT NULL,
    artifact    TEXT,
    path        TEXT NOT NULL,
    abs_path    TEXT NOT NULL,
    missing     BIGINT NOT NULL DEFAULT 0,
    changed     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, role, position)
);
CREATE INDEX edges_by_artifact ON edges (artifact, role);

CREATE TABLE params (
    run_id      TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    source      TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);

CREATE TABLE blobs (
    hash        TEXT PRIMARY KEY,
    size        BIGINT NOT NULL,
    data        BYTEA NOT NULL
);

CREATE TABLE extra_digests (
    artifact    TEXT NOT NULL,
    algorithm   TEXT NOT NULL,
    digest      TEXT NOT NULL,
    PRIMARY KEY (artifact, algorithm)
);
