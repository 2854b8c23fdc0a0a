//! `faultline template apply` and `template list`: templates on a hub. `apply` stores each
//! file as a new template, or as a new version only when its YAML differs from the latest
//! version's, so a pipeline can apply its templates on every deploy. The template's name is its
//! `metadata.name` (read locally; a file that does not parse is sent as is, and the hub's
//! error, with line and column, names what is wrong).
use super::{cell, exit, table, Client, ClientError};
use crate::config::HubArgs;
use serde_json::{json, Value};
use std::path::Path;

const LIST: &str =
    "query($p: String) { templates(project: $p) { id name version updatedAt description } }";
const CREATE: &str =
    "mutation($p: String!, $y: String!) { createTemplate(project: $p, yaml: $y) { id name version } }";
const UPDATE: &str =
    "mutation($id: ID!, $y: String!) { updateTemplate(id: $id, yaml: $y) { id name version } }";

/// What `apply` did with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created,
    Updated,
    Unchanged,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Created => "created",
            Applied::Updated => "updated",
            Applied::Unchanged => "unchanged",
        }
    }
}

/// The templates of the project (`None`: every project the token can read).
pub async fn list_templates(
    client: &Client,
    project: Option<&str>,
) -> Result<Vec<Value>, ClientError> {
    let d = client.gql(LIST, json!({"p": project})).await?;
    Ok(d["templates"].as_array().cloned().unwrap_or_default())
}

/// `faultline template list`: returns the exit code.
pub async fn list(hub: HubArgs, as_json: bool) -> u8 {
    let client = match super::connect(&hub) {
        Ok(c) => c,
        Err(e) => return fail(None, &e),
    };
    let ts = match list_templates(&client, hub.project.as_deref()).await {
        Ok(t) => t,
        Err(e) => return fail(None, &e),
    };
    if as_json {
        println!("{}", Value::Array(ts));
        return exit::PASSED;
    }
    let rows: Vec<Vec<String>> = ts
        .iter()
        .map(|t| {
            vec![
                cell(&t["name"]),
                format!("v{}", cell(&t["version"])),
                cell(&t["updatedAt"]),
                cell(&t["description"]),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["NAME", "VERSION", "UPDATED", "DESCRIPTION"], &rows)
    );
    exit::PASSED
}

/// One file: created, updated or unchanged, with the template's name and version.
async fn apply_one(
    client: &Client,
    project: &str,
    existing: &[Value],
    yaml: &str,
) -> Result<(Applied, String, i64), ClientError> {
    let name = faultline_experiment::parse_template(yaml)
        .ok()
        .map(|e| e.metadata.name);
    let current = name
        .as_deref()
        .and_then(|n| existing.iter().find(|t| t["name"] == n));
    let (applied, d) = match current {
        None => (
            Applied::Created,
            client.gql(CREATE, json!({"p": project, "y": yaml})).await?["createTemplate"].clone(),
        ),
        Some(t) if t["yaml"] == yaml => (Applied::Unchanged, t.clone()),
        Some(t) => (
            Applied::Updated,
            client
                .gql(UPDATE, json!({"id": t["id"], "y": yaml}))
                .await?["updateTemplate"]
                .clone(),
        ),
    };
    Ok((
        applied,
        d["name"].as_str().unwrap_or_default().to_string(),
        d["version"].as_i64().unwrap_or_default(),
    ))
}

/// `faultline template apply -f FILE...`: one line per file; the exit code is 0 when every
/// file was applied, else that of the first failure (2 refused, 3 hub unreachable).
pub async fn apply(hub: HubArgs, files: &[std::path::PathBuf], as_json: bool) -> u8 {
    let client = match super::connect(&hub) {
        Ok(c) => c,
        Err(e) => return fail(None, &e),
    };
    let project = match super::project(&client, &hub).await {
        Ok(p) => p,
        Err(e) => return fail(None, &e),
    };
    // The latest YAML of each, to leave unchanged templates alone.
    let existing = match client
        .gql(
            "query($p: String) { templates(project: $p) { id name version yaml } }",
            json!({"p": project}),
        )
        .await
    {
        Ok(d) => d["templates"].as_array().cloned().unwrap_or_default(),
        Err(e) => return fail(None, &e),
    };
    let mut code = exit::PASSED;
    for file in files {
        let yaml = match std::fs::read_to_string(file) {
            Ok(y) => y,
            Err(e) => {
                eprintln!("{}: cannot read: {e}", file.display());
                if code == exit::PASSED {
                    code = exit::USAGE;
                }
                continue;
            }
        };
        match apply_one(&client, &project, &existing, &yaml).await {
            Ok((applied, name, version)) => {
                if as_json {
                    println!(
                        "{}",
                        json!({"file": file, "name": name, "version": version, "action": applied.as_str()})
                    );
                } else {
                    println!("{} {name} v{version}", applied.as_str());
                }
            }
            Err(e) => {
                let c = fail(Some(file), &e);
                if code == exit::PASSED {
                    code = c;
                }
            }
        }
    }
    code
}

/// Prints `[FILE[:LINE:COL]: ]error` on stderr; returns the exit code of the error. A template
/// the hub refused gets one line per problem, as `template validate` prints them.
fn fail(file: Option<&Path>, e: &ClientError) -> u8 {
    if let (Some(f), ClientError::Refused { extensions, .. }) = (file, e) {
        let problems = extensions["errors"].as_array().cloned().unwrap_or_default();
        if extensions["code"] == "INVALID_TEMPLATE" && !problems.is_empty() {
            for p in &problems {
                eprintln!("{}", crate::template_cli::format_error(f, &problem(p)));
            }
            return exit::USAGE;
        }
    }
    match (file, e.location()) {
        (Some(f), Some((l, c))) => eprintln!("{}:{l}:{c}: {e}", f.display()),
        (Some(f), None) => eprintln!("{}: {e}", f.display()),
        (None, _) => eprintln!("error: {e}"),
    }
    super::error_code(e)
}

/// One entry of an INVALID_TEMPLATE error's `extensions.errors`.
fn problem(p: &Value) -> faultline_experiment::SpecError {
    let n = |k: &str| p[k].as_u64().map(|v| v as usize);
    faultline_experiment::SpecError {
        line: n("line"),
        column: n("column"),
        field: p["field"].as_str().unwrap_or_default().to_string(),
        message: p["message"].as_str().unwrap_or_default().to_string(),
        hint: p["hint"].as_str().map(str::to_string),
    }
}
