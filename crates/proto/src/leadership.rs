//! Who leads the scheduler, as the lease and the fencing epoch say: the one read an
//! operator's status and a standby's wait make of them.

use redis::aio::ConnectionLike;

use crate::Keys;

/// The scheduler's leader lease as read at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseState {
    /// The lease's holder; `None` when no scheduler leads.
    pub holder: Option<String>,
    /// The fencing epoch: raised at each new leadership, 0 before the first.
    pub epoch: u64,
    /// How long the lease has left, ms (negative when it has no expiry), while held.
    pub remaining_ms: Option<i64>,
}

/// Reads the lease, its time left and the epoch in one round trip.
pub async fn read_lease<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
) -> redis::RedisResult<LeaseState> {
    let (holder, epoch, ttl): (Option<String>, Option<u64>, i64) = redis::pipe()
        .cmd("GET")
        .arg(keys.leader())
        .cmd("GET")
        .arg(keys.fence())
        .cmd("PTTL")
        .arg(keys.leader())
        .query_async(conn)
        .await?;
    Ok(LeaseState {
        remaining_ms: holder.as_ref().map(|_| ttl),
        holder,
        epoch: epoch.unwrap_or(0),
    })
}
