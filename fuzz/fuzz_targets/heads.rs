//! Fuzz target: the request and response heads (`h2grpc::headers`).
//! Input: header lines `name: value` separated by newlines (what HPACK could carry).
//! Invariants: parsing never panics; every refusal is a gRPC status with a message; a
//! head that parses writes headers that parse back to the same head; response headers
//! that parse are written back and parse to the same encoding; a Trailers-Only head is
//! its status, with no `grpc-accept-encoding` left in its metadata.
#![no_main]

use h2grpc::Code;
use h2grpc::headers::{RequestHead, ResponseHead, response_headers};
use h2grpc::metadata::Metadata;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use libfuzzer_sys::fuzz_target;

fn header_map(data: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii_start());
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    headers
}

fuzz_target!(|data: &[u8]| {
    let headers = header_map(data);
    match RequestHead::parse(&headers) {
        Ok(head) => {
            let mut written = HeaderMap::new();
            head.write(&Metadata::new(), &mut written);
            let again = RequestHead::parse(&written).expect("a written head parses");
            assert_eq!(again.encoding, head.encoding);
            assert_eq!(again.accept, head.accept);
            // Written timeouts round up to the unit used; never below what was parsed.
            match (head.timeout, again.timeout) {
                (Some(a), Some(b)) => assert!(b >= a),
                (a, b) => assert_eq!(a, b),
            }
        }
        Err(status) => {
            assert!(
                matches!(status.code(), Code::Internal | Code::Unimplemented),
                "{status:?}"
            );
            assert!(!status.message().is_empty());
        }
    }
    let status = StatusCode::from_u16(200 + u16::from(data.first().copied().unwrap_or(0) % 4) * 100)
        .unwrap_or(StatusCode::OK);
    let end_stream = data.get(1).is_some_and(|b| b & 1 == 1);
    match ResponseHead::parse(status, headers, end_stream) {
        Ok(ResponseHead::Headers {
            encoding, metadata, ..
        }) => {
            let written = response_headers(encoding, metadata);
            let again = ResponseHead::parse(StatusCode::OK, written.headers().clone(), false)
                .expect("parses");
            assert!(
                matches!(again, ResponseHead::Headers { encoding: e, .. } if e == encoding),
                "{again:?}"
            );
        }
        Ok(ResponseHead::TrailersOnly { status, .. }) => {
            assert!(status.metadata().get("grpc-accept-encoding").is_none());
        }
        Err(status) => assert!(!status.message().is_empty()),
    }
});
