//! The bindings a live worker sends while it runs jobs: `heartbeat` (refresh its entries,
//! rule 4), `worker_beat` (its registry entry) and `progress`.

use super::fast::{entry_range, fast_args};
use super::reply::{flag, int, words};
use super::{Call, FastJob, HEARTBEAT, PROGRESS, ScriptCall, ScriptError, WORKER_BEAT};
use crate::{CONSUMER_GROUP, Keys, worker_field};

/// Refresh a worker's in-flight entries of one queue.
#[derive(Debug, Clone)]
pub struct Heartbeat<'a> {
    /// The queue (or partition) the attempts run on.
    pub queue: &'a str,
    /// This worker's consumer name.
    pub consumer: &'a str,
    /// The running attempts, each answered in order.
    pub items: Vec<HeartbeatItem<'a>>,
}

/// One running attempt.
#[derive(Debug, Clone)]
pub struct HeartbeatItem<'a> {
    /// The job's id: its own, or its entry id for a job without one.
    pub job_id: &'a str,
    /// The stream entry that delivered the attempt, whose idle time is reset.
    pub entry_id: &'a str,
    /// The attempt's lease token, which fences an attempt that has a record.
    pub lease: &'a str,
    /// A fast-path attempt's delivery count when it began; 0 when it has a record.
    pub delivery: u32,
}

/// What a heartbeat learned about one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeatReply {
    /// Still this worker's: refreshed.
    Ok,
    /// Its lease or entry belongs to another worker now.
    Lost,
    /// The job was cancelled: its handler should stop.
    Cancelled,
    /// Its record is gone (Redis lost its data, or it was deleted).
    Missing,
    /// A fast-path job's entry was deleted from its stream (by hand, or finished by a
    /// worker that reclaimed it).
    Gone,
}

impl ScriptCall for Heartbeat<'_> {
    /// One reply per item, in order.
    type Reply = Vec<BeatReply>;
    const NAME: &'static str = "heartbeat";

    fn call(&self, keys: &Keys) -> Call {
        let mut call = Call::new(&HEARTBEAT)
            .key(keys.stream(self.queue))
            .arg(CONSUMER_GROUP)
            .arg(self.consumer);
        let (low, high) = entry_range(self.items.iter().map(|item| item.entry_id));
        call = call.arg(low).arg(high);
        for item in &self.items {
            call = call
                .key(keys.job(self.queue, item.job_id))
                .arg(item.entry_id)
                .arg(item.lease)
                .arg(item.delivery);
        }
        call
    }

    fn parse(value: redis::Value) -> Result<Vec<BeatReply>, ScriptError> {
        let parse = |w: &String| {
            Some(match w.as_str() {
                "ok" => BeatReply::Ok,
                "lost" => BeatReply::Lost,
                "cancelled" => BeatReply::Cancelled,
                "missing" => BeatReply::Missing,
                "gone" => BeatReply::Gone,
                _ => return None,
            })
        };
        words(&value)
            .and_then(|words| words.iter().map(parse).collect())
            .ok_or_else(|| ScriptError::reply(Self::NAME, &value))
    }
}

/// What a worker says about itself in the registry.
#[derive(Debug, Clone)]
pub struct WorkerInfo<'a> {
    /// The worker's instance id (`<host>-<pid>-<random>`), which names its registry entry.
    pub worker_id: &'a str,
    /// The machine it runs on (the pod name on Kubernetes).
    pub host: &'a str,
    /// Its process id.
    pub pid: u32,
    /// The Flotilla version it runs.
    pub version: &'a str,
    /// The queues it consumes, stored comma-separated.
    pub queues: &'a [&'a str],
    /// How many jobs it runs at once at most.
    pub concurrency: usize,
    /// How many jobs it is running now.
    pub in_flight: usize,
    /// When it started, ms since the Unix epoch on its own clock.
    pub started_at_ms: u64,
    /// How long its entries may go unrefreshed: nobody calls it gone sooner.
    pub lease_ms: u64,
}

/// Record a worker's heartbeat on the server's clock.
#[derive(Debug, Clone)]
pub struct WorkerBeat<'a> {
    /// What its registry entry says.
    pub info: WorkerInfo<'a>,
}

impl ScriptCall for WorkerBeat<'_> {
    /// The heartbeat time, ms on the server's clock.
    type Reply = i64;
    const NAME: &'static str = "worker_beat";

    fn call(&self, keys: &Keys) -> Call {
        let i = &self.info;
        Call::new(&WORKER_BEAT)
            .key(keys.workers())
            .key(keys.worker(i.worker_id))
            .arg(i.worker_id)
            // The hash outlives two leases without a beat, then expires by itself.
            .arg(i.lease_ms * 2)
            .arg("id")
            .arg(i.worker_id)
            .arg("host")
            .arg(i.host)
            .arg("pid")
            .arg(i.pid)
            .arg("version")
            .arg(i.version)
            .arg(worker_field::QUEUES)
            .arg(i.queues.join(","))
            .arg("concurrency")
            .arg(i.concurrency)
            .arg("in_flight")
            .arg(i.in_flight)
            .arg("started_at")
            .arg(i.started_at_ms)
            .arg(worker_field::LEASE_MS)
            .arg(i.lease_ms)
    }

    fn parse(value: redis::Value) -> Result<i64, ScriptError> {
        int(&value).ok_or_else(|| ScriptError::reply(Self::NAME, &value))
    }
}

/// Record a running attempt's progress while its lease is current.
#[derive(Debug, Clone)]
pub struct Progress<'a> {
    /// The queue (or partition) the attempt runs on.
    pub queue: &'a str,
    /// The job's id: its own, or its entry id for a job without one.
    pub job_id: &'a str,
    /// The stream entry that delivered the attempt.
    pub entry_id: &'a str,
    /// The attempt's lease token: progress is written only while the record holds it.
    pub lease: &'a str,
    /// This worker's consumer name.
    pub consumer: &'a str,
    /// A fast-path attempt's job, which gets its record here, and the delivery count the
    /// attempt is current at.
    pub fast: Option<&'a FastJob>,
    /// The entry's delivery count when a fast-path attempt began; read only with `fast`.
    pub delivery: u32,
    /// JSON text.
    pub progress: &'a str,
}

impl ScriptCall for Progress<'_> {
    /// True if recorded, false if the lease is no longer current.
    type Reply = bool;
    const NAME: &'static str = "progress";

    fn call(&self, keys: &Keys) -> Call {
        let call = Call::new(&PROGRESS)
            .key(keys.job(self.queue, self.job_id))
            .key(keys.stream(self.queue))
            .arg(self.lease)
            .arg(self.progress)
            .arg(CONSUMER_GROUP)
            .arg(self.consumer)
            .arg(self.entry_id)
            .arg(self.job_id)
            .arg(self.queue);
        fast_args(call, self.delivery, self.fast)
    }

    fn parse(value: redis::Value) -> Result<bool, ScriptError> {
        flag(Self::NAME, &value)
    }
}
