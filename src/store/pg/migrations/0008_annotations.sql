-- The team store's schema, version 8: annotations (the SQLite store's schema version 15,
-- `lineage tag`, `lineage note`, store/annotations.rs): what users say about a run after it
-- ran, append-only rows each signed by its author's key.
--
-- Writers submit one at a time to lineage_annotate(jsonb) (SECURITY DEFINER, like
-- lineage_submit): it checks the row as a replica would, except the signature, which SQL
-- cannot check (every replica verifies it on pull and refuses a forged one); takes only signed
-- annotations of runs the server has; numbers each in delivery order (`seq`, under the delivery
-- lock, so a pull that resumes after the last seq it took misses none) and records the login
-- role that submitted it (`recorded_by = session_user`). The first copy of an id stays.
CREATE TABLE annotations (
    seq         BIGSERIAL UNIQUE,
    id          TEXT PRIMARY KEY,
    run_id      TEXT NOT NULL REFERENCES runs (id),
    kind        TEXT NOT NULL CHECK (kind IN ('tag', 'untag', 'note')),
    text        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    author      TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    signature   TEXT NOT NULL,
    recorded_by TEXT NOT NULL
);
CREATE INDEX annotations_by_run ON annotations (run_id);
ALTER TABLE annotations ENABLE ROW LEVEL SECURITY;
CREATE POLICY annotations_read ON annotations FOR SELECT USING (true);

-- `doc`: one annotation, an object of its synced columns (id, run_id, kind, text, created_at,
-- author, public_key, signature), all strings. Returns 'new', 'present' (an annotation of
-- that id is here: nothing changes) or 'deleted' (its run was deleted: a tombstone names it).
CREATE FUNCTION lineage_annotate(doc jsonb) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER AS $f$
DECLARE
    aid text := doc ->> 'id';
    rid text := doc ->> 'run_id';
    k text := doc ->> 'kind';
    body text := doc ->> 'text';
    at text := doc ->> 'created_at';
    who text := doc ->> 'author';
    pk text := doc ->> 'public_key';
    sig text := doc ->> 'signature';
    uuid_re text := '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
    bad text;
    id_ms bigint;
    at_ms bigint;
    now_ms bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
