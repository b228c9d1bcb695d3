//! Finding the jobs of a queue whose ids start with some characters, inside Flotilla's
//! own indexes (the queue's `delayed` set, its indexes of finished ids, its stream and its
//! `done` stream),
//! never by scanning the keyspace, and with a fixed budget of work per search.

use redis::aio::ConnectionLike;

use crate::{Keys, Status, field, range_completions};

/// Ids and entries one search examines in one queue at most: a search that would need
/// more stops and says so, so that no look-up costs Redis more than this however large
/// the queue.
pub const PREFIX_SEARCH_BUDGET: usize = 20_000;

/// Elements asked for per ZSCAN or XRANGE step.
const STEP: usize = 1_000;

/// The jobs found, and whether the search stopped at its budget before it looked
/// everywhere (then a job not listed may still match).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrefixMatches {
    /// The matching job ids, each once, in the order found.
    pub ids: Vec<String>,
    /// Whether the search spent its budget before it looked everywhere.
    pub incomplete: bool,
}

/// The ids of `queue`'s jobs that have a record and start with `prefix`, up to `limit`:
/// those waiting for a time (`delayed`), those finished within retention (the indexes of
/// completed, dead, cancelled and expired ids), those completed with an id of their own but no
/// record (`done_ids`, and `done` for those a 2.7 worker completed) and those on the
/// stream by their own id (pending or running).
/// Fast-path jobs named by their entry ids are found by [`crate::fast_ids_with_prefix`].
pub async fn record_ids_with_prefix<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    prefix: &str,
    limit: usize,
) -> Result<PrefixMatches, redis::RedisError> {
    let mut search = Search {
        prefix,
        limit,
        budget: PREFIX_SEARCH_BUDGET,
        found: PrefixMatches::default(),
    };
    let sets = [
        keys.delayed(queue),
        keys.later(queue),
        keys.index(queue, Status::Dead),
        keys.index(queue, Status::Completed),
        keys.index(queue, Status::Cancelled),
        keys.index(queue, Status::Expired),
        keys.done_ids(queue),
    ];
    for set in &sets {
        if search.done() {
            break;
        }
        search.sorted_set(conn, set).await?;
    }
    // On the stream by their own ids (pending or running), then completed without a
    // record (named by their `done` entries).
    for (stream, own_ids_only) in [(keys.stream(queue), false), (keys.done(queue), true)] {
        if search.done() {
            break;
        }
        search.stream(conn, &stream, own_ids_only).await?;
    }
    Ok(search.found)
}

/// One search's progress.
struct Search<'a> {
    prefix: &'a str,
    limit: usize,
    budget: usize,
    found: PrefixMatches,
}

impl Search<'_> {
    fn done(&self) -> bool {
        self.found.ids.len() >= self.limit || self.found.incomplete
    }

    fn add(&mut self, id: String) {
        if id.starts_with(self.prefix) && !self.found.ids.contains(&id) {
            self.found.ids.push(id);
        }
    }

    /// Takes `cost` from the budget; false (and the search marked incomplete) when it is
    /// spent.
    fn spend(&mut self, cost: usize) -> bool {
        if self.budget == 0 {
            self.found.incomplete = true;
            return false;
        }
        self.budget = self.budget.saturating_sub(cost);
        true
    }

    /// The members of a sorted set of ids that match, read with ZSCAN MATCH.
    async fn sorted_set<C: ConnectionLike>(
        &mut self,
        conn: &mut C,
        key: &str,
    ) -> Result<(), redis::RedisError> {
        let pattern = format!("{}*", crate::keys::glob_escaped(self.prefix));
        let mut cursor: u64 = 0;
        loop {
            if !self.spend(STEP) {
                return Ok(());
            }
            // Members and scores alternate in the reply.
            let (next, pairs): (u64, Vec<String>) = redis::cmd("ZSCAN")
                .arg(key)
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(STEP)
                .query_async(conn)
                .await?;
            for id in pairs.into_iter().step_by(2) {
                self.add(id);
            }
            cursor = next;
            if cursor == 0 || self.done() {
                return Ok(());
            }
        }
    }

    /// The ids (`id` field) of the entries on a stream that match; with `own_ids_only`,
    /// not those of an entry id's form (in `done`, they name fast-path jobs, which their
    /// own search finds).
    async fn stream<C: ConnectionLike>(
        &mut self,
        conn: &mut C,
        stream: &str,
        own_ids_only: bool,
    ) -> Result<(), redis::RedisError> {
        let mut start = "-".to_owned();
        loop {
            if !self.spend(STEP) {
                return Ok(());
            }
            let reply: redis::Value = redis::cmd("XRANGE")
                .arg(stream)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(STEP)
                .query_async(conn)
                .await?;
            // A `done` entry may hold several completions; any other entry holds one id.
            let (entries, held) = range_completions(reply);
            let full = held == STEP;
            for entry in &entries {
                if let Some(id) = entry.fields.get(field::ID) {
                    let id = String::from_utf8_lossy(id);
                    if !(own_ids_only && crate::is_entry_id(&id)) {
                        self.add(id.into_owned());
                    }
                }
            }
            match entries.last() {
                Some(last) if full && !self.done() => start = format!("({}", last.entry_id),
                _ => return Ok(()),
            }
        }
    }
}
