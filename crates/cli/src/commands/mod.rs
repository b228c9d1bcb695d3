//! One module per subcommand.

pub mod bench;
pub mod demo;
pub mod enqueue;
pub mod jobs;
pub mod reconcile;
pub mod scheduler;
pub mod schedules;
pub mod worker;
