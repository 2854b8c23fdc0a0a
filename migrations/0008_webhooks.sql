-- Notifications: a project's webhooks, the outbox of their deliveries and every attempt
-- (server/src/notifications/; docs/notifications.md).
--
-- Events are enqueued by triggers on the rows whose change they report (runs, run_events,
-- schedule_fires, delegates, projects), so an event is stored in the same transaction as the
-- change itself, whichever code path makes it, and is lost or kept with it. The triggers only
-- insert rows; the hub's delivery loop renders and sends them.
CREATE TABLE webhooks (
    id           uuid PRIMARY KEY,
    project_id   uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    url          text NOT NULL,
    -- Event kinds this webhook receives ('run.finished', ...).
    events       text[] NOT NULL,
    format       text NOT NULL CHECK (format IN ('json', 'slack', 'teams')),
    -- The HMAC key of X-Faultline-Signature: the hub needs it to sign, so it cannot be hashed.
    -- Sealed with AES-256-GCM (`enc:v1:...`, server/src/secretbox.rs) when the hub has a
    -- --secret-key, else as given. The API never returns it (only once, at creation or rotation).
    secret       text NOT NULL,
    description  text NOT NULL DEFAULT '',
    enabled      boolean NOT NULL DEFAULT true,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_project ON webhooks (project_id);

-- One event that happened in a project (enqueued only when some webhook wants it).
CREATE TABLE webhook_events (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id  uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    kind        text NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    data        jsonb NOT NULL
);
-- Events (with their deliveries and attempts) are pruned 30 days after they happened, once
-- nothing of them is pending (notifications/outbox.rs `prune`).
CREATE INDEX webhook_events_at ON webhook_events (at);

-- The outbox: one event to one webhook. Every replica's delivery loop claims due rows under
-- FOR UPDATE SKIP LOCKED and holds a lease (lease_until) while it sends, so one replica sends
-- each attempt; a replica that dies mid-send leaves the lease to expire and another retries.
CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    webhook_id       uuid NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id         uuid NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    -- Attempts started (counted when claimed).
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    lease_until      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at      timestamptz,
    last_error       text
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at DESC);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);

-- Every attempt: HTTP status (NULL when no response), latency, the first KiB of the response,
-- or the error.
CREATE TABLE webhook_attempts (
    id           bigserial PRIMARY KEY,
    delivery_id  uuid NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    n            integer NOT NULL,
    at           timestamptz NOT NULL,
    status       integer,
    latency_ms   double precision NOT NULL,
    response     text,
    error        text,
    replica      text NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, n);

-- Stores event `k` of project `p` and one delivery per enabled webhook that wants it, then wakes
-- the delivery loops (NOTIFY is sent at commit). A failure here is only a warning in the
-- server log: a webhook never fails the change it reports (the exception block rolls back
-- just the enqueue; it costs a subtransaction only when some webhook wants the event).
CREATE FUNCTION faultline_webhook_enqueue(p uuid, k text, d jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    ev uuid;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhooks WHERE project_id = p AND enabled AND k = ANY (events)) THEN
        RETURN;
    END IF;
    BEGIN
        INSERT INTO webhook_events (project_id, kind, data) VALUES (p, k, d) RETURNING id INTO ev;
        INSERT INTO webhook_deliveries (webhook_id, event_id)
            SELECT id, ev FROM webhooks WHERE project_id = p AND enabled AND k = ANY (events);
        PERFORM pg_notify('faultline_webhooks', ev::text);
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'faultline: webhook event % of project % not enqueued: %', k, p, SQLERRM;
    END;
END
$$;

-- What every run event says about its run.
CREATE FUNCTION faultline_webhook_run(r runs) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'runId', r.id,
        'project', (SELECT name FROM projects WHERE id = r.project_id),
        'template', (SELECT name FROM templates WHERE id = r.template_id),
        'templateVersion', r.template_version,
        'delegate', (SELECT name FROM delegates WHERE id = r.delegate_id),
        'state', r.state,
        'dryRun', r.dry_run,
        'verdictReason', r.verdict_reason,
        'score', r.score,
        'recoveryMs', r.recovery_ms,
        'abortReason', r.abort_reason,
        'createdBy', r.created_by,
        'scheduleId', r.schedule_id,
        'createdAt', r.created_at,
        'startedAt', r.started_at,
        'endedAt', r.ended_at)
$$;

