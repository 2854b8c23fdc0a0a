//! Probes: the [`Probe`] trait every probe kind implements, the [`Check`] it returns, the
//! [`Probes`] registry from kind name to implementation, and the small parts the kinds share
//! (timing, the attempt bound, value comparison, socket error wording). Probes observe only;
//! scheduling them (modes, attempts, intervals) and turning checks into events belongs to the
//! executor.
use crate::sandbox::Sandbox;
use faultline_experiment::probes::{Probe as ProbeSpec, ValueExpect};
use futures::future::BoxFuture;
use std::{collections::BTreeMap, future::Future, io, time::Instant};

pub mod command;
pub mod http;
pub mod k8s;
pub mod postgres;
pub mod prometheus;
pub mod redis;
pub mod tcp;

/// Longest detail kept; error chains and server messages can be long.
const MAX_DETAIL: usize = 300;

/// The outcome of one check.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub ok: bool,
    pub latency_ms: f64,
    /// Short and human, e.g. `200 OK in 3.1ms` or `connection refused`. Never bytes read
    /// from the host beyond the values the probe compares.
    pub detail: String,
    /// What a command printed, only when its probe asks for it (`captureOutput: true`).
    pub output: Option<String>,
}

impl Check {
    /// A check that took from `start` until now.
    pub(crate) fn new(ok: bool, start: Instant, detail: String) -> Check {
        Check::timed(ok, ms(start), detail)
    }

    /// A check that took `latency_ms`; the detail is cut to [`MAX_DETAIL`] bytes.
    pub(crate) fn timed(ok: bool, latency_ms: f64, detail: String) -> Check {
        Check {
            ok,
            latency_ms,
            detail: clip(&detail, MAX_DETAIL),
            output: None,
        }
    }

    pub(crate) fn fail(start: Instant, detail: impl Into<String>) -> Check {
        Check::new(false, start, detail.into())
    }
}

/// One probe kind. A check is one attempt, bounded by the probe's `timeout` (see [`bounded`]);
/// it never fails as a call: every problem is a `Check` with `ok: false`.
pub trait Probe: Send + Sync {
    fn kind(&self) -> &'static str;
    fn check<'a>(&'a self, spec: &'a ProbeSpec) -> BoxFuture<'a, Check>;
}

/// The most useful words of an HTTP request error (the socket error, or the sandbox's refusal).
pub fn describe_http(e: &reqwest::Error) -> String {
    http::describe(e)
}

/// Kind name -> implementation.
pub struct Probes {
    kinds: BTreeMap<&'static str, Box<dyn Probe>>,
    sandbox: Sandbox,
}

impl Probes {
    /// Every kind, each doing only what `sandbox` allows.
    pub fn new(sandbox: Sandbox) -> anyhow::Result<Self> {
        let mut p = Probes {
            kinds: BTreeMap::new(),
            sandbox: sandbox.clone(),
        };
        let http = http::HttpProbe::new(&sandbox)?;
        p.register(prometheus::PrometheusProbe::new(&sandbox, http.client()));
        p.register(http);
        p.register(tcp::TcpProbe {
            sandbox: sandbox.clone(),
        });
        p.register(command::CommandProbe {
            sandbox: sandbox.clone(),
        });
        p.register(postgres::PostgresProbe {
            sandbox: sandbox.clone(),
        });
        p.register(redis::RedisProbe { sandbox });
        Ok(p)
    }

    /// The `k8s` probe reads this cluster; registered (and so advertised) only when its API
    /// answered at start.
    pub fn with_kube(mut self, kube: Option<std::sync::Arc<crate::k8s::Kube>>) -> Self {
        if let Some(kube) = kube.filter(|k| k.cluster().is_some()) {
            let sandbox = self.sandbox.clone();
            self.register(k8s::K8sProbe { kube, sandbox });
        }
        self
    }

    /// The policy and program runner the probes use (rollbacks and actions use it too).
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    fn register(&mut self, probe: impl Probe + 'static) {
        self.kinds.insert(probe.kind(), Box::new(probe));
    }

    /// Probe kinds this delegate supports, as advertised to the hub.
    pub fn capabilities(&self) -> Vec<String> {
        self.kinds.keys().map(|k| k.to_string()).collect()
    }

