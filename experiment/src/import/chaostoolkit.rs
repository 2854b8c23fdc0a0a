//! Chaos Toolkit experiments (JSON or YAML) to Faultline experiments.
//!
//! What maps, in short (the full table is in `docs/chaostoolkit-import.md`):
//! - `title`, `description`, `tags` become the metadata; `configuration` values are substituted
//!   into `${name}` references everywhere, as Chaos Toolkit does at run time.
//! - Steady-state probes with `http` or `process` providers become hypothesis probes in mode
//!   `edge`; their tolerances become the probe's expectations.
//! - Method actions that run `kill`, `pkill` or `killall` become `process-kill` steps (a SIGSTOP
//!   followed by a SIGCONT of the same process becomes `process-pause`); method probes become
//!   `continuous` probes; `pauses` become pause steps; `background` actions a `parallel` group.
//! - Rollbacks with `http` or `process` providers become `http` and `command` rollbacks.
//!
//! Everything else (Python providers and tolerances, secrets, actions that are not a kill) is an
//! error naming its path in the source, and every such problem is reported, not just the first.
//! This module reads text and builds values; it never reads the environment or runs anything,
//! so `{type: env}` configuration resolves only through its `default`.
use super::{
    finish,
    jsonpath::json_pointer,
    kill::{self, Sig},
    slug, ImportError, ImportErrors, Imported, Options,
};
use crate::{
    faults::{Signal, KINDS},
    probes::{
        check_regex, CommandExpect, CommandProbe, HttpExpect, HttpProbe, JsonExpect, Mode, Probe,
        StatusSpec, HTTP_METHODS,
    },
    template::{
        is_valid_name, CommandAction, Experiment, FaultStep, HttpAction, Hypothesis, Metadata,
        Rollback, Step, Target, API_VERSION, MAX_TEMPLATE_BYTES, NAME_RULE,
    },
    Dur,
};
use serde_json::{json, Map, Value};
use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

/// Converts a Chaos Toolkit experiment, naming the template after its title.
pub fn from_chaostoolkit(source: &str) -> Result<Imported, ImportErrors> {
    convert(source, &Options::default())
}

/// Converts a Chaos Toolkit experiment with the caller's options.
pub fn convert(source: &str, opts: &Options) -> Result<Imported, ImportErrors> {
    let doc = read(source)?;
    let Some(top) = doc.as_object() else {
        return Err(ImportErrors(vec![ImportError::new(
            "",
            "a Chaos Toolkit experiment is a mapping with title, steady-state-hypothesis and method",
        )]));
    };
    let mut cx = Cx::default();
    let exp = cx.experiment(top, opts);
    if !cx.errors.is_empty() {
        return Err(ImportErrors(cx.errors));
    }
    let title = top.get("title").and_then(Value::as_str).unwrap_or_default();
    finish(
        &exp,
        &format!("Converted from the Chaos Toolkit experiment {title:?}."),
        cx.notes,
    )
}

