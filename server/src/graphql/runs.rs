//! GraphQL: runs, their events and probe results, and the `runEvents` subscription.
use super::{ctx, delegates::Delegate, parse_id, project_or_default, templates::Template, visible};
use crate::{
    audit,
    error::ApiError,
    identity::{Role, RECHECK_EVERY},
    runs::RunRow,
};
use async_graphql::{Context, Enum, Object, Result, SimpleObject, Subscription, ID};
use chrono::{DateTime, Utc};
use futures::Stream;
use std::time::{Duration, Instant};

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum RunStatus {
    /// Waiting for its delegate to take it (queued in Postgres).
    Pending,
    /// Sent to the delegate, not yet accepted.
    Dispatched,
    Running,
    /// Abort requested; waiting for the delegate to confirm every fault is reverted.
    Aborting,
    Passed,
    Failed,
    Aborted,
    Error,
}

impl RunStatus {
    /// The state as stored in `runs.state`.
    fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "PENDING",
            RunStatus::Dispatched => "DISPATCHED",
            RunStatus::Running => "RUNNING",
            RunStatus::Aborting => "ABORTING",
            RunStatus::Passed => "PASSED",
            RunStatus::Failed => "FAILED",
            RunStatus::Aborted => "ABORTED",
            RunStatus::Error => "ERROR",
        }
    }

    fn parse(s: &str) -> RunStatus {
        match s {
            "PENDING" => RunStatus::Pending,
            "DISPATCHED" => RunStatus::Dispatched,
            "RUNNING" => RunStatus::Running,
            "ABORTING" => RunStatus::Aborting,
            "PASSED" => RunStatus::Passed,
            "FAILED" => RunStatus::Failed,
            "ABORTED" => RunStatus::Aborted,
            _ => RunStatus::Error,
        }
    }
}

pub struct Run(pub RunRow);

#[derive(SimpleObject)]
pub struct RunEvent {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub payload: async_graphql::Json<serde_json::Value>,
}

impl From<crate::runs::EventRow> for RunEvent {
    fn from(e: crate::runs::EventRow) -> Self {
        RunEvent {
            seq: e.seq,
            at: e.at,
            kind: e.kind,
            payload: async_graphql::Json(e.payload.0),
        }
    }
}

#[derive(SimpleObject)]
pub struct ProbeResult {
    pub probe: String,
    /// before, during or after the faults.
    pub phase: String,
    /// Ordinal of the (first) fault the check counts for.
    pub step: i32,
    /// Every fault ordinal the check counts for in the score (several in a parallel group).
    pub counts_for: Vec<i32>,
    /// The probe's mode: sot, eot, edge, continuous or onChaos.
    pub mode: String,
    /// Tries the check took.
    pub attempts: i32,
    pub ok: bool,
    pub latency_ms: f64,
    pub at: DateTime<Utc>,
    pub detail: String,
}

/// The statistical verdict on one latency-measuring probe: a two-sided Mann-Whitney U test of
/// the latencies of passing checks before the faults (control) against those while faults were
/// active (chaos).
#[derive(SimpleObject)]
pub struct LatencyVerdict {
    pub probe: String,
    /// Checks before the first fault, failed ones included (a failure ranks above every answered
    /// check).
    pub control_samples: i32,
    /// Checks that started while a fault was active, failed ones included.
    pub chaos_samples: i32,
    pub control_failed: i32,
    pub chaos_failed: i32,
    /// Fisher's exact test of the two failure rates (two-sided).
    pub failure_p_value: Option<f64>,
    pub control_median_ms: Option<f64>,
    pub chaos_median_ms: Option<f64>,
    /// Chaos median minus control median.
    pub shift_ms: Option<f64>,
    pub u: Option<f64>,
    pub p_value: Option<f64>,
    /// p below 0.05.
    pub significant: bool,
    /// e.g. "latency rose from 12 ms to 214 ms, p < 0.001".
    pub summary: String,
}

