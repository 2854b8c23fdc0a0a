//! The audit log: who did what to which object, from where, and how it ended. Written for every
//! mutation, every login (success and failure), CI token use, and permission change; a failure
//! to write it is logged, never shown to the caller. The table is append-only: a trigger refuses
//! UPDATE, DELETE and TRUNCATE (migration 0004).
use crate::{
    error::{ApiError, ApiResult},
    identity::Principal,
};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::net::IpAddr;
use uuid::Uuid;

/// One entry to write.
pub struct Entry<'a> {
    pub actor: String,
    pub project: Option<Uuid>,
    pub action: &'a str,
    pub target: String,
    pub address: Option<IpAddr>,
    pub outcome: String,
    pub detail: serde_json::Value,
}

/// `ok`, or `error:<CODE>` of the error.
pub fn outcome<T>(res: &ApiResult<T>) -> String {
    match res {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("error:{}", e.code()),
    }
}

/// [`record`] with a detail: what was asked and, when refused, why (e.g. the fields a
/// delegate's allow-list refused in a run a user tried to start).
pub async fn record_detail<T>(
    pool: &PgPool,
    who: &Principal,
    project: Option<Uuid>,
    action: &str,
    target: String,
    res: &ApiResult<T>,
    mut detail: serde_json::Map<String, serde_json::Value>,
) {
    // Internal errors are logged, never shown, and the audit log is shown to owners.
    match res {
        Err(ApiError::Internal(_)) | Ok(_) => {}
        Err(e) => {
            detail.insert("error".into(), e.to_string().into());
        }
    }
    write(
        pool,
        Entry {
            actor: who.actor(),
            project,
            action,
            target,
            address: who.address,
            outcome: outcome(res),
            detail: serde_json::Value::Object(detail),
        },
    )
    .await;
}

/// Records what `who` did, with the result of doing it.
pub async fn record<T>(
    pool: &PgPool,
    who: &Principal,
    project: Option<Uuid>,
    action: &str,
    target: String,
    res: &ApiResult<T>,
) {
    write(
        pool,
        Entry {
            actor: who.actor(),
            project,
            action,
            target,
            address: who.address,
            outcome: outcome(res),
            detail: serde_json::Value::Object(Default::default()),
        },
    )
    .await;
}

pub async fn write(pool: &PgPool, e: Entry<'_>) {
    let r = sqlx::query(
        "INSERT INTO audit_log (actor, project_id, action, target, address, outcome, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&e.actor)
    .bind(e.project)
    .bind(e.action)
    .bind(&e.target)
    .bind(e.address.map(|a| a.to_string()))
    .bind(&e.outcome)
    .bind(&e.detail)
    .execute(pool)
    .await;
    if let Err(err) = r {
        tracing::warn!(error = %err, action = e.action, "failed to write audit log");
    }
}

/// Failed logins from `address` in the last minute (the brute-force limit counts these).
pub async fn recent_login_failures(pool: &PgPool, address: Option<IpAddr>) -> ApiResult<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM audit_log WHERE action = 'login' AND address IS NOT DISTINCT FROM $1 \
         AND outcome <> 'ok' AND at > now() - interval '1 minute'",
    )
    .bind(address.map(|a| a.to_string()))
    .fetch_one(pool)
    .await?;
    Ok(n)
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub project_id: Option<Uuid>,
    /// The project's name, if it still exists.
    pub project: Option<String>,
    pub action: String,
    pub target: String,
    pub address: Option<String>,
    pub outcome: String,
    pub detail: serde_json::Value,
}

/// What to look for; every field narrows.
#[derive(Default, Debug)]
pub struct Filter {
    /// `None`: every project and entries of none (instance administrators only).
    pub project: Option<Uuid>,
    pub actor: Option<String>,
    /// An exact action, or a prefix ending in `.` (`run.` matches `run.start` and `run.abort`).
    pub action: Option<String>,
    /// `ok`, or `error` for every failure.
    pub outcome: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Entries older than this id (the previous page's cursor).
    pub before: Option<i64>,
}

/// Newest first, at most `limit` (1..=500).
pub async fn query(pool: &PgPool, f: &Filter, limit: i64) -> ApiResult<Vec<AuditRow>> {
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad("first", "between 1 and 500"));
    }
    let action_prefix = f.action.as_deref().filter(|a| a.ends_with('.'));
    let action_exact = f.action.as_deref().filter(|a| !a.ends_with('.'));
    Ok(sqlx::query_as(
        "SELECT a.id, a.at, a.actor, a.project_id, p.name AS project, a.action, a.target, \
                a.address, a.outcome, a.detail \
         FROM audit_log a LEFT JOIN projects p ON p.id = a.project_id \
         WHERE ($1::uuid IS NULL OR a.project_id = $1) \
           AND ($2::text IS NULL OR actor = $2) \
           AND ($3::text IS NULL OR action = $3) \
           AND ($4::text IS NULL OR starts_with(action, $4)) \
           AND ($5::text IS NULL OR ($5 = 'ok' AND outcome = 'ok') OR ($5 = 'error' AND outcome <> 'ok')) \
           AND ($6::timestamptz IS NULL OR at >= $6) \
           AND ($7::timestamptz IS NULL OR at < $7) \
           AND ($8::bigint IS NULL OR a.id < $8) \
         ORDER BY a.id DESC LIMIT $9",
    )
    .bind(f.project)
    .bind(&f.actor)
    .bind(action_exact)
    .bind(action_prefix)
    .bind(&f.outcome)
    .bind(f.since)
    .bind(f.until)
    .bind(f.before)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
