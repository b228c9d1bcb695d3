//! Batches: a set of jobs whose ends are counted, with callbacks (each a job of its own)
//! enqueued once when every job completed, when every job ended, or at the first death.

use flotilla_proto::dependencies::{BatchState, batch_state};
use flotilla_proto::scripts::{
    self, BatchCall, BatchCounts, BatchMode, CallbackKind, EnqueueItem, ScriptError,
};

use crate::{IntoNewJob, NewJob, Producer, ProducerError};

/// The most jobs one script call adds to a batch; a larger batch is added in several
/// calls, and sealed with the last.
pub const BATCH_CALL_JOBS: usize = 20_000;

/// A batch to open: its jobs and its callbacks. [`Producer::enqueue_batch`] creates it;
/// jobs can be added later while it is [`Batch::keep_open`].
///
/// ```no_run
/// # async fn example(producer: flotilla_producer::Producer) -> Result<(), flotilla_producer::ProducerError> {
/// use flotilla_producer::{Batch, NewJob};
/// let mut batch = Batch::new("import-42")
///     .on_success(NewJob::new("import_done", &42)?)
///     .on_death(NewJob::new("import_alert", &42)?);
/// for row in 0..1000 {
///     batch.add(NewJob::new("import_row", &row)?)?;
/// }
/// let state = producer.enqueue_batch(batch).await?;
/// println!("{} jobs pending", state.pending);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Batch {
    id: String,
    queue: String,
    callbacks: Vec<(CallbackKind, NewJob)>,
    jobs: Vec<NewJob>,
    open: bool,
}

