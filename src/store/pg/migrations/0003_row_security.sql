-- The team store's schema, version 3: a writer adds rows only for runs it recorded. Each run
-- keeps the role that inserted it (`recorded_by`, the server's own column); row-level
-- security lets anyone read every row, insert a run only as itself, and insert a run's
-- edges, params and signature only while that run is its own. Give each person a login role
-- that is a member of lineage_writer (docs/team-store.md). The owner, who runs migrations,
-- is not bound by these policies.
ALTER TABLE runs ADD COLUMN recorded_by TEXT NOT NULL DEFAULT current_user;

ALTER TABLE runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY runs_read ON runs FOR SELECT USING (true);
CREATE POLICY runs_insert ON runs FOR INSERT WITH CHECK (recorded_by = current_user);

ALTER TABLE edges ENABLE ROW LEVEL SECURITY;
CREATE POLICY edges_read ON edges FOR SELECT USING (true);
CREATE POLICY edges_insert ON edges FOR INSERT WITH CHECK (
    EXISTS (SELECT 1 FROM runs r WHERE r.id = run_id AND r.recorded_by = current_user));

ALTER TABLE params ENABLE ROW LEVEL SECURITY;
CREATE POLICY params_read ON params FOR SELECT USING (true);
CREATE POLICY params_insert ON params FOR INSERT WITH CHECK (
    EXISTS (SELECT 1 FROM runs r WHERE r.id = run_id AND r.recorded_by = current_user));

ALTER TABLE signatures ENABLE ROW LEVEL SECURITY;
CREATE POLICY signatures_read ON signatures FOR SELECT USING (true);
CREATE POLICY signatures_insert ON signatures FOR INSERT WITH CHECK (
    EXISTS (SELECT 1 FROM runs r WHERE r.id = run_id AND r.recorded_by = current_user));
