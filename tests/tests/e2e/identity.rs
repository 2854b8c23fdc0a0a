//! Identity and access against a real hub: password login, sessions and logout, brute-force
//! limit, API tokens, the role matrix, project isolation over every field of the schema (found
//! by introspection), revoked delegates, the audit log.
use faultline_e2e::{pause_template, Api, Delegate, Target, World};
use serde_json::{json, Value};
use std::{collections::BTreeSet, time::Duration};

const PASSWORD: &str = "a long test password";

/// Creates a local user (as the administrator), gives it `role` in `project`, signs it in.
async fn user(w: &World, email: &str, project: &str, role: &str) -> Api {
    w.api
        .gql(
            "mutation($e: String!, $p: String!) { createUser(email: $e, password: $p) { user { id } } }",
            json!({"e": email, "p": PASSWORD}),
        )
        .await
        .unwrap();
    if !role.is_empty() {
        set_member(&w.api, project, email, role).await.unwrap();
    }
    let token = w.hub.login(email, PASSWORD).await.unwrap();
    w.hub.client(&token).unwrap()
}

async fn set_member(api: &Api, project: &str, email: &str, role: &str) -> anyhow::Result<Value> {
    api.gql(
        "mutation($p: String!, $e: String!, $r: Role!) { setMember(project: $p, email: $e, role: $r) { email role } }",
        json!({"p": project, "e": email, "r": role}),
    )
    .await
}

async fn create_project(api: &Api, name: &str) {
    api.gql(
        "mutation($n: String!) { createProject(name: $n) { id } }",
        json!({"n": name}),
    )
    .await
    .unwrap();
}

/// The error of a call that must fail.
async fn refused(api: &Api, doc: &str, vars: Value) -> faultline_e2e::GqlError {
    api.try_gql(doc, vars)
        .await
        .unwrap()
        .expect_err("the call must be refused")
}

