//! `faultline run`, the CI/CD gate, against a real hub, delegate and target: exit codes, the
//! abort on `--timeout` and on SIGINT (fault reverted), `--json`, and the JUnit report read by
//! the real PyPI `junitparser` (pinned in tests/toxiproxy-clients/requirements.txt).
use faultline_e2e::{bin, proc_state, Target, World};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

async fn api_token(w: &World) -> String {
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

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
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
        &["--template", "ok", "--version", "1", "--wait"],
    )
    .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("not supported by this hub yet"),
        "{}",
        o.stderr
    );
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
