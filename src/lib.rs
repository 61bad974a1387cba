//! h2grpc: gRPC over HTTP/2, written directly on the [`h2`](https://docs.rs/h2) crate.
//!
//! No tonic, hyper or tower: a framing layer, a server with its own dispatcher, a
//! client, and a code generator for prost, each small enough to read in one sitting.
//!
//! # Getting started
//!
//! Define a service, serve it, call it. [`codegen`] has the details of the generator, and
//! `examples/hello` in the repository is a complete crate to copy: a proto with the four
//! kinds of method, its `build.rs`, a server with health, reflection and error details, a
//! client and a test.
//!
//! **Dependencies.** h2grpc and tokio; and h2grpc with the feature `codegen` as a
//! build-dependency, for the generator (prost-build, and protox to parse the protos, so no
//! `protoc` to install). The generated messages use the `prost` h2grpc re-exports: no
//! `prost` dependency of your own. The example below also builds streams with
//! `futures-util`.
//!
//! ```toml
//! [dependencies]
//! h2grpc = "0.1"
//! tokio = { version = "1", features = ["rt-multi-thread", "macros"] }
//! futures-util = { version = "0.3", default-features = false }
//!
//! [build-dependencies]
//! h2grpc = { version = "0.1", features = ["codegen"] }
//! ```
//!
//! **The service**, `proto/demo.proto` (the one this repository's tests use, shortened):
//!
//! ```text
//! syntax = "proto3";
//! package demo;
//!
//! message Request { int64 client_id = 1; string request_data = 2; }
//! message Response { int64 server_id = 1; string response_data = 2; }
//!
//! service GRPCDemo {
//!   rpc SimpleMethod(Request) returns (Response);
//!   rpc ClientStreamingMethod(stream Request) returns (Response);
//!   rpc ServerStreamingMethod(Request) returns (stream Response);
//!   rpc BidirectionalStreamingMethod(stream Request) returns (stream Response);
//! }
//! ```
//!
//! **Generating the code**, in `build.rs`:
//!
//! ```text
//! fn main() -> std::io::Result<()> {
//!     h2grpc::codegen::compile_protos(&["proto/demo.proto"], &["proto"])
//! }
//! ```
//!
//! This writes one file per protobuf package into `OUT_DIR`, named after the package:
//! `demo.rs` here (`package my.api.v1;` would give `my.api.v1.rs`). Include it in a
//! module of your choice with `include!(concat!(env!("OUT_DIR"), "/demo.rs"))`. For
//! `service GRPCDemo` it holds:
//!
//! - `Request`, `Response`: the messages (prost structs);
//! - `grpc_demo_server::GrpcDemo`: the trait to implement, one `async fn` per method in
//!   snake_case; `grpc_demo_server::GrpcDemoServer`, the adapter to add to a [`Server`];
//!   `grpc_demo_server::SERVICE_NAME`, `"demo.GRPCDemo"`;
//! - `grpc_demo_client::GrpcDemoClient`: the client, one `async fn` per method;
//! - `FILE_DESCRIPTOR_SET`: the package's descriptors, for [`reflection`].
//!
//! The modules are the service's name in snake_case with `_server` and `_client`; the
//! trait and the types take prost's UpperCamelCase of it (`GRPCDemo` is `GrpcDemo`).
//!
//! **Serving and calling** (this runs as a test of this crate, whose `build.rs` generates
//! `demo.rs`):
//!
//! ```
//! pub mod demo {
//!     include!(concat!(env!("OUT_DIR"), "/demo.rs"));
//! }
//!
//! use demo::grpc_demo_client::GrpcDemoClient;
//! use demo::grpc_demo_server::{GrpcDemo, GrpcDemoServer};
//! use futures_util::{StreamExt, stream};
//! use h2grpc::{Request, Response, ResponseStream, Server, Status, Streaming};
//!
//! struct Demo;
//!
//! fn reply(text: String) -> demo::Response {
//!     demo::Response { server_id: 1, response_data: text }
//! }
//!
//! // One method per rpc. An `Err(Status)` is what the client's call fails with.
//! impl GrpcDemo for Demo {
//!     async fn simple_method(
//!         &self,
//!         request: Request<demo::Request>,
//!     ) -> Result<Response<demo::Response>, Status> {
//!         let text = &request.message().request_data;
//!         if text.is_empty() {
//!             return Err(Status::invalid_argument("request_data is empty"));
//!         }
//!         Ok(Response::new(reply(format!("got {text}"))))
//!     }
//!
//!     // Client streaming: read the requests until `message()` is `Ok(None)`.
//!     async fn client_streaming_method(
//!         &self,
//!         request: Request<Streaming<demo::Request>>,
//!     ) -> Result<Response<demo::Response>, Status> {
//!         let mut requests = request.into_message();
//!         let mut count = 0;
//!         while let Some(_request) = requests.message().await? {
//!             count += 1;
//!         }
//!         Ok(Response::new(reply(format!("{count} requests"))))
//!     }
//!
//!     // Server streaming: answer with any boxed stream of `Result<message, Status>`.
//!     async fn server_streaming_method(
//!         &self,
//!         _request: Request<demo::Request>,
//!     ) -> Result<Response<ResponseStream<demo::Response>>, Status> {
//!         let replies = (1..=3).map(|i| Ok(reply(format!("reply {i}"))));
//!         Ok(Response::new(Box::pin(stream::iter(replies))))
//!     }
//!
//!     // Bidirectional: here, one reply per request as each arrives.
//!     async fn bidirectional_streaming_method(
//!         &self,
//!         request: Request<Streaming<demo::Request>>,
//!     ) -> Result<Response<ResponseStream<demo::Response>>, Status> {
//!         let replies = request
//!             .into_message()
//!             .map(|request| request.map(|r| reply(format!("echo {}", r.request_data))));
//!         Ok(Response::new(Box::pin(replies)))
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Serve on a port the OS picks (`Server::serve(addr)` binds and serves in one step).
//!     let listening = Server::new()
//!         .add_service(GrpcDemoServer::new(Demo))
//!         .bind("127.0.0.1:0")
//!         .await?;
//!     let addr = listening.local_addrs()[0];
//!     let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//!     let server = tokio::spawn(listening.serve_with_shutdown(async {
//!         let _ = stopped.await;
//!     }));
//!
//!     // `"http://host:port"` (or `"host:port"`, a `SocketAddr`); `"https://..."` for TLS.
//!     let client = GrpcDemoClient::connect(format!("http://{addr}")).await?;
//!     let request = |text: &str| demo::Request { client_id: 7, request_data: text.into() };
//!
//!     let response = client.simple_method(request("hi")).await?;
//!     assert_eq!(response.message().response_data, "got hi");
//!
//!     let status = client.simple_method(request("")).await.unwrap_err();
//!     assert_eq!(status.code(), h2grpc::Code::InvalidArgument);
//!
//!     let requests = stream::iter([request("a"), request("b")]);
//!     let response = client.client_streaming_method(requests).await?;
//!     assert_eq!(response.message().response_data, "2 requests");
//!
//!     // `into_inner()` is `into_message()` under tonic's name.
//!     let mut replies = client.server_streaming_method(request("")).await?.into_inner();
//!     let mut texts = Vec::new();
//!     while let Some(reply) = replies.message().await? {
//!         texts.push(reply.response_data);
//!     }
//!     assert_eq!(texts, ["reply 1", "reply 2", "reply 3"]);
//!
//!     let requests = stream::iter([request("x"), request("y")]);
//!     let replies = client.bidirectional_streaming_method(requests).await?.into_message();
//!     let texts: Vec<String> = replies.map(|r| r.unwrap().response_data).collect().await;
//!     assert_eq!(texts, ["echo x", "echo y"]);
//!
//!     // A graceful shutdown: the server stops accepting and lets calls in flight finish.
//!     let _ = stop.send(());
//!     server.await??;
//!     Ok(())
//! }
//! ```
//!
//! Coming from tonic: the README's "Use it" has the same steps for gRPC's `helloworld`, and
//! a table of tonic's names beside these. Errors with typed details (`google.rpc.BadRequest`
//! and the other standard ones) are in [`status::details`]; the standard health and
//! reflection services are [`health`] and [`reflection`], each one `add_service` away.
//!
//! # Layout
//!
//! From the wire up:
//!
//! - [`framing`]: Length-Prefixed-Messages: `encode`, the incremental `Decoder` (one step
//!   checks the limit, decompresses and decodes protobuf), limits. Pure.
//! - [`metadata`]: `Metadata`, reserved names, `-bin` base64, `grpc-timeout`.
//! - [`status`]: `Code`, `Status`, its own headers (`grpc-status`, `grpc-message`,
//!   `grpc-status-details-bin`), `grpc-message` percent-encoding, every mapping into a status.
//! - [`compression`]: gzip and deflate, decompression held to the limit, and all of the
//!   encoding negotiation.
//! - [`headers`]: every gRPC header name; `RequestHead` (`parse`, `write`), `ResponseHead`
//!   (`parse`: headers, or a Trailers-Only status, decided once), the response headers,
//!   trailers and Trailers-Only responses written. Pure; above `status` and `compression`.
//! - `deadline`: `Deadline`, the timer of a call and the rule that a cancellation after
//!   the deadline is `DEADLINE_EXCEEDED`.
//! - `stream`: the two message pipelines of an h2 stream: [`Streaming`] (inbound: h2 bytes
//!   into the decoder, flow-control release) and `Sender` (outbound: encode, compress,
//!   batch into DATA frames, wait for the peer's window, watch reset and deadline).
//! - `exchange`: what carries a call's bytes, an h2 stream or an HTTP/1.1 exchange, as
//!   three enums with h2's verbs (`RecvBody`, `SendBody`, `Respond`).
//! - `protocol`: the protocol seam. A `Wire` (gRPC, gRPC-Web or Connect; protobuf or JSON)
//!   is read off a request's content type once, and every head, message and end is written
//!   the way it says; `protocol/json.rs` is protobuf's JSON mapping (prost-reflect, over
//!   the descriptors the generator embeds), `protocol/connect_error.rs` Connect's error and
//!   end-of-stream JSON.
//! - `http1`: HTTP/1.1 on `httparse` for the web protocols: the incremental request
//!   reader with its limits, the connection driver (keep-alive, pipelining, chunked bodies,
//!   backpressure, timeouts), and telling an HTTP/2 connection from an HTTP/1.1 one.
//! - `request`: [`Request`] and [`Response`], a message with its metadata.
//! - [`server`]: [`Server`] (listeners, connection tasks, shutdown); each connection's
//!   lifetime (`server/lifetime.rs`: shutdown, keepalive, ping enforcement, idle and age
//!   behind one poll that says what the connection must do next), the failures a peer can
//!   cause logged at DEBUG and summed up at WARN (`server/faults.rs`), the router (above the
//!   call: it finds the `Service` a path names; the call module defines that seam),
//!   interceptors (async, in order, before the handler: refuse a call, add response
//!   metadata, hand the handler extensions), and the call (a request side and a response
//!   side, and the `Responder` that alone writes a response, in the call's wire form:
//!   headers lazily, then trailers, a status frame, or a Trailers-Only answer), and the web
//!   settings (`server/web.rs`: CORS, the plain HTTP handler for requests that are no call).
//! - [`client`]: [`Channel`]: targets and resolvers, a subchannel per address with
//!   connectivity states and backoff, `pick_first` / `round_robin`, the service config,
//!   interceptors; the call (`client/call.rs`: a request side and a response side, as on
//!   the server, run by one `Channel::call`) over the attempt engine (`client/attempt.rs`:
//!   one attempt function whose per-kind hook sends the request, used by plain calls,
//!   transparent retry, retries and hedging alike), with `retry.rs` (throttle, backoff,
//!   pushback) and `replay.rs` (a streaming request's replay buffer) below it.
//! - [`telemetry`]: a DEBUG `tracing` span per call on both sides, and (feature `metrics`) the
//!   gRFC A66 call and attempt metrics through the `metrics` facade.
//! - `tls` (default feature `tls`): `ServerTls`, `ClientTls` (rustls with `ring`, ALPN
//!   `h2`); [`peer`]: [`Peer`], who is at the other end of a server's connection.
//! - [`keepalive`]: the keepalive and enforcement settings, PINGs after idle time on the
//!   client, and the transport wrapper both sides use (reads noted, PINGs counted, the
//!   GOAWAY debug data h2 cannot write added).
//! - `resolve`: addresses: `host:port`, `unix:path`, `unix-abstract:name`.
//! - `random`: the one random source (`fastrand`), for every jitter and shuffle.
//! - [`health`]: `grpc.health.v1.Health` (Check, Watch, List) and the [`health::HealthReporter`]
//!   that sets each service's status; a graceful shutdown sets all NOT_SERVING.
//! - [`reflection`]: `grpc.reflection.v1` and `v1alpha` over the descriptor sets the generator
//!   embeds (`FILE_DESCRIPTOR_SET` in each package's module).
//! - [`codegen`]: the prost-build `ServiceGenerator` (feature `codegen`; `build.rs` uses it too).
//!
//! **A unary call on the client**, top to bottom (each file calls only the ones below it):
//!
//! 1. the generated `GrpcDemoClient::simple_method` calls `Channel::unary`;
//! 2. `client/call.rs`: `Channel::call` begins the call (`client/interceptor.rs`, the
//!    call's span and metrics in `telemetry.rs`, its options from `client/service_config.rs`),
//!    and `OneRequest::prepare` encodes the message once (`stream.rs` `Encoder`,
//!    `framing.rs`, `compression.rs`);
//! 3. `client/attempt.rs`: `Channel::attempts` runs the attempts (`retry.rs` when a policy
//!    retries); `attempt` opens a stream on a connection `client/balancer.rs` picks,
//!    writing the request head (`headers.rs` `RequestHead::write`, `metadata.rs`), sends
//!    the message (`Body::send`, `stream.rs` `Sender`) and parses the response head once
//!    (`headers.rs` `ResponseHead::parse`: headers, or a Trailers-Only `Status`);
//! 4. back in `client/call.rs` with the committed attempt's answer: `opened` makes the
//!    `Streaming` (`stream.rs`, `framing.rs` `Decoder`), `OneResponse::read` reads the one
//!    message and the trailers (`status.rs`), and `finish` ends the call's telemetry and
//!    tells the interceptors.
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

