-- OpenID Connect logins in progress (server/src/oidc/store.rs). A row lives from the redirect to
-- the identity provider until the callback takes it (DELETE ... RETURNING, so a state is used
-- once) or it is purged; any replica can finish a login another one began.
CREATE TABLE oidc_logins (
    -- The `state` parameter sent to the provider: random, unguessable.
    state          text PRIMARY KEY,
    provider       text NOT NULL,
    nonce          text NOT NULL,
    pkce_verifier  text NOT NULL,
    -- The token request must repeat the redirect URI of the authorization request.
    redirect_uri   text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX oidc_logins_created_at ON oidc_logins (created_at);
