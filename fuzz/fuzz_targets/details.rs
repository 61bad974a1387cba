//! Fuzz target: rich error details, `grpc-status-details-bin` as a client receives it.
//! The first byte picks the `grpc-status` code (low 5 bits) and whether the rest is the
//! header value as it came (high bit set) or the bytes of a `google.rpc.Status`, sent in
//! base64 as a peer would.
//! Invariants: reading never panics; the status keeps the header's code or, when the
//! details disagree with it or are no base64, is INTERNAL; details kept are a
//! `google.rpc.Status` with the status' own code and message, one typed detail per `Any`,
//! each of which survives `to_any`/`from_any`; and the status sent on again (our
//! trailers) reads back the same code, message and details.
#![no_main]

use h2grpc::Code;
use h2grpc::Status;
use h2grpc::http::{HeaderMap, HeaderValue};
use h2grpc::metadata::encode_bin;
use h2grpc::status::details::ErrorDetail;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&first, rest)) = input.split_first() else {
        return;
    };
    let code = Code::from_i32(i32::from(first & 0x1f));
    let value = if first & 0x80 != 0 {
        match HeaderValue::from_bytes(rest) {
            Ok(value) => value,
            Err(_) => return,
        }
    } else {
        encode_bin(rest)
    };
    let mut headers = HeaderMap::new();
    headers.insert("grpc-status", code.header_value());
    headers.insert(
        "grpc-message",
        HeaderValue::from_static("from%20the%20header"),
    );
    headers.insert("grpc-status-details-bin", value);
    let status = Status::from_headers(headers).expect("grpc-status is present");

    assert!(
        status.code() == code || status.code() == Code::Internal,
        "{code:?} became {:?}",
        status.code()
    );
    let details = status.details();
    match status.rpc_status() {
        Some(rpc) => {
            assert_eq!(rpc.code, status.code().as_i32());
            assert_eq!(rpc.message, status.message());
            assert_eq!(rpc.details.len(), details.len());
        }
        None => {
            assert!(details.is_empty());
            assert!(
                status.details_bytes().is_empty(),
                "undecodable details kept"
            );
            // An empty value is a `google.rpc.Status` with code 0 and no message: with
            // `grpc-status: 0` it gives its empty message (grpc-go's rule); otherwise it
            // disagrees, INTERNAL.
            if status.message() != "from the header" {
                assert!(
                    status.code() == Code::Internal
                        || (code == Code::Ok && status.message().is_empty()),
                    "{status:?}"
                );
            }
        }
    }
    for detail in &details {
        assert_eq!(&ErrorDetail::from_any(detail.to_any()), detail);
    }

    // Sent on as our trailers, the status reads back the same.
    let mut trailers = HeaderMap::new();
    status.write_headers(&mut trailers);
    let again = Status::from_headers(trailers).expect("grpc-status sent");
    assert_eq!(again.code(), status.code());
    assert_eq!(again.message(), status.message());
    assert_eq!(again.details(), details);
});
