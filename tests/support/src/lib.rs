//! The test-support kit shared by every test crate of the workspace (the root package's
//! `tests/`, `demo/tests/`, `interop/tests/`): the official Python example and a pinned
//! grpcio venv, the grpc-js peer, nginx, the real `demo-server` as a child process, and
//! the lock files that serialise one-time setup and hard-coded ports.

pub mod demo_process;
pub mod lock;
pub mod nginx;
pub mod node;
pub mod python;

use std::path::{Path, PathBuf};

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// Where the tests keep state between runs (venv, node_modules stamps, lock files):
/// `tmp/` under the Cargo target directory.
pub fn target_tmp() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { repo_root().join(t) })
        .unwrap_or_else(|| repo_root().join("target"));
    let tmp = target.join("tmp");
    let _ = std::fs::create_dir_all(&tmp);
    tmp
}
