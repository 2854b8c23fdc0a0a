//! `tcp-proxy`: a TCP proxy with Toxiproxy's toxics for the step's duration. Either a new proxy
//! (`listen` → `upstream`), stopped on revert with all its connections, or toxics added to an
//! existing proxy of the Toxiproxy API, of which revert removes exactly those it added.
//!
//! Proxies live in the delegate process: after a crash there is nothing left to undo, and the
//! journal's revert says so instead of touching a proxy a later process made with the same name.
use super::{Applied, Fault, FaultError, RunCtx};
use crate::proxy::{ProxyError, Registry};
use faultline_experiment::faults::{FaultSpec, ToxicSpec};
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

/// Tells this process's proxies from a previous process's, in journal entries.
static INSTANCE: LazyLock<String> =
    LazyLock::new(|| format!("{}-{:016x}", std::process::id(), rand::random::<u64>()));

pub struct TcpProxy;

/// What revert needs, kept in [`Applied::data`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    /// The delegate process that applied it.
    instance: String,
    /// The proxy: made by this step (`created`) or an existing one.
    proxy: String,
    created: bool,
    /// Where a created proxy listens and forwards (empty for an existing proxy).
    #[serde(default)]
    listen: String,
    #[serde(default)]
    upstream: String,
    /// The toxics this step added.
    toxics: Vec<ToxicSpec>,
}

/// A fault error with its own wording.
fn invalid(msg: String) -> FaultError {
    FaultError::Proxy(ProxyError::Invalid(msg))
}

impl Fault for TcpProxy {
    fn kind(&self) -> &'static str {
        "tcp-proxy"
    }

    fn revertible(&self, _: &Applied) -> bool {
        true
    }

    fn plan(&self, spec: &FaultSpec, ctx: RunCtx<'_>) -> Result<Applied, FaultError> {
        let FaultSpec::TcpProxy { target, params } = spec else {
            return Err(FaultError::WrongSpec {
                kind: self.kind(),
                given: spec.kind(),
            });
        };
        let toxics = params.toxics.clone();
        let list = if toxics.is_empty() {
            "no toxics".to_string()
        } else {
            let names: Vec<String> = toxics.iter().map(ToString::to_string).collect();
            format!("toxics {}", names.join(", "))
        };
        let (mut listen, mut upstream) = (String::new(), String::new());
        let (proxy, created, detail) = match (&target.proxy, &target.listen, &target.upstream) {
            (Some(name), _, _) => {
                let p = Registry::global().get(name).map_err(|_| {
                    invalid(format!(
                        "no proxy named {name} (create it with the Toxiproxy API first)"
                    ))
                })?;
                if let Some(t) = toxics.iter().find(|t| p.toxic(&t.name).is_some()) {
                    return Err(invalid(format!(
                        "proxy {name} already has a toxic named {}",
                        t.name
                    )));
                }
                let info = p.info();
                let detail = format!(
                    "added {list} to proxy {name} ({} → {})",
                    info.listen, info.upstream
                );
                (name.clone(), false, detail)
            }
            (None, Some(l), Some(u)) => {
                let name = format!("faultline-{}-{}", ctx.run_id, ctx.step);
                let detail = format!("proxied {l} → {u} with {list}");
                (listen, upstream) = (l.clone(), u.clone());
                (name, true, detail)
            }
            _ => {
                return Err(invalid(
                    "tcp-proxy needs listen and upstream, or proxy".into(),
                ))
            }
        };
        let data = Data {
            instance: INSTANCE.clone(),
            proxy,
            created,
            listen,
            upstream,
            toxics,
        };
        Ok(Applied::new(
            ctx,
            self.kind(),
            detail,
            serde_json::to_value(&data).map_err(|e| invalid(e.to_string()))?,
        ))
    }

    fn apply(&self, plan: &Applied) -> Result<(), FaultError> {
        let data: Data = serde_json::from_value(plan.data.clone())
            .map_err(|e| invalid(format!("bad tcp-proxy record: {e}")))?;
        let reg = Registry::global();
        if data.created {
            let proxy = reg.create(&data.proxy, &data.listen, &data.upstream, false)?;
            // Toxics before the listener, so the first connection already has them.
            proxy.add_toxics(&data.toxics)?;
            if let Err(e) = proxy.start() {
                reg.remove_exact(&proxy);
                return Err(e.into());
            }
        } else {
            reg.get(&data.proxy)?.add_toxics(&data.toxics)?;
        }
        Ok(())
    }

    fn revert(&self, applied: &Applied) -> Result<String, FaultError> {
        let data: Data = serde_json::from_value(applied.data.clone())
            .map_err(|e| invalid(format!("bad tcp-proxy record: {e}")))?;
        if data.instance != *INSTANCE {
            return Ok(format!(
                "nothing to undo: proxy {} lived in a previous delegate process and ended with it",
                data.proxy
            ));
        }
        let Ok(proxy) = Registry::global().get(&data.proxy) else {
            return Ok(format!(
                "nothing to undo: proxy {} is already gone",
                data.proxy
            ));
        };
        if data.created {
            let accepted = proxy.accepted();
            Registry::global().remove_exact(&proxy);
            return Ok(format!(
                "stopped proxy {} ({} connections accepted, all closed)",
                proxy.info().listen,
                accepted
            ));
        }
        let names: Vec<String> = data.toxics.iter().map(|t| t.name.clone()).collect();
        let removed = proxy.remove_toxics(&names);
        Ok(if removed.is_empty() {
            format!(
                "nothing to remove: the toxics are already gone from proxy {}",
                data.proxy
            )
        } else {
            format!(
                "removed toxics {} from proxy {}",
                removed.join(", "),
                data.proxy
            )
        })
    }
}
