//! The examples in `examples/`, run as their run lines say against a real fleet: the
//! producers in Python, Node and the shell enqueue and wait for results from the `exec`
//! handlers in Python and Node and the `http` handler in Python, and the Rust example
//! worker serves its typed jobs. (The Go example needs Go and its module proxy, which the
//! test command does not install.)

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use flotilla_tests::{WorkerProcess, flotilla_bin, free_local_addr, repo_root, venv_tool};
use serde_json::{Value, json};

use crate::interop::tcp_redis;

/// A child process killed when the test ends, pass or fail.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `examples/http/server.py` on a free port, once it says it listens; and its URL.
fn example_http_server() -> (Killed, String) {
    let addr = free_local_addr();
    let port = addr.rsplit(':').next().unwrap_or("0").to_owned();
    let mut child = Command::new("python3")
        .arg(repo_root().join("examples/http/server.py"))
        .arg(&port)
        .stdout(Stdio::piped())
        // Its access log; the test reads only the first line of stdout.
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs");
    let stdout = child.stdout.take().expect("piped");
    let server = Killed(child);
    let mut first_line = String::new();
    BufReader::new(stdout)
        .read_line(&mut first_line)
        .expect("the server's first line");
    assert!(first_line.starts_with("listening on"), "{first_line}");
    (server, format!("http://{addr}/jobs"))
}

/// The settings in `examples/flotilla.toml`, with the commands' paths made absolute (a
/// test's working directory is not the repository's root) and the http handler pointed at
/// `http_url`.
fn example_settings(http_url: &str) -> String {
    let root = repo_root();
    std::fs::read_to_string(root.join("examples/flotilla.toml"))
        .expect("examples/flotilla.toml")
        .replace("\"examples/", &format!("\"{}/examples/", root.display()))
        .replace("http://127.0.0.1:8787/jobs", http_url)
}

/// What a producer example printed and how it ended.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn result(&self) -> Value {
        assert_eq!(self.code, Some(0), "{}\n{}", self.stdout, self.stderr);
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

/// Runs one producer example (its command from the repository's root) with a job type
/// and payload against `url`.
fn produce(program: &[&str], url: &str, job_type: &str, payload: &str) -> Run {
    let (first, rest) = program.split_first().expect("a program");
    let output = Command::new(first)
        .args(rest)
        .args([job_type, payload])
        .env("FLOTILLA_REDIS_URL", url)
        .env("FLOTILLA_WAIT_SECONDS", "20")
        .current_dir(repo_root())
        .output()
        .expect("the example runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[cfg_attr(
    not(feature = "external-tools"),
    ignore = "needs tools beyond redis-server: ./scripts/test.sh runs it"
)]
#[test]
fn every_producer_example_gets_the_result_of_every_handler_example() {
    let (_redis, url) = tcp_redis();
    let (_http_server, http_url) = example_http_server();
    let worker = WorkerProcess::start(&url, &[], Some(&example_settings(&http_url)));
    let python = venv_tool("python");
    let python = python.to_str().expect("a UTF-8 path");
    let producers: [&[&str]; 3] = [
        &[python, "examples/python/enqueue_and_wait.py"],
        &["node", "examples/node/enqueue_and_wait.mjs"],
        &["bash", "examples/shell/enqueue_and_wait.sh"],
    ];
    let upper_hi = json!({"upper": "HI", "length": 2, "attempt": 1});
    for producer in producers {
        let run = produce(producer, &url, "sleep", r#"{"ms": 100}"#);
        assert_eq!(run.result(), json!({"slept_ms": 100}), "{producer:?}");
        for handler in ["py_exec", "node_exec", "py_http"] {
            let run = produce(producer, &url, handler, r#"{"text": "hi"}"#);
            assert_eq!(
                run.result(),
                upper_hi,
                "{producer:?} {handler}: {}\n{}",
                run.stderr,
                worker.log()
            );
        }
    }
    // A failing handler: retried, then dead with its message, and the producer says so.
    for handler in ["py_exec", "node_exec", "py_http"] {
        let run = produce(producers[0], &url, handler, r#"{"fail": "disk full"}"#);
        assert_eq!(run.code, Some(1), "{handler}: {}", run.stdout);
        assert!(
            run.stderr.contains("disk full") && run.stderr.contains("attempts spent: 3 of 3"),
            "{handler}: {}",
            run.stderr
        );
    }
    // The http handler gives up on a 4xx at once.
    let run = produce(producers[0], &url, "py_http", r#"{"status": 422}"#);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(run.stderr.contains("422"), "{}", run.stderr);
}

#[cfg_attr(
    not(feature = "external-tools"),
    ignore = "needs tools beyond redis-server: ./scripts/test.sh runs it"
)]
#[test]
fn the_rust_example_worker_serves_its_typed_jobs() {
    let (_redis, url) = tcp_redis();
    let example = flotilla_bin()
        .parent()
        .expect("target/<profile>")
        .join("examples")
        .join(format!("typed_handlers{}", std::env::consts::EXE_SUFFIX));
    assert!(
        example.exists(),
        "{} is missing: `cargo test --workspace` builds the examples",
        example.display()
    );
    let _worker = Killed(
        Command::new(&example)
            .env("FLOTILLA_REDIS_URL", &url)
            .stdout(Stdio::null())
            .spawn()
            .expect("the example worker starts"),
    );
    let python = venv_tool("python");
    let producer = [
        python.to_str().expect("a UTF-8 path"),
        "examples/python/enqueue_and_wait.py",
    ];
    let run = produce(&producer, &url, "greet", r#"{"name": "Ada"}"#);
    assert_eq!(
        run.result(),
        json!({"text": "hello, Ada", "attempt": 1}),
        "{}",
        run.stderr
    );
    // A negative amount gives up on its first attempt instead of spending three.
    let run = produce(&producer, &url, "charge", r#"{"cents": -5}"#);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(
        run.stderr.contains("cannot charge -5 cents") && !run.stderr.contains("attempts spent"),
        "{}",
        run.stderr
    );
}

/// The lines of `text` that say something, trimmed: what a quote is compared by.
fn meaningful_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect()
}

/// Whether `needle` appears in `haystack` as a run of consecutive lines.
fn has_run(haystack: &[&str], needle: &[&str]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// The README's Rust blocks are quotes of the example service, which the suite builds and
/// tests: each block, cut at its `// …` lines, is found piece by piece in one of the
/// example's files, so a README example cannot stop compiling unnoticed.
#[test]
fn every_rust_block_of_the_readme_is_quoted_from_the_example_service() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let sources: Vec<String> = ["src/lib.rs", "src/main.rs", "tests/service.rs"]
        .iter()
        .map(|file| {
            std::fs::read_to_string(root.join("examples/service").join(file))
                .unwrap_or_else(|e| panic!("examples/service/{file}: {e}"))
        })
        .collect();
    let sources: Vec<Vec<&str>> = sources.iter().map(|s| meaningful_lines(s)).collect();
    let blocks: Vec<&str> = readme
        .split("```rust\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or(""))
        .collect();
    assert!(
        blocks.len() >= 4,
        "the README shows the job, producer, handler and test"
    );
    for block in blocks {
        for piece in block.split("// …\n") {
            let lines = meaningful_lines(piece);
            assert!(
                sources.iter().any(|source| has_run(source, &lines)),
                "this part of a README Rust block is not in examples/service; copy it \
                 from there again:\n{piece}"
            );
        }
    }
}
