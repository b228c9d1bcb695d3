//! Reading script replies: words, numbers and arrays of them.

use redis::Value;

/// A reply element as text (bulk or simple string, or a number).
pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Okay => Some("OK".to_owned()),
        _ => None,
    }
}

/// A reply element as raw bytes.
pub(crate) fn bytes(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

/// A reply element as an integer (an integer reply, or digits).
pub(crate) fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(i) => Some(*i),
        other => text(other).and_then(|t| t.parse().ok()),
    }
}

/// The elements of an array reply.
pub(crate) fn items(value: Value) -> Option<Vec<Value>> {
    match value {
        Value::Array(items) => Some(items),
        _ => None,
    }
}

/// An array reply of words.
pub(crate) fn words(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::Array(items) => items.iter().map(text).collect(),
        other => text(other).map(|w| vec![w]),
    }
}

/// A `1` / `0` reply as a flag.
pub(crate) fn flag(script: &'static str, value: &Value) -> Result<bool, super::ScriptError> {
    match int(value) {
        Some(1) => Ok(true),
        Some(0) => Ok(false),
        _ => Err(super::ScriptError::reply(script, value)),
    }
}
