//! Delegates: one-time registration tokens, registration, credentials, liveness and selection.
use crate::auth::{hash_secret, new_secret};
use crate::error::{ApiError, ApiResult};
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
}

const SELECT: &str = "SELECT id, project_id, name, labels, version, capabilities, connected_replica, last_heartbeat_at, \
    (connected_replica IS NOT NULL AND last_heartbeat_at > now() - make_interval(secs => $1)) AS connected FROM delegates";

/// Registration tokens are valid for a day and only once.
pub async fn create_token(pool: &PgPool, project: Uuid) -> ApiResult<String> {
    let token = new_secret("fl_reg");
    sqlx::query("INSERT INTO delegate_tokens (id, project_id, hash, expires_at) VALUES ($1, $2, $3, now() + interval '24 hours')")
        .bind(Uuid::new_v4())
        .bind(project)
        .bind(hash_secret(&token))
        .execute(pool)
        .await?;
    Ok(token)
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
        "UPDATE delegate_tokens t SET used_at = now() FROM projects p \
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
pub async fn authenticate(pool: &PgPool, id: Uuid, credential: &str) -> ApiResult<Uuid> {
    let row: Option<(Uuid,)> = sqlx::query_as("SELECT project_id FROM delegates WHERE id = $1 AND credential_hash = $2 AND revoked_at IS NULL")
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

/// Refreshes liveness. `false` when this stream is no longer the delegate's live one (a newer
/// stream took over, or the delegate was re-registered or revoked): the caller ends it.
pub async fn heartbeat(pool: &PgPool, id: Uuid, session: Uuid) -> ApiResult<bool> {
    let r = sqlx::query(
        "UPDATE delegates SET last_heartbeat_at = now() WHERE id = $1 AND session_id = $2 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(session)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
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

pub async fn list(
    pool: &PgPool,
    scope: Option<Uuid>,
    fresh_secs: f64,
) -> ApiResult<Vec<DelegateRow>> {
    Ok(sqlx::query_as::<_, DelegateRow>(&format!(
        "{SELECT} WHERE revoked_at IS NULL AND ($2::uuid IS NULL OR project_id = $2) ORDER BY name"
    ))
    .bind(fresh_secs)
    .bind(scope)
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
    let all = list(pool, Some(project), fresh_secs).await?;
    if !selector.contains('=') {
        return all
            .into_iter()
            .find(|d| d.name == selector)
            .ok_or_else(|| ApiError::NotFound(format!("delegate {selector:?} in this project")));
    }
    let wanted = parse_selector(selector)?;
    select_by_labels(all, &wanted).ok_or_else(|| {
        ApiError::NotFound(format!("delegate matching {selector:?} in this project"))
    })
}

pub fn select_by_labels(
    all: Vec<DelegateRow>,
    wanted: &BTreeMap<String, String>,
) -> Option<DelegateRow> {
    let mut matching: Vec<DelegateRow> = all
        .into_iter()
        .filter(|d| wanted.iter().all(|(k, v)| d.labels.0.get(k) == Some(v)))
        .collect();
    matching.sort_by_key(|d| (!d.connected, std::cmp::Reverse(d.last_heartbeat_at)));
    matching.into_iter().next()
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

    fn row(
        name: &str,
        labels: &[(&str, &str)],
        connected: bool,
        beat_secs_ago: i64,
    ) -> DelegateRow {
        DelegateRow {
            id: Uuid::new_v4(),
            project_id: Uuid::nil(),
            name: name.into(),
            labels: Json(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            version: "0.1.0".into(),
            capabilities: Json(serde_json::json!({})),
            connected_replica: None,
            last_heartbeat_at: Some(Utc::now() - chrono::Duration::seconds(beat_secs_ago)),
            connected,
        }
    }

    #[test]
    fn selectors_parse_and_name_the_bad_part() {
        let s = parse_selector("env=prod, cluster = eu-1").unwrap();
        assert_eq!(s.get("cluster").map(String::as_str), Some("eu-1"));
        let e = parse_selector("env=prod,oops").unwrap_err().to_string();
        assert!(e.contains("\"oops\"") && e.starts_with("delegate:"), "{e}");
        assert!(parse_selector("=x").is_err());
    }

    #[test]
    fn selection_prefers_connected_then_freshest() {
        let want = parse_selector("env=prod").unwrap();
        let all = vec![
            row("stale", &[("env", "prod")], false, 1),
            row("old", &[("env", "prod")], true, 30),
            row("new", &[("env", "prod")], true, 2),
            row("other", &[("env", "dev")], true, 0),
        ];
        assert_eq!(select_by_labels(all.clone(), &want).unwrap().name, "new");
        assert!(select_by_labels(all, &parse_selector("env=qa").unwrap()).is_none());
    }
}
