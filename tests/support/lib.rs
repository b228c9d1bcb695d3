//! Shared test support: real `redis-server` processes on private unix sockets, in-process
//! and out-of-process workers, and polling helpers that wait for a state with a deadline.

mod cluster;
mod fleet;
mod http;
mod redis_server;
mod sentinel;
mod tls;
mod tools;
mod wait;

pub use cluster::RedisCluster;
pub use fleet::{
    FlotillaProcess, InProcessWorker, JSON_LOGS, WorkerProcess, fast_config, fast_policy,
    flotilla_bin, json_lines,
};
pub use http::{
    HttpResponse, free_local_addr, http_get, http_request, http_server, http_server_bytes,
};
pub use redis_server::RedisServer;
pub use sentinel::SentinelGroup;
pub use tls::TestCertificates;
pub use tools::{repo_root, venv_tool};
pub use wait::{eventually, job_record};
