//! Runs our service generator (src/codegen.rs, the same one the `codegen` feature gives
//! other crates) over `proto/demo.proto`, for this package's integration tests
//! (`tests/common` includes `$OUT_DIR/demo.rs`). The library itself includes nothing
//! generated: no demo message is compiled into it.

#[path = "src/codegen.rs"]
#[allow(dead_code)]
mod codegen;

fn main() -> std::io::Result<()> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(["proto/demo.proto"], ["proto"])
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    codegen::config().compile_fds(descriptors)
}
