//! The dead-man switch: when the hub has been unreachable for longer than the timeout, every
//! running run is stopped and its faults reverted, so a delegate cut off from its operators
//! never leaves an experiment running. The runs' final events wait in the outbox for the hub.
use crate::executor::{Executor, Stop};
use faultline_experiment::Dur;
use tokio::{
    sync::watch,
    time::{sleep_until, Instant},
};

/// Watches the link state (`None` while a stream is up, else since when the hub has been
/// unreachable) and fires once per outage. Ends when the link is gone.
pub async fn watch(exec: Executor, mut link: watch::Receiver<Option<Instant>>, timeout: Dur) {
    loop {
        let down_since = *link.borrow_and_update();
        if let Some(since) = down_since {
            tokio::select! {
                _ = sleep_until(since + timeout.0) => {
                    if !exec.running().is_empty() {
                        tracing::error!(%timeout, "hub unreachable for longer than the dead-man timeout; stopping every run");
                        exec.stop_all(Stop::DeadMan(timeout)).await;
                    }
                }
                changed = link.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    continue;
                }
            }
        }
        if link.changed().await.is_err() {
            return;
        }
    }
}
