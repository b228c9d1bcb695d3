//! The floor: jobs through bare stream commands (XADD, XREADGROUP, XACK, XDEL), pipelined
//! in batches: what any queue on Redis Streams pays at the least.

use std::time::Instant;

use flotilla_proto::SharedConnection;

use super::Bench;
use super::redis_stats::Meter;
use super::report::Row;

/// Jobs per pipelined batch.
const BATCH: usize = 100;
/// Entries through the floor at most; it is stable well before that.
const MAX_JOBS: usize = 20_000;

pub(super) async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let jobs = bench.args.jobs.min(MAX_JOBS);
    let keys = bench.fresh_keys();
    let stream = keys.stream("floor");
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("g")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut bench.conn)
        .await?;
    let meter = Meter::start(&mut bench.conn).await?;
    let started = Instant::now();
    let mut done = 0;
    while done < jobs {
        let n = BATCH.min(jobs - done);
        batch(&mut bench.conn, &stream, n).await?;
        done += n;
    }
    let elapsed = started.elapsed();
    let cost = meter.finish(&mut bench.conn).await?;
    bench.clear(&keys).await?;
    bench.record(Row::new(
        "floor",
        "xadd+xreadgroup+xack+xdel",
        jobs,
        elapsed.as_secs_f64(),
        &cost,
    ));
    Ok(())
}

/// `n` entries added in one pipeline, read by the group, then acknowledged and deleted
/// in another, as the job path does for each job.
async fn batch(conn: &mut SharedConnection, stream: &str, n: usize) -> anyhow::Result<()> {
    let mut pipe = redis::pipe();
    for _ in 0..n {
        pipe.cmd("XADD")
            .arg(stream)
            .arg("*")
            .arg("id")
            .arg("x")
            .ignore();
    }
    let _: () = pipe.query_async(conn).await?;
    let reply: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("g")
        .arg("c")
        .arg("COUNT")
        .arg(n)
        .arg("STREAMS")
        .arg(stream)
        .arg(">")
        .query_async(conn)
        .await?;
    let ids: Vec<String> = reply
        .keys
        .into_iter()
        .flat_map(|k| k.ids)
        .map(|id| id.id)
        .collect();
    let _: () = redis::pipe()
        .cmd("XACK")
        .arg(stream)
        .arg("g")
        .arg(&ids)
        .ignore()
        .cmd("XDEL")
        .arg(stream)
        .arg(&ids)
        .ignore()
        .query_async(conn)
        .await?;
    Ok(())
}