    /// The kind a probe spec asks for (`""` when it names none).
    pub fn kind_of(spec: &ProbeSpec) -> &'static str {
        spec.kind_name()
    }

    pub async fn check(&self, spec: &ProbeSpec) -> Check {
        let kind = Self::kind_of(spec);
        match self.kinds.get(kind) {
            Some(p) => {
                let c = p.check(spec).await;
                crate::metrics::get()
                    .probe
                    .get_or_create(&crate::metrics::KindLabel { kind: kind.into() })
                    .observe(c.latency_ms / 1000.0);
                c
            }
            None if kind.is_empty() => Check::fail(Instant::now(), "the probe names no kind"),
            None => Check::fail(
                Instant::now(),
                format!("probe kind {kind} is not supported"),
            ),
        }
    }
}

/// Runs one attempt within the probe's timeout. A late attempt is dropped, which closes its
/// sockets and kills its processes (everything a kind holds must clean up on drop), and fails
/// with `timed out after …`.
pub(crate) async fn bounded(spec: &ProbeSpec, attempt: impl Future<Output = Check>) -> Check {
    let start = Instant::now();
    match tokio::time::timeout(spec.timeout.0, attempt).await {
        Ok(c) => c,
        Err(_) => Check::fail(start, format!("timed out after {}", spec.timeout)),
    }
}

/// The body of most kinds' [`Probe::check`]: `attempt` on the kind's part of the probe (`part`,
/// e.g. `spec.redis`), [`bounded`]. A probe of another kind (the registry never passes one)
/// fails.
pub(crate) fn bounded_part<'a, T, F>(
    spec: &'a ProbeSpec,
    kind: &'static str,
    part: Option<&'a T>,
    attempt: impl FnOnce(&'a T) -> F + Send + 'a,
) -> BoxFuture<'a, Check>
where
    T: Sync,
    F: Future<Output = Check> + Send + 'a,
{
    Box::pin(async move {
        match part {
            Some(p) => bounded(spec, attempt(p)).await,
            None => Check::fail(Instant::now(), format!("not a {kind} probe")),
        }
    })
}

/// Milliseconds since `start`, to 0.1ms.
pub(crate) fn ms(start: Instant) -> f64 {
    (start.elapsed().as_secs_f64() * 10_000.0).round() / 10.0
}

/// Compares an observed value (prometheus, postgres, redis) with what the probe expects:
/// `value 1 in 3.1ms` or `value 0.42 is not >= 0.99`.
pub(crate) fn compare(start: Instant, observed: &str, expect: &ValueExpect) -> Check {
    match expect.matches(observed) {
        Ok(()) => {
            let latency = ms(start);
            let shown = match observed.trim().parse::<f64>() {
                Ok(_) => observed.trim().to_string(),
                Err(_) => quoted(observed),
            };
            Check::timed(true, latency, format!("value {shown} in {latency:.1}ms"))
        }
        Err(why) => Check::fail(start, format!("value {why}")),
    }
}

/// A socket error in a few words: `connection refused` rather than `Connection refused (os
/// error 111)`.
pub(crate) fn io_error_text(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        io::ErrorKind::ConnectionAborted => "connection aborted".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        io::ErrorKind::HostUnreachable => "host unreachable".into(),
        io::ErrorKind::NetworkUnreachable => "network unreachable".into(),
        io::ErrorKind::UnexpectedEof => "connection closed before a response".into(),
        // The sandbox's refusals carry their own words.
        io::ErrorKind::PermissionDenied => e.to_string(),
        _ => e.to_string(),
    }
}

/// Compiles a regex from a template with the same size limit validation used. Compiled per
/// check: a pattern is at most 1 KiB and compiles in microseconds, less than a cache would cost
/// in code.
pub(crate) fn regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("invalid regex: {e}"))
}

/// Text of a value for a detail: quoted, and cut to keep the detail short.
pub(crate) fn quoted(s: &str) -> String {
    format!("{:?}", clip(s, 80))
}

/// At most `max` bytes of `s` (on a character boundary), with `…` when cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}
