-- The team store's schema, version 4: which of an output's bytes its run wrote (the SQLite
-- store's schema version 10, docs/lineage-model.md). `written`: 1 all, 0 none, 2 some (`kept`
-- lists, as a JSON array, the files inside the directory the job left as they were); NULL for
-- inputs, configs and runs recorded before.
ALTER TABLE edges ADD COLUMN written BIGINT;
ALTER TABLE edges ADD COLUMN kept TEXT;
