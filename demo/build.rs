//! Generates `demo.GRPCDemo` from the repository's `proto/demo.proto` with h2grpc's own
//! generator, exactly as a downstream crate would.

fn main() -> std::io::Result<()> {
    h2grpc::codegen::compile_protos(&["../proto/demo.proto"], &["../proto"])
}
