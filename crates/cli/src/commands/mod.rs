//! One module per subcommand.

mod colour;
pub mod dashboard;
pub mod dead;
pub mod enqueue;
pub mod jobs;
pub mod list;
pub mod purge;
pub mod queues;
pub mod reconcile;
pub mod retry;
#[cfg(feature = "harness")]
pub mod roles;
pub mod scheduler;
pub mod schedules;
mod table;
pub mod worker;
pub mod workers;
pub mod workflows;

use std::time::Duration;

use flotilla_proto::{Keys, RedisTarget, SharedConnection, redact_url};

/// How long a one-shot command waits for Redis before it says so.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Connects to the Redis the settings name, for a one-shot command: one attempt with a
/// short timeout, checked with a PING, and on failure one line that names the redacted
/// URL and the cause in plain words.
pub async fn connect_redis(target: &RedisTarget) -> anyhow::Result<SharedConnection> {
    let shown = target.shown();
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(CONNECT_TIMEOUT))
        .set_number_of_retries(0);
    match tokio::time::timeout(CONNECT_TIMEOUT, SharedConnection::connect(target, config)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => anyhow::bail!(
            "cannot connect to Redis at {shown}: {}",
            describe_redis_error(&e)
        ),
        Err(_) => anyhow::bail!(
            "cannot connect to Redis at {shown}: no answer within {}s",
            CONNECT_TIMEOUT.as_secs()
        ),
    }
}

/// A Redis error as one short phrase, without the repetitions the client's own message
/// carries (a NOAUTH reply used to show three times).
pub fn describe_redis_error(err: &redis::RedisError) -> String {
    match err.code() {
        Some("NOAUTH") => {
            return "Redis wants a password; put it in redis_url (redis://:PASSWORD@host)".into();
        }
        Some("WRONGPASS") => return "Redis refused the user name or password in redis_url".into(),
        _ => {}
    }
    if err.kind() == redis::ErrorKind::Parse {
        return "the server did not answer as Redis does; is this a Redis port?".into();
    }
    if err.is_connection_refusal() {
        return "connection refused; is redis-server running there?".into();
    }
    if err.is_timeout() {
        return "no answer in time".into();
    }
    // The client's message can contain the URL it was given; never show it unredacted.
    let text = err.to_string();
    let first_line = text.lines().next().unwrap_or_default();
    redact_url(first_line)
}

/// Asks `question` on the terminal; only `y` or `yes` goes ahead.
pub fn confirm(question: &str) -> anyhow::Result<bool> {
    use std::io::Write;
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// The operations library on the Redis and namespace the settings name, for the ops
/// commands.
pub async fn admin(config_file: Option<&std::path::Path>) -> anyhow::Result<flotilla_admin::Admin> {
    let settings = crate::settings::Settings::load(config_file)?;
    let conn = connect_redis(&settings.redis_target()?).await?;
    let policy = settings.job_policy();
    Ok(flotilla_admin::Admin::new(conn, Keys::new(settings.namespace)).with_policy(policy))
}

/// The wall-clock time `ago` before now, in ms since the Unix epoch, as the `--since`
/// and `--older-than` flags mean it.
pub fn ms_ago(ago: Duration) -> i64 {
    jiff::Timestamp::now().as_millisecond() - i64::try_from(ago.as_millis()).unwrap_or(i64::MAX)
}
