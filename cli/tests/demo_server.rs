//! `h2grpc` against the real `demo-server` binary, which serves `demo.GRPCDemo`,
//! `grpc.health.v1.Health` and server reflection (v1 and v1alpha) with h2grpc's own
//! services: descriptors from reflection (v1), from `--proto` (compiled in-process) and from
//! `--protoset` (made here with protox); `list`, `describe`, `call` of all four kinds with
//! `-d`, `-d @`, `-H` and `-v`; `health`; and the exit statuses of failures.

use std::time::Duration;

use h2grpc_test_support::demo_process::DemoServer;
use h2grpc_test_support::demo_process::{demo_proto, demo_server_binary};
use h2grpc_test_support::h2grpc;
use h2grpc_test_support::ports::free_port;
use h2grpc_test_support::process::TempDir;
use h2grpc_test_support::tool::with_timeout;
use prost::Message;

const LIMIT: Duration = Duration::from_secs(120);

async fn server() -> DemoServer {
    DemoServer::start(demo_server_binary(), free_port(), 7).await
}

/// A protoset of proto/demo.proto, as `protoc --include_imports -o` would write it.
fn protoset(dir: &TempDir) -> String {
    let set = protox::compile(
        [demo_proto()],
        [h2grpc_test_support::repo_root().join("proto")],
    )
    .unwrap();
    let path = dir.path().join("demo.protoset");
    std::fs::write(&path, set.encode_to_vec()).unwrap();
    path.display().to_string()
}

#[test]
fn list_and_describe_from_proto_and_protoset_files() {
    with_timeout(LIMIT, async {
        let server = server().await;
        let addr = server.addr().to_string();
        let dir = TempDir::new("cli-protoset");
        let protoset = protoset(&dir);
        let proto = demo_proto();
        for source in [
            ["--proto", proto.as_str()],
            ["--protoset", protoset.as_str()],
        ] {
            let run = h2grpc!(&["list", "--plaintext", source[0], source[1], &addr], None);
            run.expect_code(0);
            assert_eq!(run.stdout, "demo.GRPCDemo\n", "{}", run.dump());

            // Flags after the positional arguments too.
            let run = h2grpc!(
                &[
                    "list",
                    &addr,
                    "demo.GRPCDemo",
                    "--plaintext",
                    source[0],
                    source[1],
                ],
                None,
            );
            run.expect_code(0);
            assert_eq!(
                run.stdout,
                "demo.GRPCDemo.BidirectionalStreamingMethod\ndemo.GRPCDemo.ClientStreamingMethod\n\
                 demo.GRPCDemo.ServerStreamingMethod\ndemo.GRPCDemo.SimpleMethod\n",
                "{}",
                run.dump()
            );

            let run = h2grpc!(
                &[
                    "describe",
                    "--plaintext",
                    source[0],
                    source[1],
                    &addr,
                    "demo.GRPCDemo",
                ],
                None,
            );
            run.expect_code(0);
            assert!(
                run.stdout.starts_with("demo.GRPCDemo is a service:\n"),
                "{}",
                run.dump()
            );
            for line in [
                "service GRPCDemo {",
                "  rpc SimpleMethod ( .demo.Request ) returns ( .demo.Response );",
                "  rpc ClientStreamingMethod ( stream .demo.Request ) returns ( .demo.Response );",
                "  rpc ServerStreamingMethod ( .demo.Request ) returns ( stream .demo.Response );",
                "  rpc BidirectionalStreamingMethod ( stream .demo.Request ) returns ( stream .demo.Response );",
            ] {
                assert!(
                    run.stdout.lines().any(|l| l == line),
                    "missing {line:?}\n{}",
                    run.dump()
                );
            }

            let run = h2grpc!(
                &[
                    "describe",
                    "--plaintext",
                    source[0],
                    source[1],
                    &addr,
                    "demo.Request",
                ],
                None,
            );
            run.expect_code(0);
            assert!(
                run.stdout.ends_with(
                    "message Request {\n  int64 client_id = 1;\n  string request_data = 2;\n}\n"
                ),
                "{}",
                run.dump()
            );

            let run = h2grpc!(
                &[
                    "describe",
                    "--plaintext",
                    source[0],
                    source[1],
                    &addr,
                    "demo.Nope",
                ],
                None,
            );
            run.expect_code(1);
            assert!(
                run.stderr.contains("Symbol not found: demo.Nope"),
                "{}",
                run.dump()
            );
        }
        // --proto keeps the comments of the source.
        let run = h2grpc!(
            &[
                "describe",
                "--plaintext",
                "--proto",
                &proto,
                &addr,
                "demo.GRPCDemo.SimpleMethod",
            ],
            None,
        );
        run.expect_code(0);
        assert_eq!(
            run.stdout,
            "demo.GRPCDemo.SimpleMethod is a method:\n// Unary: one request, one response.\n\
             rpc SimpleMethod ( .demo.Request ) returns ( .demo.Response );\n",
            "{}",
            run.dump()
        );
    });
}

