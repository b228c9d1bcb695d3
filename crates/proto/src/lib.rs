//! The Flotilla wire contract: the one crate that knows Redis key names, stream-entry and
//! job-record fields, job states, payload encodings and the Lua scripts that move jobs
//! between states.
//!
//! Every other crate asks this one; nothing else spells a key or a field name. It also
//! holds the few pieces every process shares: the job policy and the shutdown signal. A
//! producer in another language needs only what `docs/PROTOCOL.md` describes, which is
//! what this crate implements.
//!
//! ```
//! use flotilla_proto::Keys;
//! let keys = Keys::new("flotilla");
//! assert_eq!(keys.stream("default"), "flotilla:{default}:q");
//! ```

#![warn(missing_docs)]

mod alert_store;
mod backoff;
pub mod browse;
mod checks;
mod clock;
pub mod connect;
pub mod consume;
pub mod dependencies;
mod describe;
mod encoding;
mod endings;
mod entry;
mod error;
pub mod flow;
mod forget;
mod full_id;
mod job;
mod keys;
mod leadership;
mod liveness;
mod lost;
pub mod partition;
mod policy;
mod prefix;
mod probe;
mod queue_state;
mod raw_entry;
mod read_reply;
mod record;
mod redact;
mod schedule_state;
pub mod scripts;
mod shutdown;
mod status;
mod stranded;
pub mod tally;
pub mod trace_context;
mod waiting;
mod wipe;

pub use alert_store::{
    ALERT_HISTORY_KEPT, StoredAlertEvent, active_alerts, alert_history, dead_since, ended_since,
    raise_alert, resolve_alert,
};
pub use backoff::Backoff;
pub use checks::{
    DURATION_RULE, JOB_ID_RULE, MAX_ATTEMPTS, MAX_ATTEMPTS_RULE, MAX_DURATION_MS, MAX_ID_AHEAD_MS,
    MAX_RUN_AT_MS, NAME_RULE, check_duration_ms, check_expires_at_ms, check_job_id,
    check_max_attempts, check_name, check_run_at_ms, check_timeout_ms, is_entry_id, names_entry,
};
pub use clock::server_time_ms;
pub use connect::{
    RedisTarget, SharedConnection, SlotOwners, TargetError, TlsFiles, ToRedisTarget, key_slot,
};
pub use describe::{
    DONE_SEARCH_LIMIT, DescribeError, IdKey, describe_job, done_entry_of, fast_ids_with_prefix,
};
pub use encoding::{ContentType, Payload};
pub use endings::{Endings, last_endings, read_endings};
pub use entry::{EntryFields, FastEntry, StreamEntry};
pub use error::ProtoError;
pub use forget::forget_queue;
pub use full_id::{JobName, full_id, queues_knowing};
pub use job::{Job, JobOutput};
pub use keys::{CONSUMER_GROUP, DEFAULT_NAMESPACE, Keys};
pub use leadership::{LeaseState, read_lease};
pub use liveness::{DEFAULT_LEASE_MS, WorkerBeat, is_live, live_among, worker_beats};
pub use lost::{lost_since, record_lost};
pub use partition::{
    PartitionCounts, check_partitions, group_by_queue, partition_for, partition_name,
    partition_names, queue_of_partition, split_partition,
};
pub use policy::{JobDefaults, JobPolicy, Limits, Retention};
pub use prefix::{PREFIX_SEARCH_BUDGET, PrefixMatches, record_ids_with_prefix};
pub use probe::{READY_WITHIN, info_of_each_primary, ping, redis_answers, reset_stats};
pub use queue_state::{
    LAST_POSSIBLE_ID, QueueState, completions_ever, known_queues, list_queues, oldest_unread_ms,
    read_queue_state,
};
pub use raw_entry::add_raw_entry;
pub use read_reply::{
    range_completions, range_entries, read_reply_completions, read_reply_entries,
};
pub use record::{AttemptError, JobRecord, field, worker_field};
pub use redact::redact_url;
pub use schedule_state::{
    Pause, ScheduleState, mark_schedule_paused, mark_schedule_resumed, put_schedule_definition,
    read_schedule_state, remove_schedule, restart_schedule, schedule_definition,
    schedule_definitions,
};
pub use shutdown::Shutdown;
pub use status::Status;
pub use stranded::{RecordPlace, stranded_records};
pub use waiting::{
    Waiting, add_entries, depth_of, depth_reads, missing_from_later, queue_depth, read_waiting,
    waiting_states,
};
pub use wipe::wipe_namespace;

/// The protocol version written into every record (`v`) this crate creates.
pub const PROTOCOL_VERSION: u32 = 2;

/// A new job id: a UUID v7, so ids sort by creation time.
pub fn new_job_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// This process's name in the worker registry, the consumer groups and the leader
/// election: `<host>-<pid>-<random>`, so operators can tell which pod it is.
pub fn instance_id() -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}-{}", host_name(), std::process::id(), &suffix[..6])
}

/// The pid in an [`instance_id`]: the middle of `<host>-<pid>-<random>` (a host name may
/// hold dashes itself).
pub fn instance_pid(instance: &str) -> Option<u32> {
    let mut parts = instance.rsplitn(3, '-');
    parts.next()?;
    parts.next()?.parse().ok()
}

/// The milliseconds part of a stream entry id (`<ms>-<seq>`): when Redis added it.
pub fn entry_id_ms(entry_id: &str) -> Option<i64> {
    entry_id.split_once('-').and_then(|(ms, _)| ms.parse().ok())
}

/// Whether an entry id is more than [`MAX_ID_AHEAD_MS`] ahead of `now_ms`: an id chosen
/// by hand rather than by Redis's clock (the last possible id included, whose time is
/// past any `i64`).
pub fn entry_id_ahead(entry_id: &str, now_ms: u64) -> bool {
    let Some((ms, _)) = entry_id.split_once('-') else {
        return false;
    };
    match ms.parse::<u64>() {
        Ok(ms) => ms > now_ms.saturating_add(MAX_ID_AHEAD_MS.unsigned_abs()),
        Err(_) => ms.bytes().all(|b| b.is_ascii_digit()) && !ms.is_empty(),
    }
}

/// This machine's name (the pod name on Kubernetes).
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// A new lease token for one attempt (rule 3).
pub fn new_lease_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A duration in whole milliseconds, as scripts and records take it (saturating).
pub fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
