//! A SCAN over one queue's keys that a periodic pass resumes where the last one stopped,
//! so each pass reads at most `sweep_budget` keys and every key is visited over several.

use super::{Reconciler, Report};
use crate::SchedulerError;

/// Keys asked for per SCAN step.
const SCAN_COUNT: usize = 500;

/// One pass of a resumable SCAN; [`Reconciler::next_page`] reads it page by page.
pub(super) struct Sweep {
    /// What the cursor is remembered under between passes.
    name: String,
    pattern: String,
    cursor: u64,
    examined: usize,
    /// Read to the end, from the start, whatever the budget.
    full: bool,
    over: bool,
}

impl Reconciler {
    /// Begins a pass over the keys matching `pattern`, from where the last pass under
    /// `name` stopped, or from the start when `full`.
    pub(super) fn begin_sweep(&self, name: String, pattern: String, full: bool) -> Sweep {
        let cursor = if full {
            0
        } else {
            self.cursors.get(&name).copied().unwrap_or(0)
        };
        Sweep {
            name,
            pattern,
            cursor,
            examined: 0,
            full,
            over: false,
        }
    }

    /// The next page of keys, or `None` once the pass is over: at the end of the keys,
    /// or, unless `full`, past the budget (the report then says the sweep is partial).
    pub(super) async fn next_page(
        &mut self,
        sweep: &mut Sweep,
        report: &mut Report,
    ) -> Result<Option<Vec<String>>, SchedulerError> {
        if sweep.over {
            return Ok(None);
        }
        let (next, keys) = flotilla_proto::consume::scan_step(
            &mut self.conn,
            sweep.cursor,
            &sweep.pattern,
            SCAN_COUNT,
        )
        .await?;
        sweep.examined += keys.len();
        sweep.cursor = next;
        if next == 0 {
            sweep.over = true;
        } else if !sweep.full && sweep.examined >= self.config.sweep_budget {
            report.complete_sweep = false;
            sweep.over = true;
        }
        Ok(Some(keys))
    }

    /// Ends a pass: the next one resumes where it stopped. Answers the keys it examined.
    pub(super) fn end_sweep(&mut self, sweep: Sweep) -> usize {
        self.cursors.insert(sweep.name, sweep.cursor);
        sweep.examined
    }
}
