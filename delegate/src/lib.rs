//! The Faultline delegate as a library: `main` only parses flags and sets up logging, [`run`]
//! wires the parts together, and each part lives in its own module:
//!
//! - [`config`]: flags and environment; [`allow`]: what the hub may touch on this host;
//! - [`sandbox`]: the trust boundary probes, rollbacks and actions go through (connections,
//!   programs, environment variables);
//! - [`state`]: the state directory and the credential;
//! - [`journal`]: applied faults, durable until reverted;
//! - [`faults`] and [`probes`]: one file per kind behind one trait each; [`k8s`]: the
//!   Kubernetes cluster the Kubernetes faults act on;
//! - [`outbox`]: numbered, persisted run events until the hub acknowledges them;
//! - [`executor`]: the runs on this delegate; [`run`]: one run's state machine (modes,
//!   stages, recovery, guardrails); [`actions`]: custom action steps, their undos, rollbacks;
//! - [`link`]: the stream to the hub; [`deadman`]: what happens when it is gone too long;
//! - [`shutdown`]: the signals that stop it.
#![forbid(unsafe_code)]

pub mod actions;
pub mod allow;
pub mod config;
pub mod containers;
pub mod deadman;
pub mod executor;
pub mod faults;
pub mod journal;
pub mod k8s;
pub mod link;
pub mod metrics;
pub mod outbox;
pub mod probes;
pub mod proxy;
pub mod run;
pub mod sandbox;
pub mod shutdown;
pub mod state;

use anyhow::Context;
use executor::{Executor, Stop};
use faultline_proto::v1 as pb;
use link::{Fatal, Link, LinkConfig};
use std::{future::Future, sync::Arc};
use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};

/// Runs the delegate until `shutdown` resolves (Ok, after reverting every fault) or something
/// fatal happens (Err, also after reverting every fault).
pub async fn run(
    cfg: config::Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Every line names the delegate (JSON logs carry it as a span field).
    let span = tracing::info_span!("delegate", delegate = %cfg.delegate_name());
    tracing::Instrument::instrument(run_delegate(cfg, shutdown), span).await
}