impl Batch {
    /// An empty batch named `id` (a name, unique in its queue), living in queue `default`.
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            queue: "default".to_owned(),
            callbacks: Vec::new(),
            jobs: Vec::new(),
            open: false,
        }
    }

    /// The queue the batch's counts live in (its jobs and callbacks may go to others;
    /// on Redis Cluster all must share its hash slot).
    pub fn queue(mut self, queue: &str) -> Self {
        queue.clone_into(&mut self.queue);
        self
    }

    /// Enqueued once every job of the batch completed (never, when one ends for good
    /// without completing: cancelled, expired or deleted; a dead one may still complete
    /// after an operator's retry).
    pub fn on_success(self, job: NewJob) -> Self {
        self.callback(CallbackKind::Success, job)
    }

    /// Enqueued once every job of the batch ended, however.
    pub fn on_complete(self, job: NewJob) -> Self {
        self.callback(CallbackKind::Complete, job)
    }

    /// Enqueued at the first job that ends without completing.
    pub fn on_death(self, job: NewJob) -> Self {
        self.callback(CallbackKind::Death, job)
    }

    fn callback(mut self, kind: CallbackKind, job: NewJob) -> Self {
        self.callbacks.retain(|(k, _)| *k != kind);
        self.callbacks.push((kind, job));
        self
    }

    /// Leaves it open once created: add jobs with [`Producer::add_to_batch`], then
    /// [`Producer::seal_batch`]. Its `success` and `complete` callbacks wait for the seal.
    pub fn keep_open(mut self) -> Self {
        self.open = true;
        self
    }

    /// Adds a job (it gets an id of its own if it has none).
    pub fn add(&mut self, job: impl IntoNewJob) -> Result<(), ProducerError> {
        self.jobs.push(job.into_new_job()?);
        Ok(())
    }

    /// The batch's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Producer {
    /// Creates a batch: its callbacks (waiting until their condition holds) and its jobs,
    /// then seals it unless [`Batch::keep_open`]. Up to [`BATCH_CALL_JOBS`] jobs go in the
    /// call that opens it, the rest in further calls: a process that stops between them
    /// leaves the batch open, its callbacks unfired, which `batches show` tells.
    /// A refused call writes nothing.
    pub async fn enqueue_batch(&self, batch: Batch) -> Result<BatchCounts, ProducerError> {
        flotilla_proto::check_name("batch id", &batch.id)?;
        flotilla_proto::check_name("queue", &batch.queue)?;
        let mut callbacks = Vec::with_capacity(batch.callbacks.len());
        for (kind, job) in batch.callbacks {
            let mut job = job;
            if job.id.is_none() {
                job.id = Some(format!("{}.on_{kind}", batch.id));
            }
            callbacks.push((kind, self.batch_member(job).await?));
        }
        let mut jobs = Vec::with_capacity(batch.jobs.len());
        for job in batch.jobs {
            jobs.push(self.batch_member(job).await?);
        }
        self.register_queue(&batch.queue).await?;
        let mut chunks = jobs.chunks(BATCH_CALL_JOBS);
        let first = chunks.next().unwrap_or(&[]);
        let more = jobs.len() > BATCH_CALL_JOBS;
        let call = BatchCall {
            queue: &batch.queue,
            id: &batch.id,
            mode: BatchMode::Open,
            seal: !batch.open && !more,
            callbacks: callbacks
                .iter()
                .map(|(kind, (job, id))| (*kind, job.queue.as_str(), self.item(job, id)))
                .collect(),
            jobs: first
                .iter()
                .map(|(job, id)| (job.queue.as_str(), self.item(job, id)))
                .collect(),
        };
        let mut counts = self.run_batch(&call).await?;
        let rest: Vec<_> = chunks.collect();
        for (n, chunk) in rest.iter().enumerate() {
            let call = BatchCall {
                queue: &batch.queue,
                id: &batch.id,
                mode: BatchMode::Add,
                seal: !batch.open && n + 1 == rest.len(),
                callbacks: Vec::new(),
                jobs: chunk
                    .iter()
                    .map(|(job, id)| (job.queue.as_str(), self.item(job, id)))
                    .collect(),
            };
            counts = self.run_batch(&call).await?;
        }
        Ok(counts)
    }

    /// Adds jobs to the open batch `id` of `queue`, sealing it after them when `seal`.
    pub async fn add_to_batch(
        &self,
        queue: &str,
        id: &str,
        jobs: Vec<NewJob>,
        seal: bool,
    ) -> Result<BatchCounts, ProducerError> {
        let mut members = Vec::with_capacity(jobs.len());
        for job in jobs {
            members.push(self.batch_member(job).await?);
        }
        let chunks: Vec<_> = members.chunks(BATCH_CALL_JOBS).collect();
        let mut counts = BatchCounts::default();
        for (n, chunk) in chunks.iter().enumerate() {
            let call = BatchCall {
                queue,
                id,
                mode: BatchMode::Add,
                seal: seal && n + 1 == chunks.len(),
                callbacks: Vec::new(),
                jobs: chunk
                    .iter()
                    .map(|(job, job_id)| (job.queue.as_str(), self.item(job, job_id)))
                    .collect(),
            };
            counts = self.run_batch(&call).await?;
        }
        if chunks.is_empty() && seal {
            counts = self.seal_batch(queue, id).await?;
        }
        Ok(counts)
    }

    /// Seals the open batch `id` of `queue`: no job may be added, and its `success` and
    /// `complete` callbacks fire once its jobs have ended. Sealing a sealed batch changes
    /// nothing.
    pub async fn seal_batch(&self, queue: &str, id: &str) -> Result<BatchCounts, ProducerError> {
        let call = BatchCall {
            queue,
            id,
            mode: BatchMode::Seal,
            seal: true,
            callbacks: Vec::new(),
            jobs: Vec::new(),
        };
        self.run_batch(&call).await
    }

    /// Batch `id` of `queue`: its counts, callbacks and dead jobs; `None` when there is
    /// none (never opened, or forgotten a week after it finished).
    pub async fn batch(&self, queue: &str, id: &str) -> Result<Option<BatchState>, ProducerError> {
        Ok(batch_state(&mut self.conn.clone(), &self.keys, queue, id).await?)
    }

    async fn run_batch(&self, call: &BatchCall<'_>) -> Result<BatchCounts, ProducerError> {
        scripts::run(&mut self.conn.clone(), &self.keys, call)
            .await
            .map_err(batch_refusal)
    }

    /// A job of a batch checked and placed, with its id.
    async fn batch_member(&self, mut job: NewJob) -> Result<(NewJob, String), ProducerError> {
        job.id.get_or_insert_with(flotilla_proto::new_job_id);
        if job.unique.is_some() || job.debounce.is_some() || !job.parents.is_empty() {
            return Err(ProducerError::Invalid(
                "a job of a batch holds no unique or debounce key and waits for no parent".into(),
            ));
        }
        let id = self.check(&job)?;
        self.placement
            .place(&mut self.conn.clone(), &self.keys, &mut job)
            .await?;
        self.register_queue(&job.queue).await?;
        Ok((job, id))
    }

    fn item<'a>(&'a self, job: &'a NewJob, id: &'a str) -> EnqueueItem<'a> {
        self.flow_item(job, id)
    }
}

/// The script's refusal of a batch call (BAD_BATCH, BAD_ARG, BAD_ID) as a job error.
fn batch_refusal(error: ScriptError) -> ProducerError {
    match error.redis() {
        Some(e) if matches!(e.code(), Some("BAD_BATCH" | "BAD_ARG" | "BAD_ID")) => {
            ProducerError::Invalid(e.detail().unwrap_or("batch refused").to_owned())
        }
        _ => ProducerError::Script(error),
    }
}
