//! SSO through the hub's own endpoints against a real OpenID Connect provider (npm
//! `oidc-provider`, tests/oidc-provider): a cookie-jar client walks the whole code flow
//! (hub → provider → hub), gets a session cookie and the project role its `groups` claim maps
//! to, and logs out. A forged or replayed callback is refused and audited.
use faultline_e2e::{free_port, fresh_database, Hub, HubOpts};
use serde_json::{json, Value};
use std::{path::PathBuf, process::Stdio, time::Duration};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// The node provider, killed when dropped.
struct Provider {
    _child: Child,
    issuer: String,
}

async fn provider(redirect: &str) -> Provider {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oidc-provider");
    assert!(
        dir.join("node_modules/oidc-provider").is_dir(),
        "run `npm ci` in {} first (.ci/run does)",
        dir.display()
    );
    let clients = json!([{"client_id": "hub", "client_secret": "s3cret-of-the-hub", "redirect_uris": [redirect]}]);
    let mut child = Command::new("node")
        .current_dir(&dir)
        .args(["server.mjs", "--port", "0"])
        .env("OIDC_CLIENTS", clients.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let issuer = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if let Some(i) = l.strip_prefix("oidc ready ") {
                return i.to_string();
            }
        }
        panic!("the provider exited before it was ready")
    })
    .await
    .expect("provider ready within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Provider {
        _child: child,
        issuer,
    }
}

/// A browser: cookie jar, trusts the hub's CA; `follow` decides whether redirects are followed.
fn browser(hub: &Hub, follow: bool) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&hub.ca).unwrap()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .cookie_store(true)
        .redirect(if follow {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        })
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Walks hub login → provider → interaction as `user`; returns the hub callback URL the provider
/// sent the browser to (not yet visited), using a non-following client.
async fn callback_url(hub: &Hub, b: &reqwest::Client, user: &str) -> String {
    let go = b
        .get(format!("{}/auth/oidc/test/login", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(go.status().as_u16(), 303);
    let mut next = go.headers()["location"].to_str().unwrap().to_string();
    assert!(
        next.contains("code_challenge_method=S256") && next.contains("nonce="),
        "{next}"
    );
    // Provider: authorize → interaction.
    loop {
        let r = b.get(&next).send().await.unwrap();
        if !r.status().is_redirection() {
            break;
        }
        next = r.headers()["location"].to_str().unwrap().to_string();
        if next.starts_with('/') {
            let issuer = url_base(&next, &r);
            next = format!("{issuer}{next}");
        }
    }
    let back = b
        .post(format!("{next}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("login={user}"))
        .send()
        .await
        .unwrap();
    let mut loc = back.headers()["location"].to_str().unwrap().to_string();
    let base = url_base(&loc, &back);
    // Follow the provider's own redirects until it points at the hub.
    while !loc.starts_with(&hub.url) {
        let abs = if loc.starts_with('/') {
            format!("{base}{loc}")
        } else {
            loc.clone()
        };
        let r = b.get(&abs).send().await.unwrap();
        assert!(r.status().is_redirection(), "{abs}: {}", r.status());
        loc = r.headers()["location"].to_str().unwrap().to_string();
    }
    loc
}

fn url_base(_loc: &str, r: &reqwest::Response) -> String {
    let u = r.url();
    format!("{}://{}", u.scheme(), u.host_str().unwrap())
        + &u.port().map(|p| format!(":{p}")).unwrap_or_default()
}

async fn me(hub: &Hub, b: &reqwest::Client) -> (u16, Value) {
    let r = b
        .post(format!("{}/graphql", hub.url))
        .json(&json!({"query": "{ me { actor admin projects { project { name } role } } }"}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn sso_code_flow_through_the_hub_maps_groups_to_roles_and_logs_out() {
    let port = free_port().unwrap();
    let redirect = format!("https://127.0.0.1:{port}/auth/oidc/test/callback");
    let idp = provider(&redirect).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), "s3cret-of-the-hub\n").unwrap();
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "[[oidc]]\nname = \"test\"\ndisplay_name = \"Test IdP\"\nissuer = \"{}\"\nclient_id = \"hub\"\n\
             client_secret_file = \"{}\"\nadmin = [{{ claim = \"roles\", value = \"Faultline.Admin\" }}]\n\
             roles = [{{ claim = \"groups\", value = \"grp-editors\", project = \"payments\", role = \"editor\" }}]\n",
            idp.issuer,
            dir.path().join("secret").display()
        ),
    )
    .unwrap();
    let db = fresh_database().await.unwrap();
    let hub = Hub::start(
        &db,
        &dir.path().join("hub"),
        HubOpts {
            listen: format!("127.0.0.1:{port}"),
            extra: vec!["--config".into(), config.display().to_string()],
        },
    )
    .await
    .unwrap();
    let admin = hub.client(hub.admin_token.as_deref().unwrap()).unwrap();
    admin
        .gql(
            "mutation { createProject(name: \"payments\") { id } }",
            json!({}),
        )
        .await
        .unwrap();
    let list: Value = admin
        .http
        .get(format!("{}/auth/providers", hub.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["displayName"], "Test IdP", "{list}");

    // Alice (groups: grp-editors) signs in: user created, editor of payments, cookie session.
    let b = browser(&hub, false);
    let cb = callback_url(&hub, &b, "alice").await;
    let done = b.get(&cb).send().await.unwrap();
    assert_eq!(done.status().as_u16(), 303, "{:?}", done.text().await);
    let cookie = done.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Secure") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let (status, who) = me(&hub, &b).await;
    assert_eq!(status, 200, "{who}");
    assert_eq!(
        who["data"]["me"]["actor"], "user:alice@example.test",
        "{who}"
    );
    assert_eq!(who["data"]["me"]["admin"], false);
    assert_eq!(
        who["data"]["me"]["projects"],
        json!([{"project": {"name": "payments"}, "role": "EDITOR"}]),
        "{who}"
    );
    // The same callback again (a replayed state and nonce) is refused.
    let again = browser(&hub, false).get(&cb).send().await.unwrap();
    assert_eq!(again.status().as_u16(), 401);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["code"], "SSO_FAILED", "{body}");
    // A forged state is refused too.
    let forged = browser(&hub, false)
        .get(format!(
            "{}/auth/oidc/test/callback?code=abc&state=forged",
            hub.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    // Logout ends the session; the cookie no longer works.
    let out = b
        .post(format!("{}/auth/logout", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status().as_u16(), 204);
    let (status, _) = me(&hub, &b).await;
    assert_eq!(status, 401);

    // Bob carries the admin role claim: an instance administrator after SSO.
    let b2 = browser(&hub, false);
    let cb = callback_url(&hub, &b2, "bob").await;
    assert_eq!(b2.get(&cb).send().await.unwrap().status().as_u16(), 303);
    let (_, who) = me(&hub, &b2).await;
    assert_eq!(who["data"]["me"]["admin"], true, "{who}");

    // The audit log has both logins and the refusals with their reasons.
    let log = admin
        .gql(
            "{ auditLog(action: \"login\") { entries { actor target outcome detail } } }",
            json!({}),
        )
        .await
        .unwrap();
    let entries = log["auditLog"]["entries"].as_array().unwrap();
    let ok = entries
        .iter()
        .filter(|e| e["target"] == "oidc:test" && e["outcome"] == "ok")
        .count();
    let refused = entries
        .iter()
        .filter(|e| e["target"] == "oidc:test" && e["outcome"] == "error:SSO_FAILED")
        .count();
    assert_eq!((ok, refused), (2, 2), "{log}");
}
