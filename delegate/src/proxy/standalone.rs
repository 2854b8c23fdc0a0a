//! `faultline-delegate toxiproxy`: the Toxiproxy API and its proxies as a server of their own, a
//! drop-in for `toxiproxy-server` (its flags, its `-config` file, its API), with no hub, token,
//! state directory or journal: the proxies live and die with the process.
//!
//! This module owns the server's life: the `--config` file (read and checked before anything
//! listens), the API's listener, the line on stdout that says where it listens, and the stop,
//! which closes every proxy. The HTTP API is [`api`]; the proxies are a [`Registry`] of their
//! own (not the delegate's global one: nothing else runs in this process).
use super::{api, ProxyError, Registry};
use crate::config::ToxiproxyConfig;
use anyhow::Context;
use serde_json::Value;
use std::{future::Future, io::Read, path::Path};
use tokio::net::TcpListener;

/// Largest `--config` file read: the size of the largest `POST /populate` body.
pub const MAX_CONFIG: usize = api::MAX_BODY;

/// The longest proxy name, as the API allows it.
const MAX_NAME: usize = 200;

/// One proxy of a `--config` file, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyEntry {
    pub name: String,
    /// `HOST:PORT`; `127.0.0.1:0` (a free port) when the entry leaves it out.
    pub listen: String,
    /// `HOST:PORT`, connected to for each client connection.
    pub upstream: String,
    /// A disabled proxy exists (and shows in the API) but does not listen; default true.
    pub enabled: bool,
}

/// Why a `--config` file was refused; an entry's error names its index, its name when it has
/// one, and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("must be a JSON array of proxies ({{\"name\", \"listen\", \"upstream\", \"enabled\"}}), not {0}")]
    NotArray(&'static str),
    #[error("entry [{index}]{}: {field}: {reason}", name.as_deref().map(|n| format!(" ({n:?})")).unwrap_or_default())]
    Entry {
        index: usize,
        name: Option<String>,
        field: &'static str,
        reason: String,
    },
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `HOST:PORT` with a host (a name, an IPv4 address or a bracketed IPv6 one) and a port number.
fn check_addr(s: &str) -> Result<(), String> {
    let bad = || format!("{s:?} is not HOST:PORT (e.g. 127.0.0.1:6379)");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() {
        return Err(format!(
            "{s:?} has no host (0.0.0.0{s} listens on every interface)"
        ));
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(format!(
            "{s:?}: an IPv6 address goes in brackets, [::1]:PORT"
        ));
    }
    port.parse::<u16>().map_err(|_| bad())?;
    Ok(())
}

/// Parses a config file's text: Toxiproxy's format, a JSON array of `{name, listen, upstream,
/// enabled}`. Unlike `toxiproxy-server`, which logs a bad entry and starts without it, any
/// mistake refuses the whole file: a test suite should not run against half its proxies.
/// Fields Toxiproxy ignores (anything else) are ignored here too, with a warning.
pub fn parse_config(text: &str) -> Result<Vec<ProxyEntry>, ConfigError> {
    let v: Value = serde_json::from_str(text)?;
    let Value::Array(items) = v else {
        return Err(ConfigError::NotArray(json_kind(&v)));
    };
    let mut out: Vec<ProxyEntry> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let err = |name: Option<&str>, field: &'static str, reason: String| ConfigError::Entry {
            index,
            name: name.map(str::to_string),
            field,
            reason,
        };
        let Value::Object(obj) = item else {
            return Err(err(
                None,
                "entry",
                format!("must be an object, not {}", json_kind(item)),
            ));
        };
        let string = |field: &'static str, name: Option<&str>| match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(err(
                name,
                field,
                format!("must be a string, not {}", json_kind(other)),
            )),
        };
        let name = string("name", None)?.unwrap_or_default();
        if name.is_empty() {
            return Err(err(None, "name", "missing required field".into()));
        }
        if name.contains('/') || name.len() > MAX_NAME {
            return Err(err(
                Some(&name),
                "name",
                format!("must be at most {MAX_NAME} characters without '/'"),
            ));
        }
        let named = Some(name.as_str());
        if let Some(first) = out.iter().position(|p| p.name == name) {
            return Err(err(
                named,
                "name",
                format!("entry [{first}] has the same name"),
            ));
        }
        let upstream = string("upstream", named)?.unwrap_or_default();
        if upstream.is_empty() {
            return Err(err(named, "upstream", "missing required field".into()));
        }
        check_addr(&upstream).map_err(|r| err(named, "upstream", r))?;
        let listen = match string("listen", named)? {
            Some(l) if !l.is_empty() => {
                check_addr(&l).map_err(|r| err(named, "listen", r))?;
                l
            }
            _ => "127.0.0.1:0".to_string(),
        };
        let enabled = match obj.get("enabled") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(err(
                    named,
                    "enabled",
                    format!("must be true or false, not {}", json_kind(other)),
                ))
            }
        };
        for key in obj.keys() {
            if !["name", "listen", "upstream", "enabled"].contains(&key.as_str()) {
                tracing::warn!(
                    entry = index,
                    proxy = name,
                    field = key,
                    "unknown field in the config file ignored"
                );
            }
        }
        out.push(ProxyEntry {
            name,
            listen,
            upstream,
            enabled,
        });
    }
    Ok(out)
}

