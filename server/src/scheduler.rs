//! Fires due schedules. Every replica runs this loop; Postgres decides who fires what: each
//! due schedule is taken with `FOR UPDATE SKIP LOCKED`, and its fire record, the run it
//! starts and its next fire time commit in one transaction. A replica that dies mid-fire rolls
//! back and another one fires it, so every fire time happens exactly once.
//!
//! Policy for fire times that passed with no hub to fire them (docs/schedules.md): when a
//! schedule is found with several fire times past, only the latest is fired, and only if it is
//! less than `catch_up` late; the others (and the latest too when older than that) are recorded
//! as one `missed` fire with their count.
use crate::{
    error::ApiResult,
    runs::{self, StartRequest},
    schedules::{self, Concurrency, ScheduleRow},
};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use std::{sync::Arc, time::Duration};
use tokio::sync::{watch, Notify};
use uuid::Uuid;

/// At most this many past fire times are walked when a schedule is found late (a per-second
/// schedule after a day of downtime): beyond it the count says "at least".
const MAX_WALK: usize = 100_000;
/// Longest sleep between looks at the table (queued fires, schedules changed while a
/// notification was lost).
const MAX_SLEEP: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct Settings {
    /// How late a fire may still start (after all hubs were down).
    pub catch_up: Duration,
    /// A delegate counts as connected while its heartbeats are younger than this.
    pub fresh_secs: f64,
}

/// What one fire did, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Started(Uuid),
    /// The run could not start; `run` is the ERROR run recording why.
    Failed {
        reason: String,
        run: Uuid,
    },
    Skipped(String),
    Queued,
}

fn actor(s: &ScheduleRow) -> String {
    format!("schedule:{}", s.name)
}

/// Loops until `stop`: sleeps until the earliest due fire (at most `MAX_SLEEP`, or until a
/// schedule changes), then fires everything due and starts queued fires whose run ended.
pub async fn run(pool: PgPool, cfg: Settings, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    loop {
        let mut progressed = false;
        match tick(&pool, &cfg).await {
            Ok(n) => progressed = n > 0,
            Err(e) => tracing::warn!(error = %e, "schedule tick failed"),
        }
        let sleep = match until_next(&pool).await {
            Ok(Some(d)) => d.min(MAX_SLEEP),
            Ok(None) => MAX_SLEEP,
            Err(e) => {
                tracing::warn!(error = %e, "reading the next fire time failed");
                MAX_SLEEP
            }
        };
        // A due schedule another replica holds locked shows as due until it commits: look
        // again shortly rather than spin.
        let sleep = if sleep.is_zero() && !progressed {
            Duration::from_millis(20)
        } else {
            sleep
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = wake.notified() => {}
            _ = stop.changed() => return,
        }
    }
}

/// Time until the earliest enabled schedule is due, by the database's clock.
async fn until_next(pool: &PgPool) -> sqlx::Result<Option<Duration>> {
    let ms: Option<(Option<f64>,)> = sqlx::query_as(
        "SELECT EXTRACT(EPOCH FROM (min(next_fire_at) - clock_timestamp()))::float8 * 1000 \
         FROM schedules WHERE enabled",
    )
    .fetch_optional(pool)
    .await?;
    Ok(ms
        .and_then(|r| r.0)
        .map(|ms| Duration::from_millis(ms.max(0.0) as u64)))
}

/// Fires every due schedule and every queued fire that may start; returns how many it handled.
pub async fn tick(pool: &PgPool, cfg: &Settings) -> ApiResult<usize> {
    // Waiting fires first: a due fire of the same schedule must not overtake one.
    let mut n = 0;
    while start_next_queued(pool, cfg).await? {
        n += 1;
    }
    while fire_next(pool, cfg).await? {
        n += 1;
    }
    Ok(n)
}

