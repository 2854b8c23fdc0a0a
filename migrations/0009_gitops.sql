-- GitOps: templates kept in a directory or a git repository (server/src/gitops.rs,
-- server/src/git.rs; docs/gitops.md).

-- Where a template came from. `source` names the directory or repository a sync keeps it in
-- step with (NULL: made by hand or by `template apply`); a sync with `prune` archives the
-- templates of its source whose file is gone. `git_path` is the file, relative to the root.
ALTER TABLE templates ADD COLUMN source text;
ALTER TABLE templates ADD COLUMN git_path text;
CREATE INDEX templates_source ON templates (project_id, source) WHERE source IS NOT NULL;

-- The file each version was read from (git_commit exists since 0001).
ALTER TABLE template_versions ADD COLUMN git_path text;

-- A project bound to a git repository, synced by the hub. The credential is the name of a
-- file in the hub's --git-credentials-dir (never stored here). One replica at a time holds a
-- sync's lease (lease_until); any replica may take it once it has expired.
CREATE TABLE git_repos (
    project_id     uuid PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
    url            text NOT NULL,
    branch         text NOT NULL,
    path           text NOT NULL DEFAULT '',
    credential     text,
    credential_kind text CHECK (credential_kind IN ('ssh_key', 'https_token')),
    interval_secs  integer NOT NULL CHECK (interval_secs >= 1),
    prune          boolean NOT NULL DEFAULT true,
    next_sync_at   timestamptz NOT NULL DEFAULT now(),
    -- syncNow: a sync running when it was asked is followed by another at once.
    requested_at   timestamptz,
    lease_holder   text,
    lease_until    timestamptz,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX git_repos_due ON git_repos (next_sync_at);

-- Every hub-side sync attempt: which replica, when, the commit and the report, or the error.
CREATE TABLE git_syncs (
    id           bigserial PRIMARY KEY,
    project_id   uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    replica      text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    git_commit   text,
    ok           boolean NOT NULL,
    error        text,
    report       jsonb
);
CREATE INDEX git_syncs_recent ON git_syncs (project_id, id DESC);

-- A schedule declared in its template's file (`schedule:`): a sync creates, updates and pauses
-- it with the template (docs/gitops.md).
ALTER TABLE schedules ADD COLUMN git_managed boolean NOT NULL DEFAULT false;
