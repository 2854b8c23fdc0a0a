//! Metrics: the hub's and the delegate's `/metrics` during and after a real run, linted by the
//! real `promtool check metrics` and scraped by a real Prometheus (Debian's), queried through
//! its HTTP API. The main port's `/metrics` answers only the bearer token it was given.
use anyhow::{Context, Result};
use faultline_e2e::{free_port, pause_template, HubOpts, Target, World};
use std::{
    process::Stdio,
    time::{Duration, Instant},
};
use tokio::process::Command;

const TOKEN: &str = "metrics-token-0123456789abcdef";

async fn get(url: &str) -> Result<String> {
    let r = reqwest::get(url).await?;
    anyhow::ensure!(r.status().is_success(), "{url}: {}", r.status());
    Ok(r.text().await?)
}

/// The value of the series whose name and labels are exactly `series`, if exposed.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Runs `promtool check metrics` on `text`; returns what it said when it found problems.
async fn promtool(text: &str) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("promtool (Debian package prometheus) is needed")?;
    // promtool reads the Prometheus text format: the OpenMetrics exposition in it, as
    // Prometheus itself converts it (a counter family `x` is `x_total` there; no `# EOF` or
    // `# UNIT` lines).
    let counters: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let plain: String = text
        .lines()
        .filter(|l| *l != "# EOF" && !l.starts_with("# UNIT"))
        .map(|l| {
            for c in &counters {
                for head in ["# HELP ", "# TYPE "] {
                    if let Some(rest) = l.strip_prefix(&format!("{head}{c} ")) {
                        return format!("{head}{c}_total {rest}\n");
                    }
                }
            }
            format!("{l}\n")
        })
        .collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(plain.as_bytes())
        .await?;
    let out = child.wait_with_output().await?;
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    anyhow::ensure!(out.status.success(), "promtool check metrics:\n{said}");
    Ok(())
}

/// Every series name in an exposition (histograms by their family, counters with `_total`).
fn regex_lite_names(text: &str) -> std::collections::BTreeSet<String> {
    // A family with no sample now (no fault active) still has its TYPE line.
    let typed = text.lines().filter_map(|l| {
        let mut w = l.strip_prefix("# TYPE ")?.split(' ');
        let (name, kind) = (w.next()?, w.next()?);
        Some(if kind == "counter" {
            format!("{name}_total")
        } else {
            name.to_string()
        })
    });
    let mut names: std::collections::BTreeSet<String> = typed.collect();
    names.extend(
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| l.split(['{', ' ']).next())
            .map(|n| {
                ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| n.strip_suffix(s))
                    .unwrap_or(n)
                    .to_string()
            }),
    );
    names
}