#[test]
fn call_all_four_kinds_with_inline_and_stdin_json() {
    with_timeout(LIMIT, async {
        let server = server().await;
        let addr = server.addr().to_string();
        let proto = demo_proto();
        let base = [
            "call",
            "--plaintext",
            "--proto",
            proto.as_str(),
            addr.as_str(),
        ];
        let with = |method: &str, extra: &[&str], stdin: Option<&str>| {
            let mut args: Vec<&str> = base.to_vec();
            args.push(method);
            args.extend_from_slice(extra);
            h2grpc!(&args, stdin)
        };

        let run = with(
            "demo.GRPCDemo/SimpleMethod",
            &["-d", r#"{"client_id": 3, "request_data": "hi"}"#],
            None,
        );
        run.expect_code(0);
        assert_eq!(
            run.json(),
            vec![
                serde_json::json!({"serverId": "7", "responseData": "Rust server SimpleMethod Ok!!!!"})
            ],
            "{}",
            run.dump()
        );

        let run = with("demo.GRPCDemo/ServerStreamingMethod", &["-d", "{}"], None);
        run.expect_code(0);
        let texts: Vec<String> = run
            .json()
            .iter()
            .map(|r| r["responseData"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            texts,
            (0..5)
                .map(|i| format!("send by Rust server, message={i}"))
                .collect::<Vec<_>>()
        );

        let stream = "{\"clientId\": 1, \"requestData\": \"a\"}\n{\"clientId\": 2, \"requestData\": \"b\"}\n";
        let run = with(
            "demo.GRPCDemo/ClientStreamingMethod",
            &["-d", "@"],
            Some(stream),
        );
        run.expect_code(0);
        assert_eq!(
            run.json()[0]["responseData"],
            "Rust server ClientStreamingMethod ok",
            "{}",
            run.dump()
        );

        // Several documents inline work for a client-streaming method too.
        let run = with(
            "demo.GRPCDemo/ClientStreamingMethod",
            &["-d", "{} {}", "-v"],
            None,
        );
        run.expect_code(0);
        assert!(
            run.stderr
                .contains("Sent 2 requests and received 1 response"),
            "{}",
            run.dump()
        );

        let run = with(
            "demo.GRPCDemo/BidirectionalStreamingMethod",
            &["-d", "@", "-v"],
            Some(stream),
        );
        run.expect_code(0);
        assert_eq!(run.json().len(), 5, "{}", run.dump());
        assert!(
            run.stderr
                .contains("Sent 2 requests and received 5 responses in "),
            "{}",
            run.dump()
        );

        // --emit-defaults prints fields at their default value.
        let run = with("demo.GRPCDemo/SimpleMethod", &["--emit-defaults"], None);
        run.expect_code(0);
        assert_eq!(run.json()[0]["serverId"], "7");
        let run = h2grpc!(
            &[
                "call",
                "--plaintext",
                "--proto",
                &proto,
                &addr,
                "demo.GRPCDemo/SimpleMethod",
                "-d",
                "{}",
            ],
            None,
        );
        run.expect_code(0);

        // -H with -v: the request metadata as sent, then headers and trailers.
        let run = with(
            "demo.GRPCDemo/SimpleMethod",
            &["-v", "-H", "x-user: ann", "-H", "token-bin: AAEC"],
            None,
        );
        run.expect_code(0);
        for part in [
            "Resolved method descriptor:\n// Unary: one request, one response.\nrpc SimpleMethod",
            "Request metadata to send:\ntoken-bin: AAEC\nx-user: ann\n",
            "Response headers received:",
            "Response trailers received:",
            "Sent 1 request and received 1 response in ",
        ] {
            assert!(
                run.stderr.contains(part),
                "missing {part:?}\n{}",
                run.dump()
            );
        }
        // Stdout holds only the response.
        assert_eq!(run.json().len(), 1, "{}", run.dump());
    });
}

#[test]
fn failures_exit_as_grpcurl_does() {
    with_timeout(LIMIT, async {
        let server = server().await;
        let addr = server.addr().to_string();
        let proto = demo_proto();

        // A method the descriptors lack: resolved locally, exit 1.
        let run = h2grpc!(
            &[
                "call",
                "--plaintext",
                "--proto",
                &proto,
                &addr,
                "demo.GRPCDemo/Nope",
            ],
            None,
        );
        run.expect_code(1);
        assert!(
            run.stderr
                .contains("service \"demo.GRPCDemo\" does not include a method named \"Nope\""),
            "{}",
            run.dump()
        );

        // A method the server lacks: the server's UNIMPLEMENTED, exit 64 + 12, on one line.
        let dir = TempDir::new("cli-missing");
        let missing = dir.path().join("missing.proto");
        std::fs::write(
            &missing,
            "syntax = \"proto3\";\npackage nope;\nmessage Empty {}\n\
             service Missing { rpc Get(Empty) returns (Empty); }\n",
        )
        .unwrap();
        let run = h2grpc!(
            &[
                "call",
                "--plaintext",
                "--proto",
                missing.to_str().unwrap(),
                &addr,
                "nope.Missing/Get",
            ],
            None,
        );
        run.expect_code(76);
        assert!(
            run.stderr
                .starts_with("ERROR: code = Unimplemented, message = "),
            "{}",
            run.dump()
        );
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.dump());

        // Bad JSON: exit 1 before any call.
        let run = h2grpc!(
            &[
                "call",
                "--plaintext",
                "--proto",
                &proto,
                &addr,
                "demo.GRPCDemo/SimpleMethod",
                "-d",
                "{\"nope\": 1}",
            ],
            None,
        );
        run.expect_code(1);
        assert!(
            run.stderr.contains("unrecognized field name 'nope'"),
            "{}",
            run.dump()
        );
        let run = h2grpc!(
            &[
                "call",
                "--plaintext",
                "--proto",
                &proto,
                &addr,
                "demo.GRPCDemo/SimpleMethod",
                "-d",
                "{} {}",
            ],
            None,
        );
        run.expect_code(1);

        // A bad document in the middle of `-d @` cancels a bidi call: exit 1.
        let run = h2grpc!(
            &[
                "call",
                "--plaintext",
                "--proto",
                &proto,
                &addr,
                "demo.GRPCDemo/BidirectionalStreamingMethod",
                "-d",
                "@",
            ],
            Some("{\"clientId\": 1}\n{\"clientId\": \"x\"}\n"),
        );
        run.expect_code(1);
        assert!(
            run.stderr.contains("request 2 is not a demo.Request"),
            "{}",
            run.dump()
        );

        // Bad arguments: exit 1.
        let run = h2grpc!(&["call", "--plaintext", &addr], None);
        run.expect_code(1);
        let run = h2grpc!(
            &[
                "call",
                "--plaintext",
                "--cacert",
                "x.pem",
                "--proto",
                &proto,
                &addr,
                "demo.GRPCDemo/SimpleMethod",
            ],
            None,
        );
        run.expect_code(1);
        assert!(
            run.stderr
                .contains("--cacert argument can only be used with TLS"),
            "{}",
            run.dump()
        );
        let run = h2grpc!(
            &[
                "call",
                "--plaintext",
                "-H",
                "no-colon",
                "--proto",
                &proto,
                &addr,
                "demo.GRPCDemo/SimpleMethod",
            ],
            None,
        );
        run.expect_code(1);

        // A deadline no server can meet: DEADLINE_EXCEEDED, exit 64 + 4. (A server that
        // sleeps past the deadline is in python_peer.rs.)
        let run = h2grpc!(
            &[
                "call",
                "--plaintext",
                "--proto",
                &proto,
                &addr,
                "demo.GRPCDemo/ServerStreamingMethod",
                "--timeout",
                "1us",
            ],
            None,
        );
        run.expect_code(68);
        assert!(
            run.stderr
                .starts_with("ERROR: code = DeadlineExceeded, message = "),
            "{}",
            run.dump()
        );
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.dump());
        assert!(run.elapsed < Duration::from_secs(20), "{}", run.dump());
        drop(server);

        // Nothing listening: exit 1, naming the target.
        let closed = format!("127.0.0.1:{}", free_port());
        let run = h2grpc!(
            &[
                "call",
                "--plaintext",
                "--proto",
                &proto,
                &closed,
                "demo.GRPCDemo/SimpleMethod",
            ],
            None,
        );
        run.expect_code(1);
        assert!(
            run.stderr
                .contains(&format!("Failed to dial target host \"{closed}\"")),
            "{}",
            run.dump()
        );
    });
}

