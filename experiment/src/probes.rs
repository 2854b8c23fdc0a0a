//! Hypothesis probes as written in a template: one struct per kind, the schedule every probe
//! shares (mode, interval, timeout, attempts, initial delay, stop on failure) and the value
//! comparisons the `prometheus`, `postgres`, `redis` and `command` probes use.
//!
//! A probe names exactly one kind (`http:`, `tcp:`, `command:`, `prometheus:`, `postgres:` or
//! `redis:`). The delegate runs them; this module only describes and checks them.
use crate::{template::SpecError, Dur};
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, fmt, time::Duration};

/// Probe kinds this version understands, as advertised by delegates.
pub const KINDS: &[&str] = &[
    "command",
    "http",
    "k8s",
    "postgres",
    "prometheus",
    "redis",
    "tcp",
];

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("oneOf" = [
    {"required": ["http"]}, {"required": ["tcp"]}, {"required": ["command"]},
    {"required": ["prometheus"]}, {"required": ["postgres"]}, {"required": ["redis"]},
    {"required": ["k8s"]}
])))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Probe {
    /// Unique among the template's probes; guardrails and results refer to it.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub name: String,
    /// Kind `http`: one HTTP request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpProbe>,
    /// Kind `tcp`: one connection attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpProbe>,
    /// Kind `command`: a program run by the delegate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandProbe>,
    /// Kind `prometheus`: an instant query compared with a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusProbe>,
    /// Kind `postgres`: a SQL query whose first value is compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresProbe>,
    /// Kind `redis`: `PING`, or `GET` a key and compare its value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisProbe>,
    /// Kind `k8s`: a Kubernetes object exists, is absent, or a field of it compares with a
    /// value; or the pods a selector matches are ready (`podsReady`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s: Option<K8sProbe>,
    /// When the probe runs (Litmus modes).
    #[serde(default)]
    pub mode: Mode,
    /// Time between checks (continuous, onChaos, recovery) and between the attempts of a check.
    #[serde(default = "default_interval")]
    pub interval: Dur,
    /// Longest one attempt may take.
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
    /// Tries per check; the check passes if any try passes.
    #[serde(default = "default_attempts")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 20)))]
    pub attempts: u32,
    /// Wait before the first check of each window the mode opens.
    #[serde(default)]
    pub initial_delay: Dur,
    /// A failed check ends the run at once (FAILED), reverting every fault.
    #[serde(default)]
    pub stop_on_failure: bool,
}

pub fn default_interval() -> Dur {
    Dur::secs(1)
}
pub fn default_timeout() -> Dur {
    Dur::secs(2)
}
fn default_attempts() -> u32 {
    1
}

/// The `alias`es of [`Mode`], for its schema.
#[cfg(feature = "schema")]
const MODE_ALIASES: &[&str] = &[
    "SOT",
    "Sot",
    "EOT",
    "Eot",
    "Edge",
    "Continuous",
    "OnChaos",
    "onchaos",
];

/// When a probe runs, with the names Litmus users know.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::also_accept(MODE_ALIASES)))]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    /// Start of test: once before the first fault; on failure no fault is applied and the run
    /// FAILS.
    #[serde(alias = "SOT", alias = "Sot")]
    Sot,
    /// End of test: after the last fault ends, every `interval` until it passes or
    /// `recoverWithin` runs out (the recovery measurement).
    #[serde(alias = "EOT", alias = "Eot")]
    Eot,
    /// Both: once before the first fault (as sot) and after the last (as eot).
    #[serde(alias = "Edge")]
    Edge,
    /// Every `interval` from the start of the run until recovery ends (the default). Failures
    /// before the first fault stop the run like sot; failures during chaos lower the score.
    #[default]
    #[serde(alias = "Continuous")]
    Continuous,
    /// Every `interval`, only while a fault is active; any failed check FAILS the run.
    #[serde(alias = "OnChaos", alias = "onchaos")]
    OnChaos,
}

