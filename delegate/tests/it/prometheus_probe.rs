//! The prometheus probe against a real Prometheus on 127.0.0.1 that scrapes itself every second.
//! One server for all cases: starting it and waiting for the first scrape takes seconds.
use crate::helpers::{closed_port, have_binary, Answer, HttpServer};
use faultline_delegate::probes::Check;
use faultline_experiment::probes::Probe;
use serde_json::json;
use std::{
    process::Stdio,
    time::{Duration, Instant},
};
use tokio::process::{Child, Command};

const PROMETHEUS: &str = "/usr/bin/prometheus";

/// A Prometheus with a temporary config and database, killed on drop.
struct Prometheus {
    url: String,
    /// `host:port`, the instance label of its own series.
    addr: String,
    _child: Child,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// `None` when Prometheus is missing and FAULTLINE_SKIP_PROMETHEUS=1.
    async fn start() -> Option<Prometheus> {
        if !have_binary(PROMETHEUS, "prometheus", "FAULTLINE_SKIP_PROMETHEUS") {
            return None;
        }
        let addr = format!("127.0.0.1:{}", closed_port().await);
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: [\"{addr}\"]\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start prometheus");
        let p = Prometheus {
            url: format!("http://{addr}"),
            addr,
            _child: child,
            dir,
        };
        p.wait_for_first_scrape().await;
        Some(p)
    }

    /// Until `up{job="prometheus"}` is 1, at most 30s.
    async fn wait_for_first_scrape(&self) {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let answer = client
                .get(format!("{}/api/v1/query", self.url))
                .query(&[("query", "up{job=\"prometheus\"}")])
                .send()
                .await;
            if let Ok(r) = answer {
                let v: serde_json::Value = r.json().await.unwrap_or_default();
                if v["data"]["result"][0]["value"][1] == "1" {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let log =
            std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default();
        panic!("prometheus did not scrape itself within 30s; its log:\n{log}");
    }

    async fn check(&self, query: &str, expect: serde_json::Value) -> Check {
        check(json!({"url": self.url, "query": query, "expect": expect})).await
    }
}

async fn check(prometheus: serde_json::Value) -> Check {
    let probe: Probe = serde_json::from_value(json!({
        "name": "slo", "prometheus": prometheus, "timeout": "5s",
    }))
    .unwrap();
    crate::helpers::probes(&[]).check(&probe).await
}

#[tokio::test]
async fn queries_a_real_prometheus() {
    let Some(prom) = Prometheus::start().await else {
        return;
    };
    let up = "up == 1";

    let c = prom.check(up, json!({"op": "==", "value": 1})).await;
    assert!(c.ok, "{c:?}");
    assert!(c.detail.starts_with("value 1 in "), "{}", c.detail);

    let c = prom.check(up, json!({"op": "<", "value": 1})).await;
    assert!(!c.ok);
    assert_eq!(c.detail, "value 1 is not < 1");

    let c = prom.check(up, json!({"between": [0.5, 1.5]})).await;
    assert!(c.ok, "{c:?}");
    let c = prom.check(up, json!({"between": [2, 3]})).await;
    assert!(!c.ok);
    assert_eq!(c.detail, "value 1 is not between 2 and 3");

    // A scalar result.
    let c = prom
        .check("scalar(up) * 3", json!({"op": ">=", "value": 3}))
        .await;
    assert!(c.ok, "{c:?}");
    assert!(c.detail.starts_with("value 3 in "), "{}", c.detail);

    let c = prom.check("up{job=\"nope\"}", json!({"value": 1})).await;
    assert!(!c.ok);
    assert_eq!(c.detail, "query returned no series");

    let several = "{job=\"prometheus\", __name__=~\"up|scrape_samples_scraped\"}";
    let c = prom.check(several, json!({"value": 1})).await;
    assert!(!c.ok);
    assert!(
        c.detail
            .starts_with("query returned 2 series, expected one: "),
        "{}",
        c.detail
    );
    let instance = format!("instance=\"{}\",job=\"prometheus\"", prom.addr);
    assert!(
        c.detail.contains(&format!("up{{{instance}}}")),
        "{}",
        c.detail
    );

    let c = prom.check("up{", json!({"value": 1})).await;
    assert!(!c.ok);
    assert!(c.detail.starts_with("query failed: "), "{}", c.detail);
    assert!(c.detail.contains("parse error"), "{}", c.detail);

    let c = prom.check("up[1m]", json!({"value": 1})).await;
    assert!(!c.ok);
    assert!(
        c.detail.starts_with("query returned a range vector"),
        "{}",
        c.detail
    );
}

#[tokio::test]
async fn fails_when_no_prometheus_answers() {
    let url = format!("http://127.0.0.1:{}", closed_port().await);
    let c = check(json!({"url": url, "query": "up", "expect": {"value": 1}})).await;
    assert!(!c.ok);
    assert_eq!(c.detail, "connection refused");

    let web = HttpServer::answering(Answer::new(404, "not found")).await;
    let base = web.url.trim_end_matches("/health");
    let query = "sum(up{job=\"a b\"}) + 1";
    let c = check(json!({"url": base, "query": query, "expect": {"value": 1}})).await;
    assert!(!c.ok);
    assert_eq!(
        c.detail,
        format!("HTTP 404 Not Found from {base}/api/v1/query, not a Prometheus API answer")
    );
    // The query went out form-encoded.
    assert_eq!(
        web.requests()[0].path,
        "/api/v1/query?query=sum%28up%7Bjob%3D%22a+b%22%7D%29+%2B+1"
    );
}