/// Takes one due schedule nobody else holds and fires it, in one transaction.
async fn fire_next(pool: &PgPool, cfg: &Settings) -> ApiResult<bool> {
    let mut tx = pool.begin().await?;
    let Some(s) = sqlx::query_as::<_, ScheduleRow>(&format!(
        "SELECT {} FROM schedules WHERE enabled AND next_fire_at <= clock_timestamp() \
         ORDER BY next_fire_at LIMIT 1 FOR UPDATE SKIP LOCKED",
        schedules::COLUMNS
    ))
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(false);
    };
    let now: (DateTime<Utc>,) = sqlx::query_as("SELECT clock_timestamp()")
        .fetch_one(&mut *tx)
        .await?;
    let now = now.0;
    let first = s.next_due_at.unwrap_or(now);
    let clock = match s.clock() {
        Ok(c) => c,
        Err(e) => {
            // Stored expressions passed the same check; a zone the tz database dropped since
            // must not block every other schedule: record why and pause this one.
            let why = format!("the schedule was paused: {e}");
            record(&mut tx, s.id, first, "failed", Some(&why), None).await?;
            sqlx::query("UPDATE schedules SET enabled = false, next_due_at = NULL, next_fire_at = NULL WHERE id = $1")
                .bind(s.id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::warn!(schedule = %s.id, name = %s.name, error = %e, "schedule paused: cannot be read");
            return Ok(true);
        }
    };
    // Every fire time that has passed: `first`, then the clock's, up to now.
    let mut past = vec![first];
    let mut walked_all = true;
    while let Some(d) = clock.next_after(*past.last().unwrap()) {
        if d > now {
            break;
        }
        if past.len() >= MAX_WALK {
            walked_all = false;
            break;
        }
        past.push(d);
    }
    let latest = *past.last().unwrap();
    let late = if past.len() == 1 {
        now - s.next_fire_at.unwrap_or(first)
    } else {
        now - latest
    };
    let fire_latest = late.to_std().unwrap_or_default() <= cfg.catch_up;
    let missed = if fire_latest {
        &past[..past.len() - 1]
    } else {
        &past[..]
    };
    if let (Some(a), Some(b)) = (missed.first(), missed.last()) {
        let count = missed.len();
        let reason = format!(
            "{}{count} fire time{} from {a} to {b} passed with no hub running to fire {} (fires later than {}s are not made up)",
            if walked_all { "" } else { "at least " },
            if count == 1 { "" } else { "s" },
            if count == 1 { "it" } else { "them" },
            cfg.catch_up.as_secs()
        );
        sqlx::query(
            "INSERT INTO schedule_fires (schedule_id, due_at, last_due_at, missed_count, outcome, reason) \
             VALUES ($1, $2, $3, $4, 'missed', $5) ON CONFLICT (schedule_id, due_at) DO NOTHING",
        )
        .bind(s.id)
        .bind(a)
        .bind(b)
        .bind(count as i32)
        .bind(&reason)
        .execute(&mut *tx)
        .await?;
        tracing::warn!(schedule = %s.id, name = %s.name, missed = count, "schedule fires missed");
        crate::metrics::Metrics::outcome(&crate::metrics::get().schedule_fires, "missed");
    }
    if fire_latest {
        let outcome = fire(&mut tx, pool, cfg, &s, latest).await?;
        tracing::info!(schedule = %s.id, name = %s.name, due = %latest, ?outcome, "schedule fired");
    }
    // The clock's next after the last past fire time (after now, unless the walk stopped
    // early: then the next tick goes on from there).
    let next = clock.next_after(latest);
    sqlx::query(
        "UPDATE schedules SET next_due_at = $2, next_fire_at = $3, enabled = $4 WHERE id = $1",
    )
    .bind(s.id)
    .bind(next)
    .bind(next.map(|d| schedules::jittered(d, s.jitter_ms)))
    .bind(next.is_some())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// One fire at `due` under the schedule's concurrency policy, inside `tx`.
async fn fire(
    tx: &mut PgConnection,
    pool: &PgPool,
    cfg: &Settings,
    s: &ScheduleRow,
    due: DateTime<Utc>,
) -> ApiResult<Outcome> {
    let unfinished: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT id, state FROM runs WHERE schedule_id = $1 AND ended_at IS NULL ORDER BY created_at DESC LIMIT 1",
    )
    .bind(s.id)
    .fetch_optional(&mut *tx)
    .await?;
    let policy = Concurrency::parse(&s.concurrency);
    // Under `queue`, a fire already waiting goes first (it starts on the next tick).
    let waiting: Option<(DateTime<Utc>,)> = if policy == Concurrency::Queue {
        sqlx::query_as(
            "SELECT due_at FROM schedule_fires WHERE schedule_id = $1 AND outcome = 'queued' LIMIT 1",
        )
        .bind(s.id)
        .fetch_optional(&mut *tx)
        .await?
    } else {
        None
    };
    let outcome = match (unfinished, policy, waiting) {
        (Some((run, state)), Concurrency::Forbid, _) => Outcome::Skipped(format!(
            "the previous run {run} is still {state} (concurrency: forbid)"
        )),
        (_, Concurrency::Queue, Some((at,))) => Outcome::Skipped(format!(
            "the fire due at {at} already waits for the schedule's unfinished run (concurrency: queue holds one fire)"
        )),
        (Some((run, state)), Concurrency::Queue, None) => {
            let why = format!("waiting for run {run} ({state}) to end");
            record(tx, s.id, due, "queued", Some(&why), None).await?;
            return Ok(Outcome::Queued);
        }
        _ => start(tx, pool, cfg, s).await?,
    };
    let (kind, reason, run) = match &outcome {
        Outcome::Started(id) => ("started", None, Some(*id)),
        Outcome::Failed { reason, run } => ("failed", Some(reason.as_str()), Some(*run)),
        Outcome::Skipped(r) => ("skipped", Some(r.as_str()), None),
        Outcome::Queued => unreachable!("returned above"),
    };
    record(tx, s.id, due, kind, reason, run).await?;
    Ok(outcome)
}