impl Mode {
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::Sot => "sot",
            Mode::Eot => "eot",
            Mode::Edge => "edge",
            Mode::Continuous => "continuous",
            Mode::OnChaos => "onChaos",
        }
    }
    /// Checked once before the first fault, as a gate.
    pub fn at_start(&self) -> bool {
        matches!(self, Mode::Sot | Mode::Edge)
    }
    /// Takes part in recovery after the last fault.
    pub fn at_end(&self) -> bool {
        matches!(self, Mode::Eot | Mode::Edge | Mode::Continuous)
    }
}

/// Which kind a probe is, borrowed from the probe.
#[derive(Clone, Copy, Debug)]
pub enum ProbeKind<'a> {
    Http(&'a HttpProbe),
    Tcp(&'a TcpProbe),
    Command(&'a CommandProbe),
    Prometheus(&'a PrometheusProbe),
    Postgres(&'a PostgresProbe),
    Redis(&'a RedisProbe),
    K8s(&'a K8sProbe),
}

impl ProbeKind<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            ProbeKind::Http(_) => "http",
            ProbeKind::Tcp(_) => "tcp",
            ProbeKind::Command(_) => "command",
            ProbeKind::Prometheus(_) => "prometheus",
            ProbeKind::Postgres(_) => "postgres",
            ProbeKind::Redis(_) => "redis",
            ProbeKind::K8s(_) => "k8s",
        }
    }
}

impl Probe {
    /// The one kind this probe names. Validation guarantees there is exactly one; before that
    /// this returns the first set.
    pub fn kind(&self) -> Option<ProbeKind<'_>> {
        self.kinds().into_iter().next()
    }

    fn kinds(&self) -> Vec<ProbeKind<'_>> {
        let mut k = Vec::new();
        if let Some(p) = &self.http {
            k.push(ProbeKind::Http(p));
        }
        if let Some(p) = &self.tcp {
            k.push(ProbeKind::Tcp(p));
        }
        if let Some(p) = &self.command {
            k.push(ProbeKind::Command(p));
        }
        if let Some(p) = &self.prometheus {
            k.push(ProbeKind::Prometheus(p));
        }
        if let Some(p) = &self.postgres {
            k.push(ProbeKind::Postgres(p));
        }
        if let Some(p) = &self.redis {
            k.push(ProbeKind::Redis(p));
        }
        if let Some(p) = &self.k8s {
            k.push(ProbeKind::K8s(p));
        }
        k
    }

    /// Name of the kind, `""` when none is set.
    pub fn kind_name(&self) -> &'static str {
        self.kind().map(|k| k.name()).unwrap_or("")
    }

    /// Longest time one check can take, all attempts included.
    pub fn check_budget(&self) -> Duration {
        let n = self.attempts.max(1);
        self.timeout.0 * n + self.interval.0 * (n - 1)
    }

    /// Every problem with this probe; `at` is its path, e.g. `hypothesis.probes[0]`.
    pub fn validate(&self, at: &str, errs: &mut Vec<SpecError>) {
        let f = |s: &str| format!("{at}.{s}");
        let kinds = self.kinds();
        match kinds.len() {
            0 => errs.push(
                SpecError::field(at, "names no probe kind")
                    .hint(format!("add exactly one of: {}", KINDS.join(", "))),
            ),
            1 => {}
            _ => {
                let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
                errs.push(
                    SpecError::field(
                        f(names[1]),
                        format!("a probe has one kind, this one has {}", names.join(" and ")),
                    )
                    .hint("split it into one probe per kind"),
                )
            }
        }
        for k in kinds {
            match k {
                ProbeKind::Http(p) => p.validate(&f("http"), errs),
                ProbeKind::Tcp(p) => p.validate(&f("tcp"), errs),
                ProbeKind::Command(p) => p.validate(&f("command"), errs),
                ProbeKind::Prometheus(p) => p.validate(&f("prometheus"), errs),
                ProbeKind::Postgres(p) => p.validate(&f("postgres"), errs),
                ProbeKind::Redis(p) => p.validate(&f("redis"), errs),
                ProbeKind::K8s(p) => p.validate(&f("k8s"), errs),
            }
        }
        if self.interval.0 < Duration::from_millis(10) {
            errs.push(SpecError::field(f("interval"), "must be at least 10ms"));
        }
        if self.timeout.0.is_zero() || self.timeout.0 > Duration::from_secs(60) {
            errs.push(SpecError::field(
                f("timeout"),
                "must be between 1ms and 60s",
            ));
        }
        if !(1..=20).contains(&self.attempts) {
            errs.push(SpecError::field(f("attempts"), "must be between 1 and 20"));
        }
        if self.initial_delay.0 > Duration::from_secs(3600) {
            errs.push(SpecError::field(f("initialDelay"), "must be at most 1h"));
        }
    }
}

