//! Schedules: a template run on a cron clock in an IANA time zone (storage, the clock, the
//! history of fires). Firing lives in `scheduler.rs`; docs/schedules.md says how fires behave
//! over DST changes, under each concurrency policy and after the hubs were down.
use crate::error::{ApiError, ApiResult};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::{
    parser::{CronParser, Seconds, Year},
    Cron,
};
use faultline_experiment::Dur;
use rand::Rng;
use sqlx::{PgExecutor, PgPool};
use std::time::Duration;
use uuid::Uuid;

/// The largest jitter a schedule may add to each fire.
pub const MAX_JITTER: Duration = Duration::from_secs(24 * 3600);
/// The most fire times `nextFires` lists.
pub const MAX_PREVIEW: usize = 100;

/// What a fire does while the schedule's previous run is unfinished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Concurrency {
    /// Skip the fire (recorded as `skipped` with the unfinished run).
    Forbid,
    /// Start it when the unfinished run ends (one fire waits; later ones are skipped).
    Queue,
    /// Start it anyway.
    Allow,
}

impl Concurrency {
    pub fn as_str(self) -> &'static str {
        match self {
            Concurrency::Forbid => "forbid",
            Concurrency::Queue => "queue",
            Concurrency::Allow => "allow",
        }
    }

    pub fn parse(s: &str) -> Concurrency {
        match s {
            "queue" => Concurrency::Queue,
            "allow" => Concurrency::Allow,
            _ => Concurrency::Forbid,
        }
    }
}

/// A parsed cron expression in its time zone.
#[derive(Clone, Debug)]
pub struct Clock {
    cron: Cron,
    tz: Tz,
}

impl Clock {
    /// Parses `cron` (5 fields, 6 with seconds first, or `@hourly`-style aliases) in the IANA
    /// zone `timezone`; refuses an expression that never fires.
    pub fn parse(cron: &str, timezone: &str) -> ApiResult<Clock> {
        let tz: Tz = timezone.trim().parse().map_err(|_| {
            ApiError::bad(
                "timezone",
                format!(
                    "{timezone:?} is not an IANA time zone name (for example UTC, Europe/Berlin, America/New_York)"
                ),
            )
        })?;
        let text = cron.trim();
        if text.is_empty() {
            return Err(ApiError::bad("cron", "empty: give 5 fields (minute hour day-of-month month day-of-week), 6 with seconds first, or an alias such as @hourly"));
        }
        let fields = text.split_whitespace().count();
        if !text.starts_with('@') && !(5..=6).contains(&fields) {
            return Err(ApiError::bad(
                "cron",
                format!("{fields} fields: give 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)"),
            ));
        }
        let parsed = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(text)
            .map_err(|e| ApiError::bad("cron", format!("{text:?}: {e}")))?;
        let clock = Clock { cron: parsed, tz };
        if clock.next_after(Utc::now()).is_none() {
            return Err(ApiError::bad(
                "cron",
                format!("{text:?} never fires (no such date)"),
            ));
        }
        Ok(clock)
    }

    /// The first fire time strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&self.tz), false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The next `n` fire times strictly after `t`.
    pub fn upcoming(&self, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n.min(MAX_PREVIEW));
        let mut at = t;
        while out.len() < n.min(MAX_PREVIEW) {
            match self.next_after(at) {
                Some(d) => {
                    out.push(d);
                    at = d;
                }
                None => break,
            }
        }
        out
    }

    /// A best-effort English description of the expression.
    pub fn describe(&self) -> String {
        self.cron.describe()
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }
}

/// A fire time plus a random delay of at most `jitter`.
pub fn jittered(due: DateTime<Utc>, jitter_ms: i64) -> DateTime<Utc> {
    if jitter_ms <= 0 {
        return due;
    }
    due + chrono::Duration::milliseconds(rand::rng().random_range(0..=jitter_ms))
}

