//! The audit log: who did what to which object, and how it ended. Written for every mutation;
//! a failure to write it is logged, never shown to the caller.
use crate::{auth::Principal, error::ApiResult};
use sqlx::PgPool;
use uuid::Uuid;

pub async fn record<T>(
    pool: &PgPool,
    who: &Principal,
    project: Option<Uuid>,
    action: &str,
    target: String,
    res: &ApiResult<T>,
) {
    let outcome = match res {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("error:{}", e.code()),
    };
    let r = sqlx::query("INSERT INTO audit_log (actor, project_id, action, target, outcome) VALUES ($1, $2, $3, $4, $5)")
        .bind(who.actor())
        .bind(project)
        .bind(action)
        .bind(target)
        .bind(outcome)
        .execute(pool)
        .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, action, "failed to write audit log");
    }
}
