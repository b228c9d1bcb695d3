//! Payload encodings: msgpack (the Rust producer's default) and JSON (what a raw `XADD`
//! from another language usually sends), named by a record's `content_type` field.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

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
    /// Its name in a record's or entry's `content_type` field: `json` or `msgpack`.
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
    /// How `bytes` are encoded.
    pub content_type: ContentType,
    /// The encoded arguments.
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
                let mut de = rmp_serde::Deserializer::from_read_ref(&self.bytes);
                let value = T::deserialize(&mut de).map_err(|e| bad(self.content_type, e))?;
                nothing_after(&mut de)?;
                Ok(value)
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
                // Walked as a value is built (not skipped), so that it meets the same
                // nesting limit (128) as every handler's read of it.
                serde_json::from_str::<JsonShaped>(text)
                    .map(|_| ())
                    .map_err(|e| bad(self.content_type, e))
            }
            // A msgpack string that is not UTF-8 has no JSON form: refuse it here rather
            // than in the `exec` or `http` handler. One value, and nothing after it.
            ContentType::MsgPack => {
                let mut de = rmp_serde::Deserializer::from_read_ref(&self.bytes);
                JsonShaped::deserialize(&mut de).map_err(|e| bad(self.content_type, e))?;
                nothing_after(&mut de)
            }
        }
    }
}

/// Fails unless a msgpack payload's one value took all its bytes: bytes left after it
/// would be dropped without a word (JSON refuses `1 2` the same way).
fn nothing_after<'de, R: AsRef<[u8]> + ?Sized>(
    de: &mut rmp_serde::Deserializer<rmp_serde::decode::ReadRefReader<'de, R>>,
) -> Result<(), ProtoError> {
    match de::IgnoredAny::deserialize(de) {
        Err(rmp_serde::decode::Error::InvalidMarkerRead(e))
            if e.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            Ok(())
        }
        _ => Err(bad(
            ContentType::MsgPack,
            "bytes are left over after the payload's value",
        )),
    }
}

/// A msgpack value walked the way its conversion to JSON walks it, building nothing: the
/// check a worker makes on every job, so it must not allocate per value. It accepts
/// exactly what [`Payload::to_json`] accepts (a test holds the two together): strings that
/// are UTF-8, maps keyed by strings, and no binary or extension values.
struct JsonShaped;

impl<'de> Deserialize<'de> for JsonShaped {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonShapedVisitor)
    }
}

struct JsonShapedVisitor;

impl<'de> Visitor<'de> for JsonShapedVisitor {
    type Value = JsonShaped;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value with a JSON form")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<JsonShaped, E> {
        Ok(JsonShaped)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<JsonShaped, E> {
        Ok(JsonShaped)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<JsonShaped, E> {
        Ok(JsonShaped)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<JsonShaped, E> {
        Ok(JsonShaped)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<JsonShaped, E> {
        Ok(JsonShaped)
    }

    fn visit_none<E: de::Error>(self) -> Result<JsonShaped, E> {
        Ok(JsonShaped)
    }

    fn visit_unit<E: de::Error>(self) -> Result<JsonShaped, E> {
        Ok(JsonShaped)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<JsonShaped, D::Error> {
        JsonShaped::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonShaped, A::Error> {
        while seq.next_element::<JsonShaped>()?.is_some() {}
        Ok(JsonShaped)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonShaped, A::Error> {
        let mut first = true;
        while map.next_key_seed(JsonKey { first })?.is_some() {
            map.next_value::<JsonShaped>()?;
            first = false;
        }
        Ok(JsonShaped)
    }
}

/// A map key with a JSON form: a string. The conversion takes the first key only as a
/// string, and later ones as strings or as binary that is UTF-8; so does this.
#[derive(Clone, Copy)]
struct JsonKey {
    first: bool,
}

impl<'de> DeserializeSeed<'de> for JsonKey {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if self.first {
            deserializer.deserialize_str(self)
        } else {
            deserializer.deserialize_string(self)
        }
    }
}

impl Visitor<'_> for JsonKey {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<(), E> {
        match std::str::from_utf8(bytes) {
            Ok(_) if !self.first => Ok(()),
            _ => Err(E::invalid_type(de::Unexpected::Bytes(bytes), &self)),
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

    /// Bytes that often hold msgpack worth checking: containers, strings that may not be
    /// UTF-8, binary, extensions, floats and integer keys.
    fn msgpack_like() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            Just(0x81u8),
            Just(0x82),
            Just(0x92),
            Just(0xa1),
            Just(0xa2),
            Just(0xc0),
            Just(0xc4),
            Just(0xca),
            Just(0xd4),
            Just(0xd9),
            Just(0x01),
            Just(0x61),
            Just(0xff),
            any::<u8>(),
        ];
        proptest::collection::vec(byte, 0..24)
    }

    proptest! {
        #[test]
        fn the_msgpack_check_accepts_what_converts_to_json(bytes in msgpack_like()) {
            let payload = Payload { content_type: ContentType::MsgPack, bytes };
            prop_assert_eq!(payload.validate(1024).is_ok(), payload.to_json().is_ok());
        }
    }

    #[test]
    fn the_msgpack_check_refuses_what_has_no_json_form() {
        let cases: [(&[u8], bool); 10] = [
            (&[0x81, 0xa1, b'a', 0x01], true),
            // A map keyed by an integer, or by nil.
            (&[0x81, 0x01, 0x02], false),
            (&[0x81, 0xc0, 0x02], false),
            // Binary as a value; an extension value.
            (&[0xc4, 0x01, b'a'], false),
            (&[0xd4, 0x01, 0x02], false),
            // Binary that is UTF-8 as a later key converts; as the first key it does not.
            (&[0x82, 0xa1, b'a', 0x01, 0xc4, 0x01, b'b', 0x02], true),
            (&[0x81, 0xc4, 0x01, b'b', 0x02], false),
            // A NaN float converts (to null); nested arrays and maps.
            (&[0xca, 0x7f, 0xc0, 0x00, 0x00], true),
            (&[0x92, 0x91, 0x80, 0x81, 0xa1, b'k', 0x90], true),
            (&[0x92, 0xa2, 0xff, 0xfe, 0x01], false),
        ];
        for (bytes, converts) in cases {
            let payload = Payload {
                content_type: ContentType::MsgPack,
                bytes: bytes.to_vec(),
            };
            assert_eq!(payload.to_json().is_ok(), converts, "{bytes:02x?} converts");
            assert_eq!(
                payload.validate(1024).is_ok(),
                converts,
                "{bytes:02x?} passes"
            );
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
    fn trailing_bytes_and_deep_nesting_are_refused_by_the_check_every_handler_meets() {
        // A msgpack value with bytes after it: JSON refuses `1 2`, msgpack does too.
        let trailing = Payload {
            content_type: ContentType::MsgPack,
            bytes: vec![0x01, 0x02],
        };
        let err = trailing.validate(100).expect_err("refused").to_string();
        assert!(err.contains("left over"), "{err}");
        assert!(trailing.to_json().is_err());
        // Nested past serde_json's limit: refused here, not when a handler reads it.
        for depth in [129, 10_000] {
            let deep = Payload {
                content_type: ContentType::Json,
                bytes: format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes(),
            };
            assert!(deep.to_json().is_err(), "{depth}");
            assert!(deep.validate(1 << 20).is_err(), "{depth} passed the check");
        }
        let fine = Payload {
            content_type: ContentType::Json,
            bytes: format!("{}{}", "[".repeat(100), "]".repeat(100)).into_bytes(),
        };
        assert!(fine.validate(1 << 20).is_ok() && fine.to_json().is_ok());
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
