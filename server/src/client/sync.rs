//! `faultline template sync DIR`: reads the directory's templates and sends them in one
//! `syncTemplates` mutation, so the hub applies them atomically with the same rules as its own
//! git sync (`gitops.rs`). Prints the report; exit 1 when a file is invalid.
use super::{exit, ClientError};
use crate::config::HubArgs;
use serde_json::{json, Value};
use std::path::Path;

const SYNC: &str = "mutation($p: String!, $s: String!, $f: [SyncFileInput!]!, $prune: Boolean!, $dry: Boolean!, $c: String) { \
  syncTemplates(project: $p, source: $s, files: $f, prune: $prune, dryRun: $dry, commit: $c) { \
    created { path name version } updated { path name version } unchanged { path name version } \
    archived { path name version } invalid { path line column message text }     schedules { name template action } commit dryRun } }";

/// The flags of `template sync` besides the hub's.
pub struct Options {
    pub source: Option<String>,
    pub prune: bool,
    pub dry_run: bool,
    pub commit: Option<String>,
    pub json: bool,
}

/// The source a directory is named by unless `--source` says otherwise: DIR as given, without
/// a trailing slash, so the same checkout path in every pipeline names the same source.
pub fn default_source(dir: &Path) -> String {
    let s = dir.to_string_lossy();
    let t = s.trim_end_matches('/');
    if t.is_empty() {
        "/".into()
    } else {
        t.to_string()
    }
}

/// `faultline template sync`: returns the exit code (0 synced, 1 a file is invalid, 2 usage or
/// refused, 3 the hub could not be reached).
pub async fn sync(hub: HubArgs, dir: &Path, o: Options) -> u8 {
    let files = match crate::gitops::read_dir(dir) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{}: cannot read: {e}", dir.display());
            return exit::USAGE;
        }
    };
    let report = match call(&hub, dir, &o, &files).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return super::error_code(&e);
        }
    };
    let invalid = report["invalid"].as_array().cloned().unwrap_or_default();
    if o.json {
        println!("{report}");
    } else {
        print!("{}", text(dir, &report));
    }
    if invalid.is_empty() {
        exit::PASSED
    } else {
        exit::FAILED
    }
}

async fn call(
    hub: &HubArgs,
    dir: &Path,
    o: &Options,
    files: &[crate::gitops::SyncFile],
) -> Result<Value, ClientError> {
    let client = super::connect(hub)?;
    let project = super::project(&client, hub).await?;
    let files: Vec<Value> = files
        .iter()
        .map(|f| json!({"path": f.path, "yaml": f.yaml}))
        .collect();
    let source = o.source.clone().unwrap_or_else(|| default_source(dir));
    let d = client
        .gql(
            SYNC,
            json!({"p": project, "s": source, "f": files, "prune": o.prune, "dry": o.dry_run, "c": o.commit}),
        )
        .await?;
    Ok(d["syncTemplates"].clone())
}

/// The report as text: one line per template, then invalid files as `DIR/FILE:LINE:COL:
/// message` (editors and CI annotations jump to them), then the counts.
pub fn text(dir: &Path, r: &Value) -> String {
    let mut out = String::new();
    let list = |k: &str| r[k].as_array().cloned().unwrap_or_default();
    for kind in ["created", "updated", "unchanged", "archived"] {
        for t in list(kind) {
            out.push_str(&format!(
                "{kind:<9} {} v{} ({})\n",
                t["name"].as_str().unwrap_or_default(),
                t["version"],
                t["path"].as_str().unwrap_or_default()
            ));
        }
    }
    for s in list("schedules") {
        out.push_str(&format!(
            "schedule {} {}\n",
            s["name"].as_str().unwrap_or_default(),
            s["action"].as_str().unwrap_or_default()
        ));
    }
    for i in list("invalid") {
        let path = dir.join(i["path"].as_str().unwrap_or_default());
        let at = match (i["line"].as_u64(), i["column"].as_u64()) {
            (Some(l), Some(c)) => format!(":{l}:{c}"),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{}{at}: {}\n",
            path.display(),
            i["message"].as_str().unwrap_or_default()
        ));
    }
    let n = |k: &str| list(k).len();
    out.push_str(&format!(
        "{}{} created, {} updated, {} unchanged, {} archived, {} invalid\n",
        if r["dryRun"] == true { "dry run: " } else { "" },
        n("created"),
        n("updated"),
        n("unchanged"),
        n("archived"),
        n("invalid"),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_reads_as_lines_with_invalid_files_located_under_dir() {
        let r = json!({
            "created": [{"path": "a.yaml", "name": "alpha", "version": 1}],
            "updated": [], "unchanged": [{"path": "b/c.yml", "name": "beta", "version": 3}],
            "archived": [{"path": "old.yaml", "name": "old", "version": 2}],
            "invalid": [{"path": "bad.yaml", "line": 4, "column": 9, "message": "steps[0].duration: invalid"},
                        {"path": "huge.yaml", "line": null, "column": null, "message": "too big"}],
            "schedules": [{"name": "alpha", "template": "alpha", "action": "created"}],
            "dryRun": true
        });
        assert_eq!(
            text(Path::new("exp"), &r),
            "created   alpha v1 (a.yaml)\nunchanged beta v3 (b/c.yml)\narchived  old v2 (old.yaml)\n\
             schedule alpha created\nexp/bad.yaml:4:9: steps[0].duration: invalid\nexp/huge.yaml: too big\n\
             dry run: 1 created, 0 updated, 1 unchanged, 1 archived, 2 invalid\n"
        );
        assert_eq!(default_source(Path::new("experiments/")), "experiments");
        assert_eq!(default_source(Path::new("/")), "/");
    }
}
