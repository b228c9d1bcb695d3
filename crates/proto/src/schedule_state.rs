//! Schedules in Redis: each definition as JSON under its name in `{global}:schedules`,
//! and each one's state (last and next tick, last job, pauses) in its hash
//! `{global}:schedule:<name>`, with what the state itself says (whether a tick fell in a
//! pause, the last tick fired). The fields and their forms are the wire contract's, so they
//! are spelt here; what a definition means is the scheduler's.

use std::collections::HashMap;

use redis::aio::ConnectionLike;

use crate::Keys;

/// How long a pause is remembered after it ended: longer than any look-back of the
/// reconciliation, so a tick inside it is never reported as missed.
const PAUSES_KEPT_MS: i64 = 7 * 24 * 3_600_000;
/// Pauses remembered at most.
const MAX_PAUSES: usize = 64;

/// What the scheduler has done for a schedule, as its hash holds it: the last tick that
/// fired, the next one due, and the pauses whose ticks are neither fired nor expected. A
/// field never written is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleState {
    /// Ticks up to here have been handled (fired, or skipped by the catch-up policy).
    pub last_tick: Option<i64>,
    /// The next tick as the leader computed it when it last handled one.
    pub next_tick: Option<i64>,
    /// The id of the last job it fired, `<schedule>@<tick ms>`.
    pub last_job: Option<String>,
    /// When that job was fired, in ms.
    pub last_fired_at: Option<i64>,
    /// When the scheduler first saw the schedule: no tick before it is expected.
    pub since: Option<i64>,
    /// When the schedule was paused, while it is.
    pub paused_at: Option<i64>,
    /// Past pauses, oldest first: no tick inside one is fired or expected.
    pub pauses: Vec<Pause>,
}

impl ScheduleState {
    /// Whether `tick` fell while the schedule was paused.
    pub fn in_pause(&self, tick: i64) -> bool {
        self.paused_at.is_some_and(|from| tick >= from)
            || self.pauses.iter().any(|p| (p.from..=p.to).contains(&tick))
    }

    /// The pauses to keep once the current one ends at `now`: the recent ones and it.
    pub fn with_pause_ended(&self, now: i64) -> Vec<Pause> {
        let mut pauses: Vec<Pause> = self
            .pauses
            .iter()
            .copied()
            .filter(|p| p.to >= now - PAUSES_KEPT_MS)
            .collect();
        pauses.push(Pause {
            from: self.paused_at.unwrap_or(now).min(now),
            to: now,
        });
        let over = pauses.len().saturating_sub(MAX_PAUSES);
        pauses.drain(..over);
        pauses
    }

    /// The tick of the last job the schedule fired (its id is `<schedule>@<tick ms>`),
    /// not merely the last one handled: a schedule added a moment ago has fired none.
    pub fn last_fired_tick(&self) -> Option<i64> {
        self.last_job
            .as_deref()
            .and_then(|job| job.rsplit_once('@'))
            .and_then(|(_, tick)| tick.parse().ok())
    }
}

/// One pause, from when it was paused to when it was resumed (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    /// When the schedule was paused, in ms.
    pub from: i64,
    /// When it was resumed, in ms.
    pub to: i64,
}

impl Pause {
    /// The stored form: `from-to` pairs separated by commas.
    pub fn encode(pauses: &[Pause]) -> String {
        pauses
            .iter()
            .map(|p| format!("{}-{}", p.from, p.to))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Reads the stored form; a part that cannot be read is left out.
    pub fn decode(text: &str) -> Vec<Pause> {
        text.split(',')
            .filter_map(|part| {
                let (from, to) = part.split_once('-')?;
                Some(Pause {
                    from: from.parse().ok()?,
                    to: to.parse().ok()?,
                })
            })
            .collect()
    }
}

/// Every stored schedule definition (JSON), by name.
pub async fn schedule_definitions<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
) -> redis::RedisResult<HashMap<String, String>> {
    redis::cmd("HGETALL")
        .arg(keys.schedules())
        .query_async(conn)
        .await
}

