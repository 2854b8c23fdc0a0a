//! Shutdown signals: SIGTERM and SIGINT both mean "revert everything, flush, exit 0".
use std::future::Future;
use tokio::signal::unix::{signal as unix_signal, SignalKind};

/// Installs the SIGTERM and SIGINT handlers now, and resolves on the first of them. Installing
/// at the call (inside the runtime), not at the first poll, means a signal sent right after the
/// process said it is ready is never left to the default action (which kills it).
pub fn signal() -> impl Future<Output = ()> {
    let handlers = (
        unix_signal(SignalKind::terminate()),
        unix_signal(SignalKind::interrupt()),
    );
    async move {
        let (mut term, mut int) = match handlers {
            (Ok(t), Ok(i)) => (t, i),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "cannot install signal handlers; stop the delegate with SIGKILL");
                return std::future::pending().await;
            }
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("received SIGTERM"),
            _ = int.recv() => tracing::info!("received SIGINT"),
        }
    }
}
