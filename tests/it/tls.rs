//! TLS to Redis with a certificate authority the test makes: the whole fleet reaches a
//! server that speaks only TLS and asks for client certificates, through `rediss://` and
//! the `[redis_tls]` files, and a client without the right files is refused.

use std::process::Command;

use flotilla_producer::Producer;
use flotilla_proto::{RedisTarget, SharedConnection, TlsFiles};
use flotilla_tests::{
    FlotillaProcess, TestCertificates, WorkerProcess, flotilla_bin, free_local_addr,
};
use redis::aio::ConnectionManagerConfig;

use crate::util::{CoreJobs, Env, LONG, run_flotilla, wait_schedule_ran};

#[tokio::test(flavor = "multi_thread")]
async fn the_fleet_reaches_redis_over_tls_with_the_files_it_is_given() {
    let certs = TestCertificates::make();
    let addr = free_local_addr();
    let port = addr.rsplit(':').next().expect("port").to_owned();
    let args = certs.server_args(&port);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // The server listens on TLS only (and on the test's own unix socket).
    let env = Env::start_with(&args).await;
    let url = format!("rediss://localhost:{port}");
    let ca = certs.ca().display().to_string();
    let cert = certs.client_cert().display().to_string();
    let key = certs.client_key().display().to_string();
    let tls_env = [
        ("FLOTILLA_REDIS_TLS__CA_FILE", ca.as_str()),
        ("FLOTILLA_REDIS_TLS__CERT_FILE", cert.as_str()),
        ("FLOTILLA_REDIS_TLS__KEY_FILE", key.as_str()),
    ];

    let worker = WorkerProcess::start(&url, &tls_env, None);
    let scheduler = FlotillaProcess::scheduler(
        &url,
        &tls_env,
        Some("[schedules.tick]\nevery = \"1s\"\ntype = \"noop\"\n"),
    );
    let files = TlsFiles {
        ca_file: Some(certs.ca()),
        cert_file: Some(certs.client_cert()),
        key_file: Some(certs.client_key()),
    };
    let target = RedisTarget::with_tls(&url, &files).expect("the TLS files are read");
    let producer = Producer::connect(&target)
        .await
        .expect("the producer connects over TLS");

    let jobs = CoreJobs::enqueue(&producer).await;
    jobs.wait_done(&env.conn, &env.keys).await;
    wait_schedule_ran(&env.conn, &env.keys, "tick").await;

    // The ops CLI reads the same settings.
    let shown = run_flotilla(&url, &tls_env, &["jobs", "show", &jobs.retried]);
    assert!(shown.contains("completed"), "{shown}");
    assert!(
        !worker.log().contains("ERROR") && !scheduler.log().contains("ERROR"),
        "worker log:\n{}\nscheduler log:\n{}",
        worker.log(),
        scheduler.log()
    );

    // Without the right files, or without TLS, Redis is not reached.
    let refused = [
        (
            "the system's roots only",
            RedisTarget::parse(&url),
            "certificate",
        ),
        (
            "no client certificate",
            RedisTarget::with_tls(
                &url,
                &TlsFiles {
                    ca_file: Some(certs.ca()),
                    ..TlsFiles::default()
                },
            ),
            "certificate",
        ),
        (
            "plain TCP",
            RedisTarget::parse(&format!("redis://localhost:{port}")),
            "",
        ),
    ];
    for (what, target, says) in refused {
        let target = target.expect("a valid target");
        let once = ConnectionManagerConfig::new().set_number_of_retries(0);
        let connect = tokio::time::timeout(LONG, SharedConnection::connect(&target, once));
        match connect.await.expect("refused in time") {
            Ok(_) => panic!("connected with {what}"),
            Err(e) => assert!(e.to_string().to_lowercase().contains(says), "{what}: {e}"),
        }
    }
}

#[test]
fn a_missing_tls_file_stops_the_worker_with_the_key_and_the_path() {
    let output = Command::new(flotilla_bin())
        .arg("worker")
        .env("FLOTILLA_REDIS_URL", "rediss://localhost:6380")
        .env("FLOTILLA_REDIS_TLS__CA_FILE", "/nonexistent/ca.pem")
        .env_remove("FLOTILLA_CONFIG")
        .output()
        .expect("flotilla runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "started without its CA file");
    assert!(
        stderr.contains("redis_tls.ca_file") && stderr.contains("/nonexistent/ca.pem"),
        "{stderr}"
    );
}