pub fn parse_jitter(s: &str) -> ApiResult<i64> {
    let d: Dur = s
        .trim()
        .parse()
        .map_err(|e| ApiError::bad("jitter", format!("{s:?}: {e}")))?;
    if d.0 > MAX_JITTER {
        return Err(ApiError::bad("jitter", "at most 24h"));
    }
    Ok(d.0.as_millis() as i64)
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ScheduleRow {
    pub id: Uuid,
    pub project_id: Uuid,
    pub template_id: Uuid,
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub delegate: Option<String>,
    pub version: Option<i32>,
    pub concurrency: String,
    pub jitter_ms: i64,
    pub enabled: bool,
    pub next_due_at: Option<DateTime<Utc>>,
    pub next_fire_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Declared in its template's file and kept in step by a sync (docs/gitops.md).
    pub git_managed: bool,
}

impl ScheduleRow {
    /// The stored expression and zone passed `Clock::parse` when they were written.
    pub fn clock(&self) -> ApiResult<Clock> {
        Clock::parse(&self.cron, &self.timezone)
    }
}

pub const COLUMNS: &str =
    "id, project_id, template_id, name, cron, timezone, delegate, version, concurrency, \
    jitter_ms, enabled, next_due_at, next_fire_at, created_by, created_at, updated_at, git_managed";

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct FireRow {
    pub id: i64,
    pub schedule_id: Uuid,
    pub due_at: DateTime<Utc>,
    pub last_due_at: Option<DateTime<Utc>>,
    pub missed_count: i32,
    pub fired_at: DateTime<Utc>,
    pub outcome: String,
    pub reason: Option<String>,
    pub run_id: Option<Uuid>,
}

pub const FIRE_COLUMNS: &str =
    "id, schedule_id, due_at, last_due_at, missed_count, fired_at, outcome, reason, run_id";

/// A new schedule, checked by `create`.
#[derive(Clone, Debug)]
pub struct NewSchedule {
    pub project: Uuid,
    pub template: Uuid,
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub delegate: Option<String>,
    pub version: Option<i32>,
    pub concurrency: Concurrency,
    pub jitter_ms: i64,
    pub enabled: bool,
    pub actor: String,
}

/// Changes to a schedule; `None` leaves a field as it is (`Some(None)` clears a nullable one).
#[derive(Clone, Debug, Default)]
pub struct Changes {
    pub name: Option<String>,
    pub cron: Option<String>,
    pub timezone: Option<String>,
    pub delegate: Option<Option<String>>,
    pub version: Option<Option<i32>>,
    pub concurrency: Option<Concurrency>,
    pub jitter_ms: Option<i64>,
}

fn check_name(name: &str) -> ApiResult<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 200 || n.chars().any(char::is_control) {
        return Err(ApiError::bad("name", "give 1 to 200 printable characters"));
    }
    Ok(n.to_string())
}

async fn check_version(pool: &PgPool, template: Uuid, version: Option<i32>) -> ApiResult<()> {
    if let Some(v) = version {
        crate::templates::version_yaml(pool, template, v).await?;
    }
    Ok(())
}

fn clean_delegate(d: Option<String>) -> Option<String> {
    d.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn unique_name(e: sqlx::Error, name: &str) -> ApiError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => ApiError::bad(
            "name",
            format!("the project already has a schedule named {name:?}"),
        ),
        _ => e.into(),
    }
}

