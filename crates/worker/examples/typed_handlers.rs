//! A worker of your own in Rust: typed handlers registered with the worker library, beside
//! the built-in ones, serving the default queues until SIGTERM or Ctrl-C.
//!
//! Run: `FLOTILLA_REDIS_URL=redis://127.0.0.1:6379 cargo run -p flotilla-worker --example typed_handlers`
//!
//! Then enqueue from any language, e.g.
//! `redis-cli XADD 'flotilla:{default}:q' '*' type greet payload '{"name": "Ada"}'`.

use flotilla_worker::{HandlerError, Job, JobContext, Registry, Shutdown, Worker, WorkerConfig};
use serde::{Deserialize, Serialize};

/// The payload of a `greet` job; the type's name is what producers write in `type`.
#[derive(Serialize, Deserialize)]
struct Greet {
    name: String,
}

impl Job for Greet {
    const TYPE: &'static str = "greet";
}

/// What a `greet` job returns: stored as the job's result, as JSON.
#[derive(Serialize)]
struct Greeting {
    text: String,
    attempt: u32,
}

async fn greet(job: Greet, ctx: JobContext) -> Result<Greeting, HandlerError> {
    Ok(Greeting {
        text: format!("hello, {}", job.name),
        attempt: ctx.attempt,
    })
}

/// A `charge` job: a negative amount can never succeed, so it gives up at once (straight
/// to the dead-letter queue) instead of spending its retries.
#[derive(Serialize, Deserialize)]
struct Charge {
    cents: i64,
}

impl Job for Charge {
    const TYPE: &'static str = "charge";
}

async fn charge(job: Charge, _ctx: JobContext) -> Result<String, HandlerError> {
    if job.cents < 0 {
        return Err(HandlerError::give_up(format!(
            "cannot charge {} cents",
            job.cents
        )));
    }
    Ok(format!("charged {} cents", job.cents))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url =
        std::env::var("FLOTILLA_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut registry = Registry::with_builtins();
    registry.job(greet);
    registry.job(charge);
    let worker = Worker::connect(&url, WorkerConfig::default(), registry).await?;
    // The URL may hold a password: it is not printed.
    println!("serving greet and charge");
    worker.run(Shutdown::on_signals()).await?;
    Ok(())
}
