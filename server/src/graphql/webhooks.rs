//! GraphQL: webhooks (`webhooks`, `webhookDeliveries`; create, update, delete, test, resend).
//! Owners manage them, since a webhook sends the project's news out of the hub and its secret
//! vouches for the hub; editors and owners read them and their deliveries. Secrets are returned
//! only by `createWebhook` and by `updateWebhook` when it sets a new one, and URLs only redacted.
//! Every change is in the audit log, without the secret.
use super::{ctx, parse_id, project_or_default};
use crate::{
    audit,
    error::{ApiError, ApiResult},
    identity::{Principal, Role},
    notifications::{
        store::{self, AttemptRow, Changes, DeliveryRow, NewWebhook, WebhookRow},
        Format,
    },
    state::AppState,
};
use async_graphql::{Context, Enum, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// What a webhook is told about.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum WebhookEvent {
    /// The delegate started the run (`run.started`).
    RunStarted,
    /// The run ended PASSED or FAILED, with verdict, score, recovery and link (`run.finished`).
    RunFinished,
    /// The run ended ABORTED (`run.aborted`).
    RunAborted,
    /// The run ended in ERROR (`run.error`).
    RunError,
    /// A guardrail stopped the run (`guardrail.tripped`).
    GuardrailTripped,
    /// A schedule's fire could not start its run (`schedule.fire_failed`).
    ScheduleFireFailed,
    /// A delegate's stream ended (`delegate.disconnected`).
    DelegateDisconnected,
    /// Someone halted the project (`project.halted`).
    ProjectHalted,
}

impl WebhookEvent {
    fn wire(self) -> &'static str {
        match self {
            WebhookEvent::RunStarted => "run.started",
            WebhookEvent::RunFinished => "run.finished",
            WebhookEvent::RunAborted => "run.aborted",
            WebhookEvent::RunError => "run.error",
            WebhookEvent::GuardrailTripped => "guardrail.tripped",
            WebhookEvent::ScheduleFireFailed => "schedule.fire_failed",
            WebhookEvent::DelegateDisconnected => "delegate.disconnected",
            WebhookEvent::ProjectHalted => "project.halted",
        }
    }

    fn parse(s: &str) -> Option<WebhookEvent> {
        use WebhookEvent::*;
        [
            RunStarted,
            RunFinished,
            RunAborted,
            RunError,
            GuardrailTripped,
            ScheduleFireFailed,
            DelegateDisconnected,
            ProjectHalted,
        ]
        .into_iter()
        .find(|e| e.wire() == s)
    }
}

/// The shape of a webhook's requests.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "WebhookFormat")]
pub enum FormatKind {
    /// Faultline's JSON envelope, signed (docs/notifications.md).
    Json,
    /// A Slack incoming webhook message (`text` + `blocks`).
    Slack,
    /// A Microsoft Teams message with an Adaptive Card.
    Teams,
}

impl From<FormatKind> for Format {
    fn from(f: FormatKind) -> Self {
        match f {
            FormatKind::Json => Format::Json,
            FormatKind::Slack => Format::Slack,
            FormatKind::Teams => Format::Teams,
        }
    }
}

impl From<Format> for FormatKind {
    fn from(f: Format) -> Self {
        match f {
            Format::Json => FormatKind::Json,
            Format::Slack => FormatKind::Slack,
            Format::Teams => FormatKind::Teams,
        }
    }
}

pub struct Webhook(pub WebhookRow);

