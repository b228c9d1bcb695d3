//! Waiting for work on a Redis Cluster: one blocking read per primary at a time, each
//! on one stream that primary serves (a read may not name keys of two slots, even on one
//! node), so an idle worker watches every node at once. Each read (`node_read.rs`) takes
//! a ticket or a slot along and dispatches what it gets itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_proto::{SharedConnection, SlotOwners};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::Shutdown;
use crate::fetch::connections::BlockingReads;
use crate::fetch::node_reader::{NodeRead, ReadDone};
use crate::fetch::reads::FetchError;
use crate::shared::Shared;

/// How often the slot map is read again, so that waits follow slots that moved.
const OWNERS_REFRESH: Duration = Duration::from_secs(10);
/// How long a read waits when it must not wait long: on one stream of a node that serves
/// several of this worker's streams (the others are not watched meanwhile, and are looked
/// at after it), when a node went without a read for lack of room, or when the read holds
/// a slot that a burst on another node could use.
const BRIEF_BLOCK: Duration = Duration::from_millis(100);

/// The node reads in flight, and where each stream lives.
pub(crate) struct NodeReads {
    reads: BlockingReads,
    owners: SlotOwners,
    owners_read: Option<(Instant, u64)>,
    /// Nodes with a read in flight, by `host:port`, with the generation of the streams
    /// it was launched for.
    waiting_on: HashMap<String, u64>,
    /// A node whose read came back empty: only its streams need a look before it is
    /// waited on again, as the other nodes' reads are still watching theirs.
    quiet: Option<String>,
    /// The streams of the last launch, sorted, and their generation, which moves on
    /// when they change (a pause, a resume, a raised count): a read launched for older
    /// streams may not watch the new ones, so every stream needs a look until each node's
    /// read is of this generation.
    launched_for: Vec<String>,
    generation: u64,
    /// Whether a failure to read the slot map was logged: once is enough.
    warned: bool,
    done_tx: mpsc::UnboundedSender<ReadDone>,
    done_rx: mpsc::UnboundedReceiver<ReadDone>,
}

/// The slot (or ticket) a node read takes along, so what it delivers can start.
pub(crate) struct Room<'a> {
    pub permits: &'a mut Vec<OwnedSemaphorePermit>,
    pub ahead: &'a mut Vec<OwnedSemaphorePermit>,
    pub slots: &'a Arc<Semaphore>,
}

