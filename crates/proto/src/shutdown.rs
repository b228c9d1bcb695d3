//! Shutdown as one small type shared by workers and schedulers: SIGTERM or SIGINT starts
//! a graceful stop (a worker drains, a scheduler hands its lease over); a second signal
//! exits at once.

use tokio_util::sync::CancellationToken;

/// Tells a worker to stop fetching and drain, or a scheduler to step down. Clones share
/// one signal.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

/// Exit status when a second signal cuts the drain short (128 + SIGINT, as shells do).
const FORCED_EXIT_CODE: i32 = 130;

impl Shutdown {
    /// A shutdown that only [`Shutdown::trigger`] starts (tests, embedding).
    pub fn new() -> Self {
        Self::default()
    }

    /// A shutdown started by the first SIGTERM or SIGINT; the second one exits the process
    /// immediately. Must be called inside a tokio runtime.
    pub fn on_signals() -> Self {
        let shutdown = Self::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested: finishing running jobs (signal again to exit now)");
            trigger.trigger();
            wait_for_signal().await;
            tracing::warn!("second signal: exiting without waiting for running jobs");
            std::process::exit(FORCED_EXIT_CODE);
        });
        shutdown
    }

    pub fn trigger(&self) {
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes once shutdown has been requested.
    pub async fn triggered(&self) {
        self.token.cancelled().await;
    }
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            tracing::error!("cannot install signal handlers; shutdown only by ctrl-c");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
