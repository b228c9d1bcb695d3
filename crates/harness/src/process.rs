//! A supervised child process: a Flotilla role (or any program) started with its settings
//! in the environment, its stderr in a log file and its stdout dropped or kept, pinned to
//! a CPU when asked; signalled, awaited and reaped; killed on drop. The tests, the bench,
//! the chaos drill and the private redis-server all start their children through it.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::HarnessError;

/// How often a wait for an exit looks again.
const EXIT_POLL: Duration = Duration::from_millis(10);

/// A signal the harness sends: the ones a drill or a test uses to crash, freeze, thaw and
/// stop a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGKILL: a crash, the OOM killer, a node lost.
    Kill,
    /// SIGTERM: an orchestrator's stop; the process drains and exits.
    Term,
    /// SIGINT: Ctrl-C.
    Int,
    /// SIGSTOP: a freeze (a long GC pause, a partition); nothing runs, nothing is lost.
    Stop,
    /// SIGCONT: the end of a freeze.
    Cont,
}

impl Signal {
    /// The signal `kill -NAME` means (`KILL`, `TERM`, `INT`, `STOP`, `CONT`; a `SIG`
    /// prefix is allowed).
    pub fn named(name: &str) -> Option<Self> {
        match name.trim_start_matches("SIG") {
            "KILL" => Some(Signal::Kill),
            "TERM" => Some(Signal::Term),
            "INT" => Some(Signal::Int),
            "STOP" => Some(Signal::Stop),
            "CONT" => Some(Signal::Cont),
            _ => None,
        }
    }

    /// Its number, as an exit status reports a process ended by it.
    pub fn number(self) -> i32 {
        self.as_rustix().as_raw()
    }

    fn as_rustix(self) -> rustix::process::Signal {
        use rustix::process::Signal as S;
        match self {
            Signal::Kill => S::KILL,
            Signal::Term => S::TERM,
            Signal::Int => S::INT,
            Signal::Stop => S::STOP,
            Signal::Cont => S::CONT,
        }
    }
}

/// Sends `signal` to `pid`. A process already gone is no error: a drill may signal one
/// that just exited.
pub fn send_signal(pid: u32, signal: Signal) {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let _ = rustix::process::kill_process(pid, signal.as_rustix());
}

/// What to start, and how.
#[derive(Debug, Clone)]
pub struct Launch {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    env_removed: Vec<OsString>,
    log: Option<PathBuf>,
    keep_stdout: bool,
    cpu: Option<usize>,
}

impl Launch {
    /// `program` with no arguments; its stdin, stdout and stderr go nowhere until told.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            env_removed: Vec::new(),
            log: None,
            keep_stdout: false,
            cpu: None,
        }
    }

    /// One more argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// More arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// An environment variable for the child (the last value given for a name wins).
    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((name.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Environment variables for the child.
    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (name, value) in vars {
            self = self.env(name, value);
        }
        self
    }

    /// A variable of this process's environment the child must not inherit.
    pub fn env_remove(mut self, name: impl AsRef<OsStr>) -> Self {
        self.env_removed.push(name.as_ref().to_owned());
        self
    }

    /// Writes the child's stderr (where Flotilla logs) to `path`, created afresh.
    pub fn log_to(mut self, path: impl Into<PathBuf>) -> Self {
        self.log = Some(path.into());
        self
    }

    /// Keeps the child's stdout, for [`Process::printed`] once it has exited.
    pub fn keep_stdout(mut self) -> Self {
        self.keep_stdout = true;
        self
    }

    /// Pins the child to `cpu` with `taskset` (none: runs anywhere).
    pub fn pin(mut self, cpu: Option<usize>) -> Self {
        self.cpu = cpu;
        self
    }

    /// Starts the child.
    pub fn spawn(self) -> Result<Process, HarnessError> {
        let (shown, mut command) = match self.cpu {
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpu.to_string()).arg(&self.program);
                ("taskset".to_owned(), command)
            }
            None => (
                self.program.display().to_string(),
                Command::new(&self.program),
            ),
        };
        command.args(&self.args);
        for name in &self.env_removed {
            command.env_remove(name);
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        let stderr = match &self.log {
            Some(path) => Stdio::from(std::fs::File::create(path).map_err(|e| {
                HarnessError::Setup(format!("cannot create {}: {e}", path.display()))
            })?),
            None => Stdio::null(),
        };
        let stdout = if self.keep_stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| HarnessError::Spawn {
                program: shown,
                reason: e.to_string(),
            })?;
        Ok(Process {
            pid: child.id(),
            child,
            log: self.log,
            exit: None,
        })
    }
}

/// A running (or exited, not yet dropped) child; dropping it kills and reaps it.
#[derive(Debug)]
pub struct Process {
    child: Child,
    pid: u32,
    log: Option<PathBuf>,
    exit: Option<ExitStatus>,
}

impl Process {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends it `signal`, unless it has exited and been reaped.
    pub fn signal(&mut self, signal: Signal) {
        if self.try_exit().is_none() {
            send_signal(self.pid, signal);
        }
    }

    /// Its exit status if it has exited, without waiting.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.exit = Some(status);
        }
        self.exit
    }

    /// Whether it has exited.
    pub fn has_exited(&mut self) -> bool {
        self.try_exit().is_some()
    }

    /// Waits up to `timeout` for it to exit, blocking this thread.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(ended) = self.exit_by(deadline) {
                return ended;
            }
            std::thread::sleep(EXIT_POLL);
        }
    }

    /// Waits up to `timeout` for it to exit, without blocking an async runtime.
    #[cfg(feature = "tokio")]
    pub async fn exit_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(ended) = self.exit_by(deadline) {
                return ended;
            }
            tokio::time::sleep(EXIT_POLL).await;
        }
    }

    /// A wait's answer once there is one: its exit status, or `None` past `deadline`;
    /// nothing while the wait goes on.
    fn exit_by(&mut self, deadline: Instant) -> Option<Option<ExitStatus>> {
        match self.try_exit() {
            Some(status) => Some(Some(status)),
            None if Instant::now() >= deadline => Some(None),
            None => None,
        }
    }

    /// Kills it with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        if self.try_exit().is_none() {
            let _ = self.child.kill();
            if let Ok(status) = self.child.wait() {
                self.exit = Some(status);
            }
        }
    }

    /// What it printed on stdout (started with [`Launch::keep_stdout`]), read to its end:
    /// call once it has exited.
    pub fn printed(&mut self) -> String {
        let mut text = String::new();
        if let Some(stdout) = self.child.stdout.as_mut() {
            let _ = stdout.read_to_string(&mut text);
        }
        text
    }

    /// Everything it logged so far (started with [`Launch::log_to`]).
    pub fn log(&self) -> String {
        self.log
            .as_deref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default()
    }

    /// Where it logs, if anywhere.
    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// CPU time it has used so far, user + system, in µs (`None` once reaped, or where
    /// /proc cannot tell).
    pub fn cpu_usec(&self) -> Option<f64> {
        crate::proc_stats::cpu_usec(self.pid)
    }

    /// Its peak resident set so far, in MB (`None` once reaped, or where /proc cannot
    /// tell).
    pub fn peak_rss_mb(&self) -> Option<f64> {
        crate::proc_stats::peak_rss_mb(self.pid)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
