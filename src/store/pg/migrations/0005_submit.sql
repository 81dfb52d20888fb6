-- The team store's schema, version 5: writers submit, the server decides.
--
-- Writers no longer insert into tables (lineage's grants, applied by `lineage team migrate`,
-- leave them SELECT only). They call lineage_submit(jsonb) with one whole run: it runs as the
-- owner (SECURITY DEFINER), checks the run as a replica would, assigns `seq` itself (in commit
-- order: it takes the push lock), and records the login role that submitted it
-- (`recorded_by = session_user`), whatever owner the run's capture claims. Rows for another
-- run, a run already here, a run in progress: refused or ignored, never appended.
--
-- The server holds the replicas' constraints (NOT VALID: rows from before are not rechecked;
-- replicas quarantine what they cannot accept), and deleting a run leaves a tombstone that
-- every replica applies (lineage_delete_run, the owner's alone).

ALTER TABLE edges ADD CONSTRAINT edges_run FOREIGN KEY (run_id) REFERENCES runs (id) NOT VALID;
ALTER TABLE edges ADD CONSTRAINT edges_artifact
    FOREIGN KEY (artifact) REFERENCES artifacts (hash) NOT VALID;
ALTER TABLE params ADD CONSTRAINT params_run FOREIGN KEY (run_id) REFERENCES runs (id) NOT VALID;
ALTER TABLE dir_entries ADD CONSTRAINT dir_entries_dir
    FOREIGN KEY (dir_hash) REFERENCES artifacts (hash) NOT VALID;
ALTER TABLE runs ADD CONSTRAINT runs_rerun_of FOREIGN KEY (rerun_of) REFERENCES runs (id) NOT VALID;
ALTER TABLE runs ADD CONSTRAINT runs_id_is_a_uuid
    CHECK (id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$') NOT VALID;
ALTER TABLE artifacts ADD CONSTRAINT artifacts_hash_is_blake3
    CHECK (hash ~ '^[0-9a-f]{64}$') NOT VALID;
ALTER TABLE blobs ADD CONSTRAINT blobs_size CHECK (size = length(data)) NOT VALID;

-- One row, always.
DELETE FROM lineage_schema WHERE ctid NOT IN (SELECT ctid FROM lineage_schema LIMIT 1);
CREATE UNIQUE INDEX lineage_schema_one_row ON lineage_schema ((true));

-- Deliveries take turns on this table's lock (EXCLUSIVE mode, which only its owner may take:
-- no one else has any privilege on it), so `seq` grows in commit order and no reader or
-- writer can hold up deliveries with an advisory lock of the same number. A delivery waits
-- for its turn at most lock_timeout (below), so a transaction left open cannot pile up others.
CREATE TABLE lineage_delivery_lock ();

CREATE TABLE lineage_tombstones (
    seq         BIGINT NOT NULL UNIQUE DEFAULT nextval('runs_seq_seq'),
    run_id      TEXT PRIMARY KEY,
    deleted_at  TEXT NOT NULL,
    deleted_by  TEXT NOT NULL,
    reason      TEXT NOT NULL
);

CREATE FUNCTION lineage_insert_rows(tbl text, rows jsonb, skip text[], extra text)
RETURNS void LANGUAGE plpgsql AS $f$
DECLARE
    cols text;
BEGIN
    SELECT string_agg(quote_ident(column_name::text), ', ' ORDER BY ordinal_position) INTO cols
    FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = tbl
      AND NOT (column_name::text = ANY (skip));
    EXECUTE format('INSERT INTO %I (%s) SELECT %s FROM jsonb_populate_recordset(NULL::%I, $1) %s',
                   tbl, cols, cols, tbl, extra)
        USING rows;
END
$f$;
REVOKE EXECUTE ON FUNCTION lineage_insert_rows(text, jsonb, text[], text) FROM PUBLIC;

-- `doc`: {"run": {...}, "edges": [...], "params": [...], "signatures": [...], "artifacts": [...],
-- "dir_entries": [...], "blobs": [...], "extra_digests": [...]}, each row an object of the synced
-- columns (bytea as '\x' hex). Returns 'new', 'present' (already here: nothing changes) or
-- 'deleted' (a tombstone names it: never again).
CREATE FUNCTION lineage_submit(doc jsonb) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER AS $f$
DECLARE
    run jsonb := doc -> 'run';
    rid text := doc -> 'run' ->> 'id';
    t text;
    bad text;
    id_ms bigint;
    start_ms bigint;
    now_ms bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
BEGIN
    IF jsonb_typeof(run) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'lineage_submit: no run in the submission' USING ERRCODE = '22023';
    END IF;
    IF rid IS NULL OR rid !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        RAISE EXCEPTION 'lineage_submit: the run id is not a UUID' USING ERRCODE = '22023';
    END IF;
    IF pg_column_size(doc) > 268435456 THEN
        RAISE EXCEPTION 'lineage_submit: run % is over 256 MiB', rid USING ERRCODE = '54000';
    END IF;
    IF jsonb_array_length(COALESCE(doc -> 'params', '[]')) > 100000
        OR jsonb_array_length(COALESCE(doc -> 'edges', '[]')) > 100000 THEN
        RAISE EXCEPTION 'lineage_submit: run % has over 100000 params or edges', rid
            USING ERRCODE = '54000';
    END IF;
    LOCK TABLE lineage_delivery_lock IN EXCLUSIVE MODE;
    IF EXISTS (SELECT 1 FROM runs WHERE id = rid) THEN
        RETURN 'present';
    END IF;
    IF EXISTS (SELECT 1 FROM lineage_tombstones WHERE run_id = rid) THEN
        RETURN 'deleted';
    END IF;
    IF run ->> 'status' IS NULL OR run ->> 'status' NOT IN ('succeeded', 'failed', 'interrupted') THEN
        RAISE EXCEPTION 'lineage_submit: run % is not finished', rid USING ERRCODE = '22023';
    END IF;
    IF run ->> 'rerun_of' = rid THEN
        RAISE EXCEPTION 'lineage_submit: run % names itself as its original', rid
            USING ERRCODE = '22023';
    END IF;
    IF run ? 'seq' OR run ? 'recorded_by' THEN
        RAISE EXCEPTION 'lineage_submit: run % names server columns (seq, recorded_by)', rid
            USING ERRCODE = '22023';
    END IF;
    FOREACH t IN ARRAY ARRAY['edges', 'params', 'signatures'] LOOP
        IF jsonb_typeof(COALESCE(doc -> t, '[]')) <> 'array' THEN
            RAISE EXCEPTION 'lineage_submit: % is not a list', t USING ERRCODE = '22023';
        END IF;
        SELECT e ->> 'run_id' INTO bad FROM jsonb_array_elements(COALESCE(doc -> t, '[]')) e
        WHERE e ->> 'run_id' IS DISTINCT FROM rid LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'lineage_submit: % rows for another run than %', t, rid
                USING ERRCODE = '22023';
        END IF;
    END LOOP;
    -- A UUIDv7 of the run's start, neither in the future (as every replica checks: a run
    -- they would all refuse is refused here).
    IF substr(rid, 15, 1) <> '7' THEN
        RAISE EXCEPTION 'lineage_submit: run id % is not a UUIDv7', rid USING ERRCODE = '22023';
    END IF;
    id_ms := ('x' || lpad(substr(replace(rid, '-', ''), 1, 12), 16, '0'))::bit(64)::bigint;
    BEGIN
        start_ms := (extract(epoch FROM (run ->> 'started_at')::timestamptz) * 1000)::bigint;
    EXCEPTION WHEN others THEN
        RAISE EXCEPTION 'lineage_submit: run % has no valid started_at', rid
            USING ERRCODE = '22007';
    END;
    IF abs(id_ms - start_ms) > 86400000 THEN
        RAISE EXCEPTION 'lineage_submit: run %: its id''s time is not its start', rid
            USING ERRCODE = '22023';
    END IF;
    IF start_ms > now_ms + 3600000 OR id_ms > now_ms + 3600000 THEN
        RAISE EXCEPTION 'lineage_submit: run % is from the future', rid USING ERRCODE = '22023';
    END IF;
    FOREACH t IN ARRAY ARRAY['artifacts', 'dir_entries', 'blobs', 'extra_digests'] LOOP
        IF jsonb_typeof(COALESCE(doc -> t, '[]')) <> 'array' THEN
            RAISE EXCEPTION 'lineage_submit: % is not a list', t USING ERRCODE = '22023';
        END IF;
    END LOOP;
    -- Rows named by their content: the first copy stays (every replica checks them on pull).
    PERFORM lineage_insert_rows('artifacts', COALESCE(doc -> 'artifacts', '[]'), '{}',
                                'ON CONFLICT DO NOTHING');
    -- A directory's manifest arrives whole, once: never added to.
    PERFORM lineage_insert_rows('dir_entries', COALESCE((
        SELECT jsonb_agg(e) FROM jsonb_array_elements(doc -> 'dir_entries') e
        WHERE NOT EXISTS (SELECT 1 FROM dir_entries d WHERE d.dir_hash = e ->> 'dir_hash')),
        '[]'), '{}', 'ON CONFLICT DO NOTHING');
    PERFORM lineage_insert_rows('blobs', COALESCE(doc -> 'blobs', '[]'), '{}',
                                'ON CONFLICT DO NOTHING');
    PERFORM lineage_insert_rows('extra_digests', COALESCE(doc -> 'extra_digests', '[]'), '{}',
                                'ON CONFLICT DO NOTHING');
    -- The run, numbered here and credited to the role that submitted it.
    PERFORM lineage_insert_rows('runs', jsonb_build_array(run || jsonb_build_object(
        'recorded_by', session_user::text)), '{seq}', '');
    PERFORM lineage_insert_rows('edges', COALESCE(doc -> 'edges', '[]'), '{}', '');
    PERFORM lineage_insert_rows('params', COALESCE(doc -> 'params', '[]'), '{}', '');
    PERFORM lineage_insert_rows('signatures', COALESCE(doc -> 'signatures', '[]'), '{}', '');
    RETURN 'new';
