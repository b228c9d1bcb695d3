//! Shutdown as one small type shared by workers and schedulers: SIGTERM or SIGINT starts
//! a graceful stop (a worker drains, a scheduler hands its lease over); a second signal
//! exits at once. A service that embeds a worker drives it with its own token instead.

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

    /// A shutdown the host service's own token drives: cancelling `token` starts it (and
    /// triggering this cancels `token`). Nothing here watches signals or exits the
    /// process: the host decides.
    pub fn from_token(token: CancellationToken) -> Self {
        Self { token }
    }

    /// A shutdown started by the first SIGTERM or SIGINT, for a service that runs more
    /// than Flotilla: unlike [`Shutdown::on_signals`], a second signal does not exit the
    /// process. Must be called inside a tokio runtime.
    pub fn on_first_signal() -> Self {
        let shutdown = Self::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested: finishing running jobs");
            trigger.trigger();
        });
        shutdown
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

    /// Starts the shutdown, for every clone (and cancels the token it shares with a host).
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Whether shutdown has been requested.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_token_drives_the_shutdown() {
        let host = CancellationToken::new();
        let shutdown = Shutdown::from_token(host.child_token());
        assert!(!shutdown.is_triggered());
        host.cancel();
        assert!(shutdown.is_triggered());
        let own = CancellationToken::new();
        Shutdown::from_token(own.clone()).trigger();
        assert!(own.is_cancelled(), "triggering it tells the host");
    }
}
