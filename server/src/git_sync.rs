//! The hub's own git sync: a project bound to a repository (store: `git_repos`), every
//! replica's loop that takes a due repository's lease, fetches it (`git.rs`) and applies the
//! files with the same rules as `faultline template sync` (`gitops.rs`), and the record of every
//! attempt (`git_syncs`) behind `gitSync(project)`. Only the lease holder syncs a project: the
//! lease is taken with `UPDATE … WHERE lease_until < now() … FOR UPDATE SKIP LOCKED`, and the
//! result is only stored while the lease is still held. See docs/gitops.md.
use crate::{
    error::{ApiError, ApiResult},
    git::{self, Credential, Remote},
    gitops::{self, SyncReport, SyncRequest},
};
use chrono::{DateTime, Utc};
use sqlx::{types::Json, PgPool};
use std::{path::PathBuf, sync::Arc, time::Duration};
use uuid::Uuid;

/// The hub's git settings (flags), shared by the loop and `syncNow`.
#[derive(Clone, Debug)]
pub struct Settings {
    pub git: git::Settings,
    pub credentials_dir: Option<PathBuf>,
    pub poll: Duration,
}

impl Settings {
    /// How long a lease lasts: two git commands and the apply, with room to spare.
    fn lease(&self) -> Duration {
        self.git.timeout * 2 + Duration::from_secs(60)
    }
}

/// The replica's side of the git sync: its settings, its name, and a wake-up for `syncNow`.
pub struct GitSync {
    pub settings: Settings,
    pub wake: tokio::sync::Notify,
}

/// A project's binding.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RepoRow {
    pub project_id: Uuid,
    pub url: String,
    pub branch: String,
    pub path: String,
    pub credential: Option<String>,
    pub credential_kind: Option<String>,
    pub interval_secs: i32,
    pub prune: bool,
    pub next_sync_at: DateTime<Utc>,
    pub lease_holder: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

const REPO_COLUMNS: &str =
    "project_id, url, branch, path, credential, credential_kind, interval_secs, prune, \
     next_sync_at, lease_holder, lease_until, created_by, created_at";

impl RepoRow {
    /// The `templates.source` of this binding: only its templates are archived by its syncs.
    pub fn source(&self) -> String {
        format!("git:{}#{}:{}", self.url, self.branch, self.path)
    }
}

/// One recorded sync attempt.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SyncRow {
    pub id: i64,
    pub replica: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub git_commit: Option<String>,
    pub ok: bool,
    pub error: Option<String>,
    pub report: Option<Json<SyncReport>>,
}

/// What `bindGitRepository` asks for.
#[derive(Clone, Debug)]
pub struct Binding {
    pub url: String,
    pub branch: String,
    pub path: String,
    /// A file name in `--git-credentials-dir`, and what it holds.
    pub credential: Option<(String, CredentialKind)>,
    pub interval: Duration,
    pub prune: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    SshKey,
    HttpsToken,
}

impl CredentialKind {
    fn as_str(self) -> &'static str {
        match self {
            CredentialKind::SshKey => "ssh_key",
            CredentialKind::HttpsToken => "https_token",
        }
    }
}

/// The credential file a binding names, inside the credentials directory.
fn credential_path(s: &Settings, name: &str) -> ApiResult<PathBuf> {
    let ok_name = !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !ok_name {
        return Err(ApiError::bad(
            "credential",
            format!("{name:?} is not a file name (letters, digits, . _ -)"),
        ));
    }
    let dir = s.credentials_dir.as_ref().ok_or_else(|| {
        ApiError::bad(
            "credential",
            "this hub has no --git-credentials-dir; ask its operator to set one",
        )
    })?;
    Ok(dir.join(name))
}

/// Binds the project to a repository (replacing a binding it had); the first sync is due at once.
pub async fn bind(
    pool: &PgPool,
    s: &Settings,
    project: Uuid,
    b: &Binding,
    actor: &str,
) -> ApiResult<RepoRow> {
    git::check_remote(&b.url, &b.branch, &s.git.protocols).map_err(|(f, m)| ApiError::bad(f, m))?;
    let path = b.path.trim_matches('/');
    if !path.is_empty() {
        gitops::check_path(path).map_err(|_| {
            ApiError::bad(
                "path",
                format!("{path:?} is not a relative path in the repository"),
            )
        })?;
    }
    if let Some((name, _)) = &b.credential {
        let file = credential_path(s, name)?;
        if !file.is_file() {
            return Err(ApiError::bad(
                "credential",
                format!("{name:?} is not a file in the hub's --git-credentials-dir"),
            ));
        }
    }
    let secs = b.interval.as_secs();
    if !(1..=86_400).contains(&secs) {
        return Err(ApiError::bad("interval", "must be from 1s to 24h"));
    }
    Ok(sqlx::query_as::<_, RepoRow>(&format!(
        "INSERT INTO git_repos (project_id, url, branch, path, credential, credential_kind, interval_secs, prune, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (project_id) DO UPDATE SET url = EXCLUDED.url, branch = EXCLUDED.branch, path = EXCLUDED.path, \
           credential = EXCLUDED.credential, credential_kind = EXCLUDED.credential_kind, \
           interval_secs = EXCLUDED.interval_secs, prune = EXCLUDED.prune, next_sync_at = now() \
         RETURNING {REPO_COLUMNS}"
    ))
    .bind(project)
    .bind(&b.url)
    .bind(&b.branch)
    .bind(path)
    .bind(b.credential.as_ref().map(|c| c.0.as_str()))
    .bind(b.credential.as_ref().map(|c| c.1.as_str()))
    .bind(secs as i32)
    .bind(b.prune)
    .bind(actor)
    .fetch_one(pool)
    .await?)
}

