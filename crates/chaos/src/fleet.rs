//! The drill's fleet: real `flotilla` worker and scheduler processes, started, signalled
//! and replaced the way a ReplicaSet would, each logging to its own file.

use std::path::PathBuf;

use anyhow::Context;
use flotilla_harness::{Launch, Process, Signal};

/// What a fleet member runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Worker,
    Scheduler,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Worker => "worker",
            Role::Scheduler => "scheduler",
        }
    }
}

#[derive(Debug)]
struct Member {
    role: Role,
    pid: u32,
    process: Process,
    /// Told to stop (SIGKILL or SIGTERM): its exit is the drill's doing.
    stopping: bool,
}

/// A member that exited without being told to: a failure the verdict counts.
#[derive(Debug, Clone)]
pub struct Failure {
    pub role: Role,
    pub pid: u32,
    /// The exit code, or the signal that ended it.
    pub how: String,
}

/// Where the fleet's processes find Redis, their settings and the ledger.
#[derive(Debug, Clone)]
pub struct FleetPaths {
    pub redis_url: String,
    pub settings: PathBuf,
    pub ledger: PathBuf,
    pub logs: PathBuf,
}

/// The running processes; dropping the fleet kills any still running.
#[derive(Debug)]
pub struct Fleet {
    exe: PathBuf,
    paths: FleetPaths,
    members: Vec<Member>,
    started: usize,
}

impl Fleet {
    /// A fleet of `exe`'s roles (the `flotilla` binary), none started yet.
    pub fn new(exe: PathBuf, paths: FleetPaths) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&paths.ledger)
            .and_then(|()| std::fs::create_dir_all(&paths.logs))
            .context("cannot create the drill's directories")?;
        Ok(Self {
            exe,
            paths,
            members: Vec::new(),
            started: 0,
        })
    }

    /// Starts one more process of `role`; returns its pid.
    pub fn spawn(&mut self, role: Role) -> anyhow::Result<u32> {
        self.started += 1;
        let log_path = self
            .paths
            .logs
            .join(format!("{}-{}.log", role.as_str(), self.started));
        let launch = match role {
            Role::Worker => Launch::new(&self.exe)
                .arg("chaos-worker")
                .arg("--ledger")
                .arg(&self.paths.ledger),
            Role::Scheduler => Launch::new(&self.exe).arg("scheduler"),
        };
        let process = launch
            .env("FLOTILLA_CONFIG", &self.paths.settings)
            .env("FLOTILLA_REDIS_URL", &self.paths.redis_url)
            .env("RUST_LOG", "warn")
            .env_remove("FLOTILLA_HTTP_LISTEN")
            .log_to(&log_path)
            .spawn()
            .with_context(|| format!("cannot start a {}", role.as_str()))?;
        let pid = process.pid();
        self.members.push(Member {
            role,
            pid,
            process,
            stopping: false,
        });
        Ok(pid)
    }

    /// Sends `signal` to a member; SIGKILL and SIGTERM mark it as stopping, so its exit
    /// is not taken for a failure and it is not picked again.
    pub fn signal(&mut self, pid: u32, sig: Signal) {
        if let Some(member) = self.members.iter_mut().find(|m| m.pid == pid) {
            member.stopping |= sig == Signal::Kill || sig == Signal::Term;
            member.process.signal(sig);
        }
    }

    /// The pids of the members of `role` that run and have not been told to stop.
    pub fn live(&mut self, role: Role) -> Vec<u32> {
        self.members
            .iter_mut()
            .filter(|m| m.role == role && !m.stopping)
            .filter_map(|m| (!m.process.has_exited()).then_some(m.pid))
            .collect()
    }

    /// Forgets members that have exited; returns those that exited without being told
    /// to (or, told to stop, exited with an error).
    pub fn reap(&mut self) -> Vec<Failure> {
        let mut failures = Vec::new();
        self.members.retain_mut(|m| match m.process.try_exit() {
            Some(status) => {
                failures.extend(judge_exit(m, status));
                false
            }
            None => true,
        });
        failures
    }

    pub fn role_of(&self, pid: u32) -> Option<Role> {
        self.members.iter().find(|m| m.pid == pid).map(|m| m.role)
    }

    /// Stops every member with SIGTERM, as a scale-down would, and waits for them; any
    /// still running after `grace` is killed. Returns the members that did not drain and
    /// exit cleanly, and those that had failed before.
    pub async fn stop(mut self, grace: std::time::Duration) -> Vec<Failure> {
        let mut failures = self.reap();
        for member in &mut self.members {
            member.process.signal(Signal::Cont);
            member.process.signal(Signal::Term);
            member.stopping = true;
        }
        let deadline = std::time::Instant::now() + grace;
        for member in &mut self.members {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match member.process.exit_within(left).await {
                Some(status) => failures.extend(judge_exit(member, status)),
                None => {
                    member.process.kill();
                    failures.push(Failure {
                        role: member.role,
                        pid: member.pid,
                        how: "did not stop within its grace after SIGTERM".to_owned(),
                    });
                }
            }
        }
        failures
    }
}

/// Whether an exit is a failure: any exit of a member not told to stop, and an error
/// exit of one told to stop by SIGTERM (a SIGKILLed one has no say).
fn judge_exit(member: &Member, status: std::process::ExitStatus) -> Option<Failure> {
    use std::os::unix::process::ExitStatusExt;
    let how = match (status.code(), status.signal()) {
        (Some(0), _) if member.stopping => return None,
        (None, Some(sig)) if member.stopping && sig == Signal::Kill.number() => return None,
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => format!("ended by signal {sig}"),
        (None, None) => "ended".to_owned(),
    };
    Some(Failure {
        role: member.role,
        pid: member.pid,
        how,
    })
}
