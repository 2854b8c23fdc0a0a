//! `http-fault`: runs the reverse proxy of [`super::http_proxy`] on `target.listen` for the
//! step's duration. The proxy lives inside the delegate process, so this module keeps the
//! running ones by (run, step) and revert stops them; after a delegate crash there is nothing to
//! stop (the proxy died with the process) and revert says so.
//!
//! The journalled record carries the whole typed fault in `data`, so `apply` works from the
//! journalled plan alone, plus the delegate process that ran it.
use super::{
    http_proxy::{self, ProxyError, Running},
    Applied, Fault, FaultError, RunCtx,
};
use faultline_experiment::faults::{FaultSpec, HttpFaultParams, HttpProxyTarget};
use serde::{Deserialize, Serialize};
use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock},
};

/// Why an http-fault could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum HttpFaultError {
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    #[error("the journalled http-fault record is unreadable: {0}")]
    Record(String),
}

/// `Applied::data` of an http-fault.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    target: HttpProxyTarget,
    params: HttpFaultParams,
    /// The delegate process that runs the proxy (`pid-nonce`): a record from another one means
    /// the proxy ended with that process.
    instance: String,
}

/// This delegate process, distinct from earlier ones that had the same pid.
fn instance() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| format!("{}-{:016x}", std::process::id(), rand::random::<u64>()))
}

#[derive(Default)]
pub struct HttpFault {
    running: Mutex<HashMap<(String, usize), Running>>,
}

impl HttpFault {
    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<(String, usize), Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn data(a: &Applied) -> Result<Data, FaultError> {
    serde_json::from_value(a.data.clone()).map_err(|e| HttpFaultError::Record(e.to_string()).into())
}

impl Fault for HttpFault {
    fn kind(&self) -> &'static str {
        "http-fault"
    }

    fn revertible(&self, _: &Applied) -> bool {
        true
    }

    fn plan(&self, spec: &FaultSpec, ctx: RunCtx<'_>) -> Result<Applied, FaultError> {
        let FaultSpec::HttpFault { target, params } = spec else {
            return Err(FaultError::WrongSpec {
                kind: self.kind(),
                given: spec.kind(),
            });
        };
        let rules = if params.rules.is_empty() {
            "no rules (every request passes unchanged)".to_string()
        } else {
            let list: Vec<String> = params
                .rules
                .iter()
                .enumerate()
                .map(|(i, r)| format!("[{i}] {}", r.describe()))
                .collect();
            format!("rules {}", list.join("; "))
        };
        let data = Data {
            target: target.clone(),
            params: params.clone(),
            instance: instance().to_string(),
        };
        Ok(Applied::new(
            ctx,
            self.kind(),
            format!(
                "HTTP proxy on {} in front of {}, {rules}",
                target.listen, target.upstream
            ),
            serde_json::to_value(&data).map_err(|e| HttpFaultError::Record(e.to_string()))?,
        ))
    }

    fn apply(&self, plan: &Applied) -> Result<(), FaultError> {
        let d = data(plan)?;
        let listen = d.target.listen_addr().map_err(HttpFaultError::Record)?;
        let upstream = d
            .target
            .upstream_authority()
            .map_err(HttpFaultError::Record)?;
        let running =
            http_proxy::start(listen, upstream, &d.params).map_err(HttpFaultError::from)?;
        tracing::info!(run_id = %plan.run_id, step = plan.step, listen = %running.addr, upstream = %d.target.upstream, "http-fault proxy started");
        // The same step applied twice replaces (and so stops) the earlier proxy.
        self.running()
            .insert((plan.run_id.clone(), plan.step), running);
        Ok(())
    }

    fn revert(&self, applied: &Applied) -> Result<String, FaultError> {
        let taken = self
            .running()
            .remove(&(applied.run_id.clone(), applied.step));
        if let Some(r) = taken {
            let open = r.stop();
            return Ok(format!(
                "stopped the HTTP proxy on {} ({}), closing {open} open connection(s)",
                r.addr,
                r.counts.summary()
            ));
        }
        // Nothing running here: either an earlier delegate process ran it (and it ended with
        // that process), or it was already stopped. Either way there is nothing left to undo.
        let d = data(applied).ok();
        let listen = d
            .as_ref()
            .map(|d| d.target.listen.clone())
            .unwrap_or_else(|| "?".into());
        Ok(match d {
            Some(d) if d.instance != instance() => format!(
                "nothing to stop: the HTTP proxy on {listen} ran inside delegate process {} and ended with it",
                d.instance.split('-').next().unwrap_or("?")
            ),
            _ => format!("nothing to stop: the HTTP proxy on {listen} was already stopped"),
        })
    }
}
