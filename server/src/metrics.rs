//! The hub's Prometheus metrics (prometheus-client, OpenMetrics text; names `faultline_*`, base
//! units, `_total` counters, `_seconds` histograms). docs/observability.md lists every series
//! and its labels.
//!
//! Two kinds of series:
//! - **this replica's** (process counters and histograms): GraphQL requests, event ingest, probe
//!   checks ingested, delegate streams held, schedule fires, webhook deliveries, the Postgres
//!   pool. Each is counted by the replica that did the work: `sum` them across replicas.
//! - **the hub's** (read from Postgres at scrape time, at most every [`SNAPSHOT_TTL`]): runs
//!   started and finished, run durations, the last resilience score per template, connected
//!   delegates, faults active now. Every replica reports the same values: aggregate with `max`.
//!
//! Labels are bounded: project and template names (made by people, not per run), verdicts,
//! fault and event kinds from fixed lists (anything else is `other`), GraphQL root fields of
//! the schema. No run, delegate or request id is ever a label.
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::{ConstGauge, Gauge},
        histogram::{exponential_buckets, Histogram},
        MetricType,
    },
    registry::Registry,
};
use sqlx::PgPool;
use std::{
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

/// How long a snapshot of the hub-wide series is reused (two scrapers, or a fast one, cost one
/// set of queries).
pub const SNAPSHOT_TTL: Duration = Duration::from_secs(5);

/// Run-duration histogram buckets, in seconds.
const RUN_BUCKETS: &[f64] = &[
    10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GraphqlLabels {
    pub operation: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

/// This replica's series.
pub struct Metrics {
    pub graphql: Family<GraphqlLabels, Histogram>,
    pub events_ingested: Family<KindLabel, Counter>,
    pub ingest_batch: Histogram,
    pub probe_checks: Family<ResultLabel, Counter>,
    pub streams: Gauge,
    pub schedule_fires: Family<OutcomeLabel, Counter>,
    pub webhook_deliveries: Family<OutcomeLabel, Counter>,
    pool: Family<StateLabel, Gauge>,
    hub: Arc<HubSeries>,
    registry: Registry,
    /// False with `--no-metrics`: nothing is recorded (the benchmark's baseline).
    pub enabled: bool,
}

fn latency_histogram() -> Histogram {
    // 1 ms to ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    fn new(enabled: bool) -> Metrics {
        let mut registry = Registry::with_prefix("faultline");
        let graphql = Family::<GraphqlLabels, Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "graphql_request_duration_seconds",
            "GraphQL requests over HTTP by root field and outcome (ok, or the error code)",
            graphql.clone(),
        );
        let events_ingested = Family::<KindLabel, Counter>::default();
        registry.register(
            "events_ingested",
            "Run events stored by this replica, by event kind (a replayed duplicate is not counted)",
            events_ingested.clone(),
        );
        let ingest_batch = latency_histogram();
        registry.register(
            "ingest_batch_duration_seconds",
            "Time to store one batch of events from a delegate stream, acknowledgement included",
            ingest_batch.clone(),
        );
        let probe_checks = Family::<ResultLabel, Counter>::default();
        registry.register(
            "probe_checks",
            "Probe checks stored by this replica, by result (ok, failed)",
            probe_checks.clone(),
        );
        let streams = Gauge::default();
        registry.register(
            "delegate_streams",
            "Delegate streams this replica holds now",
            streams.clone(),
        );
        let schedule_fires = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "schedule_fires",
            "Schedule fires handled by this replica, by outcome (started, queued, skipped, failed, missed)",
            schedule_fires.clone(),
        );
        let webhook_deliveries = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts by this replica, by outcome (delivered, retry, failed)",
            webhook_deliveries.clone(),
        );
        let pool = Family::<StateLabel, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "This replica's Postgres connections, by state (idle, used)",
            pool.clone(),
        );
        // Zero from the start for the fixed label values, so `rate()` has a series to work on.
        for result in ["ok", "failed"] {
            let _ = probe_checks.get_or_create(&ResultLabel {
                result: result.into(),
            });
        }
        for outcome in ["started", "queued", "skipped", "failed", "missed"] {
            let _ = schedule_fires.get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            });
        }
        for outcome in ["delivered", "retry", "failed"] {
            let _ = webhook_deliveries.get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            });
        }
        let hub = Arc::new(HubSeries::default());
        registry.register_collector(Box::new(hub.clone()));
        Metrics {
            graphql,
            events_ingested,
            ingest_batch,
            probe_checks,
            streams,
            schedule_fires,
            webhook_deliveries,
            pool,
            hub,
            registry,
            enabled,
        }
    }

    /// A GraphQL request's outcome (the label's root field is found only when recording).
    pub fn graphql(&self, operation: impl FnOnce() -> String, status: String, secs: f64) {
        if self.enabled {
            self.graphql
                .get_or_create(&GraphqlLabels {
                    operation: operation(),
                    status,
                })
                .observe(secs);
        }
    }

    /// One batch of events stored in `secs`.
    pub fn ingested(&self, secs: f64) {
        if self.enabled {
            self.ingest_batch.observe(secs);
        }
    }

    /// Probe checks stored, ok and failed.
    pub fn checks(&self, ok: u64, failed: u64) {
        if !self.enabled {
            return;
        }
        for (result, n) in [("ok", ok), ("failed", failed)] {
            if n > 0 {
                self.probe_checks
                    .get_or_create(&ResultLabel {
                        result: result.into(),
                    })
                    .inc_by(n);
            }
        }
    }

    /// A delegate stream opened (+1) or closed (-1) on this replica.
    pub fn stream(&self, delta: i64) {
        if self.enabled {
            self.streams.inc_by(delta);
        }
    }

    /// Counts a stored event of `kind`, as `other` when it is not one of the known kinds.
    /// Counts `n` stored events of `kind` (a known kind, else `other`).
    pub fn events(&self, kind: &str, n: u64) {
        if !self.enabled || n == 0 {
            return;
        }
        let kind = if faultline_experiment::events::KINDS.contains(&kind) {
            kind
        } else {
            "other"
        };
        self.events_ingested
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc_by(n);
    }

    pub fn outcome(family: &Family<OutcomeLabel, Counter>, outcome: &str) {
        if !get().enabled {
            return;
        }
        family
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_ascii_lowercase(),
            })
            .inc();
    }

    /// The exposition: this replica's series, then the hub's (refreshed from Postgres when the
    /// last snapshot is older than [`SNAPSHOT_TTL`]).
    pub async fn render(&self, pool: &PgPool) -> Result<String, sqlx::Error> {
        self.pool
            .get_or_create(&StateLabel {
                state: "idle".into(),
            })
            .set(pool.num_idle() as i64);
        self.pool
            .get_or_create(&StateLabel {
                state: "used".into(),
            })
            .set(pool.size() as i64 - pool.num_idle() as i64);
        self.hub.refresh(pool).await?;
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        Ok(out)
    }
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The process's metrics.
pub fn get() -> &'static Metrics {
    METRICS.get_or_init(|| Metrics::new(true))
}

