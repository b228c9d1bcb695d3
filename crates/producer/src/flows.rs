//! Jobs that wait for other jobs: a [`Flow`] of jobs with edges between them, created in
//! one call (all of it or none), and [`NewJob::after`] for one job that waits for jobs
//! enqueued before.

use std::collections::HashMap;

use flotilla_proto::connect::key_slot;
use flotilla_proto::scripts::{
    self, EnqueueFlow, EnqueueItem, FlowItem, FlowParent, FlowReply, ScriptError,
};
use flotilla_proto::{millis, queues_knowing, split_partition};

use crate::{Enqueued, IntoNewJob, NewJob, Outcome, Producer, ProducerError};

pub use flotilla_proto::scripts::OnParentEnd;

/// A job another job waits for: its queue, its id, and what the waiting job does if it
/// ends without completing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    pub(crate) queue: String,
    pub(crate) id: String,
    pub(crate) on_end: OnParentEnd,
}

impl Parent {
    /// Job `id` of `queue`; if it ends without completing, the waiting job is cancelled.
    pub fn new(queue: &str, id: &str) -> Self {
        Self {
            queue: queue.to_owned(),
            id: id.to_owned(),
            on_end: OnParentEnd::Cancel,
        }
    }

    /// What the waiting job does if this parent ends without completing (dead,
    /// cancelled, expired, deleted): be cancelled (the default), run anyway, or wait for
    /// an operator's retry of the parent.
    pub fn on_end(mut self, on_end: OnParentEnd) -> Self {
        self.on_end = on_end;
        self
    }

    /// The parent's queue as given.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The parent's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl From<&Enqueued> for Parent {
    fn from(enqueued: &Enqueued) -> Self {
        Parent::new(&enqueued.queue, &enqueued.id)
    }
}

/// Jobs enqueued together, some waiting for others: a graph without cycles, where a job
/// may have several parents and several children. [`Producer::enqueue_flow`] checks all
/// of it (no cycle, every parent known, every job valid) and creates it in one call, or
/// nothing.
///
/// ```no_run
/// # async fn example(producer: flotilla_producer::Producer) -> Result<(), flotilla_producer::ProducerError> {
/// use flotilla_producer::{Flow, NewJob};
/// let mut flow = Flow::new();
/// let a = flow.add(NewJob::new("fetch", &"a")?)?;
/// let b = flow.add(NewJob::new("fetch", &"b")?)?;
/// flow.add(NewJob::new("merge", &())?.after(a).after(b))?;
/// producer.enqueue_flow(flow).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Flow {
    id: String,
    jobs: Vec<NewJob>,
}

impl Default for Flow {
    fn default() -> Self {
        Self::new()
    }
}

impl Flow {
    /// An empty flow with an id of its own (a UUID), under which `flotilla flows show`
    /// lists its jobs for a week.
    pub fn new() -> Self {
        Self::with_id(&flotilla_proto::new_job_id())
    }

    /// An empty flow named `id` (a name, not yet used by another flow of its first job's
    /// queue).
    pub fn with_id(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            jobs: Vec::new(),
        }
    }

    /// A flow of one job waiting for jobs enqueued before: listed under no id.
    pub(crate) fn unnamed() -> Self {
        Self {
            id: String::new(),
            jobs: Vec::new(),
        }
    }

    /// The flow's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Adds a job (its parents named with [`NewJob::after`]: jobs of this flow, or jobs
    /// enqueued before). A job without an id of its own gets one. Returns the job as a
    /// parent for the jobs that wait for it.
    pub fn add(&mut self, job: impl IntoNewJob) -> Result<Parent, ProducerError> {
        let mut job = job.into_new_job()?;
        let id = job
            .id
            .get_or_insert_with(flotilla_proto::new_job_id)
            .clone();
        let parent = Parent::new(&job.queue, &id);
        self.jobs.push(job);
        Ok(parent)
    }

    /// How many jobs it holds.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}

