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
