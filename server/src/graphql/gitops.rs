//! GraphQL: templates from a directory or a git repository (`syncTemplates`) and the hub's own
//! git sync of a project (`gitSync`, `bindGitRepository`, `syncNow`). See docs/gitops.md.
use super::ctx;
use crate::{
    audit,
    gitops::{self, SyncFile, SyncRequest},
    identity::Role,
};
use async_graphql::{Context, Enum, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

/// One file of the directory to sync.
#[derive(InputObject)]
pub struct SyncFileInput {
    /// Relative to the directory's root, `/`-separated, e.g. `payments/latency.yaml`.
    path: String,
    yaml: String,
}

/// A template a sync created, updated, left unchanged or archived.
#[derive(SimpleObject)]
pub struct SyncedTemplate {
    path: String,
    name: String,
    /// Its latest version after the sync (what it would be, in a dry run).
    version: i32,
}

impl From<gitops::Synced> for SyncedTemplate {
    fn from(s: gitops::Synced) -> Self {
        SyncedTemplate {
            path: s.path,
            name: s.name,
            version: s.version,
        }
    }
}

/// One problem of an invalid file; the file changed nothing.
#[derive(SimpleObject)]
pub struct InvalidFile {
    path: String,
    line: Option<i32>,
    column: Option<i32>,
    message: String,
    /// `PATH:LINE:COL: message`.
    text: String,
}

impl From<gitops::Invalid> for InvalidFile {
    fn from(i: gitops::Invalid) -> Self {
        let n = |v: Option<usize>| v.map(|v| i32::try_from(v).unwrap_or(i32::MAX));
        InvalidFile {
            text: i.to_string(),
            path: i.path,
            line: n(i.line),
            column: n(i.column),
            message: i.message,
        }
    }
}

/// A schedule declared in a file (`schedule:`) that a sync changed.
#[derive(SimpleObject)]
pub struct SyncedSchedule {
    /// The schedule's name (its template's).
    name: String,
    template: String,
    /// `created`, `updated`, or `paused` (its block was removed or its template archived).
    action: String,
}

/// What a sync did, or would do in a dry run.
#[derive(SimpleObject)]
pub struct SyncReport {
    created: Vec<SyncedTemplate>,
    updated: Vec<SyncedTemplate>,
    unchanged: Vec<SyncedTemplate>,
    archived: Vec<SyncedTemplate>,
    invalid: Vec<InvalidFile>,
    schedules: Vec<SyncedSchedule>,
    commit: Option<String>,
    dry_run: bool,
}

impl From<gitops::SyncReport> for SyncReport {
    fn from(r: gitops::SyncReport) -> Self {
        let m = |v: Vec<gitops::Synced>| v.into_iter().map(SyncedTemplate::from).collect();
        SyncReport {
            created: m(r.created),
            updated: m(r.updated),
            unchanged: m(r.unchanged),
            archived: m(r.archived),
            invalid: r.invalid.into_iter().map(InvalidFile::from).collect(),
            schedules: r
                .schedules
                .into_iter()
                .map(|s| SyncedSchedule {
                    name: s.name,
                    template: s.template,
                    action: s.action,
                })
                .collect(),
            commit: r.commit,
            dry_run: r.dry_run,
        }
    }
}

/// What a repository binding's credential file holds.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum GitCredentialKind {
    /// An SSH private key (a deploy key); use an ssh URL.
    SshKey,
    /// An HTTPS token (sent as basic auth, user `x-access-token`); use an https URL.
    HttpsToken,
}

/// A project's repository binding.
#[derive(SimpleObject)]
pub struct GitRepository {
    url: String,
    branch: String,
    /// The directory in the repository whose templates are synced ("" = the root).
    path: String,
    /// The file name in the hub's --git-credentials-dir (its content is never shown).
    credential: Option<String>,
    /// Seconds between syncs.
    interval_secs: i32,
    /// Archive templates whose file is gone.
    prune: bool,
    /// The `source` of the templates it manages.
    source: String,
    next_sync_at: DateTime<Utc>,
    /// The replica syncing it now, if one is.
    syncing_on: Option<String>,
}