/// Unbinds the project; its templates stay as they are (no longer archived by a sync).
pub async fn unbind(pool: &PgPool, project: Uuid) -> ApiResult<bool> {
    Ok(sqlx::query("DELETE FROM git_repos WHERE project_id = $1")
        .bind(project)
        .execute(pool)
        .await?
        .rows_affected()
        > 0)
}

pub async fn repo(pool: &PgPool, project: Uuid) -> ApiResult<Option<RepoRow>> {
    Ok(sqlx::query_as::<_, RepoRow>(&format!(
        "SELECT {REPO_COLUMNS} FROM git_repos WHERE project_id = $1"
    ))
    .bind(project)
    .fetch_optional(pool)
    .await?)
}

/// The project's recorded syncs, newest first.
pub async fn history(pool: &PgPool, project: Uuid, limit: i64) -> ApiResult<Vec<SyncRow>> {
    Ok(sqlx::query_as::<_, SyncRow>(
        "SELECT id, replica, started_at, finished_at, git_commit, ok, error, report FROM git_syncs \
         WHERE project_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(project)
    .bind(limit.clamp(1, 1000))
    .fetch_all(pool)
    .await?)
}

/// A lease on one repository.
struct Lease {
    repo: RepoRow,
    holder: String,
    started_at: DateTime<Utc>,
}

/// Takes the lease of a due repository (or of `only`, due or not), if no replica holds it.
async fn claim(
    pool: &PgPool,
    s: &Settings,
    replica: &str,
    only: Option<Uuid>,
) -> ApiResult<Option<Lease>> {
    let holder = format!("{replica}/{}", Uuid::new_v4());
    let row = sqlx::query_as::<_, RepoRow>(&format!(
        "UPDATE git_repos SET lease_holder = $1, lease_until = clock_timestamp() + make_interval(secs => $2) \
         WHERE project_id = (SELECT project_id FROM git_repos \
           WHERE (lease_until IS NULL OR lease_until < clock_timestamp()) \
             AND ($3::uuid IS NULL AND next_sync_at <= clock_timestamp() OR project_id = $3) \
           ORDER BY next_sync_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
         RETURNING {REPO_COLUMNS}"
    ))
    .bind(&holder)
    .bind(s.lease().as_secs_f64())
    .bind(only)
    .fetch_optional(pool)
    .await?;
    let (started_at,): (DateTime<Utc>,) = sqlx::query_as("SELECT clock_timestamp()")
        .fetch_one(pool)
        .await?;
    Ok(row.map(|repo| Lease {
        repo,
        holder,
        started_at,
    }))
}

/// Fetches and applies one leased repository, then records the attempt and releases the lease,
/// in one transaction that first checks the lease is still ours.
async fn sync_leased(pool: &PgPool, s: &Settings, replica: &str, l: Lease) -> ApiResult<()> {
    let r = &l.repo;
    let cred = match (&r.credential, r.credential_kind.as_deref()) {
        (Some(name), Some("ssh_key")) => credential_path(s, name).map(Credential::SshKey),
        (Some(name), _) => credential_path(s, name).map(Credential::HttpsToken),
        (None, _) => Ok(Credential::None),
    };
    let remote = Remote {
        url: r.url.clone(),
        branch: r.branch.clone(),
        path: r.path.clone(),
    };
    let fetched = match cred {
        Ok(c) => git::fetch(&remote, &c, &s.git).await.map_err(|e| e.0),
        Err(e) => Err(e.to_string()),
    };
    let mut tx = pool.begin().await?;
    let held: Option<(String,)> = sqlx::query_as(
        "SELECT lease_holder FROM git_repos WHERE project_id = $1 AND lease_holder = $2 FOR UPDATE",
    )
    .bind(r.project_id)
    .bind(&l.holder)
    .fetch_optional(&mut *tx)
    .await?;
    if held.is_none() {
        tracing::warn!(project = %r.project_id, "git sync lease lost; result dropped");
        return Ok(());
    }
    let (commit, report, error) = match fetched {
        Err(e) => (None, None, Some(e)),
        Ok(f) => {
            let req = SyncRequest {
                project: r.project_id,
                source: r.source(),
                files: f.files,
                prune: r.prune,
                dry_run: false,
                commit: Some(f.commit.clone()),
                actor: format!("git-sync:{}", r.url),
            };
            match gitops::sync_in(&mut tx, &req).await {
                Ok(rep) => {
                    let err = (!rep.invalid.is_empty()).then(|| {
                        let lines: Vec<String> =
                            rep.invalid.iter().take(20).map(|i| i.to_string()).collect();
                        format!(
                            "{} invalid file problem(s) (their templates were left as they were): {}",
                            rep.invalid.len(),
                            lines.join("; ")
                        )
                    });
                    (Some(f.commit), Some(rep), err)
                }
                Err(e) => {
                    // The transaction is spoiled: record the failure in a fresh one.
                    drop(tx);
                    tracing::error!(project = %r.project_id, error = %e, "git sync apply failed");
                    tx = pool.begin().await?;
                    (
                        Some(f.commit),
                        None,
                        Some(format!("applying the files failed: {e}")),
                    )
                }
            }
        }
    };
    sqlx::query(
        "INSERT INTO git_syncs (project_id, replica, started_at, git_commit, ok, error, report) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(r.project_id)
    .bind(replica)
    .bind(l.started_at)
    .bind(&commit)
    .bind(error.is_none())
    .bind(&error)
    .bind(report.as_ref().map(Json))
    .execute(&mut *tx)
    .await?;
    // A syncNow asked while this sync ran gets another sync at once.
    sqlx::query(
        "UPDATE git_repos SET lease_holder = NULL, lease_until = NULL, \
           next_sync_at = CASE WHEN requested_at > $3 THEN clock_timestamp() \
             ELSE clock_timestamp() + make_interval(secs => interval_secs) END \
         WHERE project_id = $1 AND lease_holder = $2",
    )
    .bind(r.project_id)
    .bind(&l.holder)
    .bind(l.started_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    match &error {
        None => tracing::info!(project = %r.project_id, commit = ?commit, "git sync done"),
        Some(e) => tracing::warn!(project = %r.project_id, error = %e, "git sync failed"),
    }
    Ok(())
}

/// `syncNow`: syncs the project at once on this replica, or, when another replica holds its
/// lease, makes that one sync again as soon as it is done and waits for that sync (bounded), so
/// the status the caller reads next is of a sync that started after the request.
pub async fn sync_now(pool: &PgPool, g: &GitSync, replica: &str, project: Uuid) -> ApiResult<()> {
    let asked: Option<(DateTime<Utc>,)> = sqlx::query_as(
        "UPDATE git_repos SET requested_at = clock_timestamp(), next_sync_at = clock_timestamp() \
         WHERE project_id = $1 RETURNING requested_at",
    )
    .bind(project)
    .fetch_optional(pool)
    .await?;
    let Some((asked,)) = asked else {
        return Err(ApiError::NotFound(
            "a git repository bound to this project".into(),
        ));
    };
    if let Some(l) = claim(pool, &g.settings, replica, Some(project)).await? {
        return sync_leased(pool, &g.settings, replica, l).await;
    }
    g.wake.notify_one();
    let deadline =
        tokio::time::Instant::now() + g.settings.git.timeout * 2 + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        let done: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM git_syncs WHERE project_id = $1 AND started_at >= $2 LIMIT 1",
        )
        .bind(project)
        .bind(asked)
        .fetch_optional(pool)
        .await?;
        if done.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Every replica's loop: sync each due repository whose lease it takes, until `stop`.
pub async fn run(
    pool: PgPool,
    g: Arc<GitSync>,
    replica: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        match claim(&pool, &g.settings, &replica, None).await {
            Ok(Some(l)) => {
                let project = l.repo.project_id;
                let holder = l.holder.clone();
                // A stopping replica does not wait for a clone: dropping the sync kills git,
                // and the lease is handed back so that another replica syncs at once.
                tokio::select! {
                    r = sync_leased(&pool, &g.settings, &replica, l) => {
                        if let Err(e) = r {
                            tracing::error!(%project, error = %e, "git sync failed to record");
                        }
                    }
                    _ = stop.changed() => {
                        let _ = sqlx::query(
                            "UPDATE git_repos SET lease_holder = NULL, lease_until = NULL WHERE project_id = $1 AND lease_holder = $2",
                        )
                        .bind(project)
                        .bind(&holder)
                        .execute(&pool)
                        .await;
                        return;
                    }
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "git sync claim failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(g.settings.poll) => {}
            _ = g.wake.notified() => {}
            _ = stop.changed() => {}
        }
    }
}
