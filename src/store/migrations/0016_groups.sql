-- Schema version 16: distributed jobs (docs/recording.md, "Distributed jobs"). A run that is
-- one rank of a launch (`srun lineage run ...`, torchrun) has `group` in its capture; the
-- ranks of one launch share `group.id`. No column: two partial indexes on the capture, which
-- hold only the runs that are ranks (none in a store without any), so that `list` finds the
-- ranks among the runs it shows and `show` and `list` find a launch's ranks, without reading
-- any other run's capture. A capture that is not JSON (damaged, edited by hand) is no rank:
-- indexed as NULL, never an error that would keep the store from opening or the run from
-- being read. Queries use the same expression (store/groups.rs, `group_id!`).
CREATE INDEX runs_ranked ON runs (id)
    WHERE (CASE WHEN json_valid(capture) THEN json_extract(capture, '$.group.id') END) IS NOT NULL;
CREATE INDEX runs_by_group ON runs (CASE WHEN json_valid(capture) THEN json_extract(capture, '$.group.id') END)
    WHERE (CASE WHEN json_valid(capture) THEN json_extract(capture, '$.group.id') END) IS NOT NULL;
