//! API tokens for CI/CD and automation: scoped to one project and one role (or an instance token
//! with the admin role, made only by the CLI), with an optional expiry, shown once and stored as
//! a SHA-256 hash (the secrets are random, so a fast hash is the right one; argon2 is for
//! human passwords). Each use is recorded: `last_used_at`, and a `token.use` audit entry at most
//! once a minute per token.
use super::{Actor, Principal, Role};
use crate::error::{ApiError, ApiResult};
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::net::IpAddr;
use uuid::Uuid;

/// Prefix of API token secrets (tells them apart from session JWTs).
pub const PREFIX: &str = "fl_api";

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new random secret like `fl_api_3f9c…` (32 random bytes, hex).
pub fn new_secret(prefix: &str) -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    format!("{prefix}_{}", hex::encode(b))
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TokenRow {
    pub id: Uuid,
    pub project_id: Option<Uuid>,
    pub name: String,
    pub role: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "id, project_id, name, role, created_by, created_at, expires_at, last_used_at, revoked_at";

/// Makes a token; returns its row and the secret, which is never shown again.
/// `project` `None` makes an instance (admin) token.
pub async fn create(
    pool: &PgPool,
    project: Option<Uuid>,
    name: &str,
    role: Option<Role>,
    expires_at: Option<DateTime<Utc>>,
    created_by: &str,
) -> ApiResult<(TokenRow, String)> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(ApiError::bad(
            "name",
            "give the token a name of 1 to 100 characters",
        ));
    }
    if let Some(e) = expires_at {
        if e <= Utc::now() {
            return Err(ApiError::bad("expiresAt", "must be in the future"));
        }
    }
    let role = match (project, role) {
        (None, _) => "admin",
        (Some(_), Some(r)) => r.as_str(),
        (Some(_), None) => return Err(ApiError::bad("role", "a project token needs a role")),
    };
    let secret = new_secret(PREFIX);
    let row = sqlx::query_as(&format!(
        "INSERT INTO api_tokens (id, project_id, name, role, hash, expires_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(project)
    .bind(name)
    .bind(role)
    .bind(hash_secret(&secret))
    .bind(expires_at)
    .bind(created_by)
    .fetch_one(pool)
    .await?;
    Ok((row, secret))
}

/// The tokens of `project` (revoked ones too, newest first).
pub async fn list(pool: &PgPool, project: Uuid) -> ApiResult<Vec<TokenRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_tokens WHERE project_id = $1 ORDER BY created_at DESC"
    ))
    .bind(project)
    .fetch_all(pool)
    .await?)
}

pub async fn get(pool: &PgPool, id: Uuid) -> ApiResult<TokenRow> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_tokens WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| ApiError::NotFound("api token".into()))
}

/// Revokes a token at once (the next request with it is refused). Idempotent.
pub async fn revoke(pool: &PgPool, id: Uuid) -> ApiResult<TokenRow> {
    sqlx::query("UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
        .bind(id)
        .execute(pool)
        .await?;
    get(pool, id).await
}

/// Refuses a token that was revoked or has expired since it was presented. One lookup by
/// primary key, for long-lived requests (subscriptions) that re-check their caller.
pub async fn still_valid(pool: &PgPool, id: Uuid) -> ApiResult<()> {
    let row: Option<(Uuid,)> = sqlx::query_as(
        "SELECT id FROM api_tokens WHERE id = $1 AND revoked_at IS NULL \
         AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(|_| ())
        .ok_or_else(|| ApiError::Unauthenticated("the API token was revoked or has expired".into()))
}

/// The principal of an API token secret, if it is valid; records its use.
pub async fn authenticate(
    pool: &PgPool,
    secret: &str,
    address: Option<IpAddr>,
) -> ApiResult<Principal> {
    let row: Option<(Uuid, String, String, Option<Uuid>, bool)> = sqlx::query_as(
        "SELECT id, name, role, project_id, (last_used_at IS NULL OR last_used_at < now() - interval '1 minute') \
         FROM api_tokens WHERE hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind(hash_secret(secret))
    .fetch_optional(pool)
    .await?;
    let (id, name, role, project, stale) =
        row.ok_or_else(|| ApiError::Unauthenticated("invalid, expired or revoked token".into()))?;
    let scope = match project {
        Some(p) => Some((p, Role::parse("role", &role)?)),
        None => None,
    };
    let principal = Principal {
        actor: Actor::Token { id, name, scope },
        admin: project.is_none() && role == "admin",
        address,
    };
    // Record use at most once a minute, so busy tokens do not contend on their row.
    if stale {
        sqlx::query("UPDATE api_tokens SET last_used_at = now() WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await?;
        crate::audit::record(
            pool,
            &principal,
            project,
            "token.use",
            id.to_string(),
            &Ok::<_, ApiError>(()),
        )
        .await;
    }
    Ok(principal)
}
