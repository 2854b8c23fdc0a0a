//! Reading a Chaos Toolkit document: JSON or YAML, `configuration` resolved offline and
//! substituted as Python's `string.Template` does, the metadata, `runtime`, activities by name
//! for `ref`, and the small value readers (seconds, timeouts, pauses) the other parts share.
use super::Cx;
use crate::{
    import::{slug, ImportError, ImportErrors, Options},
    probes::Mode,
    template::{is_valid_name, Metadata, MAX_TEMPLATE_BYTES, NAME_RULE},
    Dur,
};
use serde_json::{Map, Value};
use std::{collections::BTreeMap, time::Duration};

/// JSON when it parses as JSON, else YAML (JSON is YAML too, but JSON's errors are clearer for
/// a document that was meant to be JSON).
pub(super) fn read(source: &str) -> Result<Value, ImportErrors> {
    let fail = |m: String| ImportErrors(vec![ImportError::new("", m)]);
    if source.len() > MAX_TEMPLATE_BYTES {
        return Err(fail(format!(
            "the experiment is {} bytes; the limit is {MAX_TEMPLATE_BYTES}",
            source.len()
        )));
    }
    match serde_json::from_str::<Value>(source) {
        Ok(v) => Ok(v),
        Err(json_err) => serde_norway::from_str::<Value>(source).map_err(|yaml_err| {
            if source.trim_start().starts_with('{') {
                fail(format!("not valid JSON: {json_err}"))
            } else {
                fail(format!("not valid YAML: {yaml_err}"))
            }
        }),
    }
}

/// A configuration entry after offline resolution.
pub(super) enum Conf {
    Value(Value),
    /// Known only when Chaos Toolkit runs; the text says why, for the error if it is used.
    Unresolved(String),
}

/// How the steady-state probes run, from `runtime.hypothesis`.
pub(super) struct HypothesisRun {
    pub(super) mode: Mode,
    pub(super) interval: Option<Dur>,
    pub(super) stop_on_failure: bool,
}