impl From<&faultline_experiment::stats::LatencyShift> for LatencyVerdict {
    fn from(l: &faultline_experiment::stats::LatencyShift) -> Self {
        LatencyVerdict {
            probe: l.probe.clone(),
            control_samples: l.control_n as i32,
            chaos_samples: l.chaos_n as i32,
            control_failed: l.control_failed as i32,
            chaos_failed: l.chaos_failed as i32,
            failure_p_value: l.failure_p_value,
            control_median_ms: l.control_median_ms,
            chaos_median_ms: l.chaos_median_ms,
            shift_ms: l.shift_ms,
            u: l.u,
            p_value: l.p_value,
            significant: l.significant,
            summary: l.summary.clone(),
        }
    }
}

/// The event a run's recovery time is measured from.
pub struct RecoveryFrom(faultline_experiment::events::RecoveryFrom);

#[Object]
impl RecoveryFrom {
    /// `fault.applied` (a one-shot kill), `fault.reverted`, `action.done` or `action.undone`.
    async fn event(&self) -> &str {
        &self.0.event
    }
    /// The step in the template, e.g. `steps[2]`.
    async fn path(&self) -> &str {
        &self.0.path
    }
    /// The fault kind, or `action`.
    async fn what(&self) -> &str {
        &self.0.what
    }
    /// Milliseconds after the run started.
    async fn at_ms(&self) -> i64 {
        self.0.at_ms as i64
    }
    /// "after process-kill (steps[2]) at +5.0 s".
    async fn summary(&self) -> String {
        self.0.describe()
    }
}

#[derive(SimpleObject)]
pub struct ProbeTally {
    pub passed: i32,
    pub failed: i32,
    pub total: i32,
}

