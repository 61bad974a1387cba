//! Generates `demo.GRPCDemo` from the repository's `proto/demo.proto` with h2grpc's own
//! generator, for the kit's test service (`service`) and the tests that call it.

fn main() -> std::io::Result<()> {
    h2grpc::codegen::compile_protos(&["../../proto/demo.proto"], &["../../proto"])
}
