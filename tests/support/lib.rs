//! Shared test support: real `redis-server` processes on private unix sockets, in-process
//! and out-of-process workers, and polling helpers that wait for a state with a deadline.

mod fleet;
mod http;
mod redis_server;
mod wait;

pub use fleet::{FlotillaProcess, InProcessWorker, WorkerProcess, fast_config, flotilla_bin};
pub use http::http_server;
pub use redis_server::RedisServer;
pub use wait::{eventually, job_record};
