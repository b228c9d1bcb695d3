//! What is decided for one fetched entry: start it through `start`, run it on the fast
//! path, or bury it. A leaf: the deciding (`plan`) and the beginning (`begin`) both use it.

use flotilla_proto::EntryFields;

use crate::fetch::reads::Fetched;

/// An entry to start.
pub(super) struct StartPlan {
    pub(super) fetched: Fetched,
    pub(super) fields: EntryFields,
    pub(super) job_id: String,
    pub(super) lease: String,
}

/// An entry to dead-letter without running it.
pub(super) struct BuryPlan {
    pub(super) fetched: Fetched,
    pub(super) reason: String,
}

/// A fast-path entry to run: the whole job is in it.
pub(super) struct FastPlan {
    pub(super) fetched: Fetched,
    pub(super) fields: EntryFields,
}
