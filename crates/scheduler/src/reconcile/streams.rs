//! The streams' own ids: one whose last id was pushed far ahead of the clock (an entry
//! added by hand at a chosen id) takes no more `XADD *`, so producers are refused; with
//! repair, once the entry ahead is gone, its last id goes back to its newest entry.

use flotilla_proto::scripts::{self, ResetReply, ResetStreamId};

use super::{FindingKind, Reconciler, Report};
use crate::SchedulerError;

impl Reconciler {
    /// Checks (and with `repair` resets) the last id of `queue`'s stream.
    pub(super) async fn check_stream_id(
        &mut self,
        queue: &str,
        now: i64,
        repair: bool,
        report: &mut Report,
    ) -> Result<(), SchedulerError> {
        let reset = ResetStreamId {
            queue,
            now_ms: now,
            repair,
        };
        let detail = match scripts::run(&mut self.conn, &self.keys, &reset).await? {
            ResetReply::Unchanged => return Ok(()),
            ResetReply::Reset => {
                let detail = format!(
                    "queue {queue}'s stream had its last id far ahead of the clock; it was \
                     set back to its newest entry, so producers can add jobs again"
                );
                report.add(FindingKind::StreamIdAhead, queue, detail, false, true);
                return Ok(());
            }
            ResetReply::EntryAhead => format!(
                "queue {queue}'s stream holds an entry whose id is far ahead of the clock \
                 (added by hand at a chosen id): producers may be refused until a worker \
                 dead-letters it and reconciliation resets the stream's last id"
            ),
            ResetReply::Ahead => format!(
                "queue {queue}'s stream has its last id far ahead of the clock: producers \
                 are refused (\"exhausted the last possible ID\") or get ids in the future; \
                 `flotilla reconcile --repair` sets it back"
            ),
        };
        report.add(FindingKind::StreamIdAhead, queue, detail, true, false);
        Ok(())
    }
}
