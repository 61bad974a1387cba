//! All a downstream crate needs to generate its service: h2grpc with the `codegen`
//! feature as a build-dependency, and this call.

fn main() -> std::io::Result<()> {
    h2grpc::codegen::compile_protos(&["proto/hello.proto"], &["proto"])
}
