//! The drill's fleet: real `flotilla` worker and scheduler processes, started, signalled
//! and replaced the way a ReplicaSet would, each logging to its own file.

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::Context;
use rustix::process::{Pid, Signal, kill_process};
use tokio::process::{Child, Command};

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
    child: Child,
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
    pub fn new(paths: FleetPaths) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the flotilla binary")?;
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
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let mut command = Command::new(&self.exe);
        match role {
            Role::Worker => command
                .arg("chaos-worker")
                .arg("--ledger")
                .arg(&self.paths.ledger),
            Role::Scheduler => command.arg("scheduler"),
        };
        command
            .env("FLOTILLA_CONFIG", &self.paths.settings)
            .env("FLOTILLA_REDIS_URL", &self.paths.redis_url)
            .env("RUST_LOG", "warn")
            .env_remove("FLOTILLA_HTTP_LISTEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start a {}", role.as_str()))?;
        let pid = child.id().context("a process just started has no pid")?;
        self.members.push(Member {
            role,
            pid,
            child,
            stopping: false,
        });
        Ok(pid)
    }

    /// Sends `signal` to a member; SIGKILL and SIGTERM mark it as stopping, so its exit
    /// is not taken for a failure and it is not picked again.
    pub fn signal(&mut self, pid: u32, sig: Signal) {
        if let Some(member) = self.members.iter_mut().find(|m| m.pid == pid) {
            member.stopping |= sig == Signal::KILL || sig == Signal::TERM;
            signal(pid, sig);
        }
    }

    /// The pids of the members of `role` that run and have not been told to stop.
    pub fn live(&mut self, role: Role) -> Vec<u32> {
        self.members
            .iter_mut()
            .filter(|m| m.role == role && !m.stopping)
            .filter_map(|m| matches!(m.child.try_wait(), Ok(None)).then_some(m.pid))
            .collect()
    }

    /// Forgets members that have exited; returns those that exited without being told
    /// to (or, told to stop, exited with an error).
    pub fn reap(&mut self) -> Vec<Failure> {
        let mut failures = Vec::new();
        self.members.retain_mut(|m| match m.child.try_wait() {
            Ok(Some(status)) => {
                if let Some(failure) = judge_exit(m, status) {
                    failures.push(failure);
                }
                false
            }
            _ => true,
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
            signal(member.pid, Signal::CONT);
            signal(member.pid, Signal::TERM);
            member.stopping = true;
        }
        let deadline = tokio::time::Instant::now() + grace;
        for member in &mut self.members {
            match tokio::time::timeout_at(deadline, member.child.wait()).await {
                Ok(Ok(status)) => failures.extend(judge_exit(member, status)),
                _ => {
                    let _ = member.child.kill().await;
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
        (None, Some(sig)) if member.stopping && sig == Signal::KILL.as_raw() => return None,
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

/// Sends `signal` to `pid`; a process that is already gone is no error for the drill.
pub fn signal(pid: u32, signal: Signal) {
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    let _ = kill_process(pid, signal);
}
