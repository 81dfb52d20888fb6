-- Schema version 16: distributed jobs (docs/recording.md, "Distributed jobs"). A run that is
-- one rank of a launch (`srun lineage run ...`, torchrun) has `group` in its capture; the
-- ranks of one launch share `group.id`. No column: two partial indexes on the capture, which
-- hold only the runs that are ranks (none in a store without any), so that `list` finds the
-- ranks among the runs it shows and `show` and `list` find a launch's ranks, without reading
-- any other run's capture.
CREATE INDEX runs_ranked ON runs (id) WHERE json_extract(capture, '$.group.id') IS NOT NULL;
CREATE INDEX runs_by_group ON runs (json_extract(capture, '$.group.id'))
    WHERE json_extract(capture, '$.group.id') IS NOT NULL;
