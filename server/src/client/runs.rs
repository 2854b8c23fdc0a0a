//! `faultline run list`, `run show ID`, `run abort ID`: reading and stopping runs on a hub. A
//! run is named by its id or a prefix of at least 8 hex digits (the hub's `run(id:)` resolves
//! it); tables for people, `--json` for scripts; `run show --report FILE` saves the run's report
//! (`GET /runs/{id}/report`, HTML or PDF by the file's extension).
use super::{cell, exit, table, Client, ClientError};
use crate::config::{HubArgs, RunSub};
use serde_json::{json, Value};
use std::path::Path;

const FIELDS: &str = "id status template { name } templateVersion delegate { name } dryRun createdAt startedAt endedAt \
    resilienceScore recoveryMs reason probeTally { passed failed total }";

/// Runs `faultline run SUBCOMMAND`; returns the exit code.
pub async fn run(hub: HubArgs, what: RunSub) -> u8 {
    let client = match super::connect(&hub) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let res = match what {
        RunSub::List {
            template,
            status,
            limit,
            json,
        } => list(&client, &hub, template, status, limit, json).await,
        RunSub::Show { id, json, report } => show(&client, &id, json, report.as_deref()).await,
        RunSub::Abort { id, reason, json } => abort(&client, &id, reason, json).await,
    };
    match res {
        Ok(()) => exit::PASSED,
        Err(e) => fail(&e),
    }
}

fn fail(e: &ClientError) -> u8 {
    eprintln!("error: {e}");
    super::error_code(e)
}

async fn list(
    client: &Client,
    hub: &HubArgs,
    template: Option<String>,
    status: Vec<String>,
    limit: u32,
    as_json: bool,
) -> Result<(), ClientError> {
    let template_id = match &template {
        None => None,
        Some(name) => {
            let ts = super::templates::list_templates(client, hub.project.as_deref()).await?;
            let t = ts
                .iter()
                .find(|t| t["name"] == name.as_str())
                .ok_or_else(|| {
                    ClientError::Usage(format!("--template: no template named {name:?}"))
                })?;
            Some(t["id"].clone())
        }
    };
    let status: Vec<String> = status.iter().map(|s| s.to_uppercase()).collect();
    let q = format!(
        "query($p: String, $l: Int!, $t: ID, $s: [RunStatus!]) {{ runs(project: $p, limit: $l, templateId: $t, status: $s) {{ {FIELDS} }} }}"
    );
    let vars = json!({"p": hub.project, "l": limit.clamp(1, 1000), "t": template_id,
                      "s": if status.is_empty() { Value::Null } else { json!(status) }});
    let d = client.gql(&q, vars).await?;
    let runs = d["runs"].as_array().cloned().unwrap_or_default();
    if as_json {
        println!("{}", Value::Array(runs));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                cell(&r["id"]).chars().take(8).collect(),
                cell(&r["template"]["name"]),
                format!("v{}", cell(&r["templateVersion"])),
                cell(&r["status"]),
                cell(&r["resilienceScore"]),
                cell(&r["delegate"]["name"]),
                cell(&r["createdAt"]),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &["ID", "TEMPLATE", "VERSION", "STATUS", "SCORE", "DELEGATE", "CREATED"],
            &rows
        )
    );
    Ok(())
}

/// The run named by `id` (full or a prefix).
async fn get(client: &Client, id: &str) -> Result<Value, ClientError> {
    let q = format!("query($id: ID!) {{ run(id: $id) {{ {FIELDS} }} }}");
    Ok(client.gql(&q, json!({"id": id})).await?["run"].clone())
}

async fn show(
    client: &Client,
    id: &str,
    as_json: bool,
    report: Option<&Path>,
) -> Result<(), ClientError> {
    let r = get(client, id).await?;
    if as_json {
        println!("{r}");
    } else {
        print!("{}", describe(&r));
    }
    if let Some(file) = report {
        let format = report_format(file);
        let full = cell(&r["id"]);
        let body = client
            .get(&["runs", &full, "report"], &[("format", format)])
            .await?;
        std::fs::write(file, &body).map_err(|e| {
            ClientError::Usage(format!("--report: cannot write {}: {e}", file.display()))
        })?;
        // On stderr: stdout stays the run (or its JSON) alone.
        eprintln!(
            "wrote the {} report of run {} to {} ({} bytes)",
            format.to_uppercase(),
            &full[..full.len().min(8)],
            file.display(),
            body.len()
        );
    }
    Ok(())
}

/// The report's format for `--report FILE`: a PDF for `.pdf` (any case), else HTML.
fn report_format(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("pdf") => "pdf",
        _ => "html",
    }
}

/// `key: value` lines of a run for people.
fn describe(r: &Value) -> String {
    let t = &r["probeTally"];
    let mut lines = vec![
        ("id", cell(&r["id"])),
        ("status", cell(&r["status"])),
        (
            "template",
            format!(
                "{} v{}",
                cell(&r["template"]["name"]),
                cell(&r["templateVersion"])
            ),
        ),
        ("delegate", cell(&r["delegate"]["name"])),
        ("created", cell(&r["createdAt"])),
        ("started", cell(&r["startedAt"])),
        ("ended", cell(&r["endedAt"])),
        ("score", cell(&r["resilienceScore"])),
        (
            "checks",
            format!("{}/{} passed", cell(&t["passed"]), cell(&t["total"])),
        ),
        (
            "recovery",
            r["recoveryMs"]
                .as_i64()
                .map(|ms| format!("{ms} ms"))
                .unwrap_or_default(),
        ),
        ("reason", cell(&r["reason"])),
    ];
    if r["dryRun"] == true {
        lines.insert(2, ("dry run", "yes".into()));
    }
    lines
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{:<9} {v}\n", format!("{k}:")))
        .collect()
}

async fn abort(
    client: &Client,
    id: &str,
    reason: Option<String>,
    as_json: bool,
) -> Result<(), ClientError> {
    // abortRun takes a full id: resolve a prefix first.
    let full = get(client, id).await?["id"].clone();
    let q = format!(
        "mutation($id: ID!, $r: String) {{ abortRun(id: $id, reason: $r) {{ {FIELDS} }} }}"
    );
    let r = client.gql(&q, json!({"id": full, "r": reason})).await?["abortRun"].clone();
    if as_json {
        println!("{r}");
    } else {
        println!("run {}: {}", cell(&r["id"]), cell(&r["status"]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_a_run() {
        let r = json!({"id": "abc", "status": "PASSED", "template": {"name": "t"}, "templateVersion": 2,
            "delegate": null, "resilienceScore": 90.0, "probeTally": {"passed": 9, "total": 10}, "recoveryMs": 120});
        let d = describe(&r);
        assert!(d.contains("template: t v2\n"), "{d}");
        assert!(d.contains("checks:   9/10 passed\n"), "{d}");
        assert!(!d.contains("delegate"), "{d}");
    }

    #[test]
    fn the_report_format_follows_the_file_extension() {
        assert_eq!(report_format(Path::new("out/run.pdf")), "pdf");
        assert_eq!(report_format(Path::new("RUN.PDF")), "pdf");
        assert_eq!(report_format(Path::new("run.html")), "html");
        assert_eq!(report_format(Path::new("report")), "html");
    }
}
