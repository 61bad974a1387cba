//! The ConnectRPC conformance suite's server mode against `conformance-server` (our
//! h2grpc server): the runner (`connectconformance`, connectrpc/conformance) starts the
//! binary Cargo built for this test, runs every case of `config-all.yaml` (gRPC, gRPC-Web
//! and Connect; HTTP/1.1 and HTTP/2; h2c and TLS with client certificates; proto and JSON;
//! identity, gzip and deflate; Connect GET; receive limits; 5,534 cases) and must report
//! every case passed, with no known-failing list.
//!
//! The runner and its configurations are looked for in `H2GRPC_CONFORMANCE_DIR`, else in
//! `../shared/peers/connect-conformance/` beside the repository. Missing, the test fails
//! saying so (or prints NOT RUN with `H2GRPC_SKIP_MISSING_PEERS=1`, never under `CI=true`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// Where the runner and its configurations are expected.
fn kit_dir() -> PathBuf {
    std::env::var_os("H2GRPC_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            h2grpc_test_support::repo_root().join("../shared/peers/connect-conformance")
        })
}

#[test]
fn conformance_server_passes_every_case_of_config_all() {
    let dir = kit_dir();
    let runner = dir.join("connectconformance");
    let config = dir.join("config-all.yaml");
    if !runner.is_file() || !config.is_file() {
        h2grpc_test_support::missing(
            "conformance_server_passes_every_case_of_config_all",
            &format!(
                "the ConnectRPC conformance runner is missing: expected {} and {}",
                runner.display(),
                config.display()
            ),
            "put connectconformance (connectrpc/conformance, v1.0.5 or later) and \
             config-all.yaml there, or point H2GRPC_CONFORMANCE_DIR at them",
        );
        return;
    }
    let server = env!("CARGO_BIN_EXE_conformance-server");
    let started = Instant::now();
    let output = Command::new(&runner)
        .args(["--mode", "server", "--conf"])
        .arg(&config)
        .arg("--")
        .arg(server)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", runner.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The summary (and any failures) are the runner's last lines.
    eprintln!(
        "conformance runner finished in {:.1?} ({}):\n{stdout}\n{stderr}",
        started.elapsed(),
        output.status
    );
    assert!(
        output.status.success(),
        "the conformance runner reported failures ({}); see its output above",
        output.status
    );
    let summary = format!("{stdout}{stderr}");
    assert!(
        summary.contains("FAILED: 0") || !summary.contains("FAILED"),
        "the runner's summary names failures:\n{summary}"
    );
}
