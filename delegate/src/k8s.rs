//! The delegate's Kubernetes client: where the cluster is (a kubeconfig from `--kubeconfig` or
//! `KUBECONFIG`, else the in-cluster service account), whether its API answers, and one bounded
//! way to call it from the synchronous [`Fault`](crate::faults::Fault) trait.
//!
//! The client lives on a runtime of its own (one thread): a fault blocks only its caller while
//! a call is under way, never the runtime that serves the hub's stream, and the client's
//! connection pool outlives whichever task made it. Every call is bounded by
//! [`Kube::timeout`]. The faults that use it are `faults/pod_delete.rs`, `faults/scale.rs`,
//! `faults/node_cordon.rs`, `faults/node_drain.rs` and `faults/container_kill.rs`; what they may touch is the allow-list's (`namespace=`, `k8s-kind=`).
use anyhow::Context as _;
use std::{future::Future, path::PathBuf, sync::mpsc, time::Duration};

/// Where to find the cluster, as the operator configured it.
#[derive(Clone, Debug, Default)]
pub struct KubeOptions {
    /// `--kubeconfig` (or `KUBECONFIG`): a kubeconfig file, its current context.
    pub kubeconfig: Option<PathBuf>,
    /// The name advertised for the cluster (else the kubeconfig context's cluster, or
    /// `in-cluster`).
    pub cluster_name: Option<String>,
    /// Bound of each API call, connection included.
    pub timeout: Duration,
    /// The node this delegate runs on (`--node-name`; a DaemonSet's `spec.nodeName`): the
    /// pod-scoped faults act on pods of this node only.
    pub node: Option<String>,
}

/// The cluster as it answered at start, advertised to the hub as the delegate's labels
/// `kubernetes.cluster` and `kubernetes.version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterInfo {
    pub name: String,
    /// The API server's `gitVersion`, e.g. `v1.33.2`.
    pub version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("no Kubernetes cluster is configured on this delegate (--kubeconfig, KUBECONFIG or in-cluster)")]
    NotConfigured,
    #[error("the Kubernetes API did not answer {what} within {timeout:?}")]
    Timeout { what: String, timeout: Duration },
    #[error("Kubernetes API: {what}: {status} {reason}: {message}")]
    Api {
        what: String,
        status: u16,
        reason: String,
        message: String,
    },
    #[error("Kubernetes API: {what}: {error}")]
    Other { what: String, error: String },
}

impl KubeError {
    /// The HTTP status the API answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            KubeError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn of(what: &str, e: kube::Error) -> Self {
        match e {
            kube::Error::Api(s) => KubeError::Api {
                what: what.into(),
                status: s.code,
                reason: s.reason.clone(),
                message: s.message.clone(),
            },
            e => KubeError::Other {
                what: what.into(),
                error: format!("{e}"),
            },
        }
    }
}

/// A client of one cluster.
pub struct Kube {
    client: kube::Client,
    /// The client's own runtime; it ends when `_stop` is dropped.
    handle: tokio::runtime::Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
    timeout: Duration,
    /// Set when the API answered `/version` at start: only then are the kinds advertised.
    cluster: Option<ClusterInfo>,
    node: Option<String>,
}

impl std::fmt::Debug for Kube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kube")
            .field("cluster", &self.cluster)
            .finish()
    }
}

