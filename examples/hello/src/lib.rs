//! hello-h2grpc: a complete downstream crate on h2grpc, to copy as the start of your own.
//!
//! - `proto/hello.proto`: service `hello.Greeter`, one method of each of the four kinds.
//! - `build.rs`: generates `$OUT_DIR/hello.rs` with `h2grpc::codegen::compile_protos`.
//! - this file: includes the generated code as the module [`hello`], shared by both binaries.
//! - `src/bin/hello-server.rs`: implements the service and serves it, with health and
//!   reflection beside it; refuses bad input with a typed error detail.
//! - `src/bin/hello-client.rs`: makes each kind of call and reads the detail of an error.
//! - `tests/server_and_client.rs`: runs both binaries against each other.
//!
//! ```text
//! cargo run -p hello-h2grpc --bin hello-server              # listens on 127.0.0.1:50051
//! cargo run -p hello-h2grpc --bin hello-client              # in a second terminal
//! ```

/// The code generated from `proto/hello.proto`. prost-build writes one file per protobuf
/// package, named after it (`hello` gives `hello.rs`; `my.api.v1` would give `my.api.v1.rs`).
///
/// It holds the messages (`HelloRequest`, `RepeatRequest`, `HelloReply`); for service
/// `Greeter` the module `greeter_server` (the trait `Greeter` to implement, the adapter
/// `GreeterServer` to add to a server, `SERVICE_NAME`) and the module `greeter_client` (the
/// client `GreeterClient`); and `FILE_DESCRIPTOR_SET`, the package's descriptors for
/// server reflection.
pub mod hello {
    include!(concat!(env!("OUT_DIR"), "/hello.rs"));
}
