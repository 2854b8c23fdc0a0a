//! The delegate's Prometheus metrics on `--metrics-listen` (plain HTTP, `/metrics` only; bind
//! it to an address only the monitoring network reaches). Names `faultline_delegate_*`; labels
//! bounded: fault and probe kinds from fixed lists, the proxy family (`tcp`, `http`). No run id
//! is ever a label. docs/observability.md lists every series.
//!
//! Counters and histograms are kept as the work happens ([`get`]); what is true now (faults
//! applied, events not yet acknowledged by the hub, whether the hub is connected) is read at
//! scrape time from the journal, the outbox and the link, so it is right after a restart too.
use crate::{journal::Journal, outbox::Outbox};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::ConstGauge,
        histogram::{exponential_buckets, Histogram},
        MetricType,
    },
    registry::Registry,
};
use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, OnceLock},
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProxyLabel {
    pub proxy: String,
}

pub struct Metrics {
    pub fault_apply: Family<KindLabel, Histogram>,
    pub fault_revert: Family<KindLabel, Histogram>,
    pub probe: Family<KindLabel, Histogram>,
    pub proxy_connections: Family<ProxyLabel, Counter>,
    pub proxy_bytes: Family<ProxyLabel, Counter>,
    registry: Registry,
}

fn seconds() -> Histogram {
    // 0.5 ms to ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// A fault kind as a label: one of the known kinds, else `other`.
pub fn fault_kind(kind: &str) -> KindLabel {
    let known = faultline_experiment::faults::KINDS.contains(&kind);
    KindLabel {
        kind: if known { kind } else { "other" }.into(),
    }
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("faultline_delegate");
        let fault_apply = Family::<KindLabel, Histogram>::new_with_constructor(seconds);
        registry.register(
            "fault_apply_duration_seconds",
            "Time to plan, journal and apply a fault, by kind",
            fault_apply.clone(),
        );
        let fault_revert = Family::<KindLabel, Histogram>::new_with_constructor(seconds);
        registry.register(
            "fault_revert_duration_seconds",
            "Time to revert a fault and clear its journal entry, by kind",
            fault_revert.clone(),
        );
        let probe = Family::<KindLabel, Histogram>::new_with_constructor(seconds);
        registry.register(
            "probe_duration_seconds",
            "Latency of probe checks, by probe kind (what the check measured)",
            probe.clone(),
        );
        let proxy_connections = Family::<ProxyLabel, Counter>::default();
        registry.register(
            "proxy_connections",
            "Connections accepted by the delegate's proxies (tcp: tcp-proxy and the Toxiproxy API; http: http-fault)",
            proxy_connections.clone(),
        );
        let proxy_bytes = Family::<ProxyLabel, Counter>::default();
        registry.register(
            "proxy_bytes",
            "Bytes the delegate's TCP proxies forwarded, both directions",
            proxy_bytes.clone(),
        );
        // Zero from the start for the fixed label values, so `rate()` has a series to work on.
        for proxy in ["tcp", "http"] {
            let l = ProxyLabel {
                proxy: proxy.into(),
            };
            let _ = proxy_connections.get_or_create(&l);
            let _ = proxy_bytes.get_or_create(&l);
        }
        Metrics {
            fault_apply,
            fault_revert,
            probe,
            proxy_connections,
            proxy_bytes,
            registry,
        }
    }

    pub fn proxy(family: &Family<ProxyLabel, Counter>, proxy: &str, n: u64) {
        family
            .get_or_create(&ProxyLabel {
                proxy: proxy.into(),
            })
            .inc_by(n);
    }
}

/// The process's metrics.
pub fn get() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::new)
}

/// What is true now, read at each scrape.
struct Now {
    journal: Arc<Journal>,
    outbox: Arc<Outbox>,
    /// `None` while connected to the hub; since when it is down otherwise.
    down: tokio::sync::watch::Receiver<Option<tokio::time::Instant>>,
}

impl std::fmt::Debug for Now {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Now")
    }
}

impl Collector for Now {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut active: BTreeMap<String, i64> = BTreeMap::new();
        for a in self.journal.entries().unwrap_or_default() {
            *active.entry(fault_kind(&a.kind).kind).or_default() += 1;
        }
        let mut e = encoder.encode_descriptor(
            "faultline_delegate_faults_active",
            "Faults applied and not yet reverted (the journal's entries), by kind",
            None,
            MetricType::Gauge,
        )?;
        for (kind, n) in active {
            ConstGauge::new(n).encode(e.encode_family(&KindLabel { kind })?)?;
        }
        let e = encoder.encode_descriptor(
            "faultline_delegate_events_buffered",
            "Run events stored on disk and not yet acknowledged by the hub",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(self.outbox.unacked() as i64).encode(e)?;
        let e = encoder.encode_descriptor(
            "faultline_delegate_hub_connected",
            "1 while the delegate's stream to the hub is open, else 0",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(i64::from(self.down.borrow().is_none())).encode(e)?;
        Ok(())
    }
}

/// The exposition: the counters and histograms, then what is true now.
fn render(now: &Arc<Now>) -> String {
    use prometheus_client::encoding::text;
    let mut out = String::new();
    let mut reg = Registry::default();
    reg.register_collector(Box::new(now.clone()));
    text::encode_registry(&mut out, &get().registry)
        .and_then(|_| text::encode_registry(&mut out, &reg))
        .and_then(|_| text::encode_eof(&mut out))
        .expect("writing to a String cannot fail");
    out
}

/// Serves `/metrics` on `addr` until the task is dropped; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    journal: Arc<Journal>,
    outbox: Arc<Outbox>,
    down: tokio::sync::watch::Receiver<Option<tokio::time::Instant>>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use http_body_util::Full;
    use hyper::{body::Bytes, Response, StatusCode};
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("failed to bind --metrics-listen {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    let now = Arc::new(Now {
        journal,
        outbox,
        down,
    });
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let now = now.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: hyper::Request<_>| {
                    let now = now.clone();
                    async move {
                        let resp = if req.uri().path() == "/metrics" {
                            let body = tokio::task::spawn_blocking(move || render(&now))
                                .await
                                .unwrap_or_default();
                            Response::builder()
                                .header(
                                    "content-type",
                                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                                )
                                .body(Full::new(Bytes::from(body)))
                        } else {
                            Response::builder()
                                .status(StatusCode::NOT_FOUND)
                                .body(Full::new(Bytes::from_static(b"only /metrics here\n")))
                        };
                        Ok::<_, std::convert::Infallible>(resp.expect("a valid response"))
                    }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(std::time::Duration::from_secs(10))
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
                let _ = tokio::time::timeout(std::time::Duration::from_secs(30), conn).await;
            });
        }
    });
    Ok((bound, task))
}
