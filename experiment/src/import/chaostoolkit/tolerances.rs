//! Tolerances as a probe's expectations: statuses and exit codes, text, `range`, `regex` and
//! `jsonpath`; Python's (`probe` tolerances, booleans) are refused by name.
use super::{probes::Check, Cx};
use crate::{
    import::jsonpath::json_pointer,
    probes::{check_regex, JsonExpect, StatusSpec, ValueExpect},
};
use serde_json::{Map, Value};

impl Cx {
    pub(super) fn tolerance(&mut self, at: &str, t: &Value, check: &mut Check) {
        match (t, check) {
            (Value::Bool(_), _) => self.err(
                at,
                "a boolean tolerance compares what a Python probe returns; http and process \
                 providers return a status with a body or output, so it cannot be mapped",
            ),
            (Value::Number(n), Check::Http(h)) => match http_status(t) {
                Some(s) => h.expect.status = StatusSpec::One(s),
                None => self.err(at, format!("{n} is not an HTTP status (100-599)")),
            },
            (Value::Number(n), Check::Command(c)) => match exit_code(t) {
                Some(code) => c.expect.exit_code = code,
                None => self.err(at, format!("{n} is not an exit code")),
            },
            (Value::String(s), Check::Http(h)) => {
                h.expect.body_regex = Some(format!(r"\A{}\z", regex::escape(s)));
                self.note(
                    at,
                    "the text tolerance became: the body equals it (bodyRegex)",
                );
            }
            (Value::String(s), Check::Command(c)) => {
                c.expect.stdout_equals = Some(s.clone());
                self.note(
                    at,
                    "the text tolerance became stdoutEquals (trailing whitespace is trimmed); \
                     exit code 0 is expected too",
                );
            }
            (Value::Array(items), Check::Http(h)) => {
                match items.iter().map(http_status).collect::<Option<Vec<u16>>>() {
                    Some(l) if l.len() == 1 => h.expect.status = StatusSpec::One(l[0]),
                    Some(l) if !l.is_empty() => h.expect.status = StatusSpec::List(l),
                    _ => self.err(
                        at,
                        "a list tolerance of an http probe must list HTTP statuses (100-599)",
                    ),
                }
            }
            (Value::Array(items), Check::Command(c)) => match items.as_slice() {
                [one] if exit_code(one).is_some() => {
                    c.expect.exit_code = exit_code(one).unwrap_or(0)
                }
                _ => self.err(
                    at,
                    "a list of exit codes cannot be mapped: Faultline expects one exit code",
                ),
            },
            (Value::Object(o), check) => self.typed_tolerance(at, o, check),
            (Value::Null, _) => self.err(at, "is empty"),
        }
    }

