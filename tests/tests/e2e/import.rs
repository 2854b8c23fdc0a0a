//! Importing a Chaos Toolkit experiment over GraphQL: converted, stored like createTemplate
//! stores a template, read back, and run for real against a target; and a source that cannot be
//! converted gets one error listing every problem with its path.
use faultline_e2e::{Target, World, TERMINAL};
use serde_json::{json, Value};
use std::time::Duration;

const IMPORT: &str = "mutation($s: String!, $n: String) { \
    importTemplate(format: CHAOS_TOOLKIT, source: $s, name: $n) { \
      template { id name version yaml } yaml notes } }";
const CONVERT: &str = "query($s: String!) { \
    convertTemplate(format: CHAOS_TOOLKIT, source: $s) { yaml notes } }";

/// A Chaos Toolkit experiment: the target must answer 200 before and after a SIGTERM sent
/// through its pid file (taken from env configuration's default).
fn experiment(target: &Target) -> String {
    json!({
        "version": "1.0.0",
        "title": "Web comes back after SIGTERM",
        "description": "imported from Chaos Toolkit",
        "configuration": {
            "web_url": target.url(),
            "pid_file": {"type": "env", "key": "WEB_PID_FILE", "default": target.pid_file}
        },
        "steady-state-hypothesis": {
            "title": "web answers",
            "probes": [{
                "type": "probe",
                "name": "web-ok",
                "tolerance": 200,
                "provider": {"type": "http", "url": "${web_url}", "timeout": 1}
            }]
        },
        "method": [{
            "type": "action",
            "name": "terminate-web",
            "provider": {"type": "process", "path": "kill", "arguments": "-TERM $(cat ${pid_file})"},
            "pauses": {"after": 2}
        }]
    })
    .to_string()
}

fn notes(v: &Value) -> Vec<&str> {
    v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn import_template_stores_reads_back_and_runs() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let source = experiment(&target);

    // The dry conversion stores nothing.
    let dry = w.api.gql(CONVERT, json!({"s": source})).await.unwrap();
    let dry_yaml = dry["convertTemplate"]["yaml"].as_str().unwrap().to_string();
    assert!(dry_yaml.contains("pidFile: "), "{dry_yaml}");
    let listed = w.api.gql("{ templates { id } }", json!({})).await.unwrap();
    assert_eq!(listed["templates"], json!([]));

    let d = w.api.gql(IMPORT, json!({"s": source})).await.unwrap();
    let r = &d["importTemplate"];
    assert_eq!(r["template"]["name"], "web-comes-back-after-sigterm", "{r}");
    assert_eq!(r["template"]["version"], 1);
    assert_eq!(r["yaml"].as_str(), Some(dry_yaml.as_str()));
    assert_eq!(r["template"]["yaml"], r["yaml"]);
    assert_eq!(notes(r), notes(&dry["convertTemplate"]));
    assert!(
        notes(r)
            .iter()
            .any(|n| n.starts_with("steady-state-hypothesis: probes run in mode edge")),
        "{r}"
    );

    // Read back: the stored version is the converted YAML, created by the caller.
    let id = r["template"]["id"].as_str().unwrap().to_string();
    let t = w
        .api
        .gql(
            "query($id: ID!) { template(id: $id) { name version yaml versions { version createdBy } } }",
            json!({"id": id}),
        )
        .await
        .unwrap();
    assert_eq!(t["template"]["name"], "web-comes-back-after-sigterm");
    assert_eq!(t["template"]["version"], 1);
    assert_eq!(t["template"]["yaml"].as_str(), Some(dry_yaml.as_str()));
    assert_eq!(
        t["template"]["versions"],
        json!([{"version": 1, "createdBy": "user:admin@faultline.local"}])
    );

    // The same rules as createTemplate: a taken name is a conflict; another name is a new one.
    let e = w
        .api
        .try_gql(IMPORT, json!({"s": source}))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.extensions["code"], "CONFLICT", "{e}");
    let copy = w
        .api
        .gql(IMPORT, json!({"s": source, "n": "web-sigterm-copy"}))
        .await
        .unwrap();
    assert_eq!(
        copy["importTemplate"]["template"]["name"],
        "web-sigterm-copy"
    );

    // And it runs: the kill reads the pid file, the supervisor restarts the target, the probe
    // sees it answer again.
    let _d = w.delegate("edge-1", &[], &[]).await.unwrap();
    let before = target.pid();
    let run_id = w.api.start_run(&id, "edge-1").await.unwrap();
    let run = w
        .api
        .wait_status(&run_id, TERMINAL, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(run["status"], "PASSED", "{run}");
    assert_ne!(target.pid(), before, "the target was not killed: {run}");
    assert!(*target.restarts.lock().unwrap() >= 1);
    let applied = run["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "fault.applied")
        .unwrap_or_else(|| panic!("no fault.applied: {run}"));
    let detail = applied["payload"]["detail"].as_str().unwrap_or_default();
    let sent = format!("SIGTERM to pid file {}", target.pid_file.display());
    assert!(detail.starts_with(&sent), "{applied}");
}

#[tokio::test]
async fn import_problems_are_one_error_listing_each_path() {
    let w = World::new().await.unwrap();
    let source = include_str!("../../../experiment/tests/fixtures/chaostoolkit/bad-python.json");
    let paths = |e: &faultline_e2e::GqlError| -> Vec<String> {
        e.extensions["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["path"].as_str().unwrap().to_string())
            .collect()
    };
    let want = [
        "steady-state-hypothesis.probes[0].provider.type",
        "steady-state-hypothesis.probes[1].tolerance",
        // The fixture's http and sed actions map to action steps: only Python is refused.
        "method[0].provider.type",
    ];
    for query in [IMPORT, CONVERT] {
        let e = w
            .api
            .try_gql(query, json!({"s": source}))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(e.extensions["code"], "INVALID_IMPORT", "{e}");
        assert_eq!(e.extensions["field"], want[0], "{e}");
        assert_eq!(paths(&e), want, "{e}");
        assert_eq!(
            e.extensions["errors"][2]["message"],
            "provider type \"python\" cannot be mapped; Faultline runs http and process providers only, and the Kubernetes activities of chaosk8s"
        );
        assert!(e.message.starts_with("cannot import: "), "{e}");
    }

    // A name that is not a template name is named as the argument.
    let good = include_str!("../../../experiment/tests/fixtures/chaostoolkit/web-kill.json");
    let e = w
        .api
        .try_gql(IMPORT, json!({"s": good, "n": "Not A Name"}))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.extensions["code"], "INVALID_IMPORT", "{e}");
    assert_eq!(paths(&e), ["name"]);

    // Nothing was stored; both refusals are in the audit log as template creations.
    let listed = w.api.gql("{ templates { id } }", json!({})).await.unwrap();
    assert_eq!(listed["templates"], json!([]));
    let pool = sqlx::PgPool::connect(&w.db).await.unwrap();
    let audit: Vec<(String, String)> =
        sqlx::query_as("SELECT action, outcome FROM audit_log WHERE action <> 'login' ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        audit,
        [
            ("template.create".into(), "error:INVALID_IMPORT".into()),
            ("template.create".into(), "error:INVALID_IMPORT".into()),
        ]
    );
}