-- A run that ends: finished (PASSED / FAILED), aborted, or error.
CREATE FUNCTION faultline_webhook_runs() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    k text := CASE NEW.state
        WHEN 'PASSED' THEN 'run.finished' WHEN 'FAILED' THEN 'run.finished'
        WHEN 'ABORTED' THEN 'run.aborted' WHEN 'ERROR' THEN 'run.error' END;
BEGIN
    IF k IS NOT NULL THEN
        PERFORM faultline_webhook_enqueue(NEW.project_id, k, faultline_webhook_run(NEW));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER runs_webhooks AFTER UPDATE OF state ON runs
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION faultline_webhook_runs();

-- The delegate's own events that are news: the run started, a guardrail tripped. Stored once
-- (run_events ignores replays), so sent once. The WHEN clause keeps ingest of other kinds free.
CREATE FUNCTION faultline_webhook_run_events() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r runs;
BEGIN
    SELECT * INTO r FROM runs WHERE id = NEW.run_id;
    IF NEW.kind = 'run.started' THEN
        PERFORM faultline_webhook_enqueue(r.project_id, 'run.started',
            faultline_webhook_run(r) || jsonb_build_object('state', 'RUNNING', 'startedAt', NEW.at));
    ELSE
        PERFORM faultline_webhook_enqueue(r.project_id, 'guardrail.tripped',
            faultline_webhook_run(r) || jsonb_build_object('guardrail', NEW.payload, 'at', NEW.at));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER run_events_webhooks AFTER INSERT ON run_events
    FOR EACH ROW WHEN (NEW.kind IN ('run.started', 'guardrail.tripped'))
    EXECUTE FUNCTION faultline_webhook_run_events();

-- A schedule's fire that could not start its run.
CREATE FUNCTION faultline_webhook_fires() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    s schedules;
BEGIN
    SELECT * INTO s FROM schedules WHERE id = NEW.schedule_id;
    PERFORM faultline_webhook_enqueue(s.project_id, 'schedule.fire_failed', jsonb_build_object(
        'project', (SELECT name FROM projects WHERE id = s.project_id),
        'scheduleId', s.id,
        'schedule', s.name,
        'template', (SELECT name FROM templates WHERE id = s.template_id),
        'dueAt', NEW.due_at,
        'reason', NEW.reason,
        'runId', NEW.run_id));
    RETURN NULL;
END
$$;
CREATE TRIGGER schedule_fires_webhooks_insert AFTER INSERT ON schedule_fires
    FOR EACH ROW WHEN (NEW.outcome = 'failed')
    EXECUTE FUNCTION faultline_webhook_fires();
CREATE TRIGGER schedule_fires_webhooks_update AFTER UPDATE OF outcome ON schedule_fires
    FOR EACH ROW WHEN (NEW.outcome = 'failed' AND OLD.outcome <> 'failed')
    EXECUTE FUNCTION faultline_webhook_fires();

-- A delegate's stream ended (its replica cleared it; a newer stream replacing it is not news).
CREATE FUNCTION faultline_webhook_delegates() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM faultline_webhook_enqueue(NEW.project_id, 'delegate.disconnected', jsonb_build_object(
        'project', (SELECT name FROM projects WHERE id = NEW.project_id),
        'delegateId', NEW.id,
        'delegate', NEW.name,
        'labels', NEW.labels,
        'version', NEW.version,
        'replica', OLD.connected_replica,
        'lastHeartbeatAt', NEW.last_heartbeat_at));
    RETURN NULL;
END
$$;
CREATE TRIGGER delegates_webhooks AFTER UPDATE OF connected_replica ON delegates
    FOR EACH ROW WHEN (OLD.connected_replica IS NOT NULL AND NEW.connected_replica IS NULL)
    EXECUTE FUNCTION faultline_webhook_delegates();

-- A project halted (halt-all); halting an already halted project again is not news.
CREATE FUNCTION faultline_webhook_projects() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM faultline_webhook_enqueue(NEW.id, 'project.halted', jsonb_build_object(
        'project', NEW.name,
        'haltedAt', NEW.halted_at,
        'haltedBy', NEW.halted_by,
        'reason', NEW.halt_reason));
    RETURN NULL;
END
$$;
CREATE TRIGGER projects_webhooks AFTER UPDATE OF halted_at ON projects
    FOR EACH ROW WHEN (OLD.halted_at IS NULL AND NEW.halted_at IS NOT NULL)
    EXECUTE FUNCTION faultline_webhook_projects();
