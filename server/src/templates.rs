//! Experiment templates and their versions: storage and lookup. Parsing and validation live in
//! the `faultline-experiment` crate; every stored version has passed it.
use crate::error::{ApiError, ApiResult};
use chrono::{DateTime, Utc};
use faultline_experiment::{
    import::{self, Format, Imported},
    Experiment,
};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TemplateRow {
    pub id: Uuid,
    pub project_id: Uuid,
    /// The project's name (for log lines).
    pub project_name: String,
    pub name: String,
    pub version: i32,
    pub yaml: String,
    pub created_at: DateTime<Utc>,
    /// The directory or repository a sync keeps this template in step with (docs/gitops.md);
    /// `None` for templates made by hand.
    pub source: Option<String>,
    /// The file it was read from, relative to the synced directory.
    pub git_path: Option<String>,
    /// The commit of the latest version, when it came from a git repository.
    pub git_commit: Option<String>,
    /// Set when a sync found its file gone: it keeps its runs but starts no new ones.
    pub archived_at: Option<DateTime<Utc>>,
}

pub(crate) const SELECT_LATEST: &str = "SELECT t.id, t.project_id, (SELECT name FROM projects WHERE id = t.project_id) AS project_name, t.name, v.version, v.yaml, v.created_at, \
     t.source, t.git_path, v.git_commit, t.archived_at \
     FROM templates t JOIN LATERAL (SELECT version, yaml, created_at, git_commit FROM template_versions \
       WHERE template_id = t.id ORDER BY version DESC LIMIT 1) v ON true";

fn parse(yaml: &str) -> ApiResult<Experiment> {
    faultline_experiment::parse_template(yaml).map_err(ApiError::InvalidTemplate)
}

/// Converts another tool's experiment into a template (no write; `create` stores the YAML).
pub fn convert(format: Format, source: &str, name: Option<String>) -> ApiResult<Imported> {
    import::convert(format, source, &import::Options { name }).map_err(ApiError::InvalidImport)
}

/// Why an archived template starts no run, for `startRun`'s refusal and a schedule's failed
/// fire.
pub fn archived_reason(t: &TemplateRow) -> String {
    let when = t
        .archived_at
        .map(|a| a.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default();
    match (&t.source, &t.git_path) {
        (Some(src), Some(path)) => format!(
            "{:?} is archived (since {when}): its file {path} is gone from {src}; archived templates start no runs",
            t.name
        ),
        _ => format!(
            "{:?} is archived (since {when}); archived templates start no runs",
            t.name
        ),
    }
}

/// Stores a new template (version 1). A name already used in the project is a conflict.
pub async fn create(
    pool: &PgPool,
    project: Uuid,
    yaml: &str,
    actor: &str,
) -> ApiResult<TemplateRow> {
    let exp = parse(yaml)?;
    let mut tx = pool.begin().await?;
    let id = Uuid::new_v4();
    let inserted = sqlx::query(
        "INSERT INTO templates (id, project_id, name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(project)
    .bind(&exp.metadata.name)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(ApiError::Conflict(format!(
            "a template named {:?} already exists in this project; use updateTemplate to add a version",
            exp.metadata.name
        )));
    }
    insert_version(&mut tx, id, 1, yaml, &exp, actor, Origin::default()).await?;
    tx.commit().await?;
    get(pool, Some(project), id).await
}

/// Adds a new version to an existing template; the name must stay the same.
pub async fn update(
    pool: &PgPool,
    scope: Option<Uuid>,
    id: Uuid,
    yaml: &str,
    actor: &str,
) -> ApiResult<TemplateRow> {
    let exp = parse(yaml)?;
    let cur = get(pool, scope, id).await?;
    if cur.name != exp.metadata.name {
        return Err(ApiError::bad(
            "metadata.name",
            format!("must stay {:?}; create a new template to rename", cur.name),
        ));
    }
    let mut tx = pool.begin().await?;
    // Lock the template row so concurrent updates get consecutive versions.
    sqlx::query("SELECT 1 FROM templates WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let (next,): (i32,) = sqlx::query_as(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM template_versions WHERE template_id = $1",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    insert_version(&mut tx, id, next, yaml, &exp, actor, Origin::default()).await?;
    tx.commit().await?;
    get(pool, scope, id).await
}

/// Where a version was read from, when a sync stored it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Origin<'a> {
    pub commit: Option<&'a str>,
    pub path: Option<&'a str>,
}

pub(crate) async fn insert_version(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    version: i32,
    yaml: &str,
    exp: &Experiment,
    actor: &str,
    origin: Origin<'_>,
) -> ApiResult<()> {
    sqlx::query("INSERT INTO template_versions (template_id, version, yaml, spec, created_by, git_commit, git_path) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(id)
        .bind(version)
        .bind(yaml)
        .bind(sqlx::types::Json(exp))
        .bind(actor)
        .bind(origin.commit)
        .bind(origin.path)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

pub async fn get(pool: &PgPool, scope: Option<Uuid>, id: Uuid) -> ApiResult<TemplateRow> {
    sqlx::query_as::<_, TemplateRow>(&format!(
        "{SELECT_LATEST} WHERE t.id = $1 AND ($2::uuid IS NULL OR t.project_id = $2)"
    ))
    .bind(id)
    .bind(scope)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("template {id}")))
}

/// The template named `name` in the project `project`, archived or not (starting a run then
/// says it is archived rather than that it does not exist).
pub async fn by_name(pool: &PgPool, project: Uuid, name: &str) -> ApiResult<TemplateRow> {
    sqlx::query_as::<_, TemplateRow>(&format!(
        "{SELECT_LATEST} WHERE t.project_id = $1 AND t.name = $2"
    ))
    .bind(project)
    .bind(name)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("template {name:?}")))
}

