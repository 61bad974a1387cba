//! Fuzz target: the HTTP/1.1 request parser (head scanner, `httparse` head, body decoder
//! for `Content-Length` and chunked bodies), through `h2grpc::__fuzz::http1_request`.
//! The first input byte picks the piece sizes; the rest is the connection's bytes.
//! Invariants: no panic; the input parsed whole and parsed as it would arrive (in small
//! pieces, the handler taking a few body bytes at a time) gives the same head, the same
//! refusal status, the same body and the same end; a head is never over its limit; no
//! step hands out more than it was given; a `Content-Length` body is never longer than
//! its length, and exactly it when complete.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    h2grpc::__fuzz::http1_request(data);
});
