//! The delegate's trust boundary (issue 13), end to end: a project **editor** tries each attack
//! of the issue against a real hub and real delegates, one started without `--allow` and one
//! with a strict allow-list. Each is refused with an error naming the entry the operator would
//! need, with nothing executed (a marker file stays absent), no secret received by a listener
//! the test runs, and no file content in any event, reason or log. Each also has its allowed
//! path (a delegate whose operator did allow it), so the test can fail.
use faultline_e2e::{Api, Delegate, World, TERMINAL};
use serde_json::{json, Value};
use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

const PASSWORD: &str = "a long test password";
/// The issue's strict delegate.
const STRICT: &[&str] = &[
    "--allow",
    "fault=process-kill",
    "--allow",
    "process=nosuchproc",
    "--allow",
    "path=/run/app",
    "--allow",
    "command=/bin/true",
    "--allow",
    "interface=eth9",
    "--allow",
    "netns=host",
    "--allow",
    "cidr=10.0.0.0/8",
    "--allow",
    "port=443",
];

/// An editor of `default`, signed in.
async fn editor(w: &World) -> Api {
    let email = "mallory@example.com";
    w.api
        .gql(
            "mutation($e: String!, $p: String!) { createUser(email: $e, password: $p) { user { id } } }",
            json!({"e": email, "p": PASSWORD}),
        )
        .await
        .unwrap();
    w.api
        .gql(
            "mutation($e: String!) { setMember(project: \"default\", email: $e, role: EDITOR) { role } }",
            json!({"e": email}),
        )
        .await
        .unwrap();
    let token = w.hub.login(email, PASSWORD).await.unwrap();
    w.hub.client(&token).unwrap()
}

fn template(name: &str, probe: &str, extra: &str) -> String {
    format!(
        "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata: {{name: {name}}}\nhypothesis:\n  probes:\n    - {probe}\n\
         steps:\n  - {{fault: process-kill, target: {{name: nosuchproc}}, duration: 1s}}\n{extra}"
    )
}

/// startRun must fail with INVALID_TEMPLATE; returns the message.
async fn refused_start(api: &Api, tid: &str, delegate: &str, dry: bool) -> String {
    let e = api
        .try_gql(
            "mutation($t: ID!, $d: String, $dry: Boolean) { startRun(templateId: $t, delegate: $d, dryRun: $dry) { id } }",
            json!({"t": tid, "d": delegate, "dry": dry}),
        )
        .await
        .unwrap()
        .expect_err("startRun must be refused");
    assert_eq!(e.extensions["code"], "INVALID_TEMPLATE", "{e}");
    e.message
}

async fn start(api: &Api, tid: &str, delegate: &str, dry: bool) -> String {
    let d = api
        .gql(
            "mutation($t: ID!, $d: String, $dry: Boolean) { startRun(templateId: $t, delegate: $d, dryRun: $dry) { id } }",
            json!({"t": tid, "d": delegate, "dry": dry}),
        )
        .await
        .unwrap();
    d["startRun"]["id"].as_str().unwrap().to_string()
}

/// Everything a user could read about a run, and the delegate's log, as one text.
fn everything(run: &Value, d: &Delegate) -> String {
    let log = std::fs::read_to_string(d.state_dir.with_extension("0.log")).unwrap_or_default();
    format!("{run}\n{log}")
}

/// A TCP listener that records every byte any connection sends (and answers each with
/// `reply`); counts connections.
struct Listener {
    port: u16,
    received: Arc<Mutex<Vec<u8>>>,
    connections: Arc<AtomicUsize>,
}

impl Listener {
    async fn start(reply: &'static [u8]) -> Listener {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (r, c) = (received.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    if let Ok(Ok(n)) =
                        tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await
                    {
                        r.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    let _ = s.write_all(reply).await;
                });
            }
        });
        Listener {
            port,
            received,
            connections,
        }
    }

    fn got(&self) -> String {
        String::from_utf8_lossy(&self.received.lock().unwrap()).into_owned()
    }
}

