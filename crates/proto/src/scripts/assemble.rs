//! Putting a script's source together: the shared helpers of `common.lua` that the script
//! uses (directly, or through another helper), in their order there, then the script's own
//! file. Each helper is a local that Lua defines anew on every call of a script that
//! carries it, and the whole of `common.lua` cost about ten microseconds a call on Redis
//! 7.0: a script carries only what it calls.

use std::collections::{HashMap, HashSet};

/// One top-level definition of `common.lua`: a constant or a function, with the comment
/// lines right above it.
#[derive(Debug)]
struct Helper<'a> {
    /// The name it defines; `None` for a statement that is always kept.
    name: Option<&'a str>,
    text: String,
    /// Names it mentions outside comments.
    words: HashSet<String>,
}

/// The source of the script `body`: the helpers of `common` it needs, a blank line, then
/// `body`.
pub(crate) fn assemble(common: &str, body: &str) -> String {
    let helpers = helpers(common);
    let by_name: HashMap<&str, usize> = helpers
        .iter()
        .enumerate()
        .filter_map(|(at, h)| Some((h.name?, at)))
        .collect();
    let mut needed = vec![false; helpers.len()];
    let mut to_visit: Vec<usize> = words(body)
        .into_iter()
        .filter_map(|w| by_name.get(w).copied())
        .collect();
    for (at, helper) in helpers.iter().enumerate() {
        if helper.name.is_none() {
            to_visit.push(at);
        }
    }
    while let Some(at) = to_visit.pop() {
        if std::mem::replace(&mut needed[at], true) {
            continue;
        }
        for word in &helpers[at].words {
            if let Some(&dep) = by_name.get(word.as_str())
                && !needed[dep]
            {
                to_visit.push(dep);
            }
        }
    }
    let mut source: String = helpers
        .iter()
        .zip(needed)
        .filter(|(_, needed)| *needed)
        .map(|(helper, _)| helper.text.as_str())
        .collect::<Vec<_>>()
        .join("\n\n");
    if !source.is_empty() {
        source.push_str("\n\n");
    }
    source.push_str(body);
    source
}

/// The top-level definitions of `common`, in order. A comment block followed by a blank
/// line (the file's heading) belongs to none.
fn helpers(common: &str) -> Vec<Helper<'_>> {
    let mut helpers = Vec::new();
    let mut comments: Vec<&str> = Vec::new();
    let mut lines = common.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("--") {
            comments.push(line);
            continue;
        }
        if line.trim().is_empty() {
            comments.clear();
            continue;
        }
        let mut text: Vec<&str> = std::mem::take(&mut comments);
        let start = text.len();
        text.push(line);
        if line.starts_with("local function ") {
            for next in lines.by_ref() {
                text.push(next);
                if next == "end" {
                    break;
                }
            }
        } else {
            // A statement's continuation lines are indented.
            while let Some(next) = lines.next_if(|l| l.starts_with(' ') || l.starts_with('\t')) {
                text.push(next);
            }
        }
        let code: String = text[start..]
            .iter()
            .map(|l| l.split_once("--").map_or(*l, |(code, _)| code))
            .collect::<Vec<_>>()
            .join("\n");
        let name = defined_name(line);
        let mentioned = words(&code)
            .into_iter()
            .filter(|&word| Some(word) != name)
            .map(str::to_owned)
            .collect();
        helpers.push(Helper {
            name,
            text: text.join("\n"),
            words: mentioned,
        });
    }
    helpers
}

/// The name a top-level line defines (`local function NAME(` or `local NAME =`).
fn defined_name(line: &str) -> Option<&str> {
    let rest = line
        .strip_prefix("local function ")
        .or_else(|| line.strip_prefix("local "))?;
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// The identifiers in `code`.
fn words(code: &str) -> HashSet<&str> {
    code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMON: &str = "-- Heading of the file.\n\n\
        -- A limit.\nlocal LIMIT = 10\n\n\
        -- Doubles.\nlocal function double(x)\n  return x * 2\nend\n\n\
        -- Quadruples, through `double`.\nlocal function quad(x)\n  return double(double(x))\nend\n\n\
        -- Unused: mentions quad only in a comment.\nlocal function unused()\n  return LIMIT\nend\n";

    #[test]
    fn a_script_carries_the_helpers_it_calls_and_theirs_in_order() {
        let source = assemble(COMMON, "return quad(1)");
        assert_eq!(
            source,
            "-- Doubles.\nlocal function double(x)\n  return x * 2\nend\n\n\
             -- Quadruples, through `double`.\nlocal function quad(x)\n  return double(double(x))\nend\n\n\
             return quad(1)"
        );
        assert_eq!(assemble(COMMON, "return 1"), "return 1");
        assert!(assemble(COMMON, "return unused()").contains("local LIMIT = 10"));
    }

    #[test]
    fn every_script_parses_its_helpers_from_the_real_common_file() {
        let common = include_str!("lua/common.lua");
        let names: Vec<&str> = helpers(common).iter().filter_map(|h| h.name).collect();
        assert!(
            names.contains(&"now_ms") && names.contains(&"enqueue_job"),
            "{names:?}"
        );
        assert!(
            helpers(common).iter().all(|h| h.name.is_some()),
            "every top-level statement of common.lua defines a name"
        );
        let complete = assemble(common, include_str!("lua/complete.lua"));
        assert!(complete.contains("local function owned_in"));
        // A completion may let waiting children go (enqueued as the enqueue script
        // would), but never retries or buries.
        assert!(complete.contains("local function settle_dependents"));
        assert!(!complete.contains("local function retry_entry"));
        assert!(!complete.contains("local function bury"));
    }
}