END
$f$;
REVOKE EXECUTE ON FUNCTION lineage_submit(jsonb) FROM PUBLIC;

-- The owner's: delete a run (retention, a mistake, a request) and leave a tombstone every
-- replica applies on its next pull. A run that others' reruns name stays until they go.
CREATE FUNCTION lineage_delete_run(rid text, why text) RETURNS text
LANGUAGE plpgsql AS $f$
BEGIN
    LOCK TABLE lineage_delivery_lock IN EXCLUSIVE MODE;
    IF NOT EXISTS (SELECT 1 FROM runs WHERE id = rid) THEN
        RAISE EXCEPTION 'no run % on this team store', rid USING ERRCODE = 'P0002';
    END IF;
    IF EXISTS (SELECT 1 FROM runs WHERE rerun_of = rid) THEN
        RAISE EXCEPTION 'run % has reruns on this team store: delete them first', rid
            USING ERRCODE = '23503';
    END IF;
    DELETE FROM signatures WHERE run_id = rid;
    DELETE FROM params WHERE run_id = rid;
    DELETE FROM edges WHERE run_id = rid;
    DELETE FROM runs WHERE id = rid;
    INSERT INTO lineage_tombstones (run_id, deleted_at, deleted_by, reason)
    VALUES (rid, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            session_user::text, COALESCE(why, ''));
    RETURN rid;
END
$f$;
REVOKE EXECUTE ON FUNCTION lineage_delete_run(text, text) FROM PUBLIC;

-- Functions that run as the owner look only in lineage's schema (and pg_temp last, so no
-- session's temporary table can stand in for one of lineage's).
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION lineage_insert_rows(text, jsonb, text[], text) SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION lineage_submit(jsonb) SET search_path = %I, pg_temp', current_schema());
    ALTER FUNCTION lineage_submit(jsonb) SET lock_timeout = '10s';
    EXECUTE format('ALTER FUNCTION lineage_delete_run(text, text) SET search_path = %I, pg_temp', current_schema());
END
$$;
