//! GraphQL: schedules (`schedules`, `schedule`, `cronPreview`; create, update, pause, resume,
//! delete). Editors manage them, viewers read them; every change is in the audit log.
use super::{ctx, parse_id, runs::Run, templates::Template, visible};
use crate::{
    audit,
    error::{ApiError, ApiResult},
    identity::{Principal, Role},
    schedules::{self, Changes, Clock, Concurrency, FireRow, NewSchedule, ScheduleRow},
    state::AppState,
};
use async_graphql::{Context, Enum, MaybeUndefined, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};

/// What a fire does while the schedule's previous run is unfinished.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "ScheduleConcurrency")]
pub enum ConcurrencyPolicy {
    /// Skip the fire (recorded as SKIPPED, naming the unfinished run).
    Forbid,
    /// Start it when the unfinished run ends; one fire waits, later ones are skipped.
    Queue,
    /// Start it anyway.
    Allow,
}

impl From<ConcurrencyPolicy> for Concurrency {
    fn from(c: ConcurrencyPolicy) -> Self {
        match c {
            ConcurrencyPolicy::Forbid => Concurrency::Forbid,
            ConcurrencyPolicy::Queue => Concurrency::Queue,
            ConcurrencyPolicy::Allow => Concurrency::Allow,
        }
    }
}

impl From<Concurrency> for ConcurrencyPolicy {
    fn from(c: Concurrency) -> Self {
        match c {
            Concurrency::Forbid => ConcurrencyPolicy::Forbid,
            Concurrency::Queue => ConcurrencyPolicy::Queue,
            Concurrency::Allow => ConcurrencyPolicy::Allow,
        }
    }
}

/// What became of one fire time.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum FireOutcome {
    /// Its run started (`run`).
    Started,
    /// Its run could not start (`reason`; `run` is the ERROR run recording it).
    Failed,
    /// Not started: the previous run was unfinished (concurrency FORBID, or QUEUE with a fire
    /// already waiting), or the schedule was paused while it waited.
    Skipped,
    /// Waiting for the schedule's unfinished run to end (concurrency QUEUE).
    Queued,
    /// No hub fired it in time (`missedCount` fire times from `dueAt` to `lastDueAt`).
    Missed,
}

impl FireOutcome {
    fn parse(s: &str) -> FireOutcome {
        match s {
            "started" => FireOutcome::Started,
            "skipped" => FireOutcome::Skipped,
            "queued" => FireOutcome::Queued,
            "missed" => FireOutcome::Missed,
            _ => FireOutcome::Failed,
        }
    }
}

pub struct Schedule(pub ScheduleRow);

