//! `faultline run`: the CI/CD gate. Starts a run by template name (optionally a pinned
//! `--version`), follows its events over the `runEvents` WebSocket subscription (`ws.rs`;
//! resubscribing from the last seq when it drops) or, with `--poll` or when the WebSocket cannot
//! be opened, by polling `run(id:)` every 500 ms (works through any HTTP proxy), prints new
//! events as progress lines on stderr, and maps the verdict to an exit code. On `--timeout` and
//! on SIGINT / SIGTERM it calls `abortRun` first, so a cancelled pipeline leaves no fault
//! behind. The JUnit report is [`junit_xml`], a pure function of the finished run.
use super::{exit, ws, Client, ClientError};
use crate::config::{HubArgs, RunArgs};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(500);
/// How long an abort may take to be confirmed before the command gives up waiting.
const ABORT_WAIT: Duration = Duration::from_secs(30);
/// Failed (re)subscriptions in a row before the rest of the run is followed by polling.
const WS_ATTEMPTS: u32 = 3;

const START: &str = "mutation($t: String!, $p: String, $d: String, $v: Int, $dry: Boolean!) { \
    startRun(template: $t, project: $p, delegate: $d, version: $v, dryRun: $dry) { id templateVersion delegate { name } } }";
const POLL_Q: &str = "query($id: ID!, $after: Int!) { run(id: $id) { status events(afterSeq: $after) { seq kind payload } } }";
const FINAL_Q: &str = "query($id: ID!) { run(id: $id) { id status reason dryRun templateVersion resilienceScore recoveryMs \
    recoveryFrom { summary } probeTally { passed failed total } latency { probe significant summary } \
    probeResults { probe phase step countsFor ok detail } template { name } } }";
const ABORT: &str = "mutation($id: ID!, $r: String) { abortRun(id: $id, reason: $r) { status } }";

pub fn is_terminal(status: &str) -> bool {
    matches!(status, "PASSED" | "FAILED" | "ABORTED" | "ERROR")
}

