//! `flotilla demo`, the README's first command: the whole fleet on a private Redis, every
//! job it enqueues followed to its end.

use std::process::Command;

use flotilla_tests::flotilla_bin;

#[test]
fn the_demo_follows_every_job_it_enqueues_to_its_end() {
    let output = Command::new(flotilla_bin())
        .args(["demo", "--dashboard", "127.0.0.1:0", "--timeout", "30s"])
        .env_remove("FLOTILLA_REDIS_URL")
        .env_remove("FLOTILLA_CONFIG")
        .output()
        .expect("flotilla demo runs");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the demo failed:\n{printed}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let enqueued: usize = printed
        .lines()
        .find_map(|line| line.strip_prefix("Enqueued "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("the demo says how many jobs it enqueued");
    let outcomes: Vec<&str> = printed
        .split("What happened:")
        .nth(1)
        .expect("the demo says what happened")
        .lines()
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .collect();
    assert_eq!(
        outcomes.len(),
        enqueued,
        "every enqueued job is accounted for:\n{printed}"
    );
    for line in &outcomes {
        assert!(
            line.contains(" completed ") || line.contains(" dead "),
            "each job ended: {line}"
        );
    }
    assert!(printed.contains("demo finished"), "{printed}");
}