#[Object]
impl Schedule {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// 5 fields (minute hour day-of-month month day-of-week), 6 with seconds first, or an
    /// alias such as `@hourly`.
    async fn cron(&self) -> &str {
        &self.0.cron
    }
    /// The IANA time zone the expression is read in.
    async fn timezone(&self) -> &str {
        &self.0.timezone
    }
    /// The expression in words (English, best effort).
    async fn description(&self) -> String {
        self.0.clock().map(|c| c.describe()).unwrap_or_default()
    }
    async fn template_id(&self) -> ID {
        ID(self.0.template_id.to_string())
    }
    async fn template(&self, c: &Context<'_>) -> Result<Template> {
        let (s, _) = ctx(c)?;
        Ok(Template(
            crate::templates::get(&s.pool, Some(self.0.project_id), self.0.template_id).await?,
        ))
    }
    /// The delegate name or `k=v` selector each run goes to; none: the template's
    /// `target.delegate`.
    async fn delegate(&self) -> Option<&str> {
        self.0.delegate.as_deref()
    }
    /// The pinned template version; none: the latest version at each fire.
    async fn version(&self) -> Option<i32> {
        self.0.version
    }
    async fn concurrency(&self) -> ConcurrencyPolicy {
        Concurrency::parse(&self.0.concurrency).into()
    }
    /// The largest random delay added to each fire time, in milliseconds.
    async fn jitter_ms(&self) -> i64 {
        self.0.jitter_ms
    }
    /// Whether it fires (false: paused).
    /// Declared in its template's file (`schedule:`) and kept in step by a GitOps sync
    /// (docs/gitops.md): edit the file, not the schedule; the next sync would undo an edit.
    async fn git_managed(&self) -> bool {
        self.0.git_managed
    }
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// When the next fire is due (its cron time plus jitter); none while paused.
    async fn next_fire_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_fire_at
    }
    /// The next `n` (at most 100) fire times by the clock, without jitter; while paused, those
    /// it would have after a resume now.
    async fn next_fires(&self, #[graphql(default = 5)] n: i32) -> Result<Vec<DateTime<Utc>>> {
        let clock = self.0.clock()?;
        let n = n.clamp(0, schedules::MAX_PREVIEW as i32) as usize;
        let mut out = Vec::with_capacity(n);
        let mut from = Utc::now();
        if let Some(first) = self.0.next_due_at {
            if n > 0 {
                out.push(first);
                from = first;
            }
        }
        out.extend(clock.upcoming(from, n - out.len()));
        Ok(out)
    }
    /// The most recent fires, newest first (at most 1,000).
    #[graphql(complexity = "limit.clamp(1, 1000) as usize * child_complexity")]
    async fn fires(
        &self,
        c: &Context<'_>,
        #[graphql(default = 50)] limit: i64,
    ) -> Result<Vec<ScheduleFire>> {
        let (s, _) = ctx(c)?;
        Ok(schedules::fires(&s.pool, self.0.id, limit)
            .await?
            .into_iter()
            .map(|f| ScheduleFire(f, self.0.project_id))
            .collect())
    }
    /// The latest fire, if any.
    async fn last_fire(&self, c: &Context<'_>) -> Result<Option<ScheduleFire>> {
        let (s, _) = ctx(c)?;
        Ok(schedules::fires(&s.pool, self.0.id, 1)
            .await?
            .into_iter()
            .next()
            .map(|f| ScheduleFire(f, self.0.project_id)))
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

pub struct ScheduleFire(pub FireRow, uuid::Uuid);

#[Object]
impl ScheduleFire {
    /// The fire time (the first one, for MISSED).
    async fn due_at(&self) -> DateTime<Utc> {
        self.0.due_at
    }
    /// For MISSED: the last of the fire times recorded together.
    async fn last_due_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_due_at
    }
    /// For MISSED: how many fire times were missed; 1 otherwise.
    async fn missed_count(&self) -> i32 {
        self.0.missed_count
    }
    /// When the hub handled it.
    async fn fired_at(&self) -> DateTime<Utc> {
        self.0.fired_at
    }
    async fn outcome(&self) -> FireOutcome {
        FireOutcome::parse(&self.0.outcome)
    }
    /// Why it was skipped, failed, queued or missed.
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    async fn run_id(&self) -> Option<ID> {
        self.0.run_id.map(|r| ID(r.to_string()))
    }
    /// The run it started (or the ERROR run recording why it could not).
    async fn run(&self, c: &Context<'_>) -> Result<Option<Run>> {
        let (s, _) = ctx(c)?;
        match self.0.run_id {
            None => Ok(None),
            Some(id) => Ok(Some(
                Run(crate::runs::get(&s.pool, Some(self.1), id).await?),
            )),
        }
    }
}

/// A cron expression checked and previewed (the dashboard's cron helper).
#[derive(SimpleObject)]
pub struct CronPreview {
    /// The expression in words (English, best effort).
    pub description: String,
    /// The zone's canonical name.
    pub timezone: String,
    pub next_fires: Vec<DateTime<Utc>>,
}

async fn readable(
    s: &AppState,
    p: &Principal,
    id: &ID,
    need: Role,
) -> Result<ScheduleRow, ApiError> {
    let id = parse_id("id", id)?;
    let row = schedules::get(&s.pool, id).await?;
    p.require_on(&s.pool, row.project_id, need, &format!("schedule {id}"))
        .await?;
    Ok(row)
}

