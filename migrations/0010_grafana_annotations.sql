-- Grafana annotations of the chaos windows and runs (docs/observability.md). Filled by triggers
-- as a run's events and verdict are stored (so exactly once, whichever replica stored them);
-- sent by any replica started with --grafana-url (claimed with SKIP LOCKED and a lease). Rows
-- go after 7 days, sent or not.
CREATE TABLE grafana_annotations (
    id               bigserial PRIMARY KEY,
    project          text NOT NULL,
    run_id           uuid NOT NULL,
    -- `fault`: one fault's window (its run step); `run`: the run, start to end, with its verdict.
    kind             text NOT NULL,
    step             integer NOT NULL,
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz,
    text             text NOT NULL,
    tags             text[] NOT NULL,
    -- Grafana's id once created; a window that ends afterwards is patched with its end.
    grafana_id       bigint,
    -- What Grafana still lacks: `create`, or `end` (patch timeEnd); NULL when it is up to date.
    pending          text,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_until      timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, kind, step)
);
CREATE INDEX grafana_annotations_due ON grafana_annotations (next_attempt_at, id)
    WHERE pending IS NOT NULL;
CREATE INDEX grafana_annotations_age ON grafana_annotations (created_at);

-- A fault applied opens a window; undone (reverted, or a one-shot's watch over) closes it.
CREATE FUNCTION faultline_grafana_fault_events() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r runs;
    p text;
    t text;
    at_step integer := COALESCE((NEW.payload->>'step')::integer, 0);
    fault text := COALESCE(NEW.payload->>'fault', 'fault');
BEGIN
    IF NEW.kind = 'fault.applied' THEN
        SELECT * INTO r FROM runs WHERE id = NEW.run_id;
        IF r.dry_run THEN
            RETURN NULL;
        END IF;
        SELECT name INTO p FROM projects WHERE id = r.project_id;
        SELECT name INTO t FROM templates WHERE id = r.template_id;
        INSERT INTO grafana_annotations (project, run_id, kind, step, starts_at, text, tags, pending)
        VALUES (p, NEW.run_id, 'fault', at_step, NEW.at,
                left(format('%s (%s v%s, %s): %s', fault, t, r.template_version,
                            NEW.payload->>'path', NEW.payload->>'detail'), 1000),
                ARRAY['faultline', 'fault', 'project:' || p, 'kind:' || fault, 'template:' || t],
                'create')
        ON CONFLICT (run_id, kind, step) DO NOTHING;
    ELSE
        UPDATE grafana_annotations
           SET ends_at = NEW.at,
               pending = CASE WHEN grafana_id IS NULL THEN 'create' ELSE 'end' END,
               next_attempt_at = now()
         WHERE run_id = NEW.run_id AND kind = 'fault' AND grafana_annotations.step = at_step
           AND ends_at IS NULL;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER run_events_grafana AFTER INSERT ON run_events
    FOR EACH ROW WHEN (NEW.kind IN ('fault.applied', 'fault.reverted', 'fault.ended'))
    EXECUTE FUNCTION faultline_grafana_fault_events();

-- A run that ends: its whole span, with the verdict and score.
CREATE FUNCTION faultline_grafana_runs() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    p text;
    t text;
BEGIN
    IF NEW.state NOT IN ('PASSED', 'FAILED', 'ABORTED', 'ERROR') OR NEW.dry_run
       OR NEW.started_at IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT name INTO p FROM projects WHERE id = NEW.project_id;
    SELECT name INTO t FROM templates WHERE id = NEW.template_id;
    INSERT INTO grafana_annotations (project, run_id, kind, step, starts_at, ends_at, text, tags, pending)
    VALUES (p, NEW.id, 'run', 0, NEW.started_at, COALESCE(NEW.ended_at, now()),
            left(format('run of %s v%s: %s%s', t, NEW.template_version, NEW.state,
                        CASE WHEN NEW.score IS NULL THEN '' ELSE format(', score %s', round(NEW.score::numeric, 1)) END), 1000),
            ARRAY['faultline', 'run', 'project:' || p, 'template:' || t, 'verdict:' || lower(NEW.state)],
            'create')
    ON CONFLICT (run_id, kind, step) DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER runs_grafana AFTER UPDATE OF state ON runs
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION faultline_grafana_runs();
