//! `faultline-delegate toxiproxy`, the real binary on 127.0.0.1 (`--port 0`: it names its port on
//! stdout), driven by real Toxiproxy clients installed by `tests/toxiproxy-clients/install.sh`:
//! PyPI `toxiproxy-python`, npm `toxiproxy-node-client`, and a `chaos run` of Chaos Toolkit with
//! `chaostoolkit-toxiproxy`. Each client reports what it saw as JSON; these tests judge it, and
//! check the effects from the outside (timing through the proxies, the API's state). A missing
//! client fails the test unless `FAULTLINE_SKIP_TOXIPROXY_CLIENTS=1`.
use crate::{
    helpers::{closed_port, Answer, HttpServer},
    proxy::Echo,
};
use serde_json::{json, Value};
use std::{
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    process::{Child, Command},
};

const SKIP: &str = "FAULTLINE_SKIP_TOXIPROXY_CLIENTS";
/// How long any one client run may take.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/toxiproxy-clients")
}

/// A file of the installed clients (`.venv/bin/python`, `node_modules/...`): panics when it is
/// missing, or `None` when [`SKIP`] is `1`.
pub fn client(rel: &str) -> Option<PathBuf> {
    let path = clients_dir().join(rel);
    if path.exists() {
        return Some(path);
    }
    if std::env::var(SKIP).as_deref() == Ok("1") {
        eprintln!("skipped: {} is not installed and {SKIP}=1", path.display());
        return None;
    }
    panic!(
        "{} is not installed: run tests/toxiproxy-clients/install.sh (or set {SKIP}=1 to skip \
         this test on purpose)",
        path.display()
    );
}

/// The binary as `faultline-delegate toxiproxy ARGS`, killed on drop; stderr is collected.
struct Server {
    child: Child,
    /// The API's address, from the line on stdout.
    addr: String,
    stderr: Arc<Mutex<String>>,
    http: reqwest::Client,
}