/// Activities by name, for `ref`: the path of the definition and the definition.
pub(super) type Index<'a> = BTreeMap<&'a str, (String, &'a Map<String, Value>)>;

impl Cx {
    pub(super) fn configuration(&mut self, v: Option<&Value>) -> BTreeMap<String, Conf> {
        let mut out = BTreeMap::new();
        let entries = match v {
            None | Some(Value::Null) => return out,
            Some(Value::Object(m)) => m,
            Some(_) => {
                self.err("configuration", "must be a mapping of names to values");
                return out;
            }
        };
        for (k, v) in entries {
            let at = format!("configuration.{k}");
            let typed = v.as_object().and_then(|o| Some((o, o.get("type")?)));
            let conf =
                match typed {
                    None => Conf::Value(v.clone()),
                    Some((o, t)) => match t.as_str() {
                        Some("env") => {
                            let key = o.get("key").and_then(Value::as_str).unwrap_or("?");
                            match o.get("default") {
                                Some(d) if !d.is_null() => {
                                    self.note(
                                        &at,
                                        format!(
                                        "Chaos Toolkit reads the environment variable {key} at \
                                         run time; the import used its default {d}"
                                    ),
                                    );
                                    Conf::Value(d.clone())
                                }
                                _ => Conf::Unresolved(format!(
                                    "reads the environment variable {key} when Chaos Toolkit runs \
                                 and has no default; an import cannot read it: give it a \
                                 default or a plain value"
                                )),
                            }
                        }
                        Some("probe") => Conf::Unresolved(
                            "is computed by a probe when Chaos Toolkit runs; an import cannot run \
                         it: give a plain value"
                                .into(),
                        ),
                        other => Conf::Unresolved(format!(
                        "configuration of type {} cannot be resolved offline: give a plain value",
                        other.map(|s| format!("{s:?}")).unwrap_or_else(|| t.to_string())
                    )),
                    },
                };
            out.insert(k.clone(), conf);
        }
        out
    }

    /// `v` with configuration substituted into every string, like Python's
    /// `string.Template.safe_substitute`: `${name}` and `$name` are replaced, `$$` is `$`, and
    /// names configuration does not define stay as written. A string that is exactly one
    /// reference takes the value with its type (a number stays a number).
    pub(super) fn substitute(
        &mut self,
        v: &Value,
        path: &str,
        conf: &BTreeMap<String, Conf>,
    ) -> Value {
        match v {
            Value::String(s) => self.substitute_str(s, path, conf),
            Value::Array(a) => Value::Array(
                a.iter()
                    .enumerate()
                    .map(|(i, x)| self.substitute(x, &format!("{path}[{i}]"), conf))
                    .collect(),
            ),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| (k.clone(), self.substitute(x, &format!("{path}.{k}"), conf)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    pub(super) fn substitute_str(
        &mut self,
        s: &str,
        path: &str,
        conf: &BTreeMap<String, Conf>,
    ) -> Value {
        if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
            if let Some(Conf::Value(v)) = conf.get(name) {
                return v.clone();
            }
        }
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(r) = after.strip_prefix('$') {
                out.push('$');
                rest = r;
                continue;
            }
            let (name, len, braced) = match after.strip_prefix('{') {
                Some(b) => match b.find('}') {
                    Some(j) if is_identifier(&b[..j]) => (&b[..j], j + 2, true),
                    _ => ("", 0, true),
                },
                None => {
                    let n = identifier_prefix(after);
                    (n, n.len(), false)
                }
            };
            let written = &rest[i..i + 1 + len];
            match conf.get(name).filter(|_| len > 0) {
                Some(Conf::Value(v)) => out.push_str(&python_str(v)),
                Some(Conf::Unresolved(why)) => {
                    self.err(format!("configuration.{name}"), why.clone());
                    out.push_str(written);
                }
                None => {
                    if braced && len > 0 {
                        self.note(
                            path,
                            format!("{written} is not defined in configuration; left as written"),
                        );
                    }
                    out.push_str(if len > 0 { written } else { "$" });
                }
            }
            rest = &after[len..];
        }
        out.push_str(rest);
        Value::String(out)
    }

    pub(super) fn metadata(&mut self, top: &Map<String, Value>, opts: &Options) -> Metadata {
        let title = top.get("title");
        let name = match (&opts.name, title.and_then(Value::as_str)) {
            (Some(n), _) => {
                if !is_valid_name(n) {
                    self.err("name", NAME_RULE);
                }
                n.clone()
            }
            (None, Some(t)) => {
                let s = slug(t);
                if s.is_empty() {
                    self.err(
                        "title",
                        "has no letters or digits to name the template after; give a name",
                    );
                }
                s
            }
            (None, None) => {
                self.err(
                    "title",
                    "is required: the template is named after it (or give a name)",
                );
                String::new()
            }
        };
        if title.is_some_and(|t| !t.is_string()) {
            self.err("title", "must be text");
        }
        let description = match top.get("description") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(d)) => d.clone(),
            Some(_) => {
                self.err("description", "must be text");
                String::new()
            }
        };
        let mut labels = BTreeMap::new();
        match top.get("tags") {
            None | Some(Value::Null) => {}
            Some(Value::Array(tags)) => {
                for (i, t) in tags.iter().enumerate() {
                    match t.as_str().map(slug) {
                        Some(k) if !k.is_empty() => {
                            labels.insert(k, "true".to_string());
                        }
                        _ => self.err(format!("tags[{i}]"), "must be text with a letter or digit"),
                    }
                }
                if !labels.is_empty() {
                    self.note("tags", "each tag became a label TAG: \"true\"");
                }
            }
            Some(_) => self.err("tags", "must be a list of text"),
        }
        Metadata {
            name,
            description,
            labels,
        }
    }

    pub(super) fn runtime(&mut self, v: Option<&Value>) -> HypothesisRun {
        let mut run = HypothesisRun {
            mode: Mode::Edge,
            interval: None,
            stop_on_failure: false,
        };
        let Some(h) = v.and_then(|r| r.get("hypothesis")) else {
            return run;
        };
        match h.get("strategy").and_then(Value::as_str) {
            None | Some("default") => {}
            Some("before-method-only") => run.mode = Mode::Sot,
            Some("after-method-only") => run.mode = Mode::Eot,
            Some("during-method-only") => run.mode = Mode::OnChaos,
            Some("continuously") => run.mode = Mode::Continuous,
            Some(s) => self.err(
                "runtime.hypothesis.strategy",
                format!(
                    "unknown strategy {s:?}; Chaos Toolkit's are default, before-method-only, \
                     after-method-only, during-method-only and continuously"
                ),
            ),
        }
        if let Some(f) = h.get("frequency") {
            match seconds(f) {
                Some(d) if d.0 >= Duration::from_millis(10) => run.interval = Some(d),
                _ => self.err(
                    "runtime.hypothesis.frequency",
                    "must be a number of seconds, at least 0.01",
                ),
            }
        }
        run.stop_on_failure = h.get("fail_fast") == Some(&Value::Bool(true));
        run
    }

    /// The activity `v` at `at`, or the one its `ref` names, with the path of its definition.
    pub(super) fn resolve<'a>(
        &mut self,
        at: &str,
        v: &'a Value,
        index: &Index<'a>,
    ) -> Option<(String, &'a Map<String, Value>)> {
        let Some(m) = v.as_object() else {
            self.err(at, "must be a mapping (an activity)");
            return None;
        };
        match m.get("ref") {
            None => Some((at.to_string(), m)),
            Some(Value::String(r)) => match index.get(r.as_str()) {
                Some((def, a)) => Some((def.clone(), *a)),
                None => {
                    let names: Vec<&str> = index.keys().copied().collect();
                    let hint = crate::hints::did_you_mean(r, &names)
                        .map(|h| format!(" ({h})"))
                        .unwrap_or_default();
                    self.err(
                        format!("{at}.ref"),
                        format!("no activity is named {r:?}{hint}"),
                    );
                    None
                }
            },
            Some(_) => {
                self.err(format!("{at}.ref"), "must be the name of an activity");
                None
            }
        }
    }

    /// A number of seconds, or `[connect, read]` (the longest a request can take is the sum).
    pub(super) fn timeout(&mut self, at: &str, v: Option<&Value>) -> Option<Dur> {
        match v? {
            Value::Null => None,
            Value::Array(pair) => match pair.as_slice() {
                [c, r] => match (seconds(c), seconds(r)) {
                    (Some(c), Some(r)) => {
                        self.note(at, "[connect, read] became one timeout: their sum");
                        Some(Dur(c.0 + r.0))
                    }
                    _ => self.bad_timeout(at),
                },
                _ => self.bad_timeout(at),
            },
            v => seconds(v).or_else(|| self.bad_timeout(at)),
        }
    }

    pub(super) fn bad_timeout(&mut self, at: &str) -> Option<Dur> {
        self.err(at, "must be a number of seconds or [connect, read]");
        None
    }

    /// `pauses.before` and `pauses.after` of an activity.
    pub(super) fn pauses(&mut self, def: &str, act: &Map<String, Value>) -> [Option<Dur>; 2] {
        let Some(p) = act.get("pauses") else {
            return [None, None];
        };
        ["before", "after"].map(|k| match p.get(k) {
            None | Some(Value::Null) => None,
            Some(v) => seconds(v).or_else(|| {
                self.err(format!("{def}.pauses.{k}"), "must be a number of seconds");
                None
            }),
        })
    }

    /// The list of activities under `key` (absent is empty).
    pub(super) fn activities<'a>(&mut self, key: &str, v: Option<&'a Value>) -> &'a [Value] {
        match v {
            Some(Value::Array(l)) => l,
            None | Some(Value::Null) => &[],
            Some(_) => {
                self.err(key, "must be a list of activities");
                &[]
            }
        }
    }
}

