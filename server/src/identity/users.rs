//! Users: local accounts (argon2id passwords), accounts made by SSO logins, instance
//! administrators, the first-start bootstrap administrator, and project memberships.
use super::{passwords, Role};
use crate::error::{ApiError, ApiResult};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::sync::LazyLock;
use uuid::Uuid;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    pub sso_provider: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "id, email, name, is_admin, sso_provider, created_at, last_login_at, disabled_at";

/// Lower-cased and trimmed; refused unless it looks like an address.
pub fn normalize_email(field: &str, email: &str) -> ApiResult<String> {
    let e = email.trim().to_lowercase();
    let ok = e.len() <= 254
        && e.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'))
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(e)
    } else {
        Err(ApiError::bad(
            field,
            format!("{email:?} is not an email address"),
        ))
    }
}

/// Creates a local user. With no password the account can only sign in through SSO.
pub async fn create(
    pool: &PgPool,
    email: &str,
    name: &str,
    password: Option<&str>,
    admin: bool,
) -> ApiResult<UserRow> {
    let email = normalize_email("email", email)?;
    let hash = match password {
        Some(p) => {
            passwords::check_new(p).map_err(|m| ApiError::bad("password", m))?;
            Some(passwords::hash(p)?)
        }
        None => None,
    };
    sqlx::query_as(&format!(
        "INSERT INTO users (id, email, name, password_hash, is_admin) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (email) DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(&email)
    .bind(name.trim())
    .bind(hash)
    .bind(admin)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| ApiError::Conflict(format!("a user with email {email} already exists")))
}

pub async fn set_password(pool: &PgPool, user: Uuid, password: &str) -> ApiResult<()> {
    passwords::check_new(password).map_err(|m| ApiError::bad("password", m))?;
    let hash = passwords::hash(password)?;
    let n = sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
        .bind(user)
        .bind(hash)
        .execute(pool)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(ApiError::NotFound("user".into()));
    }
    Ok(())
}

pub async fn by_email(pool: &PgPool, email: &str) -> ApiResult<Option<UserRow>> {
    let email = normalize_email("email", email)?;
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE email = $1"))
            .bind(email)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn get(pool: &PgPool, id: Uuid) -> ApiResult<UserRow> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| ApiError::NotFound("user".into()))
}

pub async fn list(pool: &PgPool) -> ApiResult<Vec<UserRow>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM users ORDER BY email"))
            .fetch_all(pool)
            .await?,
    )
}

/// A hash of a random password, checked when the email is unknown so that a wrong email takes
/// as long as a wrong password.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| passwords::hash(&passwords::generate()).unwrap_or_default());

