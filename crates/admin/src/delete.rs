//! Deleting one job that is not running, with every trace of it.

use flotilla_proto::Status;
use flotilla_proto::scripts::{self, Delete, DeleteReply};
use serde::Serialize;

use crate::{Admin, AdminError, DeadFilter};

/// A job an operator deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deleted {
    /// The queue (or partition) it was in.
    pub queue: String,
    /// Its id within that queue.
    pub id: String,
    /// The status it had.
    pub was: Option<Status>,
}

impl Admin {
    /// Deletes the job with this id or unique id prefix (in `queue`, when given). A running job is refused
    /// ([`AdminError::Running`]): cancel it first, so its worker stops the handler.
    pub async fn delete_job(
        &mut self,
        id: &str,
        queue: Option<&str>,
    ) -> Result<Deleted, AdminError> {
        let job = self.find_job(id, queue).await?;
        if job.status == Some(Status::Running) {
            return Err(AdminError::Running(job.id));
        }
        let dead_entry = match job.status {
            Some(Status::Dead) => self.dead_entry_of(&job.queue, &job.id).await?,
            _ => None,
        };
        let done_entry = match (job.status, job.finished_at) {
            // Its completion was stamped when it finished, or a moment after.
            (Some(Status::Completed), Some(finished)) => flotilla_proto::done_entry_of(
                &mut self.conn,
                &self.keys,
                &job.queue,
                &job.id,
                &finished.saturating_sub(1000).to_string(),
            )
            .await?
            .map(|entry| entry.entry_id),
            _ => None,
        };
        let delete = Delete {
            queue: &job.queue,
            job_id: &job.id,
            dead_entry: dead_entry.as_deref(),
            done_entry: done_entry.as_deref(),
        };
        match scripts::run(&mut self.conn, &self.keys, &delete).await? {
            DeleteReply::Deleted { was } => Ok(Deleted {
                queue: job.queue,
                id: job.id,
                was,
            }),
            DeleteReply::Running => Err(AdminError::Running(job.id)),
            DeleteReply::Missing => Err(AdminError::NoSuchJob(job.id)),
        }
    }

    /// The dead-letter entry of `job_id` in `queue`, if it has one.
    pub(crate) async fn dead_entry_of(
        &mut self,
        queue: &str,
        job_id: &str,
    ) -> Result<Option<String>, AdminError> {
        let filter = DeadFilter {
            queue: Some(queue.to_owned()),
            ..DeadFilter::default()
        };
        Ok(self
            .dead_letters(queue, &filter)
            .await?
            .into_iter()
            .find(|d| d.job_id == job_id)
            .map(|d| d.entry_id))
    }
}