/// The first value Prometheus at `addr` answers for the instant query `q`.
async fn prom_query(addr: &str, q: &str) -> Option<f64> {
    let r: serde_json::Value = reqwest::Client::new()
        .get(format!("http://{addr}/api/v1/query"))
        .query(&[("query", q)])
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    r["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse::<f64>().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_and_delegate_metrics_are_scraped_by_a_real_prometheus() -> Result<()> {
    let hub_metrics = format!("127.0.0.1:{}", free_port()?);
    let w = World::with_hub(HubOpts {
        extra: vec![
            "--metrics-listen".into(),
            hub_metrics.clone(),
            "--metrics-token".into(),
            TOKEN.into(),
        ],
        ..HubOpts::default()
    })
    .await?;
    let target = Target::start(w.dir.path()).await?;
    let delegate_metrics = format!("127.0.0.1:{}", free_port()?);
    let _d = w
        .delegate("obs", &[], &["--metrics-listen", &delegate_metrics])
        .await?;

    // The main port: only the configured bearer token reads /metrics.
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&w.hub.ca)?)?)
        .build()?;
    let url = format!("{}/metrics", w.hub.url);
    assert_eq!(client.get(&url).send().await?.status(), 401);
    let wrong = client.get(&url).bearer_auth("not-the-token").send().await?;
    assert_eq!(wrong.status(), 401);
    let ok = client.get(&url).bearer_auth(TOKEN).send().await?;
    assert_eq!(ok.status(), 200);
    assert!(ok
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/openmetrics-text")));

    let tid = w
        .api
        .create_template(&pause_template("obs-pause", &target, "9s"))
        .await?;
    let run = w.api.start_run(&tid, "obs").await?;
    w.api
        .wait_event(&run, "fault.applied", Duration::from_secs(30))
        .await?;
    // During the fault: the hub's chaos window series and the delegate's journal say so.
    let hub_url = format!("http://{hub_metrics}/metrics");
    let d_url = format!("http://{delegate_metrics}/metrics");
    // The hub's series are read from Postgres at most every 5 s: the window shows within that.
    let active = "faultline_fault_active{kind=\"process-pause\",project=\"default\"}";
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let during = get(&hub_url).await?;
        if value(&during, active) == Some(1.0) {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no {active} 1 during the fault:\n{during}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let d_during = get(&d_url).await?;
    assert_eq!(
        value(
            &d_during,
            "faultline_delegate_faults_active{kind=\"process-pause\"}"
        ),
        Some(1.0),
        "{d_during}"
    );
    assert_eq!(
        value(&d_during, "faultline_delegate_hub_connected"),
        Some(1.0)
    );
    let done = w
        .api
        .wait_status(&run, &["PASSED", "FAILED"], Duration::from_secs(60))
        .await?;
    let verdict = done["status"].as_str().unwrap().to_ascii_lowercase();

    // After: wait out the hub's snapshot cache.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = get(&hub_url).await?;
    let series = |s: &str| value(&after, s);
    assert_eq!(
        series("faultline_runs_started_total{project=\"default\"}"),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        series(&format!(
            "faultline_runs_finished_total{{project=\"default\",verdict=\"{verdict}\"}}"
        )),
        Some(1.0)
    );
    assert_eq!(
        series("faultline_run_duration_seconds_count{project=\"default\"}"),
        Some(1.0)
    );
    assert!(
        series("faultline_resilience_score{project=\"default\",template=\"obs-pause\"}").is_some()
    );
    assert_eq!(
        series("faultline_delegates_connected{project=\"default\"}"),
        Some(1.0)
    );
    assert_eq!(series("faultline_delegate_streams"), Some(1.0));
    assert!(series("faultline_probe_checks_total{result=\"ok\"}").unwrap_or(0.0) > 0.0);
    assert!(series("faultline_events_ingested_total{kind=\"probe.check\"}").unwrap_or(0.0) > 0.0);
    assert_eq!(
        series("faultline_events_ingested_total{kind=\"run.finished\"}"),
        Some(1.0)
    );
    assert_eq!(
        series(
            "faultline_graphql_request_duration_seconds_count{operation=\"startRun\",status=\"ok\"}"
        ),
        Some(1.0),
        "{after}"
    );
    // No fault is active once the run is over; no run id is a label anywhere.
    assert!(!after.contains("faultline_fault_active{"), "{after}");
    assert!(!after.contains(&run), "a run id in a label");
    let d_after = get(&d_url).await?;
    assert!(!d_after.contains("faultline_delegate_faults_active{"));
    assert_eq!(
        value(
            &d_after,
            "faultline_delegate_fault_apply_duration_seconds_count{kind=\"process-pause\"}"
        ),
        Some(1.0),
        "{d_after}"
    );
    assert!(
        value(
            &d_after,
            "faultline_delegate_probe_duration_seconds_count{kind=\"http\"}"
        )
        .unwrap_or(0.0)
            > 0.0
    );
    assert_eq!(
        value(&d_after, "faultline_delegate_events_buffered"),
        Some(0.0)
    );

    // Prometheus' own linter finds nothing to say about either exposition.
    promtool(&after).await?;
    promtool(&d_after).await?;

    // A real Prometheus scrapes both and answers queries on them.
    let prom_addr = format!("127.0.0.1:{}", free_port()?);
    let dir = w.path("prometheus");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n\
             - job_name: faultline-hub\n  static_configs:\n  - targets: [\"{hub_metrics}\"]\n\
             - job_name: faultline-delegate\n  static_configs:\n  - targets: [\"{delegate_metrics}\"]\n"
        ),
    )?;
    let log = std::fs::File::create(dir.join("prometheus.log"))?;
    let _prom = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={prom_addr}"))
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("prometheus (Debian package) is needed")?;
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let runs = prom_query(&prom_addr, "sum(faultline_runs_finished_total)").await;
        let linked = prom_query(&prom_addr, "faultline_delegate_hub_connected").await;
        if runs == Some(1.0) && linked == Some(1.0) {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "Prometheus did not scrape both within 40s (runs {runs:?}, hub connected {linked:?})"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        prom_query(&prom_addr, "sum(up{job=~\"faultline-.*\"})").await,
        Some(2.0),
        "both targets up"
    );

    // The Grafana dashboard: every query is PromQL this Prometheus accepts, every faultline
    // series it names is one the hub or the delegate exposes, and the score panel has data.
    let dash: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/faultline.json"),
    )?)?;
    let mut exprs: Vec<String> = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            exprs.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    for a in dash["annotations"]["list"].as_array().unwrap() {
        if let Some(e) = a["expr"].as_str() {
            exprs.push(e.to_string());
        }
    }
    assert!(exprs.len() >= 20, "{} queries", exprs.len());
    let exposed = format!("{after}\n{d_after}");
    let names = regex_lite_names(&exposed);
    for e in &exprs {
        let q = e
            .replace("$project", ".*")
            .replace("$__rate_interval", "1m")
            .replace("$__range", "1h");
        let r: serde_json::Value = reqwest::Client::new()
            .get(format!("http://{prom_addr}/api/v1/query"))
            .query(&[("query", q.as_str())])
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(r["status"], "success", "{q}: {r}");
        for word in q.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("faultline_") {
                let base = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| word.strip_suffix(s))
                    .unwrap_or(word);
                assert!(
                    names.contains(base),
                    "{word} in the dashboard is not exposed"
                );
            }
        }
    }
    let score = "max by (project, template) (faultline_resilience_score{project=~\".*\"})";
    assert!(prom_query(&prom_addr, score).await.is_some());
    Ok(())
}

