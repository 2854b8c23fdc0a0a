//! Notifications (issue 17), end to end: a real hub and Postgres sending to a real HTTP receiver
//! on loopback (allowed with `--webhook-allow`). The signature verifies with the documented
//! Python code, a receiver failing twice gets one success and two recorded failures, pending
//! deliveries survive a SIGKILLed hub, a run's events arrive with their fields in the JSON,
//! Slack and Teams shapes, and secrets never come back from the API.
use faultline_e2e::{
    fresh_database, pause_template, receiver::Receiver, Hub, HubOpts, Target, World, TERMINAL,
};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const PUBLIC: &str = "https://chaos.example.com";

/// A world whose hub may send webhooks to loopback, retrying after `retry_base`.
async fn world(retry_base: &str) -> World {
    world_with(retry_base, &[]).await
}

/// [`world`] with more hub flags.
async fn world_with(retry_base: &str, extra: &[String]) -> World {
    let dir = tempfile::Builder::new()
        .prefix("faultline-e2e-")
        .tempdir()
        .unwrap();
    let db = fresh_database().await.unwrap();
    let mut o = opts(retry_base);
    o.extra.extend_from_slice(extra);
    let hub = Hub::start(&db, &dir.path().join("hub"), o).await.unwrap();
    let token = hub.admin_token.clone().unwrap();
    let api = hub.client(&token).unwrap();
    World {
        dir,
        db,
        hub,
        api,
        token,
    }
}

/// A `--secret-key-file` with one fresh key (outside the world's directory, which is not yet
/// made when the key is needed).
fn key_file() -> (tempfile::NamedTempFile, Vec<String>) {
    use std::io::Write;
    let mut f = tempfile::NamedTempFile::new().unwrap();
    let key: [u8; 32] = std::array::from_fn(|i| {
        (i as u8)
            .wrapping_mul(37)
            .wrapping_add(uuid::Uuid::new_v4().as_bytes()[i % 16])
    });
    writeln!(f, "# test key\n{}", base64_std(&key)).unwrap();
    let args = vec!["--secret-key-file".into(), f.path().display().to_string()];
    (f, args)
}