/// `http`: one request; ok when every `expect` holds.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpProbe {
    /// `http://` or `https://` URL.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^https?://.")))]
    pub url: String,
    /// HTTP method.
    #[serde(default = "default_method")]
    #[cfg_attr(feature = "schema", schemars(extend("enum" = HTTP_METHODS)))]
    pub method: String,
    /// Request headers (valid header names).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Request body, at most 64 KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Verify the server's TLS certificate (https only). Turn off for self-signed test targets.
    #[serde(default = "yes")]
    pub tls_verify: bool,
    /// What the response must look like; by default, status 200.
    #[serde(default)]
    pub expect: HttpExpect,
}

fn default_method() -> String {
    "GET".into()
}
fn yes() -> bool {
    true
}

pub const HTTP_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpExpect {
    /// `200`, a list `[200, 204]`, a class `"2xx"` or a range `"200-299"`.
    #[serde(default)]
    pub status: StatusSpec,
    /// Text the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// A regular expression (Rust `regex` syntax) the body must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_regex: Option<String>,
    /// JSON pointers (RFC 6901) into the body, each with the value it must equal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json: Vec<JsonExpect>,
    /// The response must be complete within this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_below: Option<Dur>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JsonExpect {
    /// e.g. `/status` or `/checks/0/ok`.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = "^(/|$)")))]
    pub pointer: String,
    /// The JSON value found there must equal this (any JSON type).
    pub equals: serde_json::Value,
}

/// Accepted HTTP statuses.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum StatusSpec {
    One(u16),
    List(Vec<u16>),
    /// `"2xx"` or `"200-299"`.
    Text(String),
}

/// By hand: a derive cannot put ranges and a pattern on the variants of an untagged enum.
#[cfg(feature = "schema")]
impl schemars::JsonSchema for StatusSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StatusSpec".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let status = serde_json::json!({"type": "integer", "minimum": 100, "maximum": 599});
        schemars::json_schema!({
            "description": "Accepted HTTP statuses: 200, a list [200, 204], a class \"2xx\" or \
                            a range \"200-299\".",
            "oneOf": [
                status,
                {"type": "array", "items": status, "minItems": 1},
                {"type": "string", "pattern": crate::schema::STATUS_TEXT},
            ],
        })
    }
}

impl Default for StatusSpec {
    fn default() -> Self {
        StatusSpec::One(200)
    }
}

