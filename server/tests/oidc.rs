//! SSO against a real OpenID Connect provider: `tests/oidc-provider` (npm oidc-provider), started
//! per test on a free loopback port, and the shared test Postgres (`FAULTLINE_TEST_PG`, one
//! database per test). The browser is a cookie-jar HTTP client that logs in through the
//! provider's interaction routes and stops at the redirect to the hub's callback.
mod common;

use base64::Engine;
use faultline_hub::{
    config_file::FileConfig,
    oidc::{map_roles, Oidc, OidcError, Pending, SsoIdentity},
};
use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

const REDIRECT: &str = "http://127.0.0.1:9/auth/oidc/test/callback";

/// The node provider; killed when dropped.
struct TestProvider {
    _child: Child,
    issuer: String,
}

impl TestProvider {
    /// Clients are `(client_id, client_secret)`, all with [`REDIRECT`] registered.
    async fn start(clients: &[(&str, &str)], id_token_ttl: Option<u64>) -> TestProvider {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/oidc-provider");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "run `npm ci` in {} first (CI does it in .ci/run)",
            dir.display()
        );
        let clients: Vec<_> = clients
            .iter()
            .map(|(id, secret)| serde_json::json!({"client_id": id, "client_secret": secret, "redirect_uris": [REDIRECT]}))
            .collect();
        let mut cmd = Command::new("node");
        cmd.current_dir(&dir)
            .args(["server.mjs", "--port", "0"])
            .env("OIDC_CLIENTS", serde_json::Value::from(clients).to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true);
        if let Some(ttl) = id_token_ttl {
            cmd.args(["--id-token-ttl", &ttl.to_string()]);
        }
        let mut child = cmd.spawn().expect("start node (Node.js 20.19+ is needed)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Node, 8 providers at once and 2048-bit RSA key generation on a loaded 2-core CI machine took
        // more than 30 s once; a slow start is not what these tests are about.
        let issuer = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(issuer) = line.strip_prefix("oidc ready ") {
                    return issuer.to_string();
                }
            }
            panic!("the oidc provider exited before it was ready");
        })
        .await
        .expect("oidc provider ready within 120 s");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        TestProvider {
            _child: child,
            issuer,
        }
    }

    async fn rotate_keys(&self) -> String {
        let r: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/test/rotate-keys", self.issuer))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["kid"].as_str().unwrap().to_string()
    }
}

/// The hub's side: providers named after their client ids, read from a TOML file as in
/// production (secrets in files).
struct Hub {
    oidc: Oidc,
    pool: sqlx::PgPool,
    file: FileConfig,
    _dir: tempfile::TempDir,
}

async fn hub(issuer: &str, clients: &[(&str, &str)]) -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let mut toml = String::new();
    for (id, secret) in clients {
        let secret_file = dir.path().join(id);
        std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
        toml.push_str(&format!(
            r#"
[[oidc]]
name = "{id}"
issuer = "{issuer}"
client_id = "{id}"
client_secret_file = "{}"
admin = [{{ claim = "roles", value = "Faultline.Admin" }}]
roles = [
  {{ claim = "groups", value = "grp-editors", project = "payments", role = "editor" }},
  {{ claim = "groups", value = "grp-viewers", project = "payments", role = "viewer" }},
]
"#,
            secret_file.display()
        ));
    }
    let file = FileConfig::parse(&toml, Path::new("hub.toml")).unwrap();
    let (pool, _) = common::fresh_pool().await;
    let oidc = Oidc::new(file.oidc.clone(), pool.clone()).unwrap();
    Hub {
        oidc,
        pool,
        file,
        _dir: dir,
    }
}

