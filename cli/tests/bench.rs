//! `h2grpc bench` against the real `demo-server`: unary calls (descriptors by reflection)
//! and server-streaming and client-streaming calls (descriptors from `--proto`) counted
//! exactly with `--total`, the JSON report's fields, the text report and progress line,
//! failures counted by status code (a server requiring a token), `-H` metadata sent with
//! every call, and the refusals that stop a run before it starts.

use std::time::Duration;

use h2grpc_test_support::demo_process::DemoServer;
use h2grpc_test_support::demo_process::{demo_proto, demo_server_binary};
use h2grpc_test_support::h2grpc;
use h2grpc_test_support::ports::{free_port, local};
use h2grpc_test_support::tool::{Run, with_timeout};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(120);

/// `demo.Response { server_id: 7, response_data: "Rust server SimpleMethod Ok!!!!" }`:
/// field 1 (2 bytes) and field 2 (2 + 31 bytes).
const SIMPLE_RESPONSE_BYTES: f64 = 35.0;

async fn server() -> DemoServer {
    DemoServer::start(demo_server_binary(), free_port(), 7).await
}

/// The JSON report of a run that must have succeeded.
#[track_caller]
fn json_report(run: &Run) -> Value {
    run.expect_code(0);
    let docs = run.json();
    assert_eq!(docs.len(), 1, "one report expected\n{}", run.dump());
    docs.into_iter().next().unwrap()
}

#[track_caller]
fn number(report: &Value, key: &str) -> f64 {
    report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number {key} in {report}"))
}

/// The fields of a run in which every call ended OK.
#[track_caller]
fn assert_all_ok(report: &Value, calls: f64) {
    assert_eq!(number(report, "calls"), calls, "{report}");
    assert_eq!(number(report, "failed_calls"), 0.0, "{report}");
    assert_eq!(report["errors"], json!({}), "{report}");
    for key in ["elapsed_s", "calls_per_s", "messages_per_s", "mb_per_s"] {
        assert!(number(report, key) > 0.0, "{key} is 0: {report}");
    }
    let latency = &report["latency_us"];
    let p = |q: &str| {
        latency[q]
            .as_f64()
            .unwrap_or_else(|| panic!("no latency {q}: {report}"))
    };
    assert!(p("p50") > 0.0, "{report}");
    assert!(p("p50") <= p("p90") && p("p90") <= p("p99"), "{report}");
    assert!(p("p99") <= p("p99_9") && p("p99_9") <= p("max"), "{report}");
    assert!(number(&report["cpu"], "us_per_call") > 0.0, "{report}");
    assert!(
        number(&report["cpu"], "user_s") + number(&report["cpu"], "system_s") > 0.0,
        "{report}"
    );
}

/// Messages (or bytes, with `mb`) per OK call, from the per-second rates (so give or take
/// a rounding error: the bounds allow 0.1% below the exact count).
fn per_call(report: &Value, key: &str) -> f64 {
    number(report, key) / number(report, "calls_per_s")
}

#[test]
fn unary_calls_through_reflection_are_counted_exactly() {
    with_timeout(LIMIT, async {
        let server = server().await;
        let addr = server.addr().to_string();
        let run = h2grpc!(
            &[
                "bench",
                "--plaintext",
                &addr,
                "demo.GRPCDemo/SimpleMethod",
                "-d",
                r#"{"client_id": 1, "request_data": "hi"}"#,
                "--connections",
                "2",
                "--concurrency",
                "4",
                "--total",
                "300",
                "--warmup",
                "0.2",
                "--json",
                "--quiet",
            ],
            None,
        );
        let report = json_report(&run);
        assert_all_ok(&report, 300.0);
        assert_eq!(report["kind"], "unary", "{report}");
        assert_eq!(report["service"], "demo.GRPCDemo", "{report}");
        assert_eq!(report["path"], "/demo.GRPCDemo/SimpleMethod", "{report}");
        assert_eq!(report["target"], addr.as_str(), "{report}");
        assert_eq!(report["total"], 300, "{report}");
        assert_eq!(report["connections"], 2, "{report}");
        assert_eq!(report["concurrency"], 4, "{report}");
        // client_id 1 (2 bytes) and request_data "hi" (4 bytes), encoded once.
        assert_eq!(report["request_bytes"], 6, "{report}");
        // One message each way per call; calls already in flight when the window opened
        // may add a few messages, never remove any.
        let out = per_call(&report, "sent_messages_per_s");
        let inn = per_call(&report, "received_messages_per_s");
        assert!((0.999..1.05).contains(&out), "{out} out per call: {report}");
        assert!((0.999..1.05).contains(&inn), "{inn} in per call: {report}");
        let bytes_in = per_call(&report, "received_mb_per_s") * 1e6;
        assert!(
            (SIMPLE_RESPONSE_BYTES * 0.999..SIMPLE_RESPONSE_BYTES * 1.05).contains(&bytes_in),
            "{bytes_in} response bytes per call: {report}"
        );
        assert!(
            run.stderr.is_empty(),
            "--quiet: no progress\n{}",
            run.dump()
        );
    });
}