#[Object]
impl Webhook {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn project(&self) -> &str {
        &self.0.project
    }
    /// The target, redacted: scheme, host, port and first path segment (chat webhook URLs
    /// are credentials). The full URL is never returned.
    async fn url(&self) -> String {
        store::redact(&self.0.url)
    }
    async fn events(&self) -> Vec<WebhookEvent> {
        self.0
            .events
            .iter()
            .filter_map(|e| WebhookEvent::parse(e))
            .collect()
    }
    async fn format(&self) -> FormatKind {
        Format::parse(&self.0.format).into()
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// Whether events are sent (false: new events are not enqueued for it, and its pending
    /// deliveries wait).
    async fn enabled(&self) -> bool {
        self.0.enabled
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

/// A webhook with its signing secret: returned once, by `createWebhook` and by `updateWebhook`
/// when it sets a new secret.
#[derive(SimpleObject)]
pub struct WebhookWithSecret {
    pub webhook: Webhook,
    /// The HMAC key of `X-Faultline-Signature`. Shown only now; none when unchanged.
    pub secret: Option<String>,
}

/// One event sent (or to send) to one webhook, with its attempts.
pub struct WebhookDelivery(pub DeliveryRow, pub Vec<AttemptRow>);

#[Object]
impl WebhookDelivery {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn webhook_id(&self) -> ID {
        ID(self.0.webhook_id.to_string())
    }
    /// The event's id: the same in every delivery of it (also resent ones).
    async fn event_id(&self) -> ID {
        ID(self.0.event_id.to_string())
    }
    /// The event's type, as sent: `run.finished`, ..., `webhook.test`.
    async fn event_type(&self) -> &str {
        &self.0.kind
    }
    async fn event_at(&self) -> DateTime<Utc> {
        self.0.event_at
    }
    /// The event's data (the JSON format's `data`, without the link).
    async fn data(&self) -> &serde_json::Value {
        &self.0.data
    }
    /// `pending` (waiting for its next attempt), `delivered` (a 2xx answer) or `failed`
    /// (attempts or time used up).
    async fn state(&self) -> &str {
        &self.0.state
    }
    /// Attempts started.
    async fn attempt_count(&self) -> i32 {
        self.0.attempts
    }
    /// When the next attempt is due (while pending).
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (self.0.state == "pending").then_some(self.0.next_attempt_at)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// Every recorded attempt, oldest first.
    async fn attempts(&self) -> Vec<WebhookAttempt> {
        self.1.iter().cloned().map(WebhookAttempt).collect()
    }
}

pub struct WebhookAttempt(AttemptRow);

#[Object]
impl WebhookAttempt {
    /// The attempt's number, from 1.
    async fn n(&self) -> i32 {
        self.0.n
    }
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
    /// The HTTP status; none when no response came (see `error`).
    async fn status(&self) -> Option<i32> {
        self.0.status
    }
    async fn latency_ms(&self) -> f64 {
        self.0.latency_ms
    }
    /// The response body's first KiB.
    async fn response(&self) -> Option<&str> {
        self.0.response.as_deref()
    }
    /// Why it failed without a response (refused, timed out, egress policy, ...).
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
}

async fn with_attempts(s: &AppState, rows: Vec<DeliveryRow>) -> ApiResult<Vec<WebhookDelivery>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut by_delivery: std::collections::HashMap<Uuid, Vec<AttemptRow>> = Default::default();
    for a in store::attempts(&s.pool, &ids).await? {
        by_delivery.entry(a.delivery_id).or_default().push(a);
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let mine = by_delivery.remove(&r.id).unwrap_or_default();
            WebhookDelivery(r, mine)
        })
        .collect())
}

/// The webhook's project, if the caller has `need` in it (else not found / forbidden).
async fn webhook_project(
    s: &AppState,
    p: &Principal,
    id: &ID,
    need: Role,
) -> ApiResult<(Uuid, Uuid)> {
    let id = parse_id("id", id)?;
    let project = store::project_of(&s.pool, id).await?;
    p.require_on(&s.pool, project, need, &format!("webhook {id}"))
        .await?;
    Ok((project, id))
}

/// What the audit log keeps of a webhook: never its secret or full URL.
fn detail(w: &WebhookRow) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("url".into(), store::redact(&w.url).into());
    m.insert("events".into(), w.events.clone().into());
    m.insert("format".into(), w.format.clone().into());
    m.insert("enabled".into(), w.enabled.into());
    m
}

#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// The project's webhooks (editors and owners).
    async fn webhooks(&self, c: &Context<'_>, project: Option<String>) -> Result<Vec<Webhook>> {
        let (s, p) = ctx(c)?;
        let id = project_or_default(s, p, project.as_deref(), Role::Editor).await?;
        Ok(store::list(&s.pool, id)
            .await?
            .into_iter()
            .map(Webhook)
            .collect())
    }

    /// A webhook's deliveries, newest first, each with its attempts: at most `first` (1 to 200),
    /// optionally only those in `state` and created before `before` (the previous page's last).
    async fn webhook_deliveries(
        &self,
        c: &Context<'_>,
        webhook_id: ID,
        state: Option<String>,
        before: Option<DateTime<Utc>>,
        #[graphql(default = 50)] first: i64,
    ) -> Result<Vec<WebhookDelivery>> {
        let (s, p) = ctx(c)?;
        let (project, id) = webhook_project(s, p, &webhook_id, Role::Editor)
            .await
            .map_err(|e| rename(e, "id", "webhookId"))?;
        if let Some(st) = state.as_deref() {
            if !["pending", "delivered", "failed"].contains(&st) {
                return Err(ApiError::bad("state", "pending, delivered or failed").into());
            }
        }
        let rows = store::deliveries(&s.pool, project, id, state.as_deref(), before, first).await?;
        Ok(with_attempts(s, rows).await?)
    }
}

