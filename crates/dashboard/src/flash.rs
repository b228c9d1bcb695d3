//! Messages a change leaves for the page it returns to. The page's URL carries only a
//! random id; the text stays here, so a link made elsewhere cannot put words of its own
//! in the dashboard's banner ("your token expired, paste it at …").

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a message can be shown (a live page reloads it until then).
const KEPT: Duration = Duration::from_secs(120);
/// Messages held at most; the oldest go first.
const MAX_KEPT: usize = 1_000;

/// The messages waiting to be shown, by id.
#[derive(Debug, Default)]
pub struct Flashes {
    messages: Mutex<HashMap<String, (String, Instant)>>,
}

impl Flashes {
    /// Keeps `text` and returns the id a page's URL names it by.
    pub fn put(&self, text: &str) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let now = Instant::now();
        let mut messages = self.lock();
        messages.retain(|_, (_, at)| now.duration_since(*at) < KEPT);
        if messages.len() >= MAX_KEPT
            && let Some(oldest) = messages
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(id, _)| id.clone())
        {
            messages.remove(&oldest);
        }
        messages.insert(id.clone(), (text.to_owned(), now));
        id
    }

    /// The message `id` names, while it is kept; nothing for an id it never gave.
    pub fn get(&self, id: &str) -> Option<String> {
        self.lock()
            .get(id)
            .filter(|(_, at)| at.elapsed() < KEPT)
            .map(|(text, _)| text.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        // A panic while holding the lock leaves the map whole: go on with it.
        self.messages.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::Flashes;

    #[test]
    fn only_a_message_the_dashboard_left_is_shown() {
        let flashes = Flashes::default();
        let id = flashes.put("Queue default paused.");
        assert_eq!(flashes.get(&id).as_deref(), Some("Queue default paused."));
        assert_eq!(
            flashes.get("Your token expired, paste it at evil.example"),
            None
        );
    }
}
