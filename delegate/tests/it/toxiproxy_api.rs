//! The Toxiproxy-compatible API on a real socket, driven with the HTTP and JSON a Toxiproxy
//! client sends: paths, methods, bodies, status codes and error shapes of Toxiproxy 2.x, and the
//! effect on real connections. Also the Python `toxiproxy-python` client (see `toxiproxy_server`).
use crate::proxy::Echo;
use faultline_delegate::{
    faults::{Faults, RunCtx},
    journal::Journal,
    proxy::{api, Registry},
};
use faultline_experiment::{faults::FaultSpec, template::FaultStep, Dur};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// The API on a free port over `registry`; stopped (gracefully) when dropped.
struct Api {
    base: String,
    http: reqwest::Client,
    stop: watch::Sender<bool>,
    _task: JoinHandle<()>,
}

impl Api {
    async fn start(registry: Registry) -> Api {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(api::serve(l, registry, async move {
            let _ = stopped.wait_for(|s| *s).await;
        }));
        Api {
            base,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            stop,
            _task: task,
        }
    }

    /// Sends `method path` with an optional JSON body; returns the status and the JSON (or
    /// Null for an empty body).
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn rtt(s: &mut TcpStream) -> Duration {
    let t = Instant::now();
    s.write_all(&[9u8; 64]).await.unwrap();
    let mut buf = [0u8; 64];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    t.elapsed()
}

#[tokio::test]
async fn speaks_the_toxiproxy_api() {
    let echo = Echo::start().await;
    let api = Api::start(Registry::default()).await;

    let (st, v) = api.call("GET", "/version", None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(v["version"].as_str().unwrap().starts_with("2."), "{v}");

    // Create: 201 and the real listen address; a second time: 409.
    let create =
        json!({"name": "db", "listen": "127.0.0.1:0", "upstream": echo.addr, "enabled": true});
    let (st, p) = api.call("POST", "/proxies", Some(create.clone())).await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    assert_eq!(p["name"], "db");
    assert_eq!(p["upstream"], echo.addr.as_str());
    assert_eq!(p["enabled"], true);
    assert_eq!(p["toxics"], json!([]));
    let listen = p["listen"].as_str().unwrap().to_string();
    assert!(!listen.ends_with(":0"), "{listen}");
    let (st, e) = api.call("POST", "/proxies", Some(create)).await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(e, json!({"error": "proxy already exists", "status": 409}));
    let (st, e) = api
        .call("POST", "/proxies", Some(json!({"name": "x"})))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"], "missing required field: upstream");

    let (st, all) = api.call("GET", "/proxies", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(all["db"]["listen"], listen.as_str());
    let (st, e) = api.call("GET", "/proxies/nope", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(e, json!({"error": "proxy not found", "status": 404}));

    // A toxic, as clients send it; it reaches a connection opened before it.
    let mut s = TcpStream::connect(&listen).await.unwrap();
    assert!(rtt(&mut s).await < Duration::from_millis(50));
    let (st, t) = api
        .call(
            "POST",
            "/proxies/db/toxics",
            Some(json!({"type": "latency", "attributes": {"latency": 100, "jitter": 5}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{t}");
    assert_eq!(t["name"], "latency_downstream");
    assert_eq!(t["stream"], "downstream");
    assert_eq!(t["toxicity"], 1.0);
    assert_eq!(t["attributes"], json!({"latency": 100, "jitter": 5}));
    assert!(rtt(&mut s).await >= Duration::from_millis(95));
    let (st, _) = api
        .call(
            "POST",
            "/proxies/db/toxics",
            Some(json!({"type": "latency", "attributes": {}})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, e) = api
        .call(
            "POST",
            "/proxies/db/toxics",
            Some(json!({"type": "teleport"})),
        )
        .await;
    assert_eq!(
        (st, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid toxic type"))
    );
    let (st, e) = api
        .call(
            "POST",
            "/proxies/db/toxics",
            Some(json!({"type": "latency", "stream": "sideways"})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(
        e["error"],
        "stream was invalid, can be either upstream or downstream"
    );

    // Update merges attributes; show, list, delete.
    let (st, t) = api
        .call(
            "POST",
            "/proxies/db/toxics/latency_downstream",
            Some(json!({"attributes": {"latency": 200}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{t}");
    assert_eq!(t["attributes"], json!({"latency": 200, "jitter": 5}));
    assert!(rtt(&mut s).await >= Duration::from_millis(190));
    let (st, t) = api
        .call("GET", "/proxies/db/toxics/latency_downstream", None)
        .await;
    assert_eq!((st, t["type"].as_str()), (StatusCode::OK, Some("latency")));
    let (_, list) = api.call("GET", "/proxies/db/toxics", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (st, _) = api
        .call("DELETE", "/proxies/db/toxics/latency_downstream", None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, e) = api
        .call("DELETE", "/proxies/db/toxics/latency_downstream", None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(e, json!({"error": "toxic not found", "status": 404}));
    assert!(rtt(&mut s).await < Duration::from_millis(50));

    // Disable: listener and connections closed. Reset: enabled again, toxics gone.
    let (st, p) = api
        .call("POST", "/proxies/db", Some(json!({"enabled": false})))
        .await;
    assert_eq!((st, &p["enabled"]), (StatusCode::OK, &json!(false)));
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the connection is closed");
    assert!(TcpStream::connect(&listen).await.is_err());
    api.call(
        "POST",
        "/proxies/db/toxics",
        Some(json!({"type": "timeout", "attributes": {"timeout": 0}})),
    )
    .await;
    let (st, _) = api.call("POST", "/reset", None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, p) = api.call("GET", "/proxies/db", None).await;
    assert_eq!((&p["enabled"], &p["toxics"]), (&json!(true), &json!([])));
    let mut s = TcpStream::connect(&listen).await.unwrap();
    assert!(rtt(&mut s).await < Duration::from_millis(50));

    // Populate: keeps an unchanged proxy (and its connections), creates the new ones.
    let (st, v) = api
        .call(
            "POST",
            "/populate",
            Some(json!([
                {"name": "db", "listen": listen, "upstream": echo.addr},
                {"name": "cache", "listen": "127.0.0.1:0", "upstream": echo.addr}
            ])),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let names: Vec<&str> = v["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db", "cache"]);
    assert!(rtt(&mut s).await < Duration::from_millis(50));

    // Delete: 204, then 404.
    let (st, _) = api.call("DELETE", "/proxies/cache", None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = api.call("DELETE", "/proxies/cache", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    api.call("DELETE", "/proxies/db", None).await;
}

#[tokio::test]
async fn refuses_browsers_big_bodies_and_unknown_paths() {
    let api = Api::start(Registry::default()).await;
    let resp = api
        .http
        .get(format!("{}/proxies", api.base))
        .header("user-agent", "Mozilla/5.0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let big = json!({"name": "x".repeat(2 * 1024 * 1024), "upstream": "h:1"});
    let (st, _) = api.call("POST", "/proxies", Some(big)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = api.call("GET", "/nothing", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = api.call("PUT", "/proxies", None).await;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
    // A client that never finishes its headers does not hold the API up.
    let mut slow = TcpStream::connect(api.base.trim_start_matches("http://"))
        .await
        .unwrap();
    slow.write_all(b"GET /version HTTP/1.1\r\n").await.unwrap();
    let (st, _) = api.call("GET", "/version", None).await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn a_fault_step_adds_toxics_to_a_proxy_made_through_the_api() {
    let echo = Echo::start().await;
    let api = Api::start(Registry::global().clone()).await;
    let (st, p) = api
        .call(
            "POST",
            "/proxies",
            Some(json!({"name": "api-made", "listen": "127.0.0.1:0", "upstream": echo.addr})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let mut s = TcpStream::connect(p["listen"].as_str().unwrap())
        .await
        .unwrap();
    let spec = FaultSpec::parse(
        "steps[0]",
        &FaultStep {
            name: None,
            fault: "tcp-proxy".into(),
            weight: 1,
            target: json!({"proxy": "api-made"}),
            params: json!({"toxics": [{"type": "latency", "name": "step-lag",
                "attributes": {"latency": 100}}]}),
            duration: Some(Dur::secs(5)),
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let faults = Faults::new();
    let applied = faults
        .inject(
            &journal,
            &spec,
            RunCtx {
                run_id: "api-run",
                step: 0,
            },
        )
        .unwrap();
    let (_, list) = api.call("GET", "/proxies/api-made/toxics", None).await;
    assert_eq!(list[0]["name"], "step-lag");
    assert!(rtt(&mut s).await >= Duration::from_millis(100));
    faults.revert(&journal, &applied).unwrap();
    let (_, list) = api.call("GET", "/proxies/api-made/toxics", None).await;
    assert_eq!(list, json!([]));
    assert!(rtt(&mut s).await < Duration::from_millis(50));
    let (st, _) = api.call("DELETE", "/proxies/api-made", None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
}

/// The Python client `toxiproxy-python` (PyPI), from `tests/toxiproxy-clients/install.sh`.
#[tokio::test]
async fn the_python_toxiproxy_client_works_against_it() {
    let Some(python) = crate::toxiproxy_server::client(".venv/bin/python") else {
        return;
    };
    let echo = Echo::start().await;
    let api = Api::start(Registry::default()).await;
    let (host, port) = api
        .base
        .trim_start_matches("http://")
        .rsplit_once(':')
        .map(|(h, p)| (h.to_string(), p.to_string()))
        .unwrap();
    let script = format!(
        r#"
import socket, time
from toxiproxy import Toxiproxy
t = Toxiproxy()
t.update_api_consumer("{host}", {port})
assert t.running()
p = t.create(upstream="{up}", name="py")
h, port = p.listen.rsplit(":", 1)
s = socket.create_connection((h, int(port)), timeout=5)
def rtt():
    start = time.monotonic(); s.sendall(b"x" * 64); got = b""
    while len(got) < 64: got += s.recv(64)
    return time.monotonic() - start
assert rtt() < 0.05
p.add_toxic(type="latency", attributes={{"latency": 100}})
assert p.get_toxic("latency_downstream").attributes["latency"] == 100
assert rtt() >= 0.1
p.destroy_toxic("latency_downstream")
assert p.toxics() == {{}}
assert rtt() < 0.05
p.disable(); assert not t.get_proxy("py").enabled
t.reset(); assert t.get_proxy("py").enabled
t.populate([{{"name": "py2", "listen": "127.0.0.1:0", "upstream": "{up}"}}])
assert sorted(t.proxies()) == ["py", "py2"]
t.destroy_all(); assert t.proxies() == {{}}
print("ok")
"#,
        up = echo.addr
    );
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(python)
            .args(["-c", &script])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the client script ends within 30s")
    .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The whole delegate: `--toxiproxy-api` serves the API, a run's `tcp-proxy` step shows up in it
/// while it is held and is gone after, and shutdown closes the API.
#[tokio::test]
async fn the_delegate_serves_the_api_and_runs_tcp_proxy_steps() {
    use crate::fake_hub::{FakeHub, Mode, TOKEN};
    use clap::Parser;
    use faultline_delegate::config::Config;
    use faultline_proto::v1 as pb;

    let echo = Echo::start().await;
    let web = crate::helpers::HttpServer::start(200).await;
    let listen = format!("127.0.0.1:{}", crate::helpers::closed_port().await);
    let yaml = format!(
        r#"
apiVersion: faultline.dev/v1
kind: Experiment
metadata: {{name: proxy-step}}
hypothesis:
  probes:
    - name: web-ok
      http: {{url: "{url}"}}
      interval: 100ms
      timeout: 500ms
  recoverWithin: 2s
steps:
  - fault: tcp-proxy
    target: {{listen: "{listen}", upstream: "{up}"}}
    params:
      toxics:
        - {{type: latency, attributes: {{latency: 100}}}}
    duration: 1500ms
"#,
        url = web.url,
        up = echo.addr
    );
    let spec = faultline_experiment::parse_template(&yaml).unwrap();
    let hub = FakeHub::start(
        Mode::Normal,
        Some(pb::AssignRun {
            project: String::new(),
            run_id: "run-proxy".into(),
            spec_json: serde_json::to_string(&spec).unwrap(),
            template_name: "proxy-step".into(),
            template_version: 1,
            dry_run: false,
        }),
    )
    .await;
    let state = tempfile::tempdir().unwrap();
    let api_addr = format!("127.0.0.1:{}", crate::helpers::closed_port().await);
    let cfg = Config::try_parse_from([
        "faultline-delegate",
        "--hub",
        &hub.url(),
        "--token",
        TOKEN,
        "--state-dir",
        &state.path().display().to_string(),
        "--heartbeat-interval",
        "1s",
        "--toxiproxy-api",
        &api_addr,
    ])
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let delegate = tokio::spawn(faultline_delegate::run(cfg, async move {
        let _ = stopped.await;
    }));

    // While the step holds: the proxy adds its latency and the API lists it.
    let mut s = None;
    for _ in 0..200 {
        if let Ok(c) = TcpStream::connect(&listen).await {
            s = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut s = s.expect("the step's proxy listens");
    assert!(rtt(&mut s).await >= Duration::from_millis(100));
    let api = reqwest::Client::new();
    let all: Value = api
        .get(format!("http://{api_addr}/proxies"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        all["faultline-run-proxy-0"]["listen"],
        listen.as_str(),
        "{all}"
    );
    assert_eq!(all["faultline-run-proxy-0"]["toxics"][0]["type"], "latency");

    hub.wait_for(Duration::from_secs(15), "run.finished", |s| {
        s.finished("run-proxy")
    })
    .await;
    assert!(TcpStream::connect(&listen).await.is_err(), "reverted");
    // A proxy made through the API lives until the delegate stops.
    let made: Value = api
        .post(format!("http://{api_addr}/proxies"))
        .json(&json!({"name": "made-by-delegate-api", "listen": "127.0.0.1:0", "upstream": echo.addr}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let made_listen = made["listen"].as_str().unwrap().to_string();
    let mut c = TcpStream::connect(&made_listen).await.unwrap();
    assert!(rtt(&mut c).await < Duration::from_millis(50));
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), delegate)
        .await
        .expect("the delegate stops")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(&api_addr).await.is_err(),
        "the API is closed"
    );
    assert!(
        TcpStream::connect(&made_listen).await.is_err(),
        "the API stopped the proxy it made"
    );
}

#[test]
fn the_flag_and_its_variable() {
    use clap::Parser;
    use faultline_delegate::config::Config;
    let c = Config::try_parse_from([
        "faultline-delegate",
        "--hub",
        "http://x",
        "--toxiproxy-api",
        "127.0.0.1:8474",
    ])
    .unwrap();
    assert_eq!(c.toxiproxy_api, Some("127.0.0.1:8474".parse().unwrap()));
    assert!(Config::try_parse_from([
        "faultline-delegate",
        "--hub",
        "http://x",
        "--toxiproxy-api",
        "localhost"
    ])
    .is_err());
}
