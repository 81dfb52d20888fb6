-- Schema version 4: the directory cache. `digest` is a BLAKE3 digest of the walk of a
-- directory: for every file, its relative path, exec bit and stat key (device, inode, size,
-- mtime, ctime). A directory walked again with the same digest has every file's stat
-- unchanged, so the directory hash recorded here holds without one stat-cache lookup per
-- file. Rows are written only when every file was outside the racy window when hashed, and
-- read only through a join with `artifacts`, so a row never names a manifest not stored.
CREATE TABLE dir_cache (
    digest      TEXT PRIMARY KEY,
    dir_hash    TEXT NOT NULL
) WITHOUT ROWID;
