//! The pipeline examples in `deploy/ci/` are valid YAML, every `faultline …` command line in them
//! parses with the real CLI (so a renamed flag breaks this test, not a user's pipeline), the gate
//! runs with `--wait --min-score --junit`, and the JUnit file it writes is the one uploaded.
use clap::Parser;
use faultline_hub::config::{Cli, Command, RunCmd};
use serde_norway::Value;
use std::path::Path;

fn load(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/ci")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `faultline …` line in the document's strings (shell continuations joined).
fn commands(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            for line in s.replace("\\\n", " ").lines() {
                let line = line.trim();
                if line.starts_with("faultline ") {
                    out.push(line.to_string());
                }
            }
        }
        Value::Sequence(items) => items.iter().for_each(|i| commands(i, out)),
        Value::Mapping(m) => m.values().for_each(|i| commands(i, out)),
        _ => {}
    }
}

/// Parses each command with the CLI; returns the gate's `--junit` file.
fn check_commands(doc: &Value) -> String {
    let mut lines = vec![];
    commands(doc, &mut lines);
    assert!(lines.len() >= 2, "{lines:?}");
    let mut junit = None;
    for l in &lines {
        let cli = Cli::try_parse_from(l.split_whitespace()).unwrap_or_else(|e| panic!("{l}: {e}"));
        if let Command::Run(RunCmd {
            gate, what: None, ..
        }) = cli.command
        {
            assert!(gate.wait && gate.min_score.is_some(), "{l}");
            junit = gate.junit.map(|p| p.display().to_string());
        }
    }
    junit.expect("a `faultline run` gate with --junit")
}

#[test]
fn github_actions_workflow() {
    let doc = load("github-actions.yml");
    let junit = check_commands(&doc);
    let job = &doc["jobs"]["deploy"];
    assert_eq!(
        job["env"]["FAULTLINE_TOKEN"].as_str(),
        Some("${{ secrets.FAULTLINE_TOKEN }}")
    );
    assert!(job["env"]["FAULTLINE_HUB_CA"].is_string());
    let steps = job["steps"].as_sequence().unwrap();
    let upload = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        })
        .expect("an upload-artifact step");
    assert_eq!(upload["with"]["path"].as_str(), Some(junit.as_str()));
    assert_eq!(upload["if"].as_str(), Some("always()"));
}

#[test]
fn gitlab_ci_job() {
    let doc = load("gitlab-ci.yml");
    let junit = check_commands(&doc);
    let job = &doc["chaos-gate"];
    assert_eq!(
        job["artifacts"]["reports"]["junit"].as_str(),
        Some(junit.as_str())
    );
    assert_eq!(job["artifacts"]["when"].as_str(), Some("always"));
    assert!(doc["variables"]["FAULTLINE_HUB_CA"].is_string());
}
