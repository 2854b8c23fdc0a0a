//! Webhooks and their deliveries (store). Resolvers check the caller's role first; every query
//! here that reads project data filters by the project the resolver checked.
use super::{deliver::Egress, Format, Settings, EVENTS, TEST_EVENT};
use crate::{
    error::{ApiError, ApiResult},
    secretbox::SecretBox,
};
use chrono::{DateTime, Utc};
use rand::RngCore;
use sqlx::PgPool;
use uuid::Uuid;

/// Webhooks one project may have.
pub const MAX_PER_PROJECT: i64 = 20;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct WebhookRow {
    pub id: Uuid,
    pub project_id: Uuid,
    pub project: String,
    /// The full target; shown only redacted ([`redact`]), as chat webhook URLs are credentials.
    pub url: String,
    pub events: Vec<String>,
    pub format: String,
    pub description: String,
    pub enabled: bool,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "w.id, w.project_id, p.name AS project, w.url, w.events, w.format, w.description, \
    w.enabled, w.created_by, w.created_at, w.updated_at";

/// What `createWebhook` asks for, parsed.
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    pub format: Format,
    /// `None`: generate one. Stored sealed when the hub has a `--secret-key`.
    pub secret: Option<String>,
    pub description: String,
}

/// What `updateWebhook` changes (`None`: keep).
#[derive(Default)]
pub struct Changes {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub format: Option<Format>,
    pub enabled: Option<bool>,
    pub description: Option<String>,
    /// `Some(None)`: generate a new secret; `Some(Some(s))`: use `s`.
    pub secret: Option<Option<String>>,
}

/// The URL for display: scheme, host, port and first path segment; the rest (often a token,
/// as in Slack's and Teams' URLs) replaced by `…`.
pub fn redact(url: &str) -> String {
    let Ok(u) = url::Url::parse(url) else {
        return "…".into();
    };
    let mut out = format!("{}://{}", u.scheme(), u.host_str().unwrap_or(""));
    if let Some(p) = u.port() {
        out.push_str(&format!(":{p}"));
    }
    let mut segs = u
        .path_segments()
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty());
    if let Some(first) = segs.next() {
        out.push('/');
        out.push_str(first);
    }
    if segs.next().is_some() || u.query().is_some() {
        out.push_str("/…");
    }
    out
}