/// Templates of the `scope` projects (`None`: every project); archived ones only when asked.
pub async fn list(
    pool: &PgPool,
    scope: Option<&[Uuid]>,
    archived: bool,
) -> ApiResult<Vec<TemplateRow>> {
    Ok(sqlx::query_as::<_, TemplateRow>(&format!(
        "{SELECT_LATEST} WHERE ($2 OR t.archived_at IS NULL) AND ($1::uuid[] IS NULL OR t.project_id = ANY($1)) ORDER BY t.name"
    ))
    .bind(scope)
    .bind(archived)
    .fetch_all(pool)
    .await?)
}

/// The spec of one version, as validated when it was stored.
pub async fn spec(pool: &PgPool, id: Uuid, version: i32) -> ApiResult<Experiment> {
    let row: Option<(sqlx::types::Json<Experiment>,)> = sqlx::query_as(
        "SELECT spec FROM template_versions WHERE template_id = $1 AND version = $2",
    )
    .bind(id)
    .bind(version)
    .fetch_optional(pool)
    .await?;
    row.map(|r| r.0 .0)
        .ok_or_else(|| ApiError::NotFound(format!("template {id} version {version}")))
}

/// The git commit one version was synced from, if any.
pub async fn version_commit(pool: &PgPool, id: Uuid, version: i32) -> ApiResult<Option<String>> {
    let row: Option<(Option<String>,)> = sqlx::query_as(
        "SELECT git_commit FROM template_versions WHERE template_id = $1 AND version = $2",
    )
    .bind(id)
    .bind(version)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|r| r.0))
}

/// The text of one version.
pub async fn version_yaml(pool: &PgPool, id: Uuid, version: i32) -> ApiResult<String> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT yaml FROM template_versions WHERE template_id = $1 AND version = $2",
    )
    .bind(id)
    .bind(version)
    .fetch_optional(pool)
    .await?;
    row.map(|r| r.0)
        .ok_or_else(|| ApiError::bad("version", format!("the template has no version {version}")))
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct VersionRow {
    pub version: i32,
    pub yaml: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// The commit and file it was synced from (docs/gitops.md).
    pub git_commit: Option<String>,
    pub git_path: Option<String>,
}

/// Every version of a template, newest first.
pub async fn versions(pool: &PgPool, scope: Option<Uuid>, id: Uuid) -> ApiResult<Vec<VersionRow>> {
    get(pool, scope, id).await?;
    Ok(sqlx::query_as::<_, VersionRow>(
        "SELECT version, yaml, created_by, created_at, git_commit, git_path FROM template_versions WHERE template_id = $1 ORDER BY version DESC",
    )
    .bind(id)
    .fetch_all(pool)
    .await?)
}

/// One version of a template (the one a run is pinned to).
pub async fn version(pool: &PgPool, id: Uuid, version: i32) -> ApiResult<VersionRow> {
    sqlx::query_as::<_, VersionRow>(
        "SELECT version, yaml, created_by, created_at, git_commit, git_path FROM template_versions WHERE template_id = $1 AND version = $2",
    )
    .bind(id)
    .bind(version)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("version {version} of template {id}")))
}

/// A unified diff between two versions of a template.
pub async fn diff(
    pool: &PgPool,
    scope: Option<Uuid>,
    id: Uuid,
    from: i32,
    to: i32,
) -> ApiResult<String> {
    let all = versions(pool, scope, id).await?;
    let find = |v: i32, field: &str| {
        all.iter()
            .find(|r| r.version == v)
            .ok_or_else(|| ApiError::bad(field, format!("template {id} has no version {v}")))
    };
    let (a, b) = (find(from, "from")?, find(to, "to")?);
    Ok(similar::TextDiff::from_lines(&a.yaml, &b.yaml)
        .unified_diff()
        .context_radius(3)
        .header(&format!("version {from}"), &format!("version {to}"))
        .to_string())
}
