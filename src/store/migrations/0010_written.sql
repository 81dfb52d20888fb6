-- Schema version 10: "produced means written" (docs/lineage-model.md). For an output edge,
-- `written` says which of its bytes the job wrote: 1 all of them (the path did not exist at
-- launch, or changed while the job ran), 0 none (a declared output left as it was: nobody's
-- product), 2 some (a directory: `kept` lists, as a JSON array, the paths inside it of the
-- files the job left as they were). NULL: recorded before lineage knew (read as 1), and every
-- input or config edge.
ALTER TABLE edges ADD COLUMN written INTEGER;
ALTER TABLE edges ADD COLUMN kept TEXT;

-- The directories inside a stored directory, derived from its manifest (never copied
-- between stores: every store computes them): `path` inside `dir_hash` holds the files
-- whose Merkle hash is `sub_hash`. A directory inside an output directory is then traced
-- to the run that wrote it, both ways, as a file inside it is.
CREATE TABLE dir_subdirs (
    dir_hash    TEXT NOT NULL REFERENCES artifacts (hash),
    path        TEXT NOT NULL,
    sub_hash    TEXT NOT NULL,
    PRIMARY KEY (dir_hash, path)
) WITHOUT ROWID;
CREATE INDEX dir_subdirs_by_sub ON dir_subdirs (sub_hash);
