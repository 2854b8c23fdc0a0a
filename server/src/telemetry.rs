//! OpenTelemetry traces over OTLP/HTTP (protobuf) with `--otlp-endpoint URL` (docs/observability.md):
//! the hub's tracing spans — a span per GraphQL request (`graphql`), per dispatch to a delegate
//! (`dispatch`), per ingest batch (`ingest`, with a `run` span per run in it) — go to a
//! collector, batched by the SDK on a thread of its own. The requests are sent with the hub's
//! own reqwest (rustls), blocking on that thread, bounded by a timeout.
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::{trace::SdkTracerProvider, Resource};
use std::time::Duration;

/// Most bytes read from a collector's answer.
const MAX_ANSWER: usize = 1 << 20;

/// The exporter's HTTP client: reqwest's blocking client, used from the SDK's batch thread.
#[derive(Debug, Clone)]
struct Client(reqwest::blocking::Client);

#[async_trait::async_trait]
impl HttpClient for Client {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let mut req = self.0.request(parts.method, parts.uri.to_string());
        for (k, v) in &parts.headers {
            req = req.header(k, v);
        }
        let mut resp = req.body(body.to_vec()).send()?;
        let status = resp.status();
        let mut buf = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(&mut resp, MAX_ANSWER as u64 + 1),
            &mut buf,
        )?;
        if buf.len() > MAX_ANSWER {
            return Err("the collector's answer is over 1 MiB".into());
        }
        Ok(Response::builder().status(status).body(Bytes::from(buf))?)
    }
}

/// The tracer provider sending to `endpoint` (a collector's base URL, e.g.
/// `http://otel-collector:4318`; `/v1/traces` is appended), naming the service `service`.
pub fn provider(endpoint: &str, service: &str) -> anyhow::Result<SdkTracerProvider> {
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(Client(client))
        .with_endpoint(url)
        .with_timeout(Duration::from_secs(10))
        .build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder_empty()
                .with_service_name(service.to_string())
                .build(),
        )
        .build())
}

/// The tracing layer that turns spans into OpenTelemetry spans of `provider`.
pub fn layer<S>(provider: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("faultline"))
}
