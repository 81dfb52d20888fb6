-- Schema version 3: the stat cache. A file whose (device, inode, size, mtime, ctime) match a
-- row has the row's hash without being read again. ctime is in the key because mtime can be
-- put back (`touch -d`, tar, rsync) but ctime cannot. Rows are only written for files last
-- changed more than a second before they were hashed, so a file modified within the
-- filesystem's timestamp granularity of its hashing is never trusted.
CREATE TABLE stat_cache (
    dev         INTEGER NOT NULL,
    ino         INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    ctime_ns    INTEGER NOT NULL,
    hash        TEXT NOT NULL,
    PRIMARY KEY (dev, ino)
) WITHOUT ROWID;
