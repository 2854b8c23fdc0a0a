//! Bad input gets a clear error naming the field and the reason, never a crash.
use faultline_e2e::World;
use serde_json::json;

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let w = World::new().await.unwrap();
    let create = "mutation($y: String!) { createTemplate(yaml: $y) { id } }";

    // Malformed YAML: located.
    let e = w
        .api
        .try_gql(
            create,
            json!({"y": "apiVersion: faultline.dev/v1\nkind: [oops\n"}),
        )
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.extensions["code"], "INVALID_TEMPLATE", "{e}");
    assert!(e.extensions["line"].as_u64().is_some(), "{e}");

    // Unknown field: line, column and field.
    let y = "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata:\n  name: x\n  colour: red\nhypothesis: {probes: []}\nsteps: []\n";
    let e = w
        .api
        .try_gql(create, json!({"y": y}))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.extensions["field"], "metadata.colour", "{e}");
    assert_eq!(e.extensions["line"], 5, "{e}");
    assert_eq!(e.extensions["column"], 3, "{e}");

    // Unknown delegate.
    let tpl = faultline_e2e::template(
        "ok-template",
        "http://127.0.0.1:9/",
        "process-kill",
        "{name: nothing}",
        "{}",
        "1s",
    );
    let tid = w.api.create_template(&tpl).await.unwrap();
    let e = w
        .api
        .try_gql(
            "mutation($t: ID!) { startRun(templateId: $t, delegate: \"nobody\") { id } }",
            json!({"t": tid}),
        )
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.extensions["code"], "NOT_FOUND", "{e}");
    assert!(e.message.contains("nobody"), "{e}");

    // Duplicate template name.
    let e = w
        .api
        .try_gql(create, json!({"y": tpl}))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.extensions["code"], "CONFLICT", "{e}");

    // Wrong token.
    let bad = w.hub.client("fl_admin_wrong").unwrap();
    let e = bad
        .try_gql("{ templates { id } }", json!({}))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.status, 401);
    assert_eq!(e.extensions["code"], "UNAUTHENTICATED");

    // Oversized request: refused from its Content-Length before the body is read. The hub may
    // answer 413 and close while the client is still writing, which the client sees as a broken
    // pipe; either way nothing was processed and the hub stays healthy (checked at the end).
    let big = "x".repeat(2 << 20);
    let sent = w
        .api
        .http
        .post(format!("{}/graphql", w.hub.url))
        .bearer_auth(&w.token)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await;
    match sent {
        Ok(resp) => assert_eq!(resp.status().as_u16(), 413),
        Err(e) => assert!(
            e.is_request() || e.is_body(),
            "unexpected error for an oversized request: {e}"
        ),
    }

    // A delegate with a bad registration token exits with a clear message.
    let mut cmd = tokio::process::Command::new(faultline_e2e::bin("faultline-delegate"));
    cmd.args(["--hub", &w.hub.url])
        .arg("--hub-ca")
        .arg(&w.hub.ca)
        .args(["--name", "x", "--token", "fl_reg_bogus"])
        .arg("--state-dir")
        .arg(w.path("bogus"));
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), cmd.output())
        .await
        .unwrap()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("registration token"), "{err}");

    // A query that would fan out to millions of rows is refused up front.
    let e = w
        .api
        .try_gql(
            "{ runs(limit: 1000) { events(limit: 10000) { payload } } }",
            json!({}),
        )
        .await
        .unwrap()
        .unwrap_err();
    assert!(e.message.contains("complex"), "{e}");

    // The hub is still healthy after all that.
    let ok = w
        .api
        .http
        .get(format!("{}/readyz", w.hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
}

#[tokio::test]
async fn update_template_adds_versions_and_keeps_the_name() {
    let w = World::new().await.unwrap();
    let v1 = faultline_e2e::template(
        "versioned",
        "http://127.0.0.1:9/",
        "process-kill",
        "{name: nothing}",
        "{}",
        "1s",
    );
    let id = w.api.create_template(&v1).await.unwrap();
    let update =
        "mutation($id: ID!, $y: String!) { updateTemplate(id: $id, yaml: $y) { version yaml } }";
    let v2 = v1.replace("duration: 1s", "duration: 2s");
    let d = w.api.gql(update, json!({"id": id, "y": v2})).await.unwrap();
    assert_eq!(d["updateTemplate"]["version"], 2);
    assert_eq!(d["updateTemplate"]["yaml"], v2.as_str());
    let d = w.api.gql(update, json!({"id": id, "y": v2})).await.unwrap();
    assert_eq!(d["updateTemplate"]["version"], 3);
    let d = w
        .api
        .gql(
            "query($id: ID!) { template(id: $id) { versions { version createdBy } diff(from: 1, to: 2) } }",
            json!({"id": id}),
        )
        .await
        .unwrap();
    let versions: Vec<i64> = d["template"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, vec![3, 2, 1]);
    assert_eq!(
        d["template"]["versions"][0]["createdBy"],
        "user:admin@faultline.local"
    );
    let diff = d["template"]["diff"].as_str().unwrap();
    assert!(
        diff.contains("-    duration: 1s") && diff.contains("+    duration: 2s"),
        "{diff}"
    );
    let e = w
        .api
        .try_gql(
            "query($id: ID!) { template(id: $id) { diff(from: 1, to: 9) } }",
            json!({"id": id}),
        )
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.extensions["field"], "to", "{e}");
    let renamed = v2.replace("name: versioned", "name: other");
    let e = w
        .api
        .try_gql(update, json!({"id": id, "y": renamed}))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.extensions["field"], "metadata.name", "{e}");
}
