-- Schema version 11: runs by the last 8 hex digits of their id, the random bits a short id is
-- made of (store/query.rs): printing a short id checks it against every other run, and
-- resolving one finds its run, in one index lookup instead of a scan of every id.
CREATE INDEX runs_by_id_tail ON runs (substr(id, -8));