/// The stored definition (JSON) of schedule `name`, if there is one.
pub async fn schedule_definition<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    name: &str,
) -> redis::RedisResult<Option<String>> {
    redis::cmd("HGET")
        .arg(keys.schedules())
        .arg(name)
        .query_async(conn)
        .await
}

/// Stores the definition (JSON) of schedule `name`, replacing any.
pub async fn put_schedule_definition<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    name: &str,
    json: &str,
) -> redis::RedisResult<()> {
    let _: i64 = redis::cmd("HSET")
        .arg(keys.schedules())
        .arg(name)
        .arg(json)
        .query_async(conn)
        .await?;
    Ok(())
}

/// Starts schedule `name`'s state afresh at `now_ms`: `since` and `last_tick` both now,
/// so nothing before it is fired or expected.
pub async fn restart_schedule<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    name: &str,
    now_ms: i64,
) -> redis::RedisResult<()> {
    redis::pipe()
        .cmd("DEL")
        .arg(keys.schedule(name))
        .ignore()
        .cmd("HSET")
        .arg(keys.schedule(name))
        .arg("since")
        .arg(now_ms)
        .arg("last_tick")
        .arg(now_ms)
        .ignore()
        .query_async(conn)
        .await
}

/// Removes schedule `name` and its state; false when there was no such schedule.
pub async fn remove_schedule<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    name: &str,
) -> redis::RedisResult<bool> {
    let (removed, _): (i64, i64) = redis::pipe()
        .cmd("HDEL")
        .arg(keys.schedules())
        .arg(name)
        .cmd("DEL")
        .arg(keys.schedule(name))
        .query_async(conn)
        .await?;
    Ok(removed > 0)
}

/// Schedule `name`'s state.
pub async fn read_schedule_state<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    name: &str,
) -> redis::RedisResult<ScheduleState> {
    let hash: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(keys.schedule(name))
        .query_async(conn)
        .await?;
    let number = |field: &str| hash.get(field).and_then(|v| v.parse::<i64>().ok());
    Ok(ScheduleState {
        last_tick: number("last_tick"),
        next_tick: number("next_tick"),
        last_job: hash.get("last_job").cloned(),
        last_fired_at: number("last_fired_at"),
        since: number("since"),
        paused_at: number("paused_at"),
        pauses: hash
            .get("pauses")
            .map(|text| Pause::decode(text))
            .unwrap_or_default(),
    })
}

/// Marks schedule `name` paused since `now_ms`.
pub async fn mark_schedule_paused<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    name: &str,
    now_ms: i64,
) -> redis::RedisResult<()> {
    redis::cmd("HSET")
        .arg(keys.schedule(name))
        .arg("paused_at")
        .arg(now_ms)
        .query_async(conn)
        .await
}

/// Marks schedule `name` resumed: it goes on from `last_tick_ms` (no tick before it is
/// fired), and `pauses` are the pauses remembered.
pub async fn mark_schedule_resumed<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    name: &str,
    last_tick_ms: i64,
    pauses: &[Pause],
) -> redis::RedisResult<()> {
    let key = keys.schedule(name);
    redis::pipe()
        .cmd("HSET")
        .arg(&key)
        .arg("last_tick")
        .arg(last_tick_ms)
        .arg("pauses")
        .arg(Pause::encode(pauses))
        .ignore()
        .cmd("HDEL")
        .arg(&key)
        .arg("paused_at")
        .arg("next_tick")
        .ignore()
        .query_async(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_are_remembered_and_ticks_inside_them_are_not_expected() {
        let state = ScheduleState {
            paused_at: Some(1_000),
            pauses: vec![Pause { from: 100, to: 200 }],
            last_job: Some("tick@150".to_owned()),
            ..ScheduleState::default()
        };
        assert!(state.in_pause(150) && state.in_pause(1_500));
        assert!(!state.in_pause(50) && !state.in_pause(500));
        assert_eq!(state.last_fired_tick(), Some(150));
        let ended = state.with_pause_ended(2_000);
        assert_eq!(
            ended,
            vec![
                Pause { from: 100, to: 200 },
                Pause {
                    from: 1_000,
                    to: 2_000
                }
            ]
        );
        assert_eq!(Pause::decode(&Pause::encode(&ended)), ended);
    }
}
