//! Mutual TLS against grpcio, both ways, with certificates generated for the run by the
//! kit's [`TestCerts`] (none is committed):
//!
//! - our `interop-server` requiring client certificates (`--tls_client_ca_file` = the test
//!   CA): grpcio's client with the test CA's client certificate passes `empty_unary`; with
//!   an unrelated CA's client certificate, or none, it is refused (UNAVAILABLE);
//! - grpcio's server requiring client certificates: our `interop-client` with the test CA's
//!   client certificate passes `empty_unary`; with none, or the unrelated CA's, it fails.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use h2grpc_test_support::process::{Process, TempDir, run_named};
use h2grpc_test_support::python::{self, Venv};
use h2grpc_test_support::tls::TestCerts;

const SERVER_START: Duration = Duration::from_secs(60);
const CLIENT_RUN: Duration = Duration::from_secs(60);

/// Which client certificate a client presents.
#[derive(Clone, Copy, Debug)]
enum Identity {
    /// The test CA's client certificate: accepted.
    Trusted,
    /// A certificate from a CA the server does not trust: refused.
    Unknown,
    /// None at all: refused.
    Without,
}

impl Identity {
    fn files(self, certs: &TestCerts) -> Option<(&Path, &Path)> {
        match self {
            Identity::Trusted => Some((&certs.client_cert, &certs.client_key)),
            Identity::Unknown => Some((&certs.other_client_cert, &certs.other_client_key)),
            Identity::Without => None,
        }
    }
}

/// What one client run printed for `empty_unary`: `Ok` for `PASS`, `Err(reason)` for
/// `FAIL`; panics (with both processes' output) when it printed neither.
fn empty_unary_outcome(what: &str, client: Command, server: &Process) -> Result<(), String> {
    let run = run_named(what, client, CLIENT_RUN)
        .unwrap_or_else(|e| panic!("{what}: cannot start the client: {e}"));
    for line in run.stdout.lines() {
        if line.trim() == "PASS empty_unary" {
            assert!(
                run.success(),
                "{what}: PASS but a failing exit\n{}",
                run.dump()
            );
            return Ok(());
        }
        if let Some(why) = line.strip_prefix("FAIL empty_unary:") {
            assert!(!run.success(), "{what}: FAIL but exit 0\n{}", run.dump());
            return Err(why.trim().to_owned());
        }
    }
    panic!(
        "{what}: the client printed no result for empty_unary\n{}{}",
        run.dump(),
        server.dump()
    );
}

fn our_mtls_server(certs: &TestCerts) -> Process {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_interop-server"));
    cmd.args(["--port", "0", "--host", "127.0.0.1"])
        .args(certs.interop_server_args(true));
    Process::spawn("interop-server (mTLS)", cmd).expect("start interop-server")
}

fn grpcio_client(
    venv: &Venv,
    stubs: &TempDir,
    port: u16,
    certs: &TestCerts,
    identity: Identity,
) -> Command {
    let mut cmd = python::python_interop_client(venv, stubs, port, "empty_unary");
    cmd.args(certs.interop_client_args(identity.files(certs)));
    cmd
}

fn our_client(port: u16, certs: &TestCerts, identity: Identity) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_interop-client"));
    cmd.args(["--server_host", "127.0.0.1", "--server_port"])
        .arg(port.to_string())
        .args(["--test_case", "empty_unary"])
        .args(certs.interop_client_args(identity.files(certs)));
    cmd
}

/// grpcio's client → our server requiring client certificates.
#[test]
fn mtls_grpcio_client_to_our_server() {
    let test = "mtls_grpcio_client_to_our_server";
    let Some(venv) = python::venv(test) else {
        return;
    };
    let stubs = python::generate_interop_stubs(venv);
    let certs = TestCerts::generate();
    let mut server = our_mtls_server(&certs);
    let port = server.wait_for_listening(SERVER_START);

    let trusted = empty_unary_outcome(
        "grpcio client, trusted certificate",
        grpcio_client(venv, &stubs, port, &certs, Identity::Trusted),
        &server,
    );
    assert_eq!(
        trusted,
        Ok(()),
        "grpcio's client with the test CA's client certificate was not served\n{}",
        server.dump()
    );
    for identity in [Identity::Unknown, Identity::Without] {
        let what = format!("grpcio client, {identity:?} certificate");
        let refused = empty_unary_outcome(
            &what,
            grpcio_client(venv, &stubs, port, &certs, identity),
            &server,
        );
        match refused {
            Err(why) if why.contains("UNAVAILABLE") => {}
            other => panic!(
                "{what}: expected empty_unary to fail with UNAVAILABLE (handshake refused), got {other:?}\n{}",
                server.dump()
            ),
        }
    }
    // The server is still serving after refusing handshakes.
    let again = empty_unary_outcome(
        "grpcio client, trusted certificate, after the refusals",
        grpcio_client(venv, &stubs, port, &certs, Identity::Trusted),
        &server,
    );
    assert_eq!(again, Ok(()), "{}", server.dump());
    server.stop();
}

/// Our client → grpcio's server requiring client certificates.
#[test]
fn mtls_our_client_to_grpcio_server() {
    let test = "mtls_our_client_to_grpcio_server";
    let Some(venv) = python::venv(test) else {
        return;
    };
    let stubs = python::generate_interop_stubs(venv);
    let certs = TestCerts::generate();
    let mut cmd = python::python_interop_server(venv, &stubs, 0);
    cmd.args(certs.interop_server_args(true));
    let mut server = Process::spawn("interop_server.py (mTLS)", cmd).expect("start grpcio server");
    let port = server.wait_for_listening(SERVER_START);

    let trusted = empty_unary_outcome(
        "interop-client, trusted certificate",
        our_client(port, &certs, Identity::Trusted),
        &server,
    );
    assert_eq!(
        trusted,
        Ok(()),
        "our client with the test CA's client certificate was not served by grpcio\n{}",
        server.dump()
    );
    for identity in [Identity::Without, Identity::Unknown] {
        let what = format!("interop-client, {identity:?} certificate");
        let refused = empty_unary_outcome(&what, our_client(port, &certs, identity), &server);
        assert!(
            refused.is_err(),
            "{what}: grpcio's server requiring client certificates served it\n{}",
            server.dump()
        );
    }
    server.stop();
}
