//! Notifications: a project's webhooks and the durable delivery of its events to them
//! (docs/notifications.md).
//!
//! - `store.rs`: webhooks (create, update, delete, list), their deliveries and attempts, test and
//!   resend. The secret is returned only by create and rotation, never by a read.
//! - `outbox.rs`: claiming due deliveries across replicas (`FOR UPDATE SKIP LOCKED` + a lease),
//!   recording each attempt, the retry schedule.
//! - `formats.rs`: the bodies (generic JSON, Slack blocks, Teams Adaptive Card) and the
//!   `X-Faultline-Signature` HMAC.
//! - `deliver.rs`: every replica's delivery loop and the bounded HTTP client with its egress policy.
//!
//! Events are not enqueued here: triggers of migration 0008 insert them in the same transaction
//! as the change they report (run ended, delegate disconnected, ...), so no code path can forget
//! one, and a rolled-back change sends nothing. A webhook never blocks or fails a run: the
//! triggers only insert rows, and sending happens later in the delivery loop.
pub mod deliver;
pub mod formats;
pub mod outbox;
pub mod store;

use std::time::Duration;

/// Woken by the migration's triggers when an event is enqueued.
pub const CHANNEL: &str = "faultline_webhooks";

/// The events a webhook can subscribe to, as stored in `webhooks.events` and sent in `type`.
pub const EVENTS: &[&str] = &[
    "run.started",
    "run.finished",
    "run.aborted",
    "run.error",
    "guardrail.tripped",
    "schedule.fire_failed",
    "delegate.disconnected",
    "project.halted",
];

/// The event `testWebhook` sends, whatever the webhook subscribes to.
pub const TEST_EVENT: &str = "webhook.test";

/// How a webhook's body is shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Faultline's own JSON envelope (`id`, `type`, `createdAt`, `project`, `data`).
    Json,
    /// A Slack incoming webhook's `text` + `blocks`.
    Slack,
    /// A Microsoft Teams message with one Adaptive Card attachment.
    Teams,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Slack => "slack",
            Format::Teams => "teams",
        }
    }

    pub fn parse(s: &str) -> Format {
        match s {
            "slack" => Format::Slack,
            "teams" => Format::Teams,
            _ => Format::Json,
        }
    }
}

/// Delivery settings of this replica (`--webhook-*`).
#[derive(Clone, Debug)]
pub struct Settings {
    /// One attempt's bound (connect, send, response).
    pub timeout: Duration,
    pub max_attempts: u32,
    /// A delivery older than this is not retried again.
    pub max_age: Duration,
    /// The first retry's delay; later ones grow 3× up to [`outbox::MAX_DELAY`].
    pub retry_base: Duration,
    /// The hub's external URL, for the dashboard link of run events.
    pub public_url: Option<String>,
    pub egress: deliver::Egress,
    /// Seals signing secrets at rest (`--secret-key`).
    pub secrets: crate::secretbox::SecretBox,
}
