//! Generates `grpc.testing` from `proto/grpc/testing/*.proto` with h2grpc's generator.

fn main() -> std::io::Result<()> {
    h2grpc::codegen::compile_protos(
        &[
            "proto/grpc/testing/empty.proto",
            "proto/grpc/testing/messages.proto",
            "proto/grpc/testing/test.proto",
        ],
        &["proto"],
    )
}
