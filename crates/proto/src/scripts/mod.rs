//! The Lua scripts, one per transition, each loaded once and called by SHA, and their
//! typed bindings.
//!
//! Every script is `lua/common.lua` (shared helpers) followed by its own file, whose
//! header names its KEYS and ARGV. All KEYS of one call share a queue's hash tag.
//!
//! Each script has one binding type here that builds its keys and arguments (implementing
//! [`ScriptCall`]) and decodes its reply into an enum, so no other crate orders a
//! script's arguments by position or matches its reply words.

mod assemble;
mod batch;
mod claim;
mod delete;
mod deps;
mod enqueue;
mod expire;
mod fail_many;
mod fast;
mod finish;
mod flow;
mod groups;
mod housekeeping;
mod leader;
mod pulse;
mod reply;
mod start;
mod streams;

use std::sync::LazyLock;

use redis::Script;

use crate::Keys;

pub use batch::{BatchCall, BatchCounts, BatchMode, CallbackKind};
pub use claim::{Claim, ClaimEntry, ClaimReply};
pub use delete::{Delete, DeleteReply};
pub use deps::{
    EnqueueFlow, FlowItem, FlowParent, FlowReply, OnParentEnd, RepairDeps, RepairTarget,
};
pub use enqueue::{Debounce, Enqueue, EnqueueItem, EnqueueMany, EnqueueReply, UniqueLock, When};
pub use expire::{Expire, ExpireReply};
pub use fail_many::{FailMany, FailManyItem, FailManyReply};
pub use fast::FastJob;
pub use finish::{Complete, CompleteItem, Fail, FailReply, FinishReply, HandBack};
pub use flow::{Admission, Admit, Holds, HoldsReply};
pub use groups::{GateReply, GroupGate, ReleaseGroups};
pub use housekeeping::{
    Cancel, CancelReply, ForgetConsumer, Promote, PromoteReply, Purge, PurgeReply, PutBack,
    Requeue, RequeueMode, RequeueReply, Retry, RetryReply,
};
pub use leader::{
    AcquireReply, AdvanceReply, LeaderAcquire, LeaderRelease, LeaderRenew, ScheduleAdvance,
};
pub use pulse::{BeatReply, Heartbeat, HeartbeatItem, Progress, WorkerBeat, WorkerInfo};
pub use start::{Bury, BuryReply, RawJob, SkipReason, Start, StartEntry, StartReply, StartedJob};
pub use streams::{RemoveQueue, ResetReply, ResetStreamId};

/// A script call failed, or answered something its binding does not understand.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// Redis refused the call, or could not be reached.
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    /// The script answered something its binding cannot read.
    #[error("script {script} answered {reply}, which this version does not understand")]
    Reply {
        /// The script's name, as its binding's [`ScriptCall::NAME`] gives it.
        script: &'static str,
        /// The reply as it came, in its debug form.
        reply: String,
    },
}

impl ScriptError {
    pub(crate) fn reply(script: &'static str, value: &redis::Value) -> Self {
        ScriptError::Reply {
            script,
            reply: format!("{value:?}"),
        }
    }

    /// The Redis error behind this one, if any (to tell "Redis is away" from a bug).
    pub fn redis(&self) -> Option<&redis::RedisError> {
        match self {
            ScriptError::Redis(e) => Some(e),
            ScriptError::Reply { .. } => None,
        }
    }
}

/// A typed call of one script: its keys and arguments from named fields, its reply as a
/// type of its own.
pub trait ScriptCall {
    /// What one call answers, decoded.
    type Reply;
    /// The script's name, for errors.
    const NAME: &'static str;
    /// The EVALSHA call, keys built with their hash tags.
    fn call(&self, keys: &Keys) -> Call;
    /// Reads a successful reply.
    fn parse(value: redis::Value) -> Result<Self::Reply, ScriptError>;
    /// Reads a reply that may be an error (some scripts answer with error replies).
    fn parse_result(result: redis::RedisResult<redis::Value>) -> Result<Self::Reply, ScriptError> {
        Self::parse(result?)
    }
}

/// Runs one call alone and reads its reply.
pub async fn run<S: ScriptCall, C: redis::aio::ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    script: &S,
) -> Result<S::Reply, ScriptError> {
    S::parse_result(script.call(keys).invoke::<redis::Value, _>(conn).await)
}

/// Runs calls of one script in one pipeline; one reply per call, in order. The outer
/// error means the pipeline itself failed (Redis away).
pub async fn run_all<S: ScriptCall, C: redis::aio::ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    scripts: &[S],
) -> Result<Vec<Result<S::Reply, ScriptError>>, redis::RedisError> {
    let commands: Vec<redis::Cmd> = scripts.iter().map(|s| s.call(keys).cmd()).collect();
    Ok(exec_pipeline(conn, &commands)
        .await?
        .into_iter()
        .map(S::parse_result)
        .collect())
}

