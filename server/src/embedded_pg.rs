//! The embedded database: a private PostgreSQL cluster the hub runs itself when no
//! `DATABASE_URL` is given. It uses the machine's PostgreSQL install, lives in the data
//! directory, listens on a unix socket only (plus an optional loopback port), runs as the
//! `postgres` user when the hub runs as root (initdb refuses root), and stops with the hub.
use anyhow::{bail, Context};
use nix::unistd::{Gid, Uid, User};
use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};
use tokio::process::{Child, Command};

pub struct EmbeddedPg {
    /// Directory holding the socket; also part of the URL.
    socket_dir: PathBuf,
    port: u16,
    /// `None` when an already running cluster was adopted (a previous hub died without stopping it).
    child: Option<Child>,
}

const SOCKET_PORT: u16 = 5432;

impl EmbeddedPg {
    /// Initialises (first time) and starts the cluster in `dir/postgres`, waiting until it accepts
    /// connections; creates database `faultline`.
    pub async fn start(dir: &Path, tcp_port: u16, max_connections: u32) -> anyhow::Result<Self> {
        let bin = find_bin_dir()?;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        let dir = dir.canonicalize()?;
        let pgdata = dir.join("postgres");
        let socket_dir = dir.join("pgsocket");
        let owner = run_as()?;
        for d in [&pgdata, &socket_dir] {
            std::fs::create_dir_all(d)?;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))?;
            if let Some((uid, gid)) = owner {
                chown_tree(d, uid, gid)?;
            }
        }
        let port = if tcp_port == 0 { SOCKET_PORT } else { tcp_port };
        let mut pg = EmbeddedPg {
            socket_dir: socket_dir.clone(),
            port,
            child: None,
        };
        if pg.ping().await {
            tracing::info!(dir = %pgdata.display(), "adopting the embedded postgres that is already running");
            return Ok(pg);
        }
        if !pgdata.join("PG_VERSION").exists() {
            if let Some((uid, _)) = owner {
                check_reachable(&pgdata, uid)?;
            }
            let mut cmd = Command::new(bin.join("initdb"));
            cmd.args(["-D"]).arg(&pgdata).args([
                "-U",
                "faultline",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ]);
            if std::env::var_os("FAULTLINE_PG_NOSYNC").is_some() {
                cmd.arg("--no-sync");
            }
            let out = as_user(&mut cmd, owner)
                .output()
                .await
                .context("failed to run initdb")?;
            if !out.status.success() {
                bail!(
                    "initdb failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            tracing::info!(dir = %pgdata.display(), "initialised embedded postgres cluster");
        }
        let log = std::fs::File::create(dir.join("postgres.log"))?;
        if let Some((uid, gid)) = owner {
            nix::unistd::chown(&dir.join("postgres.log"), Some(uid), Some(gid))?;
        }
        let listen = if tcp_port == 0 {
            String::new()
        } else {
            "127.0.0.1".into()
        };
        let mut cmd = Command::new(bin.join("postgres"));
        cmd.arg("-D")
            .arg(&pgdata)
            .arg("-k")
            .arg(&socket_dir)
            .args(["-p", &port.to_string()])
            .args(["-c", &format!("listen_addresses={listen}")])
            .args(["-c", &format!("max_connections={max_connections}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if std::env::var_os("FAULTLINE_PG_NOSYNC").is_some() {
            cmd.args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]);
        }
        // Stay alive if the hub's process group gets a terminal signal: the hub stops it itself.
        cmd.process_group(0);
        let child = as_user(&mut cmd, owner)
            .spawn()
            .context("failed to start postgres")?;
        pg.child = Some(child);
        for _ in 0..300 {
            if pg.ping().await {
                pg.create_database("faultline").await?;
                return Ok(pg);
            }
            if let Some(Some(status)) = pg.child.as_mut().map(|c| c.try_wait().ok().flatten()) {
                bail!(
                    "postgres exited with {status} while starting; see {}",
                    dir.join("postgres.log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "postgres did not accept connections within 30s; see {}",
            dir.join("postgres.log").display()
        )
    }

    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://faultline@localhost/{db}?host={}&port={}",
            self.socket_dir.display(),
            self.port
        )
    }

    async fn ping(&self) -> bool {
        use sqlx::Connection;
        let fut = sqlx::PgConnection::connect(&self.url("postgres"));
        matches!(
            tokio::time::timeout(Duration::from_secs(2), fut).await,
            Ok(Ok(_))
        )
    }

    async fn create_database(&self, name: &str) -> anyhow::Result<()> {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&self.url("postgres")).await?;
        let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
            .bind(name)
            .fetch_optional(&mut c)
            .await?;
        if exists.is_none() {
            sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                .execute(&mut c)
                .await?;
        }
        Ok(())
    }

    /// Fast shutdown (SIGINT): ends sessions, checkpoints, exits.
    pub async fn stop(mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Some(pid) = child.id() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGINT,
                );
            }
            match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
                Ok(_) => tracing::info!("embedded postgres stopped"),
                Err(_) => {
                    let _ = child.kill().await;
                    tracing::warn!("embedded postgres did not stop in 30s; killed");
                }
            }
        }
    }
}

/// Debian keeps the server binaries off PATH, under /usr/lib/postgresql/<major>/bin.
fn find_bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(d) = std::env::var_os("FAULTLINE_PG_BIN") {
        return Ok(PathBuf::from(d));
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, p): &(u32, PathBuf)| p.join("initdb").exists())
        .collect();
    debian.sort();
    if let Some((_, p)) = debian.pop() {
        return Ok(p);
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        if Path::new(dir).join("initdb").exists() && Path::new(dir).join("postgres").exists() {
            return Ok(PathBuf::from(dir));
        }
    }
    bail!("no PostgreSQL server found (initdb, postgres): install it (apt-get install postgresql), set FAULTLINE_PG_BIN, or set DATABASE_URL")
}

/// PostgreSQL refuses to run as root: pick the `postgres` user (or FAULTLINE_PG_USER) then.
fn run_as() -> anyhow::Result<Option<(Uid, Gid)>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    let name = std::env::var("FAULTLINE_PG_USER").unwrap_or_else(|_| "postgres".into());
    let user = User::from_name(&name)?
        .with_context(|| format!("running as root, and user {name:?} to run postgres as does not exist; create it or set FAULTLINE_PG_USER"))?;
    Ok(Some((user.uid, user.gid)))
}

fn as_user(cmd: &mut Command, owner: Option<(Uid, Gid)>) -> &mut Command {
    if let Some((uid, gid)) = owner {
        cmd.uid(uid.as_raw()).gid(gid.as_raw());
    }
    cmd
}

fn chown_tree(path: &Path, uid: Uid, gid: Gid) -> anyhow::Result<()> {
    nix::unistd::chown(path, Some(uid), Some(gid))
        .with_context(|| format!("failed to chown {}", path.display()))?;
    if path.is_dir() {
        for e in std::fs::read_dir(path)? {
            chown_tree(&e?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Every parent of the data directory must be traversable by the postgres user.
fn check_reachable(dir: &Path, uid: Uid) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    for parent in dir.ancestors().skip(1) {
        let m = std::fs::metadata(parent)?;
        if m.uid() != uid.as_raw() && m.mode() & 0o001 == 0 {
            bail!(
                "the postgres user cannot enter {}: choose a data directory under a world-traversable path (e.g. /var/lib/faultline) or set DATABASE_URL",
                parent.display()
            );
        }
    }
    Ok(())
}