/// The user whose email and password these are, if they are and the account is enabled.
pub async fn check_password(
    pool: &PgPool,
    email: &str,
    password: &str,
) -> ApiResult<Option<UserRow>> {
    let Ok(email) = normalize_email("email", email) else {
        return Ok(None);
    };
    let row: Option<(Uuid, Option<String>, bool)> = sqlx::query_as(
        "SELECT id, password_hash, disabled_at IS NOT NULL FROM users WHERE email = $1",
    )
    .bind(&email)
    .fetch_optional(pool)
    .await?;
    let (id, hash, disabled) = match row {
        Some((id, Some(hash), disabled)) => (id, hash, disabled),
        _ => {
            let (p, h) = (password.to_string(), DUMMY_HASH.clone());
            let _ = tokio::task::spawn_blocking(move || passwords::verify(&p, &h)).await;
            return Ok(None);
        }
    };
    let p = password.to_string();
    let ok = tokio::task::spawn_blocking(move || passwords::verify(&p, &hash))
        .await
        .unwrap_or(false);
    if !ok || disabled {
        return Ok(None);
    }
    sqlx::query("UPDATE users SET last_login_at = now() WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(Some(get(pool, id).await?))
}

/// Finds or creates the user of an SSO identity (by provider and subject, else by email, which
/// links an existing local account), refreshing its email, name and admin flag.
pub async fn upsert_sso(
    pool: &PgPool,
    provider: &str,
    subject: &str,
    email: &str,
    name: &str,
    admin: bool,
) -> ApiResult<UserRow> {
    let email = normalize_email("email", email)?;
    let mut tx = pool.begin().await?;
    let existing: Option<(Uuid,)> = sqlx::query_as(
        "SELECT id FROM users WHERE (sso_provider = $1 AND sso_subject = $2) OR email = $3 \
         ORDER BY (sso_provider = $1 AND sso_subject = $2) DESC NULLS LAST LIMIT 1 FOR UPDATE",
    )
    .bind(provider)
    .bind(subject)
    .bind(&email)
    .fetch_optional(&mut *tx)
    .await?;
    let id = match existing {
        Some((id,)) => {
            sqlx::query(
                "UPDATE users SET email = $2, name = CASE WHEN $3 = '' THEN name ELSE $3 END, \
                 sso_provider = $4, sso_subject = $5, is_admin = is_admin OR $6, last_login_at = now() \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(&email)
            .bind(name)
            .bind(provider)
            .bind(subject)
            .bind(admin)
            .execute(&mut *tx)
            .await?;
            id
        }
        None => {
            let id = Uuid::new_v4();
            sqlx::query(
                "INSERT INTO users (id, email, name, is_admin, sso_provider, sso_subject, last_login_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, now())",
            )
            .bind(id)
            .bind(&email)
            .bind(name)
            .bind(admin)
            .bind(provider)
            .bind(subject)
            .execute(&mut *tx)
            .await?;
            id
        }
    };
    tx.commit().await?;
    get(pool, id).await
}

/// Replaces the memberships that came from `provider`'s claim mapping with `grants`; memberships
/// set by hand are left alone (and win over mapped ones).
pub async fn sync_sso_memberships(
    pool: &PgPool,
    user: Uuid,
    provider: &str,
    grants: &[(Uuid, Role)],
) -> ApiResult<()> {
    let source = format!("sso:{provider}");
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND source = $2")
        .bind(user)
        .bind(&source)
        .execute(&mut *tx)
        .await?;
    for (project, role) in grants {
        sqlx::query(
            "INSERT INTO memberships (project_id, user_id, role, source) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (project_id, user_id) DO UPDATE SET role = EXCLUDED.role \
             WHERE memberships.source = EXCLUDED.source \
               AND array_position(ARRAY['viewer','editor','owner'], EXCLUDED.role) \
                 > array_position(ARRAY['viewer','editor','owner'], memberships.role)",
        )
        .bind(project)
        .bind(user)
        .bind(role.as_str())
        .bind(&source)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// What the first start of a hub on an empty database prints: the administrator it made.
pub struct Bootstrap {
    pub email: String,
    /// Set when the password was generated (it is shown once); `None` when it was given.
    pub generated_password: Option<String>,
}

/// On the very first start (no user at all), creates the instance administrator, with the
/// given password or a generated one. Serialised by an advisory lock so replicas agree.
pub async fn bootstrap_admin(
    pool: &PgPool,
    email: &str,
    password: Option<&str>,
) -> anyhow::Result<Option<Bootstrap>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(7710001)")
        .execute(&mut *tx)
        .await?;
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM users")
        .fetch_one(&mut *tx)
        .await?;
    if n > 0 {
        return Ok(None);
    }
    let email = normalize_email("admin email", email).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (password, generated) = match password {
        Some(p) => {
            passwords::check_new(p).map_err(|m| anyhow::anyhow!("FAULTLINE_ADMIN_PASSWORD {m}"))?;
            (p.to_string(), None)
        }
        None => {
            let p = passwords::generate();
            (p.clone(), Some(p))
        }
    };
    sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, is_admin) VALUES ($1, $2, 'Administrator', $3, true)",
    )
    .bind(Uuid::new_v4())
    .bind(&email)
    .bind(passwords::hash(&password)?)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(Bootstrap {
        email,
        generated_password: generated,
    }))
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MemberRow {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: String,
    pub source: String,
    pub created_at: DateTime<Utc>,
}

pub async fn members(pool: &PgPool, project: Uuid) -> ApiResult<Vec<MemberRow>> {
    Ok(sqlx::query_as(
        "SELECT u.id AS user_id, u.email, u.name, m.role, m.source, m.created_at \
         FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.project_id = $1 ORDER BY u.email",
    )
    .bind(project)
    .fetch_all(pool)
    .await?)
}

/// Gives `email` the `role` in `project` (a manual membership, which SSO mappings never touch).
/// The user must exist; SSO users exist after their first login.
pub async fn set_member(
    pool: &PgPool,
    project: Uuid,
    email: &str,
    role: Role,
) -> ApiResult<MemberRow> {
    let user = by_email(pool, email)
        .await?
        .ok_or_else(|| ApiError::bad("email", format!("no user with email {}", email.trim())))?;
    let mut tx = pool.begin().await?;
    let had = owners(&mut tx, project).await?;
    sqlx::query(
        "INSERT INTO memberships (project_id, user_id, role, source) VALUES ($1, $2, $3, 'manual') \
         ON CONFLICT (project_id, user_id) DO UPDATE SET role = EXCLUDED.role, source = 'manual'",
    )
    .bind(project)
    .bind(user.id)
    .bind(role.as_str())
    .execute(&mut *tx)
    .await?;
    keeps_an_owner(&mut tx, project, had).await?;
    tx.commit().await?;
    members(pool, project)
        .await?
        .into_iter()
        .find(|m| m.user_id == user.id)
        .ok_or_else(|| ApiError::NotFound("member".into()))
}

pub async fn remove_member(pool: &PgPool, project: Uuid, email: &str) -> ApiResult<()> {
    let email = normalize_email("email", email)?;
    let mut tx = pool.begin().await?;
    let had = owners(&mut tx, project).await?;
    let n = sqlx::query(
        "DELETE FROM memberships m USING users u WHERE m.user_id = u.id AND m.project_id = $1 AND u.email = $2",
    )
    .bind(project)
    .bind(&email)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(ApiError::NotFound("member".into()));
    }
    keeps_an_owner(&mut tx, project, had).await?;
    tx.commit().await?;
    Ok(())
}

