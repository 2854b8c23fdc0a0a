//! The hub's command-line clients against a real hub, delegate and target. The gate
//! `faultline run`: exit codes, the abort on `--timeout` and on SIGINT (fault reverted), `--json`,
//! the JUnit report read by the real PyPI `junitparser` (pinned in
//! tests/toxiproxy-clients/requirements.txt), `--version`, events over the WebSocket (a
//! resubscription after a cut, polling through a CONNECT proxy and with `--poll`). Then
//! `template apply/list` and `run list/show/abort`.
use faultline_e2e::{bin, proc_state, Hub, HubOpts, Target, World};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

pub(crate) async fn api_token(w: &World) -> String {
    let d = w
        .api
        .gql(
            "mutation { createApiToken(project: \"default\", name: \"ci\", role: EDITOR) { secret } }",
            json!({}),
        )
        .await
        .unwrap();
    d["createApiToken"]["secret"].as_str().unwrap().to_string()
}

/// The gate command for this world's hub, the token in the environment as docs/ci.md advises.
fn gate(w: &World, token: &str, args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(bin("faultline"));
    c.arg("run")
        .args(args)
        .env("FAULTLINE_HUB", &w.hub.url)
        .env("FAULTLINE_HUB_CA", &w.hub.ca)
        .env("FAULTLINE_TOKEN", token)
        .env("FAULTLINE_PROJECT", "default")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    c
}

pub(crate) struct Out {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

async fn run_gate(w: &World, token: &str, args: &[&str]) -> Out {
    let o = tokio::time::timeout(Duration::from_secs(120), gate(w, token, args).output())
        .await
        .expect("gate finished within 2 minutes")
        .unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
    }
}

fn venv_python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("toxiproxy-clients/.venv/bin/python")
}