impl Kube {
    /// Finds the cluster and asks its version. `Ok(None)` when no cluster is configured; a
    /// configured cluster whose API does not answer is kept (journalled faults can be reverted
    /// once it does) but not advertised. Blocks: call it off the async runtime.
    pub fn connect(opts: &KubeOptions) -> anyhow::Result<Option<Kube>> {
        // `--kubeconfig` is one file; `KUBECONFIG` may list several, merged as kubectl does.
        let kubeconfig = match &opts.kubeconfig {
            Some(path) => Some((
                kube::config::Kubeconfig::read_from(path)
                    .with_context(|| format!("cannot read the kubeconfig {}", path.display()))?,
                path.display().to_string(),
            )),
            None => kube::config::Kubeconfig::from_env()
                .context("cannot read the kubeconfig of KUBECONFIG")?
                .map(|kc| (kc, "KUBECONFIG".to_string())),
        };
        let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
        if kubeconfig.is_none() && !in_cluster {
            return Ok(None);
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("kubernetes".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let _ = tx.send(Ok(rt.handle().clone()));
                rt.block_on(async {
                    let _ = stopped.await;
                });
            })
            .context("failed to start the Kubernetes client's thread")?;
        let handle = rx
            .recv()
            .context("the Kubernetes client's thread ended")?
            .context("failed to start the Kubernetes client's runtime")?;
        let timeout = opts.timeout;
        let (config, context_cluster) = match kubeconfig {
            Some((kc, source)) => {
                let cluster = kc.current_context.as_ref().and_then(|cur| {
                    kc.contexts
                        .iter()
                        .find(|c| &c.name == cur)
                        .and_then(|c| c.context.as_ref())
                        .map(|c| c.cluster.clone())
                });
                let opts = kube::config::KubeConfigOptions::default();
                let config = block(&handle, timeout, async move {
                    kube::Config::from_custom_kubeconfig(kc, &opts).await
                })
                .context("the kubeconfig took too long to load")?
                .with_context(|| format!("cannot use the kubeconfig {source}"))?;
                (config, cluster)
            }
            None => (
                kube::Config::incluster()
                    .context("cannot read the in-cluster service account configuration")?,
                None,
            ),
        };
        let mut config = config;
        config.connect_timeout = Some(timeout);
        config.read_timeout = Some(timeout);
        config.write_timeout = Some(timeout);
        // No retries inside the client: a 429 or 503 must reach the caller within the bound
        // (a drain retries a budget's 429 itself, a probe reports what the API said).
        config.default_retry = false;
        let client = block(
            &handle,
            timeout,
            async move { kube::Client::try_from(config) },
        )
        .context("the Kubernetes client took too long to start")?
        .context("cannot make a Kubernetes client")?;
        let mut kube = Kube {
            client,
            handle,
            _stop: stop,
            timeout,
            cluster: None,
            node: opts.node.clone(),
        };
        let name = opts
            .cluster_name
            .clone()
            .or(context_cluster)
            .unwrap_or_else(|| "in-cluster".into())
            // The hub takes label values up to 255 characters (a cluster ARN can be long).
            .chars()
            .take(255)
            .collect::<String>();
        match kube.call(
            "GET /version",
            |c| async move { c.apiserver_version().await },
        ) {
            Ok(v) => {
                tracing::info!(cluster = %name, version = %v.git_version, "kubernetes API answers");
                kube.cluster = Some(ClusterInfo {
                    name,
                    version: v.git_version,
                });
            }
            Err(e) => tracing::warn!(
                cluster = %name,
                error = %e,
                "kubernetes API does not answer; its fault kinds are not advertised"
            ),
        }
        Ok(Some(kube))
    }

    /// The cluster, when its API answered at start.
    pub fn cluster(&self) -> Option<&ClusterInfo> {
        self.cluster.as_ref()
    }

    /// The node this delegate runs on, when told.
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// Bound of each call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Starts `f` on the client's runtime, for work that outlives a call (a drain's evictions
    /// and watch); it ends when the future does, or with the client.
    pub fn spawn<F, Fut>(&self, f: F) -> tokio::task::JoinHandle<()>
    where
        F: FnOnce(kube::Client) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handle.spawn(f(self.client.clone()))
    }

    /// Runs one API call on the client's runtime and waits for it, at most [`Kube::timeout`].
    pub fn call<T, F, Fut>(&self, what: &str, f: F) -> Result<T, KubeError>
    where
        T: Send + 'static,
        F: FnOnce(kube::Client) -> Fut,
        Fut: Future<Output = Result<T, kube::Error>> + Send + 'static,
    {
        let fut = f(self.client.clone());
        match block(&self.handle, self.timeout, fut) {
            Some(r) => r.map_err(|e| KubeError::of(what, e)),
            None => Err(KubeError::Timeout {
                what: what.into(),
                timeout: self.timeout,
            }),
        }
    }
}

/// Runs `fut` on `handle` and waits for it from this (non-async) thread, at most `timeout`;
/// `None` when it took longer (the call is then dropped).
fn block<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    timeout: Duration,
    fut: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    handle.spawn(async move {
        if let Ok(v) = tokio::time::timeout(timeout, fut).await {
            let _ = tx.send(v);
        }
    });
    // A little longer than the task's own bound, so the task's answer wins a tie.
    rx.recv_timeout(timeout + Duration::from_millis(500)).ok()
}
