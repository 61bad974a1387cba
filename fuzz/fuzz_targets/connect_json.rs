//! Fuzz target: Connect's JSON, through `h2grpc::__fuzz::connect_json`. The first input
//! byte picks an HTTP status and a message type; the rest is read three ways.
//! - `parse_error_json`: any body reads as an error (never OK) that writes back, with
//!   `debug` for known detail types, to a body reading the same code, message and details.
//! - `parse_end_stream`: any message is read or refused as INTERNAL; what is read writes
//!   back to the same status and metadata (less reserved keys).
//! - `MessageJson::to_proto` for a type of the library's own descriptors (health,
//!   reflection) or a well-known type: a refusal writes nothing; what is accepted goes
//!   through `to_json` and `to_proto` again to the same protobuf (up to map order).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    h2grpc::__fuzz::connect_json(data);
});
