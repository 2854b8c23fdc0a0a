//! Importing experiments written for other chaos tools into Faultline templates.
//!
//! Each format has one module that turns its source text into an [`Experiment`]; this module
//! owns what they share: the result ([`Imported`]: the experiment, its YAML and notes on what was
//! mapped approximately), the errors (every problem, each named by its path in the *source*
//! document), and the last check that the YAML passes [`parse_template`]. Nothing here does I/O:
//! the CLI reads files, the hub takes the source from GraphQL.
pub mod chaostoolkit;
pub mod jsonpath;
pub mod kill;

use crate::{parse_template, Experiment};
use serde::Serialize;
use std::fmt;

pub use chaostoolkit::from_chaostoolkit;

/// Formats this version imports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// A Chaos Toolkit experiment (JSON or YAML).
    ChaosToolkit,
}

impl Format {
    pub fn name(&self) -> &'static str {
        match self {
            Format::ChaosToolkit => "chaostoolkit",
        }
    }
}

/// Choices the caller makes rather than the source.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `metadata.name` of the result, instead of the one derived from the source's title.
    pub name: Option<String>,
}

/// Converts `source` written in `format`.
pub fn convert(format: Format, source: &str, opts: &Options) -> Result<Imported, ImportErrors> {
    match format {
        Format::ChaosToolkit => chaostoolkit::convert(source, opts),
    }
}

/// A converted experiment.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    /// The experiment as `parse_template` reads `yaml` back.
    pub experiment: Experiment,
    /// The Faultline template, ready to store or to write to a file.
    pub yaml: String,
    /// What was mapped approximately or left out, each starting with the source path it is about.
    pub notes: Vec<String>,
}

/// One thing in the source that cannot be mapped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImportError {
    /// Where in the source document, e.g. `method[2].provider.type`; empty for the whole document.
    pub path: String,
    pub message: String,
}

impl ImportError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ImportError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in one source, in document order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ImportErrors(pub Vec<ImportError>);

impl fmt::Display for ImportErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(|e| e.to_string()).collect();
        f.write_str(&lines.join("\n"))
    }
}

/// A template name from a title: lowercase letters, digits and single dashes, at most 63.
pub fn slug(title: &str) -> String {
    let mut s = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.is_empty() && !s.ends_with('-') {
            s.push('-');
        }
    }
    s.truncate(63);
    s.trim_end_matches('-').to_string()
}

/// Writes `exp` as YAML under a one-line comment `header` and reads it back with [`parse_template`], so
/// that whatever an importer returns is a template the hub accepts. A problem found only here is
/// a gap in the importer's own checks; it is reported against the Faultline field.
pub(crate) fn finish(
    exp: &Experiment,
    header: &str,
    notes: Vec<String>,
) -> Result<Imported, ImportErrors> {
    let body = serde_norway::to_string(exp).map_err(|e| {
        ImportErrors(vec![ImportError::new(
            "",
            format!("cannot write the converted template: {e}"),
        )])
    })?;
    let header: String = header
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let yaml = format!("# {header}\n{body}");
    match parse_template(&yaml) {
        Ok(experiment) => Ok(Imported {
            experiment,
            yaml,
            notes,
        }),
        Err(errs) => Err(ImportErrors(
            errs.0
                .into_iter()
                .map(|e| {
                    ImportError::new(
                        "",
                        format!(
                            "the converted template is invalid at {}: {}",
                            e.field, e.message
                        ),
                    )
                })
                .collect(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_become_names() {
        assert_eq!(slug("  Hello, World!  "), "hello-world");
        assert_eq!(slug("Ünïcode & CAPS_2"), "n-code-caps-2");
        let s = slug(&"word ".repeat(30));
        assert!(s.len() <= 63 && !s.ends_with('-'), "{s}");
        assert_eq!(slug("!!!"), "");
    }

    #[test]
    fn errors_print_one_per_line() {
        let errs = ImportErrors(vec![
            ImportError::new("method[0].provider.type", "no"),
            ImportError::new("", "whole document"),
        ]);
        assert_eq!(
            errs.to_string(),
            "method[0].provider.type: no\nwhole document"
        );
    }
}