/// Activities by name, for `ref` (a later definition of a name wins, as in Chaos Toolkit).
pub(super) fn index(top: &Map<String, Value>) -> Index<'_> {
    let lists = [
        (
            "steady-state-hypothesis.probes",
            top.get("steady-state-hypothesis")
                .and_then(|h| h.get("probes")),
        ),
        ("method", top.get("method")),
        ("rollbacks", top.get("rollbacks")),
    ];
    let mut out = Index::new();
    for (base, list) in lists {
        let items = list.and_then(Value::as_array).into_iter().flatten();
        for (i, a) in items.enumerate() {
            let Some(a) = a.as_object().filter(|a| !a.contains_key("ref")) else {
                continue;
            };
            if let Some(name) = a.get("name").and_then(Value::as_str) {
                out.insert(name, (format!("{base}[{i}]"), a));
            }
        }
    }
    out
}

/// Seconds as a duration (Chaos Toolkit writes numbers, possibly fractional).
pub(super) fn seconds(v: &Value) -> Option<Dur> {
    let s = v
        .as_f64()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)?;
    Some(Dur::from_millis((s * 1000.0).round() as u64))
}

/// A value as Python's `str()` writes it, which is what Chaos Toolkit substitutes and sends.
pub(super) fn python_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

pub(super) fn is_identifier(s: &str) -> bool {
    !s.is_empty() && identifier_prefix(s).len() == s.len()
}

/// The longest Python identifier at the start of `s` (ASCII, as `string.Template` reads).
pub(super) fn identifier_prefix(s: &str) -> &str {
    let mut end = 0;
    for (i, c) in s.char_indices() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        end = i + c.len_utf8();
    }
    &s[..end]
}
