-- What a run's recovery time is measured from: the event ending its last fault or action
-- (`{event, path, what, atMs}`, see experiment/src/events.rs `RecoveryFrom`). NULL for runs that
-- measured no recovery and for runs stored before this column existed.
ALTER TABLE runs ADD COLUMN recovery_from jsonb;
