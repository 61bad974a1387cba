//! `h2grpc` over TLS to the real `demo-server`: certificates generated at test time, the
//! server verified with `--cacert` and `--servername`, a client certificate with
//! `--cert`/`--key` for mutual TLS, and the failures when any of them is wrong.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use h2grpc_test_support::demo_process::{demo_proto, demo_server_binary};
use h2grpc_test_support::h2grpc;
use h2grpc_test_support::ports::{free_port, port_open};
use h2grpc_test_support::tls::{SERVER_HOST_OVERRIDE, TestCerts};

/// A `demo-server` over TLS, killed on drop.
struct TlsServer(std::process::Child);

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(certs: &TestCerts, mutual: bool) -> (TlsServer, String) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(demo_server_binary());
    cmd.args(["--quiet", "--addr", &addr, "--tls-cert"])
        .arg(&certs.server_cert)
        .arg("--tls-key")
        .arg(&certs.server_key)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if mutual {
        cmd.arg("--tls-client-ca").arg(&certs.ca_cert);
    }
    let server = TlsServer(cmd.spawn().expect("cannot start demo-server"));
    let deadline = Instant::now() + Duration::from_secs(15);
    while !port_open(addr.parse().unwrap()) {
        assert!(
            Instant::now() < deadline,
            "demo-server did not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (server, addr)
}

#[test]
fn tls_with_cacert_servername_and_client_certificates() {
    let certs = TestCerts::generate();
    let proto = demo_proto();
    let ca = certs.ca_cert.display().to_string();
    let call = [
        "--proto",
        proto.as_str(),
        "demo.GRPCDemo/SimpleMethod",
        "-d",
        "{}",
    ];

    let (_server, addr) = start(&certs, false);
    // Verified against the test CA; the certificate covers 127.0.0.1.
    let mut args = vec!["call", "--cacert", &ca, &addr];
    args.extend_from_slice(&call);
    let run = h2grpc!(&args, None);
    run.expect_code(0);
    assert_eq!(
        run.json()[0]["responseData"],
        "Rust server SimpleMethod Ok!!!!",
        "{}",
        run.dump()
    );

    // --servername picks the name to verify: one the certificate covers, one it does not.
    let name = SERVER_HOST_OVERRIDE.to_string();
    let mut args = vec!["call", "--cacert", &ca, "--servername", &name, &addr];
    args.extend_from_slice(&call);
    h2grpc!(&args, None).expect_code(0);
    let mut args = vec![
        "call",
        "--cacert",
        &ca,
        "--servername",
        "other.example",
        &addr,
    ];
    args.extend_from_slice(&call);
    let run = h2grpc!(&args, None);
    run.expect_code(1);
    assert!(
        run.stderr.contains("Failed to dial target host"),
        "{}",
        run.dump()
    );

    // The system's roots do not know the test CA.
    let mut args = vec!["call", &addr];
    args.extend_from_slice(&call);
    h2grpc!(&args, None).expect_code(1);
    // Plaintext to a TLS server fails to connect too.
    let mut args = vec!["call", "--plaintext", &addr];
    args.extend_from_slice(&call);
    h2grpc!(&args, None).expect_code(1);

    // Mutual TLS: with the client certificate, and without.
    let (_mutual, addr) = start(&certs, true);
    let cert = certs.client_cert.display().to_string();
    let key = certs.client_key.display().to_string();
    let mut args = vec![
        "call", "--cacert", &ca, "--cert", &cert, "--key", &key, &addr,
    ];
    args.extend_from_slice(&call);
    let run = h2grpc!(&args, None);
    run.expect_code(0);
    let args = vec![
        "health", "--cacert", &ca, "--cert", &cert, "--key", &key, &addr,
    ];
    // health over mutual TLS: SERVING from demo-server's health service.
    let run = h2grpc!(&args, None);
    run.expect_code(0);
    assert_eq!(run.stdout, "status: SERVING\n", "{}", run.dump());
    // Reflection over mutual TLS too.
    let args = vec![
        "list", "--cacert", &ca, "--cert", &cert, "--key", &key, &addr,
    ];
    let run = h2grpc!(&args, None);
    run.expect_code(0);
    assert!(run.stdout.starts_with("demo.GRPCDemo\n"), "{}", run.dump());
    let mut args = vec!["call", "--cacert", &ca, &addr];
    args.extend_from_slice(&call);
    let run = h2grpc!(&args, None);
    // Refused in the handshake (no connection: 1), or, under TLS 1.3, when the server's
    // alert arrives after the client's handshake is done (the call UNAVAILABLE: 64 + 14).
    assert!(matches!(run.code, Some(1) | Some(78)), "{}", run.dump());
    // --cert without --key is refused.
    let mut args = vec!["call", "--cacert", &ca, "--cert", &cert, &addr];
    args.extend_from_slice(&call);
    h2grpc!(&args, None).expect_code(1);
}
