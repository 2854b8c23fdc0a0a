//! GraphQL: templates from a directory or a git repository (`syncTemplates`) and the hub's own
//! git sync of a project (`gitSync`, `bindGitRepository`, `syncNow`). See docs/gitops.md.
use super::ctx;
use crate::{
    audit,
    gitops::{self, SyncFile, SyncRequest},
    identity::Role,
};
use async_graphql::{Context, InputObject, Object, Result, SimpleObject};

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

/// What a sync did, or would do in a dry run.
#[derive(SimpleObject)]
pub struct SyncReport {
    created: Vec<SyncedTemplate>,
    updated: Vec<SyncedTemplate>,
    unchanged: Vec<SyncedTemplate>,
    archived: Vec<SyncedTemplate>,
    invalid: Vec<InvalidFile>,
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
            commit: r.commit,
            dry_run: r.dry_run,
        }
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
}