impl StatusSpec {
    /// The accepted statuses as inclusive ranges, or why the spec is wrong.
    pub fn ranges(&self) -> Result<Vec<(u16, u16)>, String> {
        let ranges = match self {
            StatusSpec::One(s) => vec![(*s, *s)],
            StatusSpec::List(l) if l.is_empty() => return Err("the list is empty".into()),
            StatusSpec::List(l) => l.iter().map(|s| (*s, *s)).collect(),
            StatusSpec::Text(t) => {
                let t = t.trim();
                if let Some(c) = t
                    .strip_suffix("xx")
                    .or_else(|| t.strip_suffix("XX"))
                    .and_then(|c| c.parse::<u16>().ok())
                    .and_then(|c| c.checked_mul(100))
                {
                    vec![(c, c.saturating_add(99))]
                } else if let Some((a, b)) = t.split_once('-') {
                    match (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
                        (Ok(a), Ok(b)) if a <= b => vec![(a, b)],
                        _ => return Err(format!("{t:?} is not a range like \"200-299\"")),
                    }
                } else if let Ok(s) = t.parse::<u16>() {
                    vec![(s, s)]
                } else {
                    return Err(format!(
                        "{t:?} is not a status, a class like \"2xx\" or a range like \"200-299\""
                    ));
                }
            }
        };
        if ranges
            .iter()
            .any(|(a, b)| !(100..=599).contains(a) || !(100..=599).contains(b))
        {
            return Err("statuses are between 100 and 599".into());
        }
        Ok(ranges)
    }

    pub fn accepts(&self, status: u16) -> bool {
        self.ranges()
            .map(|r| r.iter().any(|(a, b)| (*a..=*b).contains(&status)))
            .unwrap_or(false)
    }
}

impl fmt::Display for StatusSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusSpec::One(s) => write!(f, "{s}"),
            StatusSpec::List(l) => {
                let s: Vec<String> = l.iter().map(|s| s.to_string()).collect();
                write!(f, "one of {}", s.join(", "))
            }
            StatusSpec::Text(t) => f.write_str(t),
        }
    }
}

impl HttpProbe {
    fn validate(&self, at: &str, errs: &mut Vec<SpecError>) {
        check_url(&self.url, &format!("{at}.url"), &["http", "https"], errs);
        if !HTTP_METHODS.contains(&self.method.as_str()) {
            errs.push(
                SpecError::field(
                    format!("{at}.method"),
                    format!("unsupported method {:?}", self.method),
                )
                .hint(format!("use one of {}", HTTP_METHODS.join(", "))),
            );
        }
        for name in self.headers.keys() {
            if !crate::faults::is_token(name) {
                errs.push(SpecError::field(
                    format!("{at}.headers.{name}"),
                    "is not a valid header name",
                ));
            }
        }
        if let Some(b) = &self.body {
            if b.len() > 64 * 1024 {
                errs.push(SpecError::field(
                    format!("{at}.body"),
                    "must be at most 64 KiB",
                ));
            }
        }
        if let Err(e) = self.expect.status.ranges() {
            errs.push(SpecError::field(format!("{at}.expect.status"), e));
        }
        if let Some(r) = &self.expect.body_regex {
            if let Err(e) = check_regex(r) {
                errs.push(SpecError::field(format!("{at}.expect.bodyRegex"), e));
            }
        }
        for (i, j) in self.expect.json.iter().enumerate() {
            if !(j.pointer.is_empty() || j.pointer.starts_with('/')) {
                errs.push(
                    SpecError::field(
                        format!("{at}.expect.json[{i}].pointer"),
                        "a JSON pointer is empty or starts with '/'",
                    )
                    .hint("write /a/b/0 for body.a.b[0]"),
                );
            }
        }
    }
}

/// `tcp`: a connection attempt.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpProbe {
    /// `host:port` (`[::1]:6379` for IPv6).
    #[cfg_attr(feature = "schema", schemars(regex(pattern = crate::schema::HOST_PORT)))]
    pub address: String,
    /// `open` (connect succeeds, the default) or `closed` (refused or unreachable: a negative
    /// check, e.g. that a partition holds).
    #[serde(default)]
    pub expect: TcpExpect,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum TcpExpect {
    /// The connection succeeds.
    #[default]
    Open,
    /// The connection is refused or the address unreachable.
    Closed,
}

impl TcpProbe {
    fn validate(&self, at: &str, errs: &mut Vec<SpecError>) {
        if let Err(e) = split_host_port(&self.address) {
            errs.push(SpecError::field(format!("{at}.address"), e).hint("write host:port"));
        }
    }
}

