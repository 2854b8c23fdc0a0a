//! The outbox's claims and records. A due delivery is claimed by one replica at a time: the claim
//! takes the row under `FOR UPDATE SKIP LOCKED`, counts the attempt and sets a lease longer than
//! one attempt can take; the record of the attempt clears the lease and schedules the next one.
//! A replica that dies mid-attempt leaves the lease to expire, and any replica (or itself after a
//! restart) tries again, so a pending delivery is never lost; a receiver may then see the same
//! delivery id twice (at-least-once, see docs/notifications.md).
use super::{formats::Event, Format, Settings};
use chrono::{DateTime, Utc};
use rand::Rng;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

/// The longest wait between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(6 * 3600);

/// One attempt to make, with what it needs.
pub struct Claimed {
    pub delivery: Uuid,
    pub webhook: Uuid,
    /// This attempt's number, from 1.
    pub attempt: i32,
    pub created_at: DateTime<Utc>,
    pub url: String,
    pub format: Format,
    /// As stored: sealed when the hub has a `--secret-key` (see `secretbox.rs`).
    pub secret: String,
    pub event: Event,
}

#[derive(sqlx::FromRow)]
struct ClaimRow {
    id: Uuid,
    webhook_id: Uuid,
    attempts: i32,
    created_at: DateTime<Utc>,
    url: String,
    format: String,
    secret: String,
    event_id: Uuid,
    kind: String,
    at: DateTime<Utc>,
    project: String,
    data: serde_json::Value,
}

/// Claims up to `limit` due deliveries of enabled webhooks for `lease`.
pub async fn claim(pool: &PgPool, limit: i64, lease: Duration) -> sqlx::Result<Vec<Claimed>> {
    let rows: Vec<ClaimRow> = sqlx::query_as(
        "WITH due AS ( \
           SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
           WHERE d.state = 'pending' AND d.next_attempt_at <= now() AND w.enabled \
             AND (d.lease_until IS NULL OR d.lease_until < now()) \
           ORDER BY d.next_attempt_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED) \
         UPDATE webhook_deliveries d SET attempts = d.attempts + 1, \
           lease_until = clock_timestamp() + make_interval(secs => $2) \
         FROM due, webhooks w, webhook_events e, projects p \
         WHERE d.id = due.id AND w.id = d.webhook_id AND e.id = d.event_id AND p.id = e.project_id \
         RETURNING d.id, w.id AS webhook_id, d.attempts, d.created_at, w.url, w.format, w.secret, e.id AS event_id, e.kind, \
           e.at, p.name AS project, e.data",
    )
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Claimed {
            delivery: r.id,
            webhook: r.webhook_id,
            attempt: r.attempts,
            created_at: r.created_at,
            url: r.url,
            format: Format::parse(&r.format),
            secret: r.secret,
            event: Event {
                id: r.event_id,
                kind: r.kind,
                at: r.at,
                project: r.project,
                data: r.data,
            },
        })
        .collect())
}

/// How long until the next delivery may be due (`None`: nothing is pending).
pub async fn next_due(pool: &PgPool) -> sqlx::Result<Option<Duration>> {
    let (secs,): (Option<f64>,) = sqlx::query_as(
        "SELECT EXTRACT(EPOCH FROM min(GREATEST(d.next_attempt_at, COALESCE(d.lease_until, d.next_attempt_at))) - now())::float8 \
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.state = 'pending' AND w.enabled",
    )
    .fetch_one(pool)
    .await?;
    Ok(secs.map(|s| Duration::from_secs_f64(s.max(0.0))))
}

/// How long the history of events, deliveries and attempts is kept.
pub const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Deletes events older than `older_than` with their deliveries and attempts, unless one of
/// their deliveries is still pending. Any replica may run it; it is idempotent.
pub async fn prune(pool: &PgPool, older_than: Duration) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "DELETE FROM webhook_events e WHERE e.at < now() - make_interval(secs => $1) \
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.state = 'pending')",
    )
    .bind(older_than.as_secs_f64())
    .execute(pool)
    .await?
    .rows_affected())
}

