-- Each run's probe-check tally, kept by ingest in the same UPDATE that moves `acked_seq`: the
-- run's summary is read in O(1) (lists, the CI gate), and stays when retention deletes the
-- run's events and checks (`events_pruned_at` then says when).
ALTER TABLE runs
    ADD COLUMN checks_ok       integer NOT NULL DEFAULT 0,
    ADD COLUMN checks_failed   integer NOT NULL DEFAULT 0,
    ADD COLUMN events_pruned_at timestamptz;

UPDATE runs r SET checks_ok = t.ok, checks_failed = t.failed
FROM (
    SELECT run_id, count(*) FILTER (WHERE ok) AS ok, count(*) FILTER (WHERE NOT ok) AS failed
    FROM probe_checks GROUP BY run_id
) t
WHERE t.run_id = r.id;

-- Retention finds ended runs whose events are still there, oldest first.
CREATE INDEX runs_retention ON runs (ended_at) WHERE events_pruned_at IS NULL AND ended_at IS NOT NULL;
