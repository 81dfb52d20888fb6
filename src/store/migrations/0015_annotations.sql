-- Schema version 15: annotations (`lineage tag`, `lineage note`, docs/guide.md). What users
-- say about a run after it ran, kept apart from the run (a run in the store never changes):
-- append-only rows, never updated or deleted. `kind`: `tag` (the name `text` now names the
-- run), `untag` (it no longer does), `note` (free text, secrets redacted). A tag's current
-- run is its latest tag or untag row by (created_at, id). `author`: the login name of the
-- user who made it; `public_key`/`signature`: their ed25519 signature over the canonical
-- annotation (store/annotations.rs), both NULL when no key could be used.
CREATE TABLE annotations (
    id          TEXT PRIMARY KEY NOT NULL,
    run_id      TEXT NOT NULL REFERENCES runs (id),
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    author      TEXT NOT NULL,
    public_key  TEXT,
    signature   TEXT
) WITHOUT ROWID;
CREATE INDEX annotations_by_run ON annotations (run_id, created_at);
CREATE INDEX annotations_by_text ON annotations (text, created_at) WHERE kind != 'note';