/// The project's owners, with its row locked for the rest of the transaction (so two
/// concurrent demotions cannot both pass [`keeps_an_owner`]).
async fn owners(tx: &mut sqlx::PgConnection, project: Uuid) -> ApiResult<i64> {
    sqlx::query("SELECT 1 FROM projects WHERE id = $1 FOR UPDATE")
        .bind(project)
        .execute(&mut *tx)
        .await?;
    let (n,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM memberships WHERE project_id = $1 AND role = 'owner'")
            .bind(project)
            .fetch_one(&mut *tx)
            .await?;
    Ok(n)
}

/// Refuses a change that took a project's last owner away (the caller's transaction is then
/// dropped, undoing it). A project that never had an owner (managed by administrators) may
/// get members of any role.
async fn keeps_an_owner(tx: &mut sqlx::PgConnection, project: Uuid, had: i64) -> ApiResult<()> {
    if had > 0 && owners(tx, project).await? == 0 {
        return Err(ApiError::Conflict(
            "a project keeps at least one owner: make someone else owner first".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_or_refused_with_the_field() {
        assert_eq!(
            normalize_email("email", " Alice@Example.COM ").unwrap(),
            "alice@example.com"
        );
        for bad in ["", "alice", "@x", "a@", "a@b@c", "a b@c"] {
            let e = normalize_email("email", bad).unwrap_err().to_string();
            assert!(e.starts_with("email: "), "{e}");
        }
    }
}
