//! Job states and the transitions between them.

use std::fmt;
use std::str::FromStr;

use crate::ProtoError;

/// Where a job is in its life. See docs/PROTOCOL.md, "States".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting for its parents to end (protocol 2.19): on no stream yet.
    Waiting,
    /// Waiting in `delayed` for its run time.
    Scheduled,
    /// On its stream, ready to run.
    Pending,
    /// An attempt is under way on a worker.
    Running,
    /// Finished successfully.
    Completed,
    /// The last attempt failed; a retry is due at `next_run_at`.
    Failed,
    /// Attempts spent or the error was permanent; in the dead-letter queue.
    Dead,
    /// Cancelled before it finished.
    Cancelled,
    /// Not started before its `expires_at`: ended without running.
    Expired,
}

impl Status {
    /// Every state, each once.
    pub const ALL: [Status; 9] = [
        Status::Waiting,
        Status::Scheduled,
        Status::Pending,
        Status::Running,
        Status::Completed,
        Status::Failed,
        Status::Dead,
        Status::Cancelled,
        Status::Expired,
    ];

    /// Its name in a record's `status` field, e.g. `running`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Waiting => "waiting",
            Status::Scheduled => "scheduled",
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Dead => "dead",
            Status::Cancelled => "cancelled",
            Status::Expired => "expired",
        }
    }

    /// True when nothing more will happen to the job.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Completed | Status::Dead | Status::Cancelled | Status::Expired
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = ProtoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| ProtoError::UnknownStatus(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>().ok(), Some(status));
        }
        assert!("finished".parse::<Status>().is_err());
    }
}
