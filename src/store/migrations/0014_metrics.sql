-- Schema version 14: metrics (`lineage run -m FILE`, docs/recording.md). Read from the
-- declared metrics files after the job, flattened like params (`eval.roc_auc`); each a
-- finite number. `source`: the metrics file as given.
CREATE TABLE metrics (
    run_id      TEXT NOT NULL REFERENCES runs (id),
    key         TEXT NOT NULL,
    value       REAL NOT NULL,
    source      TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
-- `lineage list --where` and `compare --where` look runs up by a param's or metric's value.
CREATE INDEX metrics_by_key ON metrics (key, value);
CREATE INDEX params_by_key ON params (key, value);
-- `lineage status` finds the outputs recorded under a directory by their absolute paths.
CREATE INDEX edges_by_output_path ON edges (abs_path) WHERE role = 'output';
