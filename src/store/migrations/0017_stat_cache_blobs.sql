-- Schema version 17: the stat cache's hashes as 32-byte blobs, not 64 hex characters: a
-- fresh 20,000-file input writes 20,000 of its rows, a quarter smaller so, and none is
-- formatted or parsed as text (issue 19). Rows whose hash is not 64 hex digits (none that
-- lineage wrote) are dropped: a cache row only saves a re-hash.
CREATE TABLE stat_cache_blobs (
    dev         INTEGER NOT NULL,
    ino         INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    ctime_ns    INTEGER NOT NULL,
    hash        BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (dev, ino)
) WITHOUT ROWID;
INSERT INTO stat_cache_blobs (dev, ino, size, mtime_ns, ctime_ns, hash)
    SELECT dev, ino, size, mtime_ns, ctime_ns, unhex(hash) FROM stat_cache
    WHERE length(hash) = 64 AND length(unhex(hash)) = 32;
DROP TABLE stat_cache;
ALTER TABLE stat_cache_blobs RENAME TO stat_cache;
