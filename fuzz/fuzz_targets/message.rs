//! Fuzz target: `grpc-message` percent-encoding.
//! Invariants: decoding never panics on any bytes; any UTF-8 text encodes to printable
//! ASCII (a valid header value, `%` escaped) that decodes back to the same text.
#![no_main]

use h2grpc::status::{decode_message, encode_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    // Any bytes, as a received header value: passes through, never fails.
    let decoded = decode_message(input);
    if input
        .iter()
        .all(|&b| (0x20..=0x7e).contains(&b) && b != b'%')
    {
        assert_eq!(decoded.as_bytes(), input, "nothing to decode: unchanged");
    }

    // Any UTF-8 text, as a status message to send.
    for text in [String::from_utf8_lossy(input).into_owned(), decoded] {
        let encoded = encode_message(&text);
        assert!(
            encoded.bytes().all(|b| (0x20..=0x7e).contains(&b)),
            "encoded {encoded:?} is not printable ASCII"
        );
        assert!(h2grpc::http::HeaderValue::from_str(&encoded).is_ok());
        assert_eq!(decode_message(encoded.as_bytes()), text, "round trip");
    }
});
