//! Probes: the [`Probe`] trait every probe kind implements, the [`Check`] it returns, and the
//! [`Probes`] registry from kind name to implementation. Probes observe only; scheduling them and
//! turning checks into events belongs to the executor.
use faultline_spec::probes::Probe as ProbeSpec;
use futures::future::BoxFuture;
use std::collections::BTreeMap;

pub mod http;

/// The outcome of one check.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub ok: bool,
    pub latency_ms: f64,
    /// Short and human, e.g. `200 OK in 3.1ms` or `connection refused`.
    pub detail: String,
}

/// One probe kind. A check never fails as a call: every problem is a `Check` with `ok: false`.
pub trait Probe: Send + Sync {
    fn kind(&self) -> &'static str;
    fn check<'a>(&'a self, spec: &'a ProbeSpec) -> BoxFuture<'a, Check>;
}

/// Kind name -> implementation.
pub struct Probes {
    kinds: BTreeMap<&'static str, Box<dyn Probe>>,
}

impl Probes {
    pub fn new() -> anyhow::Result<Self> {
        let mut p = Probes {
            kinds: BTreeMap::new(),
        };
        p.register(http::HttpProbe::new()?);
        Ok(p)
    }

    fn register(&mut self, probe: impl Probe + 'static) {
        self.kinds.insert(probe.kind(), Box::new(probe));
    }

    /// Probe kinds this delegate supports, as advertised to the hub.
    pub fn capabilities(&self) -> Vec<String> {
        self.kinds.keys().map(|k| k.to_string()).collect()
    }

    /// The kind a probe spec asks for (templates only know `http` so far).
    pub fn kind_of(_spec: &ProbeSpec) -> &'static str {
        "http"
    }

    pub async fn check(&self, spec: &ProbeSpec) -> Check {
        let kind = Self::kind_of(spec);
        match self.kinds.get(kind) {
            Some(p) => p.check(spec).await,
            None => Check {
                ok: false,
                latency_ms: 0.0,
                detail: format!("probe kind {kind} is not supported"),
            },
        }
    }
}
