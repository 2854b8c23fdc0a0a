//! Resolves runs that would otherwise hang: no run stays PENDING, DISPATCHED, RUNNING or ABORTING
//! forever. Every replica runs it; each rule is one idempotent conditional UPDATE, so replicas
//! never conflict. Rules that end a run the delegate may still be executing also set
//! `abort_requested_at`, so the delegate's stream forwards an `AbortRun` (see `runs::aborting`).
use crate::notify;
use faultline_experiment::Dur;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub pending: Dur,
    pub dead_man: Dur,
    pub abort: Dur,
    /// A DISPATCHED run the delegate has not accepted after this long is queued again.
    pub redispatch: Dur,
    /// Grace past a run's planned duration before it is declared overdue.
    pub overdue_grace: Dur,
}

/// One pass over all rules; returns how many runs were resolved.
pub async fn sweep(pool: &PgPool, t: &Timeouts) -> sqlx::Result<usize> {
    let secs = |d: Dur| d.0.as_secs_f64();
    let rules: [(&str, f64); 4] = [
        (
            "UPDATE runs SET state = 'ERROR', ended_at = now(), verdict_reason = \
               format('no delegate took the run within %s s (is the delegate connected?)', $1::float8::text) \
             WHERE state = 'PENDING' AND COALESCE(dispatched_at, created_at) < now() - make_interval(secs => $1) RETURNING id, delegate_id, (SELECT name FROM projects WHERE projects.id = runs.project_id)",
            secs(t.pending),
        ),
        (
            "UPDATE runs r SET state = 'ERROR', ended_at = now(), abort_requested_at = COALESCE(r.abort_requested_at, now()), verdict_reason = \
               format('delegate lost: no heartbeat for %s s; it reverts its faults on its own dead-man timeout', $1::float8::text) \
             FROM delegates d WHERE d.id = r.delegate_id AND r.state IN ('DISPATCHED', 'RUNNING', 'ABORTING') \
               AND COALESCE(d.last_heartbeat_at, r.created_at) < now() - make_interval(secs => $1) RETURNING r.id, r.delegate_id, (SELECT name FROM projects WHERE projects.id = r.project_id)",
            secs(t.dead_man),
        ),
        (
            "UPDATE runs SET state = 'ERROR', ended_at = now(), verdict_reason = \
               format('abort not confirmed by the delegate within %s s', $1::float8::text) \
             WHERE state = 'ABORTING' AND abort_requested_at < now() - make_interval(secs => $1) RETURNING id, delegate_id, (SELECT name FROM projects WHERE projects.id = runs.project_id)",
            secs(t.abort),
        ),
        (
            "UPDATE runs SET state = 'ERROR', ended_at = now(), abort_requested_at = COALESCE(abort_requested_at, now()), \
               verdict_reason = 'run overdue: it took far longer than planned' \
             WHERE state = 'RUNNING' AND started_at < now() - make_interval(secs => planned_ms / 1000.0 + $1) RETURNING id, delegate_id, (SELECT name FROM projects WHERE projects.id = runs.project_id)",
            secs(t.overdue_grace),
        ),
    ];
    let mut n = 0;
    for (sql, arg) in rules {
        let ids: Vec<(Uuid, Option<Uuid>, String)> =
            sqlx::query_as(sql).bind(arg).fetch_all(pool).await?;
        for (id, delegate, project) in &ids {
            let delegate = delegate.map(|d| d.to_string()).unwrap_or_default();
            tracing::warn!(run_id = %id, %delegate, %project, "run resolved by the reaper");
            notify::notify(pool, notify::EVENTS, *id).await?;
        }
        n += ids.len();
    }
    let requeued: Vec<(Uuid,)> = sqlx::query_as(
        "UPDATE runs SET state = 'PENDING' WHERE state = 'DISPATCHED' \
           AND dispatched_at < now() - make_interval(secs => $1) RETURNING delegate_id",
    )
    .bind(secs(t.redispatch))
    .fetch_all(pool)
    .await?;
    for (d,) in requeued {
        notify::notify(pool, notify::WORK, d).await?;
    }
    Ok(n)
}

pub async fn run(
    pool: PgPool,
    t: Timeouts,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = sweep(&pool, &t).await {
                    tracing::warn!(error = %e, "reaper sweep failed");
                }
            }
            _ = stop.changed() => return,
        }
    }
}
