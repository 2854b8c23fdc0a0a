//! Runs: starting, aborting, dispatch claims and event ingest. Postgres is the only source of
//! truth, so any replica can take any call: state changes are single conditional UPDATEs and
//! every event is stored exactly once under its (run_id, seq) key.
use crate::error::{ApiError, ApiResult};
use crate::{delegates, halt, notify, templates};
use chrono::{DateTime, Utc};
use faultline_experiment::events;
use faultline_experiment::Experiment;
use sqlx::{types::Json, PgPool};
use uuid::Uuid;

pub const TERMINAL: &[&str] = &["PASSED", "FAILED", "ABORTED", "ERROR"];
/// Postgres text and jsonb cannot hold NUL.
pub(crate) fn clean(s: &str, max_chars: usize) -> String {
    s.chars().filter(|c| *c != '\0').take(max_chars).collect()
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RunRow {
    pub id: Uuid,
    pub project_id: Uuid,
    pub template_id: Uuid,
    pub template_version: i32,
    pub delegate_id: Option<Uuid>,
    pub state: String,
    pub planned_ms: i64,
    pub abort_requested_at: Option<DateTime<Utc>>,
    pub score: Option<f64>,
    pub delegate_score: Option<f64>,
    pub recovery_ms: Option<i64>,
    pub recovery_from: Option<Json<faultline_experiment::events::RecoveryFrom>>,
    pub verdict_reason: Option<String>,
    pub latency: Option<Json<Vec<faultline_experiment::stats::LatencyShift>>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub dry_run: bool,
    pub schedule_id: Option<Uuid>,
    /// Probe checks stored, passed and failed (kept by ingest; they outlive retention).
    pub checks_ok: i32,
    pub checks_failed: i32,
    /// When retention deleted the run's events and checks.
    pub events_pruned_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, project_id, template_id, template_version, delegate_id, state, planned_ms, abort_requested_at, \
    score, delegate_score, recovery_ms, recovery_from, verdict_reason, latency, created_by, created_at, started_at, ended_at, dry_run, schedule_id, \
    checks_ok, checks_failed, events_pruned_at";

/// How long a dry run may take on its delegate (it only resolves targets).
const DRY_RUN_PLANNED_MS: i64 = 30_000;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EventRow {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub payload: Json<serde_json::Value>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CheckRow {
    pub seq: i64,
    pub probe: String,
    pub step: i32,
    pub counts_for: Vec<i32>,
    pub mode: String,
    pub attempts: i32,
    pub phase: String,
    pub at: DateTime<Utc>,
    pub ok: bool,
    pub latency_ms: f64,
    pub detail: String,
}

/// What to start: a template (at a pinned version, else its latest), on a delegate (a name or
/// `k=v` selector; without it the template's `target.delegate` selector picks one).
#[derive(Clone, Debug, Default)]
pub struct StartRequest {
    pub template: Uuid,
    pub version: Option<i32>,
    pub delegate: Option<String>,
    pub actor: String,
    pub dry_run: bool,
    /// The schedule firing this run.
    pub schedule: Option<Uuid>,
}

/// A start that has passed every check that reads: the template version, its delegate, what
/// that delegate would refuse. `insert` writes it inside the caller's transaction.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub project_id: Uuid,
    pub project_name: String,
    pub template_id: Uuid,
    pub template_name: String,
    pub version: i32,
    pub delegate_id: Uuid,
    pub delegate_name: String,
    pub planned_ms: i64,
}

/// Why a start could not be prepared, with the delegate when one had been chosen (a refusal by
/// that delegate) so that a recorded failure can name it.
pub struct NotPrepared {
    pub error: ApiError,
    pub delegate: Option<Uuid>,
}

impl From<ApiError> for NotPrepared {
    fn from(error: ApiError) -> Self {
        NotPrepared {
            error,
            delegate: None,
        }
    }
}

pub async fn prepare(
    pool: &PgPool,
    scope: Option<Uuid>,
    req: &StartRequest,
    fresh_secs: f64,
) -> Result<Prepared, NotPrepared> {
    let tpl = templates::get(pool, scope, req.template).await?;
    if tpl.archived_at.is_some() {
        return Err(ApiError::bad("template", templates::archived_reason(&tpl)).into());
    }
    let (version, yaml) = match req.version {
        None => (tpl.version, tpl.yaml.clone()),
        Some(v) => (v, templates::version_yaml(pool, tpl.id, v).await?),
    };
    let spec = templates::spec(pool, tpl.id, version).await?;
    let target = match req
        .delegate
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(sel) => delegates::select(pool, tpl.project_id, sel, fresh_secs).await?,
        None if !spec.target.delegate.is_empty() => {
            delegates::with_labels(pool, tpl.project_id, &spec.target.delegate, fresh_secs, 1)
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| {
                    ApiError::NotFound(format!(
                        "delegate matching the template's target.delegate {:?}",
                        spec.target.delegate
                    ))
                })?
        }
        None => {
            return Err(ApiError::bad(
                "delegate",
                "name a delegate, or give the template a target.delegate selector",
            )
            .into())
        }
    };
    // Refuse before queueing what the delegate cannot or may not run (its kinds, its
    // operator's allow-list), located in the template's text.
    let mut refused = target.refusals(&spec);
    if !refused.is_empty() {
        faultline_experiment::template::locate_errors(&yaml, &mut refused);
        return Err(NotPrepared {
            error: ApiError::InvalidTemplate(faultline_experiment::SpecErrors(refused)),
            delegate: Some(target.id),
        });
    }
    let planned_ms = if req.dry_run {
        DRY_RUN_PLANNED_MS
    } else {
        spec.planned_duration().as_millis() as i64
    };
    Ok(Prepared {
        project_id: tpl.project_id,
        project_name: tpl.project_name,
        template_id: tpl.id,
        template_name: tpl.name,
        version,
        delegate_id: target.id,
        delegate_name: target.name,
        planned_ms,
    })
}

