//! What a producer in any language may do without a library: one plain `XADD` of a job's
//! fields to its queue's stream (see docs/PROTOCOL.md). The demo and the drill add jobs
//! this way to show that workers take them as they take any other.

use redis::aio::ConnectionLike;

use crate::Keys;

/// Adds an entry of `fields` to `queue`'s stream with an id Redis chooses; answers it.
pub async fn add_raw_entry<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    fields: &[(&str, &[u8])],
) -> redis::RedisResult<String> {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(keys.stream(queue)).arg("*");
    for (name, value) in fields {
        cmd.arg(*name).arg(*value);
    }
    cmd.query_async(conn).await
}
