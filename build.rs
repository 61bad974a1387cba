//! Compiles every `.proto` under `proto/` with protox and prost-build plus our own
//! service generator (the same one the `codegen` feature exposes to other crates).

#[path = "src/codegen.rs"]
#[allow(dead_code)]
mod codegen;

use std::path::{Path, PathBuf};

fn protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    println!("cargo:rerun-if-changed=proto");
    let mut files = Vec::new();
    protos(Path::new("proto"), &mut files)?;
    files.sort();
    let descriptors =
        protox::compile(&files, ["proto"]).map_err(|e| std::io::Error::other(e.to_string()))?;
    prost_build::Config::new()
        .service_generator(Box::new(codegen::ServiceGenerator::new()))
        .include_file("protos.rs")
        .compile_fds(descriptors)
}
