//! The link against FakeHub: registration, Hello, runs over the stream, acks, replay after a
//! dropped stream, revocation, reconnecting at once after `GoingAway`; and the real binary's stdout line, exit codes and SIGTERM.
use crate::fake_hub::{FakeHub, Mode, CREDENTIAL, DELEGATE_ID, GOING_AWAY_STREAMS, TOKEN};
use crate::helpers::{
    assert_well_formed, eventually, proc_state, wait_until, HttpServer, TargetProc,
};
use clap::Parser;
use faultline_delegate::{config::Config, outbox::StoredEvent};
use faultline_experiment::events::{self, Verdict};
use faultline_proto::v1::{self as pb, delegate_message::Msg as DMsg};
use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};
use tokio::sync::oneshot;

fn assignment(run_id: &str, url: &str, target: &str, hold: &str) -> pb::AssignRun {
    let yaml = format!(
        r#"
apiVersion: faultline.dev/v1
kind: Experiment
metadata: {{name: link-test}}
hypothesis:
  probes:
    - name: web-ok
      http: {{url: "{url}"}}
      interval: 50ms
      timeout: 500ms
  recoverWithin: 2s
steps:
  - fault: process-pause
    target: {{name: {target}}}
    duration: {hold}
"#
    );
    let spec = faultline_experiment::parse_template(&yaml).unwrap();
    pb::AssignRun {
        project: String::new(),
        run_id: run_id.into(),
        spec_json: serde_json::to_string(&spec).unwrap(),
        template_name: "link-test".into(),
        template_version: 7,
        dry_run: false,
    }
}

fn config(hub: &FakeHub, state: &Path, token: Option<&str>) -> Config {
    let mut args = vec![
        "faultline-delegate".to_string(),
        "--hub".into(),
        hub.url(),
        "--name".into(),
        "it-delegate".into(),
        "--label".into(),
        "role=it".into(),
        "--state-dir".into(),
        state.display().to_string(),
        "--heartbeat-interval".into(),
        "1s".into(),
    ];
    if let Some(t) = token {
        args.extend(["--token".into(), t.into()]);
    }
    Config::try_parse_from(args).unwrap()
}

fn stored(events: &[pb::Event]) -> Vec<StoredEvent> {
    events
        .iter()
        .map(|e| StoredEvent {
            seq: e.seq,
            at_ms: e.at_ms,
            kind: e.kind.clone(),
            payload_json: e.payload_json.clone(),
        })
        .collect()
}

fn runs_dir_is_empty(state: &Path) -> bool {
    std::fs::read_dir(state.join("runs"))
        .map(|d| d.count() == 0)
        .unwrap_or(false)
}

struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

fn spawn_delegate(cfg: Config) -> Running {
    crate::helpers::init_logs();
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(faultline_delegate::run(cfg, async move {
        let _ = rx.await;
    }));
    Running { stop, task }
}

impl Running {
    async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("delegate did not stop")
            .unwrap()
    }
}

#[tokio::test]
async fn registers_runs_an_assignment_and_settles_its_events() {
    let server = HttpServer::start(200).await;
    let target = TargetProc::spawn();
    let hub = FakeHub::start(
        Mode::Normal,
        Some(assignment("run-link", &server.url, &target.name, "200ms")),
    )
    .await;
    let state = tempfile::tempdir().unwrap();

    let d = spawn_delegate(config(&hub, state.path(), Some(TOKEN)));
    hub.wait_for(Duration::from_secs(10), "run.finished", |s| {
        s.finished("run-link")
    })
    .await;
    eventually(Duration::from_secs(5), || runs_dir_is_empty(state.path())).await;
    hub.wait_for(Duration::from_secs(5), "a heartbeat", |s| s.heartbeats > 0)
        .await;
    d.shutdown().await.unwrap();

    let events = hub.stored("run-link");
    let fin = assert_well_formed(&stored(&events), &[5]);
    assert_eq!(fin.verdict, Verdict::Passed, "{fin:?}");
    {
        let seen = hub.seen.lock().unwrap();
        let reg = &seen.registrations[..];
        assert_eq!(reg.len(), 1);
        assert_eq!(reg[0].name, "it-delegate");
        assert_eq!(reg[0].labels.get("role").map(String::as_str), Some("it"));
        let caps = reg[0].capabilities.clone().unwrap();
        // Every kind this host can run (other families add kinds; netem may be missing).
        assert_eq!(
            caps.faults,
            faultline_delegate::faults::Faults::new().capabilities()
        );
        assert!(caps.faults.iter().any(|k| k == "process-kill"));
        // Every kind the spec knows, but `k8s`: no cluster is configured here.
        let probes: Vec<&str> = faultline_experiment::probes::KINDS
            .iter()
            .copied()
            .filter(|k| *k != "k8s")
            .collect();
        assert_eq!(caps.probes, probes, "every kind the spec knows");
        assert_eq!(seen.hellos[0].delegate_id, DELEGATE_ID);
        assert_eq!(seen.hellos[0].credential, CREDENTIAL);
        assert_eq!(seen.hellos[0].version, env!("CARGO_PKG_VERSION"));
        assert!(seen.hellos[0].inflight_runs.is_empty());
        assert!(
            matches!(&seen.others[..], [DMsg::RunAccepted(a)] if a.run_id == "run-link"),
            "{:?}",
            seen.others
        );
        // Nothing was sent twice on a healthy stream.
        assert_eq!(seen.events.len(), events.len());
    }
    let cred = std::fs::read_to_string(state.path().join("credential.json")).unwrap();
    assert!(cred.contains(DELEGATE_ID));

    // A restart uses the stored credential: no token, no second registration.
    let d = spawn_delegate(config(&hub, state.path(), None));
    hub.wait_for(Duration::from_secs(10), "a second Hello", |s| {
        s.hellos.len() == 2
    })
    .await;
    d.shutdown().await.unwrap();
    assert_eq!(hub.seen.lock().unwrap().registrations.len(), 1);
}

