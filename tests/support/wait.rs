//! Waiting for a state with a deadline, and reading job records.

use std::collections::HashMap;
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

/// The job's record, if it exists.
pub async fn job_record(
    conn: &mut redis::aio::ConnectionManager,
    keys: &Keys,
    queue: &str,
    id: &str,
) -> Option<JobRecord> {
    let hash: HashMap<String, Vec<u8>> = redis::cmd("HGETALL")
        .arg(keys.job(queue, id))
        .query_async(conn)
        .await
        .expect("HGETALL");
    JobRecord::from_hash(&hash).expect("a readable record")
}
