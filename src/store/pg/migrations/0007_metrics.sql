-- The team store's schema, version 7: metrics (the SQLite store's schema version 14,
-- docs/recording.md): the numbers a run read from its metrics files, one row per key.
CREATE TABLE metrics (
    run_id      TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    source      TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
ALTER TABLE metrics ADD CONSTRAINT metrics_run FOREIGN KEY (run_id) REFERENCES runs (id) NOT VALID;
ALTER TABLE metrics ADD CONSTRAINT metrics_finite
    CHECK (value <> 'NaN' AND value <> 'Infinity' AND value <> '-Infinity');
ALTER TABLE metrics ENABLE ROW LEVEL SECURITY;
CREATE POLICY metrics_read ON metrics FOR SELECT USING (true);

-- lineage_submit takes a run's metrics too: the checks and inserts of version 5 run first
-- (as lineage_submit_v5, which only this one calls), then its metrics go in beside its params.
ALTER FUNCTION lineage_submit(jsonb) RENAME TO lineage_submit_v5;
REVOKE ALL ON FUNCTION lineage_submit_v5(jsonb) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'lineage_writer') THEN
        REVOKE ALL ON FUNCTION lineage_submit_v5(jsonb) FROM lineage_writer;
    END IF;
END
$$;

CREATE FUNCTION lineage_submit(doc jsonb) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER AS $f$
DECLARE
    rid text := doc -> 'run' ->> 'id';
    outcome text;
BEGIN
    IF jsonb_typeof(COALESCE(doc -> 'metrics', '[]')) <> 'array' THEN
        RAISE EXCEPTION 'lineage_submit: metrics is not a list' USING ERRCODE = '22023';
    END IF;
    IF jsonb_array_length(COALESCE(doc -> 'metrics', '[]')) > 100000 THEN
        RAISE EXCEPTION 'lineage_submit: run % has over 100000 metrics', rid
            USING ERRCODE = '54000';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(COALESCE(doc -> 'metrics', '[]')) e
               WHERE e ->> 'run_id' IS DISTINCT FROM rid) THEN
        RAISE EXCEPTION 'lineage_submit: metrics rows for another run than %', rid
            USING ERRCODE = '22023';
    END IF;
    outcome := lineage_submit_v5(doc);
    IF outcome = 'new' THEN
        PERFORM lineage_insert_rows('metrics', COALESCE(doc -> 'metrics', '[]'), '{}', '');
    END IF;
    RETURN outcome;
END
$f$;
REVOKE EXECUTE ON FUNCTION lineage_submit(jsonb) FROM PUBLIC;

-- Deleting a run deletes its metrics first.
ALTER FUNCTION lineage_delete_run(text, text) RENAME TO lineage_delete_run_v5;
REVOKE ALL ON FUNCTION lineage_delete_run_v5(text, text) FROM PUBLIC;
CREATE FUNCTION lineage_delete_run(rid text, why text) RETURNS text
LANGUAGE plpgsql AS $f$
BEGIN
    DELETE FROM metrics WHERE run_id = rid;
    RETURN lineage_delete_run_v5(rid, why);
END
$f$;
REVOKE EXECUTE ON FUNCTION lineage_delete_run(text, text) FROM PUBLIC;

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION lineage_submit(jsonb) SET search_path = %I, pg_temp', current_schema());
    ALTER FUNCTION lineage_submit(jsonb) SET lock_timeout = '10s';
    EXECUTE format('ALTER FUNCTION lineage_delete_run(text, text) SET search_path = %I, pg_temp', current_schema());
END
$$;
