//! GraphQL: experiment templates, including import from other tools' formats.
use super::{ctx, parse_id, visible};
use crate::{audit, error::ApiResult, identity::Role, templates::TemplateRow};
use async_graphql::{Context, Enum, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use faultline_experiment::import::Format;

pub struct Template(pub TemplateRow);

#[Object]
impl Template {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Latest version number; each update adds one.
    async fn version(&self) -> i32 {
        self.0.version
    }
    /// The YAML of the latest version, exactly as submitted.
    async fn yaml(&self) -> &str {
        &self.0.yaml
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// The directory or repository a sync keeps this template in step with (docs/gitops.md);
    /// null for a template made by hand. Edit such a template in its source, not here: the next
    /// sync replaces an edit made on the hub.
    async fn source(&self) -> Option<&str> {
        self.0.source.as_deref()
    }
    /// True when a sync manages this template (`source` is set).
    async fn git_managed(&self) -> bool {
        self.0.source.is_some()
    }
    /// The file it is read from, relative to the synced directory.
    async fn git_path(&self) -> Option<&str> {
        self.0.git_path.as_deref()
    }
    /// The git commit of the latest version (of the pinned version, under a run).
    async fn git_commit(&self) -> Option<&str> {
        self.0.git_commit.as_deref()
    }
    /// When a sync archived it (its file was gone); an archived template starts no run.
    async fn archived_at(&self) -> Option<DateTime<Utc>> {
        self.0.archived_at
    }
    /// `metadata.labels` of the latest version.
    async fn labels(&self) -> async_graphql::Json<std::collections::BTreeMap<String, String>> {
        async_graphql::Json(self.metadata().map(|m| m.labels).unwrap_or_default())
    }
    /// `metadata.description` of the latest version.
    async fn description(&self) -> String {
        self.metadata().map(|m| m.description).unwrap_or_default()
    }
    /// Every version, newest first. Runs pin the version they started with.
    async fn versions(&self, c: &Context<'_>) -> Result<Vec<TemplateVersion>> {
        let (s, _) = ctx(c)?;
        Ok(
            crate::templates::versions(&s.pool, Some(self.0.project_id), self.0.id)
                .await?
                .into_iter()
                .map(TemplateVersion)
                .collect(),
        )
    }
    /// Unified diff of the YAML between two versions.
    async fn diff(&self, c: &Context<'_>, from: i32, to: i32) -> Result<String> {
        let (s, _) = ctx(c)?;
        Ok(crate::templates::diff(&s.pool, Some(self.0.project_id), self.0.id, from, to).await?)
    }
}

impl Template {
    /// The latest version's metadata (it was validated when stored, so it parses).
    fn metadata(&self) -> Option<faultline_experiment::template::Metadata> {
        faultline_experiment::parse_template(&self.0.yaml)
            .ok()
            .map(|e| e.metadata)
    }
}

pub struct TemplateVersion(pub crate::templates::VersionRow);

#[Object]
impl TemplateVersion {
    async fn version(&self) -> i32 {
        self.0.version
    }
    async fn yaml(&self) -> &str {
        &self.0.yaml
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// The git commit this version was synced from, if any.
    async fn git_commit(&self) -> Option<&str> {
        self.0.git_commit.as_deref()
    }
    /// The file this version was synced from, relative to the synced directory.
    async fn git_path(&self) -> Option<&str> {
        self.0.git_path.as_deref()
    }
}

/// Formats `importTemplate` and `convertTemplate` read.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// A Chaos Toolkit experiment, JSON or YAML.
    ChaosToolkit,
}

impl From<ImportFormat> for Format {
    fn from(f: ImportFormat) -> Self {
        match f {
            ImportFormat::ChaosToolkit => Format::ChaosToolkit,
        }
    }
}

/// One problem in a template, as `validateTemplate` reports it.
#[derive(SimpleObject)]
pub struct TemplateProblem {
    /// 1-based; null when the problem has no place in the text (e.g. the size limit).
    line: Option<i32>,
    column: Option<i32>,
    /// Dotted path of the offending field, e.g. `steps[0].params.signal`.
    field: String,
    message: String,
    hint: Option<String>,
}

impl From<faultline_experiment::SpecError> for TemplateProblem {
    fn from(e: faultline_experiment::SpecError) -> Self {
        let num = |n: Option<usize>| n.map(|n| i32::try_from(n).unwrap_or(i32::MAX));
        TemplateProblem {
            line: num(e.line),
            column: num(e.column),
            field: e.field,
            message: e.message,
            hint: e.hint,
        }
    }
}

/// A converted experiment, not stored.
#[derive(SimpleObject)]
pub struct ConvertResult {
    /// The Faultline template.
    yaml: String,
    /// What was mapped approximately or left out, each starting with its path in the source.
    notes: Vec<String>,
}

/// An imported experiment, stored as a new template.
#[derive(SimpleObject)]
pub struct ImportResult {
    template: Template,
    /// The stored YAML (also `template.yaml`).
    yaml: String,
    notes: Vec<String>,
}

#[derive(Default)]
pub struct TemplateQuery;

#[Object]
impl TemplateQuery {
    /// Templates visible to the caller, optionally limited to one project. Archived ones (their
    /// file gone from a synced directory) only with `archived: true`.
    async fn templates(
        &self,
        c: &Context<'_>,
        project: Option<String>,
        #[graphql(default)] archived: bool,
    ) -> Result<Vec<Template>> {
        let (s, p) = ctx(c)?;
        let scope = visible(s, p, project.as_deref()).await?;
        Ok(crate::templates::list(&s.pool, scope.as_deref(), archived)
            .await?
            .into_iter()
            .map(Template)
            .collect())
    }

    async fn template(&self, c: &Context<'_>, id: ID) -> Result<Template> {
        let (s, p) = ctx(c)?;
        Ok(Template(readable(s, p, &id, Role::Viewer).await?))
    }

    /// Checks a template without storing it: every problem createTemplate would refuse, each
    /// with its line, column, field and a fix hint when there is one. Empty when it is valid.
    async fn validate_template(
        &self,
        c: &Context<'_>,
        yaml: String,
    ) -> Result<Vec<TemplateProblem>> {
        ctx(c)?;
        Ok(match faultline_experiment::parse_template(&yaml) {
            Ok(_) => Vec::new(),
            Err(errs) => errs.0.into_iter().map(TemplateProblem::from).collect(),
        })
    }

    /// Converts another tool's experiment to a template without storing it. Problems come back
    /// as one INVALID_IMPORT error listing each with its path in the source.
    async fn convert_template(
        &self,
        c: &Context<'_>,
        format: ImportFormat,
        source: String,
        name: Option<String>,
    ) -> Result<ConvertResult> {
        ctx(c)?;
        let i = crate::templates::convert(format.into(), &source, name)?;
        Ok(ConvertResult {
            yaml: i.yaml,
            notes: i.notes,
        })
    }
}

#[derive(Default)]
pub struct TemplateMutation;

#[Object]
impl TemplateMutation {
    /// Validates and stores a new template. Errors name the line, column and field.
    async fn create_template(
        &self,
        c: &Context<'_>,
        #[graphql(default = "default")] project: String,
        yaml: String,
    ) -> Result<Template> {
        Ok(Template(create(c, &project, Ok(yaml)).await?))
    }

    /// Converts another tool's experiment and stores it as a new template (version 1), as
    /// createTemplate does. `name` replaces the name derived from the source's title.
    async fn import_template(
        &self,
        c: &Context<'_>,
        #[graphql(default = "default")] project: String,
        format: ImportFormat,
        source: String,
        name: Option<String>,
    ) -> Result<ImportResult> {
        let (yaml, notes) = match crate::templates::convert(format.into(), &source, name) {
            Ok(i) => (Ok(i.yaml), i.notes),
            Err(e) => (Err(e), Vec::new()),
        };
        let row = create(c, &project, yaml).await?;
        Ok(ImportResult {
            yaml: row.yaml.clone(),
            template: Template(row),
            notes,
        })
    }

    /// Adds a version to a template; runs keep the version they started with.
    async fn update_template(&self, c: &Context<'_>, id: ID, yaml: String) -> Result<Template> {
        let (s, p) = ctx(c)?;
        let t = readable(s, p, &id, Role::Editor).await?;
        let res =
            crate::templates::update(&s.pool, Some(t.project_id), t.id, &yaml, &p.actor()).await;
        audit::record(
            &s.pool,
            p,
            res.as_ref().ok().map(|t| t.project_id),
            "template.update",
            id.to_string(),
            &res,
        )
        .await;
        Ok(Template(res?))
    }
}

/// The template `id`, if the caller has at least `need` in its project.
async fn readable(
    s: &crate::state::AppState,
    p: &crate::identity::Principal,
    id: &ID,
    need: Role,
) -> Result<TemplateRow, crate::error::ApiError> {
    let id = parse_id("id", id)?;
    let t = crate::templates::get(&s.pool, None, id).await?;
    p.require_on(&s.pool, t.project_id, need, &format!("template {id}"))
        .await?;
    Ok(t)
}

/// The one write path of createTemplate and importTemplate: project scope, store, audit. A
/// `yaml` that could not be made (a failed import) is audited like a refused template.
async fn create(c: &Context<'_>, project: &str, yaml: ApiResult<String>) -> Result<TemplateRow> {
    let (s, p) = ctx(c)?;
    let pid = super::project(s, p, project, Role::Editor).await?;
    let res = match yaml {
        Ok(y) => crate::templates::create(&s.pool, pid, &y, &p.actor()).await,
        Err(e) => Err(e),
    };
    audit::record(
        &s.pool,
        p,
        Some(pid),
        "template.create",
        res.as_ref().map(|t| t.id.to_string()).unwrap_or_default(),
        &res,
    )
    .await;
    Ok(res?)
}
