//! The dashboard against a real fleet: the JSON API shows what the fleet holds and makes
//! changes only with the token; a browser session's forms need their CSRF token; every
//! change is logged with who made it; without a token nothing changes.

use flotilla_proto::Status;
use flotilla_tests::{HttpResponse, WorkerProcess, eventually, free_local_addr, http_request};
use serde_json::{Value, json};

use crate::ops::unhandled;
use crate::util::{Env, LONG};

const TOKEN: &str = "test-token-5f2c";

fn get(addr: &str, path: &str) -> HttpResponse {
    http_request(addr, "GET", path, &[], "").expect("the dashboard answers")
}

fn json_of(response: &HttpResponse) -> Value {
    serde_json::from_str(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", response.status, response.body))
}

fn post(addr: &str, path: &str, headers: &[(&str, &str)], body: &str) -> HttpResponse {
    http_request(addr, "POST", path, headers, body).expect("the dashboard answers")
}

/// Signs in through the login form; returns the session cookie and the page's CSRF token.
fn sign_in(addr: &str, name: &str) -> (String, String) {
    let form = format!("name={name}&token={TOKEN}");
    let signed = post(
        addr,
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form,
    );
    assert_eq!(signed.status, 303, "{}", signed.body);
    let cookie = signed
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let page = http_request(addr, "GET", "/queues/default", &[("Cookie", &cookie)], "")
        .expect("the dashboard answers");
    assert!(
        page.body.contains(&format!("signed in as {name}")),
        "{}",
        page.body
    );
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a form with a CSRF token")
        .to_owned();
    (cookie, csrf)
}

#[tokio::test]
async fn the_api_shows_the_fleet_and_changes_it_only_with_the_token() {
    let env = Env::start().await;
    let _worker = WorkerProcess::start(&env.url(), &[], Some("[queues]\ncritical = 1\n"));
    let addr = free_local_addr();
    let dashboard = WorkerProcess::dashboard(&env.url(), &addr, Some(TOKEN));
    let done = env
        .enqueue_job(
            flotilla_producer::NewJob::new("noop", &json!({}))
                .expect("encodes")
                .queue("critical"),
        )
        .await;
    let dead = env.enqueue_job(unhandled("ghost").queue("critical")).await;
    env.wait_status("critical", &done, Status::Completed, LONG)
        .await;
    env.wait_status("critical", &dead, Status::Dead, LONG).await;
    env.leave_waiting(2).await;

    let overview = json_of(&get(&addr, "/api/v1/overview"));
    let queues = overview["queues"].as_array().expect("queues");
    let default = queues
        .iter()
        .find(|q| q["queue"] == "default")
        .expect("default");
    assert_eq!(default["pending"], 2, "{default}");
    assert_eq!(default["scheduled"], 1, "{default}");
    let critical = queues
        .iter()
        .find(|q| q["queue"] == "critical")
        .expect("critical");
    assert_eq!(critical["dead"], 1, "{critical}");
    assert_eq!(critical["completed_last_hour"], 1, "{critical}");
    assert_eq!(overview["read_only"], false);
    assert_eq!(
        overview["workers"].as_array().map(Vec::len),
        Some(1),
        "{overview}"
    );
    let charted: u64 = overview["throughput"]
        .as_array()
        .expect("throughput")
        .iter()
        .map(|m| m["completed"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(charted, 1, "{overview}");

    let page = json_of(&get(&addr, "/api/v1/jobs?status=dead"));
    assert_eq!(page["jobs"][0]["id"], dead.as_str(), "{page}");
    let full = flotilla_proto::full_id("critical", &dead);
    assert_eq!(page["jobs"][0]["full_id"], full.as_str(), "{page}");
    let job = json_of(&get(&addr, &format!("/api/v1/jobs/critical/{dead}")));
    assert_eq!(job["status"], "dead", "{job}");
    assert_eq!(job["full_id"], full.as_str(), "{job}");
    // A full id alone names the job.
    let by_full_id = json_of(&get(&addr, &format!("/api/v1/jobs/{full}")));
    assert_eq!(by_full_id, job);
    assert_eq!(
        get(&addr, &format!("/api/v1/jobs/default:{dead}")).status,
        404
    );
    // Its one attempt's error is in the history (`error` adds why it died), and on its page.
    assert_eq!(job["errors"][0]["attempt"], 1, "{job}");
    let attempt_error = job["errors"][0]["error"].as_str().unwrap_or("none");
    assert!(
        attempt_error.starts_with("no handler for type ghost")
            && job["error"]
                .as_str()
                .unwrap_or("")
                .starts_with(attempt_error),
        "{job}"
    );
    let job_page = get(&addr, &format!("/jobs/critical/{dead}"));
    assert!(
        job_page.body.contains("Errors by attempt") && job_page.body.contains("no handler"),
        "{}",
        job_page.body
    );
    assert_eq!(get(&addr, "/api/v1/jobs/critical/nosuchjob").status, 404);
    assert_eq!(get(&addr, "/api/v1/jobs?status=lost").status, 400);
    assert_eq!(
        get(&addr, "/api/v1/jobs?cursor={default}nonsense").status,
        400
    );
    assert_eq!(get(&addr, "/api/v1/queues/nosuch").status, 404);
    let openapi = json_of(&get(&addr, "/api/v1/openapi.json"));
    assert_eq!(openapi["openapi"], "3.1.0");

    // Changes: refused without the token and with a wrong one, done with it.
    let retry = format!("/api/v1/jobs/critical/{dead}/retry");
    assert_eq!(post(&addr, &retry, &[], "").status, 401);
    let wrong = post(&addr, &retry, &[("Authorization", "Bearer nope")], "");
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let bearer = format!("Bearer {TOKEN}");
    let auth = [
        ("Authorization", bearer.as_str()),
        ("X-Flotilla-Actor", "ops-bot"),
    ];
    let retried = post(&addr, &retry, &auth, "");
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert_eq!(json_of(&retried)["outcome"], "retried");
    // The retried job runs again (and dies again: nothing handles it).
    eventually(LONG, "the retried job to die again", || async {
        let job = json_of(&get(&addr, &format!("/api/v1/jobs/critical/{dead}")));
        (job["status"] == "dead" && job["attempts"] == 1).then_some(())
    })
    .await;
    let not_dead = post(
        &addr,
        &format!("/api/v1/jobs/critical/{done}/retry"),
        &auth,
        "",
    );
    assert_eq!(not_dead.status, 409, "{}", not_dead.body);

    // A queue's flow limit shows in the API and on its page.
    assert_eq!(
        json_of(&get(&addr, "/api/v1/queues/default"))["limit"],
        json!(null)
    );
    let limit = flotilla_proto::flow::QueueLimit {
        rate: Some("50/s".parse().expect("a rate")),
        burst: None,
        concurrency: Some(4),
        ..Default::default()
    };
    flotilla_proto::flow::set_limit(&mut env.conn.clone(), &env.keys, "default", &limit, false)
        .await
        .expect("limit set");
    let shown = json_of(&get(&addr, "/api/v1/queues/default"));
    assert_eq!(
        shown["limit"],
        json!({
            "queue": "default", "rate": "50/s", "burst": 5, "concurrency": 4, "slots_held": 0,
            "group_concurrency": null, "group_rate": null, "group_burst": null,
            "groups_waiting": 0, "busiest_groups": []
        }),
        "{shown}"
    );
    let page = get(&addr, "/queues/default");
    assert!(
        page.body
            .contains("Flow limit, fleet-wide: 50/s (burst 5), 0 of 4 running"),
        "{}",
        page.body
    );

    let paused = post(&addr, "/api/v1/queues/default/pause", &auth, "");
    assert_eq!(json_of(&paused)["paused"], true, "{}", paused.body);
    assert_eq!(
        json_of(&get(&addr, "/api/v1/queues/default"))["paused"],
        true
    );
    let deleted = http_request(
        &addr,
        "DELETE",
        &format!("/api/v1/jobs/critical/{done}"),
        &auth,
        "",
    )
    .expect("answers");
    assert_eq!(json_of(&deleted)["outcome"], "deleted", "{}", deleted.body);
    assert_eq!(
        get(&addr, &format!("/api/v1/jobs/critical/{done}")).status,
        404
    );

    // Each change is logged with who made it.
    let log = eventually(LONG, "the audit log lines", || async {
        let log = dashboard.log();
        (log.matches("dashboard change").count() >= 4).then_some(log)
    })
    .await;
    assert!(log.contains("actor=ops-bot"), "{log}");
    assert!(log.contains("action=\"pause queue\""), "{log}");
    assert!(log.contains("action=\"retry job\""), "{log}");

    let health = get(&addr, "/healthz");
    assert_eq!(
        (health.status, json_of(&health)["status"].clone()),
        (200, json!("ok"))
    );
}

#[tokio::test]
async fn a_form_needs_its_sessions_csrf_token_and_a_read_only_dashboard_changes_nothing() {
    let env = Env::start().await;
    env.leave_waiting(1).await;
    let addr = free_local_addr();
    let dashboard = WorkerProcess::dashboard(&env.url(), &addr, Some(TOKEN));
    let form = [("Content-Type", "application/x-www-form-urlencoded")];

    let wrong = post(&addr, "/login", &form, "name=eve&token=guess");
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());

    let (cookie, csrf) = sign_in(&addr, "ann");
    let form_with = |cookie: &str, extra: Option<(&str, &str)>| -> Vec<(String, String)> {
        let mut headers = vec![
            (
                "Content-Type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ),
            ("Cookie".to_owned(), cookie.to_owned()),
        ];
        headers.extend(extra.map(|(n, v)| (n.to_owned(), v.to_owned())));
        headers
    };
    let post_form = |path: &str, extra: Option<(&str, &str)>, body: &str| {
        let owned = form_with(&cookie, extra);
        let headers: Vec<(&str, &str)> = owned
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        post(&addr, path, &headers, body)
    };
    let pause = "/actions/queues/default/pause";
    let forged = post_form(pause, None, "csrf=forged&back=/");
    assert_eq!(forged.status, 403, "{}", forged.body);
    let no_session = post(&addr, pause, &form, &format!("csrf={csrf}&back=/"));
    assert_eq!(no_session.status, 401, "{}", no_session.body);
    let elsewhere = post_form(
        pause,
        Some(("Origin", "http://evil.example")),
        &format!("csrf={csrf}&back=/"),
    );
    assert_eq!(elsewhere.status, 403, "{}", elsewhere.body);
    assert_eq!(
        json_of(&get(&addr, "/api/v1/queues/default"))["paused"],
        false
    );

    let origin = format!("http://{addr}");
    let done = post_form(
        pause,
        Some(("Origin", origin.as_str())),
        &format!("csrf={csrf}&back=/queues/default"),
    );
    assert_eq!(done.status, 303, "{}", done.body);
    // The page it returns to shows the message; its URL names it only by an id.
    let location = done.header("location").expect("a redirect").to_owned();
    assert!(
        location.starts_with("/queues/default?flash=") && !location.contains("paused"),
        "{location}"
    );
    assert!(
        get(&addr, &location).body.contains("Queue default paused."),
        "the message is shown"
    );
    assert_eq!(
        json_of(&get(&addr, "/api/v1/queues/default"))["paused"],
        true
    );
    // A redirect only ever goes back to this dashboard.
    let away = post_form(
        "/actions/queues/default/resume",
        None,
        &format!("csrf={csrf}&back=//evil.example/"),
    );
    assert!(
        away.header("location")
            .is_some_and(|l| l.starts_with("/?flash=")),
        "{:?}",
        away.header("location")
    );
    let log = dashboard.log();
    assert!(
        log.contains("actor=ann") && log.contains("via=\"session\""),
        "{log}"
    );

    // Without a token: read-only, said on every page, and no change goes through.
    let read_only_addr = free_local_addr();
    let _read_only = WorkerProcess::dashboard(&env.url(), &read_only_addr, None);
    let page = get(&read_only_addr, "/");
    assert!(page.body.contains("read-only"), "{}", page.body);
    let bearer = format!("Bearer {TOKEN}");
    let refused = post(
        &read_only_addr,
        "/api/v1/queues/default/pause",
        &[("Authorization", bearer.as_str())],
        "",
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        json_of(&refused)["error"]
            .as_str()
            .is_some_and(|e| e.contains("read-only"))
    );
    let login = post(
        &read_only_addr,
        "/login",
        &form,
        &format!("name=ann&token={TOKEN}"),
    );
    assert_eq!(login.status, 403);
}