/// The JSON log lines of a log file whose `fields.message` is `message`.
fn json_lines(log: &std::path::Path, message: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"] == message)
        .collect()
}

/// A field of a JSON log line: the event's own, else the innermost span's that has it.
fn log_field<'a>(line: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    let spans = line["spans"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    std::iter::once(&line["fields"])
        .chain(std::iter::once(&line["span"]))
        .chain(spans.iter().rev())
        .find_map(|o| o.get(name).filter(|v| !v.is_null()))
}

/// Every JSON line of `log` that mentions `run` names it as `run_id` and carries the delegate
/// and the project; returns how many lines that was.
fn every_run_line_is_labelled(log: &std::path::Path, run: &str, delegate: Option<&str>) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut n = 0;
    for raw in text.lines().filter(|l| l.contains(run)) {
        let line: serde_json::Value =
            serde_json::from_str(raw).unwrap_or_else(|e| panic!("not a JSON line ({e}): {raw}"));
        assert_eq!(
            log_field(&line, "run_id").and_then(|v| v.as_str()),
            Some(run),
            "run_id: {raw}"
        );
        assert_eq!(
            log_field(&line, "project").and_then(|v| v.as_str()),
            Some("default"),
            "project: {raw}"
        );
        let d = log_field(&line, "delegate").and_then(|v| v.as_str());
        match delegate {
            Some(name) => assert_eq!(d, Some(name), "delegate: {raw}"),
            None => assert!(d.is_some_and(|d| !d.is_empty()), "delegate: {raw}"),
        }
        n += 1;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_run_id_delegate_and_project() -> Result<()> {
    if std::env::var_os("TEST_LOG").is_some() {
        return Ok(()); // the logs go to the terminal then, not to files
    }
    let w = World::with_hub(HubOpts {
        extra: vec!["--log-format".into(), "json".into()],
        ..HubOpts::default()
    })
    .await?;
    let target = Target::start(w.dir.path()).await?;
    let d = w.delegate("logs", &[], &["--log-format", "json"]).await?;
    let tid = w
        .api
        .create_template(&pause_template("logs-pause", &target, "1s"))
        .await?;
    let run = w.api.start_run(&tid, "logs").await?;
    w.api
        .wait_status(&run, &["PASSED", "FAILED"], Duration::from_secs(60))
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The delegate: the run's lines (here "fault applied") are in its run span and its
    // delegate span.
    let applied = json_lines(&d.proc.log, "fault applied");
    assert_eq!(applied.len(), 1, "{}", d.proc.log.display());
    let line = &applied[0];
    assert_eq!(line["span"]["run_id"], run.as_str(), "{line}");
    assert_eq!(line["span"]["project"], "default", "{line}");
    let spans = line["spans"].as_array().unwrap();
    assert!(
        spans
            .iter()
            .any(|s| s["name"] == "delegate" && s["delegate"] == "logs"),
        "{line}"
    );
    // The hub: the line that records the verdict names the run, its delegate and project.
    let finished = json_lines(&w.hub.proc.log, "run finished");
    assert_eq!(finished.len(), 1, "{}", w.hub.proc.log.display());
    let span = &finished[0]["span"];
    assert_eq!(span["run_id"], run.as_str(), "{}", finished[0]);
    assert_eq!(span["project"], "default");
    assert!(span["delegate"].as_str().is_some_and(|d| !d.is_empty()));
    // Not only those: every line of either log that mentions the run (started, dispatched,
    // accepted, applied, reverted, finished...) carries the three.
    let hub_lines = every_run_line_is_labelled(&w.hub.proc.log, &run, None);
    let delegate_lines = every_run_line_is_labelled(&d.proc.log, &run, Some("logs"));
    assert!(hub_lines >= 3, "hub: {hub_lines} lines of the run");
    assert!(
        delegate_lines >= 4,
        "delegate: {delegate_lines} lines of the run"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_annotations_mark_each_fault_window_and_run_once() -> Result<()> {
    use faultline_e2e::receiver::Receiver;
    let grafana = Receiver::grafana("glsa_faultline_test").await?;
    // Grafana is away at first: the start of the window is retried.
    grafana.fail_next(&[503]);
    let dir = tempfile::tempdir()?;
    let token = dir.path().join("grafana-token");
    std::fs::write(&token, "glsa_faultline_test\n")?;
    let w = World::with_hub(HubOpts {
        extra: vec![
            "--grafana-url".into(),
            grafana.url(""),
            "--grafana-token-file".into(),
            token.display().to_string(),
            "--grafana-dashboard-uid".into(),
            "faultline".into(),
        ],
        ..HubOpts::default()
    })
    .await?;
    let target = Target::start(w.dir.path()).await?;
    let _d = w.delegate("annotate", &[], &[]).await?;
    let tid = w
        .api
        .create_template(&pause_template("annotated", &target, "2s"))
        .await?;
    let run = w.api.start_run(&tid, "annotate").await?;
    let done = w
        .api
        .wait_status(&run, &["PASSED", "FAILED"], Duration::from_secs(60))
        .await?;
    let verdict = done["status"].as_str().unwrap().to_ascii_lowercase();

    // The fault's window and the run, each answered 200 once (the 503 before one of them).
    let deadline = Instant::now() + Duration::from_secs(30);
    let (fault, run_region) = loop {
        let got = grafana.received();
        let ok: Vec<_> = got.iter().filter(|r| r.status == 200).collect();
        let has = |tag: &str| {
            ok.iter()
                .filter(|r| {
                    r.method == "POST"
                        && r.json()["tags"]
                            .as_array()
                            .is_some_and(|t| t.iter().any(|x| x == tag))
                })
                .cloned()
                .collect::<Vec<_>>()
        };
        let (faults, runs) = (has("fault"), has("run"));
        let patched = ok.iter().any(|r| r.method == "PATCH");
        let closed = faults
            .iter()
            .any(|f| f.json()["timeEnd"] != f.json()["time"]);
        if faults.len() == 1 && runs.len() == 1 && (patched || closed) {
            break (faults[0].clone(), runs[0].clone());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "annotations not all sent within 30s: {:?}",
            got.iter()
                .map(|r| (r.method.clone(), r.path.clone(), r.status))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let got = grafana.received();
    assert_eq!(got[0].status, 503, "the first try met the outage");
    assert!(got
        .iter()
        .all(|r| r.header("authorization") == "Bearer glsa_faultline_test"));
    let f = fault.json();
    for tag in [
        "faultline",
        "fault",
        "project:default",
        "kind:process-pause",
        "template:annotated",
    ] {
        assert!(
            f["tags"].as_array().unwrap().iter().any(|t| t == tag),
            "{tag}: {f}"
        );
    }
    assert_eq!(f["dashboardUID"], "faultline");
    assert!(
        f["text"]
            .as_str()
            .unwrap()
            .starts_with("process-pause (annotated v1"),
        "{f}"
    );
    // The window's end: patched onto the annotation Grafana made, or sent with its start.
    let start = f["time"].as_i64().unwrap();
    let end = match got.iter().find(|r| r.method == "PATCH" && r.status == 200) {
        Some(p) => {
            assert_eq!(
                p.path,
                format!("/api/annotations/{}", grafana_id(&got, &fault))
            );
            p.json()["timeEnd"].as_i64().unwrap()
        }
        None => f["timeEnd"].as_i64().unwrap(),
    };
    let window = end - start;
    assert!(
        (1500..=4500).contains(&window),
        "the 2s fault's window is {window} ms"
    );
    let r = run_region.json();
    assert!(
        r["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == &format!("verdict:{verdict}")),
        "{r}"
    );
    assert!(r["timeEnd"].as_i64().unwrap() > r["time"].as_i64().unwrap());
    assert!(
        r["time"].as_i64().unwrap() <= start,
        "the run's region holds the fault"
    );
    // Nothing more is sent later: each was sent once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let posts = grafana
        .received()
        .iter()
        .filter(|r| r.method == "POST" && r.status == 200)
        .count();
    assert_eq!(posts, 2);
    Ok(())
}

/// The id Grafana (the receiver) gave the annotation `post` created: its 1-based order among
/// the successful POSTs.
fn grafana_id(
    got: &[faultline_e2e::receiver::Received],
    post: &faultline_e2e::receiver::Received,
) -> String {
    let n = got
        .iter()
        .filter(|r| r.method == "POST" && r.status == 200)
        .position(|r| r.at == post.at)
        .unwrap();
    (n + 1).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_reach_an_otlp_receiver_as_real_protobuf() -> Result<()> {
    use faultline_e2e::receiver::Receiver;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    let otlp = Receiver::start().await?;
    let w = World::with_hub(HubOpts {
        extra: vec!["--otlp-endpoint".into(), otlp.url("")],
        ..HubOpts::default()
    })
    .await?;
    let target = Target::start(w.dir.path()).await?;
    let _d = w.delegate("traced", &[], &[]).await?;
    let tid = w
        .api
        .create_template(&pause_template("traced", &target, "1s"))
        .await?;
    let run = w.api.start_run(&tid, "traced").await?;
    w.api
        .wait_status(&run, &["PASSED", "FAILED"], Duration::from_secs(60))
        .await?;

    // The SDK sends batches every few seconds: wait for a run span among them.
    let deadline = Instant::now() + Duration::from_secs(30);
    let spans = loop {
        let mut spans = Vec::new();
        for r in otlp.received() {
            assert_eq!(r.path, "/v1/traces");
            assert_eq!(r.header("content-type"), "application/x-protobuf");
            let req = ExportTraceServiceRequest::decode(r.body.as_slice())?;
            for rs in req.resource_spans {
                let service = rs
                    .resource
                    .as_ref()
                    .and_then(|res| res.attributes.iter().find(|a| a.key == "service.name"))
                    .and_then(|a| a.value.as_ref())
                    .map(|v| format!("{:?}", v.value));
                assert!(service.is_some_and(|s| s.contains("faultline-hub")));
                for ss in rs.scope_spans {
                    spans.extend(ss.spans);
                }
            }
        }
        let run_span = spans.iter().any(|s| {
            s.name == "run"
                && s.attributes
                    .iter()
                    .any(|a| a.key == "run_id" && format!("{:?}", a.value).contains(&run))
        });
        if run_span {
            break spans;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no run span within 30s ({} spans)",
            spans.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let named = |n: &str| spans.iter().filter(|s| s.name == n).count();
    assert!(named("graphql") > 0, "a span per GraphQL request");
    assert!(named("dispatch") > 0, "a span per dispatch");
    assert!(named("ingest") > 0, "a span per ingest batch");
    // A run's span is a child of the batch that stored its events.
    let ingests: Vec<&Vec<u8>> = spans
        .iter()
        .filter(|s| s.name == "ingest")
        .map(|s| &s.span_id)
        .collect();
    assert!(spans
        .iter()
        .filter(|s| s.name == "run")
        .all(|s| ingests.contains(&&s.parent_span_id)));
    Ok(())
}
