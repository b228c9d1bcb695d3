//! How the fetch loop waits when nothing is ready: on one server with a blocking read,
//! on a Redis Cluster with one read per primary (see `cluster`).

use std::sync::Arc;

use flotilla_proto::{Keys, SharedConnection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Shutdown;
use crate::fetch::cluster::{NodeReads, Room};
use crate::fetch::connections::BlockingReads;
use crate::fetch::fetch_loop::wait_time;
use crate::fetch::reads::FetchError;
use crate::shared::Shared;

/// How the fetch loop waits when nothing is ready: on one server, with the blocking read
/// of `fetch_once`; on a Redis Cluster, where a read may not span slots, with one read
/// per primary, each a task of its own.
pub(crate) enum Waits {
    OneServer,
    /// Boxed: one per worker, and far larger than the other variant.
    Cluster(Box<NodeReads>),
}

impl Waits {
    pub(crate) fn for_reads(blocking_reads: &BlockingReads) -> Self {
        if blocking_reads.is_cluster() {
            Self::Cluster(Box::new(NodeReads::new(blocking_reads.clone())))
        } else {
            Self::OneServer
        }
    }

    /// Collects the node reads that returned; a failed one is the loop's failure.
    pub(crate) fn reap(&mut self) -> Result<(), FetchError> {
        match self {
            Self::OneServer => Ok(()),
            Self::Cluster(reads) => reads.reap(),
        }
    }

    /// After one node's read came back empty, only that node's streams need a look.
    pub(crate) fn quiet_streams<'a>(
        &mut self,
        keys: &Keys,
        order: &[&'a str],
    ) -> Option<Vec<&'a str>> {
        match self {
            Self::OneServer => None,
            Self::Cluster(reads) => reads.quiet_streams(keys, order),
        }
    }

    /// Whether a blocking read of its own may go out: on a cluster only while no node
    /// read is in flight, as it could queue behind one on the node's connection.
    pub(crate) fn may_read_alone(&self) -> bool {
        match self {
            Self::OneServer => true,
            Self::Cluster(reads) => !reads.is_waiting(),
        }
    }

    /// Nothing was ready. On a cluster, unless the one stream asked was just waited on
    /// alone, waits on every node, each read taking a ticket (or slot) along for what it
    /// delivers. On one server the blocking read already waited.
    pub(crate) async fn wait_for_work(
        &mut self,
        shared: &Arc<Shared>,
        conn: &mut SharedConnection,
        version: u64,
        order: &[&str],
        (mut permits, mut ahead, slots): (
            Vec<OwnedSemaphorePermit>,
            Vec<OwnedSemaphorePermit>,
            &Arc<Semaphore>,
        ),
        shutdown: &Shutdown,
    ) -> Result<(), FetchError> {
        match self {
            Self::Cluster(reads) if order.len() > 1 || reads.is_waiting() => {
                reads.refresh(conn, version).await;
                let room = Room {
                    permits: &mut permits,
                    ahead: &mut ahead,
                    slots,
                };
                reads.launch(shared, order, room, wait_time(shared), shutdown);
                drop((permits, ahead));
                reads.wait(shutdown).await
            }
            _ => Ok(()),
        }
    }
}
