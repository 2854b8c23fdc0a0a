//! Templates kept in step with a directory of files: the one sync that `syncTemplates` (the
//! `faultline template sync` CLI) and the hub's own git sync (`git_sync.rs`) both run. It owns
//! the rules (create, a new version only when the text changed, archive with `prune`, an
//! invalid file changes nothing); fetching files from git is `git.rs`'s, storing versions
//! stays `templates.rs`'s. See docs/gitops.md.
use crate::{
    error::{ApiError, ApiResult},
    schedules::{self, Clock, ScheduleRow},
    templates::{self, Origin},
};
use faultline_experiment::template::ScheduleConcurrency;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// The most files one sync takes (the request body limit bounds them too).
pub const MAX_FILES: usize = 5_000;

/// One file of the synced directory, its path relative to the directory's root.
#[derive(Clone, Debug)]
pub struct SyncFile {
    pub path: String,
    pub yaml: String,
}

/// What a sync is asked to do.
#[derive(Clone, Debug)]
pub struct SyncRequest {
    pub project: Uuid,
    /// Names the directory or repository; only this source's templates are ever archived.
    pub source: String,
    pub files: Vec<SyncFile>,
    /// Archive this source's templates whose file is gone.
    pub prune: bool,
    /// Report what would change, change nothing.
    pub dry_run: bool,
    /// The git commit the files are from, recorded on each new version.
    pub commit: Option<String>,
    pub actor: String,
}

/// A template the sync created, updated, left alone or archived.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Synced {
    pub path: String,
    pub name: String,
    /// Its latest version after the sync (would-be version in a dry run).
    pub version: i32,
}

/// One problem of an invalid file, located in it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Invalid {
    pub path: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.path, self.message),
            _ => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// What a sync did (or, in a dry run, would do).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SyncReport {
    pub created: Vec<Synced>,
    pub updated: Vec<Synced>,
    pub unchanged: Vec<Synced>,
    pub archived: Vec<Synced>,
    pub invalid: Vec<Invalid>,
    /// Schedules declared in the files (`schedule:`) that the sync created, updated or paused.
    #[serde(default)]
    pub schedules: Vec<SyncedSchedule>,
    pub commit: Option<String>,
    pub dry_run: bool,
}

/// A schedule a sync changed: `created`, `updated` or `paused` (its block was removed, or its
/// template archived).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SyncedSchedule {
    pub name: String,
    pub template: String,
    pub action: String,
}

/// A template of the project as the sync sees it.
#[derive(sqlx::FromRow)]
struct Existing {
    id: Uuid,
    name: String,
    version: i32,
    yaml: String,
    source: Option<String>,
    git_path: Option<String>,
    archived: bool,
}

pub(crate) fn check_path(path: &str) -> ApiResult<()> {
    let bad = path.is_empty()
        || path.len() > 1024
        || path.starts_with('/')
        || path
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
        || path.contains('\\')
        || path.chars().any(char::is_control);
    if bad {
        return Err(ApiError::bad(
            "files.path",
            format!("{path:?} is not a relative path inside the synced directory"),
        ));
    }
    Ok(())
}

/// Runs one sync in one transaction: it all happens, or (dry run, or an error) nothing does.
/// Syncs of one project are serialized by a transaction-scoped advisory lock.
#[tracing::instrument(skip_all, fields(project = %req.project, source = %req.source, files = req.files.len()))]
pub async fn sync(pool: &PgPool, req: &SyncRequest) -> ApiResult<SyncReport> {
    let mut tx = pool.begin().await?;
    let report = sync_in(&mut tx, req).await?;
    if req.dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(report)
}

