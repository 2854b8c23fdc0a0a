-- A probe check is stored once, as its event (issue 20: event ingest). The hub writes a readable
-- check's payload in canonical form (server/src/ingest.rs) and marks the event with `check_ok`;
-- `probe_checks` becomes a view over those events, so every reader stays as it was.
ALTER TABLE run_events ADD COLUMN check_ok boolean;

-- Existing checks: their event is marked and its payload rewritten from the stored check, so
-- the view reads exactly what was stored (bounds and all).
UPDATE run_events e SET check_ok = c.ok,
    payload = jsonb_strip_nulls(jsonb_build_object(
        'probe', c.probe, 'phase', c.phase, 'step', c.step, 'countsFor', to_jsonb(c.counts_for),
        'mode', c.mode, 'attempts', c.attempts, 'ok', c.ok, 'latencyMs', c.latency_ms,
        'detail', c.detail,
        'output', CASE WHEN jsonb_typeof(e.payload->'output') = 'string' THEN e.payload->'output' END,
        'startedMs', CASE WHEN jsonb_typeof(e.payload->'startedMs') = 'number' THEN e.payload->'startedMs' END))
FROM probe_checks c WHERE e.run_id = c.run_id AND e.seq = c.seq;

DROP TABLE probe_checks;

CREATE VIEW probe_checks AS
SELECT e.run_id, e.seq,
       e.payload->>'probe' AS probe,
       (e.payload->>'step')::int AS step,
       e.payload->>'phase' AS phase,
       e.at,
       e.check_ok AS ok,
       (e.payload->>'latencyMs')::float8 AS latency_ms,
       e.payload->>'detail' AS detail,
       CASE WHEN jsonb_typeof(e.payload->'countsFor') = 'array'
            THEN ARRAY(SELECT jsonb_array_elements_text(e.payload->'countsFor')::int) END AS counts_for,
       COALESCE(e.payload->>'mode', '') AS mode,
       COALESCE((e.payload->>'attempts')::int, 1) AS attempts
FROM run_events e
WHERE e.check_ok IS NOT NULL;
