//! Retention: the events and probe checks of runs that ended longer ago than `--retain-events`
//! (or their project's `--retain-events-project NAME=DUR`) are deleted, in batches of at most
//! `--retain-batch` rows, each its own short statement, so ingest is never blocked behind them.
//! The run's summary stays: verdict, score, tallies (`checks_ok`, `checks_failed`), recovery,
//! latency verdict; `events_pruned_at` records when its events went.
//!
//! Every replica runs it; a transaction-scoped advisory lock lets one at a time work a round.
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

/// Where this replica's retention stands.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// How long events of ended runs are kept (`None`: forever, unless their project says).
    pub keep: Option<Duration>,
    /// Per-project overrides: (project name, how long).
    pub projects: Vec<(String, Duration)>,
    /// Rows deleted per statement.
    pub batch: i64,
    /// Pause between rounds.
    pub every: Duration,
}

impl Settings {
    pub fn enabled(&self) -> bool {
        self.keep.is_some() || !self.projects.is_empty()
    }
}

/// What one round deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub runs: u64,
    pub events: u64,
    pub checks: u64,
}

/// The advisory lock key of the retention round (any constant unique to it).
const LOCK: i64 = 0x6661_756c_7472_6574; // "faultret"

/// Prunes up to `max_runs` runs that are due, oldest first; returns what was deleted. Returns
/// nothing when another replica holds the round.
pub async fn prune(pool: &PgPool, s: &Settings, max_runs: i64) -> sqlx::Result<Pruned> {
    let mut done = Pruned::default();
    let mut lock = pool.begin().await?;
    let (mine,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_xact_lock($1)")
        .bind(LOCK)
        .fetch_one(&mut *lock)
        .await?;
    if !mine {
        return Ok(done);
    }
    let names: Vec<&str> = s.projects.iter().map(|p| p.0.as_str()).collect();
    let secs: Vec<f64> = s.projects.iter().map(|p| p.1.as_secs_f64()).collect();
    let due: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT r.id FROM runs r JOIN projects p ON p.id = r.project_id \
         LEFT JOIN UNNEST($1::text[], $2::float8[]) AS o(name, secs) ON o.name = p.name \
         WHERE r.events_pruned_at IS NULL AND r.ended_at IS NOT NULL \
           AND r.ended_at < now() - make_interval(secs => COALESCE(o.secs, $3)) \
         ORDER BY r.ended_at LIMIT $4",
    )
    .bind(&names)
    .bind(&secs)
    .bind(s.keep.map(|k| k.as_secs_f64()))
    .bind(max_runs)
    .fetch_all(&mut *lock)
    .await?;
    for (run,) in due {
        let (events, checks) = delete_in_batches(pool, run, s.batch).await?;
        done.events += events;
        done.checks += checks;
        sqlx::query("UPDATE runs SET events_pruned_at = now() WHERE id = $1")
            .bind(run)
            .execute(pool)
            .await?;
        done.runs += 1;
    }
    lock.commit().await?;
    Ok(done)
}

/// Deletes the events of `run` (its checks among them), `batch` at a time; returns how many
/// events, and how many of them were checks.
async fn delete_in_batches(pool: &PgPool, run: Uuid, batch: i64) -> sqlx::Result<(u64, u64)> {
    let (mut events, mut checks) = (0, 0);
    loop {
        let (n, c): (i64, i64) = sqlx::query_as(
            "WITH d AS (DELETE FROM run_events WHERE run_id = $1 AND seq IN \
               (SELECT seq FROM run_events WHERE run_id = $1 ORDER BY seq LIMIT $2) RETURNING check_ok) \
             SELECT count(*), count(check_ok) FROM d",
        )
        .bind(run)
        .bind(batch)
        .fetch_one(pool)
        .await?;
        events += n as u64;
        checks += c as u64;
        if n < batch {
            return Ok((events, checks));
        }
        tokio::task::yield_now().await;
    }
}

/// Prunes every `s.every` until `stop`.
pub async fn run(pool: PgPool, s: Settings, mut stop: tokio::sync::watch::Receiver<bool>) {
    if !s.enabled() {
        return;
    }
    let mut tick = tokio::time::interval(s.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        // Rounds of 100 runs until nothing is due, so a backlog drains without a long pause.
        loop {
            match prune(&pool, &s, 100).await {
                Ok(p) if p.runs > 0 => {
                    tracing::info!(
                        runs = p.runs,
                        events = p.events,
                        checks = p.checks,
                        "retention deleted old events"
                    );
                    if *stop.borrow() {
                        return;
                    }
                }
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "retention round failed");
                    break;
                }
            }
        }
    }
}

/// Parses `--retain-events-project` values: `NAME=DUR`.
pub fn parse_project(s: &str) -> Result<(String, Duration), String> {
    let (name, d) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: write it as PROJECT=DURATION, e.g. payments=30d"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("{s:?}: the project name is empty"));
    }
    let d: faultline_experiment::Dur = d.parse()?;
    Ok((name.to_string(), d.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_overrides_parse_and_name_the_problem() {
        assert_eq!(
            parse_project("payments=30d").unwrap(),
            ("payments".into(), Duration::from_secs(30 * 86400))
        );
        assert!(parse_project("payments")
            .unwrap_err()
            .contains("PROJECT=DURATION"));
        assert!(parse_project("=30d").unwrap_err().contains("empty"));
        assert!(parse_project("p=soon")
            .unwrap_err()
            .contains("invalid duration"));
    }
}
