//! The `prometheus` probe: one instant query (`GET {url}/api/v1/query`); ok when it yields one
//! number (a scalar, or a vector of exactly one sample) that compares as expected. No series,
//! several series and Prometheus's own errors fail with what Prometheus said.
use super::{
    bounded_part, compare,
    http::{describe, read_body},
    Check, Probe,
};
use crate::sandbox::Sandbox;
use faultline_experiment::probes::{Probe as ProbeSpec, PrometheusProbe as PrometheusSpec};
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::Value;
use std::time::Instant;

pub struct PrometheusProbe {
    client: reqwest::Client,
    sandbox: Sandbox,
}

/// The envelope of every Prometheus HTTP API answer.
#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    result: Value,
}

impl PrometheusProbe {
    /// `client` has the probe clients' settings (the http probe's verifying client).
    pub fn new(sandbox: &Sandbox, client: reqwest::Client) -> Self {
        PrometheusProbe {
            client,
            sandbox: sandbox.clone(),
        }
    }

    async fn run(&self, p: &PrometheusSpec) -> Check {
        let start = Instant::now();
        let url = format!("{}/api/v1/query", p.url.trim_end_matches('/'));
        let parsed = match reqwest::Url::parse(&url) {
            Ok(u) => u,
            Err(e) => return Check::fail(start, format!("invalid url: {e}")),
        };
        if let Err(why) = self.sandbox.check_url(&parsed) {
            return Check::fail(start, why);
        }
        let resp = match self
            .client
            .get(parsed)
            .query(&[("query", &p.query)])
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return Check::fail(start, describe(&e)),
        };
        let status = resp.status();
        let body = match read_body(resp).await {
            Ok(b) => b,
            Err(e) => return Check::fail(start, e),
        };
        let answer: Answer = match serde_json::from_slice(&body) {
            Ok(a) => a,
            Err(_) => {
                let why = format!("HTTP {status} from {url}, not a Prometheus API answer");
                return Check::fail(start, why);
            }
        };
        match one_value(answer) {
            Ok(v) => compare(start, &v, &p.expect),
            Err(why) => Check::fail(start, why),
        }
    }
}

impl Probe for PrometheusProbe {
    fn kind(&self) -> &'static str {
        "prometheus"
    }

    fn check<'a>(&'a self, spec: &'a ProbeSpec) -> BoxFuture<'a, Check> {
        bounded_part(spec, self.kind(), spec.prometheus.as_ref(), |p| self.run(p))
    }
}

/// The one value the query yielded, as Prometheus wrote it (`"1"`, `"0.42"`, `"NaN"`).
fn one_value(answer: Answer) -> Result<String, String> {
    if answer.status != "success" {
        let error = answer.error.unwrap_or_else(|| "no error text".into());
        return Err(format!("query failed: {error}"));
    }
    let data = answer.data.ok_or("the answer has no data")?;
    let sample = match data.result_type.as_str() {
        "scalar" | "string" => &data.result,
        "vector" => match data.result.as_array().map(Vec::as_slice) {
            Some([one]) => &one["value"],
            Some([]) => return Err("query returned no series".into()),
            Some(many) => {
                let names: Vec<String> = many.iter().take(2).map(series_name).collect();
                let more = if many.len() > 2 { ", …" } else { "" };
                return Err(format!(
                    "query returned {} series, expected one: {}{more}",
                    many.len(),
                    names.join(", ")
                ));
            }
            None => return Err("the vector result is not a list".into()),
        },
        "matrix" => {
            return Err(
                "query returned a range vector, expected one number: drop the [range]".into(),
            )
        }
        other => return Err(format!("unexpected result type {other:?}")),
    };
    // A sample is `[timestamp, "value"]`.
    sample[1]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("the sample {sample} has no value"))
}

/// `up{instance="x",job="y"}` from a series' label set.
fn series_name(series: &Value) -> String {
    let Some(labels) = series["metric"].as_object() else {
        return "{}".into();
    };
    let name = labels.get("__name__").and_then(Value::as_str).unwrap_or("");
    let pairs: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}={}", v))
        .collect();
    format!("{name}{{{}}}", pairs.join(","))
}