/// What a browser does between the authorize URL and the hub's callback: the provider's login
/// interaction as `user`. Returns the callback's `code` and `state`.
async fn login(authorize_url: &url::Url, user: &str) -> (String, String) {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if attempt.url().as_str().starts_with(REDIRECT) {
                attempt.stop()
            } else {
                attempt.follow()
            }
        }))
        .build()
        .unwrap();
    let interaction = browser
        .get(authorize_url.clone())
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let interaction_url = interaction.url().clone();
    assert!(
        interaction_url.path().starts_with("/interaction/"),
        "{interaction_url}"
    );
    let prompt: serde_json::Value = interaction.json().await.unwrap();
    assert_eq!(prompt["prompt"], "login");
    let back = browser
        .post(format!("{interaction_url}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("login={user}"))
        .send()
        .await
        .unwrap();
    assert!(back.status().is_redirection(), "{:?}", back.status());
    let location = back.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    let location = url::Url::parse(location).unwrap();
    let param = |k: &str| {
        location
            .query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no {k} in {location}"))
    };
    (param("code"), param("state"))
}

/// begin + login; the pending login stays stored.
async fn begin_and_login(hub: &Hub, provider: &str, user: &str) -> (Pending, String) {
    let (url, pending) = hub.oidc.begin(provider, REDIRECT).await.unwrap();
    let (code, state) = login(&url, user).await;
    assert_eq!(state, pending.state);
    (pending, code)
}

/// The raw ID token of a login as `user`, not verified yet (and its pending login consumed).
async fn raw_id_token(hub: &Hub, provider: &str, user: &str) -> (String, Pending) {
    let (pending, code) = begin_and_login(hub, provider, user).await;
    let pending = hub
        .oidc
        .take_pending(provider, &pending.state)
        .await
        .unwrap();
    let raw = hub.oidc.exchange_code(&pending, &code).await.unwrap();
    (raw, pending)
}

/// Verifies a token that must be refused; the refusal.
async fn refused(hub: &Hub, provider: &str, id_token: &str, nonce: &str) -> OidcError {
    let r = hub.oidc.verify_id_token(provider, id_token, nonce).await;
    r.expect_err("the ID token must be refused")
}

/// The message of a refusal must start with `start`.
fn says(e: &OidcError, start: &str) {
    assert!(e.to_string().starts_with(start), "{e}");
}

async fn pending_rows(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM oidc_logins")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn code_flow_returns_the_identity_and_its_roles() {
    let idp = TestProvider::start(&[("hub", "hub-secret")], None).await;
    let hub = hub(&idp.issuer, &[("hub", "hub-secret")]).await;

    let (url, pending) = hub.oidc.begin("hub", REDIRECT).await.unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["state"], pending.state);
    assert_eq!(q["nonce"], pending.nonce);
    assert_eq!(q["scope"], "openid email profile");
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(pending_rows(&hub.pool).await, 1);
    // Only the state's hash is stored (looked up by hash, like every secret).
    let stored: String = sqlx::query_scalar("SELECT state FROM oidc_logins")
        .fetch_one(&hub.pool)
        .await
        .unwrap();
    assert_ne!(stored, pending.state);
    assert_eq!(
        stored,
        faultline_hub::identity::tokens::hash_secret(&pending.state)
    );

    let (code, state) = login(&url, "alice").await;
    let alice = hub.oidc.finish("hub", &state, &code).await.unwrap();
    assert_eq!(
        alice,
        SsoIdentity {
            provider: "hub".into(),
            subject: "alice".into(),
            email: Some("alice@example.test".into()),
            name: Some("Alice Example".into()),
            groups: vec!["grp-editors".into()],
            roles: vec![],
        }
    );
    assert_eq!(
        pending_rows(&hub.pool).await,
        0,
        "finish consumes the login"
    );
    let mapped = map_roles(&hub.file.oidc[0], &alice);
    assert!(!mapped.admin);
    assert_eq!(mapped.grants.len(), 1);
    assert_eq!(
        (
            mapped.grants[0].project.as_str(),
            mapped.grants[0].role.as_str()
        ),
        ("payments", "editor")
    );

    // bob: another group, and the app role that makes him an administrator.
    let (pending, code) = begin_and_login(&hub, "hub", "bob").await;
    let bob = hub.oidc.finish("hub", &pending.state, &code).await.unwrap();
    assert_eq!(bob.subject, "bob");
    assert_eq!(bob.groups, ["grp-viewers"]);
    assert_eq!(bob.roles, ["Faultline.Admin"]);
    let mapped = map_roles(&hub.file.oidc[0], &bob);
    assert!(mapped.admin);
    assert_eq!(mapped.grants[0].role, "viewer");
    // One discovery for both logins.
    assert_eq!(hub.oidc.jwks_fetches("hub").unwrap(), 1);
}