// The health and reflection code generated by build.rs names the runtime `::h2grpc`.
extern crate self as h2grpc;

pub mod client;
#[cfg(feature = "codegen")]
pub mod codegen;
/// The service generator for `build.rs` (feature `codegen`): prost-build plus our server
/// and client code.
///
#[doc = include_str!("codegen.md")]
///
/// # This documentation was built without the feature
///
/// So the items named above are not listed here. Build with `--features codegen` (or
/// `--all-features`, as docs.rs does) to see them.
#[cfg(all(doc, not(feature = "codegen")))]
pub mod codegen {}
pub mod compression;
mod deadline;
mod error;
mod exchange;
pub mod framing;
pub mod headers;
pub mod health;
mod http1;
pub mod keepalive;
pub mod metadata;
pub mod peer;
mod protocol;
mod random;
pub mod reflection;
mod request;
mod resolve;
pub mod server;
pub mod status;
mod stream;
pub mod telemetry;
#[cfg(feature = "tls")]
pub mod tls;

/// Entry points for the fuzz targets in `fuzz/`; not part of the API.
#[doc(hidden)]
pub mod __fuzz {
    /// Run the HTTP/1.1 request parser over `data`, whole and in pieces; panics when the
    /// two disagree or an invariant breaks.
    pub fn http1_request(data: &[u8]) {
        crate::http1::fuzz_request(data)
    }

