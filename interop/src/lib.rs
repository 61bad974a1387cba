//! The standard gRPC interop suite (grpc/grpc `doc/interop-test-descriptions.md`) on
//! h2grpc: the `grpc.testing` messages and services, and the case list shared by
//! `interop-client` and the matrix test (`tests/interop.rs`); and the ConnectRPC conformance
//! suite's `connectrpc.conformance.v1` for `conformance-server` (`tests/conformance.rs`).

/// Code generated from `proto/grpc/testing/*.proto`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/grpc.testing.rs"));
}

/// Code generated from `proto/connectrpc/conformance/v1/*.proto` (the ConnectRPC conformance
/// suite's service and server protocol, Apache-2.0), for `conformance-server`.
#[allow(missing_docs, clippy::all)]
pub mod conformance {
    include!(concat!(env!("OUT_DIR"), "/connectrpc.conformance.v1.rs"));
}

/// The standard cases, in the order `--test_case all` runs them.
pub const CASES: [&str; 18] = [
    "empty_unary",
    "large_unary",
    "client_compressed_unary",
    "server_compressed_unary",
    "client_streaming",
    "client_compressed_streaming",
    "server_streaming",
    "server_compressed_streaming",
    "ping_pong",
    "empty_stream",
    "cancel_after_begin",
    "cancel_after_first_response",
    "timeout_on_sleeping_server",
    "custom_metadata",
    "status_code_and_message",
    "special_status_message",
    "unimplemented_method",
    "unimplemented_service",
];

/// Experimental cases of the descriptions that our client also runs (not part of `all`).
pub const EXTRA_CASES: [&str; 2] = ["rpc_soak", "channel_soak"];