/// Standard base64 (the test crate has no base64 dependency).
fn base64_std(b: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn opts(retry_base: &str) -> HubOpts {
    HubOpts {
        extra: [
            "--webhook-allow",
            "127.0.0.0/8",
            "--webhook-retry-base",
            retry_base,
            "--webhook-timeout",
            "3s",
            "--public-url",
            PUBLIC,
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    }
}

const CREATE: &str = "mutation($url: String!, $events: [WebhookEvent!]!, $format: WebhookFormat!, $secret: String) { \
    createWebhook(url: $url, events: $events, format: $format, secret: $secret) { secret webhook { id url events format enabled } } }";

async fn create(w: &World, url: &str, events: &[&str], format: &str) -> (String, String) {
    let d = w
        .api
        .gql(
            CREATE,
            json!({"url": url, "events": events, "format": format}),
        )
        .await
        .unwrap();
    let c = &d["createWebhook"];
    (
        c["webhook"]["id"].as_str().unwrap().to_string(),
        c["secret"].as_str().unwrap().to_string(),
    )
}

async fn test_webhook(w: &World, id: &str) -> String {
    let d = w
        .api
        .gql(
            "mutation($id: ID!) { testWebhook(id: $id) { id state eventType } }",
            json!({"id": id}),
        )
        .await
        .unwrap();
    assert_eq!(d["testWebhook"]["eventType"], "webhook.test", "{d}");
    d["testWebhook"]["id"].as_str().unwrap().to_string()
}

const DELIVERIES: &str =
    "query($id: ID!) { webhookDeliveries(webhookId: $id, first: 200) { id eventId eventType state \
    attemptCount lastError data attempts { n status latencyMs response error } } }";

async fn deliveries(w: &World, webhook: &str) -> Vec<Value> {
    let d = w.api.gql(DELIVERIES, json!({"id": webhook})).await.unwrap();
    d["webhookDeliveries"].as_array().unwrap().clone()
}

/// Waits until every delivery of the webhook is in `state` and there are `n` of them.
async fn wait_deliveries(w: &World, webhook: &str, n: usize, state: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = deliveries(w, webhook).await;
        if d.len() == n && d.iter().all(|d| d["state"] == state) {
            return d;
        }
        assert!(Instant::now() < deadline, "not {n} {state}: {d:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The verification code of docs/notifications.md ("Python"), run by python3.
const VERIFY_PY: &str = r#"
import hashlib, hmac, sys, time

def verify(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(","))
    t = int(parts["t"])
    if abs(time.time() - t) > tolerance:
        return False  # too old (or from the future): a replay
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])

print("valid" if verify(sys.argv[1], sys.argv[2], sys.stdin.buffer.read()) else "invalid")
"#;

fn python_verify(secret: &str, header: &str, body: &[u8]) -> String {
    use std::io::Write;
    let mut c = std::process::Command::new("python3")
        .args(["-c", VERIFY_PY, secret, header])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(body).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn notifications_signature_verifies_and_secrets_never_come_back() {
    let (_key, key_args) = key_file();
    let w = world_with("1s", &key_args).await;
    let rx = Receiver::start().await.unwrap();
    let (id, secret) = create(
        &w,
        &rx.url("/hooks/faultline?token=abc"),
        &["RUN_FINISHED"],
        "JSON",
    )
    .await;
    assert!(
        secret.starts_with("whsec_") && secret.len() > 40,
        "{secret}"
    );

    let delivery = test_webhook(&w, &id).await;
    let got = rx.wait_for(1, Duration::from_secs(20)).await.unwrap();
    let r = &got[0];
    assert_eq!(r.path, "/hooks/faultline?token=abc");
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("x-faultline-event"), "webhook.test");
    assert_eq!(r.header("x-faultline-delivery"), delivery);
    assert_eq!(r.header("x-faultline-attempt"), "1");
    let sig = r.header("x-faultline-signature");
    assert!(sig.starts_with("t=") && sig.contains(",v1="), "{sig}");
    assert_eq!(python_verify(&secret, sig, &r.body), "valid");
    let mut tampered = r.body.clone();
    tampered.push(b' ');
    assert_eq!(python_verify(&secret, sig, &tampered), "invalid");
    assert_eq!(python_verify("whsec_wrong", sig, &r.body), "invalid");
    let body = r.json();
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(body["project"], "default");
    assert_eq!(body["id"], r.header("x-faultline-event-id"));

    let d = wait_deliveries(&w, &id, 1, "delivered").await;
    assert_eq!(d[0]["attempts"][0]["status"], 200, "{d:?}");
    assert_eq!(d[0]["attempts"][0]["response"], "ok");

    // The API has no field for the secret, shows the URL redacted, and the answers to every
    // webhook query and mutation never contain the secret.
    let err = w
        .api
        .try_gql("{ webhooks { secret } }", json!({}))
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.message.contains("secret"), "{err:?}");
    let list = w
        .api
        .gql(
            "{ webhooks { id url events format description enabled createdBy } }",
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(
        list["webhooks"][0]["url"],
        format!("http://127.0.0.1:{}/hooks/…", rx.port)
    );
    let updated = w
        .api
        .gql(
            "mutation($id: ID!) { updateWebhook(id: $id, description: \"ops\") { secret webhook { description } } }",
            json!({"id": id}),
        )
        .await
        .unwrap();
    assert_eq!(updated["updateWebhook"]["secret"], Value::Null);
    let answers = format!("{list}{updated}{d:?}");
    assert!(!answers.contains(&secret) && !answers.contains("token=abc"));

    // Rotation: a new secret, shown once, and the next request is signed with it.
    let rotated = w
        .api
        .gql(
            "mutation($id: ID!) { updateWebhook(id: $id, rotateSecret: true) { secret } }",
            json!({"id": id}),
        )
        .await
        .unwrap();
    let new_secret = rotated["updateWebhook"]["secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    test_webhook(&w, &id).await;
    let got = rx.wait_for(2, Duration::from_secs(20)).await.unwrap();
    let sig = got[1].header("x-faultline-signature");
    assert_eq!(python_verify(new_secret, sig, &got[1].body), "valid");

    // Neither the audit log nor the hub's log has a secret, and the database keeps it sealed.
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&w.db)
        .await
        .unwrap();
    let (stored,): (String,) = sqlx::query_as("SELECT secret FROM webhooks")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert!(
        stored.starts_with("enc:v1:") && !stored.contains(new_secret),
        "{stored}"
    );
    let audit: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, detail::text FROM audit_log WHERE action LIKE 'webhook.%' ORDER BY id",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(
        actions,
        [
            "webhook.create",
            "webhook.test",
            "webhook.update",
            "webhook.update",
            "webhook.test"
        ]
    );
    let text = format!("{audit:?}");
    assert!(!text.contains(&secret) && !text.contains(new_secret) && !text.contains("token=abc"));
    let log = std::fs::read_to_string(&w.hub.proc.log).unwrap();
    assert!(!log.contains(&secret) && !log.contains(new_secret));

    // Delete removes it (with its deliveries).
    w.api
        .gql(
            "mutation($id: ID!) { deleteWebhook(id: $id) }",
            json!({"id": id}),
        )
        .await
        .unwrap();
    let list = w.api.gql("{ webhooks { id } }", json!({})).await.unwrap();
    assert_eq!(list["webhooks"], json!([]));
}

#[tokio::test]
async fn notifications_receiver_failing_twice_gets_one_success_and_two_recorded_failures() {
    let w = world("300ms").await;
    let rx = Receiver::start().await.unwrap();
    rx.fail_next(&[500, 503]);
    let (id, _) = create(&w, &rx.url("/flaky"), &["RUN_ERROR"], "JSON").await;
    let delivery = test_webhook(&w, &id).await;

    let d = wait_deliveries(&w, &id, 1, "delivered").await;
    let statuses: Vec<&Value> = d[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status"])
        .collect();
    assert_eq!(statuses, [&json!(500), &json!(503), &json!(200)], "{d:?}");
    assert_eq!(d[0]["attemptCount"], 3);
    assert_eq!(d[0]["attempts"][0]["response"], "try again");
    // Nothing more arrives: exactly one success.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = rx.received();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got.iter().filter(|r| r.status == 200).count(), 1);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.header("x-faultline-delivery"), delivery);
        assert_eq!(r.header("x-faultline-attempt"), (i + 1).to_string());
    }
    // Backoff: the second retry waited longer than the first (300 ms, then 900 ms, ±25%).
    let gap1 = got[1].at - got[0].at;
    let gap2 = got[2].at - got[1].at;
    assert!(
        gap1 >= Duration::from_millis(200) && gap2 >= Duration::from_millis(650),
        "{gap1:?} {gap2:?}"
    );

    // Resend makes a new delivery of the same event, delivered once more.
    let r = w
        .api
        .gql(
            "mutation($id: ID!) { resendDelivery(id: $id) { id eventId state } }",
            json!({"id": delivery}),
        )
        .await
        .unwrap();
    assert_ne!(r["resendDelivery"]["id"], delivery);
    let d = wait_deliveries(&w, &id, 2, "delivered").await;
    assert_eq!(d[0]["eventId"], d[1]["eventId"]);
    let got = rx.wait_for(4, Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        got[3].header("x-faultline-event-id"),
        got[0].header("x-faultline-event-id")
    );
}

#[tokio::test]
async fn notifications_pending_deliveries_survive_a_sigkilled_hub() {
    let w = world("2s").await;
    // A port with nothing listening: every attempt is refused until the receiver starts.
    let port = {
        let rx = Receiver::start().await.unwrap();
        rx.port
    };
    let (id, secret) = create(
        &w,
        &format!("http://127.0.0.1:{port}/later"),
        &["PROJECT_HALTED"],
        "JSON",
    )
    .await;
    let mut sent = Vec::new();
    for _ in 0..3 {
        sent.push(test_webhook(&w, &id).await);
    }
    // Every delivery has failed once and waits for its retry.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let d = deliveries(&w, &id).await;
        // Failed once (recorded) and waiting, not in flight.
        let waiting = |d: &Value| d["state"] == "pending" && d["lastError"].is_string();
        if d.len() == 3 && d.iter().all(waiting) {
            assert!(
                d[0]["lastError"].as_str().unwrap().contains("connection"),
                "{d:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{d:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    w.hub.proc.signal(nix::sys::signal::Signal::SIGKILL);
    let rx = Receiver::start_on(port).await.unwrap();
    // Nothing is sent while no hub runs.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(rx.received().is_empty());

    // History older than 30 days, nothing pending: pruned when a hub starts.
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&w.db)
        .await
        .unwrap();
    sqlx::query(
        "WITH e AS (INSERT INTO webhook_events (project_id, kind, at, data) \
           SELECT project_id, 'webhook.test', now() - interval '31 days', '{}' FROM webhooks WHERE id = $1::uuid RETURNING id) \
         INSERT INTO webhook_deliveries (webhook_id, event_id, state, attempts) SELECT $1::uuid, e.id, 'delivered', 1 FROM e",
    )
    .bind(&id)
    .execute(&mut c)
    .await
    .unwrap();
    // The restarted hub has a --secret-key: it seals the secret kept as given, and signs with it.
    let (_key, key_args) = key_file();
    let mut o = opts("2s");
    o.extra.extend(key_args);
    let hub = Hub::start(&w.db, &w.path("hub-2"), o).await.unwrap();
    let api = hub.client(&w.token).unwrap();
    let got = rx.wait_for(3, Duration::from_secs(30)).await.unwrap();
    let mut ids: Vec<&str> = got
        .iter()
        .map(|r| r.header("x-faultline-delivery"))
        .collect();
    ids.sort();
    sent.sort();
    assert_eq!(ids, sent);
    // The receiver has the requests a moment before the hub records their answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d = api.gql(DELIVERIES, json!({"id": id})).await.unwrap();
        let d = d["webhookDeliveries"].as_array().unwrap().clone();
        if d.iter().all(|d| d["state"] == "delivered") {
            break;
        }
        assert!(Instant::now() < deadline, "{d:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rx.received().len(), 3, "each once");
    let (old,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM webhook_events WHERE at < now() - interval '30 days'")
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(old, 0, "old history pruned");
    let (stored,): (String,) = sqlx::query_as("SELECT secret FROM webhooks")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert!(
        stored.starts_with("enc:v1:") && !stored.contains(&secret),
        "{stored}"
    );
    let sig = got[0].header("x-faultline-signature");
    assert_eq!(python_verify(&secret, sig, &got[0].body), "valid");
}

#[tokio::test]
async fn notifications_run_events_arrive_in_json_slack_and_teams() {
    let w = world("1s").await;
    let rx = Receiver::start().await.unwrap();
    let (json_id, _) = create(
        &w,
        &rx.url("/json"),
        &["RUN_STARTED", "RUN_FINISHED"],
        "JSON",
    )
    .await;
    create(&w, &rx.url("/slack"), &["RUN_FINISHED"], "SLACK").await;
    create(&w, &rx.url("/teams"), &["RUN_FINISHED"], "TEAMS").await;
    let target = Target::start(w.dir.path()).await.unwrap();
    let _d = w.delegate("edge-1", &[], &[]).await.unwrap();
    let tid = w
        .api
        .create_template(&pause_template("pause-web", &target, "1s"))
        .await
        .unwrap();
    let run_id = w.api.start_run(&tid, "edge-1").await.unwrap();
    let run = w
        .api
        .wait_status(&run_id, TERMINAL, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(run["status"], "PASSED", "{run}");
    let got = rx.wait_for(4, Duration::from_secs(20)).await.unwrap();
    let at = |p: &str| {
        got.iter()
            .filter(|r| r.path == p)
            .cloned()
            .collect::<Vec<_>>()
    };
    let link = format!("{PUBLIC}/p/default/runs/{run_id}");

    let json = at("/json");
    let kinds: Vec<Value> = json.iter().map(|r| r.json()["type"].clone()).collect();
    assert_eq!(kinds, [json!("run.started"), json!("run.finished")]);
    let started = json[0].json();
    assert_eq!(started["data"]["runId"], run_id);
    assert_eq!(started["data"]["template"], "pause-web");
    assert_eq!(started["data"]["delegate"], "edge-1");
    assert_eq!(started["data"]["state"], "RUNNING");
    let finished = json[1].json();
    let f = &finished["data"];
    assert_eq!(f["runId"], run_id);
    assert_eq!(f["state"], "PASSED");
    assert_eq!(
        f["score"].as_f64(),
        run["resilienceScore"].as_f64(),
        "{finished}"
    );
    assert!(f["score"].is_number(), "{finished}");
    assert_eq!(f["recoveryMs"], run["recoveryMs"], "{finished}");
    assert_eq!(f["url"], link);
    assert_eq!(f["templateVersion"], 1);
    assert!(
        f["endedAt"].is_string() && f["verdictReason"].is_string(),
        "{finished}"
    );

    // Slack: text + blocks (header, context, section fields, a button to the run).
    let slack = at("/slack")[0].json();
    assert_eq!(slack["text"], "Run passed: pause-web");
    let blocks = slack["blocks"].as_array().unwrap();
    let types: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["header", "context", "section", "actions"]);
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    let fields = blocks[2]["fields"].as_array().unwrap();
    assert!(fields.len() <= 10 && fields.iter().all(|f| f["type"] == "mrkdwn"));
    assert!(
        fields.iter().any(|f| f["text"] == "*State*\nPASSED"),
        "{slack}"
    );
    assert_eq!(blocks[3]["elements"][0]["type"], "button");
    assert_eq!(blocks[3]["elements"][0]["url"], link);

    // Teams: a message whose one attachment is an Adaptive Card.
    let teams = at("/teams")[0].json();
    assert_eq!(teams["type"], "message");
    let a = &teams["attachments"][0];
    assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
    let card = &a["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    assert_eq!(card["body"][0]["type"], "TextBlock");
    assert_eq!(card["body"][0]["text"], "Run passed: pause-web");
    assert!(card["body"][2]["facts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["title"] == "Template" && f["value"] == "pause-web"));
    assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
    assert_eq!(card["actions"][0]["url"], link);

    let d = wait_deliveries(&w, &json_id, 2, "delivered").await;
    assert!(d
        .iter()
        .all(|d| d["attempts"].as_array().unwrap().len() == 1));
}

#[tokio::test]
async fn notifications_halt_disconnect_and_failed_fire_are_told() {
    let w = world("1s").await;
    let rx = Receiver::start().await.unwrap();
    create(
        &w,
        &rx.url("/ops"),
        &[
            "PROJECT_HALTED",
            "DELEGATE_DISCONNECTED",
            "SCHEDULE_FIRE_FAILED",
        ],
        "JSON",
    )
    .await;
    let target = Target::start(w.dir.path()).await.unwrap();
    let mut d = w.delegate("edge-9", &["zone=a"], &[]).await.unwrap();

    // A schedule whose runs can start nowhere: its fire fails.
    let yaml = format!(
        "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata: {{name: nowhere}}\nhypothesis:\n  probes:\n    \
         - {{name: web, mode: edge, http: {{url: \"{}\"}}, timeout: 2s}}\n",
        target.url()
    );
    let tid = w.api.create_template(&yaml).await.unwrap();
    let s = w
        .api
        .gql(
            "mutation($t: ID!) { createSchedule(templateId: $t, name: \"every-second\", cron: \"* * * * * *\", \
               timezone: \"UTC\", delegate: \"env=nowhere\", concurrency: FORBID) { id } }",
            json!({"t": tid}),
        )
        .await
        .unwrap();
    let sid = s["createSchedule"]["id"].as_str().unwrap().to_string();
    let first = rx.wait_for(1, Duration::from_secs(15)).await.unwrap();
    w.api
        .gql(
            "mutation($id: ID!) { pauseSchedule(id: $id) { id } }",
            json!({"id": sid}),
        )
        .await
        .unwrap();
    let fire = first[0].json();
    assert_eq!(fire["type"], "schedule.fire_failed", "{fire}");
    assert_eq!(fire["data"]["schedule"], "every-second");
    assert_eq!(fire["data"]["scheduleId"], sid);
    assert_eq!(fire["data"]["template"], "nowhere");
    assert!(
        fire["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("env=nowhere"),
        "{fire}"
    );
    assert!(fire["data"]["runId"].is_string(), "{fire}");

    // The delegate stops: its stream ends.
    d.proc.stop(Duration::from_secs(20)).await.unwrap();
    let gone = wait_type(&rx, "delegate.disconnected").await;
    assert_eq!(gone["data"]["delegate"], "edge-9");
    assert_eq!(gone["data"]["labels"], json!({"zone": "a"}));

    // Halt-all; halting again while halted is not news.
    for _ in 0..2 {
        w.api
            .gql(
                "mutation { haltAll(reason: \"game day over\") { halted } }",
                json!({}),
            )
            .await
            .unwrap();
    }
    let halted = wait_type(&rx, "project.halted").await;
    assert_eq!(halted["data"]["reason"], "game day over");
    assert_eq!(halted["data"]["haltedBy"], "user:admin@faultline.local");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let halts = rx
        .received()
        .iter()
        .filter(|r| r.header("x-faultline-event") == "project.halted")
        .count();
    assert_eq!(halts, 1);
}

/// Waits for the first request of this event type; returns its body.
async fn wait_type(rx: &Receiver, kind: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(r) = rx
            .received()
            .iter()
            .find(|r| r.header("x-faultline-event") == kind)
        {
            return r.json();
        }
        assert!(Instant::now() < deadline, "no {kind}: {:?}", rx.received());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn notifications_api_checks_roles_and_egress() {
    // The default policy: public addresses only.
    let w = World::new().await.unwrap();
    let err = w
        .api
        .try_gql(
            CREATE,
            json!({"url": "http://127.0.0.1:9/x", "events": ["RUN_ERROR"], "format": "JSON"}),
        )
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.extensions["code"], "BAD_USER_INPUT", "{err:?}");
    assert_eq!(err.extensions["field"], "url", "{err:?}");
    assert!(err.message.contains("--webhook-allow"), "{err:?}");
    for (vars, field) in [
        (
            json!({"url": "ftp://hooks.example.com/x", "events": ["RUN_ERROR"], "format": "JSON"}),
            "url",
        ),
        (
            json!({"url": "https://hooks.example.com/x", "events": [], "format": "JSON"}),
            "events",
        ),
        (
            json!({"url": "https://hooks.example.com/x", "events": ["RUN_ERROR"], "format": "JSON", "secret": "short"}),
            "secret",
        ),
    ] {
        let err = w.api.try_gql(CREATE, vars).await.unwrap().unwrap_err();
        assert_eq!(err.extensions["field"], field, "{err:?}");
    }
    let (id, _) = create(
        &w,
        "https://hooks.example.com/services/T0/B0/XYZ",
        &["RUN_ERROR"],
        "SLACK",
    )
    .await;

    // Editors read (the URL redacted), viewers do not; only owners change anything.
    let token = |role: &'static str| {
        let w = &w;
        async move {
            let d = w
                .api
                .gql(
                    "mutation($n: String!, $r: Role!) { createApiToken(project: \"default\", name: $n, role: $r) { secret } }",
                    json!({"n": role.to_lowercase(), "r": role}),
                )
                .await
                .unwrap();
            w.hub
                .client(d["createApiToken"]["secret"].as_str().unwrap())
                .unwrap()
        }
    };
    let editor = token("EDITOR").await;
    let viewer = token("VIEWER").await;
    let list = editor
        .gql("{ webhooks(project: \"default\") { id url } }", json!({}))
        .await
        .unwrap();
    assert_eq!(
        list["webhooks"][0]["url"],
        "https://hooks.example.com/services/…"
    );
    let err = viewer
        .try_gql("{ webhooks(project: \"default\") { id } }", json!({}))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.extensions["code"], "FORBIDDEN", "{err:?}");
    for m in [
        "mutation($id: ID!) { testWebhook(id: $id) { id } }",
        "mutation($id: ID!) { deleteWebhook(id: $id) }",
        "mutation($id: ID!) { updateWebhook(id: $id, rotateSecret: true) { secret } }",
    ] {
        let err = editor
            .try_gql(m, json!({"id": id}))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(err.extensions["code"], "FORBIDDEN", "{m}: {err:?}");
    }
    let err = editor
        .try_gql(
            "mutation { createWebhook(project: \"default\", url: \"https://a.example.com/h\", events: [RUN_ERROR]) { secret } }",
            json!({}),
        )
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.extensions["code"], "FORBIDDEN", "{err:?}");
}
