//! `faultline template …`: the same template validation and import the hub runs, offline, for
//! pre-commit hooks, CI and migrations from other tools; and `faultline schema template`, the
//! JSON Schema editors check templates with.
use faultline_experiment::{import, parse_template, SpecError};
use std::path::Path;

/// One line per problem, `FILE:LINE:COL: field: message (hint: …)` (`FILE: field: message`
/// when the problem has no single location; no hint when there is none).
pub fn format_error(file: &Path, e: &SpecError) -> String {
    let mut what = if e.field.is_empty() {
        e.message.clone()
    } else {
        format!("{}: {}", e.field, e.message)
    };
    if let Some(h) = &e.hint {
        what.push_str(&format!(" (hint: {h})"));
    }
    match (e.line, e.column) {
        (Some(l), Some(c)) => format!("{}:{l}:{c}: {what}", file.display()),
        _ => format!("{}: {what}", file.display()),
    }
}

/// The template's JSON Schema as committed in `docs/template.schema.json` (pretty, with a final
/// newline).
pub fn schema() -> String {
    format!("{:#}\n", faultline_experiment::schema::template())
}

/// Validates each file; returns the lines to print and whether every file was valid.
pub fn validate(files: &[std::path::PathBuf]) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    let mut ok = true;
    for f in files {
        match std::fs::read_to_string(f) {
            Err(e) => {
                ok = false;
                out.push(format!("{}: cannot read: {e}", f.display()));
            }
            Ok(text) => match parse_template(&text) {
                Ok(exp) => out.push(format!("{}: ok ({})", f.display(), exp.metadata.name)),
                Err(errs) => {
                    ok = false;
                    out.extend(errs.0.iter().map(|e| format_error(f, e)));
                }
            },
        }
    }
    (out, ok)
}

/// What `template import` prints.
pub struct ImportOutput {
    /// The template for stdout; `None` when the file could not be converted.
    pub yaml: Option<String>,
    /// For stderr: `FILE: note: ...` on success, `FILE: path: reason` per problem otherwise.
    pub messages: Vec<String>,
}

/// Converts one file written in `format`.
pub fn import(file: &Path, format: import::Format, name: Option<String>) -> ImportOutput {
    let f = file.display();
    let source = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) => {
            return ImportOutput {
                yaml: None,
                messages: vec![format!("{f}: cannot read: {e}")],
            }
        }
    };
    match import::convert(format, &source, &import::Options { name }) {
        Ok(i) => ImportOutput {
            yaml: Some(i.yaml),
            messages: i.notes.iter().map(|n| format!("{f}: note: {n}")).collect(),
        },
        Err(errs) => ImportOutput {
            yaml: None,
            messages: errs.0.iter().map(|e| format!("{f}: {e}")).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_file_line_column_and_passes_good_files() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.yaml");
        std::fs::write(
            &bad,
            "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata:\n  name: x\n  nmae: y\n",
        )
        .unwrap();
        let good = std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/demo-experiment.yaml"
        ));
        let (lines, ok) = validate(&[bad.clone(), good]);
        assert!(!ok);
        assert_eq!(lines[0], format!("{}:5:3: metadata.nmae: unknown field `nmae`, expected one of `name`, `description`, `labels` (hint: did you mean \"name\"?)", bad.display()));
        assert!(
            lines[1].ends_with(": ok (demo-web-survives-kill)"),
            "{lines:?}"
        );
        let (_, ok) = validate(&[dir.path().join("missing.yaml")]);
        assert!(!ok);
    }
}

/// The JSON Schema against the parser: every template we ship or document passes both, and the
/// mistakes people make are caught by both.
#[cfg(test)]
mod schema_tests {
    use super::*;
    use faultline_experiment::schema::ID;
    use serde_json::Value;
    use std::path::{Path, PathBuf};

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    struct Validator {
        schemas: boon::Schemas,
        index: boon::SchemaIndex,
    }

    impl Validator {
        fn new() -> Self {
            let schema: Value = serde_json::from_str(&schema()).unwrap();
            let mut compiler = boon::Compiler::new();
            compiler.set_default_draft(boon::Draft::V7);
            compiler.add_resource(ID, schema).unwrap();
            let mut schemas = boon::Schemas::new();
            // Compiling also checks the schema against the draft-07 meta-schema.
            let index = compiler
                .compile(ID, &mut schemas)
                .unwrap_or_else(|e| panic!("{e:#}"));
            Validator { schemas, index }
        }

