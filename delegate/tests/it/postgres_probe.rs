//! The postgres probe against a real PostgreSQL: the shared test server (`FAULTLINE_TEST_PG`, set
//! by scripts/test.sh) when there is one, else a throwaway cluster this file starts. The password
//! test always starts its own cluster: the shared one trusts every local connection.
use crate::helpers::{closed_port, unique_env_name};
use faultline_delegate::probes::Check;
use faultline_experiment::probes::Probe;
use serde_json::json;
use std::{
    os::unix::fs::PermissionsExt,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};
use tokio::process::{Child, Command};

/// The superuser's password on an own cluster, for connections over TCP.
const PASSWORD: &str = "probe-secret";

/// A throwaway cluster: superuser `faultline`, trusted on its unix socket, password (SCRAM) over
/// TCP on 127.0.0.1. Stopped (fast shutdown) and removed on drop.
struct OwnPg {
    port: u16,
    socket_dir: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl OwnPg {
    async fn start() -> OwnPg {
        let bin = pg_bin_dir();
        let dir = tempfile::tempdir().unwrap();
        let (data, socket_dir) = (dir.path().join("data"), dir.path().join("sock"));
        std::fs::create_dir(&socket_dir).unwrap();
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        // PostgreSQL refuses to run as root: as root, everything belongs to user `postgres`.
        let owner = run_as();
        if let Some((uid, gid)) = owner {
            for p in [dir.path(), &socket_dir, &pwfile] {
                nix::unistd::chown(p, Some(uid), Some(gid)).unwrap();
            }
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "faultline",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["-E", "UTF8", "--locale=C", "--no-sync"]);
        let out = as_user(&mut initdb, owner)
            .output()
            .await
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = closed_port().await;
        let log = std::fs::File::create(dir.path().join("postgres.log")).unwrap();
        let mut postgres = Command::new(bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&socket_dir)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "fsync=off", "-c", "max_connections=20"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true);
        let child = as_user(&mut postgres, owner)
            .spawn()
            .expect("start postgres");
        let pg = OwnPg {
            port,
            socket_dir,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Ok(_)) = tokio::time::timeout(
                Duration::from_secs(2),
                tokio_postgres::connect(&pg.socket_url(), tokio_postgres::NoTls),
            )
            .await
            {
                return pg;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = std::fs::read_to_string(pg._dir.path().join("postgres.log")).unwrap_or_default();
        panic!("postgres did not accept connections within 30s; its log:\n{log}");
    }

    /// Over the unix socket, trusted.
    fn socket_url(&self) -> String {
        format!(
            "postgres://faultline@/postgres?host={}&port={}",
            self.socket_dir.display(),
            self.port
        )
    }

    /// Over TCP, where a password is needed.
    fn tcp_url(&self) -> String {
        format!("postgres://faultline@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPg {
    fn drop(&mut self) {
        // A fast shutdown, so postgres removes its shared memory; SIGKILL (kill_on_drop) if it
        // takes too long.
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGINT,
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Where a test's queries go: the shared server, or an own cluster kept alive with it.
struct Pg {
    url: String,
    _own: Option<OwnPg>,
}

async fn pg() -> Pg {
    match std::env::var("FAULTLINE_TEST_PG") {
        // `faultline postgres` prints `postgres://faultline@localhost/postgres?host=/dir&port=N`.
        // The authority host would make the client try TCP on localhost first: use the socket.
        Ok(url) if url.contains("host=/") => Pg {
            url: url.replacen("@localhost/", "@/", 1),
            _own: None,
        },
        Ok(url) => Pg { url, _own: None },
        Err(_) => {
            let own = OwnPg::start().await;
            Pg {
                url: own.socket_url(),
                _own: Some(own),
            }
        }
    }
}

fn pg_bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FAULTLINE_PG_BIN") {
        return PathBuf::from(d);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").exists())
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .expect("no PostgreSQL server under /usr/lib/postgresql: apt-get install postgresql, or set FAULTLINE_PG_BIN")
}

fn run_as() -> Option<(nix::unistd::Uid, nix::unistd::Gid)> {
    if !nix::unistd::Uid::effective().is_root() {
        return None;
    }
    let user = nix::unistd::User::from_name("postgres").unwrap().expect(
        "running as root: user postgres must exist to run PostgreSQL (apt-get install postgresql)",
    );
    Some((user.uid, user.gid))
}

fn as_user(cmd: &mut Command, owner: Option<(nix::unistd::Uid, nix::unistd::Gid)>) -> &mut Command {
    if let Some((uid, gid)) = owner {
        cmd.uid(uid.as_raw()).gid(gid.as_raw());
    }
    cmd
}

async fn check(postgres: serde_json::Value, timeout: &str) -> Check {
    let probe: Probe = serde_json::from_value(json!({
        "name": "db", "postgres": postgres, "timeout": timeout,
    }))
    .unwrap();
    // The variable a probe reads is one the test's allow-list names.
    let env = postgres["passwordFromEnv"]
        .as_str()
        .map(|v| format!("env={v}"));
    let entries: Vec<&str> = env.iter().map(String::as_str).collect();
    crate::helpers::probes(&entries).check(&probe).await
}

#[tokio::test]
async fn queries_a_real_postgres() {
    let pg = pg().await;
    let q = |query: &str, expect: serde_json::Value| json!({"url": pg.url, "query": query, "expect": expect});

    // The defaults: SELECT 1, any value.
    let c = check(json!({"url": pg.url}), "5s").await;
    assert!(c.ok, "{c:?}");
    assert!(c.detail.starts_with("value 1 in "), "{}", c.detail);
    let c = check(q("SELECT 1", json!({"op": "==", "value": 1})), "5s").await;
    assert!(c.ok, "{c:?}");
    let c = check(q("SELECT 0.42", json!({"op": ">=", "value": 0.99})), "5s").await;
    assert!(!c.ok);
    assert_eq!(c.detail, "value 0.42 is not >= 0.99");

    let c = check(
        q("SELECT 'ready'::text, 2", json!({"value": "ready"})),
        "5s",
    )
    .await;
    assert!(c.ok, "{c:?}");
    assert!(c.detail.starts_with(r#"value "ready" in "#), "{}", c.detail);
    let c = check(q("SELECT 'ready'", json!({"value": "down"})), "5s").await;
    assert!(!c.ok);
    assert_eq!(c.detail, r#"value "ready" is not == "down""#);
    let c = check(q("SELECT NULL", json!({"value": "NULL"})), "5s").await;
    assert!(c.ok, "{c:?}");
    // Only the first row counts, and the rest is not waited for.
    let many = "SELECT g FROM generate_series(1, 5000000) g";
    let c = check(q(many, json!({"value": 1})), "5s").await;
    assert!(c.ok, "{c:?}");
    assert!(c.latency_ms < 2000.0, "{c:?}");
    let c = check(q("SELECT 1 WHERE false", json!({})), "5s").await;
    assert!(!c.ok);
    assert_eq!(c.detail, "no rows");

    let c = check(q("SELEC 1", json!({})), "5s").await;
    assert!(!c.ok);
    assert_eq!(c.detail, r#"query failed: syntax error at or near "SELEC""#);
    let c = check(q("SELECT x FROM no_such_table", json!({})), "5s").await;
    assert_eq!(
        c.detail,
        r#"query failed: relation "no_such_table" does not exist"#
    );

    let unset = unique_env_name("PG_PW");
    let c = check(json!({"url": pg.url, "passwordFromEnv": unset}), "5s").await;
    assert!(!c.ok);
    assert_eq!(
        c.detail,
        format!("environment variable {unset} (passwordFromEnv) is not set")
    );

    let sep = if pg.url.contains('?') { '&' } else { '?' };
    let c = check(
        json!({"url": format!("{}{sep}sslmode=require", pg.url)}),
        "5s",
    )
    .await;
    assert!(!c.ok);
    assert_eq!(
        c.detail,
        "sslmode=require is not supported yet: the postgres probe connects without TLS"
    );
}

#[tokio::test]
async fn checks_the_password() {
    let pg = OwnPg::start().await;
    let right = unique_env_name("PG_PW");
    let wrong = unique_env_name("PG_PW");
    std::env::set_var(&right, PASSWORD);
    std::env::set_var(&wrong, "not-it");
    let with = |var: &str| json!({"url": pg.tcp_url(), "passwordFromEnv": var});

    let c = check(with(&right), "5s").await;
    assert!(c.ok, "{c:?}");
    let c = check(with(&wrong), "5s").await;
    assert!(!c.ok);
    assert_eq!(
        c.detail,
        r#"connect failed: password authentication failed for user "faultline""#
    );
    let c = check(json!({"url": pg.tcp_url()}), "5s").await;
    assert!(!c.ok);
    assert!(c.detail.starts_with("connect failed: "), "{}", c.detail);
    assert!(c.detail.contains("password missing"), "{}", c.detail);
}

#[tokio::test]
async fn fails_when_no_postgres_answers() {
    let url = format!(
        "postgres://faultline@127.0.0.1:{}/postgres",
        closed_port().await
    );
    let c = check(json!({"url": url}), "2s").await;
    assert!(!c.ok);
    assert_eq!(c.detail, "connect failed: connection refused");

    // Accepts (the kernel does) but never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "postgres://faultline@{}/postgres",
        listener.local_addr().unwrap()
    );
    let started = Instant::now();
    let c = check(json!({"url": url}), "300ms").await;
    assert!(!c.ok);
    assert_eq!(c.detail, "timed out after 300ms");
    assert!(started.elapsed() < Duration::from_secs(2));
}