/// Splits `host:port` (`[::1]:80` for IPv6).
pub fn split_host_port(addr: &str) -> Result<(String, u16), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("{addr:?} has no port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{addr:?} has no host"));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{port:?} is not a port (1-65535)"))?;
    Ok((host.to_string(), port))
}

/// `command`: a program run by the delegate.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[cfg_attr(feature = "schema", schemars(extend("oneOf" = crate::schema::run_or_shell())))]
pub struct CommandProbe {
    /// argv; no shell is involved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run: Vec<String>,
    /// A script for `/bin/sh -c`, instead of `run`, when a shell is really wanted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Working directory of the program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// Keep the program's output (at most 4 KiB of stdout and of stderr) in the check's event.
    /// Off by default: output stays on the host, and a failure says only which expectation
    /// failed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub capture_output: bool,
    /// What the program must do; by default, exit with 0.
    #[serde(default)]
    pub expect: CommandExpect,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CommandExpect {
    /// Exit code (default 0).
    #[serde(default)]
    pub exit_code: i32,
    /// Text standard output must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_contains: Option<String>,
    /// A regular expression (Rust `regex` syntax) standard output must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_regex: Option<String>,
    /// Compared after trimming trailing whitespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_equals: Option<String>,
    /// Standard output, trimmed, compared as one value: `{op: "<", value: 250}`,
    /// `{between: [0, 250]}` or `{value: ready}` (text compares only with `==` and `!=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<ValueExpect>,
}

impl CommandProbe {
    fn validate(&self, at: &str, errs: &mut Vec<SpecError>) {
        validate_command(&self.run, &self.shell, at, errs);
        if let Some(r) = &self.expect.stdout_regex {
            if let Err(e) = check_regex(r) {
                errs.push(SpecError::field(format!("{at}.expect.stdoutRegex"), e));
            }
        }
        if let Some(v) = &self.expect.value {
            let at = format!("{at}.expect.value");
            if v.is_empty() {
                errs.push(
                    SpecError::field(&at, "compares nothing: give op and value, or between")
                        .hint("e.g. value: {op: \"<\", value: 250}"),
                );
            }
            v.validate(&at, false, errs);
        }
    }
}

/// Shared by the command probe and the command rollback: exactly one of `run` and `shell`.
pub fn validate_command(
    run: &[String],
    shell: &Option<String>,
    at: &str,
    errs: &mut Vec<SpecError>,
) {
    match (run.is_empty(), shell) {
        (true, None) => errs.push(
            SpecError::field(format!("{at}.run"), "is required")
                .hint("give the program and its arguments, e.g. run: [\"curl\", \"-f\", URL]"),
        ),
        (false, Some(_)) => errs.push(SpecError::field(
            format!("{at}.shell"),
            "give either run or shell, not both",
        )),
        (true, Some(s)) if s.trim().is_empty() => {
            errs.push(SpecError::field(format!("{at}.shell"), "must not be empty"))
        }
        _ => {}
    }
    if run.first().is_some_and(|p| p.is_empty()) {
        errs.push(SpecError::field(
            format!("{at}.run"),
            "the program name is empty",
        ));
    }
}

/// `prometheus`: an instant query; ok when its value compares as expected.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PrometheusProbe {
    /// Base URL of the Prometheus server, e.g. `http://127.0.0.1:9090`.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^https?://.")))]
    pub url: String,
    /// PromQL that yields one number (a scalar, or a vector of exactly one sample).
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"\S")))]
    pub query: String,
    /// How the number must compare.
    pub expect: ValueExpect,
}

impl PrometheusProbe {
    fn validate(&self, at: &str, errs: &mut Vec<SpecError>) {
        check_url(&self.url, &format!("{at}.url"), &["http", "https"], errs);
        if self.query.trim().is_empty() {
            errs.push(SpecError::field(format!("{at}.query"), "must not be empty"));
        }
        self.expect.validate(&format!("{at}.expect"), true, errs);
    }
}