#[derive(Default)]
pub struct ScheduleQuery;

#[Object]
impl ScheduleQuery {
    /// Schedules of one project, or of every project the caller can read; optionally only
    /// those of one template.
    async fn schedules(
        &self,
        c: &Context<'_>,
        project: Option<String>,
        template_id: Option<ID>,
    ) -> Result<Vec<Schedule>> {
        let (s, p) = ctx(c)?;
        let scope = visible(s, p, project.as_deref()).await?;
        let template = template_id
            .map(|t| parse_id("templateId", &t))
            .transpose()?;
        Ok(schedules::list(&s.pool, scope.as_deref(), template)
            .await?
            .into_iter()
            .map(Schedule)
            .collect())
    }

    async fn schedule(&self, c: &Context<'_>, id: ID) -> Result<Schedule> {
        let (s, p) = ctx(c)?;
        Ok(Schedule(readable(s, p, &id, Role::Viewer).await?))
    }

    /// Checks a cron expression in a time zone and lists its next `n` (at most 100) fire times;
    /// a bad expression or zone is refused naming `cron` or `timezone` and why.
    async fn cron_preview(
        &self,
        c: &Context<'_>,
        cron: String,
        #[graphql(default = "UTC")] timezone: String,
        #[graphql(default = 5)] n: i32,
    ) -> Result<CronPreview> {
        ctx(c)?;
        let clock = Clock::parse(&cron, &timezone)?;
        Ok(CronPreview {
            description: clock.describe(),
            timezone: clock.timezone().name().to_string(),
            next_fires: clock.upcoming(Utc::now(), n.clamp(0, 100) as usize),
        })
    }
}

#[derive(Default)]
pub struct ScheduleMutation;

fn detail(row: &ScheduleRow) -> serde_json::Map<String, serde_json::Value> {
    let v = serde_json::json!({
        "name": row.name,
        "template": row.template_id.to_string(),
        "cron": row.cron,
        "timezone": row.timezone,
        "delegate": row.delegate,
        "version": row.version,
        "concurrency": row.concurrency,
        "jitterMs": row.jitter_ms,
        "enabled": row.enabled,
    });
    match v {
        serde_json::Value::Object(m) => m,
        _ => unreachable!(),
    }
}

async fn audited(
    s: &AppState,
    p: &Principal,
    project: uuid::Uuid,
    action: &str,
    target: String,
    res: ApiResult<ScheduleRow>,
) -> Result<Schedule> {
    let d = res.as_ref().map(detail).unwrap_or_default();
    audit::record_detail(&s.pool, p, Some(project), action, target, &res, d).await;
    Ok(Schedule(res?))
}

fn jitter(j: Option<String>) -> ApiResult<Option<i64>> {
    j.map(|j| schedules::parse_jitter(&j)).transpose()
}

