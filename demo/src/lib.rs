//! The demo service of gRPC's official Python example "data_transmission"
//! (`demo.GRPCDemo`, `proto/demo.proto`): its generated messages, server trait and client,
//! used by the `demo-server` and `demo-client` binaries and the soak example.

/// Code generated from `proto/demo.proto`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/demo.rs"));
}

pub mod auth;