pub fn parse_url(url: &str, egress: &Egress) -> ApiResult<String> {
    let url = url.trim();
    if url.len() > 2048 {
        return Err(ApiError::bad("url", "at most 2048 characters"));
    }
    let u =
        url::Url::parse(url).map_err(|e| ApiError::bad("url", format!("not a valid URL: {e}")))?;
    if u.scheme() != "https" && u.scheme() != "http" {
        return Err(ApiError::bad("url", "use an https:// (or http://) URL"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::bad("url", "the URL has no host"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(ApiError::bad(
            "url",
            "credentials in the URL are not supported; use the signing secret",
        ));
    }
    egress.check_url(&u).map_err(|m| ApiError::bad("url", m))?;
    Ok(u.to_string())
}

pub fn parse_events(events: &[String]) -> ApiResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for e in events {
        if !EVENTS.contains(&e.as_str()) {
            return Err(ApiError::bad(
                "events",
                format!("unknown event {e:?}; known: {}", EVENTS.join(", ")),
            ));
        }
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    if out.is_empty() {
        return Err(ApiError::bad("events", "name at least one event"));
    }
    Ok(out)
}

fn parse_secret(s: Option<String>) -> ApiResult<String> {
    match s {
        Some(s) if !(16..=256).contains(&s.chars().count()) || s.chars().any(char::is_control) => {
            Err(ApiError::bad(
                "secret",
                "between 16 and 256 printable characters (or leave it out to have one generated)",
            ))
        }
        Some(s) => Ok(s),
        None => {
            let mut b = [0u8; 24];
            rand::rng().fill_bytes(&mut b);
            Ok(format!("whsec_{}", hex::encode(b)))
        }
    }
}

fn parse_description(d: &str) -> ApiResult<String> {
    let d = d.trim();
    if d.chars().count() > 200 {
        return Err(ApiError::bad("description", "at most 200 characters"));
    }
    Ok(d.to_string())
}

/// Creates a webhook; returns it and its secret (the only time the secret leaves the hub).
pub async fn create(
    pool: &PgPool,
    project: Uuid,
    actor: &str,
    new: NewWebhook,
    s: &Settings,
) -> ApiResult<(WebhookRow, String)> {
    let url = parse_url(&new.url, &s.egress)?;
    let events = parse_events(&new.events)?;
    let secret = parse_secret(new.secret)?;
    let description = parse_description(&new.description)?;
    let mut tx = pool.begin().await?;
    // Serializes creations in one project, so the limit holds.
    sqlx::query("SELECT 1 FROM projects WHERE id = $1 FOR UPDATE")
        .bind(project)
        .execute(&mut *tx)
        .await?;
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM webhooks WHERE project_id = $1")
        .bind(project)
        .fetch_one(&mut *tx)
        .await?;
    if n >= MAX_PER_PROJECT {
        return Err(ApiError::Conflict(format!(
            "a project may have at most {MAX_PER_PROJECT} webhooks"
        )));
    }
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO webhooks (id, project_id, url, events, format, secret, description, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(project)
    .bind(&url)
    .bind(&events)
    .bind(new.format.as_str())
    .bind(s.secrets.seal(&secret, id.as_bytes()))
    .bind(&description)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((get(pool, project, id).await?, secret))
}

/// Changes a webhook; returns it, and its new secret when the secret was changed.
pub async fn update(
    pool: &PgPool,
    project: Uuid,
    id: Uuid,
    c: Changes,
    s: &Settings,
) -> ApiResult<(WebhookRow, Option<String>)> {
    let url = c.url.map(|u| parse_url(&u, &s.egress)).transpose()?;
    let events = c.events.map(|e| parse_events(&e)).transpose()?;
    let description = c.description.map(|d| parse_description(&d)).transpose()?;
    let secret = c.secret.map(parse_secret).transpose()?;
    let r = sqlx::query(
        "UPDATE webhooks SET url = COALESCE($3, url), events = COALESCE($4, events), \
           format = COALESCE($5, format), enabled = COALESCE($6, enabled), \
           description = COALESCE($7, description), secret = COALESCE($8, secret), updated_at = now() \
         WHERE id = $1 AND project_id = $2",
    )
    .bind(id)
    .bind(project)
    .bind(url)
    .bind(events)
    .bind(c.format.map(Format::as_str))
    .bind(c.enabled)
    .bind(description)
    .bind(secret.as_deref().map(|x| s.secrets.seal(x, id.as_bytes())))
    .execute(pool)
    .await?;
    if r.rows_affected() == 0 {
        return Err(ApiError::NotFound(format!("webhook {id}")));
    }
    Ok((get(pool, project, id).await?, secret))
}

/// Seals again every secret kept as given or under an older key (at start, with a key set).
/// A secret sealed by a key the hub no longer has is left alone (its deliveries fail, saying so).
pub async fn reseal(pool: &PgPool, secrets: &SecretBox) -> anyhow::Result<()> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as("SELECT id, secret FROM webhooks")
        .fetch_all(pool)
        .await?;
    let mut n = 0;
    for (id, stored) in rows.iter().filter(|r| secrets.stale(&r.1)) {
        match secrets.open(stored, id.as_bytes()) {
            Ok(plain) => {
                n += sqlx::query("UPDATE webhooks SET secret = $3 WHERE id = $1 AND secret = $2")
                    .bind(id)
                    .bind(stored)
                    .bind(secrets.seal(&plain, id.as_bytes()))
                    .execute(pool)
                    .await?
                    .rows_affected();
            }
            Err(e) => tracing::warn!(webhook = %id, error = %e, "webhook secret not resealed"),
        }
    }
    if n > 0 {
        tracing::info!(
            webhooks = n,
            "webhook secrets sealed with the current --secret-key"
        );
    }
    Ok(())
}

/// Deletes a webhook with its deliveries and their attempts.
pub async fn delete(pool: &PgPool, project: Uuid, id: Uuid) -> ApiResult<()> {
    let r = sqlx::query("DELETE FROM webhooks WHERE id = $1 AND project_id = $2")
        .bind(id)
        .bind(project)
        .execute(pool)
        .await?;
    if r.rows_affected() == 0 {
        return Err(ApiError::NotFound(format!("webhook {id}")));
    }
    Ok(())
}

pub async fn get(pool: &PgPool, project: Uuid, id: Uuid) -> ApiResult<WebhookRow> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM webhooks w JOIN projects p ON p.id = w.project_id \
         WHERE w.id = $1 AND w.project_id = $2"
    ))
    .bind(id)
    .bind(project)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("webhook {id}")))
}

/// The project a webhook belongs to (for the resolver's access check).
pub async fn project_of(pool: &PgPool, id: Uuid) -> ApiResult<Uuid> {
    let r: Option<(Uuid,)> = sqlx::query_as("SELECT project_id FROM webhooks WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    r.map(|r| r.0)
        .ok_or_else(|| ApiError::NotFound(format!("webhook {id}")))
}

/// The project a delivery belongs to (for the resolver's access check).
pub async fn project_of_delivery(pool: &PgPool, id: Uuid) -> ApiResult<Uuid> {
    let r: Option<(Uuid,)> = sqlx::query_as(
        "SELECT w.project_id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    r.map(|r| r.0)
        .ok_or_else(|| ApiError::NotFound(format!("delivery {id}")))
}

pub async fn list(pool: &PgPool, project: Uuid) -> ApiResult<Vec<WebhookRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM webhooks w JOIN projects p ON p.id = w.project_id \
         WHERE w.project_id = $1 ORDER BY w.created_at"
    ))
    .bind(project)
    .fetch_all(pool)
    .await?)
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    pub kind: String,
    pub event_at: DateTime<Utc>,
    pub data: serde_json::Value,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

