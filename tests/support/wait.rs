//! Waiting for a state with a deadline, and reading job records.

use std::future::Future;
use std::time::{Duration, Instant};

use flotilla_proto::{JobRecord, Keys};

/// Polls `check` every 20 ms until it returns `Some`, or panics after `timeout` with
/// `what` so a failing test says what it waited for.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The job as a record, wherever it is kept (its record, its stream entry, or the queue's
/// recent completions), if it exists.
pub async fn job_record(
    conn: &mut flotilla_proto::SharedConnection,
    keys: &Keys,
    queue: &str,
    id: &str,
) -> Option<JobRecord> {
    flotilla_proto::describe_job(conn, keys, queue, id, &Default::default())
        .await
        .expect("a readable job")
}