/// Parses a JUnit file with junitparser: (suites, [(case name, "message|text" of its failure or
/// "")]). The venv comes from tests/toxiproxy-clients/install.sh: when it is missing this panics,
/// or returns `None` with `FAULTLINE_SKIP_TOXIPROXY_CLIENTS=1` (as the Toxiproxy client tests do).
fn junitparser(file: &Path) -> Option<(usize, Vec<(String, String)>)> {
    if !venv_python().exists()
        && std::env::var("FAULTLINE_SKIP_TOXIPROXY_CLIENTS").as_deref() == Ok("1")
    {
        eprintln!("skipped: junitparser is not installed and FAULTLINE_SKIP_TOXIPROXY_CLIENTS=1");
        return None;
    }
    let script = "import json, sys\nfrom junitparser import JUnitXml, Failure\nx = JUnitXml.fromfile(sys.argv[1])\n\
        suites = list(x)\ncases = []\nfor s in suites:\n    for c in s:\n        f = [r for r in c.result if isinstance(r, Failure)]\n\
        \x20       cases.append([c.name, (f[0].message or '') + '|' + (f[0].text or '') if f else ''])\n\
        print(json.dumps({'suites': len(suites), 'cases': cases}))\n";
    let o = std::process::Command::new(venv_python())
        .args(["-c", script])
        .arg(file)
        .output()
        .expect("junitparser's venv: run tests/toxiproxy-clients/install.sh");
    assert!(
        o.status.success(),
        "junitparser: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let cases = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c[0].as_str().unwrap().to_string(),
                c[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    Some((v["suites"].as_u64().unwrap() as usize, cases))
}

#[tokio::test]
async fn gate_exit_codes_json_and_junit() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let _d = w.delegate("gate-1", &["env=ci"], &[]).await.unwrap();
    // Its operator allows process-kill only: a process-pause template is invalid there.
    let _strict = w
        .delegate("strict", &[], &["--allow", "fault=process-kill"])
        .await
        .unwrap();
    let token = api_token(&w).await;
    w.api
        .create_template(&faultline_e2e::pause_template("ok", &target, "1s"))
        .await
        .unwrap();
    let closed = faultline_e2e::free_port().unwrap();
    let pf = format!("{{pidFile: {}}}", target.pid_file.display());
    w.api
        .create_template(&faultline_e2e::template(
            "closed",
            &format!("http://127.0.0.1:{closed}/"),
            "process-pause",
            &pf,
            "{}",
            "1s",
        ))
        .await
        .unwrap();

    // Passed: exit 0, --json on stdout, JUnit with one case per probe and per fault step.
    let junit = w.path("ok.xml");
    let o = run_gate(
        &w,
        &token,
        &[
            "--template",
            "ok",
            "--selector",
            "env=ci",
            "--wait",
            "--json",
            "--junit",
            junit.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    let j: Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(j["status"], "PASSED", "{j}");
    let id = j["id"].as_str().unwrap();
    assert_eq!(
        j["url"],
        format!("{}/p/default/runs/{id}", w.hub.url),
        "{j}"
    );
    assert!(j["score"].is_number(), "{j}");
    assert!(
        o.stderr.contains("fault.applied: process-pause (steps[0])"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("fault.reverted"), "{}", o.stderr);
    assert!(o.stderr.contains("verdict: PASSED"), "{}", o.stderr);
    assert!(!o.stderr.contains(&token), "the token is never printed");
    if let Some((suites, cases)) = junitparser(&junit) {
        assert_eq!(suites, 1);
        let names: Vec<&str> = cases.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(names, ["web-ok", "steps[0] process-pause"], "{cases:?}");
        assert!(cases.iter().all(|c| c.1.is_empty()), "{cases:?}");
    }

    eprintln!("{}", o.stderr);

    // A dry run passes with its planned fault as the step's case; without --wait: the id, exit 0.
    let junit = w.path("dry.xml");
    let o = run_gate(
        &w,
        &token,
        &[
            "--template",
            "ok",
            "--delegate",
            "gate-1",
            "--dry-run",
            "--wait",
            "--json",
            "--junit",
            junit.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stderr.contains("fault.planned: process-pause (steps[0])"),
        "{}",
        o.stderr
    );
    if let Some((_, cases)) = junitparser(&junit) {
        let planned = cases.iter().any(|c| c.0 == "steps[0] process-pause");
        assert!(planned, "{cases:?}");
    }
    let o = run_gate(
        &w,
        &token,
        &["--template", "ok", "--delegate", "gate-1", "--dry-run"],
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let id = o.stdout.trim();
    assert!(
        o.stderr.contains(&format!("/p/default/runs/{id}")),
        "{}",
        o.stderr
    );
    w.api
        .wait_status(id, faultline_e2e::TERMINAL, Duration::from_secs(30))
        .await
        .unwrap();

    // Passed but below --min-score: exit 1, saying why.
    let o = run_gate(
        &w,
        &token,
        &[
            "--template",
            "ok",
            "--delegate",
            "gate-1",
            "--wait",
            "--min-score",
            "101",
        ],
    )
    .await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("verdict: PASSED"), "{}", o.stderr);
    assert!(o.stderr.contains("below --min-score 101"), "{}", o.stderr);

    // Failed hypothesis (a probe on a closed port): exit 1, the failure in the JUnit report.
    let junit = w.path("closed.xml");
    let o = run_gate(
        &w,
        &token,
        &[
            "--template",
            "closed",
            "--delegate",
            "gate-1",
            "--wait",
            "--json",
            "--junit",
            junit.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    let j: Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(j["status"], "FAILED", "{j}");
    assert!(o.stderr.contains("check failed: web-ok"), "{}", o.stderr);
    if let Some((suites, cases)) = junitparser(&junit) {
        assert_eq!(suites, 1);
        let probe = cases.iter().find(|c| c.0 == "web-ok").expect("probe case");
        let reason = j["reason"].as_str().unwrap();
        assert!(
            probe.1.starts_with(reason),
            "failure message is the reason: {probe:?} / {reason}"
        );
        assert!(
            probe.1.contains("web-ok ("),
            "failing checks listed: {probe:?}"
        );
    }

    // Bad token and unknown template: exit 2, nothing started.
    let o = run_gate(&w, "not-a-token", &["--template", "ok", "--wait"]).await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(!o.stderr.contains("not-a-token"), "{}", o.stderr);
    let o = run_gate(
        &w,
        &token,
        &["--template", "nope", "--delegate", "gate-1", "--wait"],
    )
    .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("NOT_FOUND"), "{}", o.stderr);
    let o = run_gate(
        &w,
        &token,
        &["--template", "ok", "--delegate", "strict", "--wait"],
    )
    .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("INVALID_TEMPLATE"), "{}", o.stderr);
    let o = run_gate(
        &w,
        &token,
        &["--template", "ok", "--version", "9", "--wait"],
    )
    .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("version: the template has no version 9"),
        "{}",
        o.stderr
    );
}

/// `faultline ARGS` (a hub client other than the gate) against this world's hub, configured
/// by the environment as in a pipeline.
pub(crate) async fn client(w: &World, token: &str, args: &[&str]) -> Out {
    let mut c = tokio::process::Command::new(bin("faultline"));
    c.args(args)
        .env("FAULTLINE_HUB", &w.hub.url)
        .env("FAULTLINE_HUB_CA", &w.hub.ca)
        .env("FAULTLINE_TOKEN", token)
        .env("FAULTLINE_PROJECT", "default")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let o = tokio::time::timeout(Duration::from_secs(60), c.output())
        .await
        .expect("finished within a minute")
        .unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
    }
}

#[tokio::test]
async fn gate_pins_a_version_and_follows_events_over_websocket_or_by_polling() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let _d = w.delegate("gate-3", &[], &[]).await.unwrap();
    let token = api_token(&w).await;
    let id = w
        .api
        .create_template(&faultline_e2e::pause_template("pin", &target, "1s"))
        .await
        .unwrap();
    w.api
        .gql(
            "mutation($id: ID!, $y: String!) { updateTemplate(id: $id, yaml: $y) { version } }",
            json!({"id": id, "y": faultline_e2e::pause_template("pin", &target, "2s")}),
        )
        .await
        .unwrap();

    // Pinned to version 1 of 2, followed over the WebSocket: the same progress lines.
    let o = run_gate(
        &w,
        &token,
        &[
            "--template",
            "pin",
            "--version",
            "1",
            "--delegate",
            "gate-3",
            "--wait",
            "--json",
            "--verbose",
        ],
    )
    .await;
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    let j: Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(j["templateVersion"], 1, "{j}");
    let run = w
        .api
        .gql(
            "query($id: ID!) { run(id: $id) { templateVersion template { version } } }",
            json!({"id": j["id"]}),
        )
        .await
        .unwrap();
    assert_eq!(run["run"]["templateVersion"], 1, "{run}");
    assert!(
        o.stderr.contains("following events over WebSocket"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("by polling"), "{}", o.stderr);
    assert!(
        o.stderr.contains("fault.applied: process-pause (steps[0])"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("fault.reverted"), "{}", o.stderr);
    assert!(o.stderr.contains("verdict: PASSED"), "{}", o.stderr);

    // --poll: the latest version, the same lines, by polling.
    let o = run_gate(
        &w,
        &token,
        &[
            "--template",
            "pin",
            "--delegate",
            "gate-3",
            "--wait",
            "--json",
            "--poll",
            "--verbose",
        ],
    )
    .await;
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    let j: Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(j["templateVersion"], 2, "{j}");
    assert!(
        o.stderr.contains("following events by polling"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("over WebSocket"), "{}", o.stderr);
    assert!(
        o.stderr.contains("fault.applied: process-pause (steps[0])"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("verdict: PASSED"), "{}", o.stderr);
}

/// A minimal HTTP CONNECT proxy, as pipelines often have to use: every tunnel goes to 127.0.0.1
/// on the port asked for, whatever the host, so the hub's name is reachable only through it.
async fn connect_proxy() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if head.len() > 8192 || c.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let to = head.split_whitespace().nth(1).unwrap_or_default();
                let port = to.rsplit(':').next().unwrap_or_default();
                let Ok(mut up) = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await
                else {
                    return;
                };
                if c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .is_ok()
                {
                    let _ = tokio::io::copy_bidirectional(&mut c, &mut up).await;
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn gate_falls_back_to_polling_when_the_websocket_cannot_be_opened() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let _d = w.delegate("gate-4", &[], &[]).await.unwrap();
    let token = api_token(&w).await;
    w.api
        .create_template(&faultline_e2e::pause_template("proxied", &target, "1s"))
        .await
        .unwrap();
    // A second replica whose certificate names a host that only the proxy reaches: HTTPS goes
    // through HTTPS_PROXY, the WebSocket (no proxy support) cannot be opened.
    let name = "faultline-hub.invalid";
    let hub = Hub::start(
        &w.db,
        &w.path("hub-2"),
        HubOpts {
            extra: vec!["--tls-san".into(), name.into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let port = hub.addr.rsplit(':').next().unwrap();
    let proxy = connect_proxy().await;
    let mut c = gate(
        &w,
        &token,
        &[
            "--template",
            "proxied",
            "--delegate",
            "gate-4",
            "--wait",
            "--verbose",
            "--json",
        ],
    );
    c.env("FAULTLINE_HUB", format!("https://{name}:{port}"))
        .env("FAULTLINE_HUB_CA", &hub.ca)
        .env("HTTPS_PROXY", format!("http://127.0.0.1:{proxy}"))
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy");
    let o = tokio::time::timeout(Duration::from_secs(120), c.output())
        .await
        .expect("gate finished within 2 minutes")
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("following the run by polling"), "{stderr}");
    assert!(
        !stderr.contains("following events over WebSocket"),
        "{stderr}"
    );
    assert!(
        stderr.contains("fault.applied: process-pause (steps[0])"),
        "{stderr}"
    );
    assert!(stderr.contains("verdict: PASSED"), "{stderr}");
    let j: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(j["status"], "PASSED", "{j}");
}

/// A TCP forwarder to `to` whose open connections are all cut when `cut` is sent.
async fn cutting_forwarder(to: String) -> (u16, tokio::sync::broadcast::Sender<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (cut, _) = tokio::sync::broadcast::channel(1);
    let tx = cut.clone();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            let (to, mut rx) = (to.clone(), tx.subscribe());
            tokio::spawn(async move {
                let Ok(mut up) = tokio::net::TcpStream::connect(&to).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut c, &mut up) => {}
                    _ = rx.recv() => {}
                }
            });
        }
    });
    (port, cut)
}

#[tokio::test]
async fn gate_resubscribes_from_the_last_event_when_the_websocket_drops() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let _d = w.delegate("gate-5", &[], &[]).await.unwrap();
    let token = api_token(&w).await;
    w.api
        .create_template(&faultline_e2e::pause_template("cut", &target, "3s"))
        .await
        .unwrap();
    let (port, cut) = cutting_forwarder(w.hub.addr.clone()).await;
    let mut c = gate(
        &w,
        &token,
        &[
            "--template",
            "cut",
            "--delegate",
            "gate-5",
            "--wait",
            "--verbose",
        ],
    );
    c.env("FAULTLINE_HUB", format!("https://127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut all = String::new();
    while let Some(l) = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("a line within a minute")
        .unwrap()
    {
        all.push_str(&l);
        all.push('\n');
        if l.contains("fault.applied") {
            // Every connection through the forwarder dies, the event stream with them.
            cut.send(()).unwrap();
        }
    }
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "{all}");
    assert!(all.contains("resubscribing"), "{all}");
    assert!(
        all.contains("following events over WebSocket from seq "),
        "{all}"
    );
    assert!(!all.contains("by polling"), "{all}");
    for kind in [
        "run.started",
        "fault.applied",
        "fault.reverted",
        "run.recovered",
    ] {
        assert_eq!(
            all.matches(&format!("] {kind}")).count(),
            1,
            "{kind} once: {all}"
        );
    }
    assert!(all.contains("verdict: PASSED"), "{all}");
}

#[tokio::test]
async fn template_apply_list_and_run_list_show_abort() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let _d = w.delegate("cli-1", &[], &[]).await.unwrap();
    let token = api_token(&w).await;
    let app = w.path("app.yaml");
    let long = w.path("long.yaml");
    std::fs::write(&app, faultline_e2e::pause_template("app", &target, "1s")).unwrap();
    std::fs::write(&long, faultline_e2e::pause_template("long", &target, "60s")).unwrap();
    let (app_s, long_s) = (app.to_str().unwrap(), long.to_str().unwrap());

    // created → unchanged → updated (only the edited file gets a version).
    let o = client(&w, &token, &["template", "apply", "-f", app_s, long_s]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout, "created app v1\ncreated long v1\n");
    let o = client(&w, &token, &["template", "apply", "-f", app_s, long_s]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout, "unchanged app v1\nunchanged long v1\n");
    std::fs::write(&app, faultline_e2e::pause_template("app", &target, "2s")).unwrap();
    let o = client(&w, &token, &["template", "apply", "-f", app_s, long_s]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout, "updated app v2\nunchanged long v1\n");
    let o = client(&w, &token, &["template", "apply", "-f", app_s, "--json"]).await;
    let j: Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(j["action"], "unchanged", "{j}");
    assert_eq!(j["version"], 2, "{j}");

    // An invalid file: exit 2, each problem with the file, the hub's line and column, the field.
    let bad = w.path("bad.yaml");
    std::fs::write(
        &bad,
        faultline_e2e::pause_template("bad", &target, "1s")
            .replace("duration: 1s", "duration: soon"),
    )
    .unwrap();
    let o = client(
        &w,
        &token,
        &["template", "apply", "-f", bad.to_str().unwrap()],
    )
    .await;
    assert_eq!(o.code, 2, "{}\n{}", o.stdout, o.stderr);
    let line = o.stderr.lines().next().unwrap_or_default();
    let located = format!("{}:", bad.display());
    assert!(line.starts_with(&located), "{}", o.stderr);
    let place: Vec<&str> = line[located.len()..].splitn(3, ':').collect();
    assert!(
        place.len() == 3 && place[0].parse::<u32>().is_ok() && place[1].parse::<u32>().is_ok(),
        "FILE:LINE:COL: {line}"
    );
    assert!(line.contains("steps[0].duration"), "{line}");

    // template list: a table for people, JSON for scripts.
    let o = client(&w, &token, &["template", "list"]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.starts_with("NAME"), "{}", o.stdout);
    assert!(o.stdout.contains("app "), "{}", o.stdout);
    let o = client(&w, &token, &["template", "list", "--json"]).await;
    let ts: Value = serde_json::from_str(&o.stdout).unwrap();
    let versions: Vec<(String, i64)> = ts
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().into(),
                t["version"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(versions, [("app".into(), 2), ("long".into(), 1)], "{ts}");

    // A long run started without --wait, then shown by prefix and aborted.
    let o = run_gate(&w, &token, &["--template", "long", "--delegate", "cli-1"]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let id = o.stdout.trim().to_string();
    w.api
        .wait_event(&id, "fault.applied", Duration::from_secs(30))
        .await
        .unwrap();
    let o = client(&w, &token, &["run", "show", &id[..8], "--json"]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let r: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(r["id"], id.as_str(), "{r}");
    assert_eq!(r["status"], "RUNNING", "{r}");
    assert_eq!(r["template"]["name"], "long", "{r}");
    let o = client(&w, &token, &["run", "show", &id]).await;
    assert!(o.stdout.contains("status:   RUNNING"), "{}", o.stdout);
    let o = client(
        &w,
        &token,
        &["run", "abort", &id[..8], "--reason", "cli test", "--json"],
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let r: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(r["id"], id.as_str(), "{r}");
    let run = w
        .api
        .wait_status(&id, &["ABORTED"], Duration::from_secs(30))
        .await
        .unwrap();
    assert!(
        run["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("cli test"),
        "{run}"
    );
    assert_ne!(proc_state(target.pid()), Some('T'), "paused target resumed");

    // run list: filters by status and template; the table shows the id's prefix.
    let o = client(
        &w,
        &token,
        &["run", "list", "--status", "aborted", "--json"],
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let runs: Value = serde_json::from_str(&o.stdout).unwrap();
    let ids: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()], "{runs}");
    let o = client(&w, &token, &["run", "list", "--template", "app", "--json"]).await;
    assert_eq!(o.stdout.trim(), "[]", "{}", o.stderr);
    let o = client(&w, &token, &["run", "list", "--limit", "5"]).await;
    assert!(o.stdout.starts_with("ID "), "{}", o.stdout);
    assert!(o.stdout.contains(&id[..8]), "{}", o.stdout);
    let o = client(&w, &token, &["run", "show", "0000000000"]).await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    let o = client(&w, &token, &["run", "list", "--template", "nope"]).await;
    assert_eq!(o.code, 2, "{}", o.stderr);
}

#[tokio::test]
async fn gate_aborts_the_run_on_timeout_and_on_sigint_and_sigterm() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let _d = w.delegate("gate-2", &[], &[]).await.unwrap();
    let token = api_token(&w).await;
    w.api
        .create_template(&faultline_e2e::pause_template("long", &target, "60s"))
        .await
        .unwrap();

    // --timeout: exit 3, the run ABORTED on the hub, the target running again.
    let o = run_gate(
        &w,
        &token,
        &[
            "--template",
            "long",
            "--delegate",
            "gate-2",
            "--wait",
            "--timeout",
            "4s",
            "--json",
        ],
    )
    .await;
    assert_eq!(o.code, 3, "{}\n{}", o.stdout, o.stderr);
    let j: Value = serde_json::from_str(o.stdout.trim()).unwrap();
    let run = w.api.run(j["id"].as_str().unwrap()).await.unwrap();
    assert_eq!(run["status"], "ABORTED", "{run}");
    assert_ne!(proc_state(target.pid()), Some('T'), "paused target resumed");

    // A signal once the fault is applied: exit 130 / 143, the run ABORTED, the process resumed.
    interrupt_mid_run(&w, &token, &target, nix::sys::signal::Signal::SIGINT, 130).await;
    interrupt_mid_run(&w, &token, &target, nix::sys::signal::Signal::SIGTERM, 143).await;
}

/// Starts the gate on the "long" pause template, sends `sig` once the fault is applied, and
/// checks the exit code, the run ABORTED on the hub, and the target's process running again.
async fn interrupt_mid_run(
    w: &World,
    token: &str,
    target: &Target,
    sig: nix::sys::signal::Signal,
    code: i32,
) {
    let mut child = gate(
        w,
        token,
        &["--template", "long", "--delegate", "gate-2", "--wait"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let t0 = Instant::now();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut id = String::new();
    let (mut first_progress, mut run_started) = (None, None);
    loop {
        let l = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("progress within a minute")
            .unwrap()
            .expect("stderr open");
        if let Some(rest) = l.strip_prefix("run ") {
            run_started = Some(t0.elapsed());
            id = rest.split(' ').next().unwrap().to_string();
        }
        if l.starts_with('[') && first_progress.is_none() {
            first_progress = Some(t0.elapsed());
        }
        if l.contains("fault.applied") {
            break;
        }
    }
    eprintln!(
        "gate: run started after {run_started:?}, first progress line after {first_progress:?}"
    );
    let pid = target.pid();
    assert_eq!(proc_state(pid), Some('T'), "target paused by the run");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id().unwrap() as i32), sig).unwrap();
    let rest = tokio::spawn(async move {
        let mut all = String::new();
        while let Ok(Some(l)) = lines.next_line().await {
            all.push_str(&l);
            all.push('\n');
        }
        all
    });
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .unwrap()
        .unwrap();
    let stderr = rest.await.unwrap();
    assert_eq!(status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(&format!("{sig}: aborting run")), "{stderr}");
    let run = w.api.run(&id).await.unwrap();
    assert_eq!(run["status"], "ABORTED", "{run}");
    assert_ne!(
        proc_state(pid),
        Some('T'),
        "the paused process is running again"
    );
}