impl Producer {
    /// Creates a flow: every job, each waiting for its parents, in one call. Nothing is
    /// written when any of it is refused: a cycle, an unknown parent, a parent already
    /// ended under [`OnParentEnd::Cancel`], an id taken, a bad job. Answers each job, in
    /// the order added: [`Outcome::Created`] (it runs now) or [`Outcome::Waiting`].
    ///
    /// On Redis Cluster every queue of a flow, and of its parents, must hash to one slot
    /// (one queue, or queues whose names share a hash tag's slot).
    pub async fn enqueue_flow(&self, flow: Flow) -> Result<Vec<Enqueued>, ProducerError> {
        let mut jobs = flow.jobs;
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        if !flow.id.is_empty() {
            flotilla_proto::check_name("flow id", &flow.id)?;
        }
        let mut ids = Vec::with_capacity(jobs.len());
        for job in &mut jobs {
            job.id.get_or_insert_with(flotilla_proto::new_job_id);
            if job.unique.is_some() || job.debounce.is_some() {
                return Err(ProducerError::Invalid(
                    "a job of a flow holds no unique or debounce key".into(),
                ));
            }
            ids.push(self.check(job)?);
        }
        // Where each job goes, so that its children name its partition.
        let mut placed: HashMap<(String, String), String> = HashMap::new();
        for (job, id) in jobs.iter_mut().zip(&ids) {
            let given = job.queue.clone();
            self.placement
                .place(&mut self.conn.clone(), &self.keys, job)
                .await?;
            placed.insert((given, id.clone()), job.queue.clone());
        }
        let mut parents: Vec<Vec<(String, String, OnParentEnd)>> = Vec::with_capacity(jobs.len());
        for job in &jobs {
            let mut resolved = Vec::with_capacity(job.parents.len());
            for parent in &job.parents {
                let queue = match placed.get(&(parent.queue.clone(), parent.id.clone())) {
                    Some(partition) => partition.clone(),
                    None => self.partition_knowing(&parent.queue, &parent.id).await?,
                };
                resolved.push((queue, parent.id.clone(), parent.on_end));
            }
            parents.push(resolved);
        }
        if self.conn.is_cluster() {
            self.check_one_slot(&jobs, &parents)?;
        }
        for job in &jobs {
            self.register_queue(&job.queue).await?;
        }
        let items: Vec<FlowItem<'_>> = jobs
            .iter()
            .zip(&ids)
            .zip(&parents)
            .map(|((job, id), parents)| FlowItem {
                queue: &job.queue,
                job: self.flow_item(job, id),
                parents: parents
                    .iter()
                    .map(|(queue, id, on_end)| FlowParent {
                        queue,
                        id,
                        on_end: *on_end,
                    })
                    .collect(),
            })
            .collect();
        let replies = scripts::run(
            &mut self.conn.clone(),
            &self.keys,
            &EnqueueFlow {
                id: &flow.id,
                jobs: items,
            },
        )
        .await
        .map_err(flow_refusal)?;
        Ok(jobs
            .iter()
            .zip(ids)
            .zip(replies)
            .map(|((job, id), reply)| Enqueued {
                id,
                queue: job.queue.clone(),
                outcome: match reply {
                    FlowReply::Created => Outcome::Created,
                    FlowReply::Waiting => Outcome::Waiting,
                },
            })
            .collect())
    }

    /// The job a full id names (an own id, or `<queue>:<entry id>`), as a parent for
    /// [`NewJob::after`]: an own id is looked up in the queues that know it.
    pub async fn parent(&self, full_id: &str) -> Result<Parent, ProducerError> {
        let queue = self.locate(full_id).await?;
        let id = flotilla_proto::JobName::parse(full_id).id;
        Ok(Parent::new(&queue, id))
    }

    /// The partition of `queue` that knows job `id` (the queue itself when it has one).
    async fn partition_knowing(&self, queue: &str, id: &str) -> Result<String, ProducerError> {
        if split_partition(queue).1 != 0 {
            return Ok(queue.to_owned());
        }
        let candidates = self
            .placement
            .candidates(&mut self.conn.clone(), &self.keys, queue, id)
            .await?;
        if candidates.len() <= 1 {
            return Ok(queue.to_owned());
        }
        let knowing = queues_knowing(&mut self.conn.clone(), &self.keys, &candidates, id).await?;
        knowing.into_iter().next().ok_or_else(|| {
            ProducerError::Invalid(format!(
                "parent {id} is not known in any partition of queue {queue}"
            ))
        })
    }

    /// On Redis Cluster a flow is one script call: all its keys in one slot.
    fn check_one_slot(
        &self,
        jobs: &[NewJob],
        parents: &[Vec<(String, String, OnParentEnd)>],
    ) -> Result<(), ProducerError> {
        let mut queues = jobs
            .iter()
            .map(|job| job.queue.as_str())
            .chain(parents.iter().flatten().map(|(queue, _, _)| queue.as_str()));
        let Some(first) = queues.next() else {
            return Ok(());
        };
        let slot = key_slot(&self.keys.stream(first));
        match queues.find(|queue| key_slot(&self.keys.stream(queue)) != slot) {
            Some(other) => Err(ProducerError::Invalid(format!(
                "on Redis Cluster a flow's queues share one hash slot, and {first} and {other} \
                 do not: put the flow in one queue"
            ))),
            None => Ok(()),
        }
    }

    /// A job of a flow as the enqueue script's arguments take it.
    pub(crate) fn flow_item<'a>(&'a self, job: &'a NewJob, id: &'a str) -> EnqueueItem<'a> {
        let when = crate::producer::when_of(job);
        EnqueueItem {
            id,
            job_type: &job.job_type,
            payload: &job.payload,
            max_attempts: job
                .max_attempts
                .unwrap_or(self.policy.defaults.max_attempts),
            timeout_ms: millis(job.timeout.unwrap_or(self.policy.defaults.timeout)),
            backoff: job
                .backoff
                .as_ref()
                .unwrap_or(&self.policy.defaults.backoff),
            when,
            trace: &job.trace,
            expires_at_ms: job.expires_at_ms().unwrap_or(0),
            group: job.group.as_deref().unwrap_or_default(),
        }
    }
}

/// The script's refusal of a flow (BAD_FLOW, BAD_ARG, BAD_ID) as a job error.
fn flow_refusal(error: ScriptError) -> ProducerError {
    match error.redis() {
        Some(e) if matches!(e.code(), Some("BAD_FLOW" | "BAD_ARG" | "BAD_ID")) => {
            ProducerError::Invalid(e.detail().unwrap_or("flow refused").to_owned())
        }
        _ => ProducerError::Script(error),
    }
}
