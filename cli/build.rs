//! Generates the clients of the official reflection (v1 and v1alpha) and health protos,
//! copied unedited into `cli/proto/`, with h2grpc's own generator.

fn main() -> std::io::Result<()> {
    h2grpc::codegen::compile_protos(
        &[
            "proto/grpc/reflection/v1/reflection.proto",
            "proto/grpc/reflection/v1alpha/reflection.proto",
            "proto/grpc/health/v1/health.proto",
        ],
        &["proto"],
    )
}