async fn record(
    tx: &mut PgConnection,
    schedule: Uuid,
    due: DateTime<Utc>,
    outcome: &str,
    reason: Option<&str>,
    run: Option<Uuid>,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO schedule_fires (schedule_id, due_at, outcome, reason, run_id) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (schedule_id, due_at) DO UPDATE SET outcome = EXCLUDED.outcome, reason = EXCLUDED.reason, \
           run_id = EXCLUDED.run_id, fired_at = clock_timestamp()",
    )
    .bind(schedule)
    .bind(due)
    .bind(outcome)
    .bind(reason)
    .bind(run)
    .execute(&mut *tx)
    .await?;
    crate::metrics::Metrics::outcome(&crate::metrics::get().schedule_fires, outcome);
    Ok(())
}

/// Starts the schedule's run in `tx`; a start that cannot happen (no delegate matches, the
/// delegate refuses the template, the project is halted) is recorded as an ERROR run with the
/// reason, so it shows in the runs list too.
async fn start(
    tx: &mut PgConnection,
    pool: &PgPool,
    cfg: &Settings,
    s: &ScheduleRow,
) -> ApiResult<Outcome> {
    let req = StartRequest {
        template: s.template_id,
        version: s.version,
        delegate: s.delegate.clone(),
        actor: actor(s),
        dry_run: false,
        schedule: Some(s.id),
    };
    let failure = match runs::prepare(pool, Some(s.project_id), &req, cfg.fresh_secs).await {
        Ok(p) => match runs::insert(&mut *tx, &p, &req).await {
            Ok(run) => return Ok(Outcome::Started(run.id)),
            Err(e @ crate::error::ApiError::Halted(_)) => (e, Some(p.delegate_id)),
            Err(e) => return Err(e),
        },
        Err(np) => (np.error, np.delegate),
    };
    let (error, delegate) = failure;
    let reason = format!("the scheduled run could not start: {error}");
    let version = match s.version {
        Some(v) => v,
        None => {
            crate::templates::get(pool, Some(s.project_id), s.template_id)
                .await?
                .version
        }
    };
    let run = runs::insert_failed(
        &mut *tx,
        s.project_id,
        s.template_id,
        version,
        delegate,
        &req.actor,
        Some(s.id),
        &reason,
    )
    .await?;
    Ok(Outcome::Failed {
        reason,
        run: run.id,
    })
}

/// Starts the oldest queued fire whose schedule has no unfinished run any more.
async fn start_next_queued(pool: &PgPool, cfg: &Settings) -> ApiResult<bool> {
    let mut tx = pool.begin().await?;
    let Some((fire_id, due, schedule)): Option<(i64, DateTime<Utc>, Uuid)> = sqlx::query_as(
        "SELECT f.id, f.due_at, f.schedule_id FROM schedule_fires f \
         WHERE f.outcome = 'queued' AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.schedule_id = f.schedule_id AND r.ended_at IS NULL) \
         ORDER BY f.due_at LIMIT 1 FOR UPDATE OF f SKIP LOCKED",
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(false);
    };
    // Lock the schedule too, so its own fire cannot race this start.
    let s = sqlx::query_as::<_, ScheduleRow>(&format!(
        "SELECT {} FROM schedules WHERE id = $1 FOR UPDATE",
        schedules::COLUMNS
    ))
    .bind(schedule)
    .fetch_one(&mut *tx)
    .await?;
    let outcome = start(&mut tx, pool, cfg, &s).await?;
    let (kind, reason, run) = match &outcome {
        Outcome::Started(id) => ("started", None, Some(*id)),
        Outcome::Failed { reason, run } => ("failed", Some(reason.clone()), Some(*run)),
        _ => unreachable!("start only starts or fails"),
    };
    sqlx::query("UPDATE schedule_fires SET outcome = $2, reason = $3, run_id = $4, fired_at = clock_timestamp() WHERE id = $1")
        .bind(fire_id)
        .bind(kind)
        .bind(reason)
        .bind(run)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    crate::metrics::Metrics::outcome(&crate::metrics::get().schedule_fires, kind);
    tracing::info!(schedule = %s.id, name = %s.name, due = %due, ?outcome, "queued schedule fire started");
    Ok(true)
}