fn rename(e: ApiError, from: &str, to: &str) -> ApiError {
    match e {
        ApiError::BadInput { field, message } if field == from => ApiError::bad(to, message),
        e => e,
    }
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Creates a webhook (owners). `secret` signs its requests; leave it out to have one
    /// generated. The secret is in the answer, and never again.
    #[allow(clippy::too_many_arguments)]
    async fn create_webhook(
        &self,
        c: &Context<'_>,
        project: Option<String>,
        url: String,
        events: Vec<WebhookEvent>,
        #[graphql(default_with = "FormatKind::Json")] format: FormatKind,
        secret: Option<String>,
        #[graphql(default)] description: String,
    ) -> Result<WebhookWithSecret> {
        let (s, p) = ctx(c)?;
        let id = project_or_default(s, p, project.as_deref(), Role::Viewer).await?;
        let new = NewWebhook {
            url,
            events: events.iter().map(|e| e.wire().to_string()).collect(),
            format: format.into(),
            secret,
            description,
        };
        let res = match p.require(&s.pool, id, Role::Owner).await {
            Ok(_) => store::create(&s.pool, id, &p.actor(), new, &s.notifications).await,
            Err(e) => Err(e),
        };
        let (target, d) = match &res {
            Ok((w, _)) => (w.id.to_string(), detail(w)),
            Err(_) => (String::new(), Default::default()),
        };
        audit::record_detail(&s.pool, p, Some(id), "webhook.create", target, &res, d).await;
        let (w, secret) = res?;
        Ok(WebhookWithSecret {
            webhook: Webhook(w),
            secret: Some(secret),
        })
    }

    /// Changes a webhook (owners); what is left out stays. `rotateSecret` generates a new
    /// secret, `secret` sets one; either is in the answer, once.
    #[allow(clippy::too_many_arguments)]
    async fn update_webhook(
        &self,
        c: &Context<'_>,
        id: ID,
        url: Option<String>,
        events: Option<Vec<WebhookEvent>>,
        format: Option<FormatKind>,
        enabled: Option<bool>,
        description: Option<String>,
        secret: Option<String>,
        #[graphql(default)] rotate_secret: bool,
    ) -> Result<WebhookWithSecret> {
        let (s, p) = ctx(c)?;
        let (project, id) = webhook_project(s, p, &id, Role::Owner).await?;
        let changes = Changes {
            url,
            events: events.map(|e| e.iter().map(|e| e.wire().to_string()).collect()),
            format: format.map(Into::into),
            enabled,
            description,
            secret: match (secret, rotate_secret) {
                (Some(s), _) => Some(Some(s)),
                (None, true) => Some(None),
                (None, false) => None,
            },
        };
        let rotated = changes.secret.is_some();
        let res = store::update(&s.pool, project, id, changes, &s.notifications).await;
        let mut d = res.as_ref().map(|(w, _)| detail(w)).unwrap_or_default();
        d.insert("secretChanged".into(), rotated.into());
        audit::record_detail(
            &s.pool,
            p,
            Some(project),
            "webhook.update",
            id.to_string(),
            &res,
            d,
        )
        .await;
        let (w, secret) = res?;
        Ok(WebhookWithSecret {
            webhook: Webhook(w),
            secret,
        })
    }

    /// Deletes a webhook with its deliveries (owners).
    async fn delete_webhook(&self, c: &Context<'_>, id: ID) -> Result<bool> {
        let (s, p) = ctx(c)?;
        let (project, id) = webhook_project(s, p, &id, Role::Owner).await?;
        let cur = store::get(&s.pool, project, id).await?;
        let res = store::delete(&s.pool, project, id).await;
        audit::record_detail(
            &s.pool,
            p,
            Some(project),
            "webhook.delete",
            id.to_string(),
            &res,
            detail(&cur),
        )
        .await;
        res?;
        Ok(true)
    }

    /// Sends a `webhook.test` event to the webhook now (owners), whatever events it
    /// subscribes to; follow it in `webhookDeliveries`.
    async fn test_webhook(&self, c: &Context<'_>, id: ID) -> Result<WebhookDelivery> {
        let (s, p) = ctx(c)?;
        let (project, id) = webhook_project(s, p, &id, Role::Owner).await?;
        let res = store::test(&s.pool, project, id).await;
        audit::record(
            &s.pool,
            p,
            Some(project),
            "webhook.test",
            id.to_string(),
            &res,
        )
        .await;
        Ok(WebhookDelivery(res?, Vec::new()))
    }

    /// Sends a delivery's event again as a new delivery with fresh attempts (owners); the
    /// event id stays the same, so receivers can tell a repeat.
    async fn resend_delivery(&self, c: &Context<'_>, id: ID) -> Result<WebhookDelivery> {
        let (s, p) = ctx(c)?;
        let delivery = parse_id("id", &id)?;
        let project = store::project_of_delivery(&s.pool, delivery).await?;
        p.require_on(
            &s.pool,
            project,
            Role::Owner,
            &format!("delivery {delivery}"),
        )
        .await?;
        let res = store::resend(&s.pool, project, delivery).await;
        audit::record(
            &s.pool,
            p,
            Some(project),
            "webhook.resend",
            delivery.to_string(),
            &res,
        )
        .await;
        Ok(WebhookDelivery(res?, Vec::new()))
    }
}
