-- The experiment language (issue 3): checks may count for several faults of a parallel group,
-- carry their probe mode and attempts, and runs keep their statistical latency verdict.
-- Additive only: hubs of the previous version keep working (they ignore the new columns).
ALTER TABLE probe_checks ADD COLUMN counts_for integer[];   -- NULL means ARRAY[step]
ALTER TABLE probe_checks ADD COLUMN mode text NOT NULL DEFAULT '';
ALTER TABLE probe_checks ADD COLUMN attempts integer NOT NULL DEFAULT 1;
ALTER TABLE runs ADD COLUMN latency jsonb;                  -- [LatencyShift], from run.finished
