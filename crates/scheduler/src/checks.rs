//! The leader's periodic checks: reconciliation followed by alert evaluation, in a task
//! that lives exactly as long as one leadership term.

use flotilla_proto::Keys;
use flotilla_proto::SharedConnection;
use tokio::task::JoinHandle;

use crate::{Alerter, Reconciler, SchedulerConfig};

/// The checks of the current term. They run in their own task, so a long sweep never
/// delays a tick; dropping this value (on stepping down or shutting down) stops them at
/// once, so a replica that no longer leads never repairs or alerts.
#[derive(Debug)]
pub(crate) struct TermChecks {
    task: JoinHandle<()>,
}

impl TermChecks {
    /// Starts the checks: the first pass at once, then one per `reconcile.interval`.
    pub(crate) fn start(conn: &SharedConnection, keys: &Keys, config: &SchedulerConfig) -> Self {
        let reconciler = Reconciler::new(conn.clone(), keys.clone(), config.reconcile.clone());
        let alerter = Alerter::new(conn.clone(), keys.clone(), config.alerts.clone());
        let interval = config.reconcile.interval;
        let repair = config.reconcile.repair;
        let task = tokio::spawn(async move {
            let mut reconciler = reconciler;
            let mut alerter = alerter;
            loop {
                reconcile_and_alert(&mut reconciler, &mut alerter, repair).await;
                tokio::time::sleep(interval).await;
            }
        });
        Self { task }
    }
}

impl Drop for TermChecks {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One reconciliation pass followed by alert evaluation; failures are logged and the
/// next pass tries again.
async fn reconcile_and_alert(reconciler: &mut Reconciler, alerter: &mut Alerter, repair: bool) {
    let report = match reconciler.run(repair, false).await {
        Ok(report) => report,
        Err(e) => {
            tracing::warn!("reconciliation failed (will retry): {e}");
            return;
        }
    };
    report.log();
    let now = match reconciler.now().await {
        Ok(now) => now,
        Err(e) => {
            tracing::warn!("cannot read the server clock for alerts: {e}");
            return;
        }
    };
    if let Err(e) = alerter.evaluate(&report, now).await {
        tracing::warn!("alert evaluation failed (will retry): {e}");
    }
}