fn spawn(args: &[&str], env: &[(&str, &str)]) -> (Child, Arc<Mutex<String>>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_faultline-delegate"));
    cmd.arg("toxiproxy")
        .args(args)
        .env("FAULTLINE_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the delegate binary starts");
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut err = child.stderr.take().unwrap();
    let sink = stderr.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err.read(&mut buf).await {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    (child, stderr)
}

impl Server {
    async fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
        let (mut child, stderr) = spawn(args, env);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no stdout line in 20s; stderr: {}", stderr.lock().unwrap()))
            .unwrap()
            .unwrap_or_else(|| panic!("stdout closed; stderr: {}", stderr.lock().unwrap()));
        let addr = line
            .strip_prefix("faultline-delegate toxiproxy listening addr=")
            .unwrap_or_else(|| panic!("unexpected stdout line {line:?}"))
            .to_string();
        Server {
            child,
            addr,
            stderr,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    fn port(&self) -> &str {
        self.addr.rsplit_once(':').unwrap().1
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(
            method.parse().unwrap(),
            format!("http://{}{path}", self.addr),
        );
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Sends `signal` and waits (at most 10 s) for the exit; returns it and stderr.
    async fn stop(mut self, signal: nix::sys::signal::Signal) -> (ExitStatus, String) {
        let pid = nix::unistd::Pid::from_raw(self.child.id().unwrap() as i32);
        nix::sys::signal::kill(pid, signal).unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("the server stops within 10s of the signal")
            .unwrap();
        // The stderr reader ends with the process.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let err = self.stderr.lock().unwrap().clone();
        (status, err)
    }
}

async fn echo_rtt(addr: &str) -> Duration {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let t = Instant::now();
    s.write_all(&[7u8; 64]).await.unwrap();
    let mut buf = [0u8; 64];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .expect("echo through the proxy")
        .unwrap();
    t.elapsed()
}

/// Runs a client program with a bound; returns the JSON object it printed last on stdout.
async fn run_client(mut cmd: Command) -> Value {
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    let out = tokio::time::timeout(CLIENT_TIMEOUT, cmd.output())
        .await
        .expect("the client ends in time")
        .expect("the client starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("client printed no JSON ({e}): {stdout}"))
}

fn ms(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{v} is not a number of ms"))
}

/// The round trips a client timed before, with and after a `latency_ms` toxic: every one with
/// the toxic at least the latency, the medians without it well under.
fn assert_latency_seen(seen: &Value, latency_ms: f64) {
    let all = |k: &str| -> Vec<f64> { seen[k].as_array().unwrap().iter().map(ms).collect() };
    let with = all("with_toxic_ms");
    assert_eq!(with.len(), 5, "{seen}");
    assert!(
        with.iter().all(|t| *t >= latency_ms - 1.0),
        "each round trip with the toxic takes its latency: {with:?}"
    );
    for k in ["median_before_ms", "median_after_ms"] {
        assert!(
            ms(&seen[k]) < latency_ms / 2.0,
            "{k} without the toxic: {seen}"
        );
    }
    eprintln!(
        "median round trip through the proxy: before {:.3} ms, with a {latency_ms} ms toxic {:.3} ms, after {:.3} ms",
        ms(&seen["median_before_ms"]),
        ms(&seen["median_with_toxic_ms"]),
        ms(&seen["median_after_ms"])
    );
}

#[tokio::test]
async fn the_binary_serves_its_config_file_populates_and_stops_on_sigterm() {
    let echo = Echo::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("toxiproxy.json");
    std::fs::write(
        &config,
        json!([
            {"name": "from-file", "listen": "127.0.0.1:0", "upstream": echo.addr, "enabled": true},
            {"name": "off", "listen": "127.0.0.1:0", "upstream": echo.addr, "enabled": false}
        ])
        .to_string(),
    )
    .unwrap();
    // toxiproxy-server's own spelling of the flags.
    let server = Server::start(
        &[
            "-host",
            "127.0.0.1",
            "-port",
            "0",
            "-config",
            config.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let (st, v) = server.call("GET", "/version", None).await;
    assert_eq!(st, 200);
    assert!(v["version"].as_str().unwrap().starts_with("2."), "{v}");
    let (st, all) = server.call("GET", "/proxies", None).await;
    assert_eq!(st, 200);
    assert_eq!(all["off"]["enabled"], false, "{all}");
    let from_file = all["from-file"]["listen"].as_str().unwrap().to_string();
    assert!(!from_file.ends_with(":0"), "{all}");
    assert!(echo_rtt(&from_file).await < Duration::from_millis(100));

    // A toxic on the file's proxy, then populate: the kept proxy keeps its toxic, a new one is
    // made, and a changed one is replaced.
    let (st, _) = server
        .call(
            "POST",
            "/proxies/from-file/toxics",
            Some(json!({"type": "latency", "attributes": {"latency": 150}})),
        )
        .await;
    assert_eq!(st, 200);
    assert!(echo_rtt(&from_file).await >= Duration::from_millis(150));
    let (st, pop) = server
        .call(
            "POST",
            "/populate",
            Some(json!([
                {"name": "from-file", "listen": from_file, "upstream": echo.addr},
                {"name": "added", "listen": "127.0.0.1:0", "upstream": echo.addr},
                {"name": "off", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1", "enabled": false}
            ])),
        )
        .await;
    assert_eq!(st, 201, "{pop}");
    let names: Vec<&str> = pop["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["from-file", "added", "off"]);
    assert_eq!(pop["proxies"][0]["toxics"][0]["type"], "latency", "{pop}");
    assert_eq!(pop["proxies"][2]["upstream"], "127.0.0.1:1", "{pop}");
    let added = pop["proxies"][1]["listen"].as_str().unwrap().to_string();
    assert!(echo_rtt(&added).await < Duration::from_millis(100));
    let (st, e) = server
        .call("POST", "/populate", Some(json!([{"name": "x"}])))
        .await;
    assert_eq!(st, 400);
    assert_eq!(e["error"], "missing required field: upstream");

    // SIGTERM: exit 0, every proxy closed (the file's and the API's).
    let api = server.addr.clone();
    let (status, stderr) = server.stop(nix::sys::signal::Signal::SIGTERM).await;
    assert!(status.success(), "exit {status}; stderr: {stderr}");
    assert!(stderr.contains("received SIGTERM"), "{stderr}");
    for addr in [&from_file, &added, &api] {
        assert!(TcpStream::connect(addr).await.is_err(), "{addr} still open");
    }
}

#[tokio::test]
async fn the_binary_takes_its_variables_and_stops_on_sigint() {
    let server = Server::start(
        &[],
        &[
            ("FAULTLINE_TOXIPROXY_HOST", "127.0.0.1"),
            ("FAULTLINE_TOXIPROXY_PORT", "0"),
        ],
    )
    .await;
    assert!(server.addr.starts_with("127.0.0.1:"), "{}", server.addr);
    let (st, all) = server.call("GET", "/proxies", None).await;
    assert_eq!((st, all), (200, json!({})));
    let (status, stderr) = server.stop(nix::sys::signal::Signal::SIGINT).await;
    assert!(status.success(), "exit {status}; stderr: {stderr}");
}

#[tokio::test]
async fn the_binary_refuses_a_bad_config_file_naming_the_entry_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.json");
    std::fs::write(
        &config,
        r#"[{"name": "ok", "upstream": "127.0.0.1:1"}, {"name": "redis", "upstream": "redis"}]"#,
    )
    .unwrap();
    let (child, stderr) = spawn(&["--port", "0", "--config", config.to_str().unwrap()], &[]);
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("exits")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = stderr.lock().unwrap().clone();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty(), "it never listened");
    assert!(
        err.contains(r#"bad.json: entry [1] ("redis"): upstream: "redis" is not HOST:PORT"#),
        "{err}"
    );
    // The delegate without a subcommand still wants its hub.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_faultline-delegate"))
        .env_remove("FAULTLINE_DELEGATE_HUB")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--hub"));
}

/// PyPI `toxiproxy-python` (`tests/toxiproxy-clients/python_client.py`).
#[tokio::test]
async fn the_python_client_drives_the_binary() {
    let Some(python) = client(".venv/bin/python") else {
        return;
    };
    let echo = Echo::start().await;
    let server = Server::start(&["--port", "0"], &[]).await;
    let mut cmd = Command::new(python);
    cmd.arg(clients_dir().join("python_client.py")).args([
        "127.0.0.1",
        server.port(),
        &echo.addr,
        "200",
    ]);
    let seen = run_client(cmd).await;
    assert_eq!(seen["running"], true, "{seen}");
    assert!(seen["version"]
        .as_str()
        .unwrap()
        .contains("2.12.0-faultline"));
    assert_eq!(seen["toxics_while"], json!(["latency_downstream"]));
    assert_eq!(seen["toxic_latency"], 200);
    assert_eq!(seen["toxics_after"], json!([]));
    assert_eq!(seen["proxies_after_destroy"], json!([]));
    assert_latency_seen(&seen, 200.0);
    assert_eq!(seen["client_populated"], json!(["py-pop-a", "py-pop-b"]));
    assert_eq!(seen["populate_status"], 201);
    assert_eq!(seen["populate_answer"], json!(["py-pop-a", "py-pop-c"]));
    assert_eq!(seen["populate_kept_listen"], true, "{seen}");
    // From the outside: what the client populated is there and forwards.
    let (_, all) = server.call("GET", "/proxies", None).await;
    let mut names: Vec<&String> = all.as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["py-pop-a", "py-pop-b", "py-pop-c"]);
    assert_eq!(all["py-pop-b"]["enabled"], false);
    let c = all["py-pop-c"]["listen"].as_str().unwrap();
    assert!(echo_rtt(c).await < Duration::from_millis(100));
    let (status, stderr) = server.stop(nix::sys::signal::Signal::SIGTERM).await;
    assert!(status.success(), "{stderr}");
}

/// npm `toxiproxy-node-client` (`tests/toxiproxy-clients/node_client.mjs`).
#[tokio::test]
async fn the_node_client_drives_the_binary() {
    if client("node_modules/toxiproxy-node-client/package.json").is_none() {
        return;
    }
    let echo = Echo::start().await;
    let server = Server::start(&["--port", "0"], &[]).await;
    let mut cmd = Command::new("node");
    cmd.current_dir(clients_dir()).args([
        "node_client.mjs",
        &format!("http://{}", server.addr),
        &echo.addr,
        "200",
    ]);
    let seen = run_client(cmd).await;
    assert_eq!(
        seen["toxic"],
        json!({"name": "node-latency", "type": "latency", "stream": "downstream", "toxicity": 1,
               "attributes": {"latency": 200, "jitter": 0}}),
        "{seen}"
    );
    assert_eq!(seen["listed_proxies"], json!(["node"]));
    assert_eq!(seen["listed_toxic_latency"], 200);
    assert_eq!(seen["toxics_after_remove"], json!([]));
    assert_eq!(seen["proxies_after_remove"], json!([]));
    assert_latency_seen(&seen, 200.0);
    assert_eq!(
        seen["populated"],
        json!({"node-pop-a": true, "node-pop-b": false})
    );
    let (_, all) = server.call("GET", "/proxies", None).await;
    assert_eq!(all["node-pop-a"]["enabled"], true, "{all}");
    assert!(all.get("node").is_none(), "{all}");
    let (status, stderr) = server.stop(nix::sys::signal::Signal::SIGTERM).await;
    assert!(status.success(), "{stderr}");
}

/// One HTTP/1.1 GET through `addr`; its duration.
async fn timed_get(addr: &str) -> Duration {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut resp))
        .await
        .expect("an answer through the proxy")
        .unwrap();
    assert!(
        resp.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&resp)
    );
    t.elapsed()
}

/// `chaos run` of `tests/toxiproxy-clients/experiment.json` (chaostoolkit-toxiproxy's actions):
/// the method creates a proxy and adds a 400 ms latency toxic, the rollback removes it. Checked
/// from the outside while it runs (the toxic in the API, a request through the proxy that takes
/// the latency) and after (no toxic, fast again), and in chaos's journal.
#[tokio::test]
async fn a_chaos_toolkit_experiment_adds_latency_and_its_rollback_removes_it() {
    let Some(chaos) = client(".venv/bin/chaos") else {
        return;
    };
    const LATENCY: u64 = 400;
    // JSON, since it says so: chaos's http probe parses what is labelled application/json.
    let web = HttpServer::answering(Answer::new(200, r#"{"ok": true}"#)).await;
    let upstream_port = web
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let server = Server::start(&["--port", "0"], &[]).await;
    let proxy_port = closed_port().await;
    let proxy = format!("127.0.0.1:{proxy_port}");
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.json");
    let log = std::fs::File::create(dir.path().join("chaos.out")).unwrap();
    let mut child = Command::new(chaos)
        .current_dir(dir.path())
        .arg("--no-version-check")
        .arg("run")
        .arg("--rollback-strategy=always")
        .arg(format!("--journal-path={}", journal.display()))
        .args(["--var", &format!("toxiproxy_port:int={}", server.port())])
        .args(["--var", &format!("upstream_port={upstream_port}")])
        .args(["--var", &format!("proxy_port={proxy_port}")])
        .args(["--var", &format!("latency_ms:int={LATENCY}")])
        .arg(clients_dir().join("experiment.json"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // While it runs: poll the API; once the toxic shows, time a request through the proxy.
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let mut during: Option<(Value, Duration)> = None;
    let status = loop {
        tokio::select! {
            st = child.wait() => break st.unwrap(),
            _ = tokio::time::sleep(Duration::from_millis(20)) => {
                assert!(Instant::now() < deadline, "chaos run did not end in {CLIENT_TIMEOUT:?}");
                if during.is_some() {
                    continue;
                }
                let (st, toxics) = server.call("GET", "/proxies/ctk/toxics", None).await;
                if st == 200 && toxics.as_array().is_some_and(|t| !t.is_empty()) {
                    during = Some((toxics, timed_get(&proxy).await));
                }
            }
        }
    };
    let out = std::fs::read_to_string(dir.path().join("chaos.out")).unwrap_or_default();
    assert!(status.success(), "chaos run failed ({status}):\n{out}");
    let (toxics, took) = during.expect("the toxic was seen in the API while the experiment ran");
    assert_eq!(toxics[0]["name"], "ctk-latency", "{toxics}");
    assert_eq!(toxics[0]["attributes"]["latency"], LATENCY, "{toxics}");
    assert!(
        took >= Duration::from_millis(LATENCY - 1),
        "a request through the proxy during the experiment took {took:?}"
    );

    // The journal: completed, no deviation, the probes' durations, the rollback done.
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&journal).unwrap()).unwrap();
    assert_eq!(j["status"], "completed", "{out}");
    assert_eq!(j["deviated"], false);
    let run = |name: &str| -> Value {
        j["run"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["activity"]["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in the journal: {}", j["run"]))
            .clone()
    };
    for name in [
        "create-proxy",
        "through-proxy-before-toxic",
        "add-latency-toxic",
        "through-proxy-with-toxic",
    ] {
        assert_eq!(run(name)["status"], "succeeded", "{}", run(name));
    }
    let before = ms(&run("through-proxy-before-toxic")["duration"]) * 1000.0;
    let with = ms(&run("through-proxy-with-toxic")["duration"]) * 1000.0;
    assert!(
        with >= LATENCY as f64 - 1.0,
        "probe with the toxic: {with} ms"
    );
    assert!(
        before < LATENCY as f64 / 2.0,
        "probe before the toxic: {before} ms"
    );
    assert_eq!(run("through-proxy-with-toxic")["output"]["status"], 200);
    let rollback = &j["rollbacks"][0];
    assert_eq!(rollback["activity"]["name"], "remove-latency-toxic");
    assert_eq!(rollback["status"], "succeeded");
    assert_eq!(
        rollback["output"], true,
        "the server answered the delete with 2xx"
    );
    eprintln!(
        "chaos run: http probe through the proxy {before:.1} ms before the toxic, {with:.1} ms with \
         it; a request from the test during the run {took:?}"
    );

    // After: the proxy stays, without the toxic, and is fast again.
    let (st, p) = server.call("GET", "/proxies/ctk", None).await;
    assert_eq!(st, 200);
    assert_eq!(p["listen"], proxy.as_str());
    assert_eq!(p["toxics"], json!([]), "the rollback removed the toxic");
    let after = timed_get(&proxy).await;
    assert!(after < Duration::from_millis(LATENCY / 2), "{after:?}");
    let (status, stderr) = server.stop(nix::sys::signal::Signal::SIGTERM).await;
    assert!(status.success(), "{stderr}");
}
