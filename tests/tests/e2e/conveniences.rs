//! API conveniences for people and scripts: `startRun` by template name, `run(id:)` by the
//! 8-character prefix the dashboard shows, and audit entries that say which run was started
//! or aborted and why.
use faultline_e2e::{Target, World};
use serde_json::json;
use std::time::Duration;

const START_BY_NAME: &str = "mutation($n: String, $p: String, $id: ID, $d: String) { \
    startRun(template: $n, project: $p, templateId: $id, delegate: $d, dryRun: true) { id template { name } } }";

#[tokio::test]
async fn start_run_takes_a_template_name_and_refuses_unclear_input_naming_the_field() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let _d = w.delegate("conv-1", &["env=web"], &[]).await.unwrap();
    let tid = w
        .api
        .create_template(&faultline_e2e::pause_template("by-name", &target, "1s"))
        .await
        .unwrap();

    // By name, in the default project and in a named one.
    for p in [None, Some("default")] {
        let d = w
            .api
            .gql(
                START_BY_NAME,
                json!({"n": "by-name", "p": p, "d": "conv-1"}),
            )
            .await
            .unwrap();
        assert_eq!(d["startRun"]["template"]["name"], "by-name", "{d}");
        let id = d["startRun"]["id"].as_str().unwrap().to_owned();
        w.api
            .wait_status(&id, faultline_e2e::TERMINAL, Duration::from_secs(30))
            .await
            .unwrap();
    }

    let refused = |vars: serde_json::Value| {
        let api = &w.api;
        async move { api.try_gql(START_BY_NAME, vars).await.unwrap().unwrap_err() }
    };
    let e = refused(json!({"n": "nope", "d": "conv-1"})).await;
    assert_eq!(e.extensions["code"], "NOT_FOUND", "{e}");
    assert!(e.message.contains("\"nope\""), "{e}");
    let e = refused(json!({"n": "by-name", "id": tid, "d": "conv-1"})).await;
    assert!(e.message.starts_with("template: "), "both given: {e}");
    let e = refused(json!({"d": "conv-1"})).await;
    assert!(e.message.starts_with("templateId: "), "neither given: {e}");
    let e = refused(json!({"id": tid, "p": "default", "d": "conv-1"})).await;
    assert!(
        e.message.starts_with("project: "),
        "project with an id: {e}"
    );
    let e = refused(json!({"n": "by-name", "p": "no-such-project", "d": "conv-1"})).await;
    assert_eq!(e.extensions["code"], "NOT_FOUND", "{e}");
}

#[tokio::test]
async fn a_run_is_found_by_a_unique_prefix_of_its_id() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let _d = w.delegate("conv-2", &["env=web"], &[]).await.unwrap();
    let tid = w
        .api
        .create_template(&faultline_e2e::pause_template("prefix", &target, "1s"))
        .await
        .unwrap();
    let id = w.api.start_run(&tid, "conv-2").await.unwrap();
    let q = "query($id: ID!) { run(id: $id) { id } }";
    for prefix in [&id[..8], &id[..8].to_uppercase(), &id[..13], id.as_str()] {
        let d = w.api.gql(q, json!({"id": prefix})).await.unwrap();
        assert_eq!(d["run"]["id"], id.as_str(), "{prefix}");
    }
    let e = w
        .api
        .try_gql(q, json!({"id": &id[..7]}))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        e.message.starts_with("id: ") && e.message.contains("at least 8 hex digits"),
        "{e}"
    );
    // A prefix no run has.
    let other = if id.starts_with('0') {
        "11111111"
    } else {
        "00000000"
    };
    let e = w
        .api
        .try_gql(q, json!({"id": other}))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.extensions["code"], "NOT_FOUND", "{e}");

    // Two runs sharing a prefix (ids are random: copy the run under an id with the same first
    // 8 digits), and a caller is told to give more digits.
    w.api
        .wait_status(&id, faultline_e2e::TERMINAL, Duration::from_secs(30))
        .await
        .unwrap();
    let forged = format!("{}-ffff-4fff-8fff-ffffffffffff", &id[..8]);
    let pool = sqlx::PgPool::connect(&w.db).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("CREATE TEMP TABLE twin ON COMMIT DROP AS SELECT * FROM runs WHERE id = $1::uuid")
        .bind(&id)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE twin SET id = $1::uuid")
        .bind(&forged)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("INSERT INTO runs SELECT * FROM twin")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let e = w
        .api
        .try_gql(q, json!({"id": &id[..8]}))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        e.message.starts_with("id: ") && e.message.contains("more than one run"),
        "{e}"
    );
    // More digits tell them apart.
    let d = w.api.gql(q, json!({"id": &forged[..13]})).await.unwrap();
    assert_eq!(d["run"]["id"], forged.as_str());
}

#[tokio::test]
async fn the_audit_log_names_the_run_started_and_the_reason_of_an_abort() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let _d = w.delegate("conv-3", &["env=web"], &[]).await.unwrap();
    let tid = w
        .api
        .create_template(&faultline_e2e::pause_template("audited", &target, "30s"))
        .await
        .unwrap();
    let id = w.api.start_run(&tid, "conv-3").await.unwrap();
    w.api
        .wait_status(&id, &["RUNNING"], Duration::from_secs(30))
        .await
        .unwrap();
    w.api
        .gql(
            "mutation($id: ID!) { abortRun(id: $id, reason: \"customer impact\") { id } }",
            json!({"id": id}),
        )
        .await
        .unwrap();
    let log = w
        .api
        .gql(
            "{ auditLog(project: \"default\", action: \"run.\") { entries { action target outcome detail } } }",
            json!({}),
        )
        .await
        .unwrap();
    let entries = log["auditLog"]["entries"].as_array().unwrap();
    let find = |a: &str| {
        entries
            .iter()
            .find(|e| e["action"] == a)
            .unwrap_or_else(|| panic!("no {a}: {log}"))
    };
    let start = find("run.start");
    assert_eq!(start["target"], id.as_str(), "{log}");
    assert_eq!(start["outcome"], "ok", "{log}");
    assert_eq!(start["detail"]["template"]["id"], tid.as_str(), "{log}");
    assert_eq!(start["detail"]["template"]["name"], "audited", "{log}");
    assert_eq!(start["detail"]["delegate"], "conv-3", "{log}");
    let abort = find("run.abort");
    assert_eq!(abort["target"], id.as_str(), "{log}");
    assert_eq!(abort["detail"]["reason"], "customer impact", "{log}");
    w.api
        .wait_status(&id, &["ABORTED"], Duration::from_secs(30))
        .await
        .unwrap();
}