/// `postgres`: a query; ok when the first column of the first row compares as expected.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PostgresProbe {
    /// `postgres://user@host:port/db` (a password in here is visible to everyone who can read
    /// the template: prefer `passwordFromEnv`).
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^postgres(ql)?://.")))]
    pub url: String,
    /// Name of an environment variable of the delegate holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_from_env: Option<String>,
    /// SQL whose first column of the first row is compared.
    #[serde(default = "default_pg_query")]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"\S")))]
    pub query: String,
    /// How the value must compare; empty means the query must only succeed.
    #[serde(default)]
    pub expect: ValueExpect,
}

fn default_pg_query() -> String {
    "SELECT 1".into()
}

impl PostgresProbe {
    fn validate(&self, at: &str, errs: &mut Vec<SpecError>) {
        check_url(
            &self.url,
            &format!("{at}.url"),
            &["postgres", "postgresql"],
            errs,
        );
        if self.query.trim().is_empty() {
            errs.push(SpecError::field(format!("{at}.query"), "must not be empty"));
        }
        self.expect.validate(&format!("{at}.expect"), false, errs);
    }
}

/// Object kinds a `k8s` probe reads (never Secrets).
pub const K8S_PROBE_RESOURCES: &[&str] = &[
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Service",
    "Job",
];

/// `k8s`: one object (`resource` + `name`) exists, is `absent`, or its `field` (a JSON pointer)
/// compares as `expect` says; or `podsReady`. The namespace must be allowed on the delegate
/// (`namespace=NS`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("required" = ["namespace"])))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct K8sProbe {
    /// The object's namespace.
    pub namespace: String,
    /// The object's kind: `Pod`, `Deployment`, `StatefulSet`, `DaemonSet`, `ReplicaSet`,
    /// `Service` or `Job` (with `name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("enum" = K8S_PROBE_RESOURCES)))]
    pub resource: Option<String>,
    /// The object's name (with `resource`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Pass when the object does not exist (instead of when it does).
    #[serde(default)]
    pub absent: bool,
    /// A JSON pointer into the object, e.g. `/status/readyReplicas`, compared by `expect`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// How the value at `field` must compare (a missing field fails).
    #[serde(default)]
    pub expect: ValueExpect,
    /// Shorthand: the pods matching this selector are all Ready, and at least `min` of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods_ready: Option<PodsReady>,
}

/// `k8s.podsReady`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("required" = ["labelSelector"])))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodsReady {
    /// A label selector, as `kubectl -l` takes it, e.g. `app=web`.
    pub label_selector: String,
    /// At least this many pods must match (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub min: Option<u32>,
}

impl K8sProbe {
    fn validate(&self, at: &str, errs: &mut Vec<SpecError>) {
        let f = |s: &str| format!("{at}.{s}");
        if self.namespace.is_empty() {
            errs.push(SpecError::field(f("namespace"), "must not be empty"));
        }
        match (&self.pods_ready, &self.resource, &self.name) {
            (Some(_), None, None) => {
                if self.absent || self.field.is_some() {
                    errs.push(SpecError::field(
                        f("podsReady"),
                        "stands alone: not with absent or field",
                    ));
                }
            }
            (None, Some(r), Some(_)) => {
                if !K8S_PROBE_RESOURCES.contains(&r.as_str()) {
                    errs.push(
                        SpecError::field(f("resource"), format!("unknown resource {r:?}"))
                            .hint(format!("one of: {}", K8S_PROBE_RESOURCES.join(", "))),
                    );
                }
            }
            _ => errs.push(
                SpecError::field(at, "give resource and name, or podsReady")
                    .hint("e.g. k8s: {namespace: shop, resource: Deployment, name: web}"),
            ),
        }
        if self.absent && self.field.is_some() {
            errs.push(SpecError::field(f("absent"), "not with field"));
        }
        if let Some(p) = &self.field {
            if !p.starts_with('/') {
                errs.push(
                    SpecError::field(f("field"), "must be a JSON pointer")
                        .hint("e.g. /status/readyReplicas"),
                );
            }
        } else if !self.expect.is_empty() {
            errs.push(SpecError::field(f("expect"), "only applies with field"));
        }
        if self.pods_ready.as_ref().is_some_and(|p| p.min == Some(0)) {
            errs.push(SpecError::field(f("podsReady.min"), "must be at least 1"));
        }
        self.expect.validate(&f("expect"), false, errs);
    }
}

