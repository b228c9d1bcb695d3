//! Payload encodings: msgpack (the Rust producer's default) and JSON (what a raw `XADD`
//! from another language usually sends), named by a record's `content_type` field.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ProtoError;

/// How a payload's bytes are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContentType {
    /// UTF-8 JSON; the default for entries that do not say.
    #[default]
    Json,
    /// MessagePack, maps with field names (rmp-serde's named form).
    MsgPack,
}

impl ContentType {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Json => "json",
            ContentType::MsgPack => "msgpack",
        }
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ContentType {
    type Err = ProtoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" | "json" | "application/json" => Ok(ContentType::Json),
            "msgpack" | "application/msgpack" | "application/x-msgpack" => Ok(ContentType::MsgPack),
            other => Err(ProtoError::UnknownContentType(other.to_owned())),
        }
    }
}

/// A job's arguments as stored: bytes plus the encoding that reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub content_type: ContentType,
    pub bytes: Vec<u8>,
}

impl Payload {
    /// Encodes `value` in the given encoding.
    pub fn encode<T: Serialize + ?Sized>(
        value: &T,
        content_type: ContentType,
    ) -> Result<Self, ProtoError> {
        let bytes = match content_type {
            ContentType::Json => serde_json::to_vec(value).map_err(|e| bad(content_type, e))?,
            ContentType::MsgPack => {
                rmp_serde::to_vec_named(value).map_err(|e| bad(content_type, e))?
            }
        };
        Ok(Self {
            content_type,
            bytes,
        })
    }

    /// Decodes into a typed value.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ProtoError> {
        match self.content_type {
            ContentType::Json if self.bytes.is_empty() => {
                serde_json::from_slice(b"null").map_err(|e| bad(self.content_type, e))
            }
            ContentType::Json => {
                serde_json::from_slice(&self.bytes).map_err(|e| bad(self.content_type, e))
            }
            ContentType::MsgPack => {
                rmp_serde::from_slice(&self.bytes).map_err(|e| bad(self.content_type, e))
            }
        }
    }

    /// The payload as a JSON value, whatever its encoding (for `exec`, `http`, display).
    pub fn to_json(&self) -> Result<serde_json::Value, ProtoError> {
        self.decode()
    }

    /// The one payload check, made where a worker first meets a payload: within `limit`
    /// bytes, and readable as JSON by every handler (Rust, `exec`, `http`). JSON must be
    /// UTF-8 throughout, strings included; msgpack strings must be UTF-8 too.
    pub fn validate(&self, limit: usize) -> Result<(), ProtoError> {
        if self.bytes.len() > limit {
            return Err(ProtoError::PayloadTooLarge {
                size: self.bytes.len(),
                limit,
            });
        }
        match self.content_type {
            // Checking the whole text first catches bad UTF-8 inside strings, which a
            // parse that skips values does not look at.
            ContentType::Json => {
                let text =
                    std::str::from_utf8(&self.bytes).map_err(|e| bad(self.content_type, e))?;
                if text.is_empty() {
                    return Ok(());
                }
                serde_json::from_str::<serde::de::IgnoredAny>(text)
                    .map(|_| ())
                    .map_err(|e| bad(self.content_type, e))
            }
            // A msgpack string that is not UTF-8 has no JSON form: refuse it here rather
            // than in the `exec` or `http` handler.
            ContentType::MsgPack => self.to_json().map(|_| ()),
        }
    }
}

fn bad(content_type: ContentType, err: impl fmt::Display) -> ProtoError {
    ProtoError::BadPayload {
        content_type: content_type.as_str(),
        reason: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Email {
        to: String,
        retries: u32,
        tags: Vec<String>,
    }

    proptest! {
        #[test]
        fn typed_values_round_trip_in_both_encodings(
            to in ".*", retries in any::<u32>(), tags in proptest::collection::vec(".*", 0..4)
        ) {
            let email = Email { to, retries, tags };
            for ct in [ContentType::Json, ContentType::MsgPack] {
                let payload = Payload::encode(&email, ct).expect("encodes");
                prop_assert_eq!(payload.decode::<Email>().expect("decodes"), email.clone());
                let json = payload.to_json().expect("converts");
                prop_assert_eq!(&json["to"], &serde_json::Value::from(email.to.clone()));
            }
        }
    }

    #[test]
    fn validate_names_the_problem() {
        let junk = Payload {
            content_type: ContentType::MsgPack,
            bytes: vec![0xc1],
        };
        assert!(
            junk.validate(100)
                .expect_err("refused")
                .to_string()
                .contains("msgpack")
        );
        let junk = Payload {
            content_type: ContentType::Json,
            bytes: b"{nope".to_vec(),
        };
        assert!(
            junk.validate(100)
                .expect_err("refused")
                .to_string()
                .contains("json")
        );
        let big = Payload {
            content_type: ContentType::Json,
            bytes: b"\"aaaaaaaa\"".to_vec(),
        };
        assert!(matches!(
            big.validate(4),
            Err(ProtoError::PayloadTooLarge { size: 10, limit: 4 })
        ));
    }

    #[test]
    fn a_payload_valid_here_converts_for_every_handler() {
        // Invalid UTF-8 inside a string: once accepted for `noop` and refused later by
        // `exec`; now refused by the one check.
        let json = Payload {
            content_type: ContentType::Json,
            bytes: b"{\"name\": \"\xff\xfe\"}".to_vec(),
        };
        assert!(json.validate(100).is_err());
        // msgpack fixstr of two bytes that are not UTF-8.
        let msgpack = Payload {
            content_type: ContentType::MsgPack,
            bytes: vec![0xa2, 0xff, 0xfe],
        };
        assert!(msgpack.validate(100).is_err());
        for ok in [&b"{\"name\": \"\xc3\xa9\"}"[..], b"", b"[1, 2]"] {
            let payload = Payload {
                content_type: ContentType::Json,
                bytes: ok.to_vec(),
            };
            assert!(payload.validate(100).is_ok());
            assert!(payload.to_json().is_ok());
        }
    }

    #[test]
    fn content_type_names() {
        assert_eq!("".parse::<ContentType>().ok(), Some(ContentType::Json));
        assert_eq!(
            "msgpack".parse::<ContentType>().ok(),
            Some(ContentType::MsgPack)
        );
        assert!("xml".parse::<ContentType>().is_err());
    }
}