BEGIN
    IF jsonb_typeof(doc) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'lineage_annotate: not an annotation (a JSON object)'
            USING ERRCODE = '22023';
    END IF;
    IF pg_column_size(doc) > 1048576 THEN
        RAISE EXCEPTION 'lineage_annotate: an annotation over 1 MiB' USING ERRCODE = '54000';
    END IF;
    SELECT key INTO bad FROM jsonb_each(doc)
    WHERE key NOT IN ('id', 'run_id', 'kind', 'text', 'created_at', 'author', 'public_key',
                      'signature')
       OR jsonb_typeof(value) <> 'string'
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'lineage_annotate: % is not a column of an annotation, or not a string',
            bad USING ERRCODE = '22023';
    END IF;
    IF aid IS NULL OR aid !~ uuid_re OR substr(aid, 15, 1) <> '7' THEN
        RAISE EXCEPTION 'lineage_annotate: the annotation''s id is not a UUIDv7'
            USING ERRCODE = '22023';
    END IF;
    IF rid IS NULL OR rid !~ uuid_re THEN
        RAISE EXCEPTION 'lineage_annotate: annotation %: its run id is not a UUID', aid
            USING ERRCODE = '22023';
    END IF;
    IF k IS NULL OR k NOT IN ('tag', 'untag', 'note') THEN
        RAISE EXCEPTION 'lineage_annotate: annotation %: its kind is not tag, untag or note', aid
            USING ERRCODE = '22023';
    END IF;
    IF body IS NULL THEN
        RAISE EXCEPTION 'lineage_annotate: annotation %: no text', aid USING ERRCODE = '22023';
    END IF;
    -- A tag's name as lineage accepts it (model::tag_name_problem): it never reads as a run
    -- id or an option.
    IF k <> 'note' AND (length(body) > 100 OR body !~ '^[A-Za-z0-9][A-Za-z0-9._/+@-]*$'
                        OR body ~ '^[0-9A-Fa-f-]+$') THEN
        RAISE EXCEPTION 'lineage_annotate: annotation %: its text is not a tag name', aid
            USING ERRCODE = '22023';
    END IF;
    IF k = 'note' AND octet_length(body) > 65536 THEN
        RAISE EXCEPTION 'lineage_annotate: annotation %: a note over 64 KiB', aid
            USING ERRCODE = '54000';
    END IF;
    IF who IS NULL OR who = '' OR octet_length(who) > 256 OR who ~ '[\u0001-\u001f\u007f-\u009f]' THEN
        RAISE EXCEPTION 'lineage_annotate: annotation %: its author is not a user name', aid
            USING ERRCODE = '22023';
    END IF;
    IF pk IS NULL OR sig IS NULL THEN
        RAISE EXCEPTION 'lineage_annotate: annotation % is unsigned: team stores take only signed annotations',
            aid USING ERRCODE = '22023';
    END IF;
    IF pk !~ '^ed25519:[0-9a-f]{64}$' OR sig !~ '^[0-9a-f]{128}$' THEN
        RAISE EXCEPTION 'lineage_annotate: annotation %: its key or signature is not an ed25519 one',
            aid USING ERRCODE = '22023';
    END IF;
    -- Its time as lineage writes times, the time its id was made (within a day), neither in
    -- the future (an hour of clock skew allowed), as every replica checks.
    IF at IS NULL OR at !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$' THEN
        RAISE EXCEPTION 'lineage_annotate: annotation %: created_at is not a UTC time as lineage writes it',
            aid USING ERRCODE = '22007';
    END IF;
    BEGIN
        at_ms := (extract(epoch FROM at::timestamptz) * 1000)::bigint;
    EXCEPTION WHEN others THEN
        RAISE EXCEPTION 'lineage_annotate: annotation %: created_at is not a valid time', aid
            USING ERRCODE = '22007';
    END;
    id_ms := ('x' || lpad(substr(replace(aid, '-', ''), 1, 12), 16, '0'))::bit(64)::bigint;
    IF abs(id_ms - at_ms) > 86400000 THEN
        RAISE EXCEPTION 'lineage_annotate: annotation %: its id''s time is not its created_at', aid
            USING ERRCODE = '22023';
    END IF;
    IF at_ms > now_ms + 3600000 OR id_ms > now_ms + 3600000 THEN
        RAISE EXCEPTION 'lineage_annotate: annotation % is from the future', aid
            USING ERRCODE = '22023';
    END IF;
    LOCK TABLE lineage_delivery_lock IN EXCLUSIVE MODE;
    IF EXISTS (SELECT 1 FROM annotations WHERE id = aid) THEN
        RETURN 'present';
    END IF;
    IF EXISTS (SELECT 1 FROM lineage_tombstones WHERE run_id = rid) THEN
        RETURN 'deleted';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM runs WHERE id = rid) THEN
        RAISE EXCEPTION 'lineage_annotate: annotation %: no run % on this team store', aid, rid
            USING ERRCODE = '23503';
    END IF;
    INSERT INTO annotations (id, run_id, kind, text, created_at, author, public_key, signature,
                             recorded_by)
    VALUES (aid, rid, k, body, at, who, pk, sig, session_user::text)
    ON CONFLICT DO NOTHING;
    RETURN 'new';
END
$f$;
REVOKE EXECUTE ON FUNCTION lineage_annotate(jsonb) FROM PUBLIC;

-- Deleting a run deletes its annotations (and its metrics, version 7) first.
ALTER FUNCTION lineage_delete_run(text, text) RENAME TO lineage_delete_run_v7;
REVOKE ALL ON FUNCTION lineage_delete_run_v7(text, text) FROM PUBLIC;
CREATE FUNCTION lineage_delete_run(rid text, why text) RETURNS text
LANGUAGE plpgsql AS $f$
BEGIN
    DELETE FROM annotations WHERE run_id = rid;
    RETURN lineage_delete_run_v7(rid, why);
END
$f$;
REVOKE EXECUTE ON FUNCTION lineage_delete_run(text, text) FROM PUBLIC;

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION lineage_annotate(jsonb) SET search_path = %I, pg_temp', current_schema());
    ALTER FUNCTION lineage_annotate(jsonb) SET lock_timeout = '10s';
    EXECUTE format('ALTER FUNCTION lineage_delete_run(text, text) SET search_path = %I, pg_temp', current_schema());
END
$$;