/// The sync inside the caller's transaction (the hub's git sync records its outcome in the
/// same one); the caller commits, or rolls back for a dry run.
pub async fn sync_in(tx: &mut PgConnection, req: &SyncRequest) -> ApiResult<SyncReport> {
    if req.source.trim().is_empty() || req.source.len() > 1024 {
        return Err(ApiError::bad("source", "must be 1 to 1024 characters"));
    }
    if req.files.len() > MAX_FILES {
        return Err(ApiError::bad(
            "files",
            format!("at most {MAX_FILES} files per sync"),
        ));
    }
    let mut seen_paths = BTreeSet::new();
    for f in &req.files {
        check_path(&f.path)?;
        if !seen_paths.insert(f.path.as_str()) {
            return Err(ApiError::bad(
                "files.path",
                format!("{:?} is given twice", f.path),
            ));
        }
    }
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('faultline.sync:' || $1::text, 0))")
        .bind(req.project)
        .execute(&mut *tx)
        .await?;
    let existing: Vec<Existing> = sqlx::query_as(
        "SELECT t.id, t.name, v.version, v.yaml, t.source, t.git_path, t.archived_at IS NOT NULL AS archived \
         FROM templates t JOIN LATERAL (SELECT version, yaml FROM template_versions \
           WHERE template_id = t.id ORDER BY version DESC LIMIT 1) v ON true \
         WHERE t.project_id = $1 FOR UPDATE OF t",
    )
    .bind(req.project)
    .fetch_all(&mut *tx)
    .await?;
    let by_name: BTreeMap<&str, &Existing> =
        existing.iter().map(|e| (e.name.as_str(), e)).collect();
    // Templates with an enabled git-managed schedule: only these can need a pause, so a file
    // without a `schedule:` block costs no schedule query.
    let scheduled: BTreeSet<Uuid> = sqlx::query_as::<_, (Uuid,)>(
        "SELECT template_id FROM schedules WHERE project_id = $1 AND git_managed AND enabled",
    )
    .bind(req.project)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| r.0)
    .collect();

    let mut report = SyncReport {
        commit: req.commit.clone(),
        dry_run: req.dry_run,
        ..SyncReport::default()
    };
    // Names the directory holds (valid files) and paths of invalid files: neither is archived.
    let mut names: BTreeMap<String, &str> = BTreeMap::new();
    let mut invalid_paths = BTreeSet::new();
    let mut files: Vec<&SyncFile> = req.files.iter().collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    for f in files {
        let exp = match faultline_experiment::parse_template(&f.yaml) {
            Ok(e) => e,
            Err(errs) => {
                invalid_paths.insert(f.path.as_str());
                report.invalid.extend(errs.0.into_iter().map(|e| Invalid {
                    path: f.path.clone(),
                    line: e.line,
                    column: e.column,
                    message: if e.field.is_empty() {
                        e.message
                    } else {
                        format!("{}: {}", e.field, e.message)
                    },
                }));
                continue;
            }
        };
        let clock = match schedule_clock(&mut *tx, req.project, &exp, &f.yaml).await? {
            Ok(c) => c,
            Err(errs) => {
                invalid_paths.insert(f.path.as_str());
                report.invalid.extend(errs.into_iter().map(|e| Invalid {
                    path: f.path.clone(),
                    line: e.line,
                    column: e.column,
                    message: format!("{}: {}", e.field, e.message),
                }));
                continue;
            }
        };
        let name = exp.metadata.name.clone();
        if let Some(other) = names.get(&name) {
            invalid_paths.insert(f.path.as_str());
            report.invalid.push(Invalid {
                path: f.path.clone(),
                line: None,
                column: None,
                message: format!("metadata.name: {name:?} is also the name in {other}"),
            });
            continue;
        }
        names.insert(name.clone(), f.path.as_str());
        let origin = Origin {
            commit: req.commit.as_deref(),
            path: Some(&f.path),
        };
        match by_name.get(name.as_str()) {
            None => {
                let id = Uuid::new_v4();
                sqlx::query(
                    "INSERT INTO templates (id, project_id, name, source, git_path) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id)
                .bind(req.project)
                .bind(&name)
                .bind(&req.source)
                .bind(&f.path)
                .execute(&mut *tx)
                .await?;
                templates::insert_version(&mut *tx, id, 1, &f.yaml, &exp, &req.actor, origin)
                    .await?;
                if exp.schedule.is_some() {
                    sync_schedule(&mut *tx, req, id, &name, &exp, clock, &mut report).await?;
                }
                report.created.push(Synced {
                    path: f.path.clone(),
                    name,
                    version: 1,
                });
            }
            Some(t) => {
                let changed = t.yaml != f.yaml;
                let moved = t.source.as_deref() != Some(req.source.as_str())
                    || t.git_path.as_deref() != Some(f.path.as_str())
                    || t.archived;
                if moved {
                    sqlx::query(
                        "UPDATE templates SET source = $2, git_path = $3, archived_at = NULL WHERE id = $1",
                    )
                    .bind(t.id)
                    .bind(&req.source)
                    .bind(&f.path)
                    .execute(&mut *tx)
                    .await?;
                }
                let version = if changed { t.version + 1 } else { t.version };
                if changed {
                    templates::insert_version(
                        &mut *tx, t.id, version, &f.yaml, &exp, &req.actor, origin,
                    )
                    .await?;
                }
                if exp.schedule.is_some() || scheduled.contains(&t.id) {
                    sync_schedule(&mut *tx, req, t.id, &name, &exp, clock, &mut report).await?;
                }
                let s = Synced {
                    path: f.path.clone(),
                    name,
                    version,
                };
                if changed || t.archived {
                    report.updated.push(s);
                } else {
                    report.unchanged.push(s);
                }
            }
        }
    }
    if req.prune {
        for t in &existing {
            let gone = t.source.as_deref() == Some(req.source.as_str())
                && !t.archived
                && !names.contains_key(&t.name)
                && !t
                    .git_path
                    .as_deref()
                    .is_some_and(|p| invalid_paths.contains(p));
            if !gone {
                continue;
            }
            sqlx::query("UPDATE templates SET archived_at = now() WHERE id = $1")
                .bind(t.id)
                .execute(&mut *tx)
                .await?;
            if scheduled.contains(&t.id) {
                pause_schedules(&mut *tx, t.id, &t.name, &mut report).await?;
            }
            report.archived.push(Synced {
                path: t.git_path.clone().unwrap_or_default(),
                name: t.name.clone(),
                version: t.version,
            });
        }
    }
    tracing::info!(
        created = report.created.len(),
        updated = report.updated.len(),
        unchanged = report.unchanged.len(),
        archived = report.archived.len(),
        invalid = report.invalid.len(),
        dry_run = req.dry_run,
        "templates synced"
    );
    Ok(report)
}

