//! Who is calling and what they may do: the one place where access is decided.
//!
//! A request acts as a [`Principal`]: a user (a browser session or a session token) or an API
//! token. Users get project roles from `memberships` (owner > editor > viewer) and instance
//! administrators get every role everywhere; an API token carries one project and one role (or is
//! an instance token with the admin role). Every resolver asks [`Principal::require`] (or
//! [`Principal::visible`] for lists) before it reads or writes project data; a project the
//! caller has no role in looks exactly like a project that does not exist.
pub mod authn;
pub mod origin;
pub mod passwords;
pub mod routes;
pub mod sessions;
pub mod sso;
pub mod tokens;
pub mod users;

use crate::error::{ApiError, ApiResult};
use sqlx::PgPool;
use std::{net::IpAddr, time::Duration};
use uuid::Uuid;

/// How often a long-lived request (a subscription) re-checks its caller with
/// [`Principal::recheck`]: a logout, a revoked token or a removed role ends it within this.
pub const RECHECK_EVERY: Duration = Duration::from_secs(2);

/// A project role. Each includes the ones below it.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    async_graphql::Enum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything in the project.
    Viewer,
    /// Also writes templates, starts and aborts runs.
    Editor,
    /// Also manages members, API tokens, delegates, halts, and deletes the project.
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Owner => "owner",
        }
    }

    /// Parses a stored or configured role name; `field` names the input in the error.
    pub fn parse(field: &str, s: &str) -> ApiResult<Role> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "editor" => Ok(Role::Editor),
            "owner" => Ok(Role::Owner),
            _ => Err(ApiError::bad(
                field,
                format!("{s:?} is not a role (owner, editor or viewer)"),
            )),
        }
    }
}

/// Who acts.
#[derive(Clone, Debug)]
pub enum Actor {
    User {
        id: Uuid,
        email: String,
        /// The session the request came with (logout revokes it).
        session: Uuid,
    },
    Token {
        id: Uuid,
        name: String,
        /// `None`: an instance token (admin role, every project).
        scope: Option<(Uuid, Role)>,
    },
}

/// The caller of one request, established once at the edge ([`authn`]).
#[derive(Clone, Debug)]
pub struct Principal {
    pub actor: Actor,
    /// Instance administrator: every role in every project, and projects and users themselves.
    pub admin: bool,
    /// Where the request came from (after the trusted-proxy rules), for the audit log.
    pub address: Option<IpAddr>,
}

impl Principal {
    /// Audit-log name of the actor: `user:<email>` or `token:<name>`.
    pub fn actor(&self) -> String {
        match &self.actor {
            Actor::User { email, .. } => format!("user:{email}"),
            Actor::Token { name, .. } => format!("token:{name}"),
        }
    }

    pub fn user_id(&self) -> Option<Uuid> {
        match &self.actor {
            Actor::User { id, .. } => Some(*id),
            Actor::Token { .. } => None,
        }
    }

    /// The caller's role in `project`, if any (instance administrators are owners everywhere).
    pub async fn role_in(&self, pool: &PgPool, project: Uuid) -> ApiResult<Option<Role>> {
        if self.admin {
            return Ok(Some(Role::Owner));
        }
        match &self.actor {
            Actor::Token { scope, .. } => Ok(scope.and_then(|(p, r)| (p == project).then_some(r))),
            Actor::User { id, .. } => {
                let row: Option<(String,)> = sqlx::query_as(
                    "SELECT role FROM memberships WHERE project_id = $1 AND user_id = $2",
                )
                .bind(project)
                .bind(id)
                .fetch_optional(pool)
                .await?;
                row.map(|(r,)| Role::parse("role", &r)).transpose()
            }
        }
    }

    /// Refuses unless the caller has at least `need` in `project`. Without any role there the
    /// project is reported as not found, so its existence does not leak.
    pub async fn require(&self, pool: &PgPool, project: Uuid, need: Role) -> ApiResult<Role> {
        match self.role_in(pool, project).await? {
            Some(r) if r >= need => Ok(r),
            Some(r) => Err(ApiError::Forbidden(format!(
                "role {} may not do this (needs {} or above)",
                r.as_str(),
                need.as_str()
            ))),
            None => Err(ApiError::NotFound("project".into())),
        }
    }

    /// Like [`Principal::require`] for an object found by id: without any role in its project
    /// the object itself is reported as not found.
    pub async fn require_on(
        &self,
        pool: &PgPool,
        project: Uuid,
        need: Role,
        what: &str,
    ) -> ApiResult<Role> {
        self.require(pool, project, need)
            .await
            .map_err(|e| match e {
                ApiError::NotFound(_) => ApiError::NotFound(what.to_string()),
                e => e,
            })
    }

    /// The projects whose data the caller may read: `None` means every project.
    pub async fn visible(&self, pool: &PgPool) -> ApiResult<Option<Vec<Uuid>>> {
        if self.admin {
            return Ok(None);
        }
        match &self.actor {
            Actor::Token { scope, .. } => Ok(Some(scope.iter().map(|(p, _)| *p).collect())),
            Actor::User { id, .. } => {
                let rows: Vec<(Uuid,)> =
                    sqlx::query_as("SELECT project_id FROM memberships WHERE user_id = $1")
                        .bind(id)
                        .fetch_all(pool)
                        .await?;
                Ok(Some(rows.into_iter().map(|(p,)| p).collect()))
            }
        }
    }

    /// The caller as of now, for a request that outlives the check at its start (a
    /// subscription): refused when the session ended (logout, expiry, disabled account) or the
    /// API token was revoked or expired; an administrator flag taken away is taken away here.
    /// One indexed query.
    pub async fn refresh(&self, pool: &PgPool) -> ApiResult<Principal> {
        let admin = match &self.actor {
            Actor::User { id, session, .. } => sessions::still_valid(pool, *session, *id).await?,
            Actor::Token { id, .. } => {
                tokens::still_valid(pool, *id).await?;
                self.admin
            }
        };
        Ok(Principal {
            admin,
            ..self.clone()
        })
    }

    /// [`Principal::refresh`], then [`Principal::require`] in `project`: what a long-lived
    /// request re-checks every [`RECHECK_EVERY`]. A role that is gone is reported as such
    /// (the caller already knew the object), not as "not found".
    pub async fn recheck(&self, pool: &PgPool, project: Uuid, need: Role) -> ApiResult<Principal> {
        let now = self.refresh(pool).await?;
        match now.require(pool, project, need).await {
            Ok(_) => Ok(now),
            Err(ApiError::NotFound(_)) => Err(ApiError::Forbidden(
                "the caller no longer has a role in this project".into(),
            )),
            Err(e) => Err(e),
        }
    }

    pub fn require_admin(&self) -> ApiResult<()> {
        if self.admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "only an instance administrator may do this".into(),
            ))
        }
    }
}