/// One sync attempt by the hub.
#[derive(SimpleObject)]
pub struct GitSyncAttempt {
    replica: String,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    /// The commit fetched (null when the fetch failed).
    commit: Option<String>,
    /// False when the fetch failed or a file was invalid.
    ok: bool,
    /// Why it failed: unreachable, refused credentials, missing branch or path, invalid files.
    error: Option<String>,
    /// What it changed (null when nothing could be applied).
    report: Option<SyncReport>,
}

impl From<crate::git_sync::SyncRow> for GitSyncAttempt {
    fn from(r: crate::git_sync::SyncRow) -> Self {
        GitSyncAttempt {
            replica: r.replica,
            started_at: r.started_at,
            finished_at: r.finished_at,
            commit: r.git_commit,
            ok: r.ok,
            error: r.error,
            report: r.report.map(|j| j.0.into()),
        }
    }
}

/// A project's git sync status: its binding, the last attempt and the recent ones.
#[derive(SimpleObject)]
pub struct GitSyncStatus {
    /// Null when the project is not bound to a repository.
    repository: Option<GitRepository>,
    /// The latest attempt; when it failed, the templates are those of the last good one.
    last: Option<GitSyncAttempt>,
    /// The commit of the latest successful fetch.
    last_commit: Option<String>,
    /// Recent attempts, newest first.
    history: Vec<GitSyncAttempt>,
}

async fn status(
    s: &crate::state::AppState,
    pid: uuid::Uuid,
    limit: i64,
) -> Result<GitSyncStatus, crate::error::ApiError> {
    let repo = crate::git_sync::repo(&s.pool, pid).await?;
    let hist = crate::git_sync::history(&s.pool, pid, limit).await?;
    let last_commit = hist.iter().find_map(|h| h.git_commit.clone());
    let last = hist.first().cloned().map(GitSyncAttempt::from);
    let history = hist.into_iter().map(GitSyncAttempt::from).collect();
    Ok(GitSyncStatus {
        repository: repo.map(|r| GitRepository {
            source: r.source(),
            syncing_on: r
                .lease_until
                .filter(|u| *u > Utc::now())
                .and(r.lease_holder.clone())
                .map(|h| h.split('/').next().unwrap_or_default().to_string()),
            url: r.url,
            branch: r.branch,
            path: r.path,
            credential: r.credential,
            interval_secs: r.interval_secs,
            prune: r.prune,
            next_sync_at: r.next_sync_at,
        }),
        last,
        last_commit,
        history,
    })
}

#[derive(Default)]
pub struct GitOpsQuery;

#[Object]
impl GitOpsQuery {
    /// The project's git sync status (viewers).
    async fn git_sync(
        &self,
        c: &Context<'_>,
        #[graphql(default = "default")] project: String,
        #[graphql(default = 20)] limit: i32,
    ) -> Result<GitSyncStatus> {
        let (s, p) = ctx(c)?;
        let pid = super::project(s, p, &project, Role::Viewer).await?;
        Ok(status(s, pid, limit.into()).await?)
    }
}

#[derive(Default)]
pub struct GitOpsMutation;

#[Object]
impl GitOpsMutation {
    /// Makes the project's templates follow a directory, in one transaction: each valid file
    /// creates its template or adds a version when its text changed; an invalid file changes
    /// nothing of its template and is reported with its line and column; with `prune`, the
    /// templates of `source` whose file is gone are archived (never deleted). `source` names
    /// the directory (e.g. the repository and path); only its templates are archived.
    #[allow(clippy::too_many_arguments)]
    async fn sync_templates(
        &self,
        c: &Context<'_>,
        #[graphql(default = "default")] project: String,
        source: String,
        files: Vec<SyncFileInput>,
        #[graphql(default)] prune: bool,
        #[graphql(default)] dry_run: bool,
        commit: Option<String>,
    ) -> Result<SyncReport> {
        let (s, p) = ctx(c)?;
        let pid = super::project(s, p, &project, Role::Editor).await?;
        let req = SyncRequest {
            project: pid,
            source,
            files: files
                .into_iter()
                .map(|f| SyncFile {
                    path: f.path,
                    yaml: f.yaml,
                })
                .collect(),
            prune,
            dry_run,
            commit,
            actor: p.actor(),
        };
        let res = gitops::sync(&s.pool, &req).await;
        if !dry_run {
            let mut detail = serde_json::Map::new();
            if let Ok(r) = &res {
                for (k, n) in [
                    ("created", r.created.len()),
                    ("updated", r.updated.len()),
                    ("archived", r.archived.len()),
                    ("invalid", r.invalid.len()),
                ] {
                    detail.insert(k.into(), n.into());
                }
            }
            audit::record_detail(
                &s.pool,
                p,
                Some(pid),
                "template.sync",
                req.source.clone(),
                &res,
                detail,
            )
            .await;
        }
        Ok(res?.into())
    }

