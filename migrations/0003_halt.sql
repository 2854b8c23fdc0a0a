-- Halt-all (issue 4): an emergency stop per project. While `halted_at` is set, every run of the
-- project is aborted, every delegate of the project is told to revert everything, and no new run
-- starts. `halt_seq` counts halts, so a delegate stream knows whether it has passed on the
-- current one (a delegate that was offline gets it when it reconnects).
-- Additive only: hubs of the previous version keep working (they ignore the new columns).
ALTER TABLE projects ADD COLUMN halted_at timestamptz;
ALTER TABLE projects ADD COLUMN halted_by text;
ALTER TABLE projects ADD COLUMN halt_reason text;
ALTER TABLE projects ADD COLUMN halt_seq bigint NOT NULL DEFAULT 0;
