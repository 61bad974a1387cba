//! h2grpc: gRPC over HTTP/2, written directly on the [`h2`] crate.
//!
//! No tonic, hyper or tower: a framing layer, a server with its own dispatcher, a
//! client, and a code generator for prost, each small enough to read in one sitting.
//!
//! # Getting started
//!
//! Generate code for your `.proto` files from `build.rs` with
//! `codegen::compile_protos` (feature `codegen`), implement the generated server
//! trait, and serve it with [`Server`]; call it with the generated client over a
//! [`Channel`]. The `demo-server` and `demo-client` binaries are a complete example.
//!
//! # Layout
//!
//! - [`framing`]: Length-Prefixed-Messages: `encode`, the incremental `Decoder`, limits. Pure.
//! - [`compression`]: gzip and deflate, `grpc-encoding` negotiation, decompression held to the limit.
//! - [`status`]: `Code`, `Status`, `grpc-message` percent-encoding, every mapping into a status.
//! - [`metadata`]: `Metadata`, reserved names, `-bin` base64, `grpc-timeout`.
//! - `request`: [`Request`] and [`Response`], a message with its metadata.
//! - `stream`: [`Streaming`] (inbound messages, flow-control release) and the outbound
//!   sender that waits for the peer's window.
//! - [`server`]: [`Server`] (listeners, connection tasks, shutdown), the router, the four call kinds.
//! - [`client`]: [`Channel`] (connect, reconnect) and the four call kinds.
//! - `codegen`: the prost-build `ServiceGenerator` (feature `codegen`; `build.rs` uses it too).
//!
//! # Flow control
//!
//! Inbound, a [`Streaming`] releases bytes to h2 as it takes them off the stream and
//! holds at most one partial message, checked against the receive limit before it is
//! buffered. Outbound, streaming messages are handed to h2 only as the peer's window
//! admits, so a fast sender waits for a slow reader instead of buffering.

#![deny(missing_docs)]

pub mod client;
#[cfg(feature = "codegen")]
pub mod codegen;
pub mod compression;
mod error;
pub mod framing;
pub mod metadata;
mod request;
pub mod server;
pub mod status;
mod stream;

pub use client::Channel;
pub use compression::{CompressionSwitch, Encoding};
pub use error::Error;
pub use metadata::Metadata;
pub use request::{IntoStreamingRequest, Request, Response};
pub use server::Server;
pub use status::{Code, Status};
pub use stream::{ResponseStream, Streaming};

/// Re-exported for generated code.
pub use futures_core::Stream;
/// Re-exported for generated code.
pub use http;
/// Re-exported for generated code: its messages derive `h2grpc::prost::Message`, so a crate
/// using them needs no `prost` dependency of its own.
pub use prost;
