//! `faultline template …`: the same template validation and import the hub runs, offline, for
//! pre-commit hooks, CI and migrations from other tools.
use faultline_spec::{import, parse_template, SpecError};
use std::path::Path;

/// One line per problem, `FILE:LINE:COL: field: message` (`FILE: field: message` when the
/// problem has no single location).
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