/// Inserts the prepared run as PENDING and wakes the replica holding the delegate's stream,
/// inside `tx`. Refused with `PROJECT_HALTED` while the project is halted: checked under the
/// project row's lock, so a halt racing this start either waits for it (and aborts the new
/// run) or commits first (and this start is refused).
pub async fn insert(
    tx: &mut sqlx::PgConnection,
    p: &Prepared,
    req: &StartRequest,
) -> ApiResult<RunRow> {
    halt::ensure_running(&mut *tx, p.project_id).await?;
    let run = sqlx::query_as::<_, RunRow>(&format!(
        "INSERT INTO runs (id, project_id, template_id, template_version, delegate_id, state, planned_ms, created_by, dry_run, schedule_id) \
         VALUES ($1, $2, $3, $4, $5, 'PENDING', $6, $7, $8, $9) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(p.project_id)
    .bind(p.template_id)
    .bind(p.version)
    .bind(p.delegate_id)
    .bind(p.planned_ms)
    .bind(&req.actor)
    .bind(req.dry_run)
    .bind(req.schedule)
    .fetch_one(&mut *tx)
    .await?;
    notify::notify(&mut *tx, notify::WORK, p.delegate_id).await?;
    Ok(run)
}

/// Records a run that could not start (a schedule's fire) as ERROR with the reason, so it shows
/// in the runs list; `delegate` is the one that refused it, if one was chosen.
#[allow(clippy::too_many_arguments)]
pub async fn insert_failed(
    tx: &mut sqlx::PgConnection,
    project: Uuid,
    template: Uuid,
    version: i32,
    delegate: Option<Uuid>,
    actor: &str,
    schedule: Option<Uuid>,
    reason: &str,
) -> ApiResult<RunRow> {
    Ok(sqlx::query_as::<_, RunRow>(&format!(
        "INSERT INTO runs (id, project_id, template_id, template_version, delegate_id, state, planned_ms, created_by, schedule_id, \
           verdict_reason, ended_at) \
         VALUES ($1, $2, $3, $4, $5, 'ERROR', 0, $6, $7, $8, now()) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(project)
    .bind(template)
    .bind(version)
    .bind(delegate)
    .bind(actor)
    .bind(schedule)
    .bind(clean(reason, 4000))
    .fetch_one(&mut *tx)
    .await?)
}

/// Creates a PENDING run pinned to the requested (default: latest) template version and wakes
/// the replica holding the delegate's stream.
pub async fn start(
    pool: &PgPool,
    scope: Option<Uuid>,
    req: &StartRequest,
    fresh_secs: f64,
) -> ApiResult<RunRow> {
    let p = prepare(pool, scope, req, fresh_secs)
        .await
        .map_err(|e| e.error)?;
    let mut tx = pool.begin().await?;
    let run = insert(&mut tx, &p, req).await?;
    tx.commit().await?;
    tracing::info!(run_id = %run.id, delegate = %p.delegate_id, project = %p.project_name, template = %p.template_name, version = p.version, "run started");
    Ok(run)
}

/// Requests an abort. Idempotent: a PENDING run ends at once (nothing was applied), a dispatched
/// or running one goes to ABORTING until the delegate confirms its revert; ended runs stay as
/// they are.
pub async fn abort(
    pool: &PgPool,
    scope: Option<Uuid>,
    id: Uuid,
    reason: &str,
) -> ApiResult<RunRow> {
    let mut tx = pool.begin().await?;
    let run = sqlx::query_as::<_, RunRow>(&format!(
        "UPDATE runs SET abort_requested_at = CASE WHEN ended_at IS NULL THEN COALESCE(abort_requested_at, now()) ELSE abort_requested_at END, \
           abort_reason = CASE WHEN ended_at IS NULL THEN COALESCE(abort_reason, $3) ELSE abort_reason END, \
           state = CASE WHEN state = 'PENDING' THEN 'ABORTED' WHEN state IN ('DISPATCHED', 'RUNNING') THEN 'ABORTING' ELSE state END, \
           ended_at = CASE WHEN state = 'PENDING' THEN now() ELSE ended_at END, \
           verdict_reason = CASE WHEN state = 'PENDING' THEN 'aborted before a delegate took it' ELSE verdict_reason END \
         WHERE id = $1 AND ($2::uuid IS NULL OR project_id = $2) RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(scope)
    .bind(reason)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("run {id}")))?;
    if let Some(d) = run.delegate_id {
        notify::notify(&mut *tx, notify::WORK, d).await?;
    }
    notify::notify(&mut *tx, notify::EVENTS, run.id).await?;
    tx.commit().await?;
    Ok(run)
}

pub async fn get(pool: &PgPool, scope: Option<Uuid>, id: Uuid) -> ApiResult<RunRow> {
    sqlx::query_as::<_, RunRow>(&format!(
        "SELECT {COLUMNS} FROM runs WHERE id = $1 AND ($2::uuid IS NULL OR project_id = $2)"
    ))
    .bind(id)
    .bind(scope)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("run {id}")))
}

/// Which runs `list` returns; every field left empty matches all.
#[derive(Debug, Default)]
pub struct RunFilter {
    pub template: Option<Uuid>,
    /// Stored states (`RUNNING`, `PASSED`, ...).
    pub states: Vec<String>,
    /// A delegate's id or name.
    pub delegate: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Only runs this schedule started.
    pub schedule: Option<Uuid>,
    /// Only runs listed after this one (keyset paging: the last run of the previous page).
    pub before: Option<Uuid>,
}

/// Runs of the `scope` projects (`None`: every project) that match `f`, newest first (ties by
/// id, so [`RunFilter::before`] pages through them without gaps or repeats).
pub async fn list(
    pool: &PgPool,
    scope: Option<&[Uuid]>,
    f: &RunFilter,
    limit: i64,
) -> ApiResult<Vec<RunRow>> {
    // Only the filters given are in the statement: with `$n IS NULL OR …` for each, Postgres
    // switches to a generic plan after a few calls that cannot use the indexes (a scan and sort
    // of every run, seconds with a million).
    let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(format!(
        "SELECT {COLUMNS} FROM runs r WHERE true"
    ));
    if let Some(scope) = scope {
        q.push(" AND project_id = ANY(").push_bind(scope).push(")");
    }
    if let Some(t) = f.template {
        q.push(" AND template_id = ").push_bind(t);
    }
    if !f.states.is_empty() {
        q.push(" AND state = ANY(").push_bind(&f.states).push(")");
    }
    if let Some(d) = f.delegate.as_deref() {
        match d.parse::<Uuid>() {
            Ok(id) => q.push(" AND delegate_id = ").push_bind(id),
            // The names' ids first (not correlated with each run), so the runs come from the
            // `runs_delegate` index; a run's delegate is always of the run's project.
            Err(_) => {
                q.push(" AND delegate_id IN (SELECT id FROM delegates d WHERE d.name = ")
                    .push_bind(d);
                if let Some(scope) = scope {
                    q.push(" AND d.project_id = ANY(")
                        .push_bind(scope)
                        .push(")");
                }
                q.push(")")
            }
        };
    }
    if let Some(t) = f.since {
        q.push(" AND created_at >= ").push_bind(t);
    }
    if let Some(t) = f.until {
        q.push(" AND created_at < ").push_bind(t);
    }
    if let Some(s) = f.schedule {
        q.push(" AND schedule_id = ").push_bind(s);
    }
    if let Some(b) = f.before {
        q.push(" AND (created_at, id) < (SELECT b.created_at, b.id FROM runs b WHERE b.id = ")
            .push_bind(b)
            .push(")");
    }
    q.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(limit.clamp(1, 1000));
    Ok(q.build_query_as::<RunRow>().fetch_all(pool).await?)
}

pub async fn events(
    pool: &PgPool,
    run: Uuid,
    after_seq: i64,
    limit: i64,
) -> ApiResult<Vec<EventRow>> {
    Ok(sqlx::query_as::<_, EventRow>("SELECT seq, at, kind, payload FROM run_events WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3")
        .bind(run)
        .bind(after_seq)
        .bind(limit.clamp(1, 10_000))
        .fetch_all(pool)
        .await?)
}

pub async fn checks(pool: &PgPool, run: Uuid) -> ApiResult<Vec<CheckRow>> {
    Ok(sqlx::query_as::<_, CheckRow>(
        "SELECT seq, probe, step, COALESCE(counts_for, ARRAY[step]) AS counts_for, mode, attempts, phase, at, ok, latency_ms, detail \
         FROM probe_checks WHERE run_id = $1 ORDER BY seq",
    )
    .bind(run)
    .fetch_all(pool)
    .await?)
}

/// A probe check as the run report reads it: when it started (from its event's `startedMs`,
/// absent from older delegates) and, for a failed one only, its detail.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TimedCheck {
    pub seq: i64,
    pub probe: String,
    pub phase: String,
    pub mode: String,
    /// When its event was written (the check ended).
    pub at: DateTime<Utc>,
    /// When it started, ms since the Unix epoch (the delegate's clock).
    pub started_ms: Option<i64>,
    pub ok: bool,
    pub latency_ms: f64,
    /// Empty for a passing check: the report lists failures only.
    pub detail: String,
}

/// Every check of the run in seq order, with its start time: one indexed join on the run's
/// events, whose `(run_id, seq)` is the check's.
pub async fn timed_checks(pool: &PgPool, run: Uuid) -> ApiResult<Vec<TimedCheck>> {
    Ok(sqlx::query_as::<_, TimedCheck>(
        "SELECT c.seq, c.probe, c.phase, c.mode, c.at, \
           CASE WHEN jsonb_typeof(e.payload->'startedMs') = 'number' THEN (e.payload->>'startedMs')::float8::bigint END AS started_ms, \
           c.ok, c.latency_ms, CASE WHEN c.ok THEN '' ELSE c.detail END AS detail \
         FROM probe_checks c LEFT JOIN run_events e ON e.run_id = c.run_id AND e.seq = c.seq \
         WHERE c.run_id = $1 ORDER BY c.seq",
    )
    .bind(run)
    .fetch_all(pool)
    .await?)
}

/// The run's events other than probe checks (the method: faults, actions, pauses, the verdict),
/// in seq order; at most `limit`.
pub async fn method_events(pool: &PgPool, run: Uuid, limit: i64) -> ApiResult<Vec<EventRow>> {
    Ok(sqlx::query_as::<_, EventRow>(
        "SELECT seq, at, kind, payload FROM run_events WHERE run_id = $1 AND kind <> $2 ORDER BY seq LIMIT $3",
    )
    .bind(run)
    .bind(events::PROBE_CHECK)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// One run handed to a delegate.
pub struct Assignment {
    pub run_id: Uuid,
    pub spec: Experiment,
    pub template_name: String,
    pub template_version: i32,
    pub dry_run: bool,
    pub project: String,
}

/// Atomically claims the delegate's PENDING runs (oldest first). Exactly one replica wins each.
/// Only the delegate's live stream (`session`) may claim, so a stale stream never takes work.
pub async fn claim(pool: &PgPool, delegate: Uuid, session: Uuid) -> ApiResult<Vec<Assignment>> {
    let rows: Vec<(Uuid, Json<Experiment>, String, i32, bool, String)> = sqlx::query_as(
        "WITH claimed AS ( \
           UPDATE runs SET state = 'DISPATCHED', dispatched_at = now() WHERE id IN ( \
             SELECT id FROM runs WHERE delegate_id = $1 AND state = 'PENDING' \
               AND EXISTS (SELECT 1 FROM delegates WHERE id = $1 AND session_id = $2) \
             ORDER BY created_at LIMIT 16 FOR UPDATE SKIP LOCKED) \
           RETURNING id, template_id, template_version, created_at, dry_run, project_id) \
         SELECT c.id, v.spec, t.name, c.template_version, c.dry_run, p.name FROM claimed c \
           JOIN template_versions v ON v.template_id = c.template_id AND v.version = c.template_version \
           JOIN templates t ON t.id = c.template_id \
           JOIN projects p ON p.id = c.project_id ORDER BY c.created_at",
    )
    .bind(delegate)
    .bind(session)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(run_id, spec, template_name, template_version, dry_run, project)| Assignment {
                run_id,
                spec: spec.0,
                template_name,
                template_version,
                dry_run,
                project,
            },
        )
        .collect())
}

/// Puts a claimed run back when the stream it was sent on failed.
pub async fn unclaim(pool: &PgPool, run: Uuid) -> ApiResult<()> {
    sqlx::query("UPDATE runs SET state = 'PENDING' WHERE id = $1 AND state = 'DISPATCHED'")
        .bind(run)
        .execute(pool)
        .await?;
    Ok(())
}

/// Runs of this delegate waiting for their abort to be confirmed.
pub async fn aborting(pool: &PgPool, delegate: Uuid) -> ApiResult<Vec<(Uuid, String)>> {
    Ok(sqlx::query_as("SELECT id, COALESCE(abort_reason, '') FROM runs WHERE delegate_id = $1 AND (state = 'ABORTING' \
           OR (state = 'ERROR' AND abort_requested_at IS NOT NULL AND ended_at > now() - interval '2 minutes'))")
        .bind(delegate)
        .fetch_all(pool)
        .await?)
}

/// Reconciles after a delegate (re)connects: assignments it never got are re-queued, and runs the
/// hub thinks are running but the delegate no longer knows end in ERROR.
pub async fn reconcile(
    pool: &PgPool,
    delegate: Uuid,
    project: &str,
    inflight: &[Uuid],
) -> ApiResult<Vec<Uuid>> {
    sqlx::query("UPDATE runs SET state = 'PENDING' WHERE delegate_id = $1 AND state = 'DISPATCHED' AND id <> ALL($2)")
        .bind(delegate)
        .bind(inflight)
        .execute(pool)
        .await?;
    // Aborted before the delegate ever started it: nothing was applied.
    let never_started: Vec<(Uuid,)> = sqlx::query_as(
        "UPDATE runs SET state = 'ABORTED', ended_at = now(), verdict_reason = 'aborted before the delegate started it' \
         WHERE delegate_id = $1 AND state = 'ABORTING' AND started_at IS NULL AND id <> ALL($2) RETURNING id",
    )
    .bind(delegate)
    .bind(inflight)
    .fetch_all(pool)
    .await?;
    let lost: Vec<(Uuid,)> = sqlx::query_as(
        "UPDATE runs SET state = 'ERROR', ended_at = now(), verdict_reason = 'the delegate reconnected without this run (its state directory was lost)' \
         WHERE delegate_id = $1 AND state IN ('RUNNING', 'ABORTING') AND id <> ALL($2) RETURNING id",
    )
    .bind(delegate)
    .bind(inflight)
    .fetch_all(pool)
    .await?;
    for (id,) in never_started.iter().chain(&lost) {
        tracing::warn!(run_id = %id, %delegate, project, "run resolved on reconnect");
        notify::notify(pool, notify::EVENTS, *id).await?;
    }
    // Runs the delegate still has but the hub ended on its own (lost delegate, overdue, abort
    // timeout): the caller tells the delegate to stop them.
    let stale: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT id FROM runs WHERE delegate_id = $1 AND state = 'ERROR' AND id = ANY($2)",
    )
    .bind(delegate)
    .bind(inflight)
    .fetch_all(pool)
    .await?;
    Ok(stale.into_iter().map(|r| r.0).collect())
}

