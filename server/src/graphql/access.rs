//! GraphQL: who am I, projects, members and roles, API tokens, users (administrators).
use super::{ctx, parse_id, project};
use crate::{
    audit,
    error::ApiError,
    identity::{tokens, users, Actor, Role},
};
use async_graphql::{Context, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The caller.
#[derive(SimpleObject)]
pub struct Me {
    /// `user:<email>` or `token:<name>`, as the audit log names it.
    pub actor: String,
    /// `user` or `token`.
    pub kind: String,
    pub email: Option<String>,
    /// Instance administrator: every project, every role.
    pub admin: bool,
    /// The projects the caller can read, with its role in each.
    pub projects: Vec<ProjectRole>,
}

#[derive(SimpleObject)]
pub struct ProjectRole {
    pub project: Project,
    pub role: Role,
}

#[derive(SimpleObject, Clone)]
pub struct Project {
    pub id: ID,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ProjectRow {
    id: Uuid,
    name: String,
    created_at: DateTime<Utc>,
}

impl From<ProjectRow> for Project {
    fn from(r: ProjectRow) -> Self {
        Project {
            id: ID(r.id.to_string()),
            name: r.name,
            created_at: r.created_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct Member {
    pub email: String,
    pub name: String,
    pub role: Role,
    /// `manual`, or `sso:<provider>` for a role that a claim mapping gave.
    pub source: String,
    pub since: DateTime<Utc>,
}

impl From<users::MemberRow> for Member {
    fn from(m: users::MemberRow) -> Self {
        Member {
            email: m.email,
            name: m.name,
            role: Role::parse("role", &m.role).unwrap_or(Role::Viewer),
            source: m.source,
            since: m.created_at,
        }
    }
}

/// An API token (its secret is shown only when it is made).
#[derive(SimpleObject)]
pub struct ApiToken {
    pub id: ID,
    pub name: String,
    pub role: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<tokens::TokenRow> for ApiToken {
    fn from(t: tokens::TokenRow) -> Self {
        ApiToken {
            id: ID(t.id.to_string()),
            name: t.name,
            role: t.role,
            created_by: t.created_by,
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// A new API token and its secret, shown only now.
#[derive(SimpleObject)]
pub struct NewApiToken {
    pub token: ApiToken,
    pub secret: String,
}

#[derive(SimpleObject)]
pub struct User {
    pub id: ID,
    pub email: String,
    pub name: String,
    pub admin: bool,
    /// The SSO provider that made or last signed in this user, if any.
    pub sso_provider: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub disabled: bool,
}

impl From<users::UserRow> for User {
    fn from(u: users::UserRow) -> Self {
        User {
            id: ID(u.id.to_string()),
            email: u.email,
            name: u.name,
            admin: u.is_admin,
            sso_provider: u.sso_provider,
            created_at: u.created_at,
            last_login_at: u.last_login_at,
            disabled: u.disabled_at.is_some(),
        }
    }
}

/// A new user and, when it was generated, its password (shown only now).
#[derive(SimpleObject)]
pub struct NewUser {
    pub user: User,
    pub password: Option<String>,
}

async fn projects_of(
    s: &crate::state::AppState,
    visible: Option<Vec<Uuid>>,
) -> Result<Vec<ProjectRow>, ApiError> {
    Ok(sqlx::query_as(
        "SELECT id, name, created_at FROM projects WHERE ($1::uuid[] IS NULL OR id = ANY($1)) ORDER BY name",
    )
    .bind(visible)
    .fetch_all(&s.pool)
    .await?)
}

#[derive(Default)]
pub struct AccessQuery;

#[Object]
impl AccessQuery {
    /// The caller, with its role in each project it can read.
    async fn me(&self, c: &Context<'_>) -> Result<Me> {
        let (s, p) = ctx(c)?;
        let mut projects = Vec::new();
        for row in projects_of(s, p.visible(&s.pool).await?).await? {
            if let Some(role) = p.role_in(&s.pool, row.id).await? {
                projects.push(ProjectRole {
                    project: row.into(),
                    role,
                });
            }
        }
        let (kind, email) = match &p.actor {
            Actor::User { email, .. } => ("user", Some(email.clone())),
            Actor::Token { .. } => ("token", None),
        };
        Ok(Me {
            actor: p.actor(),
            kind: kind.into(),
            email,
            admin: p.admin,
            projects,
        })
    }

    /// Projects the caller can read.
    async fn projects(&self, c: &Context<'_>) -> Result<Vec<Project>> {
        let (s, p) = ctx(c)?;
        Ok(projects_of(s, p.visible(&s.pool).await?)
            .await?
            .into_iter()
            .map(Project::from)
            .collect())
    }

    /// Members of a project and their roles (owners).
    async fn members(&self, c: &Context<'_>, project: String) -> Result<Vec<Member>> {
        let (s, p) = ctx(c)?;
        let pid = super::project(s, p, &project, Role::Owner).await?;
        Ok(users::members(&s.pool, pid)
            .await?
            .into_iter()
            .map(Member::from)
            .collect())
    }

    /// The project's API tokens, newest first, revoked ones included (owners).
    async fn api_tokens(&self, c: &Context<'_>, project: String) -> Result<Vec<ApiToken>> {
        let (s, p) = ctx(c)?;
        let pid = super::project(s, p, &project, Role::Owner).await?;
        Ok(tokens::list(&s.pool, pid)
            .await?
            .into_iter()
            .map(ApiToken::from)
            .collect())
    }

    /// Every user (instance administrators).
    async fn users(&self, c: &Context<'_>) -> Result<Vec<User>> {
        let (s, p) = ctx(c)?;
        p.require_admin()?;
        Ok(users::list(&s.pool)
            .await?
            .into_iter()
            .map(User::from)
            .collect())
    }
}

#[derive(Default)]
pub struct AccessMutation;

#[Object]
impl AccessMutation {
    /// Creates a project (instance administrators); `owner` (an existing user's email) becomes
    /// its first owner, by default the caller when the caller is a user.
    async fn create_project(
        &self,
        c: &Context<'_>,
        name: String,
        owner: Option<String>,
    ) -> Result<Project> {
        let (s, p) = ctx(c)?;
        let res = async {
            p.require_admin()?;
            let name = valid_project_name(&name)?;
            let owner = match (&owner, &p.actor) {
                (Some(o), _) => Some(o.clone()),
                (None, Actor::User { email, .. }) => Some(email.clone()),
                (None, Actor::Token { .. }) => None,
            };
            let row: ProjectRow = sqlx::query_as(
                "INSERT INTO projects (id, name, created_by) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING RETURNING id, name, created_at",
            )
            .bind(Uuid::new_v4())
            .bind(name)
            .bind(p.actor())
            .fetch_optional(&s.pool)
            .await?
            .ok_or_else(|| ApiError::Conflict(format!("a project named {name:?} exists")))?;
            if let Some(o) = owner {
                users::set_member(&s.pool, row.id, &o, Role::Owner).await?;
            }
            Ok::<_, ApiError>(row)
        }
        .await;
        audit::record(
            &s.pool,
            p,
            res.as_ref().ok().map(|r| r.id),
            "project.create",
            name.clone(),
            &res,
        )
        .await;
        Ok(res?.into())
    }

    /// Deletes a project and everything in it: templates, runs, delegates, tokens (owners).
    /// Refused while a run of it is unfinished.
    async fn delete_project(&self, c: &Context<'_>, name: String) -> Result<bool> {
        let (s, p) = ctx(c)?;
        let pid = project(s, p, &name, Role::Owner).await?;
        let res = async {
            if pid == crate::db::DEFAULT_PROJECT {
                return Err(ApiError::bad("name", "the default project cannot be deleted"));
            }
            let mut tx = s.pool.begin().await?;
            let (busy,): (i64,) = sqlx::query_as(
                "SELECT count(*) FROM runs WHERE project_id = $1 AND state NOT IN ('PASSED','FAILED','ABORTED','ERROR')",
            )
            .bind(pid)
            .fetch_one(&mut *tx)
            .await?;
            if busy > 0 {
                return Err(ApiError::Conflict(format!(
                    "{busy} run(s) of this project are unfinished; abort them first"
                )));
            }
            sqlx::query("DELETE FROM runs WHERE project_id = $1").bind(pid).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM projects WHERE id = $1").bind(pid).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        }
        .await;
        audit::record(&s.pool, p, Some(pid), "project.delete", name, &res).await;
        res?;
        Ok(true)
    }

    /// Gives a user a role in the project, or changes it (owners). The user must exist (SSO
    /// users exist after their first login). A project always keeps an owner.
    async fn set_member(
        &self,
        c: &Context<'_>,
        project: String,
        email: String,
        role: Role,
    ) -> Result<Member> {
        let (s, p) = ctx(c)?;
        let pid = super::project(s, p, &project, Role::Owner).await?;
        let res = users::set_member(&s.pool, pid, &email, role).await;
        audit::record(
            &s.pool,
            p,
            Some(pid),
            "member.set",
            format!("{} as {}", email.trim(), role.as_str()),
            &res,
        )
        .await;
        Ok(res?.into())
    }

    /// Removes a user from the project (owners). A project always keeps an owner.
    async fn remove_member(&self, c: &Context<'_>, project: String, email: String) -> Result<bool> {
        let (s, p) = ctx(c)?;
        let pid = super::project(s, p, &project, Role::Owner).await?;
        let res = users::remove_member(&s.pool, pid, &email).await;
        audit::record(
            &s.pool,
            p,
            Some(pid),
            "member.remove",
            email.trim().to_string(),
            &res,
        )
        .await;
        res?;
        Ok(true)
    }

    /// An API token for CI/CD with one role in one project (owners), valid until `expiresAt`
    /// (default: no expiry). The secret is in the answer only: the hub stores its hash.
    async fn create_api_token(
        &self,
        c: &Context<'_>,
        project: String,
        name: String,
        role: Role,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<NewApiToken> {
        let (s, p) = ctx(c)?;
        let pid = super::project(s, p, &project, Role::Owner).await?;
        let res = tokens::create(
            &s.pool,
            Some(pid),
            &name,
            Some(role),
            expires_at,
            &p.actor(),
        )
        .await;
        audit::record(
            &s.pool,
            p,
            Some(pid),
            "api_token.create",
            format!("{} ({})", name.trim(), role.as_str()),
            &res,
        )
        .await;
        let (row, secret) = res?;
        Ok(NewApiToken {
            token: row.into(),
            secret,
        })
    }

    /// Revokes an API token at once (owners of its project).
    async fn revoke_api_token(&self, c: &Context<'_>, id: ID) -> Result<ApiToken> {
        let (s, p) = ctx(c)?;
        let tid = parse_id("id", &id)?;
        let t = tokens::get(&s.pool, tid).await?;
        let res = match t.project_id {
            Some(pid) => match p.require_on(&s.pool, pid, Role::Owner, "api token").await {
                Ok(_) => tokens::revoke(&s.pool, tid).await,
                Err(e) => Err(e),
            },
            None => match p.require_admin() {
                Ok(()) => tokens::revoke(&s.pool, tid).await,
                Err(_) => Err(ApiError::NotFound("api token".into())),
            },
        };
        audit::record(
            &s.pool,
            p,
            t.project_id,
            "api_token.revoke",
            tid.to_string(),
            &res,
        )
        .await;
        Ok(res?.into())
    }

    /// Creates a local user (instance administrators). Without `password` one is generated and
    /// returned once.
    async fn create_user(
        &self,
        c: &Context<'_>,
        email: String,
        #[graphql(default)] name: String,
        password: Option<String>,
        #[graphql(default = false)] admin: bool,
    ) -> Result<NewUser> {
        let (s, p) = ctx(c)?;
        let generated = password
            .is_none()
            .then(crate::identity::passwords::generate);
        let res = match p.require_admin() {
            Ok(()) => {
                let pw = password.as_deref().or(generated.as_deref());
                users::create(&s.pool, &email, &name, pw, admin).await
            }
            Err(e) => Err(e),
        };
        audit::record(
            &s.pool,
            p,
            None,
            "user.create",
            email.trim().to_lowercase(),
            &res,
        )
        .await;
        Ok(NewUser {
            user: res?.into(),
            password: generated,
        })
    }
}

/// Project names: 1 to 63 of a-z, 0-9 and '-', starting with a letter or digit.
fn valid_project_name(name: &str) -> Result<&str, ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-');
    if ok {
        Ok(name)
    } else {
        Err(ApiError::bad(
            "name",
            format!("{name:?}: use 1 to 63 of a-z, 0-9 and '-', not starting with '-'"),
        ))
    }
}
