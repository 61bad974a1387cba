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
//! From the wire up:
//!
//! - [`framing`]: Length-Prefixed-Messages: `encode`, the incremental `Decoder` (one step
//!   checks the limit, decompresses and decodes protobuf), limits. Pure.
//! - [`headers`]: every gRPC header name; `RequestHead` and `ResponseHead` with `parse` and
//!   `write`; trailers and Trailers-Only responses. Pure.
//! - [`status`]: `Code`, `Status`, `grpc-message` percent-encoding, every mapping into a status.
//! - [`metadata`]: `Metadata`, reserved names, `-bin` base64, `grpc-timeout`.
//! - [`compression`]: gzip and deflate, decompression held to the limit, and all of the
//!   encoding negotiation.
//! - `deadline`: `Deadline`, the timer of a call and the rule that a cancellation after
//!   the deadline is `DEADLINE_EXCEEDED`.
//! - `stream`: the two message pipelines of an h2 stream: [`Streaming`] (inbound: h2 bytes
//!   into the decoder, flow-control release) and `Sender` (outbound: encode, compress,
//!   batch into DATA frames, wait for the peer's window, watch reset and deadline).
//! - `request`: [`Request`] and [`Response`], a message with its metadata.
//! - [`server`]: [`Server`] (listeners, connection tasks, shutdown), the router, and the
//!   call (a request side and a response side, and the `Responder` that alone writes a
//!   response: headers lazily, then trailers or a Trailers-Only answer).
//! - [`client`]: [`Channel`]: targets and resolvers, a subchannel per address with
//!   connectivity states and backoff, `pick_first` / `round_robin`, the service config, retries
//!   and hedging (A6), interceptors, and the four call kinds.
//! - [`tls`]: [`ServerTls`], [`ClientTls`] (rustls with `ring`, ALPN `h2`) and [`Peer`].
//! - [`keepalive`]: PINGs after idle time, on both sides; a connection whose peer stops
//!   answering is closed.
//! - `resolve`: addresses: `host:port`, `unix:path`, `unix-abstract:name`.
//! - `codegen`: the prost-build `ServiceGenerator` (feature `codegen`; `build.rs` uses it too).
//!
//! The demo service and binaries are the `h2grpc-demo` crate (`demo/`), the interop suite
//! the `h2grpc-interop` crate (`interop/`): a user of this crate compiles neither.
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
mod deadline;
mod error;
pub mod framing;
pub mod headers;
pub mod keepalive;
pub mod metadata;
mod request;
mod resolve;
pub mod server;
pub mod status;
mod stream;
pub mod tls;

pub use client::Channel;
pub use compression::{CompressionSwitch, Encoding};
pub use error::Error;
pub use metadata::Metadata;
pub use request::{IntoStreamingRequest, Request, Response};
pub use server::Server;
pub use status::{Code, Status};
pub use stream::{ResponseStream, Streaming};
pub use tls::{ClientTls, Peer, ServerTls};

/// Re-exported for generated code.
pub use futures_core::Stream;
/// Re-exported for generated code.
pub use http;
/// Re-exported for generated code: its messages derive `h2grpc::prost::Message`, so a crate
/// using them needs no `prost` dependency of its own.
pub use prost;
