//! GraphQL: delegates and their registration tokens.
use super::{ctx, parse_id, visible};
use crate::{audit, delegates::DelegateRow, error::ApiError, identity::Role};
use async_graphql::{Context, Object, Result, ID};
use chrono::{DateTime, Utc};

pub struct Delegate(pub DelegateRow);

/// The size of a fleet (`delegateSummary`).
#[derive(async_graphql::SimpleObject)]
pub struct DelegateSummary {
    /// Registered and not revoked.
    total: i64,
    /// Holding a stream with fresh heartbeats.
    connected: i64,
}

/// Whether one delegate would take a template (`delegateChecks`).
#[derive(async_graphql::SimpleObject)]
pub struct DelegateCheck {
    delegate: String,
    connected: bool,
    /// What it would refuse; empty when it would run the template.
    problems: Vec<super::templates::TemplateProblem>,
}

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
    /// Its operator's allow-list entries (`KIND=VALUE`, docs/safety.md): what templates may
    /// make it do. No `command=` entry: no program runs; no `env=` entry: no variable is read.
    async fn allow(&self) -> Vec<String> {
        self.0.allow()
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
    /// Its runs that are dispatched, running or aborting now.
    async fn active_runs(&self) -> i64 {
        self.0.active_runs
    }
    /// Where it is in its list: pass as `delegates(after:)` for the next page.
    async fn cursor(&self) -> String {
        crate::delegates::cursor(&self.0)
    }
}

/// A registration token (its secret is shown only when it is made).
pub struct DelegateToken(pub crate::delegates::TokenRow);

#[Object]
impl DelegateToken {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// A reusable token registers any number of delegates until it expires; a one-time token
    /// is spent by its first registration.
    async fn reusable(&self) -> bool {
        self.0.reusable
    }
    /// Registrations made with it.
    async fn uses(&self) -> i32 {
        self.0.uses
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    async fn used_at(&self) -> Option<DateTime<Utc>> {
        self.0.used_at
    }
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
}

#[derive(Default)]
pub struct DelegateQuery;

#[Object]
impl DelegateQuery {
    /// Delegates of one project, or of every project the caller can read, by name: at most
    /// `first` (default 100, at most 1000) after the delegate whose `cursor` is `after`, with
    /// `search` in their name when given. A full page means there may be more.
    async fn delegates(
        &self,
        c: &Context<'_>,
        project: Option<String>,
        #[graphql(default = 100)] first: i64,
        after: Option<String>,
        search: Option<String>,
    ) -> Result<Vec<Delegate>> {
        let (s, p) = ctx(c)?;
        if !(1..=crate::delegates::MAX_PAGE).contains(&first) {
            return Err(ApiError::bad(
                "first",
                format!("must be 1 to {}", crate::delegates::MAX_PAGE),
            )
            .into());
        }
        let page = crate::delegates::Page {
            first,
            after: after
                .map(|a| crate::delegates::parse_cursor("after", &a))
                .transpose()?,
            search,
        };
        let scope = visible(s, p, project.as_deref()).await?;
        Ok(
            crate::delegates::list(&s.pool, scope.as_deref(), s.fresh_secs(), &page)
                .await?
                .into_iter()
                .map(Delegate)
                .collect(),
        )
    }

    /// How many delegates one project (or every project the caller can read) has, and how many
    /// are connected: the fleet's size whatever page of `delegates` is shown.
    async fn delegate_summary(
        &self,
        c: &Context<'_>,
        project: Option<String>,
    ) -> Result<DelegateSummary> {
        let (s, p) = ctx(c)?;
        let scope = visible(s, p, project.as_deref()).await?;
        let (total, connected) =
            crate::delegates::summary(&s.pool, scope.as_deref(), s.fresh_secs()).await?;
        Ok(DelegateSummary { total, connected })
    }