/// Chooses, before anything is recorded, whether anything is (`--no-metrics`).
pub fn init(enabled: bool) {
    let m = METRICS.get_or_init(|| Metrics::new(enabled));
    if m.enabled != enabled {
        tracing::warn!("metrics were in use before the hub chose whether to record them");
    }
}

/// The hub-wide series, as last read from Postgres.
#[derive(Debug, Default)]
struct HubSeries {
    snap: Mutex<Option<(Instant, Snapshot)>>,
    /// One refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
}

#[derive(Clone, Debug, Default)]
struct Snapshot {
    /// (project, runs ever started).
    started: Vec<(String, i64)>,
    /// (project, verdict, runs).
    finished: Vec<(String, String, i64)>,
    /// (project, buckets' cumulative counts, sum seconds, count).
    durations: Vec<(String, Vec<i64>, f64, i64)>,
    /// (project, template, score).
    scores: Vec<(String, String, f64)>,
    /// (project, delegates connected).
    delegates: Vec<(String, i64)>,
    /// (project, fault kind, faults applied and not yet undone).
    faults: Vec<(String, String, i64)>,
}

impl HubSeries {
    async fn refresh(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let _one = self.refreshing.lock().await;
        let fresh = |s: &Option<(Instant, Snapshot)>| {
            s.as_ref()
                .is_some_and(|(at, _)| at.elapsed() < SNAPSHOT_TTL)
        };
        if fresh(&self.snap.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(());
        }
        let snap = read(pool).await?;
        *self.snap.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), snap));
        Ok(())
    }
}

