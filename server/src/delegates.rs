//! Delegates: one-time registration tokens, registration, credentials, liveness and selection.
use crate::error::{ApiError, ApiResult};
use crate::identity::tokens::{hash_secret, new_secret};
use chrono::{DateTime, Utc};
use sqlx::{types::Json, PgPool};
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DelegateRow {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub labels: Json<BTreeMap<String, String>>,
    pub version: String,
    pub capabilities: Json<serde_json::Value>,
    pub connected_replica: Option<String>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    /// Stream held somewhere and heartbeats fresh (within three intervals).
    pub connected: bool,
    /// Its runs dispatched, running or aborting now (from the `runs_pending` index).
    pub active_runs: i64,
}

/// What a delegate advertised (`{"faults": [...], "probes": [...], "allow": [...]}`).
#[derive(Default, serde::Deserialize)]
struct Capabilities {
    #[serde(default)]
    faults: Vec<String>,
    #[serde(default)]
    probes: Vec<String>,
    /// Its operator's allow-list entries; none means no program and no environment variable.
    #[serde(default)]
    allow: Vec<String>,
}

impl DelegateRow {
    fn advertised(&self) -> Capabilities {
        serde_json::from_value(self.capabilities.0.clone()).unwrap_or_default()
    }

    /// The operator's allow-list entries, as advertised.
    pub fn allow(&self) -> Vec<String> {
        self.advertised().allow
    }

    /// Why this delegate would refuse `spec`: kinds it does not support, and whatever its
    /// operator's allow-list does not allow (the delegate checks the same, and more once it
    /// resolves names, programs and processes). Empty when it would take it.
    pub fn refusals(
        &self,
        spec: &faultline_experiment::Experiment,
    ) -> Vec<faultline_experiment::SpecError> {
        let caps = self.advertised();
        let mut why = spec.check_capabilities(&caps.faults, &caps.probes, &self.name);
        let entries: Vec<faultline_experiment::policy::Entry> = caps
            .allow
            .iter()
            .filter_map(|e| match e.parse() {
                Ok(entry) => Some(entry),
                // A newer delegate's kind of entry: skipped here, the delegate decides on it.
                Err(error) => {
                    tracing::warn!(delegate = %self.name, %error, "unreadable allow-list entry");
                    None
                }
            })
            .collect();
        let policy = faultline_experiment::policy::Policy::from_entries(&entries);
        let who = format!("delegate {}", self.name);
        why.extend(policy.check(spec, faultline_experiment::policy::Who(&who)));
        why
    }
}

const SELECT: &str = "SELECT id, project_id, name, labels, version, capabilities, connected_replica, last_heartbeat_at, \
    (connected_replica IS NOT NULL AND last_heartbeat_at > now() - make_interval(secs => $1)) AS connected, \
    (SELECT count(*) FROM runs r WHERE r.delegate_id = delegates.id \
       AND r.state IN ('DISPATCHED', 'RUNNING', 'ABORTING')) AS active_runs \
    FROM delegates";

/// How many delegates one page of [`list`] holds at most.
pub const MAX_PAGE: i64 = 1000;

/// A page of [`list`]: at most `first` delegates whose name (then id) sorts after `after`, with
/// `search` in their name (case-insensitive) when given.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub first: i64,
    pub after: Option<(String, Uuid)>,
    pub search: Option<String>,
}

/// The cursor of `d` in a page: `<id>:<name>` (ids have no `:`).
pub fn cursor(d: &DelegateRow) -> String {
    format!("{}:{}", d.id, d.name)
}