#[tokio::test]
async fn unacknowledged_events_are_replayed_after_the_stream_drops() {
    let server = HttpServer::start(200).await;
    let target = TargetProc::spawn();
    let hub = FakeHub::start(
        Mode::DropFirstStream,
        Some(assignment("run-replay", &server.url, &target.name, "100ms")),
    )
    .await;
    let state = tempfile::tempdir().unwrap();
    let d = spawn_delegate(config(&hub, state.path(), Some(TOKEN)));
    hub.wait_for(Duration::from_secs(10), "a second stream", |s| {
        s.hellos.len() >= 2
    })
    .await;
    eventually(Duration::from_secs(5), || runs_dir_is_empty(state.path())).await;
    d.shutdown().await.unwrap();

    let events = hub.stored("run-replay");
    let n = events.len();
    assert_well_formed(&stored(&events), &[5]);
    let seen = hub.seen.lock().unwrap();
    assert_eq!(
        seen.hellos[1].inflight_runs,
        vec!["run-replay".to_string()],
        "the run is still in flight"
    );
    // Everything went twice: once unacknowledged, then again from seq 1.
    assert_eq!(
        seen.events.len(),
        2 * n,
        "{} events for {n} seqs",
        seen.events.len()
    );
    let replay: Vec<u64> = seen.events[n..].iter().map(|e| e.seq).collect();
    assert_eq!(replay, (1..=n as u64).collect::<Vec<_>>());
}

/// A replica shutting down says `GoingAway`: the delegate reconnects at once, however often,
/// instead of backing off (five short-lived streams in a row would otherwise wait
/// 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s at the least).
#[tokio::test]
async fn going_away_reconnects_at_once_without_backoff() {
    let hub = FakeHub::start(Mode::GoingAway, None).await;
    let state = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let d = spawn_delegate(config(&hub, state.path(), Some(TOKEN)));
    hub.wait_for(
        Duration::from_secs(10),
        "a stream after the going-aways",
        |s| s.hellos.len() > GOING_AWAY_STREAMS,
    )
    .await;
    let took = started.elapsed();
    d.shutdown().await.unwrap();
    assert!(
        took < Duration::from_millis(1500),
        "{} streams took {took:?}",
        GOING_AWAY_STREAMS + 1
    );
}

/// Several replicas' addresses and no balancer: whichever address the delegate starts at, a
/// refused one and a replica going away each send it on to the next address at once, and it
/// settles on the replica that keeps it.
#[tokio::test]
async fn with_several_hub_addresses_it_moves_on_to_the_next_at_once() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let leaving = FakeHub::start(Mode::GoingAway, None).await;
    let staying = FakeHub::start(Mode::Normal, None).await;
    for round in 0..3 {
        let state = tempfile::tempdir().unwrap();
        let mut cfg = config(&staying, state.path(), Some(TOKEN));
        cfg.hubs = vec![dead.clone(), leaving.url(), staying.url()];
        let before = staying.seen.lock().unwrap().hellos.len();
        let started = std::time::Instant::now();
        let d = spawn_delegate(cfg);
        staying
            .wait_for(
                Duration::from_secs(10),
                "a stream on the staying replica",
                |s| s.hellos.len() > before,
            )
            .await;
        let took = started.elapsed();
        // Held there: no further Hello anywhere for two heartbeats.
        let (on_leaving, on_staying) = (
            leaving.seen.lock().unwrap().hellos.len(),
            staying.seen.lock().unwrap().hellos.len(),
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(leaving.seen.lock().unwrap().hellos.len(), on_leaving);
        assert_eq!(staying.seen.lock().unwrap().hellos.len(), on_staying);
        d.shutdown().await.unwrap();
        // The slowest start (the refused address, then the leaving replica) takes two moves
        // of at most 100 ms jitter each, with no backoff.
        assert!(
            took < Duration::from_millis(1500),
            "round {round}: on the staying replica after {took:?}"
        );
    }
}

