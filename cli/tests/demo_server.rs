//! `h2grpc` against the real `demo-server` binary (no reflection there): descriptors from
//! `--proto` (compiled in-process) and `--protoset` (made here with protox), `list`,
//! `describe`, `call` of all four kinds with `-d`, `-d @`, `-H` and `-v`, and the exit
//! statuses of failures.

mod common;

use std::time::Duration;

use common::{demo_proto, demo_server_binary, h2grpc, with_timeout};
use h2grpc_test_support::demo_process::DemoServer;
use h2grpc_test_support::ports::free_port;
use h2grpc_test_support::process::TempDir;
use prost::Message;

const LIMIT: Duration = Duration::from_secs(120);

async fn server() -> DemoServer {
    DemoServer::start(demo_server_binary(), free_port(), 7).await
}

/// A protoset of proto/demo.proto, as `protoc --include_imports -o` would write it.
fn protoset(dir: &TempDir) -> String {
    let set = protox::compile([demo_proto()], [common::repo_root().join("proto")]).unwrap();
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
            let run = h2grpc(&["list", "--plaintext", source[0], source[1], &addr], None);
            run.expect_code(0);
            assert_eq!(run.stdout, "demo.GRPCDemo\n", "{}", run.dump());

            // Flags after the positional arguments too.
            let run = h2grpc(
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

            let run = h2grpc(
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

            let run = h2grpc(
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

            let run = h2grpc(
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
        let run = h2grpc(
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
            h2grpc(&args, stdin)
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
        let run = h2grpc(
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
        let run = h2grpc(
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

        // A method the server lacks: the server's UNIMPLEMENTED, exit 64 + 12.
        let health = common::repo_root()
            .join("cli/proto/grpc/health/v1/health.proto")
            .display()
            .to_string();
        let run = h2grpc(
            &[
                "call",
                "--plaintext",
                "--proto",
                &health,
                &addr,
                "grpc.health.v1.Health/Check",
            ],
            None,
        );
        run.expect_code(76);
        assert!(
            run.stderr
                .starts_with("ERROR:\n  Code: Unimplemented\n  Message: "),
            "{}",
            run.dump()
        );

        // health on a server without grpc.health.v1: an RPC failure for grpc_health_probe.
        let run = h2grpc(&["health", "--plaintext", &addr], None);
        run.expect_code(3);
        assert!(
            run.stderr
                .contains("does not implement the grpc health protocol"),
            "{}",
            run.dump()
        );

        // Bad JSON: exit 1 before any call.
        let run = h2grpc(
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
        let run = h2grpc(
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
        let run = h2grpc(
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

        // Reflection is not served by demo-server: neither v1 nor v1alpha.
        let run = h2grpc(&["list", "--plaintext", &addr], None);
        run.expect_code(1);
        assert!(
            run.stderr
                .contains("Server does not support the reflection API"),
            "{}",
            run.dump()
        );

        // Bad arguments: exit 1.
        let run = h2grpc(&["call", "--plaintext", &addr], None);
        run.expect_code(1);
        let run = h2grpc(
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
        let run = h2grpc(
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
        let run = h2grpc(
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
            run.stderr.starts_with("ERROR:\n  Code: DeadlineExceeded\n"),
            "{}",
            run.dump()
        );
        assert!(run.elapsed < Duration::from_secs(20), "{}", run.dump());
        drop(server);

        // Nothing listening: exit 1, naming the target.
        let closed = format!("127.0.0.1:{}", free_port());
        let run = h2grpc(
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

#[test]
fn help_documents_every_subcommand_and_the_exit_statuses() {
    let run = h2grpc(&["--help"], None);
    run.expect_code(0);
    assert!(run.stdout.contains("64 + N"), "{}", run.dump());
    for sub in ["list", "describe", "call", "health"] {
        let run = h2grpc(&[sub, "--help"], None);
        run.expect_code(0);
        assert!(run.stdout.contains("Examples:"), "{}", run.dump());
        assert!(run.stdout.contains("Exit status"), "{}", run.dump());
    }
}