/// What demo-server lists through reflection: its service, health and both reflections.
const REFLECTED_SERVICES: &str = "demo.GRPCDemo\ngrpc.health.v1.Health\n\
    grpc.reflection.v1.ServerReflection\ngrpc.reflection.v1alpha.ServerReflection\n";

#[test]
fn list_and_describe_through_reflection_v1() {
    with_timeout(LIMIT, async {
        let server = server().await;
        let addr = server.addr().to_string();

        // No --proto: reflection, and v1 is the version our server answers.
        let run = h2grpc!(&["list", "--plaintext", "-v", &addr], None);
        run.expect_code(0);
        assert_eq!(run.stdout, REFLECTED_SERVICES, "{}", run.dump());
        assert!(
            run.stderr
                .contains("using grpc.reflection.v1.ServerReflection\n"),
            "{}",
            run.dump()
        );

        let run = h2grpc!(&["list", "--plaintext", &addr, "demo.GRPCDemo"], None);
        run.expect_code(0);
        assert_eq!(
            run.stdout,
            "demo.GRPCDemo.BidirectionalStreamingMethod\ndemo.GRPCDemo.ClientStreamingMethod\n\
             demo.GRPCDemo.ServerStreamingMethod\ndemo.GRPCDemo.SimpleMethod\n",
            "{}",
            run.dump()
        );
        let run = h2grpc!(
            &["list", "--plaintext", &addr, "grpc.health.v1.Health"],
            None,
        );
        run.expect_code(0);
        assert!(
            run.stdout.starts_with("grpc.health.v1.Health.Check\n"),
            "{}",
            run.dump()
        );

        let run = h2grpc!(&["describe", "--plaintext", &addr, "demo.GRPCDemo"], None);
        run.expect_code(0);
        assert_eq!(
            run.stdout,
            "demo.GRPCDemo is a service:\n\
             service GRPCDemo {\n\
             \x20 rpc SimpleMethod ( .demo.Request ) returns ( .demo.Response );\n\
             \x20 rpc ClientStreamingMethod ( stream .demo.Request ) returns ( .demo.Response );\n\
             \x20 rpc ServerStreamingMethod ( .demo.Request ) returns ( stream .demo.Response );\n\
             \x20 rpc BidirectionalStreamingMethod ( stream .demo.Request ) returns ( stream .demo.Response );\n\
             }\n",
            "{}",
            run.dump()
        );

        for (symbol, expected) in [
            (
                "demo.Request",
                "demo.Request is a message:\n\
                 message Request {\n  int64 client_id = 1;\n  string request_data = 2;\n}\n",
            ),
            (
                "demo.Response",
                "demo.Response is a message:\n\
                 message Response {\n  int64 server_id = 1;\n  string response_data = 2;\n}\n",
            ),
            (
                "demo.GRPCDemo.ServerStreamingMethod",
                "demo.GRPCDemo.ServerStreamingMethod is a method:\n\
                 rpc ServerStreamingMethod ( .demo.Request ) returns ( stream .demo.Response );\n",
            ),
            (
                "demo.Request.client_id",
                "demo.Request.client_id is a field:\nint64 client_id = 1;\n",
            ),
        ] {
            let run = h2grpc!(&["describe", "--plaintext", &addr, symbol], None);
            run.expect_code(0);
            assert_eq!(run.stdout, expected, "{}", run.dump());
        }

        // The health service's types come through reflection too (its own file).
        let run = h2grpc!(
            &[
                "describe",
                "--plaintext",
                &addr,
                "grpc.health.v1.HealthCheckResponse.ServingStatus",
            ],
            None,
        );
        run.expect_code(0);
        assert!(
            run.stdout
                .starts_with("grpc.health.v1.HealthCheckResponse.ServingStatus is an enum:\n"),
            "{}",
            run.dump()
        );
        assert!(run.stdout.contains("  SERVING = 1;\n"), "{}", run.dump());

        // No symbol: every listed service.
        let run = h2grpc!(&["describe", "--plaintext", &addr], None);
        run.expect_code(0);
        for service in REFLECTED_SERVICES.lines() {
            assert!(
                run.stdout.contains(&format!("{service} is a service:\n")),
                "missing {service}\n{}",
                run.dump()
            );
        }

        // An unknown symbol: the server's NOT_FOUND, exit 1 as grpcurl.
        let run = h2grpc!(&["describe", "--plaintext", &addr, "demo.Nope"], None);
        run.expect_code(1);
        assert!(
            run.stderr
                .contains("Failed to resolve symbol \"demo.Nope\""),
            "{}",
            run.dump()
        );
        let run = h2grpc!(&["list", "--plaintext", &addr, "demo.Nope"], None);
        run.expect_code(1);
    });
}

