-- Schema version 6: directory manifests written while the job runs. A new directory's
-- artifact row is written before launch together with a row here; its entries follow in a
-- transaction of their own while the job runs, which deletes the row. A row left behind
-- (lineage killed in between) marks the manifest incomplete: the directory cache ignores it,
-- and the next run that hashes the same directory writes the entries.
CREATE TABLE pending_manifests (
    dir_hash    TEXT PRIMARY KEY NOT NULL REFERENCES artifacts (hash),
    run_id      TEXT NOT NULL
) WITHOUT ROWID;