/// Reads and parses a `--config` file (at most [`MAX_CONFIG`] bytes).
pub fn read_config(path: &Path) -> anyhow::Result<Vec<ProxyEntry>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read --config {}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_CONFIG as u64 + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read --config {}", path.display()))?;
    anyhow::ensure!(
        text.len() <= MAX_CONFIG,
        "--config {}: larger than {} bytes",
        path.display(),
        MAX_CONFIG
    );
    parse_config(&text).with_context(|| format!("--config {}", path.display()))
}

/// The server of `faultline-delegate toxiproxy`: reads `--config`, binds `--host`:`--port`, and
/// serves until `shutdown` resolves, then stops every proxy. Errors before it listens (a bad
/// file, a busy port) end it with nothing left open.
pub async fn run(
    cfg: ToxiproxyConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let proxies = match &cfg.config {
        Some(path) => read_config(path)?,
        None => Vec::new(),
    };
    let listener = TcpListener::bind((cfg.host.as_str(), cfg.port))
        .await
        .with_context(|| {
            format!(
                "failed to listen on --host {} --port {} for the toxiproxy api",
                cfg.host, cfg.port
            )
        })?;
    let registry = Registry::default();
    registry.set_busy_poll(cfg.proxy_busy_poll.0);
    serve(listener, registry, &proxies, shutdown).await
}

/// Creates `proxies` in `registry`, announces the API's address (a log line, and
/// `faultline-delegate toxiproxy listening addr=HOST:PORT` on stdout for scripts and tests that
/// bound port 0), serves the API on `listener` until `shutdown`, then stops every proxy of
/// `registry`: those of the file and those made through the API.
pub async fn serve(
    listener: TcpListener,
    registry: Registry,
    proxies: &[ProxyEntry],
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let addr = listener
        .local_addr()
        .context("failed to read the toxiproxy api's address")?;
    for (index, p) in proxies.iter().enumerate() {
        match registry.create(&p.name, &p.listen, &p.upstream, p.enabled) {
            Ok(made) => tracing::info!(
                proxy = %p.name,
                listen = %made.info().listen,
                upstream = %p.upstream,
                enabled = p.enabled,
                "created a proxy of the config file"
            ),
            Err(e) => {
                stop_all(&registry).await;
                let field = match e {
                    ProxyError::Listen { .. } => "listen",
                    _ => "name",
                };
                return Err(anyhow::anyhow!(
                    "--config entry [{index}] ({:?}): {field}: {e}",
                    p.name
                ));
            }
        }
    }
    tracing::info!(%addr, proxies = proxies.len(), version = api::VERSION, "toxiproxy server listening");
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "faultline-delegate toxiproxy listening addr={addr}");
        let _ = out.flush();
    }
    api::serve(listener, registry.clone(), shutdown).await;
    stop_all(&registry).await;
    tracing::info!("toxiproxy server stopped");
    Ok(())
}

