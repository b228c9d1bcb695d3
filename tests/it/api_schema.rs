//! schemathesis (from PyPI, installed by the test command) against the dashboard's
//! OpenAPI document: generated requests to every operation, with and without the token,
//! find no server error, and every answer matches the document (status codes, content
//! types, bodies).

use std::process::Command;
use std::time::Duration;

use flotilla_proto::Status;
use flotilla_tests::{WorkerProcess, free_local_addr, venv_tool};

use crate::ops::unhandled;
use crate::util::{Env, LONG};

const TOKEN: &str = "schema-token-77aa";

fn schemathesis(addr: &str, auth: Option<&str>) -> std::process::Output {
    let mut command = Command::new(venv_tool("schemathesis"));
    command
        .arg("run")
        .arg(format!("http://{addr}/api/v1/openapi.json"))
        .args(["--url", &format!("http://{addr}/api/v1")])
        // A cursor is valid only as an earlier page returned it, which no schema can
        // say: the one check left out is "every schema-valid request is accepted".
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        .args(["--max-examples", "25", "--seed", "20261124"])
        .args(["--request-timeout", "10"])
        .env("NO_COLOR", "1")
        // It keeps a cache in its working directory: not in the repository.
        .current_dir(std::env::temp_dir());
    if let Some(auth) = auth {
        command.args(["-H", &format!("Authorization: Bearer {auth}")]);
    }
    command.output().expect("schemathesis runs")
}

#[cfg_attr(
    not(feature = "external-tools"),
    ignore = "needs tools beyond redis-server: ./scripts/test.sh runs it"
)]
#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_answer_off_the_document() {
    let env = Env::start().await;
    let _worker = WorkerProcess::start(&env.url(), &[], Some("[queues]\ncritical = 1\n"));
    let dead = env.enqueue_job(unhandled("ghost").queue("critical")).await;
    env.wait_status("critical", &dead, Status::Dead, LONG).await;
    env.leave_waiting(3).await;
    // The flow and the batch the document's examples name, so that their pages answer
    // 200 with real bodies: a job waiting for a parent held back ten minutes, and a batch
    // with a callback still waiting.
    let mut flow = flotilla_producer::Flow::with_id("schema-flow");
    let parent = flow
        .add(
            flotilla_producer::NewJob::new("noop", &serde_json::json!({}))
                .expect("job")
                .delay(Duration::from_secs(600)),
        )
        .expect("a parent");
    flow.add(
        flotilla_producer::NewJob::new("noop", &serde_json::json!({}))
            .expect("job")
            .after(parent),
    )
    .expect("a child");
    env.producer.enqueue_flow(flow).await.expect("the flow");
    let mut batch = flotilla_producer::Batch::new("schema-batch")
        .on_complete(flotilla_producer::NewJob::new("noop", &serde_json::json!({})).expect("job"));
    batch
        .add(
            flotilla_producer::NewJob::new("noop", &serde_json::json!({}))
                .expect("job")
                .delay(Duration::from_secs(600)),
        )
        .expect("a job");
    env.producer.enqueue_batch(batch).await.expect("the batch");
    let addr = free_local_addr();
    let dashboard = WorkerProcess::dashboard(&env.url(), &addr, Some(TOKEN));
    for auth in [None, Some(TOKEN)] {
        let output = schemathesis(&addr, auth);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "schemathesis (token: {}) failed:\n{stdout}\n{}",
            auth.is_some(),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("Tested: 20"), "{stdout}");
    }
    // Still serving, and no request made it log a failure of its own.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !dashboard.log().contains("dashboard request failed"),
        "{}",
        dashboard.log()
    );
}
