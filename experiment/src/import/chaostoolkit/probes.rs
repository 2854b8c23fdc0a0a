//! Providers (`http`, `process`, and `python` ones of chaosk8s) as calls, and probes from them:
//! steady-state probes with their runtime strategy, method probes as continuous ones, unique
//! probe names.
use super::kubernetes::K8sCall;
use super::tolerances::http_status;
use super::{reading::python_str, reading::HypothesisRun, reading::Index, Cx};
use crate::{
    faults::is_token,
    probes::{
        CommandExpect, CommandProbe, HttpExpect, HttpProbe, Mode, Probe, StatusSpec, HTTP_METHODS,
    },
    Dur,
};
use serde_json::{Map, Value};
use std::{collections::BTreeMap, time::Duration};

/// What a provider calls, read from the source.
pub(super) enum Call {
    Http(HttpCall),
    Process(ProcessCall),
    /// A Python provider of the chaosk8s extension (`kubernetes` reads what it does).
    K8s(K8sCall),
}

pub(super) struct HttpCall {
    pub(super) url: String,
    pub(super) method: String,
    pub(super) headers: BTreeMap<String, String>,
    pub(super) body: Option<String>,
    pub(super) timeout: Option<Dur>,
    pub(super) tls_verify: bool,
    pub(super) attempts: u32,
    pub(super) expected_status: Option<StatusSpec>,
    /// `arguments` as written, for what reads them as data (a Toxiproxy toxic).
    pub(super) arguments: Option<Value>,
}

pub(super) struct ProcessCall {
    pub(super) program: String,
    pub(super) args: Args,
    pub(super) timeout: Option<Dur>,
}

/// Process arguments: a list runs as argv; a string runs through the shell as `PATH ARGS`
/// (that is what Chaos Toolkit does with each).
pub(super) enum Args {
    List(Vec<String>),
    Line(String),
}

/// A probe's check while its tolerance is mapped onto it.
pub(super) enum Check {
    Http(HttpProbe),
    Command(CommandProbe),
}

impl Cx {
    pub(super) fn steady_probe(
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
    pub(super) fn probe(
        &mut self,
        def: &str,
        act: &Map<String, Value>,
        tolerance: Option<&Value>,
        mode: Mode,
    ) -> Option<Probe> {
        let name = self.activity_name(def, act);
        let call = self.call(def, act);
        let (call, name) = (call?, name?);
        let (timeout, attempts, mut check) = match call {
            Call::Http(h) => (
                h.timeout,
                h.attempts,
                Check::Http(HttpProbe {
                    url: h.url,
                    method: h.method,
                    headers: h.headers,
                    body: h.body,
                    tls_verify: h.tls_verify,
                    expect: HttpExpect {
                        // Chaos Toolkit's tolerances see every status; only an explicit one
                        // narrows.
                        status: h
                            .expected_status
                            .unwrap_or_else(|| StatusSpec::Text("100-599".into())),
                        ..HttpExpect::default()
                    },
                }),
            ),
            Call::Process(p) => {
                let (run, shell) = p.command();
                let check = Check::Command(CommandProbe {
                    run,
                    shell,
                    env: BTreeMap::new(),
                    workdir: None,
                    capture_output: false,
                    expect: CommandExpect::default(),
                });
                (p.timeout, 1, check)
            }
            // A chaosk8s probe returns true or false: its tolerance is read with it.
            Call::K8s(k) => {
                let k8s = self.k8s_probe(def, &k, tolerance)?;
                return Some(Probe {
                    k8s: Some(k8s),
                    ..self.bare_probe(&name, mode)
                });
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
            http,
            command,
            timeout,
            attempts,
            ..self.bare_probe(&name, mode)
        })
    }

    /// A probe of `mode` named uniquely after `name`, with no check yet and the defaults.
    fn bare_probe(&mut self, name: &str, mode: Mode) -> Probe {
        Probe {
            name: self.unique_probe_name(name),
            http: None,
            tcp: None,
            command: None,
            prometheus: None,
            postgres: None,
            redis: None,
            k8s: None,
            mode,
            interval: crate::probes::default_interval(),
            timeout: crate::probes::default_timeout(),
            attempts: 1,
            initial_delay: Dur::default(),
            stop_on_failure: false,
        }
    }

    pub(super) fn unique_probe_name(&mut self, name: &str) -> String {
        let mut n = name.to_string();
        let mut i = 2;
        while self.probe_names.contains(&n) {
            n = format!("{name}-{i}");
            i += 1;
        }
        self.probe_names.insert(n.clone());
        n
    }

    pub(super) fn activity_name(&mut self, def: &str, act: &Map<String, Value>) -> Option<String> {
        match act.get("name").and_then(Value::as_str) {
            Some(n) if !n.trim().is_empty() => Some(n.to_string()),
            _ => {
                self.err(format!("{def}.name"), "is required");
                None
            }
        }
    }

    /// The provider of the activity at `def`.
    pub(super) fn call(&mut self, def: &str, act: &Map<String, Value>) -> Option<Call> {
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
            Some("python") if is_chaosk8s(p.get("module")) => self.k8s_call(&at, p).map(Call::K8s),
            Some(t) => {
                self.err(
                    format!("{at}.type"),
                    format!(
                        "provider type {t:?} cannot be mapped; Faultline runs http and process \
                         providers only, and the Kubernetes activities of chaosk8s"
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

    pub(super) fn http_call(
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
                    if is_token(k) {
                        headers.insert(k.clone(), python_str(v));
                    } else {
                        self.err(format!("{at}.headers.{k}"), "is not a valid header name");
                    }
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
            arguments: p.get("arguments").filter(|a| !a.is_null()).cloned(),
        })
    }

    pub(super) fn process_call(
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
}

impl ProcessCall {
    /// As a Faultline command: `run` for a list, or for a string with nothing the shell would
    /// read differently; `shell` otherwise.
    pub(super) fn command(&self) -> (Vec<String>, Option<String>) {
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

/// The module of a Python provider is chaosk8s or one of its submodules.
fn is_chaosk8s(module: Option<&Value>) -> bool {
    module
        .and_then(Value::as_str)
        .is_some_and(|m| m == "chaosk8s" || m.starts_with("chaosk8s."))
}

pub(super) fn hypothesis_note(mode: Mode) -> String {
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

/// `k=v&...`, percent-encoded as a form body or query string.
pub(super) fn form_encode(args: &Map<String, Value>) -> String {
    pub(super) fn enc(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use crate::import::from_chaostoolkit;

    /// Found by the `chaostoolkit` fuzz target (fuzz/): a header name HTTP does not allow was
    /// taken, and only the last check of the converted template refused it, naming the
    /// Faultline field instead of the source's.
    #[test]
    fn refuses_a_header_name_http_does_not_allow() {
        let src = r#"{"title": "t", "steady-state-hypothesis": {"title": "up", "probes": [
            {"type": "probe", "name": "up", "tolerance": 200, "provider": {"type": "http",
             "url": "http://127.0.0.1:8080/", "headers": {"@ccept": "text/plain"}}}]},
            "method": []}"#;
        let errs = from_chaostoolkit(src).unwrap_err().0;
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(
            errs[0].path,
            "steady-state-hypothesis.probes[0].provider.headers.@ccept"
        );
        assert_eq!(errs[0].message, "is not a valid header name");
        assert!(from_chaostoolkit(&src.replace("@ccept", "Accept")).is_ok());
    }
}
