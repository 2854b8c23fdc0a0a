//! The `postgres` probe: connects, runs the query with the simple query protocol, takes the first
//! column of the first row as text (`NULL` for null) and compares it as expected; the rest of
//! the answer is read and dropped, never kept. Each check opens and closes its own connection,
//! so it measures what a new client sees.
//!
//! The server is dialled through the [`Sandbox`] (an address the allow-list allows; a unix
//! socket under a `path=` entry), and `passwordFromEnv` reads only a variable `env=` names.
//!
//! TLS to the probed database is not supported yet: the probe connects in plain text (also over
//! unix sockets, `?host=/run/postgresql`), and a URL that demands TLS (`sslmode=require`,
//! `verify-ca`, `verify-full`) fails the check instead of silently going without.
use super::{bounded_part, compare, io_error_text, Check, Probe};
use crate::sandbox::{egress::ConnectError, Sandbox};
use faultline_experiment::probes::{PostgresProbe as PostgresSpec, Probe as ProbeSpec};
use futures::future::BoxFuture;
use futures::TryStreamExt;
use std::{
    error::Error as _,
    io,
    pin::pin,
    time::{Duration, Instant},
};
use tokio_postgres::{config::Host, Client, NoTls, SimpleQueryMessage};

/// How long a finished check waits for its connection to close cleanly.
const CLOSE_GRACE: Duration = Duration::from_millis(250);

pub struct PostgresProbe {
    pub sandbox: Sandbox,
}

impl Probe for PostgresProbe {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn check<'a>(&'a self, spec: &'a ProbeSpec) -> BoxFuture<'a, Check> {
        let timeout = spec.timeout.0;
        bounded_part(spec, self.kind(), spec.postgres.as_ref(), move |p| {
            run(&self.sandbox, p, timeout)
        })
    }
}

async fn run(sandbox: &Sandbox, p: &PostgresSpec, timeout: Duration) -> Check {
    let start = Instant::now();
    if let Some(mode) = tls_demanded(&p.url) {
        return Check::fail(
            start,
            format!("sslmode={mode} is not supported yet: the postgres probe connects without TLS"),
        );
    }
    let mut config: tokio_postgres::Config = match p.url.parse() {
        Ok(c) => c,
        Err(e) => return Check::fail(start, pg_error(&e)),
    };
    if let Some(var) = &p.password_from_env {
        match sandbox.env(var, "passwordFromEnv") {
            Ok(password) => config.password(password),
            Err(why) => return Check::fail(start, why),
        };
    }
    config.connect_timeout(timeout);
    let connected = match connect(sandbox, &config).await {
        Ok(c) => c,
        Err(why) => return Check::fail(start, why),
    };
    let (client, connection) = connected;
    // The connection is driven here until the answer is in, so a dropped check drops it too.
    let mut connection = connection;
    let (answer, ended) = tokio::select! {
        answer = first_value(client, &p.query) => (answer, false),
        ended = &mut connection => {
            let why = match ended {
                Err(e) => pg_error(&e),
                Ok(()) => "the server closed the connection".into(),
            };
            (Err(why), true)
        }
    };
    let check = match answer {
        Ok(Some(value)) => compare(start, &value, &p.expect),
        Ok(None) => Check::fail(start, "no rows"),
        Err(e) => Check::fail(start, format!("query failed: {e}")),
    };
    if !ended {
        // The client is gone: the connection reads what is left of the answer, says Terminate
        // and ends. That gets a moment on its own, outside the check: the outcome is known.
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CLOSE_GRACE, connection).await;
        });
    }
    check
}

/// The client and its connection, driven by the caller: over TCP to an address the sandbox
/// allows (the socket is dialled here, so the address checked is the one used), or over a unix
/// socket in a directory a `path=` entry allows.
async fn connect(
    sandbox: &Sandbox,
    config: &tokio_postgres::Config,
) -> Result<(Client, BoxConnection), String> {
    let (host, port) = match (config.get_hosts(), config.get_ports()) {
        ([host], ports) => (host, ports.first().copied().unwrap_or(5432)),
        ([], _) => return Err("the url names no host".into()),
        _ => return Err("give one host: the probe checks one server".into()),
    };
    match host {
        Host::Tcp(name) => {
            let stream = sandbox.connect(name, port).await.map_err(|e| match e {
                ConnectError::Refused(why) => why,
                ConnectError::Io(e) => format!("connect failed: {}", io_error_text(&e)),
            })?;
            let (client, conn) = config
                .connect_raw(stream, NoTls)
                .await
                .map_err(|e| format!("connect failed: {}", pg_error(&e)))?;
            Ok((client, Box::pin(conn)))
        }
        Host::Unix(dir) => {
            let shown = dir.display().to_string();
            if !sandbox.policy().pid_file(&shown) {
                return Err(format!(
                    "{} (needs --allow path={shown})",
                    crate::sandbox::refused(format_args!(
                        "unix socket directory {shown} is not under an allowed path"
                    ))
                ));
            }
            let (client, conn) = config
                .connect(NoTls)
                .await
                .map_err(|e| format!("connect failed: {}", pg_error(&e)))?;
            Ok((client, Box::pin(conn)))
        }
    }
}

/// A connection of either transport.
type BoxConnection =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send>>;

/// The first column of the first row as text (`NULL` for null), or `None` without rows. Only
/// that row is kept: a query that returns a million rows costs no memory here.
async fn first_value(client: Client, query: &str) -> Result<Option<String>, String> {
    let stream = client
        .simple_query_raw(query)
        .await
        .map_err(|e| pg_error(&e))?;
    let mut stream = pin!(stream);
    while let Some(message) = stream.try_next().await.map_err(|e| pg_error(&e))? {
        if let SimpleQueryMessage::Row(row) = message {
            return match row.try_get(0) {
                Ok(value) => Ok(Some(value.unwrap_or("NULL").to_string())),
                Err(_) => Err("the first row has no columns".into()),
            };
        }
    }
    Ok(None)
}

/// The `sslmode` of a URL when it insists on TLS.
fn tls_demanded(url: &str) -> Option<&str> {
    let (_, query) = url.split_once('?')?;
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "sslmode")
        .map(|(_, v)| v)
        .filter(|v| matches!(*v, "require" | "verify-ca" | "verify-full"))
}

/// What Postgres said (`password authentication failed for user "x"`), or the socket error.
fn pg_error(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_string();
    }
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return io_error_text(io);
        }
        source = s.source();
    }
    match e.source() {
        Some(s) => format!("{e}: {s}"),
        None => e.to_string(),
    }
}