/// The clock of the file's `schedule:` block (`None` without one), or its problems located in
/// the file: a bad cron or time zone, or a schedule name (the template's) taken by a schedule
/// of another template. Checked before anything is written, so an invalid file changes nothing.
async fn schedule_clock(
    tx: &mut PgConnection,
    project: Uuid,
    exp: &faultline_experiment::Experiment,
    yaml: &str,
) -> ApiResult<Result<Option<Clock>, Vec<faultline_experiment::SpecError>>> {
    let Some(sc) = &exp.schedule else {
        return Ok(Ok(None));
    };
    let mut errs = Vec::new();
    let clock = match Clock::parse(&sc.cron, &sc.timezone) {
        Ok(c) => Some(c),
        Err(ApiError::BadInput { field, message }) => {
            errs.push(faultline_experiment::SpecError::field(
                format!("schedule.{field}"),
                message,
            ));
            None
        }
        Err(e) => return Err(e),
    };
    let taken: Option<(String,)> = sqlx::query_as(
        "SELECT t.name FROM schedules s JOIN templates t ON t.id = s.template_id          WHERE s.project_id = $1 AND s.name = $2 AND t.name <> $2",
    )
    .bind(project)
    .bind(&exp.metadata.name)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((other,)) = taken {
        errs.push(faultline_experiment::SpecError::field(
            "schedule",
            format!(
                "the project's schedule named {:?} runs template {other:?}; rename one of them",
                exp.metadata.name
            ),
        ));
    }
    if errs.is_empty() {
        return Ok(Ok(clock));
    }
    faultline_experiment::template::locate_errors(yaml, &mut errs);
    Ok(Err(errs))
}

