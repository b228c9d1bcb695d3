//! Other languages against a real fleet: the Python protocol conformance suite with the
//! Python client's tests, the Node client's tests, and the published scripts kept byte for
//! byte what workers run. The examples in every language are in `examples.rs`.

use std::path::Path;
use std::process::{Command, Output};

use flotilla_tests::{RedisServer, WorkerProcess, flotilla_bin, free_local_addr, repo_root};

/// A private redis-server that also listens on a loopback TCP port, and its `redis://`
/// URL: every client in every language takes that form.
pub fn tcp_redis() -> (RedisServer, String) {
    let addr = free_local_addr();
    let port = addr.rsplit(':').next().unwrap_or("0").to_owned();
    let redis = RedisServer::start_with(&["--port", &port, "--bind", "127.0.0.1"]);
    (redis, format!("redis://{addr}"))
}

/// Runs a program of another language to its end, failing the test with everything it
/// printed unless it succeeded.
pub fn run_to_success(command: &mut Command, what: &str, worker: &WorkerProcess) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}\nworker log:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        worker.log()
    );
    output
}

#[test]
fn the_published_scripts_are_the_ones_workers_run() {
    let root = repo_root();
    // With FLOTILLA_WRITE_PUBLISHED=1 the copies are rewritten instead of checked: run it
    // so after changing a published script or a helper it uses.
    let write = std::env::var_os("FLOTILLA_WRITE_PUBLISHED").is_some();
    for (name, source) in flotilla_proto::scripts::published() {
        for copy in [
            Path::new("protocol/v2").join(name),
            Path::new("clients/python/src/flotilla_client").join(name),
            Path::new("clients/node").join(name),
        ] {
            if write {
                std::fs::write(root.join(&copy), &source)
                    .unwrap_or_else(|e| panic!("{}: {e}", copy.display()));
                continue;
            }
            let published = std::fs::read_to_string(root.join(&copy))
                .unwrap_or_else(|e| panic!("{}: {e}", copy.display()));
            assert!(
                published == source,
                "{} differs from the script workers run (the helpers of \
                 crates/proto/src/scripts/lua/common.lua it uses, then its own file): \
                 rewrite the copies with FLOTILLA_WRITE_PUBLISHED=1 cargo test --test it \
                 the_published_scripts_are_the_ones_workers_run",
                copy.display()
            );
        }
    }
}

#[cfg_attr(
    not(feature = "external-tools"),
    ignore = "needs tools beyond redis-server: ./scripts/test.sh runs it"
)]
#[test]
fn the_python_conformance_suite_and_the_python_client_pass_against_a_real_fleet() {
    let (_redis, url) = tcp_redis();
    let worker = WorkerProcess::start(&url, &[], None);
    let root = repo_root();
    let python = flotilla_tests::venv_tool("python");
    let output = run_to_success(
        Command::new(&python)
            .args([
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--rootdir=.",
            ])
            .args(["tests/conformance", "clients/python/tests"])
            .env("FLOTILLA_REDIS_URL", &url)
            .env("FLOTILLA_BIN", flotilla_bin())
            .env("PYTHONPATH", root.join("clients/python/src"))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .current_dir(&root),
        "pytest",
        &worker,
    );
    let summary = String::from_utf8_lossy(&output.stdout);
    // A suite that collected nothing passes too: it must have run the tests.
    assert!(
        summary.contains(" passed") && !summary.contains("skipped"),
        "{summary}"
    );
    // The client is typed: its annotations hold under mypy's strict mode.
    run_to_success(
        Command::new(&python)
            .args(["-m", "mypy", "--strict", "--no-incremental"])
            .arg("clients/python/src")
            .current_dir(&root),
        "mypy --strict",
        &worker,
    );
}

#[cfg_attr(
    not(feature = "external-tools"),
    ignore = "needs tools beyond redis-server: ./scripts/test.sh runs it"
)]
#[test]
fn the_node_client_passes_its_tests_against_a_real_fleet() {
    let (_redis, url) = tcp_redis();
    let worker = WorkerProcess::start(&url, &[], None);
    let output = run_to_success(
        Command::new("node")
            .args(["--test", "test/"])
            .env("FLOTILLA_REDIS_URL", &url)
            .current_dir(repo_root().join("clients/node")),
        "node --test",
        &worker,
    );
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains("# fail 0") && summary.contains("# skipped 0"),
        "{summary}"
    );
}
