//! Grafana annotations of the chaos windows and runs: the rows `migrations/0010` triggers write
//! as a run's events and verdict are stored, sent to Grafana's HTTP API by any replica started
//! with `--grafana-url` (docs/observability.md).
//!
//! - a fault applied → `POST /api/annotations` (a region starting then; tags `faultline`,
//!   `fault`, `project:…`, `kind:…`, `template:…`); undone → `PATCH /api/annotations/{id}` with
//!   its `timeEnd` (or, if Grafana never got the start, one `POST` with both ends);
//! - a run that ends → one region from its start to its end, with the verdict and score.
//!
//! Rows are claimed with `FOR UPDATE SKIP LOCKED` and a lease, so each is sent by one replica;
//! a failed request is retried with backoff (2 s, doubling, at most 5 min) and given up after a
//! day. Every request is bounded in time and the answer in size.
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::time::Duration;

/// Where the annotations go.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Grafana's base URL, e.g. `https://grafana.example.com`.
    pub url: url::Url,
    /// A service account token (Editor, or `annotations:write`).
    pub token: String,
    /// Attach them to this dashboard only (else they are organisation-wide).
    pub dashboard_uid: Option<String>,
    pub timeout: Duration,
}

/// Rows claimed at a time.
const BATCH: i64 = 50;
/// How long a claim holds a row.
const LEASE_SECS: i64 = 30;
/// Largest answer read from Grafana.
const MAX_ANSWER: usize = 64 * 1024;

#[derive(sqlx::FromRow, Debug)]
struct Row {
    id: i64,
    pending: String,
    grafana_id: Option<i64>,
    starts_at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
    text: String,
    tags: Vec<String>,
    created_at: DateTime<Utc>,
}

/// Sends what is due until `stop` flips; every replica also deletes rows older than 7 days.
pub async fn run(
    pool: PgPool,
    settings: Option<Settings>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let client = match &settings {
        Some(s) => match reqwest::Client::builder()
            .timeout(s.timeout)
            .connect_timeout(s.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "grafana: cannot make an HTTP client; annotations are not sent");
                None
            }
        },
        None => None,
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_cleanup = std::time::Instant::now() - Duration::from_secs(3600);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        if last_cleanup.elapsed() > Duration::from_secs(600) {
            last_cleanup = std::time::Instant::now();
            if let Err(e) = sqlx::query(
                "DELETE FROM grafana_annotations WHERE id IN (SELECT id FROM grafana_annotations \
                 WHERE created_at < now() - interval '7 days' LIMIT 10000)",
            )
            .execute(&pool)
            .await
            {
                tracing::warn!(error = %e, "grafana: cannot delete old annotation rows");
            }
        }
        let (Some(s), Some(c)) = (&settings, &client) else {
            continue;
        };
        match send_due(&pool, c, s).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(sent = n, "grafana: annotations sent"),
            Err(e) => tracing::warn!(error = %e, "grafana: cannot read the annotations to send"),
        }
    }
}

/// Claims the due rows and sends each; returns how many were handled.
pub async fn send_due(
    pool: &PgPool,
    client: &reqwest::Client,
    s: &Settings,
) -> Result<usize, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(
        "UPDATE grafana_annotations SET lease_until = now() + make_interval(secs => $2), \
           attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM grafana_annotations \
                      WHERE pending IS NOT NULL AND next_attempt_at <= now() \
                        AND (lease_until IS NULL OR lease_until < now()) \
                      ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) \
         RETURNING id, pending, grafana_id, starts_at, ends_at, text, tags, created_at",
    )
    .bind(BATCH)
    .bind(LEASE_SECS as f64)
    .fetch_all(pool)
    .await?;
    let n = rows.len();
    let mut rows = rows;
    // In order: a window's start before its end.
    rows.sort_by_key(|r| r.id);
    for r in rows {
        let outcome = send(client, s, &r).await;
        record(pool, &r, outcome).await?;
    }
    Ok(n)
}

/// What one request did: Grafana's id of the annotation, or why it failed.
type Outcome = Result<Option<i64>, String>;

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

async fn send(client: &reqwest::Client, s: &Settings, r: &Row) -> Outcome {
    let base = s.url.as_str().trim_end_matches('/');
    let req = match (r.pending.as_str(), r.grafana_id) {
        ("end", Some(id)) => {
            let Some(end) = r.ends_at else {
                return Ok(Some(id));
            };
            client
                .patch(format!("{base}/api/annotations/{id}"))
                .json(&serde_json::json!({"timeEnd": ms(end)}))
        }
        _ => {
            let mut body = serde_json::json!({
                "time": ms(r.starts_at),
                // An open window is a region of no length until it ends.
                "timeEnd": ms(r.ends_at.unwrap_or(r.starts_at)),
                "tags": r.tags,
                "text": r.text,
            });
            if let Some(d) = &s.dashboard_uid {
                body["dashboardUID"] = serde_json::json!(d);
            }
            client.post(format!("{base}/api/annotations")).json(&body)
        }
    };
    let resp = req
        .bearer_auth(&s.token)
        .send()
        .await
        .map_err(|e| format!("{e}"))?;
    let status = resp.status();
    let mut body = Vec::new();
    let mut resp = resp;
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("{e}"))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ANSWER {
            return Err(format!("HTTP {status}: answer over {MAX_ANSWER} bytes"));
        }
    }
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if !status.is_success() {
        let msg = answer["message"].as_str().unwrap_or_default();
        return Err(format!("HTTP {}: {msg}", status.as_u16()));
    }
    Ok(answer["id"].as_i64().or(r.grafana_id))
}

/// Stores what the request did; a window that ended while its start was being sent is left
/// `end` for the next round.
async fn record(pool: &PgPool, r: &Row, outcome: Outcome) -> Result<(), sqlx::Error> {
    match outcome {
        Ok(id) => {
            sqlx::query(
                "UPDATE grafana_annotations SET grafana_id = COALESCE($2, grafana_id), \
                   lease_until = NULL, last_error = NULL, attempts = 0, \
                   pending = CASE WHEN ends_at IS DISTINCT FROM $3 THEN 'end' ELSE NULL END \
                 WHERE id = $1",
            )
            .bind(r.id)
            .bind(id)
            .bind(r.ends_at)
            .execute(pool)
            .await?;
        }
        Err(why) => {
            tracing::warn!(annotation = r.id, error = %why, "grafana: annotation not sent; retrying later");
            let given_up = Utc::now() - r.created_at > chrono::Duration::days(1);
            sqlx::query(
                "UPDATE grafana_annotations SET lease_until = NULL, last_error = $2, \
                   pending = CASE WHEN $3 THEN NULL ELSE pending END, \
                   next_attempt_at = now() + make_interval(secs => least(300, 2 * power(2, least(attempts, 10)))) \
                 WHERE id = $1",
            )
            .bind(r.id)
            .bind(why.chars().take(500).collect::<String>())
            .bind(given_up)
            .execute(pool)
            .await?;
        }
    }
    Ok(())
}