impl NodeReads {
    pub(crate) fn new(reads: BlockingReads) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Self {
            reads,
            owners: SlotOwners::default(),
            owners_read: None,
            waiting_on: HashMap::new(),
            quiet: None,
            launched_for: Vec::new(),
            generation: 0,
            warned: false,
            done_tx,
            done_rx,
        }
    }

    /// Reads the slot map when it is old or the served streams changed (`version`). A
    /// failure keeps the map there is: it only decides where reads wait.
    pub(crate) async fn refresh(&mut self, conn: &mut SharedConnection, version: u64) {
        let fresh = self
            .owners_read
            .is_some_and(|(at, seen)| seen == version && at.elapsed() < OWNERS_REFRESH);
        if fresh {
            return;
        }
        match SlotOwners::load(conn).await {
            Ok(owners) => self.owners = owners,
            Err(e) if !self.warned => {
                self.warned = true;
                tracing::warn!(
                    "cannot read the cluster's slot map (CLUSTER SLOTS; an ACL rule needs \
                     +cluster|slots), so an idle worker waits on one node at a time: {e}"
                );
            }
            Err(e) => tracing::debug!("cannot read the cluster's slot map: {e}"),
        }
        self.owners_read = Some((Instant::now(), version));
    }

    /// Starts a read on each node that serves streams in `order` and has none in
    /// flight, on the node's first stream in that order, while room is left. A read is
    /// as long as `block` when its node serves only one of the streams, every node gets
    /// a read and it holds a ticket, or a slot the concurrency can spare (the reads hold
    /// at most half of it); otherwise it is brief.
    pub(crate) fn launch(
        &mut self,
        shared: &Arc<Shared>,
        order: &[&str],
        room: Room<'_>,
        block: Duration,
        shutdown: &Shutdown,
    ) {
        let idle: Vec<_> = by_node(&self.owners, &shared.keys, order)
            .into_iter()
            .filter(|(node, _, _)| !self.waiting_on.contains_key(node))
            .collect();
        // With less room than idle nodes (few free slots), some node goes unwatched: every
        // read is then brief, so that the loop looks at that node's streams soon.
        let every_node_watched = room.permits.len() + room.ahead.len() >= idle.len();
        // Slots held by waits are few next to the concurrency: a burst on one node still
        // finds most of them free.
        let slots_to_spare = (idle.len() + self.waiting_on.len()) * 2 <= shared.config.concurrency;
        let mut streams: Vec<String> = order.iter().map(|s| (*s).to_owned()).collect();
        streams.sort_unstable();
        if streams != self.launched_for {
            self.launched_for = streams;
            self.generation += 1;
        }
        for (node, first, streams) in idle {
            // A ticket first: a slot held by a wait is one a burst elsewhere cannot use.
            let (permits, ahead) = if let Some(ticket) = room.ahead.pop() {
                (Vec::new(), vec![ticket])
            } else if let Some(permit) = room.permits.pop() {
                (vec![permit], Vec::new())
            } else {
                return;
            };
            let long = streams == 1 && every_node_watched && (permits.is_empty() || slots_to_spare);
            let block = if long { block } else { block.min(BRIEF_BLOCK) };
            self.waiting_on.insert(node.clone(), self.generation);
            let read = NodeRead {
                shared: Arc::clone(shared),
                reads: self.reads.clone(),
                stream: first.to_owned(),
                permits,
                ahead,
                slots: Arc::clone(room.slots),
                shutdown: shutdown.clone(),
                block,
            };
            read.spawn(node, self.done_tx.clone());
        }
    }

    /// Whether a read is in flight: another blocking read now might queue behind it on
    /// the node's connection.
    pub(crate) fn is_waiting(&self) -> bool {
        !self.waiting_on.is_empty()
    }

    /// Waits until a node read returns (or shutdown), and gives its error if it failed.
    /// Returns at once when none is in flight.
    pub(crate) async fn wait(&mut self, shutdown: &Shutdown) -> Result<(), FetchError> {
        if self.waiting_on.is_empty() {
            return Ok(());
        }
        tokio::select! {
            done = self.done_rx.recv() => match done {
                Some(done) => self.returned(done),
                None => Ok(()),
            },
            _ = shutdown.triggered() => Ok(()),
        }
    }

    /// Takes note of the reads that returned meanwhile, and gives the first error.
    pub(crate) fn reap(&mut self) -> Result<(), FetchError> {
        let mut first_error = Ok(());
        while let Ok(done) = self.done_rx.try_recv() {
            let result = self.returned(done);
            if first_error.is_ok() {
                first_error = result;
            }
        }
        first_error
    }

    fn returned(&mut self, done: ReadDone) -> Result<(), FetchError> {
        self.waiting_on.remove(&done.node);
        // An entry calls for a look everywhere; so does a second node back, since it is
        // no longer watched (see `quiet_streams`).
        self.quiet = matches!(done.result, Ok(false)).then_some(done.node);
        done.result.map(|_| ())
    }

    /// The streams of `order` on the node whose read came back empty, when that is all
    /// that changed since the last look (the streams are the ones the reads were launched
    /// for, and every other node is still watched); `None` calls for a look at every
    /// stream.
    pub(crate) fn quiet_streams<'a>(
        &mut self,
        keys: &flotilla_proto::Keys,
        order: &[&'a str],
    ) -> Option<Vec<&'a str>> {
        let quiet = self.quiet.take()?;
        let mut now: Vec<&str> = order.to_vec();
        now.sort_unstable();
        if now != self.launched_for {
            return None;
        }
        let nodes = by_node(&self.owners, keys, order);
        let others_watched = nodes.iter().all(|(node, _, _)| {
            *node == quiet || self.waiting_on.get(node) == Some(&self.generation)
        });
        if quiet.is_empty() || !others_watched {
            return None;
        }
        let streams: Vec<&str> = order
            .iter()
            .copied()
            .filter(|stream| self.owners.owner_of(&keys.stream(stream)) == Some(quiet.as_str()))
            .collect();
        (!streams.is_empty()).then_some(streams)
    }
}

