-- The team store's schema, version 2: signed records (the SQLite store's schema version 9).
-- Signatures travel with their run: a run's rows and its signature are checked against each
-- other by every client that pulls them (`lineage verify`).
CREATE TABLE signatures (
    run_id      TEXT PRIMARY KEY REFERENCES runs (id),
    public_key  TEXT NOT NULL,
    signature   TEXT NOT NULL
);
