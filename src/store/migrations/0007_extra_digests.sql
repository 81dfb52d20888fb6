-- Schema version 7: digests other than BLAKE3, for exports whose consumers need them
-- (in-toto and SLSA expect sha256). Computed by `lineage export` from bytes still matching
-- the record, or by `lineage run --sha256`; `algorithm` is `sha256` for a file and `dirHash`
-- (in-toto's directory digest: sha256 over the sorted `sha256  path` lines) for a directory.
CREATE TABLE extra_digests (
    artifact    TEXT NOT NULL,
    algorithm   TEXT NOT NULL,
    digest      TEXT NOT NULL,
    PRIMARY KEY (artifact, algorithm)
) WITHOUT ROWID;
