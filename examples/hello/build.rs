//! Generates the Rust code for `proto/hello.proto` into `$OUT_DIR/hello.rs` (one file per
//! protobuf package), rerun by Cargo whenever the proto changes.

fn main() -> std::io::Result<()> {
    // The protos to compile, then the directories their imports are looked up in.
    h2grpc::codegen::compile_protos(&["proto/hello.proto"], &["proto"])
}
