//! Runs our service generator (src/codegen.rs, the same one the `codegen` feature gives
//! other crates) over the standard health and reflection protos, which the library
//! serves (`src/health.rs`, `src/reflection.rs`), and over `proto/demo.proto` for the
//! crate docs' example (the doctest in `src/lib.rs` includes `$OUT_DIR/demo.rs`; the library
//! includes no demo message, and the integration tests use the test-support kit's).
//!
//! It also compiles `proto/google/rpc/{status,error_details}.proto` (messages only, with
//! `google.protobuf.Any`/`Duration` from prost-types) into `$OUT_DIR/google.rpc.rs`, which
//! the library includes for the rich error details of `status::details`.

#[path = "src/codegen.rs"]
#[allow(dead_code)]
mod codegen;

fn main() -> std::io::Result<()> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(
        [
            "proto/grpc/health/v1/health.proto",
            "proto/grpc/reflection/v1/reflection.proto",
            "proto/grpc/reflection/v1alpha/reflection.proto",
            "proto/demo.proto",
        ],
        ["proto"],
    )
    .map_err(|e| std::io::Error::other(e.to_string()))?;
    codegen::compile_fds(descriptors)?;
    compile_error_details()
}

/// `google.rpc.Status` and the standard error details, as plain prost messages.
fn compile_error_details() -> std::io::Result<()> {
    let descriptors = protox::compile(
        ["google/rpc/status.proto", "google/rpc/error_details.proto"],
        ["proto"],
    )
    .map_err(|e| std::io::Error::other(e.to_string()))?;
    prost_build::Config::new()
        // These comments hold JSON examples that rustdoc would run as Rust doctests.
        .disable_comments([
            ".google.rpc.ErrorInfo",
            ".google.rpc.BadRequest.FieldViolation.field",
        ])
        .compile_fds(descriptors)
}