/// Reads a cursor made by [`cursor`]; anything else is an error naming `field`.
pub fn parse_cursor(field: &str, s: &str) -> ApiResult<(String, Uuid)> {
    s.split_once(':')
        .and_then(|(id, name)| Some((name.to_string(), id.parse().ok()?)))
        .ok_or_else(|| ApiError::bad(field, "not a cursor from a previous page (`<id>:<name>`)"))
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TokenRow {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub reusable: bool,
    pub uses: i32,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const TOKEN_COLUMNS: &str =
    "id, project_id, name, reusable, uses, created_by, created_at, expires_at, used_at, revoked_at";

/// Longest a registration token may live.
pub const MAX_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(366 * 86400);

/// A registration token for `project`: one-time (spent by the first registration) or reusable
/// until it expires; valid for `ttl`. Returns the row and the secret, shown only now.
pub async fn create_token(
    pool: &PgPool,
    project: Uuid,
    name: &str,
    reusable: bool,
    ttl: std::time::Duration,
    created_by: &str,
) -> ApiResult<(TokenRow, String)> {
    if ttl.is_zero() || ttl > MAX_TOKEN_TTL {
        return Err(ApiError::bad("expiresIn", "between 1s and 366d"));
    }
    if name.len() > 100 {
        return Err(ApiError::bad("name", "at most 100 characters"));
    }
    let token = new_secret("fl_reg");
    let row = sqlx::query_as(&format!(
        "INSERT INTO delegate_tokens (id, project_id, hash, name, reusable, expires_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6), $7) RETURNING {TOKEN_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(project)
    .bind(hash_secret(&token))
    .bind(name.trim())
    .bind(reusable)
    .bind(ttl.as_secs_f64())
    .bind(created_by)
    .fetch_one(pool)
    .await?;
    Ok((row, token))
}

pub async fn tokens(pool: &PgPool, project: Uuid) -> ApiResult<Vec<TokenRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM delegate_tokens WHERE project_id = $1 ORDER BY created_at DESC"
    ))
    .bind(project)
    .fetch_all(pool)
    .await?)
}

pub async fn token(pool: &PgPool, id: Uuid) -> ApiResult<TokenRow> {
    sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM delegate_tokens WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| ApiError::NotFound("delegate token".into()))
}

/// Revokes a registration token (delegates it registered keep their credentials). Idempotent.
pub async fn revoke_token(pool: &PgPool, id: Uuid) -> ApiResult<TokenRow> {
    sqlx::query(
        "UPDATE delegate_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .execute(pool)
    .await?;
    token(pool, id).await
}

pub async fn is_revoked(pool: &PgPool, id: Uuid) -> ApiResult<bool> {
    let row: Option<(bool,)> =
        sqlx::query_as("SELECT revoked_at IS NOT NULL FROM delegates WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(row.is_none_or(|(r,)| r))
}

/// Revokes a delegate: its credential stops working and the replica holding its stream closes
/// it at once (told through NOTIFY). Its unfinished runs end like those of a lost delegate.
pub async fn revoke(pool: &PgPool, id: Uuid) -> ApiResult<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE delegates SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    crate::notify::notify(&mut *tx, crate::notify::WORK, id).await?;
    tx.commit().await?;
    Ok(())
}

pub struct Registration {
    pub delegate_id: Uuid,
    pub credential: String,
    pub project: String,
}

/// Spends a registration token. Re-registering an existing name in the project rotates its
/// credential (the old one stops working).
pub async fn register(
    pool: &PgPool,
    token: &str,
    name: &str,
    labels: &BTreeMap<String, String>,
    version: &str,
    caps: &serde_json::Value,
) -> ApiResult<Registration> {
    validate_name(name)?;
    let mut tx = pool.begin().await?;
    let row: Option<(Uuid, Uuid, String)> = sqlx::query_as(
        "UPDATE delegate_tokens t SET used_at = now(), uses = t.uses + 1 FROM projects p \
         WHERE t.hash = $1 AND p.id = t.project_id AND t.revoked_at IS NULL \
           AND (t.expires_at IS NULL OR t.expires_at > now()) AND (t.used_at IS NULL OR t.reusable) \
         RETURNING t.id, t.project_id, p.name",
    )
    .bind(hash_secret(token))
    .fetch_optional(&mut *tx)
    .await?;
    let (_, project_id, project) = row.ok_or_else(|| {
        ApiError::Unauthenticated("registration token is invalid, expired or already used".into())
    })?;
    let credential = new_secret("fl_dlg");
    // Re-registering a name rotates its credential (the old stream ends at its next heartbeat);
    // a revoked delegate stays revoked.
    let (delegate_id,): (Uuid,) = sqlx::query_as(
        "INSERT INTO delegates (id, project_id, name, labels, version, capabilities, credential_hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (project_id, name) DO UPDATE SET labels = EXCLUDED.labels, version = EXCLUDED.version, \
           capabilities = EXCLUDED.capabilities, credential_hash = EXCLUDED.credential_hash, session_id = NULL \
         WHERE delegates.revoked_at IS NULL RETURNING id",
    )
    .bind(Uuid::new_v4())
    .bind(project_id)
    .bind(name)
    .bind(Json(labels))
    .bind(version)
    .bind(Json(caps))
    .bind(hash_secret(&credential))
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::Forbidden(format!("delegate {name:?} was revoked; register under another name")))?;
    tx.commit().await?;
    Ok(Registration {
        delegate_id,
        credential,
        project,
    })
}

