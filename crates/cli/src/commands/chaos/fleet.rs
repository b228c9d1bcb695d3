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
        self.members.push(Member { role, pid, child });
        Ok(pid)
    }

    /// The pids of the members of `role` that have not exited.
    pub fn live(&mut self, role: Role) -> Vec<u32> {
        self.reap();
        self.members
            .iter()
            .filter(|m| m.role == role)
            .map(|m| m.pid)
            .collect()
    }

    /// Forgets members that have exited; returns them, with their exit codes.
    pub fn reap(&mut self) -> Vec<(Role, u32, Option<i32>)> {
        let mut exited = Vec::new();
        self.members.retain_mut(|m| match m.child.try_wait() {
            Ok(Some(status)) => {
                exited.push((m.role, m.pid, status.code()));
                false
            }
            _ => true,
        });
        exited
    }

    pub fn role_of(&self, pid: u32) -> Option<Role> {
        self.members.iter().find(|m| m.pid == pid).map(|m| m.role)
    }

    /// Stops every member with SIGTERM, as a scale-down would, and waits for them; any
    /// still running after `grace` is killed.
    pub async fn stop(mut self, grace: std::time::Duration) {
        for member in &self.members {
            signal(member.pid, Signal::CONT);
            signal(member.pid, Signal::TERM);
        }
        for member in &mut self.members {
            if tokio::time::timeout(grace, member.child.wait())
                .await
                .is_err()
            {
                let _ = member.child.kill().await;
            }
        }
    }
}

/// Sends `signal` to `pid`; a process that is already gone is no error for the drill.
pub fn signal(pid: u32, signal: Signal) {
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    let _ = kill_process(pid, signal);
}