/// One progress line for an event worth showing, or None (passing checks, the final event).
pub fn progress_line(kind: &str, p: &Value) -> Option<String> {
    let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or_default();
    let fields = |keys: &[&str]| {
        keys.iter()
            .filter_map(|k| match p.get(*k) {
                Some(Value::String(v)) if !v.is_empty() => Some(v.clone()),
                Some(Value::Number(n)) => Some(format!("{k}={n}")),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    match kind {
        "probe.check" if p["ok"] == false => Some(format!(
            "check failed: {} ({}): {}",
            s("probe"),
            s("phase"),
            s("detail")
        )),
        "probe.check" | "run.finished" => None,
        k if k.starts_with("fault.") => Some(format!(
            "{k}: {} ({}) {}",
            s("fault"),
            s("path"),
            s("detail")
        )),
        k => {
            let f = fields(&[
                "path",
                "name",
                "kind",
                "probe",
                "reason",
                "detail",
                "recoveryMs",
            ]);
            Some(if f.is_empty() {
                k.to_string()
            } else {
                format!("{k}: {f}")
            })
        }
    }
}

/// How the command ended: its exit code and the finished run, when there is one.
pub struct Ended {
    pub code: u8,
    pub why: Option<String>,
}

/// The exit code of a finished run, with the reason when it is not 0.
pub fn verdict_code(status: &str, score: Option<f64>, min: Option<f64>, dry: bool) -> Ended {
    match status {
        "PASSED" => match (min, score) {
            (Some(m), Some(s)) if s < m => Ended {
                code: exit::FAILED,
                why: Some(format!("score {s:.1} is below --min-score {m}")),
            },
            (Some(m), None) if !dry => Ended {
                code: exit::FAILED,
                why: Some(format!(
                    "the run has no score, so --min-score {m} is not met"
                )),
            },
            _ => Ended {
                code: exit::PASSED,
                why: None,
            },
        },
        "FAILED" => Ended {
            code: exit::FAILED,
            why: Some("the hypothesis failed".into()),
        },
        s => Ended {
            code: exit::NOT_CONCLUSIVE,
            why: Some(format!("the run ended {s}")),
        },
    }
}

/// Escapes text for XML content and attributes, dropping characters XML 1.0 forbids.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML of a finished run (`run` as [`FINAL_Q`] returns it, `events` all of its events):
/// one testsuite; one testcase per probe (failed when any of its checks failed) and per fault
/// step (failed when a check counting for it failed, unless the gate passed: then those checks go
/// to `system-out`); each failure carries the run's reason and its failing checks. A run that did not pass with no failing case gets a `run` testcase
/// carrying why, so the report never looks green for a red gate.
pub fn junit_xml(run: &Value, events: &[Value], verdict: &Ended, secs: f64) -> String {
    let reason = run["reason"].as_str().unwrap_or_default();
    let results = run["probeResults"].as_array().cloned().unwrap_or_default();
    let failing_line = |r: &Value| {
        format!(
            "{} ({}, step {}): {}",
            r["probe"].as_str().unwrap_or_default(),
            r["phase"].as_str().unwrap_or_default(),
            r["step"],
            r["detail"].as_str().unwrap_or_default()
        )
    };
    // (name, classname, failing check lines)
    let mut cases: Vec<(String, String, Vec<String>)> = vec![];
    let mut probes: Vec<String> = vec![];
    for r in &results {
        let p = r["probe"].as_str().unwrap_or_default().to_string();
        if !probes.contains(&p) {
            probes.push(p);
        }
    }
    for p in &probes {
        let fails = results
            .iter()
            .filter(|r| r["probe"] == p.as_str() && r["ok"] == false)
            .map(failing_line)
            .collect();
        cases.push((p.clone(), "probe".into(), fails));
    }
    let mut steps: Vec<(u64, String)> = vec![];
    for e in events {
        let kind = e["kind"].as_str().unwrap_or_default();
        if kind == "fault.applied" || kind == "fault.planned" {
            let p = &e["payload"];
            let step = p["step"].as_u64().unwrap_or_default();
            if !steps.iter().any(|(s, _)| *s == step) {
                let name = format!(
                    "{} {}",
                    p["path"].as_str().unwrap_or_default(),
                    p["fault"].as_str().unwrap_or_default()
                );
                steps.push((step, name));
            }
        }
    }
    for (step, name) in steps {
        let fails = results
            .iter()
            .filter(|r| {
                r["ok"] == false
                    && (r["step"].as_u64() == Some(step)
                        || r["countsFor"]
                            .as_array()
                            .is_some_and(|c| c.iter().any(|v| v.as_u64() == Some(step))))
            })
            .map(failing_line)
            .collect();
        cases.push((name, "fault".into(), fails));
    }
    if verdict.code != exit::PASSED && cases.iter().all(|c| c.2.is_empty()) {
        let why = verdict.why.clone().unwrap_or_default();
        cases.push(("run".into(), "verdict".into(), vec![why]));
    }
    let failures = if verdict.code == exit::PASSED {
        0
    } else {
        cases.iter().filter(|c| !c.2.is_empty()).count()
    };
    let suite = format!(
        "{} run {}",
        run["template"]["name"].as_str().unwrap_or_default(),
        run["id"].as_str().unwrap_or_default()
    );
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    x.push_str(&format!(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{secs:.3}\">\n",
        xml_escape(&suite),
        cases.len()
    ));
    for (name, class, fails) in &cases {
        x.push_str(&format!(
            "    <testcase name=\"{}\" classname=\"{}\"",
            xml_escape(name),
            xml_escape(class)
        ));
        if fails.is_empty() {
            x.push_str("/>\n");
            continue;
        }
        if verdict.code == exit::PASSED {
            // Checks may fail while a fault is active and the hypothesis still hold: the gate is
            // green, so the report is too, with those checks kept for reading.
            x.push_str(&format!(
                ">\n      <system-out>{}</system-out>\n    </testcase>\n",
                xml_escape(&format!("failed checks:\n{}", fails.join("\n")))
            ));
            continue;
        }
        let msg = if reason.is_empty() {
            verdict.why.clone().unwrap_or_default()
        } else {
            reason.to_string()
        };
        x.push_str(&format!(
            ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
            xml_escape(&msg),
            xml_escape(run["status"].as_str().unwrap_or_default()),
            xml_escape(&fails.join("\n"))
        ));
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// `HUB/p/PROJECT/runs/ID`, the dashboard's page of the run.
pub fn run_url(hub: &str, project: &str, id: &str) -> String {
    match url::Url::parse(hub) {
        Ok(mut u) => {
            if let Ok(mut s) = u.path_segments_mut() {
                s.pop_if_empty().extend(["p", project, "runs", id]);
            }
            u.to_string()
        }
        Err(_) => format!("{}/p/{project}/runs/{id}", hub.trim_end_matches('/')),
    }
}

/// Why the wait loop stopped before the run ended.
enum Interrupt {
    Timeout,
    Signal(u8, &'static str),
}

/// SIGINT and SIGTERM, listened for from the command's start (a handler installed only once
/// the run is followed would let an early Ctrl-C kill the process with a run just started).
struct Signals {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
        }
    }

    async fn recv(&mut self) -> (u8, &'static str) {
        async fn one(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = one(&mut self.int) => (exit::SIGINT, "SIGINT"),
            _ = one(&mut self.term) => (exit::SIGTERM, "SIGTERM"),
        }
    }
}

/// The events seen so far and the progress lines they make.
struct Progress {
    started: Instant,
    last_seq: i64,
    events: Vec<Value>,
}

impl Progress {
    /// Takes one event (once: a resubscription or a poll may repeat what was seen), printing
    /// its progress line.
    fn push(&mut self, e: Value, print: bool) {
        let seq = e["seq"].as_i64().unwrap_or(0);
        if seq <= self.last_seq {
            return;
        }
        self.last_seq = seq;
        if print {
            if let Some(l) = progress_line(e["kind"].as_str().unwrap_or_default(), &e["payload"]) {
                eprintln!("[{:>6.1}s] {l}", self.started.elapsed().as_secs_f64());
            }
        }
        self.events.push(e);
    }

    /// One poll: new events taken; whether the run has ended.
    async fn poll(&mut self, client: &Client, id: &str, print: bool) -> Result<bool, ClientError> {
        let d = client
            .gql(POLL_Q, json!({"id": id, "after": self.last_seq}))
            .await?;
        for e in d["run"]["events"].as_array().cloned().unwrap_or_default() {
            self.push(e, print);
        }
        Ok(is_terminal(d["run"]["status"].as_str().unwrap_or_default()))
    }
}

/// Follows the run until it ends: over the WebSocket unless `poll`, resubscribing from the last
/// seq when the stream drops; by polling when the WebSocket cannot be opened at all, or after
/// [`WS_ATTEMPTS`] failed subscriptions in a row.
async fn follow(client: &Client, id: &str, progress: &mut Progress, mut poll: bool, verbose: bool) {
    let (mut failures, mut opened) = (0, false);
    while !poll {
        let mut events = match ws::Events::subscribe(client, id, progress.last_seq).await {
            Ok(ev) => {
                opened = true;
                if verbose {
                    eprintln!(
                        "following events over WebSocket{}",
                        if progress.last_seq > 0 {
                            format!(" from seq {}", progress.last_seq)
                        } else {
                            String::new()
                        }
                    );
                }
                ev
            }
            Err(e) => {
                failures += 1;
                // Never opened (a proxy that passes no upgrade, say): polling at once.
                if !opened || failures >= WS_ATTEMPTS {
                    eprintln!("warning: {e}; following the run by polling");
                    poll = true;
                } else {
                    if verbose {
                        eprintln!("warning: {e}; retrying");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                continue;
            }
        };
        loop {
            match events.next().await {
                Ok(ws::Next::Event(e)) => {
                    failures = 0;
                    progress.push(e, true);
                }
                Ok(ws::Next::Complete) => {
                    events.close().await;
                    // The stream ends with the run; one query confirms it (and catches any
                    // event stored in the same instant).
                    match progress.poll(client, id, true).await {
                        Ok(true) => return,
                        Ok(false) => break,
                        Err(e) => {
                            eprintln!("warning: {e}");
                            break;
                        }
                    }
                }
                Err(e) => {
                    if verbose {
                        eprintln!("warning: {e}; resubscribing");
                    }
                    failures += 1;
                    break;
                }
            }
        }
    }
    if verbose {
        eprintln!("following events by polling every {POLL:?}");
    }
    loop {
        match progress.poll(client, id, true).await {
            Ok(true) => return,
            Ok(false) => {}
            // Keep trying: the hub may be restarting; --timeout bounds the wait.
            Err(e) => eprintln!("warning: {e}"),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `faultline run`: returns the process exit code.
pub async fn run(hub: HubArgs, args: RunArgs) -> u8 {
    let started = Instant::now();
    let Some(template) = args.template.clone() else {
        eprintln!("error: --template is required");
        return exit::USAGE;
    };
    let client = match super::connect(&hub) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let project = match super::project(&client, &hub).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let delegate = args.delegate.clone().or(args.selector.clone());
    let vars = json!({"t": template, "p": hub.project, "d": delegate, "v": args.version, "dry": args.dry_run});
    let mut signals = Signals::install();
    // A signal while startRun is in flight: take the answer, then abort what it started.
    let start = client.gql(START, vars);
    tokio::pin!(start);
    let mut early = None;
    let started_run = tokio::select! {
        r = &mut start => r,
        s = signals.recv() => {
            early = Some(Interrupt::Signal(s.0, s.1));
            start.await
        }
    };
    let id = match started_run {
        Ok(d) => d["startRun"]["id"].as_str().unwrap_or_default().to_string(),
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let url = run_url(&client.hub, &project, &id);
    eprintln!("run {id} started: {url}");
    if !args.wait && early.is_none() {
        if args.json {
            println!("{}", json!({"id": id, "status": "PENDING", "url": url}));
        } else {
            println!("{id}");
        }
        return exit::PASSED;
    }

    let mut progress = Progress {
        started,
        last_seq: 0,
        events: vec![],
    };
    let deadline = tokio::time::sleep(args.timeout.0);
    tokio::pin!(deadline);
    let interrupted = match early {
        Some(i) => Some(i),
        None => {
            tokio::select! {
                _ = follow(&client, &id, &mut progress, args.poll, args.verbose) => None,
                _ = &mut deadline => Some(Interrupt::Timeout),
                s = signals.recv() => Some(Interrupt::Signal(s.0, s.1)),
            }
        }
    };
    if let Some(i) = &interrupted {
        let reason = match i {
            Interrupt::Timeout => format!("faultline run: --timeout {} passed", args.timeout),
            Interrupt::Signal(_, name) => format!("faultline run: {name}"),
        };
        eprintln!("{reason}: aborting run {id}");
        if let Err(e) = client.gql(ABORT, json!({"id": id, "r": reason})).await {
            eprintln!("error: abortRun failed: {e}");
        }
        // Wait for the delegate to confirm every fault is reverted (bounded; a second signal
        // stops waiting).
        let confirm = async {
            let until = Instant::now() + ABORT_WAIT;
            while Instant::now() < until {
                if let Ok(true) = progress.poll(&client, &id, false).await {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            eprintln!("warning: the abort was not confirmed within {ABORT_WAIT:?}");
        };
        tokio::select! {
            _ = confirm => {}
            _ = signals.recv() => eprintln!("warning: not waiting for the abort to be confirmed"),
        }
    }

    let run = match client.gql(FINAL_Q, json!({"id": id})).await {
        Ok(d) => d["run"].clone(),
        Err(e) => {
            eprintln!("error: {e}");
            return exit::NOT_CONCLUSIVE;
        }
    };
    let status = run["status"].as_str().unwrap_or_default();
    let score = run["resilienceScore"].as_f64();
    let mut ended = verdict_code(status, score, args.min_score, args.dry_run);
    match &interrupted {
        Some(Interrupt::Timeout) => {
            ended = Ended {
                code: exit::NOT_CONCLUSIVE,
                why: Some(format!(
                    "timed out after {}; the run was aborted",
                    args.timeout
                )),
            }
        }
        Some(Interrupt::Signal(code, name)) => {
            ended = Ended {
                code: *code,
                why: Some(format!("interrupted by {name}; the run was aborted")),
            }
        }
        None => {}
    }
    print_summary(&run, &ended, &url);
    if let Some(path) = &args.junit {
        let xml = junit_xml(
            &run,
            &progress.events,
            &ended,
            started.elapsed().as_secs_f64(),
        );
        if let Err(e) = std::fs::write(path, xml) {
            eprintln!("error: --junit: cannot write {}: {e}", path.display());
        }
    }
    if args.json {
        println!(
            "{}",
            json!({"id": id, "status": status, "score": score, "recoveryMs": run["recoveryMs"],
                   "reason": run["reason"], "url": url, "exitCode": ended.code,
                   "templateVersion": run["templateVersion"]})
        );
    }
    ended.code
}

fn print_summary(run: &Value, ended: &Ended, url: &str) {
    let status = run["status"].as_str().unwrap_or_default();
    let reason = run["reason"].as_str().unwrap_or_default();
    eprintln!(
        "verdict: {status}{}",
        if reason.is_empty() {
            String::new()
        } else {
            format!(" ({reason})")
        }
    );
    let t = &run["probeTally"];
    match run["resilienceScore"].as_f64() {
        Some(s) => eprintln!(
            "score: {s:.1} ({}/{} checks passed)",
            t["passed"], t["total"]
        ),
        None => eprintln!("score: none ({}/{} checks passed)", t["passed"], t["total"]),
    }
    if let Some(ms) = run["recoveryMs"].as_i64() {
        let from = run["recoveryFrom"]["summary"].as_str().unwrap_or_default();
        eprintln!("recovery: {ms} ms {from}");
    }
    for l in run["latency"].as_array().into_iter().flatten() {
        eprintln!(
            "latency: {}: {}",
            l["probe"].as_str().unwrap_or_default(),
            l["summary"].as_str().unwrap_or_default()
        );
    }
    if let Some(why) = &ended.why {
        eprintln!("gate: exit {}: {why}", ended.code);
    } else {
        eprintln!("gate: exit 0: passed");
    }
    eprintln!("{url}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(
            verdict_code("PASSED", Some(90.0), Some(80.0), false).code,
            0
        );
        assert_eq!(
            verdict_code("PASSED", Some(70.0), Some(80.0), false).code,
            1
        );
        assert_eq!(verdict_code("PASSED", None, None, false).code, 0);
        assert_eq!(verdict_code("FAILED", Some(90.0), None, false).code, 1);
        assert_eq!(verdict_code("ABORTED", None, None, false).code, 3);
        assert_eq!(verdict_code("ERROR", None, None, false).code, 3);
    }

    #[test]
    fn escapes_xml() {
        assert_eq!(xml_escape("a<b>&\"'\u{1}c"), "a&lt;b&gt;&amp;&quot;&apos;c");
    }

    #[test]
    fn junit_fails_cases_only_when_the_gate_fails() {
        let run = json!({"id": "r1", "status": "FAILED", "reason": "web <down> & out",
            "template": {"name": "t\"1"},
            "probeResults": [
                {"probe": "web", "phase": "during", "step": 0, "countsFor": [0], "ok": false, "detail": "HTTP 503 <html>"},
                {"probe": "db", "phase": "during", "step": 0, "countsFor": [0], "ok": true, "detail": ""}]});
        let events = [
            json!({"kind": "fault.applied", "payload": {"step": 0, "path": "steps[0]", "fault": "process-pause"}}),
        ];
        let failed = verdict_code("FAILED", None, None, false);
        let x = junit_xml(&run, &events, &failed, 1.0);
        assert!(x.contains("tests=\"3\" failures=\"2\""), "{x}");
        assert!(x.contains("name=\"t&quot;1 run r1\""), "{x}");
        assert!(x.contains("message=\"web &lt;down&gt; &amp; out\""), "{x}");
        assert!(
            x.contains("web (during, step 0): HTTP 503 &lt;html&gt;</failure>"),
            "{x}"
        );
        let passed = verdict_code("PASSED", Some(50.0), None, false);
        let x = junit_xml(
            &json!({"status": "PASSED", "probeResults": run["probeResults"]}),
            &events,
            &passed,
            1.0,
        );
        assert!(
            x.contains("failures=\"0\"") && !x.contains("<failure"),
            "{x}"
        );
        let aborted = verdict_code("ABORTED", None, None, false);
        let x = junit_xml(&json!({"status": "ABORTED"}), &[], &aborted, 1.0);
        assert!(
            x.contains("<testcase name=\"run\" classname=\"verdict\">"),
            "{x}"
        );
    }

    #[test]
    fn links() {
        assert_eq!(
            run_url("https://h:1/", "a b", "x"),
            "https://h:1/p/a%20b/runs/x"
        );
    }
}