const DELIVERY: &str = "SELECT d.id, d.webhook_id, d.event_id, e.kind, e.at AS event_at, e.data, d.state, \
    d.attempts, d.next_attempt_at, d.created_at, d.finished_at, d.last_error \
    FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id JOIN webhooks w ON w.id = d.webhook_id";

/// A webhook's deliveries, newest first: at most `first` (1..=200), optionally in one state and
/// older than `before`.
pub async fn deliveries(
    pool: &PgPool,
    project: Uuid,
    webhook: Uuid,
    state: Option<&str>,
    before: Option<DateTime<Utc>>,
    first: i64,
) -> ApiResult<Vec<DeliveryRow>> {
    if !(1..=200).contains(&first) {
        return Err(ApiError::bad("first", "between 1 and 200"));
    }
    Ok(sqlx::query_as(&format!(
        "{DELIVERY} WHERE d.webhook_id = $1 AND w.project_id = $2 \
           AND ($3::text IS NULL OR d.state = $3) AND ($4::timestamptz IS NULL OR d.created_at < $4) \
         ORDER BY d.created_at DESC, d.id LIMIT $5"
    ))
    .bind(webhook)
    .bind(project)
    .bind(state)
    .bind(before)
    .bind(first)
    .fetch_all(pool)
    .await?)
}

pub async fn delivery(pool: &PgPool, project: Uuid, id: Uuid) -> ApiResult<DeliveryRow> {
    sqlx::query_as(&format!("{DELIVERY} WHERE d.id = $1 AND w.project_id = $2"))
        .bind(id)
        .bind(project)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("delivery {id}")))
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AttemptRow {
    pub delivery_id: Uuid,
    pub n: i32,
    pub at: DateTime<Utc>,
    pub status: Option<i32>,
    pub latency_ms: f64,
    pub response: Option<String>,
    pub error: Option<String>,
}

/// The attempts of these deliveries, oldest first.
pub async fn attempts(pool: &PgPool, deliveries: &[Uuid]) -> ApiResult<Vec<AttemptRow>> {
    Ok(sqlx::query_as(
        "SELECT delivery_id, n, at, status, latency_ms, response, error FROM webhook_attempts \
         WHERE delivery_id = ANY($1) ORDER BY delivery_id, n, id",
    )
    .bind(deliveries)
    .fetch_all(pool)
    .await?)
}

/// Enqueues a `webhook.test` event for this webhook alone, whatever it subscribes to.
pub async fn test(pool: &PgPool, project: Uuid, id: Uuid) -> ApiResult<DeliveryRow> {
    let w = get(pool, project, id).await?;
    let mut tx = pool.begin().await?;
    let (event,): (Uuid,) = sqlx::query_as(
        "INSERT INTO webhook_events (project_id, kind, data) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(project)
    .bind(TEST_EVENT)
    .bind(serde_json::json!({
        "project": w.project,
        "webhookId": w.id,
        "message": "a test notification sent by testWebhook",
    }))
    .fetch_one(&mut *tx)
    .await?;
    let delivery = enqueue(&mut tx, id, event).await?;
    tx.commit().await?;
    self::delivery(pool, project, delivery).await
}

/// Sends the delivery's event again, as a new delivery with its own attempts (same event id,
/// so a receiver that already has it can tell).
pub async fn resend(pool: &PgPool, project: Uuid, id: Uuid) -> ApiResult<DeliveryRow> {
    let old = delivery(pool, project, id).await?;
    let mut tx = pool.begin().await?;
    let new = enqueue(&mut tx, old.webhook_id, old.event_id).await?;
    tx.commit().await?;
    delivery(pool, project, new).await
}

async fn enqueue(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    webhook: Uuid,
    event: Uuid,
) -> ApiResult<Uuid> {
    let (d,): (Uuid,) = sqlx::query_as(
        "INSERT INTO webhook_deliveries (webhook_id, event_id) VALUES ($1, $2) RETURNING id",
    )
    .bind(webhook)
    .bind(event)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(super::CHANNEL)
        .bind(event.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_tokens() {
        assert_eq!(
            redact("https://hooks.slack.com/services/T0/B0/XYZ"),
            "https://hooks.slack.com/services/…"
        );
        assert_eq!(
            redact("http://127.0.0.1:9000/hook"),
            "http://127.0.0.1:9000/hook"
        );
        assert_eq!(redact("https://x.example/a?sig=1"), "https://x.example/a/…");
    }

    #[test]
    fn events_are_checked_and_deduplicated() {
        let e = parse_events(&["run.finished".into(), "run.finished".into()]).unwrap();
        assert_eq!(e, ["run.finished"]);
        assert!(parse_events(&[]).is_err());
        assert!(parse_events(&["run.nope".into()]).is_err());
    }

    #[test]
    fn generated_secrets_are_long_and_distinct() {
        let a = parse_secret(None).unwrap();
        assert!(a.starts_with("whsec_") && a.len() == 54);
        assert_ne!(a, parse_secret(None).unwrap());
        assert!(parse_secret(Some("short".into())).is_err());
    }
}