async fn read(pool: &PgPool) -> Result<Snapshot, sqlx::Error> {
    let started = sqlx::query_as(
        "SELECT p.name, count(*) FROM runs r JOIN projects p ON p.id = r.project_id \
         WHERE NOT r.dry_run GROUP BY p.name ORDER BY p.name",
    )
    .fetch_all(pool)
    .await?;
    let finished = sqlx::query_as(
        "SELECT p.name, lower(r.state), count(*) FROM runs r JOIN projects p ON p.id = r.project_id \
         WHERE NOT r.dry_run AND r.state IN ('PASSED', 'FAILED', 'ABORTED', 'ERROR') \
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await?;
    let durations = durations(pool).await?;
    let scores = sqlx::query_as(
        "SELECT DISTINCT ON (r.template_id) p.name, t.name, r.score \
         FROM runs r JOIN projects p ON p.id = r.project_id JOIN templates t ON t.id = r.template_id \
         WHERE r.score IS NOT NULL AND NOT r.dry_run AND t.archived_at IS NULL \
         ORDER BY r.template_id, r.ended_at DESC NULLS LAST",
    )
    .fetch_all(pool)
    .await?;
    let delegates = sqlx::query_as(
        "SELECT p.name, count(*) FROM delegates d JOIN projects p ON p.id = d.project_id \
         WHERE d.connected_replica IS NOT NULL AND d.revoked_at IS NULL GROUP BY p.name ORDER BY p.name",
    )
    .fetch_all(pool)
    .await?;
    let faults: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT p.name, COALESCE(a.payload->>'fault', 'other'), count(*) \
         FROM runs r JOIN projects p ON p.id = r.project_id \
         JOIN run_events a ON a.run_id = r.id AND a.kind = 'fault.applied' \
         WHERE r.state = 'RUNNING' AND NOT EXISTS ( \
             SELECT 1 FROM run_events e WHERE e.run_id = a.run_id \
             AND e.kind IN ('fault.reverted', 'fault.ended') \
             AND e.payload->'step' = a.payload->'step') \
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await?;
    let faults = faults
        .into_iter()
        .map(|(p, k, n)| {
            let k = if faultline_experiment::faults::KINDS.contains(&k.as_str()) {
                k
            } else {
                "other".into()
            };
            (p, k, n)
        })
        .collect();
    Ok(Snapshot {
        started,
        finished,
        durations,
        scores,
        delegates,
        faults,
    })
}

/// Per project: cumulative bucket counts, sum and count of finished runs' durations, counted
/// by Postgres (one row per project, whatever the number of runs).
async fn durations(pool: &PgPool) -> Result<Vec<(String, Vec<i64>, f64, i64)>, sqlx::Error> {
    let buckets: Vec<String> = RUN_BUCKETS
        .iter()
        .map(|b| format!("count(*) FILTER (WHERE d.s <= {b})"))
        .collect();
    let sql = format!(
        "SELECT p.name, ARRAY[{}]::bigint[], COALESCE(sum(d.s), 0)::float8, count(*) \
         FROM (SELECT project_id, extract(epoch FROM ended_at - started_at)::float8 AS s FROM runs \
               WHERE NOT dry_run AND ended_at IS NOT NULL AND started_at IS NOT NULL) d \
         JOIN projects p ON p.id = d.project_id GROUP BY p.name ORDER BY p.name",
        buckets.join(", ")
    );
    sqlx::query_as(&sql).fetch_all(pool).await
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProjectLabel {
    project: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    project: String,
    verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TemplateLabels {
    project: String,
    template: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FaultLabels {
    kind: String,
    project: String,
}

fn project(p: &str) -> ProjectLabel {
    ProjectLabel { project: p.into() }
}

impl Collector for HubSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snap = self
            .snap
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(_, s)| s.clone())
            .unwrap_or_default();
        let mut e = encoder.encode_descriptor(
            "runs_started",
            "Runs started, by project (hub-wide, from Postgres; dry runs not counted)",
            None,
            MetricType::Counter,
        )?;
        for (p, n) in &snap.started {
            ConstCounter::new(*n as u64).encode(e.encode_family(&project(p))?)?;
        }
        let mut e = encoder.encode_descriptor(
            "runs_finished",
            "Runs finished, by project and verdict (passed, failed, aborted, error; hub-wide)",
            None,
            MetricType::Counter,
        )?;
        for (p, v, n) in &snap.finished {
            let l = VerdictLabels {
                project: p.clone(),
                verdict: v.clone(),
            };
            ConstCounter::new(*n as u64).encode(e.encode_family(&l)?)?;
        }
        let mut e = encoder.encode_descriptor(
            "run_duration_seconds",
            "Durations of finished runs, start to end, by project (hub-wide)",
            None,
            MetricType::Histogram,
        )?;
        for (p, buckets, sum, count) in &snap.durations {
            let mut b: Vec<(f64, u64)> = RUN_BUCKETS
                .iter()
                .zip(buckets)
                .map(|(le, n)| (*le, *n as u64))
                .collect();
            b.push((f64::INFINITY, *count as u64));
            e.encode_family(&project(p))?
                .encode_histogram::<ProjectLabel>(*sum, *count as u64, &b, None)?;
        }
        let mut e = encoder.encode_descriptor(
            "resilience_score",
            "The last resilience score of each template (0-100; hub-wide)",
            None,
            MetricType::Gauge,
        )?;
        for (p, t, s) in &snap.scores {
            let l = TemplateLabels {
                project: p.clone(),
                template: t.clone(),
            };
            ConstGauge::new(*s).encode(e.encode_family(&l)?)?;
        }
        let mut e = encoder.encode_descriptor(
            "delegates_connected",
            "Delegates connected to any replica, by project (hub-wide)",
            None,
            MetricType::Gauge,
        )?;
        for (p, n) in &snap.delegates {
            ConstGauge::new(*n).encode(e.encode_family(&project(p))?)?;
        }
        let mut e = encoder.encode_descriptor(
            "fault_active",
            "Faults applied and not yet undone in running runs, by kind and project (hub-wide): the chaos windows, for graphs without Grafana annotations",
            None,
            MetricType::Gauge,
        )?;
        for (p, k, n) in &snap.faults {
            let l = FaultLabels {
                kind: k.clone(),
                project: p.clone(),
            };
            ConstGauge::new(*n).encode(e.encode_family(&l)?)?;
        }
        Ok(())
    }
}

/// The root field a GraphQL request asks for first (a field of the schema, so the label stays
/// bounded; `other` for anything unparsable or unknown).
pub fn operation(query: &str, operation_name: Option<&str>, known: &[&str]) -> String {
    use async_graphql::parser::types::{DocumentOperations, Selection};
    let Ok(doc) = async_graphql::parser::parse_query(query) else {
        return "other".into();
    };
    let op = match &doc.operations {
        DocumentOperations::Single(op) => Some(op),
        DocumentOperations::Multiple(ops) => match operation_name {
            Some(n) => ops.get(n),
            None => ops.values().next(),
        },
    };
    let field = op.and_then(|op| {
        op.node
            .selection_set
            .node
            .items
            .iter()
            .find_map(|s| match &s.node {
                Selection::Field(f) => Some(f.node.name.node.to_string()),
                _ => None,
            })
    });
    match field {
        Some(f) if known.contains(&f.as_str()) => f,
        _ => "other".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_root_fields_of_the_schema_or_other() {
        let known = ["runs", "startRun", "me"];
        assert_eq!(
            operation("{ runs(project: \"x\") { id } }", None, &known),
            "runs"
        );
        assert_eq!(
            operation(
                "mutation Go { startRun(templateId: \"t\") { id } }",
                None,
                &known
            ),
            "startRun"
        );
        assert_eq!(
            operation(
                "query A { me { id } } query B { runs { id } }",
                Some("B"),
                &known
            ),
            "runs"
        );
        // A client-chosen name is never a label; an unknown field or a parse error is `other`.
        assert_eq!(operation("query MyOwnName { nope }", None, &known), "other");
        assert_eq!(operation("{ runs", None, &known), "other");
    }

    #[test]
    fn a_histogram_of_run_durations_is_cumulative() {
        // The buckets count runs at or under each bound.
        let b = RUN_BUCKETS;
        assert!(b.windows(2).all(|w| w[0] < w[1]));
    }
}