#[Object]
impl ScheduleMutation {
    /// Creates a schedule (editors): runs of a template (`templateId`, or `template`: a name in
    /// `project`) on a cron clock in an IANA time zone, on a delegate (a name or `k=v`
    /// selector; default: the template's `target.delegate`), at a pinned `version` or the
    /// latest at each fire. `jitter` (e.g. `30s`, at most 24h) delays each fire by a random
    /// amount up to it. `name` defaults to the template's name and the expression.
    #[allow(clippy::too_many_arguments)]
    async fn create_schedule(
        &self,
        c: &Context<'_>,
        project: Option<String>,
        template_id: Option<ID>,
        template: Option<String>,
        name: Option<String>,
        cron: String,
        #[graphql(default = "UTC")] timezone: String,
        delegate: Option<String>,
        version: Option<i32>,
        #[graphql(default_with = "ConcurrencyPolicy::Forbid")] concurrency: ConcurrencyPolicy,
        jitter: Option<String>,
        #[graphql(default = true)] enabled: bool,
    ) -> Result<Schedule> {
        let (s, p) = ctx(c)?;
        let t = super::runs::template_to_start(s, p, template_id, template, project).await?;
        let res = async {
            let jitter_ms = self::jitter(jitter)?.unwrap_or(0);
            let name = name
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| format!("{} {}", t.name, cron.trim()));
            schedules::create(
                &s.pool,
                NewSchedule {
                    project: t.project_id,
                    template: t.id,
                    name,
                    cron,
                    timezone,
                    delegate,
                    version,
                    concurrency: concurrency.into(),
                    jitter_ms,
                    enabled,
                    actor: p.actor(),
                },
            )
            .await
        }
        .await;
        let target = res
            .as_ref()
            .map(|r| r.id.to_string())
            .unwrap_or_else(|_| t.id.to_string());
        audited(s, p, t.project_id, "schedule.create", target, res).await
    }

    /// Changes a schedule (editors). Omitted arguments stay as they are; `delegate: null` goes
    /// back to the template's `target.delegate`, `version: null` to the latest version. A new
    /// clock (cron, time zone or jitter) restarts from its next fire time after now.
    #[allow(clippy::too_many_arguments)]
    async fn update_schedule(
        &self,
        c: &Context<'_>,
        id: ID,
        name: Option<String>,
        cron: Option<String>,
        timezone: Option<String>,
        delegate: MaybeUndefined<String>,
        version: MaybeUndefined<i32>,
        concurrency: Option<ConcurrencyPolicy>,
        jitter: Option<String>,
    ) -> Result<Schedule> {
        let (s, p) = ctx(c)?;
        let cur = readable(s, p, &id, Role::Editor).await?;
        let res = async {
            let changes = Changes {
                name,
                cron,
                timezone,
                delegate: match delegate {
                    MaybeUndefined::Undefined => None,
                    MaybeUndefined::Null => Some(None),
                    MaybeUndefined::Value(d) => Some(Some(d)),
                },
                version: match version {
                    MaybeUndefined::Undefined => None,
                    MaybeUndefined::Null => Some(None),
                    MaybeUndefined::Value(v) => Some(Some(v)),
                },
                concurrency: concurrency.map(Into::into),
                jitter_ms: self::jitter(jitter)?,
            };
            schedules::update(&s.pool, cur.id, changes).await
        }
        .await;
        audited(
            s,
            p,
            cur.project_id,
            "schedule.update",
            cur.id.to_string(),
            res,
        )
        .await
    }

    /// Stops a schedule firing (editors); a fire waiting under QUEUE is dropped.
    async fn pause_schedule(&self, c: &Context<'_>, id: ID) -> Result<Schedule> {
        let (s, p) = ctx(c)?;
        let cur = readable(s, p, &id, Role::Editor).await?;
        let res = schedules::pause(&s.pool, cur.id).await;
        audited(
            s,
            p,
            cur.project_id,
            "schedule.pause",
            cur.id.to_string(),
            res,
        )
        .await
    }

    /// Starts a paused schedule again from its next fire time after now (editors); fires that
    /// fell while it was paused are not made up.
    async fn resume_schedule(&self, c: &Context<'_>, id: ID) -> Result<Schedule> {
        let (s, p) = ctx(c)?;
        let cur = readable(s, p, &id, Role::Editor).await?;
        let res = schedules::resume(&s.pool, cur.id).await;
        audited(
            s,
            p,
            cur.project_id,
            "schedule.resume",
            cur.id.to_string(),
            res,
        )
        .await
    }

    /// Deletes a schedule and its fire history (editors); the runs it started stay.
    async fn delete_schedule(&self, c: &Context<'_>, id: ID) -> Result<bool> {
        let (s, p) = ctx(c)?;
        let cur = readable(s, p, &id, Role::Editor).await?;
        let res = schedules::delete(&s.pool, cur.id).await;
        audit::record_detail(
            &s.pool,
            p,
            Some(cur.project_id),
            "schedule.delete",
            cur.id.to_string(),
            &res,
            detail(&cur),
        )
        .await;
        res?;
        Ok(true)
    }
}