fn validate_name(name: &str) -> ApiResult<()> {
    if name.is_empty()
        || name.len() > 63
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(ApiError::bad(
            "name",
            "must be 1-63 characters of letters, digits, '-', '_' or '.'",
        ));
    }
    Ok(())
}

/// Checks a delegate's credential when its stream opens.
/// Checks a delegate's credential; returns the name of its project.
pub async fn authenticate(pool: &PgPool, id: Uuid, credential: &str) -> ApiResult<String> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT p.name FROM delegates d JOIN projects p ON p.id = d.project_id \
         WHERE d.id = $1 AND d.credential_hash = $2 AND d.revoked_at IS NULL",
    )
    .bind(id)
    .bind(hash_secret(credential))
    .fetch_optional(pool)
    .await?;
    row.map(|r| r.0)
        .ok_or_else(|| ApiError::Unauthenticated("unknown delegate or bad credential".into()))
}

/// Records a new stream as the delegate's only live one; an older stream notices on its next
/// heartbeat (see [`heartbeat`]) and ends.
pub async fn mark_connected(
    pool: &PgPool,
    id: Uuid,
    session: Uuid,
    replica: &str,
    labels: &BTreeMap<String, String>,
    version: &str,
    caps: &serde_json::Value,
) -> ApiResult<()> {
    sqlx::query(
        "UPDATE delegates SET connected_replica = $2, last_heartbeat_at = now(), labels = $3, version = $4, \
           capabilities = $5, session_id = $6 WHERE id = $1",
    )
    .bind(id)
    .bind(replica)
    .bind(Json(labels))
    .bind(version)
    .bind(Json(caps))
    .bind(session)
    .execute(pool)
    .await?;
    Ok(())
}

/// Clears the stream only if no newer one has taken over.
pub async fn mark_disconnected(pool: &PgPool, id: Uuid, session: Uuid) -> ApiResult<()> {
    sqlx::query(
        "UPDATE delegates SET connected_replica = NULL, session_id = NULL WHERE id = $1 AND session_id = $2",
    )
    .bind(id)
    .bind(session)
    .execute(pool)
    .await?;
    Ok(())
}

