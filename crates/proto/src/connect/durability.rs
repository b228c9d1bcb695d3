//! The Redis settings that decide what a crash or memory pressure can lose, read once at
//! start and turned into warnings: jobs live only in Redis, so a server that may drop
//! them should be said out loud, not found out after a restart.

use std::collections::BTreeSet;
use std::sync::Mutex;

use redis::aio::ConnectionLike;

/// One setting that can lose jobs, with what it loses and what to set instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurabilityWarning {
    /// The Redis setting, e.g. `appendonly`.
    pub setting: &'static str,
    /// Its value now.
    pub value: String,
    /// What it can lose and what to set.
    pub advice: &'static str,
}

impl std::fmt::Display for DurabilityWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Redis {} is {:?}: {}",
            self.setting, self.value, self.advice
        )
    }
}

const APPENDONLY: &str = "a restart or crash of Redis loses every job written since the last \
    snapshot (or all of them without one); set appendonly yes with appendfsync everysec";
const EVICTION: &str = "under memory pressure Redis deletes keys of its choosing, which loses \
    jobs and their records without a trace; set maxmemory-policy noeviction, so that a full \
    Redis refuses new jobs instead";

/// Reads the durability settings and returns one warning for each unsafe one. Only INFO
/// is asked: `appendfsync` would need CONFIG GET, which also reveals passwords and which
/// the documented ACL rules therefore deny.
pub async fn durability_warnings<C: ConnectionLike>(
    conn: &mut C,
) -> redis::RedisResult<Vec<DurabilityWarning>> {
    let mut warnings = Vec::new();
    let persistence: String = redis::cmd("INFO")
        .arg("persistence")
        .query_async(conn)
        .await?;
    let aof = info_field(&persistence, "aof_enabled").unwrap_or("0");
    if aof != "1" {
        warnings.push(DurabilityWarning {
            setting: "appendonly",
            value: "no".to_owned(),
            advice: APPENDONLY,
        });
    }
    let memory: String = redis::cmd("INFO").arg("memory").query_async(conn).await?;
    if let Some(policy) = info_field(&memory, "maxmemory_policy")
        && policy != "noeviction"
    {
        warnings.push(DurabilityWarning {
            setting: "maxmemory-policy",
            value: policy.to_owned(),
            advice: EVICTION,
        });
    }
    Ok(warnings)
}

/// Logs each warning, waiting for Redis for up to a minute if it is not up yet; a
/// failure to read is only worth a debug line, since the process's own calls report an
/// unreachable Redis. A process that runs several parts on one Redis (the demo) warns
/// once.
pub async fn warn_if_unsafe<C: ConnectionLike>(conn: &mut C, target: &str) {
    static CHECKED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let first = CHECKED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert(target.to_owned());
    if !first {
        return;
    }
    for _ in 0..60 {
        match durability_warnings(conn).await {
            Ok(warnings) => {
                for warning in warnings {
                    tracing::warn!(redis = %target, setting = warning.setting, "{warning}");
                }
                return;
            }
            Err(e) if e.code().is_some() => {
                tracing::debug!(redis = %target, "could not read Redis's durability settings: {e}");
                return;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
        }
    }
}

/// The value of `field:` in an INFO reply.
fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        line.strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

#[cfg(test)]
mod tests {
    use super::info_field;

    #[test]
    fn info_fields_are_found_by_their_whole_name() {
        let info = "# Persistence\r\naof_enabled_x:7\r\naof_enabled:1\r\n";
        assert_eq!(info_field(info, "aof_enabled"), Some("1"));
        assert_eq!(info_field(info, "maxmemory_policy"), None);
    }
}
