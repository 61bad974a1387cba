//! `demo-server --token T` (a server interceptor) requires `authorization: Bearer T` on
//! every call: grpcio's own call credentials (`access_token_call_credentials`, over TLS
//! and over `local_channel_credentials`) and `demo-client --token` (a client interceptor)
//! get through with the right token; a wrong or missing token is UNAUTHENTICATED with a
//! message saying which.

use std::process::Command;
use std::time::Duration;

use h2grpc_test_support::ports::{free_port, local};
use h2grpc_test_support::process::{Process, run};
use h2grpc_test_support::python;
use h2grpc_test_support::repo_root;
use h2grpc_test_support::tls::TestCerts;

const START: Duration = Duration::from_secs(15);
const CLIENT_RUN: Duration = Duration::from_secs(60);
const TOKEN: &str = "open-sesame";

const MISSING: &str =
    "missing authorization metadata: this server requires \"authorization: Bearer <token>\"";
const WRONG: &str = "invalid bearer token";

/// `demo-server --token TOKEN` on a free port, over TLS when `certs` are given.
fn server(port: u16, certs: Option<&TestCerts>) -> Process {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_demo-server"));
    cmd.args(["--addr", &local(port).to_string(), "--token", TOKEN]);
    if let Some(certs) = certs {
        cmd.arg("--tls-cert")
            .arg(&certs.server_cert)
            .arg("--tls-key")
            .arg(&certs.server_key);
    }
    let mut server = Process::spawn("demo-server", cmd).expect("start demo-server");
    server.wait_for_port(local(port), START);
    server
}

#[test]
fn grpcio_call_credentials_pass_only_with_the_right_token() {
    let test = "grpcio_call_credentials_pass_only_with_the_right_token";
    let Some(venv) = python::venv(test) else {
        return;
    };
    let stubs = python::generate_proto_stubs(venv, &repo_root().join("proto"), &["demo.proto"]);
    let script = python::python_peers_dir().join("bearer_client.py");
    let certs = TestCerts::generate();
    let (tls_port, plain_port) = (free_port(), free_port());
    let mut tls_server = server(tls_port, Some(&certs));
    let mut plain_server = server(plain_port, None);

    let ok = [
        "SimpleMethod OK Rust server SimpleMethod Ok!!!!".to_string(),
        "ServerStreamingMethod OK send by Rust server, message=0".to_string(),
    ];
    let refused = |details: &str| {
        [
            format!("SimpleMethod UNAUTHENTICATED {details}"),
            format!("ServerStreamingMethod UNAUTHENTICATED {details}"),
        ]
    };
    for (channel, port) in [("tls", tls_port), ("local", plain_port)] {
        for (token, expected) in [
            (Some(TOKEN), ok.clone()),
            (Some("not-the-token"), refused(WRONG)),
            (None, refused(MISSING)),
        ] {
            let mut client = python::python_script_in(venv, stubs.path(), &script);
            client.args(["--target", &local(port).to_string(), "--channel", channel]);
            client.arg("--ca_file").arg(&certs.ca_cert);
            if let Some(token) = token {
                client.args(["--token", token]);
            }
            let done = run(client, CLIENT_RUN).expect("run bearer_client.py");
            let what = format!("grpcio over {channel}, token {token:?}");
            assert!(done.success(), "{what}:\n{}", done.dump());
            let lines: Vec<&str> = done.stdout.lines().collect();
            assert_eq!(lines, expected, "{what}:\n{}", done.dump());
            eprintln!("{what}: {lines:?}");
        }
    }
    tls_server.stop();
    plain_server.stop();
    // The server logged only the admitted calls (one per channel kind).
    let log = format!("{}{}", tls_server.stderr(), tls_server.stdout());
    assert_eq!(
        log.matches("SimpleMethod called by client(7)").count(),
        1,
        "{log}"
    );
}

fn demo_client(port: u16, token: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_demo-client"));
    cmd.args(["--addr", &local(port).to_string(), "--interval-ms", "10"])
        .args(["--wait-secs", "0"]);
    if let Some(token) = token {
        cmd.args(["--token", token]);
    }
    cmd
}

#[test]
fn demo_client_passes_with_its_token_and_is_refused_without() {
    let port = free_port();
    let _server = server(port, None);

    let done = run(demo_client(port, Some(TOKEN)), CLIENT_RUN).unwrap();
    assert!(done.success(), "{}", done.dump());
    for line in [
        "resp from server(1), the message=Rust server SimpleMethod Ok!!!!",
        "resp from server(1), the message=Rust server ClientStreamingMethod ok",
        "recv from server(1), message=send by Rust server, message=4",
        "recv from server(1), message=send by Rust server, message= 4",
    ] {
        assert!(
            done.stdout.contains(line),
            "missing {line:?}:\n{}",
            done.dump()
        );
    }

    for (token, message) in [(None, MISSING), (Some("not-the-token"), WRONG)] {
        let done = run(demo_client(port, token), CLIENT_RUN).unwrap();
        assert_eq!(
            done.status.and_then(|s| s.code()),
            Some(1),
            "{}",
            done.dump()
        );
        assert!(
            !done.stdout.contains("resp from server"),
            "a call got through:\n{}",
            done.dump()
        );
        let expected = format!("demo-client: call failed: UNAUTHENTICATED: {message}");
        assert!(
            done.stderr.contains(&expected),
            "token {token:?}: expected {expected:?}:\n{}",
            done.dump()
        );
    }
}
