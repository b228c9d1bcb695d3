//! Deleting a whole namespace, so a benchmark's next run starts from an empty one.
//! Nothing else deletes keys it cannot name; never point this at a fleet in use.

use crate::{Keys, SharedConnection};

/// Keys asked for per SCAN step.
const SCAN_COUNT: usize = 1000;

/// Deletes every key of `keys`' namespace. On a cluster, where a SCAN covers one node,
/// one hash tag at a time: each listed queue's, then the fleet's.
pub async fn wipe_namespace(conn: &mut SharedConnection, keys: &Keys) -> redis::RedisResult<()> {
    if !conn.is_cluster() {
        return delete_matching(conn, &format!("{}:*", keys.namespace())).await;
    }
    let mut tags: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys.queues())
        .query_async(conn)
        .await?;
    tags.push("global".to_owned());
    for tag in tags {
        delete_matching(conn, &format!("{}:{{{tag}}}:*", keys.namespace())).await?;
    }
    Ok(())
}

/// Deletes the keys that match `pattern`.
async fn delete_matching(conn: &mut SharedConnection, pattern: &str) -> redis::RedisResult<()> {
    let mut cursor: u64 = 0;
    loop {
        let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(conn)
            .await?;
        if !found.is_empty() {
            let _: () = redis::cmd("DEL").arg(&found).query_async(conn).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
