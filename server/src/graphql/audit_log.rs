//! GraphQL: the audit log, for owners of a project (its entries) and instance administrators
//! (every entry), with filters and cursor paging.
use super::ctx;
use crate::{audit, error::ApiError, identity::Role};
use async_graphql::{Context, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};

#[derive(SimpleObject)]
pub struct AuditEntry {
    pub id: ID,
    pub at: DateTime<Utc>,
    /// `user:<email>`, `token:<name>` or `delegate:<name>`.
    pub actor: String,
    pub project: Option<String>,
    /// What was done, e.g. `run.start`, `login`, `member.set`.
    pub action: String,
    pub target: String,
    /// The client's address (after the trusted-proxy rules).
    pub address: Option<String>,
    /// `ok` or `error:<CODE>`.
    pub outcome: String,
    pub detail: async_graphql::Json<serde_json::Value>,
}

#[derive(SimpleObject)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next (older) page; null on the last page.
    pub next: Option<ID>,
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Audit entries, newest first. Owners see their project's (`project` required);
    /// instance administrators may leave it out to see every entry. `action` is exact, or a
    /// prefix ending in `.`; `outcome` is `ok` or `error`.
    #[allow(clippy::too_many_arguments)]
    async fn audit_log(
        &self,
        c: &Context<'_>,
        project: Option<String>,
        actor: Option<String>,
        action: Option<String>,
        outcome: Option<String>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        before: Option<ID>,
        #[graphql(default = 50)] first: i64,
    ) -> Result<AuditPage> {
        let (s, p) = ctx(c)?;
        let pid = match &project {
            Some(name) => Some(super::project(s, p, name, Role::Owner).await?),
            None => {
                p.require_admin()
                    .map_err(|_| ApiError::bad("project", "name the project whose log to read"))?;
                None
            }
        };
        if let Some(o) = &outcome {
            if o != "ok" && o != "error" {
                return Err(ApiError::bad("outcome", "ok or error").into());
            }
        }
        let before = match &before {
            Some(b) => Some(
                b.parse::<i64>()
                    .map_err(|_| ApiError::bad("before", "not a cursor from a previous page"))?,
            ),
            None => None,
        };
        let filter = audit::Filter {
            project: pid,
            actor,
            action,
            outcome,
            since,
            until,
            before,
        };
        let rows = audit::query(&s.pool, &filter, first).await?;
        let next = (rows.len() as i64 == first)
            .then(|| rows.last().map(|r| ID(r.id.to_string())))
            .flatten();
        Ok(AuditPage {
            entries: rows
                .into_iter()
                .map(|r| AuditEntry {
                    id: ID(r.id.to_string()),
                    at: r.at,
                    actor: r.actor,
                    project: r.project,
                    action: r.action,
                    target: r.target,
                    address: r.address,
                    outcome: r.outcome,
                    detail: async_graphql::Json(r.detail),
                })
                .collect(),
            next,
        })
    }
}
