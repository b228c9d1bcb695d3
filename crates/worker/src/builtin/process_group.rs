//! A child process and everything it starts, ended together: each `exec` child leads its
//! own process group, and the group ends with its attempt — when the command exits, and
//! when the attempt stops early (timeout, cancel, shutdown, result over its limit) —
//! SIGTERM first, SIGKILL after a grace, so a shell's background children never outlive
//! their job.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};

/// Groups told to stop whose grace has not run out yet; the worker waits for them before
/// it exits, so a child that ignores SIGTERM still gets its SIGKILL.
static ENDING: AtomicUsize = AtomicUsize::new(0);

/// How often a group told to stop is checked for having gone.
const POLL: Duration = Duration::from_millis(20);

/// Ends a process group on [`ProcessGroup::end`], or when dropped.
#[derive(Debug)]
pub(crate) struct ProcessGroup {
    pgid: Option<Pid>,
    grace: Duration,
}

impl ProcessGroup {
    /// Guards the group led by the child with this pid (spawned with `process_group(0)`).
    pub(crate) fn new(leader_pid: Option<u32>, grace: Duration) -> Self {
        let pgid = leader_pid
            .and_then(|pid| i32::try_from(pid).ok())
            .and_then(Pid::from_raw);
        Self { pgid, grace }
    }

    /// Tells every process left in the group to stop (SIGTERM), and kills what is still
    /// there after the grace. Called once the leader exited (its background children go
    /// too), and on drop; a second call does nothing.
    pub(crate) fn end(&mut self) {
        let Some(pgid) = self.pgid.take() else {
            return;
        };
        if kill_process_group(pgid, Signal::TERM).is_err() {
            return; // the group is gone already
        }
        // Escalation runs on a thread of its own: a drop cannot await, and the runtime may
        // be shutting down.
        let grace = self.grace;
        ENDING.fetch_add(1, Ordering::SeqCst);
        let spawned = std::thread::Builder::new()
            .name("exec-group-reaper".to_owned())
            .spawn(move || {
                let deadline = Instant::now() + grace;
                while Instant::now() < deadline && test_kill_process_group(pgid).is_ok() {
                    std::thread::sleep(POLL);
                }
                let _ = kill_process_group(pgid, Signal::KILL);
                ENDING.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            let _ = kill_process_group(pgid, Signal::KILL);
            ENDING.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.end();
    }
}

/// Waits (up to `limit`) until every group told to stop has gone or been killed.
pub(crate) async fn wait_for_ending_groups(limit: Duration) {
    let deadline = Instant::now() + limit;
    while ENDING.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
    }
}