#[tokio::test]
async fn connects_over_tls_with_the_hub_ca_and_refuses_an_unknown_certificate() {
    let (hub, ca_pem) = FakeHub::start_tls(Mode::Normal).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("hub-ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();

    // Without the CA, the webpki roots do not trust the hub: the delegate keeps retrying.
    let state = dir.path().join("untrusting");
    let d = spawn_delegate(config(&hub, &state, Some(TOKEN)));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(hub.seen.lock().unwrap().registrations.is_empty());
    d.shutdown().await.unwrap();

    let state = dir.path().join("trusting");
    let mut cfg = config(&hub, &state, Some(TOKEN));
    cfg.hub_ca = Some(ca);
    let d = spawn_delegate(cfg);
    hub.wait_for(Duration::from_secs(10), "a Hello over TLS", |s| {
        s.hellos.len() == 1
    })
    .await;
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_revoked_delegate_stops_and_forgets_its_credential() {
    let hub = FakeHub::start(Mode::Revoke, None).await;
    let state = tempfile::tempdir().unwrap();
    let d = spawn_delegate(config(&hub, state.path(), Some(TOKEN)));
    let res = tokio::time::timeout(Duration::from_secs(10), d.task)
        .await
        .unwrap()
        .unwrap();
    let err = res.unwrap_err().to_string();
    assert!(err.contains("revoked by a test"), "{err}");
    assert!(!state.path().join("credential.json").exists());
}

#[tokio::test]
async fn a_bad_token_is_fatal_with_a_clear_message() {
    let hub = FakeHub::start(Mode::Normal, None).await;
    let state = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking({
        let (url, dir) = (hub.url(), state.path().to_path_buf());
        move || {
            Command::new(env!("CARGO_BIN_EXE_faultline-delegate"))
                .args(["--hub", &url, "--name", "it-bad", "--state-dir"])
                .arg(&dir)
                .env("FAULTLINE_DELEGATE_TOKEN", "fl_reg_wrong")
                .env("FAULTLINE_LOG", "warn")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("registration token is invalid, expired or already used"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("fl_reg_wrong"),
        "the token must not be printed: {stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn the_binary_announces_itself_and_reverts_on_sigterm() {
    let server = HttpServer::start(200).await;
    let target = TargetProc::spawn();
    let hub = FakeHub::start(
        Mode::Normal,
        Some(assignment("run-term", &server.url, &target.name, "30s")),
    )
    .await;
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultline-delegate"))
        .args(["--hub", &hub.url(), "--name", "it-bin", "--state-dir"])
        .arg(state.path())
        .env("FAULTLINE_DELEGATE_TOKEN", TOKEN)
        .env("FAULTLINE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    assert_eq!(
        line.trim_end(),
        format!("faultline-delegate connected delegate_id={DELEGATE_ID}")
    );

    let pid = target.pid();
    tokio::task::spawn_blocking(move || {
        wait_until(Duration::from_secs(10), || proc_state(pid) == 'T')
    })
    .await
    .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut err = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut err);
        (status, err)
    })
    .await
    .unwrap();
    assert!(
        status.0.success(),
        "exit {:?}, stderr: {}",
        status.0,
        status.1
    );
    assert!(
        matches!(proc_state(target.pid()), 'S' | 'R'),
        "the pause was reverted"
    );
    // The final events reached the hub before the delegate exited.
    let events = hub.stored("run-term");
    let fin = assert_well_formed(&stored(&events), &[5]);
    assert_eq!(fin.verdict, Verdict::Error);
    assert_eq!(
        fin.reason,
        "the delegate shut down mid-run; faults reverted"
    );
    assert!(events.iter().any(|e| e.kind == events::FAULT_REVERTED));
    assert!(
        runs_dir_is_empty(state.path()),
        "everything was acknowledged"
    );
}

/// The idle footprint: what the delegate itself allocates (anonymous resident memory) stays
/// under 4 MiB while idle and connected. The file-backed rest of its resident set is the
/// binary's code, which in this debug build alone is over 13 MiB; the release total (target
/// < 15 MiB, measured 8.7 MiB) is `faultline-bench`'s to report.
#[tokio::test]
async fn idle_rss_stays_small() {
    let hub = FakeHub::start(Mode::Normal, None).await;
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultline-delegate"))
        .args(["--hub", &hub.url(), "--name", "it-rss", "--state-dir"])
        .arg(state.path())
        .env("FAULTLINE_DELEGATE_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
    })
    .await
    .unwrap();
    hub.wait_for(Duration::from_secs(5), "a heartbeat", |s| s.heartbeats > 0)
        .await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let kib = |field: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    let (total, anon) = (kib("VmRSS:"), kib("RssAnon:"));
    assert!(
        anon < 4 * 1024,
        "idle anonymous RSS is {anon} KiB (total {total} KiB)"
    );
}
