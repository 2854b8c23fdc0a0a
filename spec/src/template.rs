//! The experiment template (`apiVersion: faultline.dev/v1`, `kind: Experiment`) and its parser.
//!
//! Parsing happens in two passes: serde checks structure (unknown fields, types) and gives line
//! and column; [`Experiment::validate`] then checks meaning (names, ranges, fault parameters) and
//! reports every problem it finds, not just the first.
use crate::{faults::FaultSpec, Dur};
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, fmt, time::Duration};

pub const API_VERSION: &str = "faultline.dev/v1";
/// Templates larger than this are refused before parsing.
pub const MAX_TEMPLATE_BYTES: usize = 256 * 1024;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Experiment {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    /// Which delegates may run this experiment (label selector); `startRun` may name one instead.
    #[serde(default)]
    pub target: Target,
    pub hypothesis: Hypothesis,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Target {
    #[serde(default)]
    pub delegate: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Hypothesis {
    pub probes: Vec<Probe>,
    /// After the last fault is reverted, every probe must pass again within this time.
    #[serde(default = "default_recover_within")]
    pub recover_within: Dur,
}

fn default_recover_within() -> Dur {
    Dur::secs(30)
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Probe {
    pub name: String,
    pub http: HttpProbe,
    #[serde(default = "default_interval")]
    pub interval: Dur,
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
}

fn default_interval() -> Dur {
    Dur::secs(1)
}
fn default_timeout() -> Dur {
    Dur::secs(2)
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpProbe {
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default)]
    pub expect: HttpExpect,
}

fn default_method() -> String {
    "GET".into()
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpExpect {
    #[serde(default = "default_status")]
    pub status: u16,
}

impl Default for HttpExpect {
    fn default() -> Self {
        HttpExpect {
            status: default_status(),
        }
    }
}

fn default_status() -> u16 {
    200
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Step {
    /// Fault kind, e.g. `process-kill`.
    pub fault: String,
    /// 0–10, how much this step counts in the resilience score (Litmus semantics).
    #[serde(default = "default_weight")]
    pub weight: u8,
    #[serde(default)]
    pub target: serde_json::Value,
    #[serde(default)]
    pub params: serde_json::Value,
    /// How long the fault is held (or, for one-shot faults, watched) before it is reverted.
    #[serde(default)]
    pub duration: Option<Dur>,
}

fn default_weight() -> u8 {
    5
}

/// One problem in a template, located as precisely as we can.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpecError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted path of the offending field, e.g. `steps[0].params.signal`.
    pub field: String,
    pub message: String,
}

impl SpecError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError {
            line: None,
            column: None,
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, "line {l}, column {c}: ")?;
        }
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// Every problem found in one template.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|e| e.to_string()).collect();
        f.write_str(&parts.join("; "))
    }
}

/// Parses and validates a YAML template. Never panics, whatever the input.
pub fn parse_template(yaml: &str) -> Result<Experiment, SpecErrors> {
    if yaml.len() > MAX_TEMPLATE_BYTES {
        return Err(SpecErrors(vec![SpecError::field(
            "",
            format!(
                "template is {} bytes; the limit is {MAX_TEMPLATE_BYTES}",
                yaml.len()
            ),
        )]));
    }
    let exp: Experiment =
        serde_norway::from_str(yaml).map_err(|e| SpecErrors(vec![from_yaml_error(&e)]))?;
    exp.validate().map_err(|SpecErrors(mut errs)| {
        // Meaning errors know their field; find where it stands in the text.
        let at = crate::locate::Locations::of(yaml);
        for e in errs.iter_mut().filter(|e| e.line.is_none()) {
            if let Some((line, column)) = at.find(&e.field) {
                (e.line, e.column) = (Some(line), Some(column));
            }
        }
        SpecErrors(errs)
    })?;
    Ok(exp)
}