/// `redis`: `PING` (expects `PONG`), or `GET key` compared as expected.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RedisProbe {
    /// `host:port` (`[::1]:6379` for IPv6).
    #[cfg_attr(feature = "schema", schemars(regex(pattern = crate::schema::HOST_PORT)))]
    pub address: String,
    /// Name of an environment variable of the delegate holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_from_env: Option<String>,
    /// Database number (`SELECT`).
    #[serde(default)]
    pub db: u32,
    /// Key to `GET`; without it the probe sends `PING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub get: Option<String>,
    /// How the value of `get` must compare; only with `get`.
    #[serde(default)]
    pub expect: ValueExpect,
}

impl RedisProbe {
    fn validate(&self, at: &str, errs: &mut Vec<SpecError>) {
        if let Err(e) = split_host_port(&self.address) {
            errs.push(SpecError::field(format!("{at}.address"), e).hint("write host:port"));
        }
        if self.get.is_none() && !self.expect.is_empty() {
            errs.push(
                SpecError::field(format!("{at}.expect"), "only applies with get")
                    .hint("a PING probe passes on PONG"),
            );
        }
        self.expect.validate(&format!("{at}.expect"), false, errs);
    }
}

/// A comparison of one observed value: `{op: ">=", value: 0.99}`, `{value: "ok"}` (equals) or
/// `{between: [0.9, 1.0]}` (inclusive). Empty means "any value" (the query must still succeed).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ValueExpect {
    /// Comparison of the observed value with `value` (default `==`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<CmpOp>,
    /// A number, or text (text compares only with `==` and `!=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("type" = ["number", "string", "null"])))]
    pub value: Option<serde_json::Value>,
    /// Inclusive bounds `[low, high]`; instead of `op`/`value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub between: Option<[f64; 2]>,
}

/// The `alias`es of [`CmpOp`], for its schema.
#[cfg(feature = "schema")]
const CMP_ALIASES: &[&str] = &["="];

/// How an observed value compares with the expected one.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::also_accept(CMP_ALIASES)))]
pub enum CmpOp {
    /// Less than.
    #[serde(rename = "<")]
    Lt,
    /// Less than or equal.
    #[serde(rename = "<=")]
    Le,
    /// Equal (also written `=`).
    #[serde(rename = "==", alias = "=")]
    Eq,
    /// Greater than or equal.
    #[serde(rename = ">=")]
    Ge,
    /// Greater than.
    #[serde(rename = ">")]
    Gt,
    /// Not equal.
    #[serde(rename = "!=")]
    Ne,
}

impl CmpOp {
    pub fn as_str(&self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Eq => "==",
            CmpOp::Ge => ">=",
            CmpOp::Gt => ">",
            CmpOp::Ne => "!=",
        }
    }
    fn holds(&self, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Lt => o == Less,
            CmpOp::Le => o != Greater,
            CmpOp::Eq => o == Equal,
            CmpOp::Ge => o != Less,
            CmpOp::Gt => o == Greater,
            CmpOp::Ne => o != Equal,
        }
    }
}

impl ValueExpect {
    pub fn is_empty(&self) -> bool {
        self.op.is_none() && self.value.is_none() && self.between.is_none()
    }