pub async fn create(pool: &PgPool, s: NewSchedule) -> ApiResult<ScheduleRow> {
    let clock = Clock::parse(&s.cron, &s.timezone)?;
    let name = check_name(&s.name)?;
    check_version(pool, s.template, s.version).await?;
    let (due, fire) = if s.enabled {
        let due = clock.next_after(Utc::now());
        (due, due.map(|d| jittered(d, s.jitter_ms)))
    } else {
        (None, None)
    };
    let mut tx = pool.begin().await?;
    let row = sqlx::query_as::<_, ScheduleRow>(&format!(
        "INSERT INTO schedules (id, project_id, template_id, name, cron, timezone, delegate, version, concurrency, jitter_ms, \
           enabled, next_due_at, next_fire_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(s.project)
    .bind(s.template)
    .bind(&name)
    .bind(s.cron.trim())
    .bind(clock.timezone().name())
    .bind(clean_delegate(s.delegate))
    .bind(s.version)
    .bind(s.concurrency.as_str())
    .bind(s.jitter_ms)
    .bind(s.enabled)
    .bind(due)
    .bind(fire)
    .bind(&s.actor)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| unique_name(e, &name))?;
    wake(&mut *tx, row.id).await?;
    tx.commit().await?;
    Ok(row)
}

/// Applies `c`; a changed clock or jitter restarts the schedule from its next fire after now.
pub async fn update(pool: &PgPool, id: Uuid, c: Changes) -> ApiResult<ScheduleRow> {
    let mut tx = pool.begin().await?;
    let cur = sqlx::query_as::<_, ScheduleRow>(&format!(
        "SELECT {COLUMNS} FROM schedules WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("schedule {id}")))?;
    let cron = c.cron.unwrap_or(cur.cron.clone());
    let timezone = c.timezone.unwrap_or(cur.timezone.clone());
    let clock = Clock::parse(&cron, &timezone)?;
    let name = check_name(c.name.as_deref().unwrap_or(&cur.name))?;
    let version = c.version.unwrap_or(cur.version);
    check_version(pool, cur.template_id, version).await?;
    let jitter_ms = c.jitter_ms.unwrap_or(cur.jitter_ms);
    let delegate = clean_delegate(c.delegate.unwrap_or(cur.delegate.clone()));
    let reclock = cron.trim() != cur.cron
        || clock.timezone().name() != cur.timezone
        || jitter_ms != cur.jitter_ms;
    let (due, fire) = if !cur.enabled {
        (None, None)
    } else if reclock {
        let due = clock.next_after(Utc::now());
        (due, due.map(|d| jittered(d, jitter_ms)))
    } else {
        (cur.next_due_at, cur.next_fire_at)
    };
    let row = sqlx::query_as::<_, ScheduleRow>(&format!(
        "UPDATE schedules SET name = $2, cron = $3, timezone = $4, delegate = $5, version = $6, concurrency = $7, \
           jitter_ms = $8, next_due_at = $9, next_fire_at = $10, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(&name)
    .bind(cron.trim())
    .bind(clock.timezone().name())
    .bind(delegate)
    .bind(version)
    .bind(c.concurrency.map(Concurrency::as_str).unwrap_or(&cur.concurrency))
    .bind(jitter_ms)
    .bind(due)
    .bind(fire)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| unique_name(e, &name))?;
    wake(&mut *tx, id).await?;
    tx.commit().await?;
    Ok(row)
}

/// Stops firing. A fire waiting under `queue` is dropped (recorded as skipped).
pub async fn pause(pool: &PgPool, id: Uuid) -> ApiResult<ScheduleRow> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query_as::<_, ScheduleRow>(&format!(
        "UPDATE schedules SET enabled = false, next_due_at = NULL, next_fire_at = NULL, updated_at = now() \
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("schedule {id}")))?;
    sqlx::query(
        "UPDATE schedule_fires SET outcome = 'skipped', reason = 'the schedule was paused while this fire waited' \
         WHERE schedule_id = $1 AND outcome = 'queued'",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// Starts firing again from the next fire time after now (fires while paused are not made up).
/// Resuming a running schedule changes nothing.
pub async fn resume(pool: &PgPool, id: Uuid) -> ApiResult<ScheduleRow> {
    let mut tx = pool.begin().await?;
    let cur = sqlx::query_as::<_, ScheduleRow>(&format!(
        "SELECT {COLUMNS} FROM schedules WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("schedule {id}")))?;
    if cur.enabled {
        tx.commit().await?;
        return Ok(cur);
    }
    let due = cur.clock()?.next_after(Utc::now());
    let row = sqlx::query_as::<_, ScheduleRow>(&format!(
        "UPDATE schedules SET enabled = true, next_due_at = $2, next_fire_at = $3, updated_at = now() \
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(due)
    .bind(due.map(|d| jittered(d, cur.jitter_ms)))
    .fetch_one(&mut *tx)
    .await?;
    wake(&mut *tx, id).await?;
    tx.commit().await?;
    Ok(row)
}

/// Deletes the schedule and its history; its runs stay (no longer linked).
pub async fn delete(pool: &PgPool, id: Uuid) -> ApiResult<()> {
    let n = sqlx::query("DELETE FROM schedules WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(ApiError::NotFound(format!("schedule {id}")));
    }
    Ok(())
}

pub async fn get(pool: &PgPool, id: Uuid) -> ApiResult<ScheduleRow> {
    sqlx::query_as::<_, ScheduleRow>(&format!("SELECT {COLUMNS} FROM schedules WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("schedule {id}")))
}

/// Schedules of the `scope` projects (`None`: all), optionally of one template, by name.
pub async fn list(
    pool: &PgPool,
    scope: Option<&[Uuid]>,
    template: Option<Uuid>,
) -> ApiResult<Vec<ScheduleRow>> {
    Ok(sqlx::query_as::<_, ScheduleRow>(&format!(
        "SELECT {COLUMNS} FROM schedules WHERE ($1::uuid[] IS NULL OR project_id = ANY($1)) \
           AND ($2::uuid IS NULL OR template_id = $2) ORDER BY name LIMIT 1000"
    ))
    .bind(scope)
    .bind(template)
    .fetch_all(pool)
    .await?)
}

/// The schedule's most recent fires, newest first.
pub async fn fires(pool: &PgPool, id: Uuid, limit: i64) -> ApiResult<Vec<FireRow>> {
    Ok(sqlx::query_as::<_, FireRow>(&format!(
        "SELECT {FIRE_COLUMNS} FROM schedule_fires WHERE schedule_id = $1 ORDER BY due_at DESC LIMIT $2"
    ))
    .bind(id)
    .bind(limit.clamp(1, 1000))
    .fetch_all(pool)
    .await?)
}

/// The most recent fire of each of `ids`.
pub async fn last_fires(pool: &PgPool, ids: &[Uuid]) -> ApiResult<Vec<FireRow>> {
    Ok(sqlx::query_as::<_, FireRow>(&format!(
        "SELECT DISTINCT ON (schedule_id) {FIRE_COLUMNS} FROM schedule_fires WHERE schedule_id = ANY($1) \
         ORDER BY schedule_id, due_at DESC"
    ))
    .bind(ids)
    .fetch_all(pool)
    .await?)
}

pub const CHANNEL: &str = "faultline_schedules";

/// Wakes every replica's scheduler: a schedule's next fire time changed.
pub async fn wake<'e>(exec: impl PgExecutor<'e>, id: Uuid) -> sqlx::Result<()> {
    crate::notify::notify(exec, CHANNEL, id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn five_and_six_fields_and_aliases() {
        let c = Clock::parse("*/15 * * * *", "UTC").unwrap();
        assert_eq!(
            c.next_after(utc("2026-03-01T10:07:00Z")),
            Some(utc("2026-03-01T10:15:00Z"))
        );
        let c = Clock::parse("30 * * * * *", "UTC").unwrap();
        assert_eq!(
            c.next_after(utc("2026-03-01T10:07:00Z")),
            Some(utc("2026-03-01T10:07:30Z"))
        );
        let c = Clock::parse("@hourly", "UTC").unwrap();
        assert_eq!(
            c.next_after(utc("2026-03-01T10:07:00Z")),
            Some(utc("2026-03-01T11:00:00Z"))
        );
        let c = Clock::parse("0 9 * * MON-FRI", "Europe/Berlin").unwrap();
        // Saturday 7 March → Monday 9 March, 09:00 CET = 08:00 UTC.
        assert_eq!(
            c.next_after(utc("2026-03-07T12:00:00Z")),
            Some(utc("2026-03-09T08:00:00Z"))
        );
    }

    #[test]
    fn bad_expressions_and_zones_name_the_field() {
        for (cron, tz, field, says) in [
            ("* * *", "UTC", "cron", "3 fields"),
            ("0 0 0 1 1 * 2030", "UTC", "cron", "7 fields"),
            ("61 * * * *", "UTC", "cron", "61"),
            ("0 0 30 2 *", "UTC", "cron", "never fires"),
            ("", "UTC", "cron", "empty"),
            ("@fortnightly", "UTC", "cron", "fortnightly"),
            ("0 * * * *", "Mars/Olympus", "timezone", "IANA"),
        ] {
            match Clock::parse(cron, tz) {
                Err(ApiError::BadInput { field: f, message }) => {
                    assert_eq!(f, field, "{cron} {tz}: {message}");
                    assert!(
                        message.to_lowercase().contains(&says.to_lowercase()),
                        "{cron} {tz}: {message}"
                    );
                }
                other => panic!("{cron} {tz}: {other:?}"),
            }
        }
    }

    /// Spring forward (Europe/Berlin, 29 March 2026: 02:00 CET → 03:00 CEST): 02:30 does not
    /// exist that day; the fire happens once, at 03:00 CEST (01:00 UTC), and the next day at
    /// 02:30 CEST again.
    #[test]
    fn spring_forward_fires_once_after_the_gap() {
        let c = Clock::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let fires = c.upcoming(utc("2026-03-28T12:00:00Z"), 3);
        assert_eq!(
            fires,
            vec![
                utc("2026-03-29T01:00:00Z"),
                utc("2026-03-30T00:30:00Z"),
                utc("2026-03-31T00:30:00Z"),
            ]
        );
    }

    /// Fall back (Europe/Berlin, 25 October 2026: 03:00 CEST → 02:00 CET): 02:30 happens twice;
    /// a fixed-time schedule fires once, at the first 02:30 (CEST, 00:30 UTC). In America/New_York
    /// (1 November 2026) the repeated hour is 01:00–02:00: 01:30 fires once, at 01:30 EDT.
    #[test]
    fn fall_back_fires_once() {
        let c = Clock::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let fires = c.upcoming(utc("2026-10-24T12:00:00Z"), 3);
        assert_eq!(
            fires,
            vec![
                utc("2026-10-25T00:30:00Z"),
                utc("2026-10-26T01:30:00Z"),
                utc("2026-10-27T01:30:00Z"),
            ]
        );
        let c = Clock::parse("30 1 * * *", "America/New_York").unwrap();
        let fires = c.upcoming(utc("2026-10-31T12:00:00Z"), 2);
        assert_eq!(
            fires,
            vec![utc("2026-11-01T05:30:00Z"), utc("2026-11-02T06:30:00Z")]
        );
    }

    /// An interval schedule keeps its real-time rhythm over the repeated hour: every 30 min
    /// fires in both passes of 01:00–02:00 in New York (4 fires in that wall-clock hour).
    #[test]
    fn interval_schedules_follow_real_time_over_fall_back() {
        let c = Clock::parse("*/30 * * * *", "America/New_York").unwrap();
        let from = utc("2026-11-01T04:45:00Z"); // 00:45 EDT
        let fires = c.upcoming(from, 5);
        let ny = chrono_tz::America::New_York;
        let wall: Vec<String> = fires
            .iter()
            .map(|d| d.with_timezone(&ny).format("%H:%M %Z").to_string())
            .collect();
        assert_eq!(
            wall,
            [
                "01:00 EDT",
                "01:30 EDT",
                "01:00 EST",
                "01:30 EST",
                "02:00 EST"
            ]
        );
    }

    #[test]
    fn jitter_is_bounded() {
        assert_eq!(parse_jitter("0s").unwrap(), 0);
        assert_eq!(parse_jitter("1m30s").unwrap(), 90_000);
        assert!(
            matches!(parse_jitter("25h"), Err(ApiError::BadInput { field, .. }) if field == "jitter")
        );
        assert!(
            matches!(parse_jitter("soon"), Err(ApiError::BadInput { field, .. }) if field == "jitter")
        );
        let due = utc("2026-01-01T00:00:00Z");
        for _ in 0..100 {
            let j = jittered(due, 5_000);
            assert!(j >= due && j <= due + chrono::Duration::seconds(5));
        }
    }
}