/// Turns serde_norway's message ("steps[0]: unknown field `x`, expected ... at line 3 column 5")
/// into a located error with the field path split out.
fn from_yaml_error(e: &serde_norway::Error) -> SpecError {
    let (line, column) = e
        .location()
        .map(|l| (Some(l.line()), Some(l.column())))
        .unwrap_or((None, None));
    let mut text = e.to_string();
    if let Some(i) = text.rfind(" at line ") {
        text.truncate(i);
    }
    let (mut field, message) = match text.split_once(": ") {
        Some((path, rest)) if !path.contains(' ') => (path.to_string(), rest.to_string()),
        _ => (String::new(), text.clone()),
    };
    for marker in ["unknown field `", "missing field `"] {
        if let Some(rest) = message.strip_prefix(marker) {
            if let Some(name) = rest.split('`').next() {
                field = if field.is_empty() {
                    name.to_string()
                } else {
                    format!("{field}.{name}")
                };
            }
        }
    }
    SpecError {
        line,
        column,
        field,
        message,
    }
}

impl Experiment {
    /// Checks meaning after structure: every problem is collected.
    pub fn validate(&self) -> Result<(), SpecErrors> {
        let mut errs = Vec::new();
        if self.api_version != API_VERSION {
            errs.push(SpecError::field(
                "apiVersion",
                format!("must be {API_VERSION:?}, got {:?}", self.api_version),
            ));
        }
        if self.kind != "Experiment" {
            errs.push(SpecError::field(
                "kind",
                format!("must be \"Experiment\", got {:?}", self.kind),
            ));
        }
        let name = &self.metadata.name;
        if name.is_empty()
            || name.len() > 63
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            errs.push(SpecError::field(
                "metadata.name",
                "must be 1-63 characters of lowercase letters, digits and '-'",
            ));
        }
        if self.hypothesis.probes.is_empty() {
            errs.push(SpecError::field(
                "hypothesis.probes",
                "at least one probe is required",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, p) in self.hypothesis.probes.iter().enumerate() {
            let at = |f: &str| format!("hypothesis.probes[{i}].{f}");
            if p.name.is_empty() {
                errs.push(SpecError::field(at("name"), "must not be empty"));
            } else if !seen.insert(p.name.as_str()) {
                errs.push(SpecError::field(
                    at("name"),
                    format!("duplicate probe name {:?}", p.name),
                ));
            }
            if !(p.http.url.starts_with("http://") || p.http.url.starts_with("https://")) {
                errs.push(SpecError::field(
                    at("http.url"),
                    "must start with http:// or https://",
                ));
            }
            if !["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
                .contains(&p.http.method.as_str())
            {
                errs.push(SpecError::field(
                    at("http.method"),
                    format!("unsupported method {:?}", p.http.method),
                ));
            }
            if !(100..=599).contains(&p.http.expect.status) {
                errs.push(SpecError::field(
                    at("http.expect.status"),
                    "must be an HTTP status between 100 and 599",
                ));
            }
            if p.interval.0 < Duration::from_millis(10) {
                errs.push(SpecError::field(at("interval"), "must be at least 10ms"));
            }
            if p.timeout.0.is_zero() || p.timeout.0 > Duration::from_secs(60) {
                errs.push(SpecError::field(
                    at("timeout"),
                    "must be between 1ms and 60s",
                ));
            }
        }
        if self.steps.is_empty() {
            errs.push(SpecError::field(
                "steps",
                "at least one fault step is required",
            ));
        }
        for (i, s) in self.steps.iter().enumerate() {
            if s.weight > 10 {
                errs.push(SpecError::field(
                    format!("steps[{i}].weight"),
                    "must be between 0 and 10",
                ));
            }
            if let Err(e) = s.fault_spec(i) {
                errs.push(e);
            }
        }
        if self.planned_duration() > Duration::from_secs(24 * 3600) {
            errs.push(SpecError::field(
                "steps",
                "the experiment would run longer than 24h",
            ));
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(SpecErrors(errs))
        }
    }

    /// Upper bound of how long a run of this experiment takes on the delegate, used by the hub
    /// to resolve runs whose delegate went silent.
    pub fn planned_duration(&self) -> Duration {
        let steps: Duration = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.duration.map(|d| d.0).unwrap_or_default()
                    + s.fault_spec(i).map(|f| f.extra_time()).unwrap_or_default()
            })
            .sum();
        let probe_max = self
            .hypothesis
            .probes
            .iter()
            .map(|p| p.interval.0 + p.timeout.0)
            .max()
            .unwrap_or_default();
        steps + self.hypothesis.recover_within.0 + probe_max * 2
    }
}

