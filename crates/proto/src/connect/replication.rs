//! Enqueues that wait for replicas. Redis's `WAIT` counts the replicas that have the
//! writes of the connection it is sent on, so it must follow the job's write on the same
//! connection: this adapter appends it to every command and pipeline the enqueue sends,
//! in one pipeline, and keeps the smallest count it was answered with. Sent afterwards on
//! its own, a reconnect in between would make it answer for a connection that wrote
//! nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::SharedConnection;
use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// How many replicas must have a job before an enqueue returns (Redis's `WAIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replication {
    /// Replicas that must acknowledge the write.
    pub replicas: u32,
    /// How long to wait for them; the enqueue then reports how many did.
    pub timeout: Duration,
}

/// A connection for one enqueue call that waits for replicas after each write.
#[derive(Debug)]
pub struct Acknowledging {
    inner: SharedConnection,
    wait: Replication,
    /// The fewest replicas any of this call's writes reached; `u32::MAX` before the first.
    least: Arc<AtomicU32>,
}

impl Acknowledging {
    /// Wraps `inner` so that each write it sends is followed by a `WAIT` as `wait` says.
    pub fn new(inner: SharedConnection, wait: Replication) -> Self {
        Self {
            inner,
            wait,
            least: Arc::new(AtomicU32::new(u32::MAX)),
        }
    }

    /// The fewest replicas that acknowledged a write of this call.
    pub fn acknowledged(&self) -> u32 {
        match self.least.load(Ordering::Acquire) {
            u32::MAX => 0,
            least => least,
        }
    }

    fn wait_cmd(&self) -> Cmd {
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(self.wait.replicas).arg(
            u64::try_from(self.wait.timeout.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
        );
        cmd
    }

    /// Takes WAIT's reply off the end of `replies` and notes its count.
    fn note(&self, replies: &mut Vec<Value>) -> redis::RedisResult<()> {
        let count = match replies.pop() {
            Some(Value::Int(n)) => u32::try_from(n).unwrap_or(0),
            Some(Value::ServerError(e)) => return Err(e.into()),
            other => {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Parse,
                    "WAIT answered with something other than a count",
                    format!("{other:?}"),
                )));
            }
        };
        self.least.fetch_min(count, Ordering::AcqRel);
        Ok(())
    }
}

impl ConnectionLike for Acknowledging {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut pipe = redis::pipe();
            pipe.add_command(cmd.clone()).add_command(self.wait_cmd());
            let mut replies = self.inner.req_packed_commands(&pipe, 0, 2).await?;
            self.note(&mut replies)?;
            replies.pop().ok_or_else(|| {
                redis::RedisError::from((redis::ErrorKind::Parse, "no reply to the command"))
            })
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            if pipeline.is_transaction() {
                // WAIT inside MULTI answers at once; the producer sends no transactions.
                return self
                    .inner
                    .req_packed_commands(pipeline, offset, count)
                    .await;
            }
            let mut pipe = pipeline.clone();
            pipe.add_command(self.wait_cmd());
            let mut replies = self
                .inner
                .req_packed_commands(&pipe, offset, count + 1)
                .await?;
            self.note(&mut replies)?;
            Ok(replies)
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}
