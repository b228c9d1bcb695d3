//! An example service: it serves welcome emails and enqueues one for each `name=email`
//! argument, then prints each result as it is read back.
//!
//! ```sh
//! cargo run -p flotilla-example-service -- Ada=ada@example.com Grace=grace@example.com
//! ```
//!
//! Redis is `FLOTILLA_REDIS_URL` (default `redis://127.0.0.1:6379`).

use std::time::Duration;

use flotilla::{Producer, Shutdown, Worker, WorkerConfig};
use flotilla_example_service::{SendWelcome, registry};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url =
        std::env::var("FLOTILLA_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let config = WorkerConfig {
        queues: vec![flotilla::QueueWeight::new("mail", 1)],
        ..WorkerConfig::default()
    };
    let worker = Worker::connect(url.as_str(), config, registry()).await?;
    let shutdown = Shutdown::new();
    let serving = tokio::spawn(worker.run(shutdown.clone()));

    let producer = Producer::connect(url.as_str()).await?; // .in_namespace("billing")?
    let mut waiting = Vec::new();
    for arg in std::env::args().skip(1) {
        let Some((name, email)) = arg.split_once('=') else {
            return Err(format!("{arg:?}: expected name=email").into());
        };
        let job = SendWelcome {
            name: name.into(),
            email: email.into(),
        };
        let enqueued = producer.enqueue(&job).await?; // now, on the type's queue
        waiting.push(enqueued.full_id()); // the id that names it in every queue
    }
    for id in waiting {
        // Woken by the job's end, not by polling; a dead job is an error with its reason.
        match producer
            .wait_output::<SendWelcome>(&id, Duration::from_secs(30))
            .await
        {
            Ok(sent) => println!("{id}: sent to {}: {}", sent.to, sent.text),
            Err(e) => println!("{id}: not sent: {e}"),
        }
    }
    shutdown.trigger();
    serving.await??;
    Ok(())
}
