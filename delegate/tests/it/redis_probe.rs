//! The redis probe against a real redis-server on 127.0.0.1, one per test.
use crate::helpers::{closed_port, have_binary, unique_env_name};
use faultline_delegate::probes::Check;
use faultline_experiment::probes::Probe;
use std::{process::Stdio, time::Duration};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    process::{Child, Command},
};

const REDIS: &str = "/usr/bin/redis-server";

/// A redis-server on a free port, killed on drop.
struct Redis {
    addr: String,
    password: Option<String>,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// `None` when redis is missing and FAULTLINE_SKIP_REDIS=1.
    async fn start(password: Option<&str>) -> Option<Redis> {
        if !have_binary(REDIS, "redis-server", "FAULTLINE_SKIP_REDIS") {
            return None;
        }
        let port = closed_port().await;
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(REDIS);
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some(p) = password {
            cmd.args(["--requirepass", p]);
        }
        let child = cmd.spawn().expect("start redis-server");
        let r = Redis {
            addr: format!("127.0.0.1:{port}"),
            password: password.map(String::from),
            _child: child,
            _dir: dir,
        };
        for _ in 0..200 {
            if r.send(&["PING"]).await.is_ok() {
                return Some(r);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server on {} did not answer within 5s", r.addr);
    }

    /// Sends commands on one connection (after AUTH if there is a password); returns the first
    /// line of the last reply.
    async fn send(&self, cmd: &[&str]) -> std::io::Result<String> {
        let mut conn = BufReader::new(TcpStream::connect(&self.addr).await?);
        let mut line = String::new();
        let auth = self.password.as_deref().map(|p| vec!["AUTH", p]);
        for args in auth.iter().map(Vec::as_slice).chain([cmd]) {
            let mut out = format!("*{}\r\n", args.len());
            for a in args {
                out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
            }
            conn.get_mut().write_all(out.as_bytes()).await?;
            line.clear();
            conn.read_line(&mut line).await?;
        }
        Ok(line.trim_end().to_string())
    }
}

async fn check(redis: serde_json::Value) -> Check {
    let probe: Probe = serde_json::from_value(serde_json::json!({
        "name": "cache", "redis": redis, "timeout": "2s",
    }))
    .unwrap();
    // The variable a probe reads is one the test's allow-list names.
    let env = redis["passwordFromEnv"]
        .as_str()
        .map(|v| format!("env={v}"));
    let entries: Vec<&str> = env.iter().map(String::as_str).collect();
    crate::helpers::probes(&entries).check(&probe).await
}

#[tokio::test]
async fn ping_passes_on_pong() {
    let Some(redis) = Redis::start(None).await else {
        return;
    };
    let c = check(serde_json::json!({"address": redis.addr})).await;
    assert!(c.ok, "{c:?}");
    assert!(c.detail.starts_with("PONG in "), "{}", c.detail);
}

#[tokio::test]
async fn get_compares_the_value() {
    let Some(redis) = Redis::start(None).await else {
        return;
    };
    assert_eq!(
        redis.send(&["SET", "greeting", "hello"]).await.unwrap(),
        "+OK"
    );
    assert_eq!(redis.send(&["SET", "ratio", "0.97"]).await.unwrap(), "+OK");
    let get = |key: &str, expect: serde_json::Value| serde_json::json!({"address": redis.addr, "get": key, "expect": expect});
    let c = check(get("greeting", serde_json::json!({"value": "hello"}))).await;
    assert!(c.ok, "{c:?}");
    assert!(c.detail.starts_with(r#"value "hello" in "#), "{}", c.detail);
    let c = check(get("greeting", serde_json::json!({"value": "bye"}))).await;
    assert!(!c.ok);
    assert_eq!(c.detail, r#"value "hello" is not == "bye""#);
    let c = check(get("ratio", serde_json::json!({"op": ">=", "value": 0.95}))).await;
    assert!(c.ok, "{c:?}");
    let c = check(get("ratio", serde_json::json!({"op": ">=", "value": 0.99}))).await;
    assert!(!c.ok);
    assert_eq!(c.detail, "value 0.97 is not >= 0.99");
    let c = check(get("ratio", serde_json::json!({"between": [0.9, 1.0]}))).await;
    assert!(c.ok, "{c:?}");

    let c = check(get("absent", serde_json::json!({}))).await;
    assert!(!c.ok);
    assert_eq!(c.detail, "key not found");

    assert_eq!(redis.send(&["LPUSH", "list", "a"]).await.unwrap(), ":1");
    let c = check(get("list", serde_json::json!({}))).await;
    assert!(!c.ok);
    assert!(
        c.detail.starts_with("GET failed: WRONGTYPE "),
        "{}",
        c.detail
    );
}

#[tokio::test]
async fn selects_the_database() {
    let Some(redis) = Redis::start(None).await else {
        return;
    };
    // SELECT and SET on one connection.
    let mut conn = TcpStream::connect(&redis.addr).await.unwrap();
    conn.write_all(b"SELECT 3\r\nSET only-in-3 yes\r\n")
        .await
        .unwrap();
    let mut conn = BufReader::new(conn);
    for _ in 0..2 {
        let mut line = String::new();
        conn.read_line(&mut line).await.unwrap();
        assert_eq!(line, "+OK\r\n");
    }
    let probe = |db: u32| serde_json::json!({"address": redis.addr, "db": db, "get": "only-in-3"});
    let c = check(probe(3)).await;
    assert!(c.ok, "{c:?}");
    let c = check(probe(0)).await;
    assert_eq!(c.detail, "key not found");
    let c = check(probe(99)).await;
    assert!(!c.ok);
    assert_eq!(c.detail, "SELECT 99 failed: ERR DB index is out of range");
}

#[tokio::test]
async fn authenticates_with_the_password_from_the_environment() {
    let Some(redis) = Redis::start(Some("s3cret")).await else {
        return;
    };
    let right = unique_env_name("REDIS_PW");
    let wrong = unique_env_name("REDIS_PW");
    std::env::set_var(&right, "s3cret");
    std::env::set_var(&wrong, "guess");
    let with = |var: &str| serde_json::json!({"address": redis.addr, "passwordFromEnv": var});

    let c = check(with(&right)).await;
    assert!(c.ok, "{c:?}");
    let c = check(with(&wrong)).await;
    assert!(!c.ok);
    assert!(
        c.detail.starts_with("AUTH failed: WRONGPASS "),
        "{}",
        c.detail
    );
    assert!(
        !c.detail.contains("guess"),
        "the password must not show: {}",
        c.detail
    );
    let c = check(serde_json::json!({"address": redis.addr})).await;
    assert!(!c.ok);
    assert_eq!(c.detail, "PING failed: NOAUTH Authentication required.");
    let unset = unique_env_name("REDIS_PW");
    let c = check(with(&unset)).await;
    assert!(!c.ok);
    assert_eq!(
        c.detail,
        format!("environment variable {unset} (passwordFromEnv) is not set")
    );
}

#[tokio::test]
async fn a_closed_port_and_a_silent_server_fail() {
    let c =
        check(serde_json::json!({"address": format!("127.0.0.1:{}", closed_port().await)})).await;
    assert!(!c.ok);
    assert_eq!(c.detail, "connection refused");

    // Accepts (the kernel does) but never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let probe: Probe = serde_json::from_value(serde_json::json!({
        "name": "cache", "redis": {"address": listener.local_addr().unwrap().to_string()},
        "timeout": "200ms",
    }))
    .unwrap();
    let c = crate::helpers::probes(&[]).check(&probe).await;
    assert!(!c.ok);
    assert_eq!(c.detail, "timed out after 200ms");
}

/// A variable the allow-list does not name is never read, and nothing is sent anywhere: the
/// probe fails before it connects, naming the entry it needs.
#[tokio::test]
async fn an_unlisted_variable_is_refused_before_anything_is_sent() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let var = unique_env_name("REDIS_PW");
    std::env::set_var(&var, "top-secret");
    let probe: Probe = serde_json::from_value(serde_json::json!({
        "name": "cache", "timeout": "2s",
        "redis": {"address": addr.to_string(), "passwordFromEnv": var},
    }))
    .unwrap();
    let c = crate::helpers::probes(&["env=SOMETHING_ELSE"])
        .check(&probe)
        .await;
    assert!(!c.ok);
    assert_eq!(
        c.detail,
        format!("environment variable {var} (passwordFromEnv) may not be read: refused by this delegate's allow-list (needs --allow env={var})")
    );
    let accepted =
        tokio::time::timeout(std::time::Duration::from_millis(300), listener.accept()).await;
    assert!(accepted.is_err(), "nothing may connect");
}