#[test]
fn call_all_four_kinds_through_reflection_v1() {
    with_timeout(LIMIT, async {
        let server = server().await;
        let addr = server.addr().to_string();
        let call = |method: &str, extra: &[&str], stdin: Option<&str>| {
            let mut args = vec!["call", "--plaintext", addr.as_str(), method];
            args.extend_from_slice(extra);
            h2grpc!(&args, stdin)
        };

        let run = call(
            "demo.GRPCDemo/SimpleMethod",
            &["-v", "-d", r#"{"clientId": 3, "requestData": "hi"}"#],
            None,
        );
        run.expect_code(0);
        assert_eq!(
            run.json(),
            vec![
                serde_json::json!({"serverId": "7", "responseData": "Rust server SimpleMethod Ok!!!!"})
            ],
            "{}",
            run.dump()
        );
        for part in [
            "using grpc.reflection.v1.ServerReflection\n",
            "Resolved method descriptor:\nrpc SimpleMethod ( .demo.Request ) returns ( .demo.Response );\n",
            "Sent 1 request and received 1 response in ",
        ] {
            assert!(
                run.stderr.contains(part),
                "missing {part:?}\n{}",
                run.dump()
            );
        }

        let stream = "{\"clientId\": 1, \"requestData\": \"a\"}\n{\"clientId\": 2, \"requestData\": \"b\"}\n";
        let run = call(
            "demo.GRPCDemo/ClientStreamingMethod",
            &["-d", "@", "-v"],
            Some(stream),
        );
        run.expect_code(0);
        assert_eq!(
            run.json(),
            vec![
                serde_json::json!({"serverId": "7", "responseData": "Rust server ClientStreamingMethod ok"})
            ],
            "{}",
            run.dump()
        );
        assert!(
            run.stderr
                .contains("Sent 2 requests and received 1 response in "),
            "{}",
            run.dump()
        );

        let run = call(
            "demo.GRPCDemo/ServerStreamingMethod",
            &["-d", r#"{"clientId": 4}"#],
            None,
        );
        run.expect_code(0);
        let expected: Vec<serde_json::Value> = (0..5)
            .map(|i| {
                serde_json::json!({"serverId": "7", "responseData": format!("send by Rust server, message={i}")})
            })
            .collect();
        assert_eq!(run.json(), expected, "{}", run.dump());

        let run = call(
            "demo.GRPCDemo/BidirectionalStreamingMethod",
            &["-d", "@", "-v"],
            Some(stream),
        );
        run.expect_code(0);
        assert_eq!(run.json().len(), 5, "{}", run.dump());
        assert!(
            run.stderr
                .contains("Sent 2 requests and received 5 responses in "),
            "{}",
            run.dump()
        );

        // A method reflection does not know: exit 1 before any call.
        let run = call("demo.GRPCDemo/Nope", &[], None);
        run.expect_code(1);
        assert!(
            run.stderr
                .contains("service \"demo.GRPCDemo\" does not include a method named \"Nope\""),
            "{}",
            run.dump()
        );
        let run = call("nope.Missing/Get", &[], None);
        run.expect_code(1);
    });
}

#[test]
fn health_exits_as_grpc_health_probe() {
    with_timeout(LIMIT, async {
        let server = server().await;
        let addr = server.addr().to_string();
        for service in ["", "demo.GRPCDemo"] {
            let run = h2grpc!(&["health", "--plaintext", &addr, service], None);
            run.expect_code(0);
            assert_eq!(run.stdout, "status: SERVING\n", "{}", run.dump());
        }
        let run = h2grpc!(&["health", "--plaintext", &addr], None);
        run.expect_code(0);
        assert_eq!(run.stdout, "status: SERVING\n", "{}", run.dump());

        // An unknown service: NOT_FOUND is an RPC failure for grpc_health_probe (exit 3,
        // `error: health rpc failed: rpc error: code = NotFound desc = ...`).
        let run = h2grpc!(&["health", "--plaintext", &addr, "demo.Unknown"], None);
        run.expect_code(3);
        assert!(run.stdout.is_empty(), "{}", run.dump());
        assert!(
            run.stderr
                .starts_with("error: health rpc failed: rpc error: code = NotFound desc = "),
            "{}",
            run.dump()
        );
        assert!(run.stderr.contains("demo.Unknown"), "{}", run.dump());
        drop(server);

        // The server gone: a connection failure, exit 2.
        let run = h2grpc!(&["health", "--plaintext", &addr], None);
        run.expect_code(2);
    });
}

#[test]
fn help_documents_every_subcommand_and_the_exit_statuses() {
    let run = h2grpc!(&["--help"], None);
    run.expect_code(0);
    assert!(run.stdout.contains("64 + N"), "{}", run.dump());
    for sub in ["list", "describe", "call", "health"] {
        let run = h2grpc!(&[sub, "--help"], None);
        run.expect_code(0);
        assert!(run.stdout.contains("Examples:"), "{}", run.dump());
        assert!(run.stdout.contains("Exit status"), "{}", run.dump());
    }
}
