//! Pending logins in Postgres (`oidc_logins`), so the replica that receives the callback need not
//! be the one that sent the user to the provider. The `state` column holds the SHA-256 of the
//! state, like every other secret the hub looks up: the lookup then compares hashes, so its
//! timing says nothing about the secret, and a read of the table yields no usable state.
use super::Pending;
use crate::identity::tokens::hash_secret;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// Rows this old are deleted when a new login begins. Longer than [`super::PENDING_TTL`], so a
/// user coming back late hears that the login expired rather than that it is unknown.
const PURGE_AFTER_SECS: f64 = 3600.0;

pub async fn insert(pool: &PgPool, p: &Pending) -> Result<DateTime<Utc>, sqlx::Error> {
    sqlx::query("DELETE FROM oidc_logins WHERE created_at < now() - make_interval(secs => $1)")
        .bind(PURGE_AFTER_SECS)
        .execute(pool)
        .await?;
    let (created_at,): (DateTime<Utc>,) = sqlx::query_as(
        "INSERT INTO oidc_logins (state, provider, nonce, pkce_verifier, redirect_uri) \
         VALUES ($1, $2, $3, $4, $5) RETURNING created_at",
    )
    .bind(hash_secret(&p.state))
    .bind(&p.provider)
    .bind(&p.nonce)
    .bind(&p.pkce_verifier)
    .bind(&p.redirect_uri)
    .fetch_one(pool)
    .await?;
    Ok(created_at)
}

/// Removes and returns the login with this state, and its age by the database's clock (one clock
/// for all replicas). A second call with the same state finds nothing.
pub async fn take(pool: &PgPool, state: &str) -> Result<Option<(Pending, f64)>, sqlx::Error> {
    let row: Option<(String, String, String, String, DateTime<Utc>, f64)> = sqlx::query_as(
        "DELETE FROM oidc_logins WHERE state = $1 \
         RETURNING provider, nonce, pkce_verifier, redirect_uri, created_at, \
                   EXTRACT(EPOCH FROM now() - created_at)::float8",
    )
    .bind(hash_secret(state))
    .fetch_optional(pool)
    .await?;
    Ok(row.map(
        |(provider, nonce, pkce_verifier, redirect_uri, created_at, age)| {
            let pending = Pending {
                provider,
                state: state.to_string(),
                nonce,
                pkce_verifier,
                redirect_uri,
                created_at,
            };
            (pending, age)
        },
    ))
}
