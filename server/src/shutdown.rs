//! SIGTERM and SIGINT, in one place.
use std::future::Future;
use tokio::signal::unix::{signal as unix_signal, SignalKind};

/// Installs the SIGTERM and SIGINT handlers now (call it inside the runtime, before saying the
/// process is ready: a signal before the first poll is then not left to the default action,
/// which kills the process) and resolves on the first of them.
pub fn signal() -> impl Future<Output = ()> {
    let handlers = (
        unix_signal(SignalKind::terminate()),
        unix_signal(SignalKind::interrupt()),
    );
    async move {
        let (mut term, mut int) = match handlers {
            (Ok(t), Ok(i)) => (t, i),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "cannot install signal handlers; stop with SIGKILL");
                return std::future::pending().await;
            }
        };
        tokio::select! {
            _ = int.recv() => tracing::info!("SIGINT received; shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM received; shutting down"),
        }
    }
}
