//! Running Flotilla's parts away from production: a private `redis-server` that the tests,
//! the demo, the bench, the chaos drill and `flotilla::testing` all start the same way,
//! and that a test can crash, freeze and restart; supervised child processes (the
//! fleet's roles) to start, signal, reap and measure.

#![warn(missing_docs)]

mod proc_stats;
mod process;
mod redis_server;

pub use proc_stats::{can_pin, cpu_usec, peak_rss_mb};
pub use process::{Launch, Process, Signal, send_signal};
pub use redis_server::{HarnessError, RedisOptions, RedisServer, STARTUP};