fn code(e: &faultline_e2e::GqlError) -> &str {
    e.extensions["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn password_login_sessions_and_logout_that_revokes() {
    let w = World::new().await.unwrap();
    let (email, password) = w.hub.admin_login.clone().unwrap();
    let http = &w.api.http;
    let resp = http
        .post(format!("{}/auth/login", w.hub.url))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    for part in ["faultline_session=", "HttpOnly", "Secure", "SameSite=Lax"] {
        assert!(cookie.contains(part), "{cookie} lacks {part}");
    }
    let body: Value = resp.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_string();
    assert_eq!(body["user"]["admin"], true);

    // The cookie alone authenticates GraphQL, as a browser sends it.
    let pair = cookie.split(';').next().unwrap().to_string();
    let me = http
        .post(format!("{}/graphql", w.hub.url))
        .header("cookie", &pair)
        .json(&json!({"query": "{ me { actor kind admin } }"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(me["data"]["me"]["actor"], format!("user:{email}"), "{me}");

    // Logout revokes the session for good: the same token is refused afterwards.
    let api = w.hub.client(&token).unwrap();
    api.gql("{ me { actor } }", json!({})).await.unwrap();
    let out = http
        .post(format!("{}/auth/logout", w.hub.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status().as_u16(), 204);
    assert!(out.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let e = refused(&api, "{ me { actor } }", json!({})).await;
    assert_eq!((e.status, code(&e)), (401, "UNAUTHENTICATED"), "{e}");
    assert!(e.message.contains("ended"), "{e}");
    let by_cookie = http
        .post(format!("{}/graphql", w.hub.url))
        .header("cookie", &pair)
        .json(&json!({"query": "{ me { actor } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status().as_u16(), 401);

    // A tampered token is refused.
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    let e = w
        .hub
        .client(&forged)
        .unwrap()
        .try_gql("{ me { actor } }", json!({}))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(code(&e), "UNAUTHENTICATED", "{e}");

    // The log has the login and the logout, with the client's address.
    let log = w
        .api
        .gql(
            "{ auditLog(action: \"login\") { entries { actor outcome address } } }",
            json!({}),
        )
        .await
        .unwrap();
    let entries = log["auditLog"]["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["outcome"] == "ok" && e["address"] == "127.0.0.1"),
        "{log}"
    );
}

#[tokio::test]
async fn the_eleventh_failed_login_in_a_minute_is_refused_and_audited() {
    let w = World::new().await.unwrap();
    let (email, password) = w.hub.admin_login.clone().unwrap();
    let http = &w.api.http;
    let login = |p: String| {
        let (http, url, email) = (http.clone(), w.hub.url.clone(), email.clone());
        async move {
            let r = http
                .post(format!("{url}/auth/login"))
                .json(&json!({"email": email, "password": p}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let retry = r.headers().get("retry-after").is_some();
            (status, retry, r.json::<Value>().await.unwrap())
        }
    };
    for i in 0..10 {
        let (status, _, body) = login(format!("wrong password {i}")).await;
        assert_eq!(status, 401, "attempt {i}: {body}");
        assert_eq!(
            body["error"],
            "authentication required: invalid email or password"
        );
    }
    // The 11th is refused even with the right password.
    let (status, retry, body) = login(password.clone()).await;
    assert_eq!((status, retry), (429, true), "{body}");
    assert_eq!(body["code"], "RATE_LIMITED");
    let log = w
        .api
        .gql(
            "{ auditLog(action: \"login\", outcome: \"error\", first: 50) { entries { outcome address } } }",
            json!({}),
        )
        .await
        .unwrap();
    let outcomes: Vec<&str> = log["auditLog"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == "error:UNAUTHENTICATED")
            .count(),
        10,
        "{log}"
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == "error:RATE_LIMITED")
            .count(),
        1,
        "{log}"
    );
    // The log cannot be rewritten, even by the database user the hub runs as.
    let pool = sqlx::PgPool::connect(&w.db).await.unwrap();
    let err = sqlx::query("DELETE FROM audit_log")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let err = sqlx::query("UPDATE audit_log SET outcome = 'ok'")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}

#[tokio::test]
async fn role_matrix_viewer_editor_owner() {
    let w = World::new().await.unwrap();
    create_project(&w.api, "alpha").await;
    let viewer = user(&w, "viewer@example.com", "alpha", "VIEWER").await;
    let editor = user(&w, "editor@example.com", "alpha", "EDITOR").await;
    let owner = user(&w, "owner@example.com", "alpha", "OWNER").await;
    let target = Target::start(w.dir.path()).await.unwrap();
    let yaml = pause_template("matrix", &target, "1s");
    let create = "mutation($y: String!) { createTemplate(project: \"alpha\", yaml: $y) { id } }";

    // Viewer: reads, never writes.
    viewer
        .gql("{ templates(project: \"alpha\") { id } }", json!({}))
        .await
        .unwrap();
    let e = refused(&viewer, create, json!({"y": yaml})).await;
    assert_eq!(code(&e), "FORBIDDEN", "{e}");
    // Editor: writes templates, cannot manage members or tokens or halt.
    let tid = editor.gql(create, json!({"y": yaml})).await.unwrap()["createTemplate"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    editor
        .gql(
            "mutation($t: ID!, $y: String!) { updateTemplate(id: $t, yaml: $y) { version } }",
            json!({"t": tid, "y": yaml}),
        )
        .await
        .unwrap();
    let e = set_member(&editor, "alpha", "viewer@example.com", "EDITOR")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("FORBIDDEN"), "{e}");
    let mk_token = "mutation { createApiToken(project: \"alpha\", name: \"ci\", role: VIEWER) { secret token { id } } }";
    let e = refused(&editor, mk_token, json!({})).await;
    assert_eq!(code(&e), "FORBIDDEN", "{e}");
    let e = refused(
        &editor,
        "mutation { haltAll(project: \"alpha\", reason: \"x\") { halted } }",
        json!({}),
    )
    .await;
    assert_eq!(code(&e), "FORBIDDEN", "{e}");
    let e = refused(
        &editor,
        "{ members(project: \"alpha\") { email } }",
        json!({}),
    )
    .await;
    assert_eq!(code(&e), "FORBIDDEN", "{e}");
    // Owner: members, tokens; still not an instance administrator.
    set_member(&owner, "alpha", "viewer@example.com", "EDITOR")
        .await
        .unwrap();
    let members = owner
        .gql("{ members(project: \"alpha\") { email role } }", json!({}))
        .await
        .unwrap();
    assert!(
        members["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["email"] == "viewer@example.com" && m["role"] == "EDITOR"),
        "{members}"
    );
    let made = owner.gql(mk_token, json!({})).await.unwrap();
    let secret = made["createApiToken"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let e = refused(
        &owner,
        "mutation { createProject(name: \"beta\") { id } }",
        json!({}),
    )
    .await;
    assert_eq!(code(&e), "FORBIDDEN", "{e}");
    // The last owner cannot leave the project ownerless (the administrator who made the project
    // was its first owner: the owner removes that membership first).
    let admin_email = w.hub.admin_login.clone().unwrap().0;
    owner
        .gql(
            "mutation($e: String!) { removeMember(project: \"alpha\", email: $e) }",
            json!({"e": admin_email}),
        )
        .await
        .unwrap();
    let e = set_member(&owner, "alpha", "owner@example.com", "EDITOR")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("at least one owner"), "{e}");

    // The CI token: viewer of alpha, shown once, stored hashed, last use recorded, revocable.
    let ci = w.hub.client(&secret).unwrap();
    ci.gql("{ templates(project: \"alpha\") { id } }", json!({}))
        .await
        .unwrap();
    let e = refused(&ci, create, json!({"y": yaml})).await;
    assert_eq!(code(&e), "FORBIDDEN", "{e}");
    let listed = owner
        .gql(
            "{ apiTokens(project: \"alpha\") { id name role lastUsedAt revokedAt } }",
            json!({}),
        )
        .await
        .unwrap();
    let t = &listed["apiTokens"][0];
    assert_eq!(
        (t["name"].as_str(), t["role"].as_str()),
        (Some("ci"), Some("viewer")),
        "{listed}"
    );
    assert!(t["lastUsedAt"].is_string(), "{listed}");
    assert!(
        !listed.to_string().contains(&secret),
        "the secret is never listed"
    );
    owner
        .gql(
            "mutation($i: ID!) { revokeApiToken(id: $i) { revokedAt } }",
            json!({"i": t["id"]}),
        )
        .await
        .unwrap();
    let e = refused(&ci, "{ templates { id } }", json!({})).await;
    assert_eq!(code(&e), "UNAUTHENTICATED", "{e}");
    let pool = sqlx::PgPool::connect(&w.db).await.unwrap();
    let (stored,): (String,) = sqlx::query_as("SELECT hash FROM api_tokens WHERE name = 'ci'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        !stored.contains(&secret) && stored.len() == 64,
        "only a SHA-256 is stored"
    );
}

/// Everything project B has that A must never see, and a snapshot of B's state.
struct ProjectB {
    ids: Vec<String>,
    words: Vec<String>,
}

async fn snapshot_b(admin: &Api) -> Value {
    admin
        .gql(
            "{ templates(project: \"b\") { id version yaml } runs(project: \"b\") { id status } \
               delegates(project: \"b\") { id name } apiTokens(project: \"b\") { id revokedAt } \
               delegateTokens(project: \"b\") { id revokedAt } members(project: \"b\") { email role } \
               halt(project: \"b\") { halted } }",
            json!({}),
        )
        .await
        .unwrap()
}

const TYPE_REF: &str = "kind name ofType { kind name ofType { kind name ofType { kind name } } }";

/// The named type under NON_NULL/LIST wrappers.
fn named(t: &Value) -> (&str, &str) {
    let mut t = t;
    while t["name"].is_null() {
        t = &t["ofType"];
    }
    (
        t["kind"].as_str().unwrap_or(""),
        t["name"].as_str().unwrap_or(""),
    )
}

/// A GraphQL literal for an argument, aimed at B.
fn literal(
    arg: &str,
    ty: &Value,
    b: &ProjectB,
    id: &str,
    enums: &serde_json::Map<String, Value>,
) -> Option<String> {
    let (kind, name) = named(ty);
    Some(match (kind, name) {
        (_, "ID") => format!("{id:?}"),
        (_, "Boolean") => "false".into(),
        (_, "Int") => "5".into(),
        (_, "DateTime") => "\"2099-01-01T00:00:00Z\"".into(),
        ("ENUM", e) => enums.get(e)?.as_array()?.first()?.as_str()?.to_string(),
        (_, "String") => match arg {
            "project" | "name" => "\"b\"".into(),
            "email" | "owner" => format!("{:?}", b.words[0]),
            "yaml" => format!("{:?}", b.words[1]),
            "delegate" => format!("{:?}", b.words[2]),
            "expiresIn" => "\"1h\"".into(),
            _ => "\"b\"".into(),
        },
        _ => return None,
    })
}

/// Calls every query, mutation and subscription of the schema as `api` with arguments aimed at
/// B's objects; returns the number of calls and the calls whose data held something of B's.
/// Mutations are only probed when `mutate` (a member of B would change B).
async fn probe_every_field(
    w: &World,
    api: &Api,
    b: &ProjectB,
    mutate: bool,
) -> (usize, Vec<String>) {
    let schema = w
        .api
        .gql(
            &format!(
                "{{ __schema {{ queryType {{ name }} mutationType {{ name }} subscriptionType {{ name }} \
                   types {{ name kind enumValues {{ name }} fields {{ name args {{ name type {{ {TYPE_REF} }} }} type {{ {TYPE_REF} }} }} }} }} }}"
            ),
            json!({}),
        )
        .await
        .unwrap();
    let types = schema["__schema"]["types"].as_array().unwrap();
    let by_name = |n: &str| types.iter().find(|t| t["name"] == n).cloned().unwrap();
    let enums: serde_json::Map<String, Value> = types
        .iter()
        .filter(|t| t["kind"] == "ENUM")
        .map(|t| {
            let vals: Vec<Value> = t["enumValues"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["name"].clone())
                .collect();
            (t["name"].as_str().unwrap().to_string(), Value::Array(vals))
        })
        .collect();
    // The scalar fields of an object type, one level deep.
    let selection = |ty: &Value| -> String {
        let (kind, name) = named(ty);
        if kind != "OBJECT" {
            return String::new();
        }
        let t = by_name(name);
        let fields: Vec<String> = t["fields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| {
                f["args"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|a| a["type"]["kind"] != "NON_NULL")
            })
            .filter(|f| matches!(named(&f["type"]).0, "SCALAR" | "ENUM"))
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect();
        format!("{{ __typename {} }}", fields.join(" "))
    };
    let (mut calls, mut leaks) = (0, Vec::new());
    for (op, root) in [
        ("query", "queryType"),
        ("mutation", "mutationType"),
        ("subscription", "subscriptionType"),
    ] {
        let Some(root_name) = schema["__schema"][root]["name"].as_str() else {
            continue;
        };
        if op == "mutation" && !mutate {
            continue;
        }
        for f in by_name(root_name)["fields"].as_array().unwrap() {
            let fname = f["name"].as_str().unwrap();
            if fname.starts_with("__") || ["me", "convertTemplate"].contains(&fname) {
                continue; // about the caller itself, or touches no project
            }
            let args = f["args"].as_array().unwrap();
            let has_id = args.iter().any(|a| named(&a["type"]).1 == "ID");
            let ids: Vec<&str> = if has_id {
                b.ids.iter().map(String::as_str).collect()
            } else {
                vec![""]
            };
            for id in ids {
                let lits: Vec<String> = args
                    .iter()
                    .filter_map(|a| {
                        let n = a["name"].as_str().unwrap();
                        literal(n, &a["type"], b, id, &enums).map(|v| format!("{n}: {v}"))
                    })
                    .collect();
                let args_s = if lits.is_empty() {
                    String::new()
                } else {
                    format!("({})", lits.join(", "))
                };
                let doc = format!("{op} {{ {fname}{args_s} {} }}", selection(&f["type"]));
                let body = if op == "subscription" {
                    subscribe_once(w, api, &doc).await
                } else {
                    match api.try_gql(&doc, json!({})).await.unwrap() {
                        Ok(data) => data,
                        Err(_) => Value::Null,
                    }
                };
                let text = body.to_string();
                if let Some(secret) = b
                    .ids
                    .iter()
                    .chain(&b.words[2..])
                    .find(|s| text.contains(s.as_str()))
                {
                    leaks.push(format!("`{doc}` returned B's {secret}: {text}"));
                }
                calls += 1;
            }
        }
    }
    (calls, leaks)
}

/// The first message of a subscription over the WebSocket, or Null when it errors.
async fn subscribe_once(w: &World, api: &Api, doc: &str) -> Value {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let mut ws = crate::graphql_ws(&w.hub).await;
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", api.token)}}))).await.unwrap();
    ws.send(send(
        json!({"id": "1", "type": "subscribe", "payload": {"query": doc}}),
    ))
    .await
    .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(m)) = ws.next().await {
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(&t).unwrap();
            match v["type"].as_str() {
                Some("next") => return v["payload"]["data"].clone(),
                Some("error") | Some("complete") => return Value::Null,
                _ => {}
            }
        }
        Value::Null
    })
    .await
    .unwrap_or(Value::Null);
    first
}

#[tokio::test]
async fn a_member_of_project_a_gets_nothing_from_project_b_through_any_field() {
    let w = World::new().await.unwrap();
    create_project(&w.api, "a").await;
    create_project(&w.api, "b").await;
    let target = Target::start(w.dir.path()).await.unwrap();
    // B: an owner, a template, a delegate, a finished (dry) run, tokens.
    let b_owner = user(&w, "b-owner@example.com", "b", "OWNER").await;
    let yaml = pause_template("b-secret-template", &target, "1s");
    let tid = b_owner
        .gql(
            "mutation($y: String!) { createTemplate(project: \"b\", yaml: $y) { id } }",
            json!({"y": yaml}),
        )
        .await
        .unwrap()["createTemplate"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let reg = b_owner
        .gql(
            "mutation { createDelegateToken(project: \"b\", name: \"b-reg\") }",
            json!({}),
        )
        .await
        .unwrap()["createDelegateToken"]
        .as_str()
        .unwrap()
        .to_string();
    let _d = Delegate::start(
        &w.hub,
        &w.hub.url,
        &reg,
        "b-secret-delegate",
        &[],
        &w.path("delegate-b"),
        &[],
    )
    .await
    .unwrap();
    let run = b_owner
        .gql(
            "mutation($t: ID!) { startRun(templateId: $t, delegate: \"b-secret-delegate\", dryRun: true) { id } }",
            json!({"t": tid}),
        )
        .await
        .unwrap()["startRun"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    b_owner
        .wait_status(&run, faultline_e2e::TERMINAL, Duration::from_secs(30))
        .await
        .unwrap();
    b_owner
        .gql(
            "mutation { createApiToken(project: \"b\", name: \"b-ci\", role: EDITOR) { secret } }",
            json!({}),
        )
        .await
        .unwrap();
    b_owner
        .gql(
            "mutation { createDelegateToken(project: \"b\", name: \"b-spare\", reusable: true) }",
            json!({}),
        )
        .await
        .unwrap();
    let before = snapshot_b(&w.api).await;
    let mut ids: BTreeSet<String> = BTreeSet::new();
    for path in [
        &before["templates"],
        &before["runs"],
        &before["delegates"],
        &before["apiTokens"],
        &before["delegateTokens"],
    ] {
        for o in path.as_array().unwrap() {
            ids.insert(o["id"].as_str().unwrap().to_string());
        }
    }
    assert!(ids.len() >= 6, "{before}");
    let b = ProjectB {
        ids: ids.into_iter().collect(),
        words: vec![
            "b-owner@example.com".into(),
            yaml.clone(),
            "b-secret-delegate".into(),
            "b-secret-template".into(),
        ],
    };

    // A: a user who owns A, and an owner token of A.
    let a_user = user(&w, "a-owner@example.com", "a", "OWNER").await;
    let secret = a_user
        .gql(
            "mutation { createApiToken(project: \"a\", name: \"a-ci\", role: OWNER) { secret } }",
            json!({}),
        )
        .await
        .unwrap()["createApiToken"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let a_token = w.hub.client(&secret).unwrap();
    // The detector works: B's own owner, reading only, gets B's data from many fields.
    let (_, seen) = probe_every_field(&w, &b_owner, &b, false).await;
    assert!(seen.len() >= 5, "B's owner should see B's data: {seen:#?}");
    let (n_user, leaks) = probe_every_field(&w, &a_user, &b, true).await;
    assert!(leaks.is_empty(), "user of A: {leaks:#?}");
    let (n_token, leaks) = probe_every_field(&w, &a_token, &b, true).await;
    assert!(leaks.is_empty(), "token of A: {leaks:#?}");
    assert!(
        n_user > 40 && n_token == n_user,
        "{n_user} / {n_token} calls"
    );

    let after = snapshot_b(&w.api).await;
    assert_eq!(before, after, "project B changed");
    // B's delegate is still connected and usable: nothing A did touched it.
    let d = w
        .api
        .gql(
            "{ delegates(project: \"b\") { name connected } }",
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(d["delegates"][0]["connected"], true, "{d}");
}

#[tokio::test]
async fn a_revoked_delegate_is_cut_off_at_once() {
    let w = World::new().await.unwrap();
    let mut d = w.delegate("doomed", &[], &[]).await.unwrap();
    let list = w
        .api
        .gql("{ delegates { id name connected } }", json!({}))
        .await
        .unwrap();
    let id = list["delegates"][0]["id"].as_str().unwrap().to_string();
    let t0 = std::time::Instant::now();
    w.api
        .gql(
            "mutation($i: ID!) { revokeDelegate(id: $i) }",
            json!({"i": id}),
        )
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(5), d.proc.child.wait())
        .await
        .expect("the delegate stops within 5 s of being revoked")
        .unwrap();
    assert!(!status.success() || t0.elapsed() < Duration::from_secs(5));
    let list = w
        .api
        .gql("{ delegates { name } }", json!({}))
        .await
        .unwrap();
    assert_eq!(list["delegates"].as_array().unwrap().len(), 0, "{list}");
    let log = w.api.gql("{ auditLog(project: \"default\", action: \"delegate.\") { entries { action target outcome } } }", json!({})).await.unwrap();
    assert_eq!(
        log["auditLog"]["entries"][0]["action"], "delegate.revoke",
        "{log}"
    );
    assert_eq!(log["auditLog"]["entries"][0]["target"], "doomed", "{log}");
}

#[tokio::test]
async fn the_perimeter_refuses_outsiders_before_graphql_and_sets_security_headers() {
    use faultline_e2e::{fresh_database, Hub, HubOpts};
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database().await.unwrap();
    // Loopback is outside the allow-list: everything is refused, health checks included.
    let hub = Hub::start(
        &db,
        &dir.path().join("hub"),
        HubOpts {
            extra: vec![
                "--allow-cidr".into(),
                "10.9.9.0/24".into(),
                "--grpc-allow-cidr".into(),
                "10.9.9.0/24".into(),
            ],
            ..Default::default()
        },
    )
    .await;
    // The harness signs in after start: refused by the allow-list.
    let err = hub
        .err()
        .expect("signing in from outside the allow-list fails")
        .to_string();
    assert!(err.contains("HTTP 403"), "{err}");

    // Behind a trusted proxy, the forwarded address decides.
    let db = fresh_database().await.unwrap();
    let hub = Hub::start(
        &db,
        &dir.path().join("hub2"),
        HubOpts {
            extra: vec![
                "--allow-cidr".into(),
                "127.0.0.0/8,203.0.113.0/24".into(),
                "--trusted-proxy".into(),
                "127.0.0.1/32".into(),
                "--grpc-allow-cidr".into(),
                "10.9.9.0/24".into(),
            ],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let http = hub.client("").unwrap().http;
    let get = |xff: &'static str| {
        let (http, url) = (http.clone(), hub.url.clone());
        async move {
            http.get(format!("{url}/healthz"))
                .header("x-forwarded-for", xff)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(get("203.0.113.7").await.status().as_u16(), 200);
    let refused = get("198.51.100.1").await;
    assert_eq!(refused.status().as_u16(), 403);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("198.51.100.1 is not allowed"));
    // A forged left-most entry does not help.
    assert_eq!(
        get("203.0.113.7, 198.51.100.1").await.status().as_u16(),
        403
    );
    // Security headers on every answer.
    let ok = get("203.0.113.7").await;
    let h = ok.headers();
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["strict-transport-security"]
        .to_str()
        .unwrap()
        .contains("max-age="));
    assert!(
        h.get("access-control-allow-origin").is_none(),
        "CORS is off by default"
    );
    // The delegates' gRPC has its own list: loopback is not in it.
    let grpc = http
        .post(format!("{}/faultline.v1.DelegateService/Register", hub.url))
        .header("content-type", "application/grpc")
        .body(vec![0u8; 5])
        .send()
        .await
        .unwrap();
    assert_eq!(
        grpc.headers()
            .get("grpc-status")
            .map(|v| v.to_str().unwrap()),
        Some("7"),
        "{:?}",
        grpc.headers()
    );
}

#[tokio::test]
async fn per_client_rate_limit_answers_429() {
    use faultline_e2e::{fresh_database, Hub, HubOpts};
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database().await.unwrap();
    let hub = Hub::start(
        &db,
        &dir.path().join("hub"),
        HubOpts {
            extra: vec!["--rate-limit".into(), "5".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let http = hub.client("").unwrap().http;
    let mut codes = Vec::new();
    for _ in 0..40 {
        codes.push(
            http.get(format!("{}/healthz", hub.url))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    let limited = codes.iter().filter(|c| **c == 429).count();
    assert!(limited >= 20, "{codes:?}");
    assert_eq!(codes[0], 200);
}

/// `faultline user add` and `user set-password`, straight in the hub's database.
#[tokio::test]
async fn the_user_cli_adds_users_and_resets_passwords_ending_their_sessions() {
    use std::io::Write;
    let w = World::new().await.unwrap();
    let cli = |args: &[&str], stdin: &str| {
        let mut child = std::process::Command::new(faultline_e2e::bin("faultline"))
            .args(args)
            .env("DATABASE_URL", &w.db)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = cli(
        &[
            "user",
            "add",
            "--email",
            "Ops@Example.com",
            "--role",
            "editor",
            "--project",
            "default",
            "--password-stdin",
        ],
        "ops password 1234\n",
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("ops@example.com added as editor of default"),
        "{out}"
    );
    let token = w
        .hub
        .login("ops@example.com", "ops password 1234")
        .await
        .unwrap();
    let me = w
        .hub
        .client(&token)
        .unwrap()
        .gql("{ me { projects { project { name } role } } }", json!({}))
        .await
        .unwrap();
    assert_eq!(
        me["me"]["projects"],
        json!([{"project": {"name": "default"}, "role": "EDITOR"}]),
        "{me}"
    );
    // Refusals name what is wrong.
    let (ok, out) = cli(
        &["user", "add", "--email", "x@example.com", "--role", "boss"],
        "",
    );
    assert!(
        !ok && out.contains("--role") && out.contains("owner, editor or viewer"),
        "{out}"
    );
    let (ok, out) = cli(
        &[
            "user",
            "add",
            "--email",
            "y@example.com",
            "--password-stdin",
        ],
        "short\n",
    );
    assert!(!ok && out.contains("at least 12"), "{out}");
    // A generated password is printed once and works.
    let (ok, out) = cli(
        &[
            "user",
            "add",
            "--email",
            "gen@example.com",
            "--role",
            "admin",
        ],
        "",
    );
    assert!(ok, "{out}");
    let pw = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap()
        .to_string();
    w.hub.login("gen@example.com", &pw).await.unwrap();
    // set-password ends the user's sessions.
    let (ok, out) = cli(
        &["user", "set-password", "--email", "ops@example.com"],
        "a brand new password\n",
    );
    assert!(ok && out.contains("1 session(s) ended"), "{out}");
    let old = w.hub.client(&token).unwrap();
    let e = refused(&old, "{ me { actor } }", json!({})).await;
    assert_eq!(code(&e), "UNAUTHENTICATED", "{e}");
    assert!(w
        .hub
        .login("ops@example.com", "ops password 1234")
        .await
        .is_err());
    w.hub
        .login("ops@example.com", "a brand new password")
        .await
        .unwrap();
}

/// A `runEvents` subscription over the WebSocket as `bearer`, once it delivered its first event.
async fn live_subscription(w: &World, bearer: &str, run: &str) -> crate::Ws {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let mut ws = crate::graphql_ws(&w.hub).await;
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {bearer}")}})))
        .await
        .unwrap();
    ws.send(send(json!({"id": "1", "type": "subscribe", "payload": {
        "query": "subscription($r: ID!) { runEvents(runId: $r) { seq kind } }", "variables": {"r": run}}})))
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(Message::Text(t))) = ws.next().await {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "next" {
                return v;
            }
        }
        panic!("the subscription ended before its first event");
    })
    .await
    .expect("a first event within 10 s");
    assert!(
        first["payload"]["data"]["runEvents"]["seq"].is_i64(),
        "{first}"
    );
    ws
}

/// How the subscription ended (its error, or "complete"/"closed") and when, waiting `within`.
async fn ending(ws: &mut crate::Ws, within: Duration) -> Option<(Duration, Value)> {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let t0 = std::time::Instant::now();
    tokio::time::timeout(within, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    match v["type"].as_str() {
                        Some("next") if v["payload"]["errors"].is_array() => {
                            return (t0.elapsed(), v["payload"]["errors"][0].clone())
                        }
                        Some("error") => return (t0.elapsed(), v["payload"][0].clone()),
                        Some("complete") => return (t0.elapsed(), json!("complete")),
                        _ => {}
                    }
                }
                Some(Ok(_)) => {}
                _ => return (t0.elapsed(), json!("closed")),
            }
        }
    })
    .await
    .ok()
}

#[tokio::test]
async fn subscriptions_end_within_seconds_after_logout_token_revocation_or_role_removal() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let _d = w.delegate("edge-1", &[], &[]).await.unwrap();
    let tid = w
        .api
        .create_template(&pause_template("long-pause", &target, "120s"))
        .await
        .unwrap();
    let run = w.api.start_run(&tid, "edge-1").await.unwrap();
    w.api
        .wait_status(&run, &["RUNNING"], Duration::from_secs(30))
        .await
        .unwrap();

    let signed_out = user(&w, "leaver@example.com", "default", "VIEWER").await;
    let removed = user(&w, "removed@example.com", "default", "VIEWER").await;
    let made = w
        .api
        .gql(
            "mutation { createApiToken(project: \"default\", name: \"watcher\", role: VIEWER) { secret token { id } } }",
            json!({}),
        )
        .await
        .unwrap();
    let secret = made["createApiToken"]["secret"].as_str().unwrap();
    let token_id = made["createApiToken"]["token"]["id"].as_str().unwrap();

    let mut control = live_subscription(&w, &w.token, &run).await;
    let mut by_session = live_subscription(&w, &signed_out.token, &run).await;
    let mut by_token = live_subscription(&w, secret, &run).await;
    let mut by_member = live_subscription(&w, &removed.token, &run).await;

    // Logout: the session's subscription ends, saying why.
    let out = w
        .api
        .http
        .post(format!("{}/auth/logout", w.hub.url))
        .bearer_auth(&signed_out.token)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status().as_u16(), 204);
    let (took, why) = ending(&mut by_session, Duration::from_secs(5))
        .await
        .expect("the signed-out subscription ends within 5 s");
    assert_eq!(why["extensions"]["code"], "UNAUTHENTICATED", "{why}");
    assert!(
        why["message"]
            .as_str()
            .unwrap()
            .contains("session has ended"),
        "{why}"
    );
    eprintln!("logout ended the subscription after {took:?}");
    let (_, then) = ending(&mut by_session, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(then, "complete", "the error is the stream's last message");
    // The same connection cannot start another one.
    {
        use futures::SinkExt;
        let m = json!({"id": "2", "type": "subscribe", "payload": {
            "query": "subscription($r: ID!) { runEvents(runId: $r) { seq } }", "variables": {"r": run}}});
        by_session
            .send(tokio_tungstenite::tungstenite::Message::Text(
                m.to_string().into(),
            ))
            .await
            .unwrap();
        let (_, why) = ending(&mut by_session, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(why["extensions"]["code"], "UNAUTHENTICATED", "{why}");
    }

    // A revoked API token.
    w.api
        .gql(
            "mutation($i: ID!) { revokeApiToken(id: $i) { revokedAt } }",
            json!({"i": token_id}),
        )
        .await
        .unwrap();
    let (took, why) = ending(&mut by_token, Duration::from_secs(5))
        .await
        .expect("the revoked token's subscription ends within 5 s");
    assert_eq!(why["extensions"]["code"], "UNAUTHENTICATED", "{why}");
    assert!(
        why["message"].as_str().unwrap().contains("revoked"),
        "{why}"
    );
    eprintln!("token revocation ended the subscription after {took:?}");

    // A member removed from the project.
    w.api
        .gql(
            "mutation { removeMember(project: \"default\", email: \"removed@example.com\") }",
            json!({}),
        )
        .await
        .unwrap();
    let (took, why) = ending(&mut by_member, Duration::from_secs(5))
        .await
        .expect("the removed member's subscription ends within 5 s");
    assert_eq!(why["extensions"]["code"], "FORBIDDEN", "{why}");
    assert!(
        why["message"]
            .as_str()
            .unwrap()
            .contains("no longer has a role"),
        "{why}"
    );
    eprintln!("member removal ended the subscription after {took:?}");

    // Nobody took anything from the administrator: its subscription lives on.
    assert!(
        ending(&mut control, Duration::from_secs(3)).await.is_none(),
        "an unaffected subscription must stay open"
    );
}

#[tokio::test]
async fn cross_site_browser_requests_cannot_use_the_session_cookie() {
    let w = World::new().await.unwrap();
    let (email, password) = w.hub.admin_login.clone().unwrap();
    let http = &w.api.http;
    let url = &w.hub.url;
    let resp = http
        .post(format!("{url}/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let evil = "https://evil.example";
    let mutation = |name: &str| json!({"query": format!("mutation {{ createProject(name: \"{name}\") {{ id }} }}")});
    let projects = || async {
        w.api.gql("{ projects { name } }", json!({})).await.unwrap()["projects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };

    // A page on another site posting with the victim's cookie: 403, nothing done.
    let r = http
        .post(format!("{url}/graphql"))
        .header("cookie", &cookie)
        .header("origin", evil)
        .json(&mutation("from-evil"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("cross-site"),
        "{body}"
    );
    // Without Origin, Sec-Fetch-Site tells.
    let r = http
        .post(format!("{url}/graphql"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site")
        .json(&mutation("from-evil"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // A form post (text/plain) from the same origin still cannot run a mutation.
    let r = http
        .post(format!("{url}/graphql"))
        .header("cookie", &cookie)
        .header("origin", url.as_str())
        .header("content-type", "text/plain")
        .body(mutation("from-form").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("application/json"),
        "{body}"
    );
    // GET never runs a mutation (it serves GraphiQL).
    let r = http
        .get(format!("{url}/graphql"))
        .query(&[(
            "query",
            "mutation { createProject(name: \"from-get\") { id } }",
        )])
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let page = r.text().await.unwrap();
    assert!(
        !page.contains("\"data\""),
        "GET /graphql answered GraphQL: {page}"
    );
    // Logout from another site does not end the session.
    let r = http
        .post(format!("{url}/auth/logout"))
        .header("cookie", &cookie)
        .header("origin", evil)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = http
        .post(format!("{url}/auth/login"))
        .header("origin", evil)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "no login CSRF");
    let names = projects().await;
    for n in ["from-evil", "from-form", "from-get"] {
        assert!(
            !names.contains(&n.to_string()),
            "{n} was created: {names:?}"
        );
    }

    // The dashboard's own requests work: same origin, JSON, cookie.
    let r = http
        .post(format!("{url}/graphql"))
        .header("cookie", &cookie)
        .header("origin", url.as_str())
        .header("sec-fetch-site", "same-origin")
        .json(&mutation("from-dashboard"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Bearer clients (CLI, CI) are not affected by Origin.
    let r = http
        .post(format!("{url}/graphql"))
        .bearer_auth(&w.token)
        .header("origin", evil)
        .json(&mutation("from-cli"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let names = projects().await;
    for n in ["from-dashboard", "from-cli"] {
        assert!(names.contains(&n.to_string()), "{n} missing: {names:?}");
    }

    // The WebSocket: the cookie counts only from the hub's own origin.
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    for (origin, accepted) in [(url.as_str(), true), (evil, false)] {
        let mut ws =
            crate::graphql_ws_with(&w.hub, &[("cookie", &cookie), ("origin", origin)]).await;
        ws.send(Message::Text(
            json!({"type": "connection_init"}).to_string().into(),
        ))
        .await
        .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap();
        let acked = matches!(&answer, Some(Ok(Message::Text(t))) if t.contains("connection_ack"));
        assert_eq!(acked, accepted, "origin {origin}: {answer:?}");
    }

    // Still signed in: the cross-site logout did nothing.
    let r = http
        .post(format!("{url}/graphql"))
        .header("cookie", &cookie)
        .json(&json!({"query": "{ me { actor } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}
