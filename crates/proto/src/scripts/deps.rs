//! The `enqueue_flow` binding: create jobs that wait for other jobs (protocol 2.19), the
//! whole flow in one call or none of it; and `repair_deps`, which finds (and tells) an end
//! no script told a waiting job or a batch.

use std::fmt;
use std::str::FromStr;

use super::enqueue::EnqueueItem;
use super::reply::{items, text};
use super::{Call, ENQUEUE_FLOW, REPAIR_DEPS, ScriptCall, ScriptError};
use crate::Keys;

/// What a job does when one of its parents ends without completing (dead, cancelled,
/// expired or deleted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum OnParentEnd {
    /// It ends as `cancelled` without running, and so do the jobs waiting for it.
    #[default]
    Cancel,
    /// It runs anyway once its other parents are done.
    Run,
    /// It waits, blocked, until an operator's retry of the dead parent completes.
    Wait,
}

impl OnParentEnd {
    /// Its name in the protocol: `cancel`, `run` or `wait`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnParentEnd::Cancel => "cancel",
            OnParentEnd::Run => "run",
            OnParentEnd::Wait => "wait",
        }
    }
}

impl fmt::Display for OnParentEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OnParentEnd {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cancel" => Ok(OnParentEnd::Cancel),
            "run" => Ok(OnParentEnd::Run),
            "wait" => Ok(OnParentEnd::Wait),
            other => Err(format!("{other:?} is none of cancel, run, wait")),
        }
    }
}

/// One parent a job of a flow waits for.
#[derive(Debug, Clone)]
pub struct FlowParent<'a> {
    /// The parent's queue (or partition).
    pub queue: &'a str,
    /// The parent's id: a job of the flow, or one enqueued before.
    pub id: &'a str,
    /// What the child does if this parent ends without completing.
    pub on_end: OnParentEnd,
}

/// One job of a flow.
#[derive(Debug, Clone)]
pub struct FlowItem<'a> {
    /// The queue (or partition) it goes to.
    pub queue: &'a str,
    /// The job itself, as for an enqueue without a unique key (its `when` counts from
    /// the moment its last parent is done).
    pub job: EnqueueItem<'a>,
    /// The jobs it waits for.
    pub parents: Vec<FlowParent<'a>>,
}

/// Where a job of a new flow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowReply {
    /// Enqueued at once: it waits for nothing (or its parents were done already).
    Created,
    /// Waiting for its parents.
    Waiting,
}

/// Create a flow: every job, its edges checked (no cycle, every parent known), in one
/// call. A refusal writes nothing and comes back as the script's error (`BAD_FLOW`,
/// `BAD_ARG`, `BAD_ID`), its text naming the job.
#[derive(Debug, Clone)]
pub struct EnqueueFlow<'a> {
    /// The flow's id (a name), under which its jobs are listed for a week; empty for
    /// none.
    pub id: &'a str,
    /// The jobs, parents before or after their children in any order.
    pub jobs: Vec<FlowItem<'a>>,
}

impl ScriptCall for EnqueueFlow<'_> {
    /// One reply per job, in order.
    type Reply = Vec<FlowReply>;
    const NAME: &'static str = "enqueue_flow";

    fn call(&self, keys: &Keys) -> Call {
        let first = self.jobs.first().map_or("", |job| job.queue);
        let mut call = Call::new(&ENQUEUE_FLOW)
            .key(keys.stream(first))
            .arg(keys.namespace())
            .arg(self.jobs.len())
            .arg(self.id);
        for item in &self.jobs {
            call = item
                .job
                .args(call, 0, 0, item.queue, "")
                .arg(0)
                .arg(0)
                .arg(item.job.expires_at_ms)
                .arg(item.job.group)
                .arg(item.parents.len());
            for parent in &item.parents {
                call = call
                    .arg(parent.queue)
                    .arg(parent.id)
                    .arg(parent.on_end.as_str());
            }
        }
        call
    }

    fn parse(value: redis::Value) -> Result<Self::Reply, ScriptError> {
        let words: Vec<String> = items(value.clone())
            .map(|items| items.iter().filter_map(text).collect())
            .ok_or_else(|| ScriptError::reply(Self::NAME, &value))?;
        words
            .iter()
            .map(|word| match word.as_str() {
                "created" => Ok(FlowReply::Created),
                "waiting" => Ok(FlowReply::Waiting),
                _ => Err(ScriptError::reply(Self::NAME, &value)),
            })
            .collect()
    }
}

/// What `repair_deps` looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepairTarget {
    /// A job waiting for its parents.
    Job,
    /// A batch.
    Batch,
}

/// Look at one waiting job or one batch for an end no script told it; with `repair`,
/// tell it now. Answers one text per finding (see the script's header): `untold …`,
/// `gone …`, `unhooked …`, `undecided …`.
#[derive(Debug, Clone)]
pub struct RepairDeps<'a> {
    /// The queue (or partition) of the job or batch.
    pub queue: &'a str,
    /// A waiting job or a batch.
    pub target: RepairTarget,
    /// Its id.
    pub id: &'a str,
    /// Repair what it finds.
    pub repair: bool,
    /// How long the records of jobs a repair cancels are kept, ms.
    pub retention_ms: u64,
}

impl ScriptCall for RepairDeps<'_> {
    type Reply = Vec<String>;
    const NAME: &'static str = "repair_deps";

    fn call(&self, keys: &Keys) -> Call {
        Call::new(&REPAIR_DEPS)
            .key(keys.stream(self.queue))
            .arg(keys.namespace())
            .arg(self.queue)
            .arg(match self.target {
                RepairTarget::Job => "job",
                RepairTarget::Batch => "batch",
            })
            .arg(self.id)
            .arg(if self.repair { "repair" } else { "" })
            .arg(self.retention_ms)
    }

    fn parse(value: redis::Value) -> Result<Self::Reply, ScriptError> {
        items(value.clone())
            .map(|items| items.iter().filter_map(text).collect())
            .ok_or_else(|| ScriptError::reply(Self::NAME, &value))
    }
}
