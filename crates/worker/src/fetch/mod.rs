//! Fetching: which streams a worker reads and in what order, and the reads themselves.
//! `fetch_loop` waits for a free slot and fetches, from one server (`reads`) or, on a
//! Redis Cluster, from a blocking reader per primary (`cluster`, each read a
//! `node_reader` task), and hands each batch to `run`.

pub(crate) mod cluster;
pub(crate) mod connections;
pub(crate) mod fetch_loop;
pub(crate) mod lottery;
pub(crate) mod node_reader;
pub(crate) mod reads;
pub(crate) mod served;
pub(crate) mod waits;