/// JSON when it parses as JSON, else YAML (JSON is YAML too, but JSON's errors are clearer for
/// a document that was meant to be JSON).
fn read(source: &str) -> Result<Value, ImportErrors> {
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

/// What the conversion has found so far.
#[derive(Default)]
struct Cx {
    errors: Vec<ImportError>,
    notes: Vec<String>,
    /// Probe names already used: Faultline's must be unique, Chaos Toolkit's need not be.
    probe_names: BTreeSet<String>,
}

/// A configuration entry after offline resolution.
enum Conf {
    Value(Value),
    /// Known only when Chaos Toolkit runs; the text says why, for the error if it is used.
    Unresolved(String),
}

/// How the steady-state probes run, from `runtime.hypothesis`.
struct HypothesisRun {
    mode: Mode,
    interval: Option<Dur>,
    stop_on_failure: bool,
}

/// What a provider calls, read from the source.
enum Call {
    Http(HttpCall),
    Process(ProcessCall),
}

struct HttpCall {
    url: String,
    method: String,
    headers: BTreeMap<String, String>,
    body: Option<String>,
    timeout: Option<Dur>,
    tls_verify: bool,
    attempts: u32,
    expected_status: Option<StatusSpec>,
}

struct ProcessCall {
    program: String,
    args: Args,
    timeout: Option<Dur>,
}

/// Process arguments: a list runs as argv; a string runs through the shell as `PATH ARGS`
/// (that is what Chaos Toolkit does with each).
enum Args {
    List(Vec<String>),
    Line(String),
}

/// One entry of the method once read: a wait, or a signal to a process.
enum Planned {
    Pause(Dur),
    Signal(Signalled),
}

struct Signalled {
    /// Path of the activity, for errors.
    path: String,
    name: String,
    /// `{name: ...}` or `{pidFile: ...}`.
    target: Value,
    sig: Sig,
    background: bool,
}

/// A probe's check while its tolerance is mapped onto it.
enum Check {
    Http(HttpProbe),
    Command(CommandProbe),
}

/// Activities by name, for `ref`: the path of the definition and the definition.
type Index<'a> = BTreeMap<&'a str, (String, &'a Map<String, Value>)>;

const TOP_LEVEL: &[&str] = &[
    "version",
    "title",
    "description",
    "tags",
    "configuration",
    "secrets",
    "steady-state-hypothesis",
    "method",
    "rollbacks",
    "runtime",
    "controls",
    "extensions",
    "contributions",
];

impl Cx {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let e = ImportError::new(path, message);
        if !self.errors.contains(&e) {
            self.errors.push(e);
        }
    }

    fn note(&mut self, path: &str, message: impl AsRef<str>) {
        let n = format!("{path}: {}", message.as_ref());
        if !self.notes.contains(&n) {
            self.notes.push(n);
        }
    }

    fn experiment(&mut self, raw: &Map<String, Value>, opts: &Options) -> Experiment {
        let conf = self.configuration(raw.get("configuration"));
        if raw.contains_key("secrets") {
            self.err(
                "secrets",
                "cannot be mapped: a Faultline template is stored and shown as written and holds \
                 no secrets; remove this section and give probes what they need through the \
                 delegate's environment",
            );
        }
        // Substitute first, as Chaos Toolkit does before it runs an activity: every later step
        // then sees final values, at the same paths.
        let top: Map<String, Value> = raw
            .iter()
            .map(|(k, v)| match k.as_str() {
                "configuration" | "secrets" => (k.clone(), v.clone()),
                _ => (k.clone(), self.substitute(v, k, &conf)),
            })
            .collect();
        for key in top.keys() {
            match key.as_str() {
                "controls" => self.note(
                    key,
                    "ignored: controls run Python code around the experiment; Faultline has none",
                ),
                "extensions" | "contributions" => self.note(key, "ignored"),
                k if !TOP_LEVEL.contains(&k) => {
                    self.note(key, "ignored: not a Chaos Toolkit experiment field")
                }
                _ => {}
            }
        }
        let metadata = self.metadata(&top, opts);
        let run = self.runtime(top.get("runtime"));
        let index = index(&top);

        let mut probes = Vec::new();
        match top.get("steady-state-hypothesis") {
            None | Some(Value::Null) => {}
            Some(Value::Object(h)) => {
                let list = self.activities("steady-state-hypothesis.probes", h.get("probes"));
                for (i, p) in list.iter().enumerate() {
                    let at = format!("steady-state-hypothesis.probes[{i}]");
                    if let Some(p) = self.steady_probe(&at, p, &index, &run) {
                        probes.push(p);
                    }
                }
                if !probes.is_empty() {
                    self.note("steady-state-hypothesis", hypothesis_note(run.mode));
                }
            }
            Some(_) => self.err("steady-state-hypothesis", "must be a mapping with probes"),
        }
        let before = self.errors.len();
        let steps = self.method(top.get("method"), &index, &mut probes);
        if steps
            .iter()
            .all(|s| s.fault.is_none() && s.parallel.is_none())
            && self.errors.len() == before
        {
            self.err(
                "method",
                format!(
                    "no action maps to a Faultline fault, and an experiment needs one; the fault \
                     kinds are {} (an action running kill, pkill or killall maps to them)",
                    KINDS.join(", ")
                ),
            );
        }
        if probes.is_empty() && self.errors.is_empty() {
            self.err(
                "steady-state-hypothesis",
                "has no probes and the method has none either; a Faultline experiment needs at \
                 least one probe",
            );
        }
        let rollbacks = self.rollbacks(top.get("rollbacks"), &index, top.get("runtime"));
        Experiment {
            api_version: API_VERSION.into(),
            kind: "Experiment".into(),
            metadata,
            target: Target::default(),
            hypothesis: Hypothesis {
                probes,
                recover_within: Dur::secs(30),
                baseline: Dur::default(),
                min_score: None,
            },
            steps,
            abort_when: Vec::new(),
            rollbacks,
        }
    }

    fn configuration(&mut self, v: Option<&Value>) -> BTreeMap<String, Conf> {
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
    fn substitute(&mut self, v: &Value, path: &str, conf: &BTreeMap<String, Conf>) -> Value {
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

    fn substitute_str(&mut self, s: &str, path: &str, conf: &BTreeMap<String, Conf>) -> Value {
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

    fn metadata(&mut self, top: &Map<String, Value>, opts: &Options) -> Metadata {
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

    fn runtime(&mut self, v: Option<&Value>) -> HypothesisRun {
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
    fn resolve<'a>(
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

    fn steady_probe(
        &mut self,
        at: &str,
        v: &Value,
        index: &Index<'_>,
        run: &HypothesisRun,
    ) -> Option<Probe> {
        let (def, act) = self.resolve(at, v, index)?;
        if act.contains_key("pauses") {
            self.note(&def, "pauses of a steady-state probe are ignored");
        }
        let Some(t) = act.get("tolerance") else {
            self.err(
                format!("{def}.tolerance"),
                "is required for a steady-state probe (Chaos Toolkit requires it too)",
            );
            return None;
        };
        let mut p = self.probe(&def, act, Some(t), run.mode)?;
        if let Some(i) = run.interval {
            p.interval = i;
        }
        p.stop_on_failure = run.stop_on_failure;
        Some(p)
    }

    /// A probe of `mode` from the activity at `def`, its check set by `tolerance`.
    fn probe(
        &mut self,
        def: &str,
        act: &Map<String, Value>,
        tolerance: Option<&Value>,
        mode: Mode,
    ) -> Option<Probe> {
        let name = self.activity_name(def, act);
        let call = self.call(def, act);
        let (call, name) = (call?, name?);
        let (timeout, attempts) = match &call {
            Call::Http(h) => (h.timeout, h.attempts),
            Call::Process(p) => (p.timeout, 1),
        };
        let mut check = match call {
            Call::Http(h) => Check::Http(HttpProbe {
                url: h.url,
                method: h.method,
                headers: h.headers,
                body: h.body,
                tls_verify: h.tls_verify,
                expect: HttpExpect {
                    // Chaos Toolkit's tolerances see every status; only an explicit one narrows.
                    status: h
                        .expected_status
                        .unwrap_or_else(|| StatusSpec::Text("100-599".into())),
                    ..HttpExpect::default()
                },
            }),
            Call::Process(p) => {
                let (run, shell) = p.command();
                Check::Command(CommandProbe {
                    run,
                    shell,
                    env: BTreeMap::new(),
                    workdir: None,
                    capture_output: false,
                    expect: CommandExpect::default(),
                })
            }
        };
        if let Some(t) = tolerance {
            self.tolerance(&format!("{def}.tolerance"), t, &mut check);
        }
        let timeout = match timeout {
            Some(t) if t.0 > Duration::from_secs(60) => {
                self.note(
                    def,
                    format!("timeout {t} shortened to 60s, the longest a Faultline probe may take"),
                );
                Dur::secs(60)
            }
            Some(t) if !t.0.is_zero() => t,
            _ => crate::probes::default_timeout(),
        };
        let (http, command) = match check {
            Check::Http(h) => (Some(h), None),
            Check::Command(c) => (None, Some(c)),
        };
        Some(Probe {
            name: self.unique_probe_name(&name),
            http,
            tcp: None,
            command,
            prometheus: None,
            postgres: None,
            redis: None,
            mode,
            interval: crate::probes::default_interval(),
            timeout,
            attempts,
            initial_delay: Dur::default(),
            stop_on_failure: false,
        })
    }

    fn unique_probe_name(&mut self, name: &str) -> String {
        let mut n = name.to_string();
        let mut i = 2;
        while self.probe_names.contains(&n) {
            n = format!("{name}-{i}");
            i += 1;
        }
        self.probe_names.insert(n.clone());
        n
    }

    fn activity_name(&mut self, def: &str, act: &Map<String, Value>) -> Option<String> {
        match act.get("name").and_then(Value::as_str) {
            Some(n) if !n.trim().is_empty() => Some(n.to_string()),
            _ => {
                self.err(format!("{def}.name"), "is required");
                None
            }
        }
    }

    fn tolerance(&mut self, at: &str, t: &Value, check: &mut Check) {
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

    fn typed_tolerance(&mut self, at: &str, o: &Map<String, Value>, check: &mut Check) {
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
                    (None, _) => self.err(
                        field("target"),
                        "is required to map a range tolerance: give target: status",
                    ),
                    (Some(t), _) => self.err(
                        field("target"),
                        format!(
                            "a range on {t:?} cannot be mapped; Faultline checks a range only \
                             on the status"
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

    /// The provider of the activity at `def`.
    fn call(&mut self, def: &str, act: &Map<String, Value>) -> Option<Call> {
        let at = format!("{def}.provider");
        let Some(p) = act.get("provider").and_then(Value::as_object) else {
            self.err(at, "is required: a mapping with a type (http or process)");
            return None;
        };
        // An activity-level timeout is the older spelling of the provider's.
        let timeout = p.get("timeout").or_else(|| act.get("timeout"));
        match p.get("type").and_then(Value::as_str) {
            Some("http") => self.http_call(&at, p, timeout).map(Call::Http),
            Some("process") => self.process_call(&at, p, timeout).map(Call::Process),
            Some(t) => {
                self.err(
                    format!("{at}.type"),
                    format!(
                        "provider type {t:?} cannot be mapped; Faultline runs http and process \
                         providers only"
                    ),
                );
                None
            }
            None => {
                self.err(format!("{at}.type"), "is required (http or process)");
                None
            }
        }
    }

    fn http_call(
        &mut self,
        at: &str,
        p: &Map<String, Value>,
        timeout: Option<&Value>,
    ) -> Option<HttpCall> {
        let errors = self.errors.len();
        let mut url = p
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            self.err(format!("{at}.url"), "must start with http:// or https://");
        }
        let method = p
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("GET")
            .to_ascii_uppercase();
        if !HTTP_METHODS.contains(&method.as_str()) {
            self.err(
                format!("{at}.method"),
                format!(
                    "unsupported method {method:?}; Faultline sends {}",
                    HTTP_METHODS.join(", ")
                ),
            );
        }
        let mut headers = BTreeMap::new();
        match p.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(h)) => {
                for (k, v) in h {
                    headers.insert(k.clone(), python_str(v));
                }
            }
            Some(_) => self.err(format!("{at}.headers"), "must be a mapping"),
        }
        let json_body = headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("content-type") && v.starts_with("application/json")
        });
        // As Chaos Toolkit sends them: GET puts arguments in the query string; other methods
        // send them as JSON when the request says so, else form-encoded.
        let mut body = None;
        match p.get("arguments") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if method == "GET" => {
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str(s);
            }
            Some(Value::Object(a)) if method == "GET" => {
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str(&form_encode(a));
            }
            Some(Value::String(s)) => body = Some(s.clone()),
            Some(v) if json_body => body = Some(v.to_string()),
            Some(Value::Object(a)) => {
                body = Some(form_encode(a));
                if !headers
                    .keys()
                    .any(|k| k.eq_ignore_ascii_case("content-type"))
                {
                    headers.insert(
                        "Content-Type".into(),
                        "application/x-www-form-urlencoded".into(),
                    );
                }
            }
            Some(_) => self.err(
                format!("{at}.arguments"),
                "must be a mapping (or JSON with a Content-Type: application/json header)",
            ),
        }
        let timeout = self.timeout(&format!("{at}.timeout"), timeout);
        let tls_verify = p.get("verify_tls") != Some(&Value::Bool(false));
        let attempts = match p.get("max_retries").and_then(Value::as_u64) {
            Some(n) if n > 0 => {
                self.note(
                    &format!("{at}.max_retries"),
                    "became attempts (each check is tried up to max_retries + 1 times; \
                     Chaos Toolkit retries only failed connections)",
                );
                (n + 1).min(20) as u32
            }
            _ => 1,
        };
        let expected_status = match p.get("expected_status") {
            None | Some(Value::Null) => None,
            Some(v) => match (http_status(v), v.as_array()) {
                (Some(s), _) => Some(StatusSpec::One(s)),
                (None, Some(l)) => match l.iter().map(http_status).collect::<Option<Vec<_>>>() {
                    Some(l) if !l.is_empty() => Some(StatusSpec::List(l)),
                    _ => None,
                },
                _ => None,
            }
            .or_else(|| {
                self.err(
                    format!("{at}.expected_status"),
                    "must be an HTTP status or a list of them",
                );
                None
            }),
        };
        (self.errors.len() == errors).then_some(HttpCall {
            url,
            method,
            headers,
            body,
            timeout,
            tls_verify,
            attempts,
            expected_status,
        })
    }

    fn process_call(
        &mut self,
        at: &str,
        p: &Map<String, Value>,
        timeout: Option<&Value>,
    ) -> Option<ProcessCall> {
        let program = match p.get("path").and_then(Value::as_str) {
            Some(s) if !s.trim().is_empty() => s.trim().to_string(),
            _ => {
                self.err(format!("{at}.path"), "is required: the program to run");
                return None;
            }
        };
        // A list runs as argv (None and "" dropped, a mapping flattened to key, value, ...); a
        // string runs through the shell after the program.
        let keep = |v: &&Value| !(v.is_null() || v.as_str() == Some(""));
        let args = match p.get("arguments") {
            None | Some(Value::Null) => Args::List(Vec::new()),
            Some(Value::String(s)) => Args::Line(s.trim().to_string()),
            Some(Value::Array(a)) => Args::List(a.iter().filter(keep).map(python_str).collect()),
            Some(Value::Object(m)) => Args::List(
                m.iter()
                    .flat_map(|(k, v)| [Value::String(k.clone()), v.clone()])
                    .filter(|v| keep(&v))
                    .map(|v| python_str(&v))
                    .collect(),
            ),
            Some(_) => {
                self.err(
                    format!("{at}.arguments"),
                    "must be text, a list or a mapping",
                );
                return None;
            }
        };
        let timeout = self.timeout(&format!("{at}.timeout"), timeout);
        Some(ProcessCall {
            program,
            args,
            timeout,
        })
    }

    /// A number of seconds, or `[connect, read]` (the longest a request can take is the sum).
    fn timeout(&mut self, at: &str, v: Option<&Value>) -> Option<Dur> {
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

    fn bad_timeout(&mut self, at: &str) -> Option<Dur> {
        self.err(at, "must be a number of seconds or [connect, read]");
        None
    }

    /// `pauses.before` and `pauses.after` of an activity.
    fn pauses(&mut self, def: &str, act: &Map<String, Value>) -> [Option<Dur>; 2] {
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
    fn activities<'a>(&mut self, key: &str, v: Option<&'a Value>) -> &'a [Value] {
        match v {
            Some(Value::Array(l)) => l,
            None | Some(Value::Null) => &[],
            Some(_) => {
                self.err(key, "must be a list of activities");
                &[]
            }
        }
    }

    fn method(
        &mut self,
        method: Option<&Value>,
        index: &Index<'_>,
        probes: &mut Vec<Probe>,
    ) -> Vec<Step> {
        let list = self.activities("method", method);
        let mut planned = Vec::new();
        for (i, entry) in list.iter().enumerate() {
            let at = format!("method[{i}]");
            let Some((def, act)) = self.resolve(&at, entry, index) else {
                continue;
            };
            let [before, after] = self.pauses(&def, act);
            let background = act.get("background") == Some(&Value::Bool(true));
            match act.get("type").and_then(Value::as_str) {
                Some("probe") => {
                    planned.extend(before.map(Planned::Pause));
                    if let Some(p) = self.probe(&def, act, act.get("tolerance"), Mode::Continuous) {
                        let how = if act.contains_key("tolerance") {
                            "its tolerance"
                        } else {
                            "no tolerance, so any HTTP status or exit code 0"
                        };
                        self.note(
                            &at,
                            format!(
                                "probe {:?} became a continuous hypothesis probe checked with \
                                 {how} (Chaos Toolkit runs it once, at this point of the method, \
                                 and only records it)",
                                p.name
                            ),
                        );
                        probes.push(p);
                    }
                    planned.extend(after.map(Planned::Pause));
                }
                Some("action") => {
                    if background && (before.is_some() || after.is_some()) {
                        self.note(&def, "pauses of a background action are ignored");
                    }
                    if !background {
                        planned.extend(before.map(Planned::Pause));
                    }
                    if let Some(mut s) = self.signal_action(&def, act) {
                        s.background = background;
                        planned.push(Planned::Signal(s));
                    }
                    if !background {
                        planned.extend(after.map(Planned::Pause));
                    }
                }
                _ => self.err(format!("{def}.type"), "must be action or probe"),
            }
        }
        self.steps(planned)
    }

    /// The kill an action performs, when it runs `kill`, `pkill` or `killall`.
    fn signal_action(&mut self, def: &str, act: &Map<String, Value>) -> Option<Signalled> {
        let name = self.activity_name(def, act);
        let call = self.call(def, act);
        let (name, call) = (name?, call?);
        let Call::Process(p) = call else {
            self.err(
                format!("{def}.provider.type"),
                format!(
                    "an http action cannot be mapped to a fault; Faultline's fault kinds are {}",
                    KINDS.join(", ")
                ),
            );
            return None;
        };
        let program = p.program.rsplit('/').next().unwrap_or_default();
        if !["kill", "pkill", "killall"].contains(&program) {
            self.err(
                format!("{def}.provider.path"),
                format!(
                    "action {name:?} runs {program:?}, which maps to no Faultline fault; the \
                     fault kinds are {} (an action running kill, pkill or killall maps to them)",
                    KINDS.join(", ")
                ),
            );
            return None;
        }
        let at = format!("{def}.provider.arguments");
        let read = match &p.args {
            Args::List(l) => kill::from_argv(program, l),
            Args::Line(s) => kill::from_line(program, s),
        };
        match read {
            Ok(k) => {
                if let Some(n) = k.approx {
                    self.note(&at, n);
                }
                Some(Signalled {
                    path: def.to_string(),
                    name,
                    target: k.target,
                    sig: k.sig,
                    background: false,
                })
            }
            Err(e) => {
                self.err(at, e);
                None
            }
        }
    }

    /// The method's steps from what its activities do, in order: pauses merge, a SIGSTOP held
    /// until the SIGCONT of the same process becomes `process-pause`, background kills (and the
    /// kill right after them, which Chaos Toolkit starts without waiting) a `parallel` group.
    fn steps(&mut self, planned: Vec<Planned>) -> Vec<Step> {
        let mut steps: Vec<Step> = Vec::new();
        let mut i = 0;
        while let Some(p) = planned.get(i) {
            i += 1;
            let s = match p {
                Planned::Pause(d) => {
                    match steps.last_mut().and_then(|s| s.pause.as_mut()) {
                        Some(p) => p.0 += d.0,
                        None if !d.0.is_zero() => steps.push(Step {
                            pause: Some(*d),
                            ..Step::default()
                        }),
                        None => {}
                    }
                    continue;
                }
                Planned::Signal(s) => s,
            };
            match s.sig {
                Sig::Stop => {
                    let mut held = Duration::ZERO;
                    while let Some(Planned::Pause(d)) = planned.get(i) {
                        held += d.0;
                        i += 1;
                    }
                    match planned.get(i) {
                        Some(Planned::Signal(c))
                            if c.sig == Sig::Cont
                                && c.target == s.target
                                && !held.is_zero()
                                && !s.background =>
                        {
                            steps.push(Step {
                                name: Some(s.name.clone()),
                                fault: Some("process-pause".into()),
                                target: s.target.clone(),
                                duration: Some(Dur(held)),
                                ..Step::default()
                            });
                            self.note(
                                &s.path,
                                format!(
                                    "SIGSTOP until {}'s SIGCONT became process-pause for {}",
                                    c.path,
                                    Dur(held)
                                ),
                            );
                            i += 1;
                        }
                        _ => self.err(
                            format!("{}.provider.arguments", s.path),
                            "a SIGSTOP maps to process-pause only when the next action sends \
                             SIGCONT to the same process after a pause (pauses.after), which \
                             sets how long it is held",
                        ),
                    }
                }
                Sig::Cont => self.err(
                    format!("{}.provider.arguments", s.path),
                    "a SIGCONT maps only as the end of a SIGSTOP of the same process before it",
                ),
                Sig::Kill(sig) => {
                    let mut group = vec![kill_step(s, sig)];
                    let mut open = s.background;
                    while let (true, Some(Planned::Signal(next))) = (open, planned.get(i)) {
                        let Sig::Kill(sig) = next.sig else { break };
                        group.push(kill_step(next, sig));
                        open = next.background;
                        i += 1;
                    }
                    if let [one] = group.as_slice() {
                        steps.push(Step {
                            name: one.name.clone(),
                            fault: Some(one.fault.clone()),
                            target: one.target.clone(),
                            params: one.params.clone(),
                            ..Step::default()
                        });
                    } else {
                        let names: Vec<String> = group
                            .iter()
                            .map(|f| format!("{:?}", f.name.as_deref().unwrap_or_default()))
                            .collect();
                        self.note(
                            &s.path,
                            format!(
                                "background actions, with the action after them, became one \
                                 parallel step: {} start together",
                                names.join(", ")
                            ),
                        );
                        steps.push(Step {
                            parallel: Some(group),
                            ..Step::default()
                        });
                    }
                }
            }
        }
        for (n, s) in steps.iter().enumerate() {
            if let Some(p) = s.pause.filter(|p| p.0 > Duration::from_secs(3600)) {
                self.err(
                    "method",
                    format!("pauses add up to {p} at step {n}; Faultline pauses at most 1h"),
                );
            }
        }
        steps
    }

    fn rollbacks(
        &mut self,
        v: Option<&Value>,
        index: &Index<'_>,
        runtime: Option<&Value>,
    ) -> Vec<Rollback> {
        let list = self.activities("rollbacks", v);
        let strategy = runtime
            .and_then(|r| r.get("rollbacks"))
            .and_then(|r| r.get("strategy"))
            .and_then(Value::as_str);
        match strategy {
            None | Some("default" | "always") => {}
            Some("never") => {
                self.note(
                    "runtime.rollbacks.strategy",
                    "never: the rollbacks were left out",
                );
                return Vec::new();
            }
            Some(s) => self.note(
                "runtime.rollbacks.strategy",
                format!("{s:?} is ignored: Faultline runs rollbacks after every run"),
            ),
        }
        let mut out = Vec::new();
        for (i, entry) in list.iter().enumerate() {
            let at = format!("rollbacks[{i}]");
            let Some((def, act)) = self.resolve(&at, entry, index) else {
                continue;
            };
            if act.contains_key("pauses") {
                self.note(&def, "pauses of a rollback are ignored");
            }
            let name = act.get("name").and_then(Value::as_str).map(str::to_string);
            let Some(call) = self.call(&def, act) else {
                continue;
            };
            let (timeout, http, command) = match call {
                Call::Http(h) => {
                    if !h.tls_verify {
                        self.note(&def, "verify_tls: false is ignored: rollbacks verify TLS");
                    }
                    let action = HttpAction {
                        url: h.url,
                        method: h.method,
                        headers: h.headers,
                        body: h.body,
                        expect_status: None,
                    };
                    (h.timeout, Some(action), None)
                }
                Call::Process(p) => {
                    let (run, shell) = p.command();
                    let action = CommandAction {
                        run,
                        shell,
                        env: BTreeMap::new(),
                        workdir: None,
                        expect_exit: 0,
                        capture_output: false,
                    };
                    (p.timeout, None, Some(action))
                }
            };
            let timeout = match timeout {
                Some(t) if t.0 > Duration::from_secs(600) => {
                    self.note(
                        &def,
                        format!("timeout {t} shortened to 10m, the longest a rollback may take"),
                    );
                    Dur::secs(600)
                }
                Some(t) if !t.0.is_zero() => t,
                _ => Dur::secs(30),
            };
            out.push(Rollback {
                name,
                command,
                http,
                timeout,
            });
        }
        out
    }
}

impl ProcessCall {
    /// As a Faultline command: `run` for a list, or for a string with nothing the shell would
    /// read differently; `shell` otherwise.
    fn command(&self) -> (Vec<String>, Option<String>) {
        const SHELL: &[char] = &[
            '"', '\'', '\\', '$', '`', '|', '&', ';', '<', '>', '(', ')', '{', '}', '*', '?', '[',
            ']', '~', '#', '!', '\n', '\r',
        ];
        let plain = |s: &str| !s.contains(SHELL);
        match &self.args {
            Args::List(l) => {
                let mut run = vec![self.program.clone()];
                run.extend(l.iter().cloned());
                (run, None)
            }
            Args::Line(s) if plain(s) && plain(&self.program) => {
                let mut run = vec![self.program.clone()];
                run.extend(s.split_whitespace().map(str::to_string));
                (run, None)
            }
            Args::Line(s) => (Vec::new(), Some(format!("{} {s}", self.program))),
        }
    }
}

/// A `process-kill` fault from what a kill action does.
fn kill_step(s: &Signalled, sig: Signal) -> FaultStep {
    FaultStep {
        name: Some(s.name.clone()),
        fault: "process-kill".into(),
        weight: crate::template::default_weight(),
        target: s.target.clone(),
        params: json!({ "signal": sig }),
        duration: None,
    }
}

/// Activities by name, for `ref` (a later definition of a name wins, as in Chaos Toolkit).
fn index(top: &Map<String, Value>) -> Index<'_> {
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

fn hypothesis_note(mode: Mode) -> String {
    let how = match mode {
        Mode::Edge => {
            "checked before the first fault and again after the method, until they pass or \
             recoverWithin (30s) runs out, as Chaos Toolkit checks the hypothesis before and after \
             the method"
        }
        Mode::Sot => "checked before the first fault only (strategy before-method-only)",
        Mode::Eot => "checked after the method only (strategy after-method-only)",
        Mode::OnChaos => "checked while faults are active (strategy during-method-only)",
        Mode::Continuous => "checked all through the run (strategy continuously)",
    };
    format!("probes run in mode {}: {how}", mode.as_str())
}

/// Seconds as a duration (Chaos Toolkit writes numbers, possibly fractional).
fn seconds(v: &Value) -> Option<Dur> {
    let s = v
        .as_f64()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)?;
    Some(Dur::from_millis((s * 1000.0).round() as u64))
}

fn http_status(v: &Value) -> Option<u16> {
    v.as_u64()
        .filter(|s| (100..=599).contains(s))
        .map(|s| s as u16)
}

fn exit_code(v: &Value) -> Option<i32> {
    v.as_i64().and_then(|c| i32::try_from(c).ok())
}

/// A value as Python's `str()` writes it, which is what Chaos Toolkit substitutes and sends.
fn python_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// `k=v&...`, percent-encoded as a form body or query string.
fn form_encode(args: &Map<String, Value>) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    let mut pairs = Vec::new();
    for (k, v) in args {
        let values = match v {
            Value::Array(a) => a.clone(),
            Value::Null => Vec::new(),
            other => vec![other.clone()],
        };
        for v in values {
            pairs.push(format!("{}={}", enc(k), enc(&python_str(&v))));
        }
    }
    pairs.join("&")
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && identifier_prefix(s).len() == s.len()
}

/// The longest Python identifier at the start of `s` (ASCII, as `string.Template` reads).
fn identifier_prefix(s: &str) -> &str {
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