    pub(super) fn typed_tolerance(&mut self, at: &str, o: &Map<String, Value>, check: &mut Check) {
        let field = |f: &str| format!("{at}.{f}");
        let target = o.get("target").and_then(Value::as_str);
        match o.get("type").and_then(Value::as_str) {
            Some("range") => {
                let bounds = o.get("range").and_then(Value::as_array).map(Vec::as_slice);
                let Some([lo, hi]) = bounds else {
                    self.err(field("range"), "must be [lower, upper]");
                    return;
                };
                match (target, check) {
                    (Some("status"), Check::Http(h)) => match (http_status(lo), http_status(hi)) {
                        (Some(a), Some(b)) if a == b => h.expect.status = StatusSpec::One(a),
                        (Some(a), Some(b)) if a < b => {
                            h.expect.status = StatusSpec::Text(format!("{a}-{b}"))
                        }
                        _ => self.err(
                            field("range"),
                            "must be two HTTP statuses (100-599), the lower first",
                        ),
                    },
                    (Some("status"), Check::Command(c)) => match (exit_code(lo), exit_code(hi)) {
                        (Some(a), Some(b)) if a == b => c.expect.exit_code = a,
                        _ => self.err(
                            field("range"),
                            "a range of exit codes cannot be mapped: Faultline expects one exit \
                             code",
                        ),
                    },
                    (Some("stdout"), Check::Command(c)) => match (lo.as_f64(), hi.as_f64()) {
                        (Some(a), Some(b)) if a <= b => {
                            c.expect.value = Some(ValueExpect {
                                between: Some([a, b]),
                                ..ValueExpect::default()
                            });
                            self.note(
                                at,
                                "the range became expect.value.between on the trimmed stdout; \
                                 exit code 0 is expected too",
                            );
                        }
                        _ => self.err(
                            field("range"),
                            "must be two numbers, the lower first, to compare stdout with",
                        ),
                    },
                    (None, _) => self.err(
                        field("target"),
                        "is required to map a range tolerance: give target: status",
                    ),
                    (Some(t), _) => self.err(
                        field("target"),
                        format!(
                            "a range on {t:?} cannot be mapped; Faultline checks a range on \
                             the status, or on the stdout of a process"
                        ),
                    ),
                }
            }
            Some("regex") => {
                let Some(pattern) = o.get("pattern").and_then(Value::as_str) else {
                    self.err(field("pattern"), "is required");
                    return;
                };
                if let Err(e) = check_regex(pattern) {
                    self.err(
                        field("pattern"),
                        format!("{e} (Faultline reads Rust regex syntax)"),
                    );
                    return;
                }
                match (target, check) {
                    (Some("body"), Check::Http(h)) => h.expect.body_regex = Some(pattern.into()),
                    (Some("stdout"), Check::Command(c)) => {
                        c.expect.stdout_regex = Some(pattern.into());
                        self.note(at, "exit code 0 is expected too");
                    }
                    (None, Check::Http(_)) => self.err(
                        field("target"),
                        "is required to map a regex tolerance: give target: body",
                    ),
                    (None, Check::Command(_)) => self.err(
                        field("target"),
                        "is required to map a regex tolerance: give target: stdout",
                    ),
                    (Some(t), Check::Http(_)) => self.err(
                        field("target"),
                        format!(
                            "a regex on {t:?} cannot be mapped; Faultline matches the body of an \
                             http probe"
                        ),
                    ),
                    (Some(t), Check::Command(_)) => self.err(
                        field("target"),
                        format!(
                            "a regex on {t:?} cannot be mapped; Faultline matches the stdout of a \
                             command probe"
                        ),
                    ),
                }
            }
            Some("jsonpath") => {
                let Check::Http(h) = check else {
                    self.err(
                        field("type"),
                        "a jsonpath tolerance of a process probe cannot be mapped; Faultline \
                         reads JSON from http bodies only",
                    );
                    return;
                };
                let Some(path) = o.get("path").and_then(Value::as_str) else {
                    self.err(field("path"), "is required");
                    return;
                };
                let pointer = match json_pointer(path) {
                    Ok(p) => p,
                    Err(e) => {
                        self.err(field("path"), e);
                        return;
                    }
                };
                // Without a target, Chaos Toolkit matches {status, headers, body}.
                let pointer = match target {
                    Some("body") => Some(pointer),
                    None => match pointer.strip_prefix("/body") {
                        Some(p) if p.is_empty() || p.starts_with('/') => Some(p.to_string()),
                        _ => None,
                    },
                    Some(_) => None,
                };
                let Some(pointer) = pointer else {
                    self.err(
                        field("target"),
                        "a jsonpath tolerance maps only on the body: give target: body",
                    );
                    return;
                };
                if o.contains_key("count") {
                    self.err(
                        field("count"),
                        "a count of matches cannot be mapped; Faultline compares one value",
                    );
                }
                let equals = match o.get("expect") {
                    None => {
                        self.err(
                            field("expect"),
                            "is required: Faultline compares the value at the path with it \
                             (checking only that the path exists cannot be mapped)",
                        );
                        return;
                    }
                    Some(Value::Array(a)) if a.len() == 1 => a[0].clone(),
                    Some(Value::Array(_)) => {
                        self.err(
                            field("expect"),
                            "must be one value: a path without wildcards matches one value",
                        );
                        return;
                    }
                    Some(v) => v.clone(),
                };
                h.expect.json.push(JsonExpect { pointer, equals });
            }
            Some("probe") => self.err(
                field("type"),
                "a probe tolerance runs Python code; it cannot be mapped",
            ),
            Some(t) => self.err(
                field("type"),
                format!(
                    "unknown tolerance type {t:?}; Chaos Toolkit's are range, regex, jsonpath \
                     and probe"
                ),
            ),
            None => self.err(
                field("type"),
                "is required in a tolerance mapping (range, regex or jsonpath)",
            ),
        }
    }
}

pub(super) fn http_status(v: &Value) -> Option<u16> {
    v.as_u64()
        .filter(|s| (100..=599).contains(s))
        .map(|s| s as u16)
}

pub(super) fn exit_code(v: &Value) -> Option<i32> {
    v.as_i64().and_then(|c| i32::try_from(c).ok())
}
