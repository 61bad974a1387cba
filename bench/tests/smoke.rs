//! The load generator against our server, briefly, for each call kind: calls succeed and the
//! figures come out (the JSON report parsed). Nothing here is timed pass/fail.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream;
use h2grpc::{Request, Response, ResponseStream, Server, Status, Streaming};
use h2grpc_demo::pb::grpc_demo_server::{GrpcDemo, GrpcDemoServer};
use h2grpc_demo::pb::{Request as DemoRequest, Response as DemoResponse};
use h2grpc_test_support::process::run;
use serde_json::Value;

/// Longest a short run may take on a loaded machine before it counts as hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// demo.GRPCDemo as server.py answers it: one reply, or five for the streaming methods.
struct Demo;

fn reply(text: &str) -> DemoResponse {
    DemoResponse {
        server_id: 1,
        response_data: text.to_string(),
    }
}

impl GrpcDemo for Demo {
    async fn simple_method(
        &self,
        _request: Request<DemoRequest>,
    ) -> Result<Response<DemoResponse>, Status> {
        Ok(Response::new(reply("SimpleMethod Ok")))
    }

    async fn client_streaming_method(
        &self,
        request: Request<Streaming<DemoRequest>>,
    ) -> Result<Response<DemoResponse>, Status> {
        let mut requests = request.into_message();
        while requests.message().await?.is_some() {}
        Ok(Response::new(reply("ClientStreamingMethod ok")))
    }

    async fn server_streaming_method(
        &self,
        _request: Request<DemoRequest>,
    ) -> Result<Response<ResponseStream<DemoResponse>>, Status> {
        let responses: Vec<_> = (0..5).map(|_| Ok(reply("message"))).collect();
        Ok(Response::new(Box::pin(stream::iter(responses))))
    }

    async fn bidirectional_streaming_method(
        &self,
        request: Request<Streaming<DemoRequest>>,
    ) -> Result<Response<ResponseStream<DemoResponse>>, Status> {
        let mut requests = request.into_message();
        let reader =
            tokio::spawn(async move { while let Ok(Some(_)) = requests.message().await {} });
        let responses: Vec<_> = (0..5).map(|_| Ok(reply("message"))).collect();
        let end = stream::once(async move {
            let _ = reader.await;
        })
        .filter_map(|()| async { None });
        Ok(Response::new(Box::pin(stream::iter(responses).chain(end))))
    }
}

/// Our server on a free port, on a runtime of its own that lives as long as the test.
fn start_server() -> (tokio::runtime::Runtime, SocketAddr) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listening = runtime
        .block_on(
            Server::new()
                .add_service(GrpcDemoServer::new(Demo))
                .bind("127.0.0.1:0"),
        )
        .expect("bind");
    let addr = listening.local_addrs()[0];
    runtime.spawn(async move {
        let _ = listening.serve_with_shutdown(std::future::pending()).await;
    });
    (runtime, addr)
}

/// Runs the generator with `args` and returns its JSON report and its stderr.
fn bench(addr: SocketAddr, args: &[&str]) -> (Value, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_h2grpc-bench"));
    cmd.arg("--addr")
        .arg(addr.to_string())
        .arg("--json")
        .args(args);
    let done = run(cmd, RUN_TIMEOUT).expect("spawn h2grpc-bench");
    assert!(done.success(), "h2grpc-bench failed\n{}", done.dump());
    let report: Value = serde_json::from_str(done.stdout.trim())
        .unwrap_or_else(|e| panic!("the report is not JSON ({e})\n{}", done.dump()));
    (report, done.stderr)
}

fn number(report: &Value, key: &str) -> f64 {
    report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number {key} in {report}"))
}

/// The figures every successful run must have.
fn assert_figures(report: &Value, kind: &str) {
    assert_eq!(report["kind"], kind, "{report}");
    assert!(number(report, "calls") > 0.0, "no call ended OK: {report}");
    assert_eq!(number(report, "failed_calls"), 0.0, "{report}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    for key in ["calls_per_s", "messages_per_s", "mb_per_s", "elapsed_s"] {
        assert!(number(report, key) > 0.0, "{key} is 0: {report}");
    }
    let latency = &report["latency_us"];
    let p = |q: &str| {
        latency[q]
            .as_f64()
            .unwrap_or_else(|| panic!("no {q}: {report}"))
    };
    assert!(p("p50") > 0.0, "{report}");
    assert!(p("p50") <= p("p90") && p("p90") <= p("p99"), "{report}");
    assert!(p("p99") <= p("p99_9") && p("p99_9") <= p("max"), "{report}");
    assert!(number(&report["cpu"], "user_s") + number(&report["cpu"], "system_s") > 0.0);
    assert!(number(&report["cpu"], "us_per_call") > 0.0, "{report}");
}

