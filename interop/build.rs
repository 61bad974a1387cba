//! Generates `grpc.testing` from `proto/grpc/testing/*.proto` and
//! `connectrpc.conformance.v1` from `proto/connectrpc/conformance/v1/*.proto` with h2grpc's
//! generator.

fn main() -> std::io::Result<()> {
    h2grpc::codegen::compile_protos(
        &[
            "proto/grpc/testing/empty.proto",
            "proto/grpc/testing/messages.proto",
            "proto/grpc/testing/test.proto",
            "proto/connectrpc/conformance/v1/config.proto",
            "proto/connectrpc/conformance/v1/service.proto",
            "proto/connectrpc/conformance/v1/server_compat.proto",
        ],
        &["proto"],
    )
}
