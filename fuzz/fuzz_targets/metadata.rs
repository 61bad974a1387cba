//! Fuzz target: metadata keys and values, and `-bin` base64.
//! Invariants: `insert`/`insert_bin` accept exactly the valid, unreserved keys (and, for
//! text, printable ASCII values), and what they accept reads back unchanged; any bytes
//! encode to unpadded base64 that decodes back, padded or not; decoding arbitrary bytes
//! never panics, and what it accepts re-encodes and decodes to the same bytes.
#![no_main]

use h2grpc::Metadata;
use h2grpc::metadata::{decode_bin, encode_bin, is_reserved};
use libfuzzer_sys::fuzz_target;

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.bytes().all(|b| {
            b.is_ascii_digit() || b.is_ascii_lowercase() || matches!(b, b'_' | b'.' | b'-')
        })
        && !is_reserved(key)
}

fuzz_target!(|input: &[u8]| {
    let Some((&split, rest)) = input.split_first() else {
        return;
    };
    let split = usize::from(split).min(rest.len());
    let (key, value) = rest.split_at(split);
    let key = String::from_utf8_lossy(key);
    let text = String::from_utf8_lossy(value);

    // Text entries.
    let mut md = Metadata::new();
    let accepted = md.insert(&key, &text).is_ok();
    let should = valid_key(&key)
        && !key.ends_with("-bin")
        && text.bytes().all(|b| (0x20..=0x7e).contains(&b));
    assert_eq!(accepted, should, "insert({key:?}, {text:?})");
    if accepted {
        assert_eq!(md.get(&key), Some(&*text));
        assert_eq!(md.iter().count(), 1);
    }

    // Binary entries.
    let mut md = Metadata::new();
    let accepted = md.insert_bin(&key, value).is_ok();
    assert_eq!(
        accepted,
        valid_key(&key) && key.ends_with("-bin"),
        "insert_bin({key:?})"
    );
    if accepted {
        assert_eq!(md.get_bin(&key), Some(Ok(value.to_vec())));
    }

    // base64 both ways: unpadded as sent, padded as some peers send.
    let wire = encode_bin(value);
    assert!(!wire.as_bytes().contains(&b'='), "sent unpadded");
    assert_eq!(decode_bin(wire.as_bytes()).as_deref(), Ok(value));
    let mut padded = wire.as_bytes().to_vec();
    while !padded.len().is_multiple_of(4) {
        padded.push(b'=');
    }
    assert_eq!(decode_bin(&padded).as_deref(), Ok(value));

    // Arbitrary bytes as a received value.
    if let Ok(bytes) = decode_bin(input) {
        assert_eq!(decode_bin(encode_bin(&bytes).as_bytes()), Ok(bytes));
    }
    // As a received header, split on commas.
    if let Ok(header) = h2grpc::http::HeaderValue::from_bytes(input) {
        let mut headers = h2grpc::http::HeaderMap::new();
        headers.insert("x-fuzz-bin", header);
        let md = Metadata::from_headers(headers);
        let _ = md.get_all_bin("x-fuzz-bin");
        let _ = md.get_bin("x-fuzz-bin");
    }
});
