-- Schedules: runs started by the hub on a cron clock (server/src/schedules.rs, scheduler.rs;
-- docs/schedules.md).
CREATE TABLE schedules (
    id            uuid PRIMARY KEY,
    project_id    uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    template_id   uuid NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
    name          text NOT NULL,
    -- 5 fields, 6 with seconds, or an @alias; evaluated in `timezone` (IANA).
    cron          text NOT NULL,
    timezone      text NOT NULL,
    -- A delegate name or `k=v` selector; NULL: the template's target.delegate.
    delegate      text,
    -- A pinned template version; NULL: the latest version at each fire.
    version       integer,
    concurrency   text NOT NULL CHECK (concurrency IN ('forbid', 'queue', 'allow')),
    jitter_ms     bigint NOT NULL DEFAULT 0 CHECK (jitter_ms >= 0),
    enabled       boolean NOT NULL,
    -- The next fire time the cron gives (nominal) and when it is due (nominal + jitter).
    -- Both NULL while paused; the scheduler of any replica fires rows whose next_fire_at
    -- has passed, under FOR UPDATE SKIP LOCKED.
    next_due_at   timestamptz,
    next_fire_at  timestamptz,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE enabled;
CREATE INDEX schedules_template ON schedules (template_id);

-- Every fire of a schedule and what became of it. `started`: run_id is the run it started;
-- `failed`: the run could not start (reason; run_id is the ERROR run recording it);
-- `skipped`: concurrency `forbid` while a run was unfinished, or `queue` with a fire already
-- waiting; `queued`: waiting for the unfinished run (becomes `started` or `failed`);
-- `missed`: no hub fired it in time (`missed_count` fires from due_at to last_due_at).
CREATE TABLE schedule_fires (
    id            bigserial PRIMARY KEY,
    schedule_id   uuid NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
    due_at        timestamptz NOT NULL,
    last_due_at   timestamptz,
    missed_count  integer NOT NULL DEFAULT 1,
    fired_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    outcome       text NOT NULL CHECK (outcome IN ('started', 'failed', 'skipped', 'queued', 'missed')),
    reason        text,
    run_id        uuid REFERENCES runs(id) ON DELETE SET NULL,
    UNIQUE (schedule_id, due_at)
);
CREATE INDEX schedule_fires_recent ON schedule_fires (schedule_id, due_at DESC);
CREATE INDEX schedule_fires_queued ON schedule_fires (schedule_id) WHERE outcome = 'queued';

-- The schedule that started a run (NULL: started by a person or a pipeline), and a run
-- that could not start has no delegate when none matched.
ALTER TABLE runs ADD COLUMN schedule_id uuid REFERENCES schedules(id) ON DELETE SET NULL;
ALTER TABLE runs ALTER COLUMN delegate_id DROP NOT NULL;
CREATE INDEX runs_schedule ON runs (schedule_id, created_at DESC) WHERE schedule_id IS NOT NULL;
