//! The fast path (protocol 2): a job to run now, with no id, unique key or time of its
//! own, is one XADD carrying the whole job, and its entry id is its job id. The queue's
//! length cap is kept by the depth each write reads back, so it may be overshot by the
//! writes in flight at the moment it is reached (the script path keeps it exactly).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla_proto::{FastEntry, JobPolicy, Keys, millis};
use redis::aio::ConnectionLike;

use crate::ProducerError;
use crate::enqueued::{Enqueued, Outcome};
use crate::job::NewJob;

/// Whether `job` can take the fast path.
pub(crate) fn is_fast(job: &NewJob) -> bool {
    job.id.is_none()
        && job.schedule.is_none()
        && job.unique.is_none()
        && job.debounce.is_none()
        && job.group.is_none()
        && job.parents.is_empty()
}

/// How long a depth read stays good for deciding that a queue is far from its cap.
const DEPTH_FRESH: Duration = Duration::from_millis(100);

/// A queue's depth (stream length plus delayed jobs) as last read, and what this
/// producer has added since.
#[derive(Debug, Clone, Copy)]
struct Seen {
    depth: u64,
    read_at: Instant,
    added: u64,
}

/// The depth seen per queue, so a write far below the cap need not read it again.
#[derive(Debug, Clone, Default)]
pub(crate) struct DepthGauge {
    seen: Arc<Mutex<HashMap<String, Seen>>>,
}

impl DepthGauge {
    /// The depth as last read plus this producer's writes since, and whether that read
    /// is fresh.
    fn estimate(&self, queue: &str) -> Option<(u64, bool)> {
        self.lock().get(queue).map(|seen| {
            (
                seen.depth + seen.added,
                seen.read_at.elapsed() < DEPTH_FRESH,
            )
        })
    }

    fn set(&self, queue: &str, depth: u64) {
        let seen = Seen {
            depth,
            read_at: Instant::now(),
            added: 0,
        };
        self.lock().insert(queue.to_owned(), seen);
    }

    fn add(&self, queue: &str, written: u64) {
        if let Some(seen) = self.lock().get_mut(queue) {
            seen.added += written;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Seen>> {
        // Each use is one insert, update or read: a panic cannot leave the map half-updated.
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Enqueues fast-path jobs, all of one queue, in one pipeline: one result per job, in
/// order. Jobs beyond the queue's cap are refused with [`ProducerError::QueueFull`].
///
/// The depth is read again with the writes unless a fresh read put the queue below half
/// its cap: to pass the cap from there, other producers would have to add half of it
/// within [`DEPTH_FRESH`].
pub(crate) async fn enqueue_fast<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    policy: &JobPolicy,
    gauge: &DepthGauge,
    queue: &str,
    jobs: &[&NewJob],
) -> Result<Vec<Result<Enqueued, ProducerError>>, ProducerError> {
    let cap = policy.limits.max_queue_len;
    let wanted = jobs.len() as u64;
    let mut room = jobs.len();
    let mut seen = 0;
    let mut read_with_writes = false;
    if cap > 0 {
        let estimate = gauge.estimate(queue);
        seen = match estimate {
            Some((depth, _)) if depth + wanted <= cap => depth,
            _ => {
                let depth = read_depth(conn, keys, queue).await?;
                gauge.set(queue, depth);
                depth
            }
        };
        let far_below_cap = matches!(estimate, Some((depth, true)) if depth + wanted <= cap / 2);
        read_with_writes = !far_below_cap;
        room = usize::try_from(cap.saturating_sub(seen)).unwrap_or(usize::MAX);
    }
    let adds = jobs.iter().take(room).map(|job| entry(job).xadd(keys));
    let (ids, depth) =
        flotilla_proto::add_entries(conn, keys, queue, adds, read_with_writes).await?;
    match depth {
        Some((on_stream, waiting)) => gauge.set(queue, on_stream + waiting),
        None if !read_with_writes => gauge.add(queue, ids.len() as u64),
        None => {}
    }
    let mut ids = ids.into_iter();
    Ok(jobs
        .iter()
        .enumerate()
        .map(|(i, _)| {
            if i >= room {
                return Err(ProducerError::QueueFull(format!(
                    "queue {queue} holds {seen} jobs, its limit is {cap}"
                )));
            }
            let id = ids.next().flatten().ok_or_else(|| {
                ProducerError::Invalid("XADD answered something other than an entry id".into())
            })?;
            Ok(Enqueued {
                id,
                queue: queue.to_owned(),
                outcome: Outcome::Created,
            })
        })
        .collect())
}

/// The stream entry of a fast-path job: what the job sets of its own; the rest is left
/// to the `[defaults]` of the worker that runs it.
fn entry(job: &NewJob) -> FastEntry<'_> {
    FastEntry {
        queue: &job.queue,
        job_type: &job.job_type,
        payload: &job.payload,
        max_attempts: job.max_attempts,
        timeout_ms: job.timeout.map(millis),
        backoff: job.backoff.as_ref(),
        trace: &job.trace,
        expires_at_ms: job.expires_at_ms(),
    }
}

/// The queue's depth now: ready entries plus jobs waiting for their time.
async fn read_depth<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
) -> Result<u64, ProducerError> {
    let (on_stream, waiting) = flotilla_proto::queue_depth(conn, keys, queue).await?;
    Ok(on_stream + waiting)
}