/// A script's whole source: the shared helpers it uses, then the script's own file.
macro_rules! source {
    ($file:literal) => {
        assemble::assemble(
            include_str!("lua/common.lua"),
            include_str!(concat!("lua/", $file)),
        )
    };
}

macro_rules! script {
    ($name:ident, $file:literal, $doc:literal) => {
        #[doc = $doc]
        pub(crate) static $name: LazyLock<Script> = LazyLock::new(|| Script::new(&source!($file)));
    };
}

/// The scripts published for producers in other languages, by file name, with their
/// sources: each is served byte for byte as `protocol/v2/<name>` (and bundled by the
/// clients), so a producer that EVALs it does exactly what the Rust producer does. Tests
/// keep the copies identical.
pub fn published() -> Vec<(&'static str, String)> {
    vec![
        ("enqueue.lua", source!("enqueue.lua")),
        ("enqueue_flow.lua", source!("enqueue_flow.lua")),
        ("batch.lua", source!("batch.lua")),
    ]
}

script!(
    PURGE,
    "purge.lua",
    "Delete finished jobs of one status that ended before a cutoff."
);
script!(
    DELETE,
    "delete.lua",
    "Remove a job that is not running, with every trace of it."
);
script!(
    RETRY,
    "retry.lua",
    "Put a dead job back on its stream with a fresh set of attempts."
);
script!(
    ENQUEUE,
    "enqueue.lua",
    "Put a job with an id of its own on its stream, in `later`, or in `delayed` with a record."
);
script!(
    ENQUEUE_MANY,
    "enqueue_many.lua",
    "Create a batch of one queue's jobs without unique keys, as `enqueue` would each."
);
script!(
    START,
    "start.lua",
    "Begin attempts (a batch of one queue): count each, take leases, or bury poison pills."
);
script!(
    CLAIM,
    "claim.lua",
    "Claim delivered entries that carry jobs with ids of their own (a batch of one queue)."
);
script!(
    COMPLETE,
    "complete.lua",
    "Finish attempts (a batch of one queue) successfully where their leases are current."
);
script!(
    FAIL,
    "fail.lua",
    "End an attempt with an error: retry now, later, or go dead."
);
script!(
    FAIL_MANY,
    "fail_many.lua",
    "Retry failed fast-path attempts (a batch of one queue) without a record."
);
script!(
    HEARTBEAT,
    "heartbeat.lua",
    "Refresh a worker's own entries; report lost or cancelled jobs."
);
script!(
    HANDBACK,
    "handback.lua",
    "Return a running job to its stream, attempt not charged."
);
script!(
    PUTBACK,
    "putback.lua",
    "Return delivered entries that never started to their stream, unrun and uncharged."
);
script!(
    RESET_STREAM_ID,
    "reset_stream_id.lua",
    "Bring a stream's last id back from far ahead of the clock (reconciliation)."
);
script!(
    REMOVE_QUEUE,
    "remove_queue.lua",
    "Delete one partition of a queue that holds nothing to run, with its history."
);
script!(
    PROMOTE,
    "promote.lua",
    "Move due jobs from `delayed` to their stream."
);
script!(CANCEL, "cancel.lua", "Cancel a job that has not finished.");
script!(
    BURY,
    "bury.lua",
    "Send an undecodable entry straight to the dead-letter queue."
);
script!(
    RELEASE_GROUPS,
    "release_groups.lua",
    "Give back completed grouped jobs' places and let their groups' next jobs through."
);
script!(
    GROUP_GATE,
    "group_gate.lua",
    "Let a job of a group that skipped its group's gate run, or put it in its group's line."
);
script!(
    EXPIRE,
    "expire.lua",
    "End a delivered fast-path job that may no longer start as expired, unrun."
);
script!(
    WORKER_BEAT,
    "worker_beat.lua",
    "Record a worker's heartbeat on the server's clock."
);
script!(
    PROGRESS,
    "progress.lua",
    "Record a running attempt's progress while its lease is current."
);
script!(
    REQUEUE,
    "requeue.lua",
    "Put a stranded job back on its stream (reconciliation)."
);
script!(
    FORGET_CONSUMER,
    "forget_consumer.lua",
    "Delete a consumer that owns no entries."
);
script!(
    LEADER_ACQUIRE,
    "leader_acquire.lua",
    "Take the scheduler lease, bumping the fencing epoch."
);
script!(
    LEADER_RENEW,
    "leader_renew.lua",
    "Compare-and-extend the scheduler lease."
);
script!(
    LEADER_RELEASE,
    "leader_release.lua",
    "Give the scheduler lease up at once."
);
script!(
    ADMIT,
    "admit.lua",
    "Let jobs of a flow-limited queue start within its rate and concurrency cap."
);
script!(
    HOLDS,
    "holds.lua",
    "Give back a worker's slots of a capped queue and renew the lease of the rest."
);
script!(
    SCHEDULE_ADVANCE,
    "schedule_advance.lua",
    "Record a schedule's last tick, fenced by epoch."
);

