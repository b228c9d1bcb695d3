//! Pipelines on Redis Cluster. A pipeline may hold commands for keys of several slots
//! (one call per queue, say); Redis Cluster takes a pipeline for one slot only. This
//! splits such a pipeline into one per slot, sends them together and puts the replies
//! back in order, so that callers write the same pipelines for one server and for a
//! cluster. A command without a key (SCRIPT LOAD, TIME) is sent on its own, after the
//! commands before it and before those after it, so that order holds where it matters.

use std::collections::{HashMap, HashSet};

use futures::future::try_join_all;
use redis::aio::ConnectionLike;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr};
use redis::{Arg, Cmd, Pipeline, RedisResult, Value};

/// Sends `pipeline` through `conn`, split by slot where it spans several.
pub(crate) async fn send_pipeline(
    conn: &mut ClusterConnection,
    pipeline: &Pipeline,
    offset: usize,
    count: usize,
) -> RedisResult<Vec<Value>> {
    let commands: Vec<&Cmd> = pipeline.cmd_iter().collect();
    let slots: Vec<Option<Slot>> = commands.iter().map(|cmd| slot_of(cmd)).collect();
    let distinct: HashSet<&Slot> = slots.iter().flatten().collect();
    // One slot (the usual case), or a transaction, which must be one slot anyway.
    if distinct.len() <= 1 || pipeline.is_transaction() {
        return conn.req_packed_commands(pipeline, offset, count).await;
    }
    let mut replies: Vec<Option<Value>> = vec![None; commands.len()];
    let mut start = 0;
    while start < commands.len() {
        // A run of keyed commands, split by slot and sent together.
        let end = (start..commands.len())
            .find(|&i| slots[i].is_none())
            .unwrap_or(commands.len());
        let mut by_slot: HashMap<Slot, Vec<usize>> = HashMap::new();
        for (i, slot) in slots.iter().enumerate().take(end).skip(start) {
            if let Some(slot) = slot {
                by_slot.entry(*slot).or_default().push(i);
            }
        }
        let sends = by_slot.into_values().map(|indexes| {
            let mut part = redis::pipe();
            for &i in &indexes {
                part.add_command(commands[i].clone());
            }
            let mut conn = conn.clone();
            async move {
                let values = conn.req_packed_commands(&part, 0, indexes.len()).await?;
                Ok::<_, redis::RedisError>(indexes.into_iter().zip(values).collect::<Vec<_>>())
            }
        });
        for (i, value) in try_join_all(sends).await?.into_iter().flatten() {
            replies[i] = Some(value);
        }
        // Then the keyless command that ended the run, routed by the cluster client.
        if end < commands.len() {
            replies[end] = Some(conn.req_packed_command(commands[end]).await?);
        }
        start = end + 1;
    }
    replies
        .into_iter()
        .map(|reply| {
            reply.ok_or_else(|| {
                redis::RedisError::from((redis::ErrorKind::Client, "a command got no reply"))
            })
        })
        .collect()
}

/// A command's name and arguments.
fn arguments(cmd: &Cmd) -> Vec<&[u8]> {
    cmd.args_iter()
        .filter_map(|arg| match arg {
            Arg::Simple(bytes) => Some(bytes),
            _ => None,
        })
        .collect()
}

/// Where a SCAN goes on a cluster: to the primary of the slot its MATCH pattern's hash tag
/// names (`flotilla:{default}:job:*` finds every record of `default` there). `None` for
/// other commands, and for patterns without a plain tag, which the cluster client routes.
pub(crate) fn scan_routing(cmd: &Cmd) -> Option<RoutingInfo> {
    let args = arguments(cmd);
    if !args.first()?.eq_ignore_ascii_case(b"SCAN") {
        return None;
    }
    let at = args
        .iter()
        .position(|arg| arg.eq_ignore_ascii_case(b"MATCH"))?;
    let pattern = *args.get(at + 1)?;
    let open = pattern.iter().position(|&b| b == b'{')?;
    let close = open + 1 + pattern[open + 1..].iter().position(|&b| b == b'}')?;
    let tag = &pattern[open + 1..close];
    if tag.is_empty() || tag.iter().any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\')) {
        return None;
    }
    Some(RoutingInfo::SingleNode(
        SingleNodeRoutingInfo::SpecificNode(Route::with_key(pattern, SlotAddr::Master)),
    ))
}

/// The slot of the key a command is routed by, or `None` for commands without one.
fn slot_of(cmd: &Cmd) -> Option<Slot> {
    let args = arguments(cmd);
    let name = args.first()?.to_ascii_uppercase();
    let key = match name.as_slice() {
        b"EVALSHA" | b"EVAL" | b"EVALSHA_RO" | b"EVAL_RO" | b"FCALL" | b"FCALL_RO" => {
            let keys: usize = std::str::from_utf8(args.get(2)?).ok()?.parse().ok()?;
            if keys == 0 {
                return None;
            }
            args.get(3)?
        }
        b"XINFO" | b"XGROUP" | b"OBJECT" | b"MEMORY" => args.get(2)?,
        b"XREAD" | b"XREADGROUP" => {
            let streams = args
                .iter()
                .position(|arg| arg.eq_ignore_ascii_case(b"STREAMS"))?;
            args.get(streams + 1)?
        }
        b"PING" | b"TIME" | b"INFO" | b"SCRIPT" | b"WAIT" | b"CLUSTER" | b"SCAN" | b"ECHO" => {
            return None;
        }
        _ => args.get(1)?,
    };
    Some(Slot::for_key(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_routed_by_the_key_redis_routes_them_by() {
        let stream = "flotilla:{default}:q";
        let tag = Some(Slot::for_key(stream));
        let mut evalsha = redis::cmd("EVALSHA");
        evalsha
            .arg("abc")
            .arg(2)
            .arg(stream)
            .arg("flotilla:{default}:d");
        assert_eq!(slot_of(&evalsha), tag);
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP")
            .arg("g")
            .arg("c")
            .arg("STREAMS")
            .arg(stream)
            .arg(">");
        assert_eq!(slot_of(&read), tag);
        let mut info = redis::cmd("XINFO");
        info.arg("GROUPS").arg(stream);
        assert_eq!(slot_of(&info), tag);
        let mut len = redis::cmd("XLEN");
        len.arg(stream);
        assert_eq!(slot_of(&len), tag);
        assert_eq!(slot_of(&redis::cmd("TIME")), None);
        let mut scan = redis::cmd("SCAN");
        scan.arg(0).arg("MATCH").arg("flotilla:{default}:job:*");
        assert_eq!(
            scan_routing(&scan),
            Some(RoutingInfo::SingleNode(
                SingleNodeRoutingInfo::SpecificNode(Route::with_key(stream, SlotAddr::Master))
            ))
        );
        let mut everywhere = redis::cmd("SCAN");
        everywhere.arg(0).arg("MATCH").arg("flotilla:{*}:job:ab*");
        assert_eq!(scan_routing(&everywhere), None);
        let mut keyless = redis::cmd("EVALSHA");
        keyless.arg("abc").arg(0);
        assert_eq!(slot_of(&keyless), None);
    }
}