#[test]
fn streaming_calls_from_proto_files_count_their_messages() {
    with_timeout(LIMIT, async {
        let server = server().await;
        let addr = server.addr().to_string();
        let proto = demo_proto();
        let base = [
            "bench",
            "--plaintext",
            "--proto",
            proto.as_str(),
            addr.as_str(),
        ];
        let bench = |method: &str, extra: &[&str]| {
            let mut args: Vec<&str> = base.to_vec();
            args.push(method);
            args.extend_from_slice(extra);
            args.extend_from_slice(&["--warmup", "0.1", "--json", "--quiet"]);
            h2grpc!(&args, None)
        };

        // The demo server answers five messages per server-streaming call.
        let run = bench(
            "demo.GRPCDemo/ServerStreamingMethod",
            &[
                "-d",
                r#"{"client_id": 2}"#,
                "--concurrency",
                "3",
                "--total",
                "60",
            ],
        );
        let report = json_report(&run);
        assert_all_ok(&report, 60.0);
        assert_eq!(report["kind"], "server-stream", "{report}");
        let inn = per_call(&report, "received_messages_per_s");
        assert!((4.995..5.5).contains(&inn), "{inn} in per call: {report}");

        // Two documents sent in turn, four requests per call.
        let run = bench(
            "demo.GRPCDemo.ClientStreamingMethod",
            &[
                "-d",
                r#"{"request_data": "a"} {"request_data": "bbbb"}"#,
                "--messages",
                "4",
                "--concurrency",
                "2",
                "--total",
                "40",
            ],
        );
        let report = json_report(&run);
        assert_all_ok(&report, 40.0);
        assert_eq!(report["kind"], "client-stream", "{report}");
        assert_eq!(report["messages_per_call"], 4, "{report}");
        // "a" is 3 bytes encoded, "bbbb" 6: 4.5 on average, rounded down.
        assert_eq!(report["request_bytes"], 4, "{report}");
        let out = per_call(&report, "sent_messages_per_s");
        assert!((3.996..4.5).contains(&out), "{out} out per call: {report}");
        let bytes_out = per_call(&report, "sent_mb_per_s") * 1e6;
        assert!(
            (18.0 * 0.999..18.0 * 1.25).contains(&bytes_out),
            "{bytes_out} request bytes per call (3 + 6 + 3 + 6 expected): {report}"
        );
    });
}