/// The nodes serving `order`'s streams, in the order their first stream comes, each with
/// that first stream and how many of the streams it serves. Streams whose node is not
/// known (no slot map yet) count as one node, so they get one read, as on one server.
fn by_node<'a>(
    owners: &SlotOwners,
    keys: &flotilla_proto::Keys,
    order: &[&'a str],
) -> Vec<(String, &'a str, usize)> {
    let mut nodes: Vec<(String, &'a str, usize)> = Vec::new();
    for &stream in order {
        let node = owners
            .owner_of(&keys.stream(stream))
            .unwrap_or_default()
            .to_owned();
        match nodes.iter_mut().find(|(known, _, _)| *known == node) {
            Some((_, _, count)) => *count += 1,
            None => nodes.push((node, stream, 1)),
        }
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    /// Slots 0–8191 on port 7000, the rest on 7001.
    fn two_nodes() -> SlotOwners {
        let node = |port: i64| {
            Value::Array(vec![
                Value::BulkString(b"127.0.0.1".to_vec()),
                Value::Int(port),
            ])
        };
        SlotOwners::from_reply(&Value::Array(vec![
            Value::Array(vec![Value::Int(0), Value::Int(8191), node(7000)]),
            Value::Array(vec![Value::Int(8192), Value::Int(16383), node(7001)]),
        ]))
    }

    #[tokio::test]
    async fn after_one_empty_read_only_that_nodes_streams_are_looked_at() {
        let target = flotilla_proto::RedisTarget::parse("redis://127.0.0.1:1").expect("a URL");
        let reads = BlockingReads::new(target, Duration::from_secs(1)).expect("a lazy pool");
        let mut reads = NodeReads::new(reads);
        reads.owners = two_nodes();
        let keys = flotilla_proto::Keys::default();
        let streams = flotilla_proto::partition_names("mail", 6);
        let order: Vec<&str> = streams.iter().map(String::as_str).collect();
        let (a, b) = ("127.0.0.1:7000", "127.0.0.1:7001");
        let on = |node: &str| -> Vec<&str> {
            order
                .iter()
                .copied()
                .filter(|s| reads.owners.owner_of(&keys.stream(s)) == Some(node))
                .collect()
        };
        let on_a = on(a);
        assert!(
            !on_a.is_empty() && !on(b).is_empty(),
            "both nodes serve mail"
        );
        let back = |reads: &mut NodeReads, node: &str, delivered: bool| {
            let done = ReadDone {
                node: node.to_owned(),
                result: Ok(delivered),
            };
            reads.returned(done).expect("no error");
        };
        let both = || HashMap::from([(a.to_owned(), 1), (b.to_owned(), 1)]);
        reads.generation = 1;
        reads.launched_for = streams.clone();
        reads.launched_for.sort_unstable();

        // a came back empty while b still waits: only a's streams, once.
        reads.waiting_on = both();
        back(&mut reads, a, false);
        assert_eq!(reads.quiet_streams(&keys, &order), Some(on_a));
        assert_eq!(reads.quiet_streams(&keys, &order), None, "asked once");

        // b is not watched: every stream.
        reads.waiting_on = both();
        back(&mut reads, b, false);
        back(&mut reads, a, true);
        reads.waiting_on.clear();
        back(&mut reads, a, false);
        assert_eq!(reads.quiet_streams(&keys, &order), None);

        // An entry, or both nodes back empty: every stream.
        reads.waiting_on = both();
        back(&mut reads, a, true);
        assert_eq!(reads.quiet_streams(&keys, &order), None);
        reads.waiting_on = both();
        back(&mut reads, a, false);
        back(&mut reads, b, false);
        assert_eq!(reads.quiet_streams(&keys, &order), None);

        // b's read was launched for other streams (before a resume, say): every stream.
        reads.waiting_on = HashMap::from([(a.to_owned(), 1), (b.to_owned(), 0)]);
        back(&mut reads, a, false);
        assert_eq!(reads.quiet_streams(&keys, &order), None);

        // The streams changed since the launch (a queue paused): every stream.
        reads.waiting_on = both();
        back(&mut reads, a, false);
        assert_eq!(reads.quiet_streams(&keys, &order[..4]), None);
    }

    #[test]
    fn streams_are_grouped_by_the_node_of_their_slot() {
        let owners = two_nodes();
        let keys = flotilla_proto::Keys::default();
        let streams: Vec<String> = flotilla_proto::partition_names("mail", 6);
        let order: Vec<&str> = streams.iter().map(String::as_str).collect();
        let nodes = by_node(&owners, &keys, &order);
        let total: usize = nodes.iter().map(|(_, _, count)| count).sum();
        assert_eq!(total, 6);
        for (node, first, _) in &nodes {
            assert_eq!(owners.owner_of(&keys.stream(first)), Some(node.as_str()));
            let earlier = order.iter().position(|s| s == first).expect("listed");
            assert!(
                order[..earlier]
                    .iter()
                    .all(|s| owners.owner_of(&keys.stream(s)) != Some(node.as_str())),
                "{first} is the first stream of {node}"
            );
        }
        // Without a slot map, every stream counts as one node: one read, on the first.
        let unknown = by_node(&SlotOwners::default(), &keys, &order);
        assert_eq!(unknown, vec![(String::new(), "mail", 6)]);
    }
}