impl Step {
    /// The typed fault this step describes, or an error naming the field.
    pub fn fault_spec(&self, index: usize) -> Result<FaultSpec, SpecError> {
        FaultSpec::parse(index, self)
    }

    /// How long the fault is held or watched; one-shot faults default to 0.
    pub fn hold(&self) -> Duration {
        self.duration.map(|d| d.0).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const GOOD: &str = r#"
apiVersion: faultline.dev/v1
kind: Experiment
metadata:
  name: web-survives-kill
target:
  delegate: {role: demo}
hypothesis:
  probes:
    - name: web-ok
      http: {url: "http://127.0.0.1:8080/", expect: {status: 200}}
      interval: 200ms
      timeout: 1s
  recoverWithin: 10s
steps:
  - fault: process-kill
    target: {name: demo-web}
    params: {signal: KILL}
    duration: 2s
"#;

    #[test]
    fn parses_a_good_template() {
        let e = parse_template(GOOD).unwrap();
        assert_eq!(e.metadata.name, "web-survives-kill");
        assert_eq!(e.hypothesis.probes[0].interval, Dur::from_millis(200));
        assert_eq!(e.steps[0].weight, 5);
        assert!(e.planned_duration() >= Duration::from_secs(12));
    }

    #[test]
    fn unknown_field_names_line_column_and_field() {
        let bad = GOOD.replace(
            "  name: web-survives-kill",
            "  name: web-survives-kill\n  nmae: x",
        );
        let err = parse_template(&bad).unwrap_err();
        let e = &err.0[0];
        assert_eq!(e.field, "metadata.nmae", "{e:?}");
        assert_eq!(e.line, Some(6), "{e:?}");
        assert_eq!(e.column, Some(3), "{e:?}");
        assert!(e.message.contains("unknown field"), "{e:?}");
    }

    #[test]
    fn malformed_yaml_has_a_location() {
        let err = parse_template("apiVersion: [unclosed\nkind: x").unwrap_err();
        assert!(err.0[0].line.is_some(), "{err:?}");
    }

    #[test]
    fn semantic_errors_are_all_reported() {
        let bad = GOOD
            .replace("faultline.dev/v1", "v0")
            .replace("name: web-ok", "name: ''")
            .replace("signal: KILL", "signal: LOUD");
        let err = parse_template(&bad).unwrap_err();
        let fields: Vec<&str> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"apiVersion"), "{fields:?}");
        assert!(fields.contains(&"hypothesis.probes[0].name"), "{fields:?}");
        assert!(fields.contains(&"steps[0].params.signal"), "{fields:?}");
        // Meaning errors are located too: `signal` is on line 18 (`params: {signal: LOUD}`).
        let sig = err
            .0
            .iter()
            .find(|e| e.field == "steps[0].params.signal")
            .unwrap();
        assert_eq!((sig.line, sig.column), (Some(18), Some(14)), "{sig:?}");
        assert!(err.0.iter().all(|e| e.line.is_some()), "{err:?}");
    }

    #[test]
    fn never_panics_on_junk() {
        for junk in [
            "",
            "-",
            ":",
            "{",
            "[[[",
            "a: &x\nb: *x",
            "\u{0}",
            "steps: 5",
            "apiVersion: 1\nkind: 2",
        ] {
            let _ = parse_template(junk);
        }
    }
}
