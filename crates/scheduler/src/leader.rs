//! Leader election on Redis: a lease (`SET NX PX`) renewed by compare-and-extend, a fencing
//! epoch bumped on every acquisition, and a safety margin inside which the leader stops
//! acting (rule 6).

use flotilla_proto::millis;
use std::time::{Duration, Instant};

use flotilla_proto::Keys;
use flotilla_proto::SharedConnection;
use flotilla_proto::scripts::{
    self, AcquireReply, LeaderAcquire, LeaderRelease, LeaderRenew, ScriptError,
};

/// This process's claim on the lease.
#[derive(Debug)]
pub struct Leadership {
    keys: Keys,
    holder: String,
    ttl: Duration,
    margin: Duration,
    /// The epoch of our current term, while we lead.
    epoch: Option<u64>,
    /// Until when we may act: the time the last successful acquire/renew was *sent*, plus
    /// the lease, minus the safety margin.
    act_until: Instant,
}

/// Who leads, as `flotilla schedules status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderStatus {
    /// The replica that holds the lease; `None` when no scheduler leads.
    pub holder: Option<String>,
    /// The fencing epoch: raised at each new leadership, 0 before the first.
    pub epoch: u64,
    /// How long the lease has left, ms (negative when it has no expiry), while it is
    /// held; `None` when no scheduler leads.
    pub lease_remaining_ms: Option<i64>,
}

impl Leadership {
    /// A claim for `holder` on the lease of the namespace of `keys`: a term lasts `ttl`
    /// from each acquire or renewal, and acts only while more than `margin` of it remains.
    /// It leads only once [`Leadership::acquire`] succeeds.
    pub fn new(keys: Keys, holder: String, ttl: Duration, margin: Duration) -> Self {
        Self {
            keys,
            holder,
            ttl,
            margin,
            epoch: None,
            act_until: Instant::now(),
        }
    }

    /// The id this replica holds the lease under.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The epoch of our term, if we lead and may still act.
    pub fn current_epoch(&self) -> Option<u64> {
        self.epoch.filter(|_| Instant::now() < self.act_until)
    }

    /// True if we led but the safety margin has been reached without a renewal.
    pub fn lapsed(&self) -> bool {
        self.epoch.is_some() && Instant::now() >= self.act_until
    }

    /// Tries to take (or confirm) the lease. Returns the epoch when we lead.
    pub async fn acquire(
        &mut self,
        conn: &mut SharedConnection,
    ) -> Result<Option<u64>, ScriptError> {
        let sent = Instant::now();
        let acquire = LeaderAcquire {
            holder: &self.holder,
            ttl_ms: millis(self.ttl),
        };
        match scripts::run(conn, &self.keys, &acquire).await? {
            AcquireReply::Acquired { epoch } | AcquireReply::Extended { epoch } => {
                self.epoch = Some(epoch);
                self.act_until = sent + self.ttl.saturating_sub(self.margin);
            }
            AcquireReply::Held { .. } => self.epoch = None,
        }
        Ok(self.epoch)
    }

    /// Extends the lease. Returns false (and forgets the term) if it is no longer ours.
    pub async fn renew(&mut self, conn: &mut SharedConnection) -> Result<bool, ScriptError> {
        let Some(epoch) = self.epoch else {
            return Ok(false);
        };
        let sent = Instant::now();
        let renew = LeaderRenew {
            holder: &self.holder,
            ttl_ms: millis(self.ttl),
            epoch,
        };
        if scripts::run(conn, &self.keys, &renew).await? {
            self.act_until = sent + self.ttl.saturating_sub(self.margin);
            Ok(true)
        } else {
            self.epoch = None;
            Ok(false)
        }
    }

    /// Stops acting as leader (the lease runs out by itself).
    pub fn step_down(&mut self) {
        self.epoch = None;
    }

    /// Gives the lease up at once so a standby takes over without waiting for it to expire.
    pub async fn release(&mut self, conn: &mut SharedConnection) -> Result<(), ScriptError> {
        self.epoch = None;
        let release = LeaderRelease {
            holder: &self.holder,
        };
        scripts::run(conn, &self.keys, &release).await?;
        Ok(())
    }
}

/// Reads who leads now.
pub async fn status(conn: &mut SharedConnection, keys: &Keys) -> redis::RedisResult<LeaderStatus> {
    let lease = flotilla_proto::read_lease(conn, keys).await?;
    Ok(LeaderStatus {
        lease_remaining_ms: lease.remaining_ms,
        holder: lease.holder,
        epoch: lease.epoch,
    })
}