#[test]
fn failed_calls_are_counted_by_status_code_and_metadata_goes_with_every_call() {
    with_timeout(LIMIT, async {
        let server = DemoServer::start_with_args(
            demo_server_binary(),
            local(free_port()),
            7,
            &["--token", "sesame"],
        )
        .await;
        let addr = server.addr().to_string();
        let proto = demo_proto();
        let bench = |extra: &[&str]| {
            let mut args = vec![
                "bench",
                "--plaintext",
                "--proto",
                proto.as_str(),
                addr.as_str(),
                "demo.GRPCDemo/SimpleMethod",
                "--concurrency",
                "4",
                "--total",
                "40",
                "--warmup",
                "0",
                "--json",
                "--quiet",
            ];
            args.extend_from_slice(extra);
            h2grpc!(&args, None)
        };

        // No token: every call UNAUTHENTICATED, and the run itself still succeeds.
        let run = bench(&[]);
        let report = json_report(&run);
        assert_eq!(number(&report, "calls"), 0.0, "{report}");
        assert_eq!(number(&report, "failed_calls"), 40.0, "{report}");
        assert_eq!(report["errors"], json!({"UNAUTHENTICATED": 40}), "{report}");
        assert!(
            report["error_examples"]["UNAUTHENTICATED"]
                .as_str()
                .is_some_and(|m| m.contains("missing authorization metadata")),
            "{report}"
        );
        assert!(report["latency_us"].is_null(), "{report}");

        // A wrong token: still UNAUTHENTICATED, with the server's other message.
        let run = bench(&["-H", "authorization: Bearer nope"]);
        let report = json_report(&run);
        assert_eq!(report["errors"], json!({"UNAUTHENTICATED": 40}), "{report}");
        assert_eq!(
            report["error_examples"]["UNAUTHENTICATED"], "invalid bearer token",
            "{report}"
        );

        // The token in -H: sent with every call, so every call passes.
        let run = bench(&["-H", "authorization: Bearer sesame"]);
        assert_all_ok(&json_report(&run), 40.0);
    });
}

#[test]
fn the_text_report_follows_a_progress_line() {
    with_timeout(LIMIT, async {
        let server = server().await;
        let addr = server.addr().to_string();
        let run = h2grpc!(
            &[
                "bench",
                &addr,
                "demo.GRPCDemo/SimpleMethod",
                "--plaintext",
                "--duration",
                "1.3s",
                "--warmup",
                "0",
            ],
            None,
        );
        run.expect_code(0);
        let first = run.stdout.lines().next().unwrap_or("");
        assert_eq!(
            first,
            format!(
                "unary /demo.GRPCDemo/SimpleMethod (0 bytes per request) on {addr}: \
                 1 connection(s) x 1 in flight"
            ),
            "{}",
            run.dump()
        );
        for start in [
            "calls ",
            "messages ",
            "MB/s ",
            "latency us p50 ",
            "client CPU ",
        ] {
            assert!(
                run.stdout.lines().any(|l| l.starts_with(start)),
                "no line starting {start:?}\n{}",
                run.dump()
            );
        }
        assert!(
            run.stderr.contains("calls/s") && run.stderr.contains("errors 0"),
            "no progress line\n{}",
            run.dump()
        );
    });
}

#[test]
fn runs_that_cannot_start_exit_1_with_the_reason() {
    with_timeout(LIMIT, async {
        let proto = demo_proto();
        // No server is needed to refuse these: the descriptors come from the file.
        let port = free_port().to_string();
        let addr = format!("127.0.0.1:{port}");
        let bench = |method: &str, extra: &[&str]| {
            let mut args = vec![
                "bench",
                "--plaintext",
                "--proto",
                proto.as_str(),
                addr.as_str(),
            ];
            args.push(method);
            args.extend_from_slice(extra);
            h2grpc!(&args, None)
        };
        let run = bench("demo.GRPCDemo/SimpleMethod", &["-d", "{} {}"]);
        run.expect_code(1);
        assert!(run.stderr.contains("takes one request"), "{}", run.dump());
        let run = bench("demo.GRPCDemo/SimpleMethod", &["--messages", "0"]);
        run.expect_code(1);
        assert!(run.stderr.contains("--messages 0"), "{}", run.dump());
        let run = bench("demo.GRPCDemo/SimpleMethod", &["-d", r#"{"nope": 1}"#]);
        run.expect_code(1);
        assert!(
            run.stderr.contains("is not a demo.Request"),
            "{}",
            run.dump()
        );
        let run = bench("demo.GRPCDemo/Nope", &[]);
        run.expect_code(1);
        assert!(
            run.stderr
                .contains("does not include a method named \"Nope\""),
            "{}",
            run.dump()
        );
        // Nothing listens there.
        let run = bench("demo.GRPCDemo/SimpleMethod", &["--duration", "1"]);
        run.expect_code(1);
        assert!(run.stderr.contains("cannot connect"), "{}", run.dump());

        let run = h2grpc!(&["bench", "--help"], None);
        run.expect_code(0);
        for part in [
            "Examples:",
            "Exit status",
            "--connections",
            "--rate",
            "--json",
        ] {
            assert!(run.stdout.contains(part), "no {part:?}\n{}", run.dump());
        }
    });
}
