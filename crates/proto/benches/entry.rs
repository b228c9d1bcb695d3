//! Micro-benchmarks of the per-job work a worker and a producer do outside Redis: encoding
//! a payload, and reading and checking a stream entry. Run with `cargo bench -p flotilla-proto`.

use std::collections::HashMap;

use flotilla_proto::{ContentType, Payload, StreamEntry};
use serde::{Deserialize, Serialize};

fn main() {
    divan::main();
}

/// A typical small job: a few fields and about 100 bytes of JSON.
#[derive(Serialize, Deserialize)]
struct SendEmail {
    to: String,
    subject: String,
    template: String,
    user_id: u64,
}

fn send_email() -> SendEmail {
    SendEmail {
        to: "someone@example.com".into(),
        subject: "Your order has shipped".into(),
        template: "order-shipped".into(),
        user_id: 1_234_567,
    }
}

/// An entry as a producer in another language writes it: the whole job in its fields.
fn full_entry(payload: &Payload) -> StreamEntry {
    let fields: HashMap<String, Vec<u8>> = [
        ("id", b"5b0c3a5e-1c1e-4c53-9d37-0c3f1f6b2a10".to_vec()),
        ("type", b"send_email".to_vec()),
        ("payload", payload.bytes.clone()),
        (
            "content_type",
            payload.content_type.as_str().as_bytes().to_vec(),
        ),
        ("max_attempts", b"5".to_vec()),
        ("timeout", b"30s".to_vec()),
        ("backoff", b"exponential:1000:600000".to_vec()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    StreamEntry {
        entry_id: "1700000000000-0".into(),
        fields,
    }
}

#[divan::bench(args = [ContentType::Json, ContentType::MsgPack])]
fn encode_payload(content_type: ContentType) -> Payload {
    Payload::encode(divan::black_box(&send_email()), content_type).expect("encodes")
}

#[divan::bench(args = [ContentType::Json, ContentType::MsgPack])]
fn decode_entry(bencher: divan::Bencher, content_type: ContentType) {
    let payload = Payload::encode(&send_email(), content_type).expect("encodes");
    let entry = full_entry(&payload);
    bencher.bench(|| {
        divan::black_box(&entry)
            .decode(512 * 1024)
            .expect("decodes")
    });
}

#[divan::bench(args = [ContentType::Json, ContentType::MsgPack])]
fn decode_typed_arguments(bencher: divan::Bencher, content_type: ContentType) {
    let payload = Payload::encode(&send_email(), content_type).expect("encodes");
    bencher.bench(|| {
        divan::black_box(&payload)
            .decode::<SendEmail>()
            .expect("decodes")
    });
}