/// What one attempt got.
pub struct Outcome {
    pub at: DateTime<Utc>,
    /// The HTTP status, when a response came.
    pub status: Option<u16>,
    pub latency: Duration,
    /// The response body's first KiB.
    pub response: Option<String>,
    pub error: Option<String>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// When to try again after attempt `attempt` failed at `now`, or `None` to give up.
pub fn retry_at(
    attempt: i32,
    now: DateTime<Utc>,
    created: DateTime<Utc>,
    s: &Settings,
) -> Option<DateTime<Utc>> {
    if attempt.max(0) as u32 >= s.max_attempts {
        return None;
    }
    let exp = 3f64.powi((attempt - 1).clamp(0, 30));
    let delay = (s.retry_base.as_secs_f64() * exp).min(MAX_DELAY.as_secs_f64());
    let jittered = delay * rand::rng().random_range(0.75..1.25);
    let at = now + chrono::Duration::milliseconds((jittered * 1000.0) as i64);
    let deadline = created + chrono::Duration::from_std(s.max_age).ok()?;
    (at <= deadline).then_some(at)
}

/// Stores the attempt and the delivery's next state, unless another replica has taken the
/// delivery over since (the lease expired): then only the attempt is stored.
pub async fn record(
    pool: &PgPool,
    c: &Claimed,
    o: &Outcome,
    s: &Settings,
    replica: &str,
) -> sqlx::Result<&'static str> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO webhook_attempts (delivery_id, n, at, status, latency_ms, response, error, replica) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(c.delivery)
    .bind(c.attempt)
    .bind(o.at)
    .bind(o.status.map(i32::from))
    .bind(o.latency.as_secs_f64() * 1000.0)
    .bind(&o.response)
    .bind(&o.error)
    .bind(replica)
    .execute(&mut *tx)
    .await?;
    let error = o
        .error
        .clone()
        .or_else(|| o.status.filter(|_| !o.ok()).map(|st| format!("HTTP {st}")));
    let (state, next) = if o.ok() {
        ("delivered", None)
    } else {
        match retry_at(c.attempt, Utc::now(), c.created_at, s) {
            Some(t) => ("pending", Some(t)),
            None => ("failed", None),
        }
    };
    sqlx::query(
        "UPDATE webhook_deliveries SET state = $3, next_attempt_at = COALESCE($4, next_attempt_at), \
           lease_until = NULL, last_error = $5, \
           finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE clock_timestamp() END \
         WHERE id = $1 AND attempts = $2 AND state = 'pending'",
    )
    .bind(c.delivery)
    .bind(c.attempt)
    .bind(state)
    .bind(next)
    .bind(error)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            timeout: Duration::from_secs(10),
            max_attempts: 8,
            max_age: Duration::from_secs(24 * 3600),
            retry_base: Duration::from_secs(30),
            public_url: None,
            egress: Default::default(),
            secrets: Default::default(),
        }
    }

    #[test]
    fn retries_grow_threefold_with_jitter_and_stop() {
        let s = settings();
        let t0 = Utc::now();
        for (n, base) in [(1, 30.0), (2, 90.0), (3, 270.0), (7, 6.0 * 3600.0)] {
            let d = (retry_at(n, t0, t0, &s).unwrap() - t0).num_milliseconds() as f64 / 1000.0;
            assert!(
                d >= base * 0.75 - 0.01 && d <= base * 1.25 + 0.01,
                "{n}: {d}"
            );
        }
        assert_eq!(retry_at(8, t0, t0, &s), None, "max attempts");
        let old = t0 - chrono::Duration::hours(23) - chrono::Duration::minutes(59);
        assert_eq!(retry_at(3, t0, old, &s), None, "past the max age");
    }
}
