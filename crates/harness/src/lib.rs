//! Running Flotilla's parts away from production: a private `redis-server` that the tests,
//! the demo, the bench, the chaos drill and `flotilla::testing` all start the same way,
//! and that a test can crash, freeze and restart.

#![warn(missing_docs)]

mod redis_server;

pub use redis_server::{HarnessError, RedisOptions, RedisServer, STARTUP};
