//! How every process reaches Redis: the target a URL names (one server, or a primary that
//! Sentinel names, over TLS or not), the shared connection that follows it, and the check
//! of the Redis settings that decide what a crash can lose.

mod cluster;
mod durability;
mod replication;
mod shared;
mod target;
mod topology;

pub use durability::{DurabilityWarning, durability_warnings, warn_if_unsafe};
pub use replication::{Acknowledging, Replication};
pub use shared::SharedConnection;
pub use target::{RedisTarget, SENTINEL_PORT, TargetError, TlsFiles, ToRedisTarget, URL_FORMS};
pub use topology::{SlotOwners, key_slot};
