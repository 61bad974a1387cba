//! The demo binaries over TLS, with certificates generated for the run: `demo-client
//! --tls-ca` against `demo-server --tls-cert/--tls-key` makes all four calls; with
//! `--tls-client-ca` the server admits a client presenting a certificate of that CA and
//! refuses one without.

use std::process::Command;
use std::time::Duration;

use h2grpc_test_support::ports::{free_port, local};
use h2grpc_test_support::process::{Process, run};
use h2grpc_test_support::tls::TestCerts;

const START: Duration = Duration::from_secs(15);
const CLIENT_RUN: Duration = Duration::from_secs(60);

fn server(certs: &TestCerts, port: u16, client_ca: bool) -> Process {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_demo-server"));
    cmd.args(["--quiet", "--addr", &local(port).to_string()])
        .arg("--tls-cert")
        .arg(&certs.server_cert)
        .arg("--tls-key")
        .arg(&certs.server_key);
    if client_ca {
        cmd.arg("--tls-client-ca").arg(&certs.ca_cert);
    }
    let mut server = Process::spawn("demo-server", cmd).expect("start demo-server");
    server.wait_for_port(local(port), START);
    server
}

fn client(certs: &TestCerts, port: u16, identity: bool) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_demo-client"));
    cmd.args(["--addr", &local(port).to_string(), "--interval-ms", "10"])
        .args(["--wait-secs", "0", "--tls-server-name", "localhost"])
        .arg("--tls-ca")
        .arg(&certs.ca_cert);
    if identity {
        cmd.arg("--tls-cert")
            .arg(&certs.client_cert)
            .arg("--tls-key")
            .arg(&certs.client_key);
    }
    cmd
}

#[test]
fn demo_client_calls_demo_server_over_tls() {
    let certs = TestCerts::generate();
    let port = free_port();
    let _server = server(&certs, port, false);
    let done = run(client(&certs, port, false), CLIENT_RUN).unwrap();
    assert!(done.success(), "{}", done.dump());
    for line in [
        "resp from server(1), the message=Rust server SimpleMethod Ok!!!!",
        "resp from server(1), the message=Rust server ClientStreamingMethod ok",
        "recv from server(1), message=send by Rust server, message=4",
        "recv from server(1), message=send by Rust server, message= 4",
    ] {
        assert!(
            done.stdout.contains(line),
            "missing {line:?}\n{}",
            done.dump()
        );
    }
}

#[test]
fn demo_server_with_a_client_ca_admits_only_clients_with_a_certificate() {
    let certs = TestCerts::generate();
    let port = free_port();
    let _server = server(&certs, port, true);
    let admitted = run(client(&certs, port, true), CLIENT_RUN).unwrap();
    assert!(admitted.success(), "{}", admitted.dump());
    let refused = run(client(&certs, port, false), CLIENT_RUN).unwrap();
    assert!(
        !refused.success(),
        "served without a client certificate\n{}",
        refused.dump()
    );
    assert!(
        refused.stderr.contains("demo-client: call failed"),
        "{}",
        refused.dump()
    );
}