/// Stops every proxy of `registry` and waits until their listeners are closed.
async fn stop_all(registry: &Registry) {
    for task in registry.clear() {
        let _ = task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry_error(text: &str) -> String {
        parse_config(text).unwrap_err().to_string()
    }

    #[test]
    fn reads_toxiproxys_config_format() {
        let got = parse_config(
            r#"[
              {"name": "redis", "listen": "127.0.0.1:26379", "upstream": "localhost:6379", "enabled": true},
              {"name": "pg", "upstream": "[::1]:5432", "enabled": false, "toxics": []},
              {"name": "web", "listen": "[::]:8080", "upstream": "web.internal:80"}
            ]"#,
        )
        .unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0],
            ProxyEntry {
                name: "redis".into(),
                listen: "127.0.0.1:26379".into(),
                upstream: "localhost:6379".into(),
                enabled: true,
            }
        );
        assert_eq!(got[1].listen, "127.0.0.1:0");
        assert!(!got[1].enabled);
        assert!(got[2].enabled);
        assert_eq!(parse_config("[]").unwrap(), vec![]);
    }

    #[test]
    fn names_the_entry_and_the_field() {
        let e = entry_error("{\"name\": \"x\"}");
        assert!(
            e.contains("JSON array of proxies") && e.contains("an object"),
            "{e}"
        );
        let e = entry_error("[{\"name\": \"x\",]");
        assert!(e.starts_with("not JSON") && e.contains("line 1"), "{e}");
        assert_eq!(
            entry_error(r#"[{"name": "a", "upstream": "h:1"}, 3]"#),
            "entry [1]: entry: must be an object, not a number"
        );
        assert_eq!(
            entry_error(r#"[{"upstream": "h:1"}]"#),
            "entry [0]: name: missing required field"
        );
        assert_eq!(
            entry_error(r#"[{"name": "redis"}]"#),
            r#"entry [0] ("redis"): upstream: missing required field"#
        );
        assert_eq!(
            entry_error(r#"[{"name": "redis", "upstream": "redis"}]"#),
            r#"entry [0] ("redis"): upstream: "redis" is not HOST:PORT (e.g. 127.0.0.1:6379)"#
        );
        assert_eq!(
            entry_error(r#"[{"name": "redis", "upstream": "h:1", "listen": ":6379"}]"#),
            r#"entry [0] ("redis"): listen: ":6379" has no host (0.0.0.0:6379 listens on every interface)"#
        );
        let e = entry_error(r#"[{"name": "r", "upstream": "h:1", "listen": "::1:6379"}]"#);
        assert!(e.contains("listen: ") && e.contains("brackets"), "{e}");
        assert_eq!(
            entry_error(r#"[{"name": "r", "upstream": "h:99999"}]"#),
            r#"entry [0] ("r"): upstream: "h:99999" is not HOST:PORT (e.g. 127.0.0.1:6379)"#
        );
        assert_eq!(
            entry_error(r#"[{"name": "r", "upstream": "h:1", "enabled": "yes"}]"#),
            r#"entry [0] ("r"): enabled: must be true or false, not a string"#
        );
        assert_eq!(
            entry_error(r#"[{"name": 7, "upstream": "h:1"}]"#),
            "entry [0]: name: must be a string, not a number"
        );
        assert_eq!(
            entry_error(r#"[{"name": "a/b", "upstream": "h:1"}]"#),
            r#"entry [0] ("a/b"): name: must be at most 200 characters without '/'"#
        );
        assert_eq!(
            entry_error(
                r#"[{"name": "a", "upstream": "h:1"}, {"name": "b", "upstream": "h:2"}, {"name": "a", "upstream": "h:3"}]"#
            ),
            r#"entry [2] ("a"): name: entry [0] has the same name"#
        );
    }

    #[test]
    fn refuses_big_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.json");
        let e = format!("{:#}", read_config(&missing).unwrap_err());
        assert!(
            e.contains("cannot read --config") && e.contains("none.json"),
            "{e}"
        );
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; MAX_CONFIG + 1]).unwrap();
        let e = format!("{:#}", read_config(&big).unwrap_err());
        assert!(e.contains("larger than"), "{e}");
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, r#"[{"name": "x"}]"#).unwrap();
        let e = format!("{:#}", read_config(&bad).unwrap_err());
        assert!(
            e.contains("bad.json") && e.contains(r#"entry [0] ("x"): upstream"#),
            "{e}"
        );
    }

    #[tokio::test]
    async fn serves_the_files_proxies_and_stops_them_all() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up = upstream.local_addr().unwrap().to_string();
        let entries = parse_config(&format!(
            r#"[{{"name": "on", "listen": "127.0.0.1:0", "upstream": "{up}"}},
                {{"name": "off", "listen": "127.0.0.1:0", "upstream": "{up}", "enabled": false}}]"#
        ))
        .unwrap();
        let registry = Registry::default();
        let api_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let reg = registry.clone();
        let server = tokio::spawn(async move {
            serve(api_listener, reg, &entries, async {
                let _ = stopped.await;
            })
            .await
        });
        let mut on = None;
        for _ in 0..200 {
            if let Ok(p) = registry.get("on") {
                on = Some(p.info());
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let on = on.expect("the file's proxy exists");
        assert!(on.enabled && !on.listen.ends_with(":0"), "{on:?}");
        assert!(!registry.get("off").unwrap().info().enabled);
        tokio::net::TcpStream::connect(&on.listen).await.unwrap();
        let _ = stop.send(());
        server.await.unwrap().unwrap();
        assert!(registry.list().is_empty());
        assert!(tokio::net::TcpStream::connect(&on.listen).await.is_err());
    }

    #[tokio::test]
    async fn a_listen_address_in_use_names_the_entry_and_leaves_nothing_open() {
        let busy = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let busy_addr = busy.local_addr().unwrap().to_string();
        let entries = parse_config(&format!(
            r#"[{{"name": "first", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}},
                {{"name": "clash", "listen": "{busy_addr}", "upstream": "127.0.0.1:1"}}]"#
        ))
        .unwrap();
        let registry = Registry::default();
        let api_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let e = serve(
            api_listener,
            registry.clone(),
            &entries,
            std::future::pending(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with(r#"--config entry [1] ("clash"): listen: listen tcp"#),
            "{e}"
        );
        assert!(registry.list().is_empty(), "the first proxy was stopped");
    }
}