#[tokio::test]
async fn a_state_is_used_once_and_must_be_known_and_fresh() {
    let clients = [("hub", "hub-secret"), ("other", "other-secret")];
    let idp = TestProvider::start(&clients, None).await;
    let hub = hub(&idp.issuer, &clients).await;

    let (pending, code) = begin_and_login(&hub, "hub", "alice").await;
    hub.oidc.finish("hub", &pending.state, &code).await.unwrap();
    let replay = hub.oidc.finish("hub", &pending.state, &code).await;
    assert!(matches!(replay, Err(OidcError::BadState)), "{replay:?}");

    let unknown = hub.oidc.finish("hub", "made-up-state", &code).await;
    let e = unknown.unwrap_err();
    assert!(matches!(e, OidcError::BadState), "{e:?}");
    assert_eq!(
        e.to_string(),
        "unknown or already used login state (start the login again)"
    );

    // A login begun with one provider cannot be finished at another's callback.
    let (pending, code) = begin_and_login(&hub, "other", "alice").await;
    let e = hub
        .oidc
        .finish("hub", &pending.state, &code)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, OidcError::WrongProvider { started, callback } if started == "other" && callback == "hub"),
        "{e:?}"
    );

    let e = hub.oidc.finish("nope", "x", "y").await.unwrap_err();
    assert!(
        matches!(&e, OidcError::UnknownProvider(n) if n == "nope"),
        "{e:?}"
    );
    let api: faultline_hub::error::ApiError = e.into();
    assert_eq!(api.code(), "NOT_FOUND");

    // Pending logins expire after 10 minutes (by the database's clock).
    let (pending, code) = begin_and_login(&hub, "hub", "alice").await;
    sqlx::query(
        "UPDATE oidc_logins SET created_at = now() - interval '11 minutes' WHERE state = $1",
    )
    .bind(faultline_hub::identity::tokens::hash_secret(&pending.state))
    .execute(&hub.pool)
    .await
    .unwrap();
    let e = hub
        .oidc
        .finish("hub", &pending.state, &code)
        .await
        .unwrap_err();
    assert!(
        matches!(e, OidcError::Expired { age_secs, limit_secs: 600 } if (660..700).contains(&age_secs)),
        "{e:?}"
    );
    let api: faultline_hub::error::ApiError = e.into();
    assert_eq!(api.code(), "SSO_FAILED");
    assert!(api.to_string().contains("the login took too long"), "{api}");
}

#[tokio::test]
async fn tampered_id_tokens_and_wrong_nonces_are_refused() {
    let idp = TestProvider::start(&[("hub", "hub-secret")], None).await;
    let hub = hub(&idp.issuer, &[("hub", "hub-secret")]).await;
    let (raw, pending) = raw_id_token(&hub, "hub", "alice").await;
    let ok = hub.oidc.verify_id_token("hub", &raw, &pending.nonce).await;
    assert_eq!(ok.unwrap().subject, "alice");

    // One signature byte changed.
    let sig_start = raw.rfind('.').unwrap() + 1;
    let mut bytes = raw.clone().into_bytes();
    let i = sig_start + 20;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(bytes).unwrap();
    let e = refused(&hub, "hub", &flipped, &pending.nonce).await;
    assert!(matches!(e, OidcError::BadSignature(_)), "{e:?}");
    says(&e, "ID token signature is invalid");

    // Claims changed (bob instead of alice), signature kept.
    let mut parts: Vec<String> = raw.split('.').map(String::from).collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims = String::from_utf8(b64.decode(&parts[1]).unwrap()).unwrap();
    assert!(claims.contains("\"sub\":\"alice\""), "{claims}");
    parts[1] = b64.encode(claims.replace("\"sub\":\"alice\"", "\"sub\":\"bob\""));
    let forged = parts.join(".");
    let e = refused(&hub, "hub", &forged, &pending.nonce).await;
    assert!(matches!(e, OidcError::BadSignature(_)), "{e:?}");

    let e = refused(&hub, "hub", &raw, "another-login's-nonce").await;
    assert!(matches!(e, OidcError::NonceMismatch), "{e:?}");

    let e = refused(&hub, "hub", "not.a.jwt", &pending.nonce).await;
    assert!(matches!(e, OidcError::InvalidIdToken { .. }), "{e:?}");
}

