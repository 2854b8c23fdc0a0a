//! Halt-all, the emergency stop of a project: every unfinished run is aborted, every delegate
//! of the project is told to stop everything and revert every fault (`HaltAll` on its stream,
//! sent by whichever replica holds it, also when it reconnects later), and no run starts until
//! an owner lifts the halt. All of it lives in the `projects` row, so every replica agrees.
use crate::{
    error::{ApiError, ApiResult},
    notify,
};
use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct HaltRow {
    pub project: String,
    pub halted_at: Option<DateTime<Utc>>,
    pub halted_by: Option<String>,
    pub halt_reason: Option<String>,
}

/// What `halt` did.
pub struct Halted {
    pub row: HaltRow,
    /// Runs that were unfinished and are now aborted or aborting.
    pub aborted_runs: i64,
    /// Delegates of the project told to stop (connected or not: the others hear it on connect).
    pub delegates: i64,
}

/// Halts the project: one transaction marks it halted and aborts its unfinished runs, then every
/// delegate of the project is woken so its stream sends `HaltAll`. Halting a halted project
/// aborts whatever is unfinished again and keeps the first halt's time and author.
pub async fn halt(pool: &PgPool, project: Uuid, actor: &str, reason: &str) -> ApiResult<Halted> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::bad(
            "reason",
            "give a reason of 1 to 500 characters (it is shown to everyone and in the audit log)",
        ));
    }
    let mut tx = pool.begin().await?;
    let row = sqlx::query_as::<_, HaltRow>(
        "UPDATE projects SET halted_at = COALESCE(halted_at, now()), \
           halted_by = CASE WHEN halted_at IS NULL THEN $2 ELSE halted_by END, \
           halt_reason = CASE WHEN halted_at IS NULL THEN $3 ELSE halt_reason END, \
           halt_seq = halt_seq + 1 \
         WHERE id = $1 RETURNING name AS project, halted_at, halted_by, halt_reason",
    )
    .bind(project)
    .bind(actor)
    .bind(reason)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("project {project}")))?;
    let why = format!("halted by {actor}: {reason}");
    let runs: Vec<(Uuid,)> = sqlx::query_as(
        "UPDATE runs SET abort_requested_at = COALESCE(abort_requested_at, now()), \
           abort_reason = COALESCE(abort_reason, $2), \
           state = CASE WHEN state = 'PENDING' THEN 'ABORTED' ELSE 'ABORTING' END, \
           ended_at = CASE WHEN state = 'PENDING' THEN now() ELSE ended_at END, \
           verdict_reason = CASE WHEN state = 'PENDING' THEN 'aborted before a delegate took it (project halted)' ELSE verdict_reason END \
         WHERE project_id = $1 AND state IN ('PENDING', 'DISPATCHED', 'RUNNING', 'ABORTING') RETURNING id",
    )
    .bind(project)
    .bind(&why)
    .fetch_all(&mut *tx)
    .await?;
    for (run,) in &runs {
        notify::notify(&mut *tx, notify::EVENTS, *run).await?;
    }
    let delegates: Vec<(Uuid,)> = sqlx::query_as("SELECT id FROM delegates WHERE project_id = $1")
        .bind(project)
        .fetch_all(&mut *tx)
        .await?;
    for (d,) in &delegates {
        notify::notify(&mut *tx, notify::WORK, *d).await?;
    }
    tx.commit().await?;
    tracing::warn!(%project, actor, reason, runs = runs.len(), delegates = delegates.len(), "project halted");
    Ok(Halted {
        row,
        aborted_runs: runs.len() as i64,
        delegates: delegates.len() as i64,
    })
}

/// Lifts the halt: runs may start again. Lifting a project that is not halted is harmless.
pub async fn lift(pool: &PgPool, project: Uuid, actor: &str) -> ApiResult<HaltRow> {
    let row = sqlx::query_as::<_, HaltRow>(
        "UPDATE projects SET halted_at = NULL, halted_by = NULL, halt_reason = NULL \
         WHERE id = $1 RETURNING name AS project, halted_at, halted_by, halt_reason",
    )
    .bind(project)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("project {project}")))?;
    tracing::warn!(%project, actor, "project halt lifted");
    Ok(row)
}

pub async fn status(pool: &PgPool, project: Uuid) -> ApiResult<HaltRow> {
    sqlx::query_as::<_, HaltRow>(
        "SELECT name AS project, halted_at, halted_by, halt_reason FROM projects WHERE id = $1",
    )
    .bind(project)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("project {project}")))
}

/// Refuses while the project is halted. Takes a share lock on the project row, so a concurrent
/// halt waits for the caller's transaction (and then aborts the run it created) or wins first.
pub async fn ensure_running<'e>(exec: impl PgExecutor<'e>, project: Uuid) -> ApiResult<()> {
    let row: Option<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT halt_reason, halted_by FROM projects WHERE id = $1 AND halted_at IS NOT NULL FOR SHARE",
    )
    .bind(project)
    .fetch_optional(exec)
    .await?;
    match row {
        None => Ok(()),
        Some((reason, by)) => Err(ApiError::Halted(format!(
            "the project is halted by {}: {}; an owner lifts it with liftHalt",
            by.unwrap_or_default(),
            reason.unwrap_or_default()
        ))),
    }
}

/// The current halt of the delegate's project as (halt_seq, reason), if it is halted.
pub async fn for_delegate(pool: &PgPool, delegate: Uuid) -> ApiResult<Option<(i64, String)>> {
    Ok(sqlx::query_as(
        "SELECT p.halt_seq, COALESCE(p.halt_reason, '') FROM projects p JOIN delegates d ON d.project_id = p.id \
         WHERE d.id = $1 AND p.halted_at IS NOT NULL",
    )
    .bind(delegate)
    .fetch_optional(pool)
    .await?)
}