/// Creates, updates or pauses the template's git-managed schedule (named as the template) to
/// match its file's `schedule:` block.
async fn sync_schedule(
    tx: &mut PgConnection,
    req: &SyncRequest,
    template: Uuid,
    name: &str,
    exp: &faultline_experiment::Experiment,
    clock: Option<Clock>,
    report: &mut SyncReport,
) -> ApiResult<()> {
    let (Some(sc), Some(clock)) = (&exp.schedule, clock) else {
        return pause_schedules(tx, template, name, report).await;
    };
    let cur = sqlx::query_as::<_, ScheduleRow>(&format!(
        "SELECT {} FROM schedules WHERE template_id = $1 AND (git_managed OR name = $2)          ORDER BY git_managed DESC LIMIT 1 FOR UPDATE",
        schedules::COLUMNS
    ))
    .bind(template)
    .bind(name)
    .fetch_optional(&mut *tx)
    .await?;
    let tz = clock.timezone().name().to_string();
    let delegate = sc
        .delegate
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    let concurrency = match sc.concurrency {
        ScheduleConcurrency::Forbid => "forbid",
        ScheduleConcurrency::Queue => "queue",
        ScheduleConcurrency::Allow => "allow",
    };
    let jitter_ms = sc.jitter.0.as_millis() as i64;
    let cron = sc.cron.trim();
    let next = || {
        if sc.enabled {
            let due = clock.next_after(chrono::Utc::now());
            (due, due.map(|d| schedules::jittered(d, jitter_ms)))
        } else {
            (None, None)
        }
    };
    let action = match cur {
        Some(c)
            if c.git_managed
                && c.cron == cron
                && c.timezone == tz
                && c.delegate == delegate
                && c.concurrency == concurrency
                && c.jitter_ms == jitter_ms
                && c.enabled == sc.enabled
                && c.version.is_none() =>
        {
            return Ok(());
        }
        Some(c) => {
            let reclock = c.cron != cron
                || c.timezone != tz
                || c.jitter_ms != jitter_ms
                || c.enabled != sc.enabled;
            let (due, fire) = if reclock {
                next()
            } else {
                (c.next_due_at, c.next_fire_at)
            };
            sqlx::query(
                "UPDATE schedules SET cron = $2, timezone = $3, delegate = $4, concurrency = $5, jitter_ms = $6,                    enabled = $7, next_due_at = $8, next_fire_at = $9, version = NULL, git_managed = true, updated_at = now()                  WHERE id = $1",
            )
            .bind(c.id)
            .bind(cron)
            .bind(&tz)
            .bind(&delegate)
            .bind(concurrency)
            .bind(jitter_ms)
            .bind(sc.enabled)
            .bind(due)
            .bind(fire)
            .execute(&mut *tx)
            .await?;
            schedules::wake(&mut *tx, c.id).await?;
            "updated"
        }
        None => {
            let (due, fire) = next();
            let id = Uuid::new_v4();
            sqlx::query(
                "INSERT INTO schedules (id, project_id, template_id, name, cron, timezone, delegate, version, concurrency,                    jitter_ms, enabled, next_due_at, next_fire_at, created_by, git_managed)                  VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9, $10, $11, $12, $13, true)",
            )
            .bind(id)
            .bind(req.project)
            .bind(template)
            .bind(name)
            .bind(cron)
            .bind(&tz)
            .bind(&delegate)
            .bind(concurrency)
            .bind(jitter_ms)
            .bind(sc.enabled)
            .bind(due)
            .bind(fire)
            .bind(&req.actor)
            .execute(&mut *tx)
            .await?;
            schedules::wake(&mut *tx, id).await?;
            "created"
        }
    };
    report.schedules.push(SyncedSchedule {
        name: name.to_string(),
        template: name.to_string(),
        action: action.into(),
    });
    Ok(())
}

/// Pauses the template's enabled git-managed schedules (its block was removed, or the template
/// archived); they keep their history and may be resumed by hand.
async fn pause_schedules(
    tx: &mut PgConnection,
    template: Uuid,
    template_name: &str,
    report: &mut SyncReport,
) -> ApiResult<()> {
    let paused: Vec<(String,)> = sqlx::query_as(
        "UPDATE schedules SET enabled = false, next_due_at = NULL, next_fire_at = NULL, updated_at = now()          WHERE template_id = $1 AND git_managed AND enabled RETURNING name",
    )
    .bind(template)
    .fetch_all(&mut *tx)
    .await?;
    report
        .schedules
        .extend(paused.into_iter().map(|(name,)| SyncedSchedule {
            name,
            template: template_name.to_string(),
            action: "paused".into(),
        }));
    Ok(())
}

/// The templates of a directory: every `*.yaml` / `*.yml` file under `root`, recursively,
/// skipping hidden entries (`.git`, `.github`) and symbolic links (a link could lead out of
/// the directory). Paths are relative, `/`-separated and sorted.
pub fn read_dir(root: &std::path::Path) -> std::io::Result<Vec<SyncFile>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() && (name.ends_with(".yaml") || name.ends_with(".yml")) {
                let rel = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                let yaml = std::fs::read_to_string(&path).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
                })?;
                out.push(SyncFile { path: rel, yaml });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_directory() {
        for ok in ["a.yaml", "dir/b.yml", "x y/z.yaml"] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc/a.yaml",
            "../a.yaml",
            "a//b.yaml",
            "./a.yaml",
            "a\\b.yaml",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }
}
