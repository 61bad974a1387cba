//! `h2grpc` against a grpcio server (tests/peers/python/cli_peer_server.py): reflection
//! (grpcio-reflection, v1 and the fallback to v1alpha) for list, describe and call, and
//! grpcio-health-checking's servicer for `health` and its grpc_health_probe exit statuses.

use std::path::Path;
use std::time::Duration;

use h2grpc_test_support::demo_process::demo_proto;
use h2grpc_test_support::h2grpc;
use h2grpc_test_support::ports::free_port;
use h2grpc_test_support::process::Process;
use h2grpc_test_support::python;

/// The peer server with `--reflection MODE`, or `None` when Python is missing (and
/// H2GRPC_SKIP_MISSING_PEERS=1 allows that).
fn peer(
    test: &str,
    mode: &str,
    extra: &[&str],
) -> Option<(Process, String, h2grpc_test_support::process::TempDir)> {
    let venv = python::venv(test)?;
    let stubs = python::generate_proto_stubs(
        venv,
        &h2grpc_test_support::repo_root().join("proto"),
        &["demo.proto"],
    );
    let script = python::python_peers_dir().join("cli_peer_server.py");
    let mut cmd = python::python_script(venv, &stubs, Path::new(&script));
    cmd.args(["--port", "0", "--reflection", mode]).args(extra);
    let mut server =
        Process::spawn("cli_peer_server.py", cmd).expect("cannot start cli_peer_server.py");
    let port = server.wait_for_listening(Duration::from_secs(30));
    Some((server, format!("127.0.0.1:{port}"), stubs))
}

#[test]
fn reflection_lists_describes_and_calls_on_v1_and_on_the_v1alpha_fallback() {
    for (mode, version) in [
        ("both", "grpc.reflection.v1.ServerReflection"),
        ("v1alpha", "grpc.reflection.v1alpha.ServerReflection"),
    ] {
        let Some((_server, addr, _stubs)) = peer("reflection", mode, &[]) else {
            return;
        };
        let run = h2grpc!(&["list", "--plaintext", "-v", &addr], None);
        run.expect_code(0);
        assert_eq!(
            run.stdout,
            "demo.GRPCDemo\ngrpc.health.v1.Health\ngrpc.reflection.v1alpha.ServerReflection\n",
            "{}",
            run.dump()
        );
        assert!(
            run.stderr.contains(&format!("using {version}")),
            "{}",
            run.dump()
        );

        let run = h2grpc!(
            &["list", "--plaintext", &addr, "grpc.health.v1.Health"],
            None,
        );
        run.expect_code(0);
        assert!(
            run.stdout.contains("grpc.health.v1.Health.Check\n"),
            "{}",
            run.dump()
        );

        // A method and a nested enum: grpcio finds only top-level symbols, so these go
        // through their service and message.
        let run = h2grpc!(
            &[
                "describe",
                "--plaintext",
                &addr,
                "demo.GRPCDemo.ServerStreamingMethod",
            ],
            None,
        );
        run.expect_code(0);
        assert_eq!(
            run.stdout,
            "demo.GRPCDemo.ServerStreamingMethod is a method:\n\
             rpc ServerStreamingMethod ( .demo.Request ) returns ( stream .demo.Response );\n",
            "{}",
            run.dump()
        );
        let run = h2grpc!(
            &[
                "describe",
                "--plaintext",
                &addr,
                "grpc.health.v1.HealthCheckResponse",
            ],
            None,
        );
        run.expect_code(0);
        for line in [
            "message HealthCheckResponse {",
            "  enum ServingStatus {",
            "    NOT_SERVING = 2;",
        ] {
            assert!(
                run.stdout.lines().any(|l| l == line),
                "missing {line:?}\n{}",
                run.dump()
            );
        }
        let run = h2grpc!(&["describe", "--plaintext", &addr, "demo.Missing"], None);
        run.expect_code(1);
        assert!(
            run.stderr
                .contains("Failed to resolve symbol \"demo.Missing\""),
            "{}",
            run.dump()
        );

        // Calls, with the descriptors from reflection.
        let run = h2grpc!(
            &[
                "call",
                "--plaintext",
                &addr,
                "demo.GRPCDemo/SimpleMethod",
                "-d",
                r#"{"requestData": "x"}"#,
                "-v",
                "-H",
                "x-user: ann",
                "-H",
                "tok-bin: AAEC",
            ],
            None,
        );
        run.expect_code(0);
        assert_eq!(
            run.json(),
            vec![serde_json::json!({"serverId": "99", "responseData": "python: x"})]
        );
        for part in [
            "Response headers received:\necho-tok-bin: AAEC\necho-x-user: ann\n",
            "Response trailers received:\nx-trailer: done\n",
        ] {
            assert!(
                run.stderr.contains(part),
                "missing {part:?}\n{}",
                run.dump()
            );
        }

        let run = h2grpc!(
            &[
                "call",
                "--plaintext",
                &addr,
                "demo.GRPCDemo/ClientStreamingMethod",
                "-d",
                "@",
            ],
            Some("{\"requestData\": \"a\"}\n{\"requestData\": \"b\"}\n{\"requestData\": \"c\"}"),
        );
        run.expect_code(0);
        assert_eq!(
            run.json()[0]["responseData"],
            "python got 3: a,b,c",
            "{}",
            run.dump()
        );

        let run = h2grpc!(
            &[
                "call",
                "--plaintext",
                &addr,
                "demo.GRPCDemo/ServerStreamingMethod",
                "-d",
                "{}",
            ],
            None,
        );
        run.expect_code(0);
        assert_eq!(run.json().len(), 3, "{}", run.dump());

        let run = h2grpc!(
            &[
                "call",
                "--plaintext",
                &addr,
                "demo.GRPCDemo/BidirectionalStreamingMethod",
                "-d",
                "@",
            ],
            Some("{\"requestData\": \"one\"} {\"requestData\": \"two\"}"),
        );
        run.expect_code(0);
        let echoes: Vec<_> = run
            .json()
            .iter()
            .map(|r| r["responseData"].clone())
            .collect();
        assert_eq!(
            echoes,
            vec!["python echo: one", "python echo: two"],
            "{}",
            run.dump()
        );

        // The server's own errors: its code, 64 + code.
        let run = h2grpc!(
            &[
                "call",
                "--plaintext",
                &addr,
                "demo.GRPCDemo/SimpleMethod",
                "-d",
                r#"{"requestData": "fail"}"#,
            ],
            None,
        );
        run.expect_code(64 + 9);
        assert_eq!(
            run.stderr,
            "ERROR: code = FailedPrecondition, message = asked to fail\n",
            "{}",
            run.dump()
        );
        let run = h2grpc!(
            &[
                "call",
                "--plaintext",
                &addr,
                "demo.GRPCDemo/SimpleMethod",
                "-d",
                r#"{"requestData": "sleep"}"#,
                "--timeout",
                "300ms",
            ],
            None,
        );
        run.expect_code(64 + 4);
        assert!(
            run.stderr
                .starts_with("ERROR: code = DeadlineExceeded, message = ")
                && run.stderr.lines().count() == 1,
            "{}",
            run.dump()
        );
        assert!(
            run.elapsed < Duration::from_secs(3),
            "the deadline did not end the call: {}",
            run.dump()
        );
    }
}

