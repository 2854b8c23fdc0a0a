//! API tokens: creation, hashing and the `Principal` a request acts as. Secrets are random, so a
//! fast SHA-256 is the right hash (argon2 is for human passwords, which come with SSO later).
use crate::error::{ApiError, ApiResult};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

/// Who is calling, as established by their bearer token.
#[derive(Clone, Debug)]
pub struct Principal {
    pub token_id: Uuid,
    pub name: String,
    pub role: String,
    /// `None` means every project.
    pub project_id: Option<Uuid>,
}

impl Principal {
    /// Audit-log name of the actor.
    pub fn actor(&self) -> String {
        format!("token:{}", self.name)
    }

    /// Refuses unless the token has one of `roles`.
    pub fn require_role(&self, roles: &[&str]) -> ApiResult<()> {
        if roles.contains(&self.role.as_str()) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "role {} may not do this (needs one of: {})",
                self.role,
                roles.join(", ")
            )))
        }
    }

    pub fn require_project(&self, project: Uuid) -> ApiResult<()> {
        match self.project_id {
            None => Ok(()),
            Some(p) if p == project => Ok(()),
            Some(_) => Err(ApiError::Forbidden(
                "token is not valid for this project".into(),
            )),
        }
    }
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new random secret like `fl_admin_3f9c…` (32 random bytes, hex).
pub fn new_secret(prefix: &str) -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    format!("{prefix}_{}", hex::encode(b))
}

/// On the very first start (no API token at all), creates the admin token and returns it so the
/// caller can print it once. Serialised by an advisory lock so concurrent replicas agree.
pub async fn bootstrap_admin(pool: &PgPool) -> anyhow::Result<Option<String>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(7710001)")
        .execute(&mut *tx)
        .await?;
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM api_tokens")
        .fetch_one(&mut *tx)
        .await?;
    if n > 0 {
        return Ok(None);
    }
    let token = new_secret("fl_admin");
    sqlx::query("INSERT INTO api_tokens (id, project_id, name, role, hash) VALUES ($1, NULL, 'admin', 'admin', $2)")
        .bind(Uuid::new_v4())
        .bind(hash_secret(&token))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(token))
}

/// Resolves `Authorization: Bearer <token>` to a principal.
pub async fn authenticate(pool: &PgPool, header: Option<&str>) -> ApiResult<Principal> {
    let token = header
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 256)
        .ok_or_else(|| ApiError::Unauthenticated("send Authorization: Bearer <token>".into()))?;
    let row: Option<(Uuid, String, String, Option<Uuid>, bool)> = sqlx::query_as(
        "SELECT id, name, role, project_id, (last_used_at IS NULL OR last_used_at < now() - interval '1 minute') \
         FROM api_tokens WHERE hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind(hash_secret(token))
    .fetch_optional(pool)
    .await?;
    let (token_id, name, role, project_id, stale) =
        row.ok_or_else(|| ApiError::Unauthenticated("invalid, expired or revoked token".into()))?;
    // Record use at most once a minute, so busy tokens do not contend on their row.
    if stale {
        sqlx::query("UPDATE api_tokens SET last_used_at = now() WHERE id = $1")
            .bind(token_id)
            .execute(pool)
            .await?;
    }
    Ok(Principal {
        token_id,
        name,
        role,
        project_id,
    })
}