/// Delegates of the `scope` projects (`None`: every project), by name, one [`Page`] at a time
/// (keyset paging on the `(project_id, name)` key, so a page costs the same at any depth).
pub async fn list(
    pool: &PgPool,
    scope: Option<&[Uuid]>,
    fresh_secs: f64,
    page: &Page,
) -> ApiResult<Vec<DelegateRow>> {
    // Only the filters given are in the statement, so each shape keeps a plan that uses the
    // `(project_id, name)` index (see runs::list).
    let (head, tail) = SELECT
        .split_once("$1")
        .expect("SELECT takes the freshness as $1");
    let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(head);
    q.push_bind(fresh_secs)
        .push(tail)
        .push(" WHERE revoked_at IS NULL");
    if let Some(scope) = scope {
        q.push(" AND project_id = ANY(").push_bind(scope).push(")");
    }
    if let Some((name, id)) = &page.after {
        q.push(" AND (name, id) > (")
            .push_bind(name)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    if let Some(search) = page
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let pattern = format!(
            "%{}%",
            search
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        q.push(" AND name ILIKE ").push_bind(pattern);
    }
    q.push(" ORDER BY name, id LIMIT ")
        .push_bind(page.first.max(1));
    Ok(q.build_query_as::<DelegateRow>().fetch_all(pool).await?)
}

/// How many delegates the `scope` projects have (not revoked), and how many are connected.
pub async fn summary(
    pool: &PgPool,
    scope: Option<&[Uuid]>,
    fresh_secs: f64,
) -> ApiResult<(i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE connected_replica IS NOT NULL \
                AND last_heartbeat_at > now() - make_interval(secs => $1)) \
         FROM delegates WHERE revoked_at IS NULL AND ($2::uuid[] IS NULL OR project_id = ANY($2))",
    )
    .bind(fresh_secs)
    .bind(scope)
    .fetch_one(pool)
    .await?)
}

/// The project's delegates whose labels include every `wanted` label, connected ones first,
/// then the most recently seen; at most `limit`.
pub async fn with_labels(
    pool: &PgPool,
    project: Uuid,
    wanted: &BTreeMap<String, String>,
    fresh_secs: f64,
    limit: i64,
) -> ApiResult<Vec<DelegateRow>> {
    Ok(sqlx::query_as::<_, DelegateRow>(&format!(
        "{SELECT} WHERE revoked_at IS NULL AND project_id = $2 AND labels @> $3 \
         ORDER BY connected DESC, last_heartbeat_at DESC NULLS LAST, name LIMIT $4"
    ))
    .bind(fresh_secs)
    .bind(project)
    .bind(Json(wanted))
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

pub async fn get(pool: &PgPool, id: Uuid, fresh_secs: f64) -> ApiResult<DelegateRow> {
    sqlx::query_as::<_, DelegateRow>(&format!("{SELECT} WHERE id = $2"))
        .bind(fresh_secs)
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("delegate {id}")))
}

/// A delegate by exact name, or by a label selector `k=v[,k=v]` (connected ones first, then the
/// most recently seen). A selector that matches nothing is an error naming the selector.
pub async fn select(
    pool: &PgPool,
    project: Uuid,
    selector: &str,
    fresh_secs: f64,
) -> ApiResult<DelegateRow> {
    if !selector.contains('=') {
        return sqlx::query_as::<_, DelegateRow>(&format!(
            "{SELECT} WHERE revoked_at IS NULL AND project_id = $2 AND name = $3"
        ))
        .bind(fresh_secs)
        .bind(project)
        .bind(selector)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("delegate {selector:?} in this project")));
    }
    let wanted = parse_selector(selector)?;
    with_labels(pool, project, &wanted, fresh_secs, 1)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            ApiError::NotFound(format!("delegate matching {selector:?} in this project"))
        })
}

pub fn parse_selector(s: &str) -> ApiResult<BTreeMap<String, String>> {
    s.split(',')
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => Err(ApiError::bad(
                "delegate",
                format!("{kv:?} is not a k=v label selector"),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_and_name_the_bad_part() {
        let s = parse_selector("env=prod, cluster = eu-1").unwrap();
        assert_eq!(s.get("cluster").map(String::as_str), Some("eu-1"));
        let e = parse_selector("env=prod,oops").unwrap_err().to_string();
        assert!(e.contains("\"oops\"") && e.starts_with("delegate:"), "{e}");
        assert!(parse_selector("=x").is_err());
    }
}
