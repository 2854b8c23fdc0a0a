-- Faultline schema, first cut. Every template, run and delegate belongs to a project.
CREATE TABLE projects (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    email          text NOT NULL UNIQUE,
    name           text NOT NULL DEFAULT '',
    password_hash  text,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memberships (
    project_id  uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        text NOT NULL,
    PRIMARY KEY (project_id, user_id)
);

-- API tokens: only the SHA-256 of the secret is stored. project_id NULL = every project.
CREATE TABLE api_tokens (
    id            uuid PRIMARY KEY,
    project_id    uuid REFERENCES projects(id) ON DELETE CASCADE,
    name          text NOT NULL,
    role          text NOT NULL,
    hash          text NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);

CREATE TABLE delegate_tokens (
    id          uuid PRIMARY KEY,
    project_id  uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    hash        text NOT NULL UNIQUE,
    reusable    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    used_at     timestamptz,
    revoked_at  timestamptz
);

CREATE TABLE delegates (
    id                 uuid PRIMARY KEY,
    project_id         uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name               text NOT NULL,
    labels             jsonb NOT NULL DEFAULT '{}',
    version            text NOT NULL DEFAULT '',
    capabilities       jsonb NOT NULL DEFAULT '{}',
    credential_hash    text NOT NULL UNIQUE,
    connected_replica  text,
    -- The live stream; a newer stream replaces it and the older one ends.
    session_id         uuid,
    last_heartbeat_at  timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    revoked_at         timestamptz,
    UNIQUE (project_id, name)
);

CREATE TABLE templates (
    id           uuid PRIMARY KEY,
    project_id   uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    archived_at  timestamptz,
    UNIQUE (project_id, name)
);

CREATE TABLE template_versions (
    template_id  uuid NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
    version      integer NOT NULL,
    yaml         text NOT NULL,
    spec         jsonb NOT NULL,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    git_commit   text,
    PRIMARY KEY (template_id, version)
);

CREATE TABLE runs (
    id                  uuid PRIMARY KEY,
    project_id          uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    template_id         uuid NOT NULL,
    template_version    integer NOT NULL,
    delegate_id         uuid NOT NULL REFERENCES delegates(id),
    state               text NOT NULL,
    dry_run             boolean NOT NULL DEFAULT false,
    -- How long the delegate is expected to take; the reaper uses it to resolve silent runs.
    planned_ms          bigint NOT NULL,
    abort_requested_at  timestamptz,
    abort_reason        text,
    score               double precision,
    delegate_score      double precision,
    recovery_ms         bigint,
    -- Highest seq up to which every event is stored (what the hub acknowledges).
    acked_seq           bigint NOT NULL DEFAULT 0,
    verdict_reason      text,
    created_by          text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    dispatched_at       timestamptz,
    started_at          timestamptz,
    ended_at            timestamptz,
    FOREIGN KEY (template_id, template_version) REFERENCES template_versions(template_id, version)
);
CREATE INDEX runs_pending ON runs (delegate_id) WHERE state IN ('PENDING', 'DISPATCHED', 'RUNNING', 'ABORTING');
CREATE INDEX runs_project ON runs (project_id, created_at DESC);

CREATE TABLE run_events (
    run_id   uuid NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq      bigint NOT NULL,
    at       timestamptz NOT NULL,
    kind     text NOT NULL,
    payload  jsonb NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE probe_checks (
    run_id      uuid NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq         bigint NOT NULL,
    probe       text NOT NULL,
    step        integer NOT NULL,
    phase       text NOT NULL,
    at          timestamptz NOT NULL,
    ok          boolean NOT NULL,
    latency_ms  double precision NOT NULL,
    detail      text NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    project_id  uuid,
    action      text NOT NULL,
    target      text NOT NULL,
    address     text,
    outcome     text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'
);

INSERT INTO projects (id, name) VALUES ('00000000-0000-0000-0000-000000000001', 'default');
