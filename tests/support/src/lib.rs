//! The test-support kit shared by every test crate of the workspace (the root package's
//! `tests/`, `demo/tests/`, `interop/tests/`), as h2's `tests/h2-support` is for h2. It
//! owns everything a test needs that is not the code under test nor a generated service:
//!
//! - [`raw`]: HTTP/2 frames written and read as bytes (a hand-rolled HPACK encoder, a raw
//!   client connection, floods), for what a well-behaved client refuses to send;
//! - [`lpm`]: gRPC Length-Prefixed-Messages (the 5-byte prefix and its payload), well
//!   formed or malformed on purpose;
//! - [`relay`]: a TCP relay that cuts (or refuses) the connections it carries;
//! - [`ports`]: free ports, fixed ports held under a lock, port probes;
//! - [`process`]: child processes with collected output, commands run to completion with
//!   a timeout, temporary directories, checks of a process' output lines;
//! - [`demo_process`]: the real `demo-server` binary as a child process;
//! - the peers: [`python`] (the official example and a pinned grpcio venv), [`node`]
//!   (grpc-js), [`nginx`];
//! - [`tls`]: test certificates (CA, server, client, an unknown client) generated at test
//!   time;
//! - [`lock`]: the lock files that serialise one-time setup across test processes;
//! - [`missing`]: what a test does when a peer or tool it needs is missing.
//!
//! Vocabulary: a *frame* is an HTTP/2 frame, nothing else; what gRPC puts in DATA frames
//! is a *message* (a Length-Prefixed-Message on the wire).
//!
//! # Missing peers and tools
//!
//! A test that needs something outside Rust (python3 with its venv module, node and npm,
//! nginx, the official example named by `GRPC_PYTHON_EXAMPLE_DIR`) and does not find it
//! **fails**, with a message saying what to install or set. It never passes silently.
//!
//! To run the suite on a machine that lacks some of them, opt out explicitly with
//! [`SKIP_MISSING_PEERS_VAR`]:
//!
//! ```text
//! H2GRPC_SKIP_MISSING_PEERS=1 cargo test
//! ```
//!
//! Each such test then prints `NOT RUN: ...` (straight to the terminal's stderr, past the
//! test harness' output capture) and returns, so it shows as passed. Under CI (`CI=true`
//! or `CI=1`) the opt-out is ignored: a missing peer always fails the test.

pub mod demo_process;
pub mod lock;
pub mod lpm;
pub mod nginx;
pub mod node;
pub mod ports;
pub mod process;
pub mod python;
pub mod raw;
pub mod relay;
pub mod tls;

use std::io::Write;
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
        .map(|t| {
            if t.is_absolute() {
                t
            } else {
                repo_root().join(t)
            }
        })
        .unwrap_or_else(|| repo_root().join("target"));
    let tmp = target.join("tmp");
    let _ = std::fs::create_dir_all(&tmp);
    tmp
}

/// The environment variable that lets tests whose peer or tool is missing print
/// `NOT RUN` and return instead of failing: set it to `1`. Ignored under CI. See the
/// [crate docs](crate#missing-peers-and-tools).
pub const SKIP_MISSING_PEERS_VAR: &str = "H2GRPC_SKIP_MISSING_PEERS";

/// True under CI: `CI` set to `true` (any case) or `1`.
pub fn under_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "1" || v.eq_ignore_ascii_case("true"))
        .unwrap_or(false)
}

/// True when the user opted out of failing on missing peers ([`SKIP_MISSING_PEERS_VAR`]
/// is `1`) and this is not CI.
pub fn skipping_missing_peers() -> bool {
    !under_ci() && std::env::var(SKIP_MISSING_PEERS_VAR).is_ok_and(|v| v == "1")
}

/// `test` cannot run: `what` is missing, and `how_to_install` says how to provide it.
///
/// Panics (the test fails) unless [`SKIP_MISSING_PEERS_VAR`]`=1` is set outside CI; then
/// prints `<test>: NOT RUN: <what>; ...` and returns, and the caller returns at once. See
/// the [crate docs](crate#missing-peers-and-tools).
#[track_caller]
pub fn missing(test: &str, what: &str, how_to_install: &str) {
    if skipping_missing_peers() {
        // Written to the process' stderr, not with eprintln!: the test harness captures
        // that, and a passing test's captured output is never shown.
        let _ = writeln!(
            std::io::stderr(),
            "{test}: NOT RUN: {what}; to run it, {how_to_install} ({SKIP_MISSING_PEERS_VAR}=1 is set)"
        );
        return;
    }
    let why = if under_ci() {
        format!(
            "under CI (CI=true) a missing peer is always a failure, whatever {SKIP_MISSING_PEERS_VAR} says"
        )
    } else {
        format!("or set {SKIP_MISSING_PEERS_VAR}=1 to let such tests print NOT RUN and pass")
    };
    panic!("{test}: {what}; {how_to_install} ({why})");
}
