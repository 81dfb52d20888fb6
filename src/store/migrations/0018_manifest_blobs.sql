-- Schema version 18: the manifests' two hashes as 32-byte blobs, not 64 hex characters
-- each (issue 19). A fresh 20,000-file input writes 20,000 manifest rows, each also in the
-- index by file hash, whose entries repeat the directory's hash: SQLite's own work for that
-- record fell from 105 to 61 ms (bench/floors.py), and the rows take half the space.
--
-- The rows live in `dir_manifest`; `dir_entries` stays, as a view of the same rows in hex,
-- writable through its triggers, so that whatever reads or writes it by name (bundles, the
-- team store, doctor's rebuild, older scripts) sees what it saw. The recorder and the graph
-- walks use `dir_manifest` itself: only its blobs are indexed.
--
-- The foreign key to `artifacts` cannot hold between a blob and a hex string: the recorder
-- writes a directory's artifact before its manifest, an import checks each manifest against
-- its directory's artifact, and `lineage doctor` drops manifests whose artifact is gone.
-- (Writes through the view are not counted by SQLite's changes(): lineage's own go to the
-- table.) Rows whose hashes are not 64 hex digits (none that lineage wrote) are dropped.
CREATE TABLE dir_manifest (
    dir_hash    BLOB NOT NULL CHECK (length(dir_hash) = 32),
    path        TEXT NOT NULL,
    file_hash   BLOB NOT NULL CHECK (length(file_hash) = 32),
    size        INTEGER NOT NULL,
    executable  INTEGER NOT NULL,
    PRIMARY KEY (dir_hash, path)
) WITHOUT ROWID;
INSERT INTO dir_manifest (dir_hash, path, file_hash, size, executable)
    SELECT unhex(dir_hash), path, unhex(file_hash), size, executable FROM dir_entries
    WHERE length(dir_hash) = 64 AND length(unhex(dir_hash)) = 32
      AND length(file_hash) = 64 AND length(unhex(file_hash)) = 32;
DROP INDEX dir_entries_by_file;
DROP TABLE dir_entries;
CREATE INDEX dir_manifest_by_file ON dir_manifest (file_hash);

CREATE VIEW dir_entries (dir_hash, path, file_hash, size, executable) AS
    SELECT lower(hex(dir_hash)), path, lower(hex(file_hash)), size, executable
    FROM dir_manifest;

CREATE TRIGGER dir_entries_insert INSTEAD OF INSERT ON dir_entries
BEGIN
    INSERT INTO dir_manifest (dir_hash, path, file_hash, size, executable)
    VALUES (unhex(NEW.dir_hash), NEW.path, unhex(NEW.file_hash), NEW.size, NEW.executable);
END;

CREATE TRIGGER dir_entries_update INSTEAD OF UPDATE ON dir_entries
BEGIN
    UPDATE dir_manifest SET dir_hash = unhex(NEW.dir_hash), path = NEW.path,
        file_hash = unhex(NEW.file_hash), size = NEW.size, executable = NEW.executable
    WHERE dir_hash = unhex(OLD.dir_hash) AND path = OLD.path;
END;

CREATE TRIGGER dir_entries_delete INSTEAD OF DELETE ON dir_entries
BEGIN
    DELETE FROM dir_manifest WHERE dir_hash = unhex(OLD.dir_hash) AND path = OLD.path;
END;
