//! Running what was fetched: `claim` keeps each own id to one entry, `dispatch` plans
//! and starts a batch in the order it was fetched (`start_line`, `slots`), `runner` runs
//! one attempt, `completer` writes outcomes in batches, and `heartbeat` keeps the
//! leases of what `inflight` tracks.

pub(crate) mod claim;
pub(crate) mod completer;
pub(crate) mod dispatch;
pub(crate) mod heartbeat;
pub(crate) mod inflight;
pub(crate) mod runner;
pub(crate) mod slots;
pub(crate) mod start_line;