async fn run_delegate(
    cfg: config::Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let hub_ca = match &cfg.hub_ca {
        Some(path) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("failed to read the hub CA {}", path.display()))?;
            anyhow::ensure!(
                String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----"),
                "{} holds no PEM certificate",
                path.display()
            );
            Some(pem)
        }
        None => None,
    };
    let state = Arc::new(state::StateDir::open(&cfg.state_dir)?);
    let token = match &cfg.token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --token-file {}", path.display()))?;
            Some(config::Secret::new(text.trim()))
        }
        None => cfg.token.clone(),
    };
    if token.is_none() && state.load_credential()?.is_none() {
        return Err(Fatal::NoToken.into());
    }
    let mut entries = cfg.allow.clone();
    if let Some(path) = &cfg.allow_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --allow-file {}", path.display()))?;
        entries.extend(
            allow::parse_file(&text)
                .map_err(|e| anyhow::anyhow!("--allow-file {}:{e}", path.display()))?,
        );
    }
    let allow = allow::AllowList::from_entries(&entries);
    let open = allow.open_dimensions();
    if !open.is_empty() {
        tracing::warn!(
            unrestricted = open.join(", "),
            "no --allow entry restricts these; the hub may touch any of them on this host"
        );
    }
    if allow.any_program() {
        tracing::warn!("command=* lets every template run any program on this host");
    }
    tracing::info!(allow = %allow, "allow-list");
    let run_as = match &cfg.run_as {
        Some(name) => {
            Some(sandbox::RunAs::lookup(name).map_err(|e| anyhow::anyhow!("--run-as: {e}"))?)
        }
        None => None,
    };
    match &run_as {
        Some(u) => {
            tracing::info!(user = %u.name, uid = u.uid, "programs of templates run as this user")
        }
        None if allow.runs_programs() && nix::unistd::geteuid().is_root() => {
            tracing::warn!("programs of templates run as root; --run-as USER runs them with less")
        }
        None => {}
    }
    let sandbox = sandbox::Sandbox::new(allow.clone(), run_as);
    let kube_opts = k8s::KubeOptions {
        kubeconfig: cfg.kubeconfig.clone(),
        cluster_name: cfg.kubernetes_cluster.clone(),
        timeout: cfg.kubernetes_timeout.0,
        node: cfg.node_name.clone(),
    };
    let kube = tokio::task::spawn_blocking(move || k8s::Kube::connect(&kube_opts))
        .await
        .context("the Kubernetes client's start panicked")??
        .map(Arc::new);
    let mut labels = cfg.label_map();
    if let Some(c) = kube.as_ref().and_then(|k| k.cluster()) {
        labels.insert("kubernetes.cluster".into(), c.name.clone());
        labels.insert("kubernetes.version".into(), c.version.clone());
    }
    let faults = Arc::new(faults::Faults::with_allow(allow).with_kube(kube.clone()));
    let journal = Arc::new(journal::Journal::open(&state.journal_dir())?);
    // Before anything else, and before the hub: undo what a previous process left applied.
    let reverted = journal.recover(&faults)?;
    if reverted > 0 {
        tracing::warn!(
            reverted,
            "reverted faults left applied by a previous run of the delegate"
        );
    }
    actions::recover(&sandbox, &journal).await?;
    let outbox = Arc::new(outbox::Outbox::open(&state.runs_dir())?);
    let probes = Arc::new(probes::Probes::new(sandbox)?.with_kube(kube));
    let (to_hub, from_exec) = mpsc::unbounded_channel();
    let exec = Executor::new(
        outbox.clone(),
        journal.clone(),
        faults.clone(),
        probes.clone(),
        to_hub,
    );
    exec.finish_interrupted()
        .context("failed to finish runs interrupted by a restart")?;

    let link_cfg = LinkConfig {
        hubs: cfg.hubs.clone(),
        hub_ca,
        token,
        name: cfg.delegate_name(),
        labels,
        heartbeat: cfg.heartbeat_interval.0,
        capabilities: pb::Capabilities {
            faults: faults.capabilities(),
            probes: probes.capabilities(),
            allow: faults.allow().entries(),
        },
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    proxy::Registry::global().set_busy_poll(cfg.proxy_busy_poll.0);
    let toxiproxy_api = match cfg.toxiproxy_api {
        Some(addr) => Some(proxy::api::start(addr).await?),
        None => None,
    };
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let (down_tx, down_rx) = watch::channel(Some(Instant::now()));
    let _metrics = match cfg.metrics_listen {
        Some(addr) => {
            let (bound, task) =
                metrics::serve(addr, journal.clone(), outbox.clone(), down_rx.clone()).await?;
            println!("faultline-delegate metrics on http://{bound}/metrics");
            tracing::info!(%bound, "metrics listening");
            Some(AbortOnDrop(task))
        }
        None => None,
    };
    let watchdog = tokio::spawn(deadman::watch(exec.clone(), down_rx, cfg.dead_man_timeout));
    let result = match Link::new(
        link_cfg,
        state.clone(),
        exec.clone(),
        outbox.clone(),
        from_exec,
        down_tx,
    ) {
        Ok(link) => link.run(stop_rx).await,
        Err(e) => Err(e),
    };
    watchdog.abort();
    let outcome = match result {
        Ok(()) => {
            exec.stop_all(Stop::Shutdown).await;
            tracing::info!(undelivered_events = outbox.unacked(), "delegate stopped");
            Ok(())
        }
        Err(fatal) => {
            let revoked = matches!(fatal, Fatal::Revoked(_));
            let stop = if revoked || matches!(fatal, Fatal::CredentialRejected(_)) {
                Stop::Revoked
            } else {
                Stop::Shutdown
            };
            exec.stop_all(stop).await;
            if revoked {
                if let Err(e) = state.delete_credential() {
                    tracing::error!(
                        error = format!("{e:#}"),
                        "failed to delete the revoked credential"
                    );
                }
            }
            Err(fatal.into())
        }
    };
    // After the faults' reverts, which stop the proxies they made: this stops the rest.
    proxy::shut_down(toxiproxy_api).await;
    outcome
}

/// Milliseconds since the Unix epoch (wall clock), for records and events.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Ends a background task when dropped (the metrics listener, with the delegate).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