        fn check(&self, yaml: &str) -> Result<(), String> {
            let instance: Value = serde_norway::from_str(yaml).map_err(|e| e.to_string())?;
            self.schemas
                .validate(&instance, self.index)
                .map_err(|e| format!("{e}"))
        }
    }

    /// The full example the spec tests use (experiment/tests/fixtures/full.yaml).
    fn full_example() -> String {
        std::fs::read_to_string(repo().join("experiment/tests/fixtures/full.yaml")).unwrap()
    }

    /// YAML files under `dir` (recursively), and the fenced yaml blocks of Markdown files there
    /// that are experiments.
    fn templates_under(dir: &Path, out: &mut Vec<(String, String)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            let name = path.display().to_string();
            if path.is_dir() {
                if !name.ends_with("/target") && !name.contains("node_modules") {
                    templates_under(&path, out);
                }
            } else if name.ends_with(".yaml") || name.ends_with(".yml") {
                // Not every YAML file is a template (deploy/ci/ holds pipeline definitions).
                let text = std::fs::read_to_string(&path).unwrap();
                if text.contains("kind: Experiment") {
                    out.push((name.clone(), text));
                }
            } else if name.ends_with(".md") {
                out.extend(yaml_blocks(&path));
            }
        }
    }

    fn yaml_blocks(md: &Path) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(md).unwrap();
        let mut blocks = Vec::new();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("```yaml\n") {
            let body = &rest[i + 8..];
            let end = body.find("```").expect("closed code block");
            if body[..end].contains("kind: Experiment") {
                let line = text.len() - rest.len() + i;
                let line = text[..line].lines().count() + 1;
                blocks.push((format!("{}:{line}", md.display()), body[..end].to_string()));
            }
            rest = &body[end + 3..];
        }
        blocks
    }

    #[test]
    fn committed_schema_is_current() {
        let path = repo().join("docs/template.schema.json");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == schema(),
            "{} is stale: run `make schema` (faultline schema template > docs/template.schema.json)",
            path.display()
        );
    }

    #[test]
    fn every_shipped_and_documented_template_passes_schema_and_parser() {
        let v = Validator::new();
        let mut templates = vec![("FULL".to_string(), full_example())];
        // web/src: the dashboard editor's example step of every fault kind (every-kind.yaml).
        for dir in ["deploy", "tests", "docs", "web/src"] {
            templates_under(&repo().join(dir), &mut templates);
        }
        templates.extend(yaml_blocks(&repo().join("README.md")));
        let names: Vec<&str> = templates.iter().map(|t| t.0.as_str()).collect();
        assert!(
            names.iter().any(|n| n.ends_with("demo-experiment.yaml"))
                && names.iter().any(|n| n.contains("template-reference.md"))
                && names
                    .iter()
                    .any(|n| n.ends_with("web/src/editor/every-kind.yaml")),
            "{names:?}"
        );
        for (name, yaml) in &templates {
            if let Err(e) = parse_template(yaml) {
                panic!("{name} does not parse: {e}");
            }
            if let Err(e) = v.check(yaml) {
                panic!("{name} fails the schema: {e}");
            }
        }
    }

    #[test]
    fn other_spellings_serde_takes_pass_too() {
        let v = Validator::new();
        let full = full_example();
        let variants = [
            ("mode: continuous", "mode: SOT"),
            ("mode: continuous", "mode: OnChaos"),
            ("mode: edge", "mode: Edge"),
            ("signal: KILL", "signal: SIGTERM"),
            ("{op: \"<\", value: 5}", "{op: \"=\", value: 5}"),
            ("{op: \"<\", value: 5}", "{between: [0, 5]}"),
            ("status: \"2xx\"", "status: [200, 204]"),
            ("status: \"2xx\"", "status: \" 200 - 299 \""),
            ("status: \"2xx\"", "status: 204"),
            ("recoverWithin: 30s", "recoverWithin: 1m 30s"),
            ("baseline: 5s", "baseline: 2.5s"),
            ("baseline: 5s", "baseline: \"0\""),
            ("weight: 8", "weight: 0"),
            (
                "params: {signal: KILL}",
                "params: {signal: TERM, restartWait: 3s}",
            ),
            ("params: {signal: KILL}", "params:"),
            ("command: {run: [\"true\"]", "command: {shell: \"true\""),
            (
                "tcp: {address: \"127.0.0.1:5432\"}",
                "tcp: {address: \"[::1]:5432\", expect: closed}",
            ),
        ];
        for (from, to) in variants {
            assert!(full.contains(from), "{from}");
            let yaml = full.replacen(from, to, 1);
            parse_template(&yaml).unwrap_or_else(|e| panic!("{to}: parser: {e}"));
            v.check(&yaml)
                .unwrap_or_else(|e| panic!("{to}: schema: {e}"));
        }
    }

    #[test]
    fn mistakes_are_refused_by_schema_and_parser() {
        let v = Validator::new();
        let full = full_example();
        let mistakes = [
            ("unknown field", "initialDelay: 0s", "initalDelay: 0s"),
            ("unknown top-level field", "abortWhen:", "abortWhenn:"),
            ("wrong mode", "mode: edge", "mode: sometimes"),
            ("bad duration", "interval: 1s", "interval: 1 sec 5"),
            (
                "bare number duration",
                "recoverWithin: 30s",
                "recoverWithin: 30",
            ),
            (
                "unknown duration unit",
                "baseline: 5s",
                "baseline: 5 fortnights",
            ),
            ("bad status string", "status: \"2xx\"", "status: \"2zz\""),
            ("status out of range", "status: \"2xx\"", "status: 700"),
            ("weight as a string", "weight: 8", "weight: \"8\""),
            ("weight above 10", "weight: 8", "weight: 11"),
            (
                "unknown fault kind",
                "fault: process-kill",
                "fault: proces-kill",
            ),
            (
                "unknown kill param",
                "params: {signal: KILL}",
                "params: {signal: KILL, force: true}",
            ),
            (
                "bad signal",
                "params: {signal: KILL}",
                "params: {signal: LOUD}",
            ),
            (
                "target with two ways",
                "target: {name: redis-server}",
                "target: {name: redis-server, pidFile: /x}",
            ),
            (
                "command name too long",
                "target: {name: redis-server}",
                "target: {name: a-very-long-command-name}",
            ),
            ("pause without duration", "        duration: 20s\n", ""),
            (
                "kill without target",
                "    target: {name: redis-server}\n",
                "",
            ),
            (
                "step with fault and pause",
                "  - pause: 5s\n",
                "  - pause: 5s\n    fault: process-kill\n",
            ),
            (
                "probe with two kinds",
                "      mode: edge\n",
                "      mode: edge\n      redis: {address: \"127.0.0.1:6379\"}\n",
            ),
            (
                "probe without kind",
                "      command: {run: [\"true\"], expect: {exitCode: 0}}\n",
                "",
            ),
            ("wrong apiVersion", "faultline.dev/v1", "faultline.dev/v2"),
            (
                "bad template name",
                "name: checkout-survives-db-latency",
                "name: Checkout",
            ),
            ("attempts zero", "attempts: 2", "attempts: 0"),
            ("minScore above 100", "minScore: 60", "minScore: 160"),
            (
                "guardrail at zero",
                "consecutiveFailures: 10",
                "consecutiveFailures: 0",
            ),
            (
                "wrong op",
                "{op: \"<\", value: 5}",
                "{op: \"<>\", value: 5}",
            ),
            (
                "tcp address without port",
                "address: \"127.0.0.1:5432\"",
                "address: \"127.0.0.1\"",
            ),
            (
                "rollback with nothing",
                "    timeout: 5s\n",
                "    timeout: 5s\n  - timeout: 1s\n",
            ),
        ];
        for (what, from, to) in mistakes {
            assert!(full.contains(from), "{what}: {from:?} not in FULL");
            let yaml = full.replacen(from, to, 1);
            assert!(
                parse_template(&yaml).is_err(),
                "{what}: the parser takes it"
            );
            assert!(v.check(&yaml).is_err(), "{what}: the schema takes it");
        }
    }

    #[test]
    fn every_fault_kind_is_described() {
        let schema: Value = serde_json::from_str(&schema()).unwrap();
        let mut kinds: Vec<&str> = schema["definitions"]["Step"]["properties"]["fault"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["const"].as_str().unwrap())
            .collect();
        kinds.sort();
        let mut known = faultline_experiment::faults::KINDS.to_vec();
        known.sort();
        assert_eq!(kinds, known);
        let rules = schema["definitions"]["Step"]["allOf"].as_array().unwrap();
        assert_eq!(rules.len(), kinds.len());
        assert_eq!(schema["title"], "Faultline experiment template");
        assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    }
}
