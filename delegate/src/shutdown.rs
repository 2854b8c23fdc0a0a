//! Shutdown signals: SIGTERM and SIGINT both mean "revert everything, flush, exit 0".
use tokio::signal::unix::{signal as unix_signal, SignalKind};

/// Resolves on the first SIGTERM or SIGINT.
pub async fn signal() {
    let (mut term, mut int) = match (
        unix_signal(SignalKind::terminate()),
        unix_signal(SignalKind::interrupt()),
    ) {
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