#[tokio::test]
async fn an_id_token_for_another_client_is_refused() {
    let clients = [("hub", "hub-secret"), ("other", "other-secret")];
    let idp = TestProvider::start(&clients, None).await;
    let hub = hub(&idp.issuer, &clients).await;
    let (raw, pending) = raw_id_token(&hub, "other", "alice").await;
    let e = refused(&hub, "hub", &raw, &pending.nonce).await;
    assert!(
        matches!(&e, OidcError::WrongAudience { client_id, .. } if client_id == "hub"),
        "{e:?}"
    );
    says(&e, "ID token audience does not include client id hub");
    // The same token is fine for the client it was issued to.
    hub.oidc
        .verify_id_token("other", &raw, &pending.nonce)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    let idp = TestProvider::start(&[("hub", "hub-secret")], Some(1)).await;
    let hub = hub(&idp.issuer, &[("hub", "hub-secret")]).await;
    let (raw, pending) = raw_id_token(&hub, "hub", "alice").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let e = refused(&hub, "hub", &raw, &pending.nonce).await;
    assert!(matches!(e, OidcError::IdTokenExpired(_)), "{e:?}");
    says(&e, "ID token has expired: ID token expired at");
}

#[tokio::test]
async fn rotated_keys_are_fetched_once_and_unknown_keys_refused() {
    let idp = TestProvider::start(&[("hub", "hub-secret")], None).await;
    let hub = hub(&idp.issuer, &[("hub", "hub-secret")]).await;

    // Discovery caches the first key; the provider then signs with a new one.
    let (url, pending) = hub.oidc.begin("hub", REDIRECT).await.unwrap();
    assert_eq!(hub.oidc.jwks_fetches("hub").unwrap(), 1);
    assert_eq!(idp.rotate_keys().await, "test-key-2");
    let (code, state) = login(&url, "alice").await;
    assert_eq!(state, pending.state);
    let alice = hub.oidc.finish("hub", &state, &code).await.unwrap();
    assert_eq!(alice.subject, "alice");
    assert_eq!(hub.oidc.jwks_fetches("hub").unwrap(), 2, "one refresh");

    // The refreshed keys serve the next login without another fetch.
    let (raw, pending) = raw_id_token(&hub, "hub", "bob").await;
    hub.oidc
        .verify_id_token("hub", &raw, &pending.nonce)
        .await
        .unwrap();
    assert_eq!(hub.oidc.jwks_fetches("hub").unwrap(), 2);

    // A key id the provider does not publish: one more fetch, then a refusal.
    let mut parts: Vec<String> = raw.split('.').map(String::from).collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = String::from_utf8(b64.decode(&parts[0]).unwrap()).unwrap();
    assert!(header.contains("test-key-2"), "{header}");
    parts[0] = b64.encode(header.replace("test-key-2", "test-key-99"));
    let e = refused(&hub, "hub", &parts.join("."), &pending.nonce).await;
    assert!(matches!(e, OidcError::UnknownKey), "{e:?}");
    assert_eq!(hub.oidc.jwks_fetches("hub").unwrap(), 3);
}

#[tokio::test]
async fn an_unreachable_provider_is_a_discovery_error() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hub = hub(&format!("http://127.0.0.1:{port}"), &[("hub", "s")]).await;
    let e = hub.oidc.begin("hub", REDIRECT).await.unwrap_err();
    assert!(
        matches!(&e, OidcError::Discovery { provider, .. } if provider == "hub"),
        "{e:?}"
    );
    says(&e, "identity provider hub is unavailable: ");
    assert_eq!(pending_rows(&hub.pool).await, 0);
}

#[tokio::test]
async fn an_oversized_provider_answer_is_refused() {
    // A "provider" whose discovery document never ends (chunked, no length announced).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                if conn.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
                while conn.write_all(chunk.as_bytes()).await.is_ok() {}
            });
        }
    });
    let hub = hub(&format!("http://127.0.0.1:{port}"), &[("hub", "s")]).await;
    let e = hub.oidc.begin("hub", REDIRECT).await.unwrap_err();
    assert!(matches!(e, OidcError::Discovery { .. }), "{e:?}");
    assert!(
        e.to_string().contains("is larger than 1048576 bytes"),
        "{e}"
    );
}
