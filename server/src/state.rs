//! `AppState`: what every handler, resolver and delegate session shares in one replica.
use crate::{notify, oidc};
use sqlx::PgPool;
use std::{sync::Arc, time::Duration};

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// This process's name in `delegates.connected_replica`.
    pub replica: String,
    pub hub: Arc<notify::Hub>,
    /// This replica's delegate heartbeats, written to Postgres in batches.
    pub liveness: Arc<crate::liveness::Liveness>,
    /// The configured OpenID Connect providers (`[[oidc]]`), with their cached keys.
    pub oidc: oidc::Oidc,
    pub timing: Timing,
    /// Flips to true on shutdown; long-lived streams end so delegates move to another replica.
    pub stop: tokio::sync::watch::Receiver<bool>,
    /// Session signing keys and lifetime.
    pub sessions: Arc<crate::identity::sessions::Sessions>,
    /// The hub's git sync: settings and the `syncNow` wake-up (docs/gitops.md).
    pub git: Arc<crate::git_sync::GitSync>,
    /// The hub's external URL (`--public-url`), for SSO callbacks; else the request's host.
    pub public_url: Option<String>,
    /// Webhook delivery settings, and the egress policy `createWebhook` checks URLs against.
    pub notifications: Arc<crate::notifications::Settings>,
}

#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub heartbeat: Duration,
    pub poll: Duration,
    /// Events per second one delegate stream may send (`--delegate-event-rate`, 0 = no limit).
    pub delegate_event_rate: u32,
}

impl AppState {
    /// A delegate counts as connected while its heartbeats are younger than this.
    pub fn fresh_secs(&self) -> f64 {
        (self.timing.heartbeat * 3).as_secs_f64()
    }
}
