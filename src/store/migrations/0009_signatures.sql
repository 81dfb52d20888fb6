-- Schema version 9: signed records. A finished run's canonical record (store/signature.rs)
-- signed by the recording user's ed25519 key (`ed25519:<hex>`), as 128 hex digits. A run
-- without a row is unsigned; one whose row does not verify was changed after it was signed.
CREATE TABLE signatures (
    run_id      TEXT PRIMARY KEY NOT NULL REFERENCES runs (id),
    public_key  TEXT NOT NULL,
    signature   TEXT NOT NULL
) WITHOUT ROWID;
