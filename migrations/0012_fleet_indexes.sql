-- Fleet views stay fast with 10,000 delegates and 1,000,000 runs (issue 20).

-- Runs are listed newest first with ties broken by id (keyset paging with `runs(before:)`),
-- per project or across every readable project.
DROP INDEX runs_project;
CREATE INDEX runs_project ON runs (project_id, created_at DESC, id DESC);
CREATE INDEX runs_created ON runs (created_at DESC, id DESC);
-- A template's runs (Trends, compare) and a delegate's runs (the runs filter).
CREATE INDEX runs_template ON runs (template_id, created_at DESC);
CREATE INDEX runs_delegate ON runs (delegate_id, created_at DESC) WHERE delegate_id IS NOT NULL;

-- Choosing a delegate by a label selector (`labels @> '{"env": "prod"}'`).
CREATE INDEX delegates_labels ON delegates USING gin (labels jsonb_path_ops);

-- Each replica's work poll: runs the hub ended in ERROR while an abort was still on its way to
-- the delegate (the other states it looks for are in runs_pending).
CREATE INDEX runs_aborted_errors ON runs (ended_at) WHERE state = 'ERROR' AND abort_requested_at IS NOT NULL;

-- Heartbeats rewrite every connected delegate's row each interval (server/src/liveness.rs).
-- Room on each page lets them be HOT updates, pruned in place, so 10,000 delegates beating every
-- second do not bloat the table between vacuums.
ALTER TABLE delegates SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000);