script!(
    ENQUEUE_FLOW,
    "enqueue_flow.lua",
    "Create a flow of jobs that wait for their parents, all of it or none."
);

script!(
    BATCH,
    "batch.lua",
    "Open a batch of jobs with callbacks, add jobs to an open one, or seal it."
);

script!(
    REPAIR_DEPS,
    "repair_deps.lua",
    "Look at a waiting job or a batch for an end no script told it, and tell it."
);

/// Every script, for loading them all at once.
pub(crate) fn all() -> [&'static Script; 34] {
    [
        &REPAIR_DEPS,
        &BATCH,
        &ENQUEUE_FLOW,
        &GROUP_GATE,
        &RELEASE_GROUPS,
        &EXPIRE,
        &ADMIT,
        &HOLDS,
        &ENQUEUE_MANY,
        &CLAIM,
        &REMOVE_QUEUE,
        &RESET_STREAM_ID,
        &PUTBACK,
        &ENQUEUE,
        &START,
        &COMPLETE,
        &FAIL,
        &FAIL_MANY,
        &HEARTBEAT,
        &HANDBACK,
        &PROMOTE,
        &CANCEL,
        &BURY,
        &PROGRESS,
        &WORKER_BEAT,
        &REQUEUE,
        &RETRY,
        &PURGE,
        &DELETE,
        &FORGET_CONSUMER,
        &LEADER_ACQUIRE,
        &LEADER_RENEW,
        &LEADER_RELEASE,
        &SCHEDULE_ADVANCE,
    ]
}

/// Loads every script into the server's cache (after a restart the cache is empty).
pub async fn load_all<C: redis::aio::ConnectionLike>(conn: &mut C) -> redis::RedisResult<()> {
    for script in all() {
        script.load_async(conn).await?;
    }
    Ok(())
}

/// Sends script calls (and any other commands) in one pipeline, one reply per command.
/// Calls the server has no script for are re-sent once after loading every script, so a
/// Redis restart costs one extra round trip instead of an error.
pub async fn exec_pipeline<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    commands: &[redis::Cmd],
) -> redis::RedisResult<Vec<redis::RedisResult<redis::Value>>> {
    let mut results = send(conn, commands.iter()).await?;
    let missing: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, Err(e) if is_no_script(e)))
        .map(|(i, _)| i)
        .collect();
    if missing.is_empty() {
        return Ok(results);
    }
    load_all(conn).await?;
    let retried = send(conn, missing.iter().map(|&i| &commands[i])).await?;
    for (i, result) in missing.into_iter().zip(retried) {
        results[i] = result;
    }
    Ok(results)
}

async fn send<'a, C: redis::aio::ConnectionLike>(
    conn: &mut C,
    commands: impl Iterator<Item = &'a redis::Cmd>,
) -> redis::RedisResult<Vec<redis::RedisResult<redis::Value>>> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for cmd in commands {
        pipe.add_command(cmd.clone());
    }
    pipe.query_async(conn).await
}

fn is_no_script(err: &redis::RedisError) -> bool {
    err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
}

/// One call of a script: its keys and arguments, sent as EVALSHA alone or in a pipeline.
/// Built only by the bindings of this module.
#[derive(Debug, Clone)]
pub struct Call {
    script: &'static Script,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
}

impl Call {
    pub(crate) fn new(script: &'static LazyLock<Script>) -> Self {
        Self {
            script: LazyLock::force(script),
            keys: Vec::new(),
            args: Vec::new(),
        }
    }

    pub(crate) fn key(mut self, key: impl redis::ToRedisArgs) -> Self {
        self.keys.extend(key.to_redis_args());
        self
    }

    pub(crate) fn arg(mut self, arg: impl redis::ToRedisArgs) -> Self {
        self.args.extend(arg.to_redis_args());
        self
    }

    /// The EVALSHA command, for a pipeline (see [`exec_pipeline`]).
    pub fn cmd(&self) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.script.get_hash())
            .arg(self.keys.len())
            .arg(&self.keys)
            .arg(&self.args);
        cmd
    }

    /// Runs the call alone, loading the script first if the server has forgotten it.
    pub async fn invoke<T: redis::FromRedisValue, C: redis::aio::ConnectionLike>(
        &self,
        conn: &mut C,
    ) -> redis::RedisResult<T> {
        match self.cmd().query_async(conn).await {
            Err(e) if is_no_script(&e) => {
                self.script.load_async(conn).await?;
                self.cmd().query_async(conn).await
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    /// A script missing from [`all`] would answer NOSCRIPT in every pipeline that sends it
    /// before anything else loaded it.
    #[test]
    fn every_script_file_is_loaded_with_the_others() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/scripts/lua");
        let files = std::fs::read_dir(dir)
            .expect("the scripts' folder")
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.ends_with(".lua") && name != "common.lua")
            .count();
        assert_eq!(super::all().len(), files);
    }
}