    /// Binds the project to a git repository (owners): the hub fetches `branch` every
    /// `interval` (e.g. `5m`) and on syncNow, and syncs the templates under `path` with the
    /// rules of syncTemplates. `credential` names a file in the hub's --git-credentials-dir.
    /// The first sync is due at once.
    #[allow(clippy::too_many_arguments)]
    async fn bind_git_repository(
        &self,
        c: &Context<'_>,
        #[graphql(default = "default")] project: String,
        url: String,
        #[graphql(default = "main")] branch: String,
        #[graphql(default)] path: String,
        credential: Option<String>,
        credential_kind: Option<GitCredentialKind>,
        #[graphql(default = "5m")] interval: String,
        #[graphql(default = true)] prune: bool,
    ) -> Result<GitSyncStatus> {
        let (s, p) = ctx(c)?;
        let pid = super::project(s, p, &project, Role::Owner).await?;
        let res = async {
            let interval = interval
                .parse::<faultline_experiment::Dur>()
                .map_err(|e| crate::error::ApiError::bad("interval", e.to_string()))?
                .0;
            let kind = match credential_kind {
                Some(GitCredentialKind::SshKey) => crate::git_sync::CredentialKind::SshKey,
                Some(GitCredentialKind::HttpsToken) => crate::git_sync::CredentialKind::HttpsToken,
                None if url.starts_with("https://") => crate::git_sync::CredentialKind::HttpsToken,
                None => crate::git_sync::CredentialKind::SshKey,
            };
            let b = crate::git_sync::Binding {
                url: url.trim().to_string(),
                branch: branch.trim().to_string(),
                path: path.trim().to_string(),
                credential: credential.filter(|c| !c.is_empty()).map(|c| (c, kind)),
                interval,
                prune,
            };
            crate::git_sync::bind(&s.pool, &s.git.settings, pid, &b, &p.actor()).await
        }
        .await;
        audit::record(&s.pool, p, Some(pid), "git.bind", url.clone(), &res).await;
        res?;
        s.git.wake.notify_one();
        Ok(status(s, pid, 20).await?)
    }

    /// Unbinds the project from its repository (owners); its templates stay as they are.
    async fn unbind_git_repository(
        &self,
        c: &Context<'_>,
        #[graphql(default = "default")] project: String,
    ) -> Result<bool> {
        let (s, p) = ctx(c)?;
        let pid = super::project(s, p, &project, Role::Owner).await?;
        let res = crate::git_sync::unbind(&s.pool, pid).await;
        audit::record(&s.pool, p, Some(pid), "git.unbind", project.clone(), &res).await;
        Ok(res?)
    }

    /// Syncs the project's repository now (editors) and returns the status after that sync.
    /// When another replica is syncing it at this moment, that one syncs again as soon as it is
    /// done, and this waits for it (at most twice --git-timeout).
    async fn sync_now(
        &self,
        c: &Context<'_>,
        #[graphql(default = "default")] project: String,
    ) -> Result<GitSyncStatus> {
        let (s, p) = ctx(c)?;
        let pid = super::project(s, p, &project, Role::Editor).await?;
        crate::git_sync::sync_now(&s.pool, &s.git, &s.replica, pid).await?;
        Ok(status(s, pid, 20).await?)
    }
}
