//! Runs our service generator (src/codegen.rs, the same one the `codegen` feature gives
//! other crates) over the standard health and reflection protos, which the library
//! serves (`src/health.rs`, `src/reflection.rs`), and over `proto/demo.proto`, for this
//! package's integration tests only (`tests/common` includes `$OUT_DIR/demo.rs`; the
//! library includes no demo message).

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
    codegen::compile_fds(descriptors)
}
