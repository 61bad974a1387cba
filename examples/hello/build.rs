//! Generates the Rust code for `proto/hello.proto` into `$OUT_DIR/hello.rs` and for
//! `proto/helloworld.proto` (the README's "Use it") into `$OUT_DIR/helloworld.rs`: one file
//! per protobuf package, rerun by Cargo whenever a proto changes.

fn main() -> std::io::Result<()> {
    // The protos to compile, then the directories their imports are looked up in.
    h2grpc::codegen::compile_protos(&["proto/hello.proto", "proto/helloworld.proto"], &["proto"])
}
