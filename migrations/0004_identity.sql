-- Identity and access (issue 5): instance administrators, SSO-created users, browser sessions,
-- signing keys shared by every replica, richer API and delegate tokens, and an audit log the
-- application can only append to.

ALTER TABLE users ADD COLUMN is_admin boolean NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN disabled_at timestamptz;
-- Set for users created by an SSO login: the provider's name and the `sub` claim.
ALTER TABLE users ADD COLUMN sso_provider text;
ALTER TABLE users ADD COLUMN sso_subject text;
ALTER TABLE users ADD COLUMN last_login_at timestamptz;
CREATE UNIQUE INDEX users_sso ON users (sso_provider, sso_subject) WHERE sso_provider IS NOT NULL;

-- Where a membership comes from: 'manual' (an owner or the CLI) or 'sso:<provider>' (a claim
-- mapping, replaced at each login through that provider).
ALTER TABLE memberships ADD COLUMN source text NOT NULL DEFAULT 'manual';
ALTER TABLE memberships ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE memberships ADD CONSTRAINT memberships_role CHECK (role IN ('owner', 'editor', 'viewer'));

-- A browser or CLI session: the JWT names it (`sid`), so logout revokes it for every replica.
CREATE TABLE sessions (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    method        text NOT NULL,
    address       text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Session signing keys when none are configured: made once, shared by every replica.
CREATE TABLE signing_keys (
    kid         text PRIMARY KEY,
    secret      bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Project tokens carry owner/editor/viewer; only instance tokens (no project) are 'admin'.
ALTER TABLE api_tokens ADD COLUMN created_by text NOT NULL DEFAULT '';
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role CHECK (
    (project_id IS NULL AND role = 'admin')
    OR (project_id IS NOT NULL AND role IN ('owner', 'editor', 'viewer')));

ALTER TABLE delegate_tokens ADD COLUMN name text NOT NULL DEFAULT '';
ALTER TABLE delegate_tokens ADD COLUMN created_by text NOT NULL DEFAULT '';
ALTER TABLE delegate_tokens ADD COLUMN uses integer NOT NULL DEFAULT 0;

ALTER TABLE projects ADD COLUMN created_by text NOT NULL DEFAULT '';

CREATE INDEX audit_log_project ON audit_log (project_id, id DESC);
-- Failed logins per address in the last minute (the brute-force limit).
CREATE INDEX audit_log_login ON audit_log (address, at) WHERE action = 'login';

CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