pub async fn accepted(pool: &PgPool, delegate: Uuid, run: Uuid) -> ApiResult<()> {
    sqlx::query("UPDATE runs SET state = 'RUNNING', started_at = COALESCE(started_at, now()) WHERE id = $1 AND delegate_id = $2 AND state = 'DISPATCHED'")
        .bind(run)
        .bind(delegate)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn rejected(pool: &PgPool, delegate: Uuid, run: Uuid, reason: &str) -> ApiResult<()> {
    end(
        pool,
        delegate,
        run,
        "ERROR",
        &format!("the delegate rejected the run: {reason}"),
    )
    .await
}

pub async fn aborted(pool: &PgPool, delegate: Uuid, run: Uuid) -> ApiResult<()> {
    end(
        pool,
        delegate,
        run,
        "ABORTED",
        "aborted; the delegate confirmed every fault was reverted",
    )
    .await
}

async fn end(pool: &PgPool, delegate: Uuid, run: Uuid, state: &str, reason: &str) -> ApiResult<()> {
    sqlx::query(
        "UPDATE runs SET state = $3, ended_at = now(), verdict_reason = COALESCE(verdict_reason, $4) \
         WHERE id = $1 AND delegate_id = $2 AND state <> ALL($5)",
    )
    .bind(run)
    .bind(delegate)
    .bind(state)
    .bind(reason)
    .bind(TERMINAL)
    .execute(pool)
    .await?;
    notify::notify(pool, notify::EVENTS, run).await?;
    Ok(())
}