    /// Run the web protocols' decoders over `data` (gRPC-Web text whole and in pieces,
    /// the Connect GET query, content-type classification, a whole Connect unary body
    /// under a limit); panics when an invariant breaks.
    pub fn web_decoders(data: &[u8]) {
        crate::protocol::fuzz::web_decoders(data)
    }

    /// Read `data` as a Connect error body, an end-of-stream message and a JSON message
    /// of one of the library's own types, checking each round-trips; panics when an
    /// invariant breaks.
    pub fn connect_json(data: &[u8]) {
        crate::protocol::fuzz::connect_json(data)
    }
}

pub use client::Channel;
pub use compression::{CompressionSwitch, Encoding};
pub use error::Error;
pub use metadata::Metadata;
pub use peer::Peer;
pub use request::{IntoStreamingRequest, Request, Response};
pub use resolve::IntoAddress;
pub use server::Server;
pub use status::{Code, Status};
pub use stream::{ResponseStream, Streaming};
#[cfg(feature = "tls")]
pub use tls::{ClientTls, ServerTls};

/// Re-exported for generated code.
pub use futures_core::Stream;
/// Re-exported for generated code.
pub use http;
/// Re-exported for generated code: its messages derive `h2grpc::prost::Message`, so a crate
/// using them needs no `prost` dependency of its own.
pub use prost;