#[test]
fn reflection_absent_is_reported() {
    let Some((_server, addr, _stubs)) = peer("reflection_absent", "none", &["--no-health"]) else {
        return;
    };
    let run = h2grpc!(&["list", "--plaintext", &addr], None);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("Server does not support the reflection API"),
        "{}",
        run.dump()
    );
    // Nor health: grpc_health_probe's RPC failure, exit 3, naming the protocol.
    let run = h2grpc!(&["health", "--plaintext", &addr], None);
    run.expect_code(3);
    assert_eq!(
        run.stderr,
        "error: this server does not implement the grpc health protocol (grpc.health.v1.Health)\n",
        "{}",
        run.dump()
    );
    // --proto still works against it.
    let proto = demo_proto();
    let run = h2grpc!(
        &[
            "call",
            "--plaintext",
            "--proto",
            &proto,
            &addr,
            "demo.GRPCDemo/SimpleMethod",
            "-d",
            r#"{"requestData": "p"}"#,
        ],
        None,
    );
    run.expect_code(0);
    assert_eq!(run.json()[0]["responseData"], "python: p", "{}", run.dump());
}

#[test]
fn health_exits_as_grpc_health_probe() {
    let Some((_server, addr, _stubs)) = peer("health", "both", &[]) else {
        return;
    };
    for (service, code, out) in [
        ("", 0, "status: SERVING\n"),
        ("demo.GRPCDemo", 0, "status: SERVING\n"),
    ] {
        let run = h2grpc!(&["health", "--plaintext", &addr, service], None);
        run.expect_code(code);
        assert_eq!(run.stdout, out, "{}", run.dump());
    }
    let run = h2grpc!(&["health", "--plaintext", &addr, "demo.Stopped"], None);
    run.expect_code(4);
    assert_eq!(
        run.stderr,
        "service unhealthy (responded with \"NOT_SERVING\")\n",
        "{}",
        run.dump()
    );

    // grpcio's servicer answers NOT_FOUND for a service it does not know: an RPC failure.
    let run = h2grpc!(&["health", "--plaintext", &addr, "demo.Unknown"], None);
    run.expect_code(3);
    assert!(
        run.stderr.contains("error: health rpc failed"),
        "{}",
        run.dump()
    );
    assert!(
        run.stderr.contains("rpc error: code = NotFound desc = "),
        "{}",
        run.dump()
    );

    let closed = format!("127.0.0.1:{}", free_port());
    let run = h2grpc!(&["health", "--plaintext", &closed], None);
    run.expect_code(2);
    assert!(
        run.stderr
            .contains(&format!("Failed to dial target host \"{closed}\"")),
        "{}",
        run.dump()
    );

    let run = h2grpc!(&["health", "--plaintext"], None);
    run.expect_code(1);
    let run = h2grpc!(&["health", "--plaintext", &addr, "--timeout", "soon"], None);
    run.expect_code(1);
}