    fn validate(&self, at: &str, numeric_only: bool, errs: &mut Vec<SpecError>) {
        if self.between.is_some() && (self.op.is_some() || self.value.is_some()) {
            errs.push(SpecError::field(
                format!("{at}.between"),
                "give either between or op/value, not both",
            ));
        }
        if let Some([a, b]) = self.between {
            if a.partial_cmp(&b) != Some(std::cmp::Ordering::Less) && a != b {
                errs.push(SpecError::field(
                    format!("{at}.between"),
                    "the lower bound must not exceed the upper bound",
                ));
            }
        }
        if self.op.is_some() && self.value.is_none() {
            errs.push(SpecError::field(format!("{at}.value"), "op needs a value"));
        }
        match &self.value {
            None | Some(serde_json::Value::Number(_)) => {}
            Some(serde_json::Value::String(_)) if !numeric_only => {
                if !matches!(self.op, None | Some(CmpOp::Eq) | Some(CmpOp::Ne)) {
                    errs.push(
                        SpecError::field(format!("{at}.op"), "text compares only with == or !=")
                            .hint("write the value as a number to compare it with < or >"),
                    );
                }
            }
            Some(_) => errs.push(SpecError::field(
                format!("{at}.value"),
                if numeric_only {
                    "must be a number"
                } else {
                    "must be a number or a string"
                },
            )),
        }
    }

    /// Whether `observed` satisfies this expectation. A numeric expectation accepts text that
    /// parses as a number.
    pub fn matches(&self, observed: &str) -> Result<(), String> {
        self.matches_shown(observed, |s| format!("{s:?}"))
    }

    /// As [`ValueExpect::matches`], with observed text written into the reason by `show` (the
    /// command probe cuts it short: stdout may be long).
    pub fn matches_shown(
        &self,
        observed: &str,
        show: impl Fn(&str) -> String,
    ) -> Result<(), String> {
        let num = observed.trim().parse::<f64>().ok();
        if let Some([a, b]) = self.between {
            return match num {
                Some(n) if n >= a && n <= b => Ok(()),
                Some(n) => Err(format!("{n} is not between {a} and {b}")),
                None => Err(format!("{} is not a number", show(observed))),
            };
        }
        let op = self.op.unwrap_or(CmpOp::Eq);
        match &self.value {
            None => Ok(()),
            Some(serde_json::Value::Number(want)) => {
                let want = want.as_f64().unwrap_or(f64::NAN);
                match num {
                    Some(n) => match n.partial_cmp(&want) {
                        Some(o) if op.holds(o) => Ok(()),
                        _ => Err(format!("{n} is not {} {want}", op.as_str())),
                    },
                    None => Err(format!("{} is not a number", show(observed))),
                }
            }
            Some(serde_json::Value::String(want)) => {
                let o = observed.cmp(want.as_str());
                if op.holds(o) {
                    Ok(())
                } else {
                    Err(format!(
                        "{} is not {} {want:?}",
                        show(observed),
                        op.as_str()
                    ))
                }
            }
            Some(other) => Err(format!("cannot compare with {other}")),
        }
    }
}

impl fmt::Display for ValueExpect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some([a, b]) = self.between {
            return write!(f, "between {a} and {b}");
        }
        match &self.value {
            None => f.write_str("any value"),
            Some(v) => write!(f, "{} {v}", self.op.unwrap_or(CmpOp::Eq).as_str()),
        }
    }
}

fn check_url(url: &str, field: &str, schemes: &[&str], errs: &mut Vec<SpecError>) {
    let ok = schemes.iter().any(|s| {
        url.strip_prefix(s)
            .and_then(|r| r.strip_prefix("://"))
            .is_some_and(|rest| !rest.is_empty())
    });
    if !ok {
        let list: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
        errs.push(SpecError::field(
            field,
            format!("must start with {}", list.join(" or ")),
        ));
    }
}

/// Compiles the regex as the delegate will, with the same size limit.
pub fn check_regex(r: &str) -> Result<(), String> {
    if r.len() > 1024 {
        return Err("must be at most 1024 characters".into());
    }
    regex::RegexBuilder::new(r)
        .size_limit(1 << 20)
        .build()
        .map(|_| ())
        .map_err(|e| format!("is not a valid regular expression: {e}"))
}