#[test]
fn each_call_kind_succeeds_and_reports_its_figures() {
    let (_runtime, addr) = start_server();
    for kind in ["unary", "client-stream", "server-stream", "bidi"] {
        let (report, stderr) = bench(
            addr,
            &[
                "--kind",
                kind,
                "--connections",
                "2",
                "--concurrency",
                "2",
                "--messages",
                "5",
                "--warmup",
                "0.2",
                "--duration",
                "1.5",
            ],
        );
        assert_figures(&report, kind);
        assert!(
            stderr.contains("calls/s"),
            "no progress line on stderr for {kind}:\n{stderr}"
        );
        let calls = number(&report, "calls");
        let ratio = |key: &str| number(&report, key) / number(&report, "calls_per_s");
        // Each call carries its kind's messages; the counts include calls still in flight
        // when the window closed, so they may run a little over.
        let (out, inn) = match kind {
            "unary" => (1.0, 1.0),
            "client-stream" => (5.0, 1.0),
            "server-stream" => (1.0, 5.0),
            _ => (5.0, 5.0),
        };
        assert!(
            ratio("sent_messages_per_s") >= out,
            "{kind}: {calls} calls: {report}"
        );
        assert!(
            ratio("received_messages_per_s") >= inn * 0.99,
            "{kind}: {report}"
        );
    }
}

#[test]
fn total_counts_exactly_that_many_calls() {
    let (_runtime, addr) = start_server();
    let (report, _) = bench(
        addr,
        &[
            "--total",
            "300",
            "--concurrency",
            "8",
            "--warmup",
            "0.1",
            "--quiet",
        ],
    );
    assert_figures(&report, "unary");
    assert_eq!(number(&report, "calls"), 300.0, "{report}");
}

#[test]
fn open_loop_holds_the_rate_asked_for() {
    let (_runtime, addr) = start_server();
    let (report, _) = bench(
        addr,
        &[
            "--rate",
            "200",
            "--concurrency",
            "4",
            "--threads",
            "2",
            "--connections",
            "2",
            "--warmup",
            "0.2",
            "--duration",
            "2",
            "--quiet",
        ],
    );
    assert_figures(&report, "unary");
    // 200 calls/s for 2 s: the schedule, not the server, sets the count (give or take the
    // calls at the edges of the window).
    let calls = number(&report, "calls");
    assert!((380.0..=420.0).contains(&calls), "{calls} calls: {report}");
}

#[test]
fn failed_calls_are_counted_by_status_code() {
    let (_runtime, addr) = start_server();
    // The demo server has no grpc.testing.TestService.
    let (report, _) = bench(
        addr,
        &[
            "--service",
            "test",
            "--total",
            "20",
            "--warmup",
            "0",
            "--quiet",
        ],
    );
    assert_eq!(number(&report, "calls"), 0.0, "{report}");
    assert_eq!(number(&report, "failed_calls"), 20.0, "{report}");
    assert_eq!(report["errors"]["UNIMPLEMENTED"], 20, "{report}");
    assert!(report["latency_us"].is_null(), "{report}");
}

#[test]
fn idle_connections_are_held_without_calls() {
    let (_runtime, addr) = start_server();
    let (report, _) = bench(
        addr,
        &[
            "--connections",
            "20",
            "--concurrency",
            "0",
            "--duration",
            "0.5",
            "--warmup",
            "0",
            "--quiet",
        ],
    );
    assert_eq!(number(&report, "connections"), 20.0, "{report}");
    assert_eq!(number(&report, "calls"), 0.0, "{report}");
    assert_eq!(number(&report, "failed_calls"), 0.0, "{report}");
}

#[test]
fn an_unreachable_server_fails_the_run_with_a_message() {
    let port = h2grpc_test_support::ports::free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_h2grpc-bench"));
    cmd.args(["--addr", &format!("127.0.0.1:{port}"), "--duration", "1"]);
    let done = run(cmd, RUN_TIMEOUT).expect("spawn h2grpc-bench");
    assert!(!done.success(), "{}", done.dump());
    assert!(done.stderr.contains("cannot connect"), "{}", done.dump());
}

#[test]
fn message_interval_spaces_the_requests_of_a_stream() {
    let (_runtime, addr) = start_server();
    let (report, _) = bench(
        addr,
        &[
            "--kind",
            "client-stream",
            "--messages",
            "3",
            "--message-interval",
            "0.2",
            "--total",
            "2",
            "--concurrency",
            "2",
            "--warmup",
            "0",
            "--quiet",
        ],
    );
    assert_figures(&report, "client-stream");
    assert_eq!(number(&report, "calls"), 2.0, "{report}");
    // Three requests 0.2 s apart: no call can end sooner than 0.4 s after it began.
    assert!(
        report["latency_us"]["p50"].as_f64().unwrap_or(0.0) >= 400_000.0,
        "{report}"
    );
}
