//! GraphQL: delegates and their registration tokens.
use super::{ctx, scope};
use crate::{audit, delegates::DelegateRow};
use async_graphql::{Context, Object, Result, ID};
use chrono::{DateTime, Utc};

pub struct Delegate(pub DelegateRow);

#[Object]
impl Delegate {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn labels(&self) -> async_graphql::Json<&std::collections::BTreeMap<String, String>> {
        async_graphql::Json(&self.0.labels.0)
    }
    async fn version(&self) -> &str {
        &self.0.version
    }
    /// Fault and probe kinds the delegate advertised.
    async fn capabilities(&self) -> async_graphql::Json<&serde_json::Value> {
        async_graphql::Json(&self.0.capabilities.0)
    }
    /// True while its stream is held by some replica and heartbeats are fresh.
    async fn connected(&self) -> bool {
        self.0.connected
    }
    async fn last_heartbeat(&self) -> Option<DateTime<Utc>> {
        self.0.last_heartbeat_at
    }
    /// The hub replica holding its stream.
    async fn replica(&self) -> Option<&str> {
        self.0.connected_replica.as_deref()
    }
}

#[derive(Default)]
pub struct DelegateQuery;

#[Object]
impl DelegateQuery {
    async fn delegates(&self, c: &Context<'_>, project: Option<String>) -> Result<Vec<Delegate>> {
        let (s, p) = ctx(c)?;
        let scope = scope(s, p, project.as_deref()).await?;
        Ok(crate::delegates::list(&s.pool, scope, s.fresh_secs())
            .await?
            .into_iter()
            .map(Delegate)
            .collect())
    }
}

#[derive(Default)]
pub struct DelegateMutation;

#[Object]
impl DelegateMutation {
    /// A one-time registration token for a new delegate (valid 24 h; only its hash is stored).
    async fn create_delegate_token(
        &self,
        c: &Context<'_>,
        #[graphql(default = "default")] project: String,
    ) -> Result<String> {
        let (s, p) = ctx(c)?;
        let pid = scope(s, p, Some(&project))
            .await?
            .unwrap_or(crate::db::DEFAULT_PROJECT);
        let res = crate::delegates::create_token(&s.pool, pid).await;
        audit::record(
            &s.pool,
            p,
            Some(pid),
            "delegate_token.create",
            project.clone(),
            &res,
        )
        .await;
        Ok(res?)
    }
}