/// 1. A shell probe is refused where the operator allowed no shell (nothing runs), and its
///    output never reaches the run where a shell is allowed.
#[tokio::test]
async fn a_shell_probe_needs_the_operators_command_entry_and_its_output_stays_on_the_host() {
    let w = World::new().await.unwrap();
    let mallory = editor(&w).await;
    let open = w.delegate("open", &[], &[]).await.unwrap();
    let _strict = w.delegate("strict", &[], STRICT).await.unwrap();
    let marker = w.path("owned");
    let probe = format!(
        "{{name: own, mode: sot, command: {{shell: \"id > {}; head -c 40 /etc/shadow\"}}}}",
        marker.display()
    );
    let tid = mallory
        .create_template(&template("own-the-host", &probe, ""))
        .await
        .unwrap();
    for d in ["open", "strict"] {
        let why = refused_start(&mallory, &tid, d, false).await;
        assert!(
            why.contains(
                "hypothesis.probes[0].command.shell: program /bin/sh may not run on this host"
            ) && why.contains(&format!("refused by delegate {d}'s allow-list"))
                && why.contains("--allow command=/bin/sh"),
            "{why}"
        );
    }
    // The dashboard's editor asks the same question before saving.
    let checks = mallory
        .gql(
            "query($y: String!) { delegateChecks(yaml: $y) { delegate problems { field message hint line } } }",
            json!({"y": template("own-the-host", &probe, "")}),
        )
        .await
        .unwrap();
    let checks = checks["delegateChecks"].as_array().unwrap().clone();
    assert_eq!(checks.len(), 2, "{checks:?}");
    for c in &checks {
        assert!(
            c["problems"].as_array().unwrap().iter().any(|p| p["field"]
                == "hypothesis.probes[0].command.shell"
                && p["hint"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("--allow command=/bin/sh")
                && p["line"].as_i64().is_some()),
            "{c}"
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!marker.exists(), "nothing ran");
    // The refused attempts are in the audit log, with who, where and why.
    let log = w
        .api
        .gql(
            "{ auditLog(action: \"run.start\", outcome: \"error\") { entries { actor outcome project detail } } }",
            json!({}),
        )
        .await
        .unwrap();
    let entries = log["auditLog"]["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 2, "{log}");
    for e in &entries {
        assert_eq!(e["actor"], "user:mallory@example.com", "{e}");
        assert_eq!(e["outcome"], "error:INVALID_TEMPLATE", "{e}");
        assert!(
            e["detail"]["error"]
                .as_str()
                .unwrap_or_default()
                .contains("--allow command=/bin/sh"),
            "{e}"
        );
    }

    // Where the operator allowed the shell, it runs; what it printed stays on the host.
    let shell = w
        .delegate("shell", &[], &["--allow", "command=/bin/sh"])
        .await
        .unwrap();
    let run = start(&mallory, &tid, "shell", false).await;
    let r = w
        .api
        .wait_status(&run, TERMINAL, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(marker.exists(), "the allowed shell ran: {r}");
    let shadow = std::fs::read_to_string("/etc/shadow").unwrap_or_default();
    let all = everything(&r, &shell);
    assert!(
        !all.contains("root:"),
        "no /etc/shadow content anywhere: {all}"
    );
    if let Some(first) = shadow.lines().next().filter(|l| l.len() > 8) {
        assert!(!all.contains(first));
    }
    assert!(!everything(&Value::Null, &open).contains("root:"));
}

/// 2. A pid file pointing at a secret: refused where paths are listed; elsewhere it fails
///    saying the file holds no pid, without a byte of it.
#[tokio::test]
async fn a_pid_file_never_reads_a_file_back() {
    let w = World::new().await.unwrap();
    let mallory = editor(&w).await;
    let open = w.delegate("open", &[], &[]).await.unwrap();
    let _strict = w.delegate("strict", &[], STRICT).await.unwrap();
    let credential = open.state_dir.join("credential.json");
    let secret_text = std::fs::read_to_string(&credential).unwrap();
    for (i, file) in [
        "/etc/shadow".to_string(),
        credential.display().to_string(),
        "/proc/self/environ".into(),
    ]
    .iter()
    .enumerate()
    {
        let yaml = format!(
            "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata: {{name: read-{i}}}\nhypothesis:\n  probes:\n    - {{name: t, tcp: {{address: \"10.0.0.1:443\"}}}}\n\
             steps:\n  - {{fault: process-kill, target: {{pidFile: \"{file}\"}}, duration: 1s}}\n"
        );
        let tid = mallory.create_template(&yaml).await.unwrap();
        let why = refused_start(&mallory, &tid, "strict", true).await;
        assert!(
            why.contains("steps[0].target.pidFile: pid file")
                && why.contains(&format!("--allow path={file}")),
            "{why}"
        );
        let run = start(&mallory, &tid, "open", true).await;
        let r = w
            .api
            .wait_status(&run, TERMINAL, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(r["status"], "FAILED", "{r}");
        let reason = r["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("does not hold a pid"), "{reason}");
        let all = everything(&r, &open);
        for leak in ["root:", "fl_reg_", "fl_dlg_", "FAULTLINE_", "delegate_id"] {
            assert!(!reason.contains(leak), "{leak} in {reason}");
        }
        assert!(
            !all.contains(secret_text.trim()),
            "the credential leaked: {all}"
        );
        assert!(!all.contains("root:"), "{all}");
    }
}

/// 3. A redis password from the delegate's environment goes nowhere unless the operator listed
///    the variable (and the address): a listener run by the test receives nothing.
#[tokio::test]
async fn a_probe_sends_no_secret_the_operator_did_not_list() {
    let var = format!("MY_SECRET_{}", std::process::id());
    let secret = "s3cret-value-of-the-host";
    // Every delegate this test starts inherits it.
    std::env::set_var(&var, secret);
    let w = World::new().await.unwrap();
    let mallory = editor(&w).await;
    let _open = w.delegate("open", &[], &[]).await.unwrap();
    let _strict = w.delegate("strict", &[], STRICT).await.unwrap();
    let trap = Listener::start(b"+OK\r\n").await;
    let probe = format!(
        "{{name: cache, redis: {{address: \"127.0.0.1:{}\", passwordFromEnv: {var}}}, timeout: 1s}}",
        trap.port
    );
    let tid = mallory
        .create_template(&template("exfiltrate", &probe, ""))
        .await
        .unwrap();
    for d in ["open", "strict"] {
        let why = refused_start(&mallory, &tid, d, false).await;
        assert!(
            why.contains(&format!("hypothesis.probes[0].redis.passwordFromEnv: environment variable {var} may not be read"))
                && why.contains(&format!("--allow env={var}")),
            "{why}"
        );
    }
    let strict = refused_start(&mallory, &tid, "strict", false).await;
    assert!(
        strict.contains("hypothesis.probes[0].redis.address: connection to 127.0.0.1:")
            && strict.contains("not inside an allowed CIDR"),
        "probes obey the network allow-list: {strict}"
    );

    // A name cannot smuggle a refused address: the hub cannot resolve it, the delegate does.
    let by_name = format!(
        "{{name: cache, redis: {{address: \"localhost:{}\"}}, mode: sot, timeout: 1s}}",
        trap.port
    );
    let tid2 = mallory
        .create_template(&template("by-name", &by_name, ""))
        .await
        .unwrap();
    let cidr = w
        .delegate("cidr", &[], &["--allow", "cidr=10.0.0.0/8"])
        .await
        .unwrap();
    let run = start(&mallory, &tid2, "cidr", false).await;
    let r = w
        .api
        .wait_status(&run, TERMINAL, Duration::from_secs(30))
        .await
        .unwrap();
    let all = everything(&r, &cidr);
    assert!(
        all.contains("localhost: ") && all.contains("not inside an allowed CIDR"),
        "{r}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        trap.connections.load(Ordering::SeqCst),
        0,
        "nothing connected"
    );
    assert!(!trap.got().contains(secret));

    // The operator who lists the variable and the address lets it through: the test can fail.
    let port = format!("port={}", trap.port);
    let _allowed = w
        .delegate(
            "allowed",
            &[],
            &[
                "--allow",
                &format!("env={var}"),
                "--allow",
                "cidr=127.0.0.0/8",
                "--allow",
                &port,
            ],
        )
        .await
        .unwrap();
    let run = start(&mallory, &tid, "allowed", false).await;
    w.api
        .wait_status(&run, TERMINAL, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(
        trap.got().contains(secret),
        "AUTH reached the listed address"
    );
}

/// 4. No probe reaches link-local or metadata addresses unless listed, nor an address outside
///    the strict delegate's CIDRs; an action's redirect is re-checked before it is followed.
#[tokio::test]
async fn probes_and_actions_obey_the_network_allow_list_redirects_included() {
    let w = World::new().await.unwrap();
    let mallory = editor(&w).await;
    let open = w.delegate("open", &[], &[]).await.unwrap();
    let _strict = w.delegate("strict", &[], STRICT).await.unwrap();
    let api = Listener::start(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 40\r\nconnection: close\r\n\r\n{\"SecretAccessKey\": \"internal-abcdef12\"}",
    )
    .await;
    let meta = "{name: m, http: {url: \"http://169.254.169.254/latest/meta-data/iam\", expect: {json: [{pointer: /SecretAccessKey, equals: x}]}}}";
    let tid = mallory
        .create_template(&template("metadata", meta, ""))
        .await
        .unwrap();
    for d in ["open", "strict"] {
        let why = refused_start(&mallory, &tid, d, false).await;
        assert!(
            why.contains("hypothesis.probes[0].http.url: connection to 169.254.169.254:80: 169.254.169.254 is a link-local or cloud metadata address")
                && why.contains("--allow cidr=169.254.169.254/32"),
            "{why}"
        );
    }
    let internal = format!(
        "{{name: m, http: {{url: \"http://127.0.0.1:{}/\", expect: {{json: [{{pointer: /SecretAccessKey, equals: x}}]}}}}}}",
        api.port
    );
    let tid = mallory
        .create_template(&template("internal", &internal, ""))
        .await
        .unwrap();
    let why = refused_start(&mallory, &tid, "strict", false).await;
    assert!(
        why.contains("127.0.0.1 is not inside an allowed CIDR"),
        "{why}"
    );
    assert_eq!(api.connections.load(Ordering::SeqCst), 0);

    // A rollback whose URL redirects to the metadata address: the redirect is refused before
    // anything is dialled.
    let redirect = Listener::start(
        b"HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/latest/meta-data/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    )
    .await;
    let yaml = template(
        "redirected",
        &format!("{{name: up, tcp: {{address: \"127.0.0.1:{}\"}}}}", api.port),
        &format!(
            "rollbacks:\n  - http: {{url: \"http://127.0.0.1:{}/undo\", method: POST}}\n",
            redirect.port
        ),
    );
    let tid = mallory.create_template(&yaml).await.unwrap();
    let run = start(&mallory, &tid, "open", false).await;
    let r = w
        .api
        .wait_event(&run, "rollback.done", Duration::from_secs(30))
        .await
        .unwrap();
    let done = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "rollback.done")
        .unwrap()
        .clone();
    assert_eq!(done["payload"]["ok"], false, "{done}");
    let detail = done["payload"]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("redirect to http://169.254.169.254/") && detail.contains("link-local"),
        "{detail}"
    );
    assert_eq!(
        redirect.connections.load(Ordering::SeqCst),
        1,
        "the first hop was allowed"
    );

    // The allowed path: the open delegate reaches an ordinary address.
    let api =
        Listener::start(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
            .await;
    let internal = format!(
        "{{name: m, http: {{url: \"http://127.0.0.1:{}/\"}}}}",
        api.port
    );
    let tid = mallory
        .create_template(&template(
            "internal-ok",
            &internal.replace("{name: m,", "{name: m, mode: sot,"),
            "",
        ))
        .await
        .unwrap();
    let run = start(&mallory, &tid, "open", false).await;
    w.api
        .wait_status(&run, TERMINAL, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(api.connections.load(Ordering::SeqCst) >= 1, "the probe ran");
    drop(open);
}

/// The registration token is not on the delegate's command line, and no program it runs
/// inherits it (nor any other variable of the delegate).
#[tokio::test]
async fn the_registration_token_is_in_no_command_line_and_no_childs_environment() {
    let w = World::new().await.unwrap();
    let d = w
        .delegate("token", &[], &["--allow", "command=/bin/sh"])
        .await
        .unwrap();
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", d.proc.pid())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains("fl_reg_"));
    let probe = "{name: env, mode: sot, command: {shell: \"test -z \\\"$FAULTLINE_DELEGATE_TOKEN$FAULTLINE_DELEGATE_HUB\\\"\"}}";
    let yaml = template("env", probe, "");
    let tid = w.api.create_template(&yaml).await.unwrap();
    let run = w.api.start_run(&tid, "token").await.unwrap();
    let r = w
        .api
        .wait_event(&run, "probe.check", Duration::from_secs(30))
        .await
        .unwrap();
    let check = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "probe.check")
        .unwrap()
        .clone();
    assert_eq!(check["payload"]["ok"], true, "{check}");
}

/// A Kubernetes fault is refused at startRun, field by field, with the `namespace=` and
/// `k8s-kind=` entries the delegate's advertised allow-list lacks; nothing is queued.
#[tokio::test]
async fn start_run_names_the_kubernetes_entries_a_delegate_lacks() {
    let w = World::new().await.unwrap();
    let caps = faultline_proto::v1::Capabilities {
        faults: vec!["pod-delete".into(), "deployment-scale".into()],
        probes: vec!["tcp".into()],
        allow: vec!["namespace=other".into(), "k8s-kind=Deployment".into()],
    };
    let streams = faultline_e2e::loadgen::open_advertising(
        &w.api,
        &w.hub.ca,
        "k8s",
        1,
        1,
        Duration::from_secs(5),
        Some(caps),
    )
    .await
    .unwrap();
    let yaml = r#"apiVersion: faultline.dev/v1
kind: Experiment
metadata: {name: k8s-refused}
hypothesis:
  probes:
    - {name: port, tcp: {address: "127.0.0.1:1"}}
steps:
  - fault: pod-delete
    target: {namespace: shop, labelSelector: app=web, count: 1}
"#;
    let tid = w.api.create_template(yaml).await.unwrap();
    let err = w
        .api
        .try_gql(
            "mutation($t: ID!) { startRun(templateId: $t, delegate: \"k8s-0\") { id } }",
            json!({"t": tid}),
        )
        .await
        .unwrap()
        .expect_err("refused");
    assert_eq!(err.extensions["code"], "INVALID_TEMPLATE", "{err}");
    let errors = err.extensions["errors"].as_array().unwrap();
    let hint_of = |field: &str| {
        errors
            .iter()
            .find(|e| e["field"] == field)
            .and_then(|e| e["hint"].as_str())
            .unwrap_or_else(|| panic!("no {field} in {err}"))
            .to_string()
    };
    assert!(
        hint_of("steps[0].target.namespace").contains("--allow namespace=shop"),
        "{err}"
    );
    assert!(
        hint_of("steps[0].fault").contains("--allow k8s-kind=Pod"),
        "{err}"
    );
    // The kinds were advertised: only the allow-list refuses.
    assert_eq!(errors.len(), 2, "{err}");
    let runs = w.api.gql("{ runs { id } }", json!({})).await.unwrap();
    assert_eq!(runs["runs"], json!([]), "nothing was queued");
    streams.close().await;
}
