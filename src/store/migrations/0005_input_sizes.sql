-- Schema version 5: how many files each directory input held when last recorded, by
-- absolute path. A directory known to be large is watched with inotify while its job runs,
-- which spares walking it again afterwards; a small one is re-walked instead, since closing
-- an inotify instance costs more than walking a few thousand files.
CREATE TABLE input_sizes (
    abs_path    BLOB PRIMARY KEY,
    file_count  INTEGER NOT NULL
) WITHOUT ROWID;