#[Object]
impl Run {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn status(&self) -> RunStatus {
        RunStatus::parse(&self.0.state)
    }
    /// The template as of the version this run is pinned to (`version` and `yaml` are that
    /// version's, even if the template was updated since).
    async fn template(&self, c: &Context<'_>) -> Result<Template> {
        let (s, _) = ctx(c)?;
        let mut t =
            crate::templates::get(&s.pool, Some(self.0.project_id), self.0.template_id).await?;
        let pinned = match crate::templates::version(&s.pool, t.id, self.0.template_version).await {
            Ok(v) => Some(v),
            Err(ApiError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        if let Some(v) = pinned {
            (t.version, t.yaml, t.created_at, t.git_commit) =
                (v.version, v.yaml, v.created_at, v.git_commit);
        }
        Ok(Template(t))
    }
    /// The template version this run is pinned to.
    async fn template_version(&self) -> i32 {
        self.0.template_version
    }
    /// The git commit its template version was synced from (docs/gitops.md); null when the
    /// version was not synced from git.
    async fn git_commit(&self, c: &Context<'_>) -> Result<Option<String>> {
        let (s, _) = ctx(c)?;
        Ok(
            crate::templates::version_commit(&s.pool, self.0.template_id, self.0.template_version)
                .await?,
        )
    }
    /// The delegate it runs on; none for a scheduled run that could not start because no
    /// delegate matched.
    async fn delegate(&self, c: &Context<'_>) -> Result<Option<Delegate>> {
        let (s, _) = ctx(c)?;
        let Some(id) = self.0.delegate_id else {
            return Ok(None);
        };
        Ok(Some(Delegate(
            crate::delegates::get(&s.pool, id, s.fresh_secs()).await?,
        )))
    }
    /// The schedule that started it (none: started by a person or a pipeline, or the schedule
    /// was deleted since).
    async fn schedule_id(&self) -> Option<ID> {
        self.0.schedule_id.map(|i| ID(i.to_string()))
    }
    async fn schedule(&self, c: &Context<'_>) -> Result<Option<super::schedules::Schedule>> {
        let (s, _) = ctx(c)?;
        let Some(id) = self.0.schedule_id else {
            return Ok(None);
        };
        match crate::schedules::get(&s.pool, id).await {
            Ok(row) => Ok(Some(super::schedules::Schedule(row))),
            Err(ApiError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }
    async fn ended_at(&self) -> Option<DateTime<Utc>> {
        self.0.ended_at
    }
    /// When retention deleted this run's events and probe checks (`--retain-events`): its
    /// summary (status, score, tally, recovery, latency verdict) stays; `events` and
    /// `probeResults` are empty from then on.
    async fn events_pruned_at(&self) -> Option<DateTime<Utc>> {
        self.0.events_pruned_at
    }
    async fn abort_requested_at(&self) -> Option<DateTime<Utc>> {
        self.0.abort_requested_at
    }
    /// Weighted probe success in percent (Litmus semantics), recomputed by the hub from the
    /// stored checks.
    async fn resilience_score(&self) -> Option<f64> {
        self.0.score
    }
    /// The score the delegate computed; equal to `resilienceScore` unless something is wrong.
    async fn delegate_score(&self) -> Option<f64> {
        self.0.delegate_score
    }
    /// Time from the end of the last fault or action (`recoveryFrom`) until every probe passed
    /// again and kept passing.
    async fn recovery_ms(&self) -> Option<i64> {
        self.0.recovery_ms
    }
    /// What `recoveryMs` is measured from: the event that ended the method's last fault (for a
    /// one-shot kill, the kill itself) or action.
    async fn recovery_from(&self) -> Option<RecoveryFrom> {
        self.0
            .recovery_from
            .as_ref()
            .map(|f| RecoveryFrom(f.0.clone()))
    }
    /// The statistical verdict per latency-measuring probe (empty until the run finished, or
    /// when no probe measures latency).
    async fn latency(&self) -> Vec<LatencyVerdict> {
        self.0
            .latency
            .as_ref()
            .map(|l| l.0.iter().map(LatencyVerdict::from).collect())
            .unwrap_or_default()
    }
    /// Why the run ended as it did.
    async fn reason(&self) -> Option<&str> {
        self.0.verdict_reason.as_deref()
    }
    /// A dry run: faults resolved and listed (`fault.planned` events), nothing applied.
    async fn dry_run(&self) -> bool {
        self.0.dry_run
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    /// Events in order of `seq`, after `afterSeq` (exclusive); at most `limit` (≤ 10,000).
    #[graphql(complexity = "limit.clamp(1, 10_000) as usize / 100 * child_complexity + 1")]
    async fn events(
        &self,
        c: &Context<'_>,
        #[graphql(default = 0)] after_seq: i64,
        #[graphql(default = 1000)] limit: i64,
    ) -> Result<Vec<RunEvent>> {
        let (s, _) = ctx(c)?;
        Ok(crate::runs::events(&s.pool, self.0.id, after_seq, limit)
            .await?
            .into_iter()
            .map(RunEvent::from)
            .collect())
    }
    async fn probe_results(&self, c: &Context<'_>) -> Result<Vec<ProbeResult>> {
        let (s, _) = ctx(c)?;
        Ok(crate::runs::checks(&s.pool, self.0.id)
            .await?
            .into_iter()
            .map(|r| ProbeResult {
                probe: r.probe,
                phase: r.phase,
                step: r.step,
                counts_for: r.counts_for,
                mode: r.mode,
                attempts: r.attempts,
                ok: r.ok,
                latency_ms: r.latency_ms,
                at: r.at,
                detail: r.detail,
            })
            .collect())
    }
    async fn probe_tally(&self) -> ProbeTally {
        ProbeTally {
            passed: self.0.checks_ok,
            failed: self.0.checks_failed,
            total: self.0.checks_ok + self.0.checks_failed,
        }
    }
}

/// The run `id`, if the caller has at least `need` in its project (else: not found, or
/// forbidden when the caller can read it but needs more).
async fn readable_run(
    s: &crate::state::AppState,
    p: &crate::identity::Principal,
    id: &ID,
    field: &str,
    need: Role,
) -> Result<RunRow, crate::error::ApiError> {
    let id = parse_id(field, id)?;
    let run = crate::runs::get(&s.pool, None, id).await?;
    p.require_on(&s.pool, run.project_id, need, &format!("run {id}"))
        .await?;
    Ok(run)
}

/// The template `startRun` names: by `templateId`, or by `template` (a name) in `project`; the
/// caller must be an editor of its project. Exactly one of the two, else an error naming the field.
pub(crate) async fn template_to_start(
    s: &crate::state::AppState,
    p: &crate::identity::Principal,
    template_id: Option<ID>,
    template: Option<String>,
    project: Option<String>,
) -> Result<crate::templates::TemplateRow, ApiError> {
    match (template_id, template) {
        (Some(id), None) => {
            if project.is_some() {
                return Err(ApiError::bad(
                    "project",
                    "give project only with template (a name); templateId names one already",
                ));
            }
            let tid = parse_id("templateId", &id)?;
            let t = crate::templates::get(&s.pool, None, tid).await?;
            p.require_on(
                &s.pool,
                t.project_id,
                Role::Editor,
                &format!("template {tid}"),
            )
            .await?;
            Ok(t)
        }
        (None, Some(name)) => {
            let name = name.trim();
            if name.is_empty() {
                return Err(ApiError::bad("template", "give a template name"));
            }
            let project = project_or_default(s, p, project.as_deref(), Role::Editor).await?;
            crate::templates::by_name(&s.pool, project, name).await
        }
        (Some(_), Some(_)) => Err(ApiError::bad(
            "template",
            "give either templateId or template (a name), not both",
        )),
        (None, None) => Err(ApiError::bad(
            "templateId",
            "give templateId, or template (a template name in project)",
        )),
    }
}

#[derive(Default)]
pub struct RunQuery;

#[Object]
impl RunQuery {
    /// The run `id`: its full id, or a prefix of at least 8 hex digits that only one run the
    /// caller can read has (the dashboard shows 8). An ambiguous prefix is refused.
    async fn run(&self, c: &Context<'_>, id: ID) -> Result<Run> {
        let (s, p) = ctx(c)?;
        Ok(Run(crate::run_ids::readable(&s.pool, p, &id, "id").await?))
    }

    /// Most recent runs first (at most 1,000), of one project or of every project the caller
    /// can read; optionally only those of one template, in some statuses, on one delegate (id
    /// or name), started by one schedule, or created in `[since, until)`. `before` (the last
    /// run's id of a page) gives the next page.
    #[graphql(complexity = "limit.clamp(1, 1000) as usize * child_complexity")]
    #[allow(clippy::too_many_arguments)]
    async fn runs(
        &self,
        c: &Context<'_>,
        project: Option<String>,
        #[graphql(default = 50)] limit: i64,
        template_id: Option<ID>,
        status: Option<Vec<RunStatus>>,
        delegate: Option<String>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        schedule_id: Option<ID>,
        before: Option<ID>,
    ) -> Result<Vec<Run>> {
        let (s, p) = ctx(c)?;
        let scope = visible(s, p, project.as_deref()).await?;
        let filter = crate::runs::RunFilter {
            template: template_id
                .map(|t| parse_id("templateId", &t))
                .transpose()?,
            states: status
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            delegate: delegate.filter(|d| !d.is_empty()),
            since,
            until,
            schedule: schedule_id
                .map(|t| parse_id("scheduleId", &t))
                .transpose()?,
            before: before.map(|b| parse_id("before", &b)).transpose()?,
        };
        Ok(crate::runs::list(&s.pool, scope.as_deref(), &filter, limit)
            .await?
            .into_iter()
            .map(Run)
            .collect())
    }
}

#[derive(Default)]
pub struct RunMutation;

#[Object]
impl RunMutation {
    /// Queues a run of the template's latest version (or `version`) on a delegate (a name or a `k=v,...` label
    /// selector; default: the template's `target.delegate`). The template is `templateId`, or
    /// `template`: a template's name in `project` (default: the API token's project, else
    /// `default`); give one of them. The delegate may be offline: the run waits in Postgres
    /// until it connects or the pending timeout passes. With `dryRun` the delegate resolves
    /// every fault and lists its targets (`fault.planned` events) but applies nothing and runs
    /// no probe: PASSED when every fault could be applied now, else FAILED with the reasons.
    /// Refused with `PROJECT_HALTED` while the project is halted.
    #[allow(clippy::too_many_arguments)]
    async fn start_run(
        &self,
        c: &Context<'_>,
        template_id: Option<ID>,
        template: Option<String>,
        project: Option<String>,
        delegate: Option<String>,
        version: Option<i32>,
        #[graphql(default = false)] dry_run: bool,
    ) -> Result<Run> {
        let (s, p) = ctx(c)?;
        let t = template_to_start(s, p, template_id, template, project).await?;
        let req = crate::runs::StartRequest {
            template: t.id,
            version,
            delegate: delegate.clone(),
            actor: p.actor(),
            dry_run,
            schedule: None,
        };
        let res = crate::runs::start(&s.pool, Some(t.project_id), &req, s.fresh_secs()).await;
        // Recorded under the template's project: the run it started (the target), the template
        // and the delegate asked for; a refused start says why (a delegate's allow-list refusing
        // a shell is what a security team looks for), with the template as its target.
        let mut detail = serde_json::Map::new();
        detail.insert(
            "template".into(),
            serde_json::json!({ "id": t.id.to_string(), "name": t.name, "version": version.unwrap_or(t.version) }),
        );
        if let Some(d) = &delegate {
            detail.insert("delegate".into(), d.clone().into());
        }
        let target = match &res {
            Ok(run) => run.id.to_string(),
            Err(_) => t.id.to_string(),
        };
        audit::record_detail(
            &s.pool,
            p,
            Some(t.project_id),
            if dry_run { "run.dry_run" } else { "run.start" },
            target,
            &res,
            detail,
        )
        .await;
        Ok(Run(res?))
    }

    /// Aborts a run: its delegate reverts every fault at once. Repeating it is harmless.
    async fn abort_run(&self, c: &Context<'_>, id: ID, reason: Option<String>) -> Result<Run> {
        let (s, p) = ctx(c)?;
        let run = readable_run(s, p, &id, "id", Role::Editor).await?;
        let reason = reason.unwrap_or_else(|| format!("aborted by {}", p.actor()));
        let res = crate::runs::abort(&s.pool, Some(run.project_id), run.id, &reason).await;
        let mut detail = serde_json::Map::new();
        detail.insert("reason".into(), reason.clone().into());
        audit::record_detail(
            &s.pool,
            p,
            Some(run.project_id),
            "run.abort",
            run.id.to_string(),
            &res,
            detail,
        )
        .await;
        Ok(Run(res?))
    }
}

#[derive(Default)]
pub struct RunSubscription;

#[Subscription]
impl RunSubscription {
    /// Streams the run's events in order as they are stored (from `afterSeq`, exclusive), and
    /// ends once the run has ended and every event was delivered.
    // The caller is re-checked every 2 s: a logout, a revoked or expired token, or a lost role in
    // the run's project ends the stream with an error saying why (docs/identity.md). Kept out of
    // the doc comment above, which is the SDL description web/schema.graphql mirrors.
    async fn run_events(
        &self,
        c: &Context<'_>,
        run_id: ID,
        #[graphql(default = 0)] after_seq: i64,
    ) -> Result<impl Stream<Item = Result<RunEvent>>> {
        let (s, p) = ctx(c)?;
        // The connection's principal was checked at connection_init, perhaps long ago.
        let mut p = p.refresh(&s.pool).await?;
        let run = readable_run(s, &p, &run_id, "runId", Role::Viewer).await?;
        let (pool, mut rx, id, project) = (
            s.pool.clone(),
            s.hub.subscribe_events(),
            run.id,
            run.project_id,
        );
        Ok(async_stream::stream! {
            let mut cursor = after_seq;
            let mut checked = Instant::now();
            loop {
                if checked.elapsed() >= RECHECK_EVERY {
                    checked = Instant::now();
                    match p.recheck(&pool, project, Role::Viewer).await {
                        Ok(now) => p = now,
                        Err(e) => {
                            tracing::info!(run_id = %id, actor = %p.actor(), error = %e, "run events subscription ended: caller no longer allowed");
                            yield Err(e.into());
                            break;
                        }
                    }
                }
                let Ok(batch) = crate::runs::events(&pool, id, cursor, 1000).await else { break };
                let empty = batch.is_empty();
                for e in batch {
                    cursor = e.seq;
                    yield Ok(RunEvent::from(e));
                }
                if empty {
                    match crate::runs::get(&pool, None, id).await {
                        Ok(r) if crate::runs::TERMINAL.contains(&r.state.as_str()) => {
                            // One last look: events can land in the same instant the run ends.
                            if crate::runs::events(&pool, id, cursor, 1).await.map(|v| v.is_empty()).unwrap_or(true) { break }
                            continue;
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                    let wait = async { loop { match rx.recv().await { Ok(r) if r == id => return, Ok(_) => {}, Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return, Err(_) => std::future::pending::<()>().await } } };
                    let _ = tokio::time::timeout(Duration::from_secs(1), wait).await;
                }
            }
        })
    }
}
