//! The changes an operator can make, shared by the API and the pages' forms: each finds
//! its subject exactly (never by prefix), makes the change through the operations
//! library, and logs who did what with which outcome.

use flotilla_admin::Cancelled;
use flotilla_admin::{DeadFilter, RetryCount, RetryReply};
use flotilla_proto::{JobRecord, Status};
use serde::Serialize;

use crate::AppState;
use crate::auth::{Actor, audit};
use crate::error::ApiError;

/// What a change to one job did.
#[derive(Debug, Clone, Serialize)]
pub struct JobChange {
    pub queue: String,
    pub id: String,
    /// `retried`, `cancelled` or `deleted`.
    pub outcome: &'static str,
    /// The status it had.
    pub was: Option<String>,
}

/// A queue's paused state after a change.
#[derive(Debug, Clone, Serialize)]
pub struct QueueChange {
    pub queue: String,
    pub paused: bool,
}

/// A schedule after a change: its paused state, or the job a trigger enqueued.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleChange {
    pub schedule: String,
    pub paused: Option<bool>,
    pub job: Option<String>,
}

/// Logs the change's outcome, good or bad, and hands it on.
fn logged<T>(
    actor: &Actor,
    action: &str,
    subject: &str,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    match &result {
        Ok(_) => audit(actor, action, subject, "done"),
        Err(e) => audit(actor, action, subject, &format!("refused: {e}")),
    }
    result
}

/// The job `id` of `queue`, exactly: a few reads, never a search by prefix.
pub async fn job(state: &AppState, queue: &str, id: &str) -> Result<JobRecord, ApiError> {
    Ok(state.admin().job(queue, id).await?)
}

/// The job a full id or an own id names, exactly: a few reads, never a search by prefix.
pub async fn job_by_id(state: &AppState, id: &str) -> Result<JobRecord, ApiError> {
    Ok(state.admin().exact_job(id, None).await?)
}

pub async fn set_queue_paused(
    state: &AppState,
    actor: &Actor,
    queue: &str,
    paused: bool,
) -> Result<QueueChange, ApiError> {
    let action = if paused {
        "pause queue"
    } else {
        "resume queue"
    };
    let result = async {
        let mut admin = state.admin();
        if paused {
            admin.pause(queue).await?;
        } else {
            admin.resume(queue).await?;
        }
        Ok(QueueChange {
            queue: queue.to_owned(),
            paused,
        })
    }
    .await;
    logged(actor, action, queue, result)
}

pub async fn retry_job(
    state: &AppState,
    actor: &Actor,
    queue: &str,
    id: &str,
) -> Result<JobChange, ApiError> {
    let result = async {
        let record = job(state, queue, id).await?;
        let not_dead = |status: &str| {
            ApiError::Conflict(format!(
                "job {id} is {status}, not dead: only dead jobs are retried"
            ))
        };
        if let Some(status) = record.status.filter(|s| *s != Status::Dead) {
            return Err(not_dead(status.as_str()));
        }
        // The partition the job is in, when `queue` names a partitioned queue.
        match state.admin().retry(&record.queue, id).await? {
            RetryReply::Retried => Ok(JobChange {
                queue: queue.to_owned(),
                id: id.to_owned(),
                outcome: "retried",
                was: Some("dead".to_owned()),
            }),
            RetryReply::Missing => Err(ApiError::NotFound(format!("job {id} is gone"))),
            RetryReply::NotDead(status) => Err(not_dead(&status)),
        }
    }
    .await;
    logged(actor, "retry job", &format!("{queue}/{id}"), result)
}

pub async fn cancel_job(
    state: &AppState,
    actor: &Actor,
    queue: &str,
    id: &str,
) -> Result<JobChange, ApiError> {
    let result = async {
        job(state, queue, id).await?;
        match state.admin().cancel(queue, id).await? {
            Cancelled::Cancelled { was } => Ok(JobChange {
                queue: queue.to_owned(),
                id: id.to_owned(),
                outcome: "cancelled",
                was: was.map(|s| s.as_str().to_owned()),
            }),
            Cancelled::AlreadyFinished { status } => Err(ApiError::Conflict(format!(
                "job {id} has already finished ({})",
                status.map_or("?", |s| s.as_str())
            ))),
            Cancelled::NotFound => Err(ApiError::NotFound(format!("job {id} is gone"))),
        }
    }
    .await;
    logged(actor, "cancel job", &format!("{queue}/{id}"), result)
}

pub async fn delete_job(
    state: &AppState,
    actor: &Actor,
    queue: &str,
    id: &str,
) -> Result<JobChange, ApiError> {
    let result = async {
        job(state, queue, id).await?;
        let deleted = state.admin().delete_job(id, Some(queue)).await?;
        Ok(JobChange {
            queue: deleted.queue,
            id: deleted.id,
            outcome: "deleted",
            was: deleted.was.map(|s| s.as_str().to_owned()),
        })
    }
    .await;
    logged(actor, "delete job", &format!("{queue}/{id}"), result)
}

pub async fn retry_dead(
    state: &AppState,
    actor: &Actor,
    filter: DeadFilter,
) -> Result<RetryCount, ApiError> {
    let subject = format!(
        "queue={} type={}",
        filter.queue.as_deref().unwrap_or("*"),
        filter.job_type.as_deref().unwrap_or("*")
    );
    let result = async { Ok(state.admin().retry_dead(&filter, |_| {}).await?) }.await;
    logged(actor, "retry dead jobs", &subject, result)
}

pub async fn set_schedule_paused(
    state: &AppState,
    actor: &Actor,
    name: &str,
    paused: bool,
) -> Result<ScheduleChange, ApiError> {
    let action = if paused {
        "pause schedule"
    } else {
        "resume schedule"
    };
    let result = async {
        state.admin().pause_schedule(name, paused).await?;
        Ok(ScheduleChange {
            schedule: name.to_owned(),
            paused: Some(paused),
            job: None,
        })
    }
    .await;
    logged(actor, action, name, result)
}

pub async fn trigger_schedule(
    state: &AppState,
    actor: &Actor,
    name: &str,
) -> Result<ScheduleChange, ApiError> {
    let result = async {
        let now = jiff::Timestamp::now().as_millisecond();
        let job = state.admin().trigger_schedule(name, now).await?;
        Ok(ScheduleChange {
            schedule: name.to_owned(),
            paused: None,
            job: Some(job),
        })
    }
    .await;
    logged(actor, "trigger schedule", name, result)
}