    /// Whether each delegate a template could run on would take it (before it is saved or run):
    /// the delegates its `target.delegate` selector matches, else all of the project's. Each
    /// problem is what startRun would refuse on that delegate, located in the text: kinds it
    /// lacks and what its operator's allow-list does not allow. Invalid YAML gives no entries
    /// (validateTemplate reports it).
    async fn delegate_checks(
        &self,
        c: &Context<'_>,
        #[graphql(default = "default")] project: String,
        yaml: String,
    ) -> Result<Vec<DelegateCheck>> {
        let (s, p) = ctx(c)?;
        let pid = super::project(s, p, &project, Role::Viewer).await?;
        let Ok(spec) = faultline_experiment::parse_template(&yaml) else {
            return Ok(Vec::new());
        };
        // The first page of either: enough to show an editor what its selector reaches.
        let max = crate::delegates::MAX_PAGE;
        let candidates: Vec<DelegateRow> = if spec.target.delegate.is_empty() {
            let page = crate::delegates::Page {
                first: max,
                ..Default::default()
            };
            crate::delegates::list(&s.pool, Some(&[pid]), s.fresh_secs(), &page).await?
        } else {
            crate::delegates::with_labels(&s.pool, pid, &spec.target.delegate, s.fresh_secs(), max)
                .await?
        };
        Ok(candidates
            .into_iter()
            .map(|d| {
                let mut problems = d.refusals(&spec);
                faultline_experiment::template::locate_errors(&yaml, &mut problems);
                DelegateCheck {
                    delegate: d.name.clone(),
                    connected: d.connected,
                    problems: problems.into_iter().map(Into::into).collect(),
                }
            })
            .collect())
    }

    /// The project's registration tokens, newest first (owners).
    async fn delegate_tokens(
        &self,
        c: &Context<'_>,
        #[graphql(default = "default")] project: String,
    ) -> Result<Vec<DelegateToken>> {
        let (s, p) = ctx(c)?;
        let pid = super::project(s, p, &project, Role::Owner).await?;
        Ok(crate::delegates::tokens(&s.pool, pid)
            .await?
            .into_iter()
            .map(DelegateToken)
            .collect())
    }
}

#[derive(Default)]
pub struct DelegateMutation;

#[Object]
impl DelegateMutation {
    /// A registration token for new delegates of the project (owners). One-time by default;
    /// `reusable` lets it register any number until it expires (`expiresIn`, default 24h, at
    /// most 366d). Returns the secret, shown only now: only its hash is stored.
    async fn create_delegate_token(
        &self,
        c: &Context<'_>,
        #[graphql(default = "default")] project: String,
        #[graphql(default)] name: String,
        #[graphql(default = false)] reusable: bool,
        #[graphql(default = "24h")] expires_in: String,
    ) -> Result<String> {
        let (s, p) = ctx(c)?;
        let pid = super::project(s, p, &project, Role::Owner).await?;
        let res = match expires_in.parse::<faultline_experiment::Dur>() {
            Ok(ttl) => {
                crate::delegates::create_token(&s.pool, pid, &name, reusable, ttl.0, &p.actor())
                    .await
            }
            Err(m) => Err(ApiError::bad("expiresIn", m)),
        };
        audit::record(
            &s.pool,
            p,
            Some(pid),
            "delegate_token.create",
            res.as_ref()
                .map(|(t, _)| t.id.to_string())
                .unwrap_or_default(),
            &res,
        )
        .await;
        Ok(res?.1)
    }

    /// Revokes a registration token (owners). Delegates it registered keep working.
    async fn revoke_delegate_token(&self, c: &Context<'_>, id: ID) -> Result<DelegateToken> {
        let (s, p) = ctx(c)?;
        let tid = parse_id("id", &id)?;
        let t = crate::delegates::token(&s.pool, tid).await?;
        p.require_on(&s.pool, t.project_id, Role::Owner, "delegate token")
            .await?;
        let res = crate::delegates::revoke_token(&s.pool, tid).await;
        audit::record(
            &s.pool,
            p,
            Some(t.project_id),
            "delegate_token.revoke",
            tid.to_string(),
            &res,
        )
        .await;
        Ok(DelegateToken(res?))
    }

    /// Revokes a delegate (owners): its credential stops working, its stream is closed at
    /// once, and it reverts every fault it holds.
    async fn revoke_delegate(&self, c: &Context<'_>, id: ID) -> Result<bool> {
        let (s, p) = ctx(c)?;
        let did = parse_id("id", &id)?;
        let d = crate::delegates::get(&s.pool, did, s.fresh_secs()).await?;
        p.require_on(
            &s.pool,
            d.project_id,
            Role::Owner,
            &format!("delegate {did}"),
        )
        .await?;
        let res = crate::delegates::revoke(&s.pool, did).await;
        audit::record(
            &s.pool,
            p,
            Some(d.project_id),
            "delegate.revoke",
            d.name.clone(),
            &res,
        )
        .await;
        res?;
        Ok(true)
    }
}
