//! A drain that loses nothing: steady unary load from several clients (three of ours,
//! sharing and not sharing a channel, and a grpcio client) runs through a graceful stop
//! of the real `demo-server` (SIGTERM: GOAWAY 2^31-1, PING, GOAWAY last-stream-id, the
//! grace period) and its restart on the same port. Every call either succeeds or fails
//! UNAVAILABLE (refused, retryable): none is lost to another code or a hang, and every
//! client is served again after the restart, our channels over new connections.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use h2grpc::{Channel, Code, Request};
use h2grpc_demo::pb::Request as DemoRequest;
use h2grpc_demo::pb::grpc_demo_client::GrpcDemoClient;
use h2grpc_test_support::demo_process::DemoServer;
use h2grpc_test_support::ports::free_port;
use h2grpc_test_support::process::Process;
use h2grpc_test_support::python;

const DEMO_SERVER: &str = env!("CARGO_BIN_EXE_demo-server");

/// Calls in a loop until `stop`; the count of each outcome, and of OKs after `restarted`.
async fn load(
    client: GrpcDemoClient,
    stop: Arc<AtomicBool>,
    restarted: Arc<AtomicBool>,
) -> (BTreeMap<String, u64>, u64) {
    let mut outcomes = BTreeMap::new();
    let mut ok_after_restart = 0;
    while !stop.load(Ordering::SeqCst) {
        let request = Request::new(DemoRequest {
            client_id: 1,
            request_data: "drain".into(),
        })
        .with_timeout(Duration::from_secs(5));
        let outcome = match client.simple_method(request).await {
            Ok(_) => {
                if restarted.load(Ordering::SeqCst) {
                    ok_after_restart += 1;
                }
                "OK".to_owned()
            }
            Err(status) => {
                if status.code() == Code::Unavailable {
                    // Nothing listening for a moment: do not spin.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                format!("{:?}: {}", status.code(), status.message())
            }
        };
        *outcomes.entry(outcome).or_insert(0) += 1;
    }
    (outcomes, ok_after_restart)
}

/// grpcio, calling SimpleMethod in a loop for `seconds`, printing `CODE COUNT` lines.
const GRPCIO_LOAD: &str = r#"
import sys, time, grpc, collections
target, seconds, request = sys.argv[1], float(sys.argv[2]), bytes.fromhex(sys.argv[3])
counts = collections.Counter()
end = time.time() + seconds
channel = grpc.insecure_channel(target)
call = channel.unary_unary("/demo.GRPCDemo/SimpleMethod")
while time.time() < end:
    try:
        call(request, timeout=5)
        counts["OK"] += 1
    except grpc.RpcError as e:
        counts[e.code().name] += 1
        time.sleep(0.005)
for code, n in sorted(counts.items()):
    print(code, n, flush=True)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_load_through_a_graceful_stop_and_restart_loses_no_call() {
    let Some(venv) = python::venv("steady_load_through_a_graceful_stop_and_restart_loses_no_call")
    else {
        return;
    };
    let port = free_port();
    let mut server = DemoServer::start(DEMO_SERVER, port, 1).await;
    let target = server.addr().to_string();

    let stop = Arc::new(AtomicBool::new(false));
    let restarted = Arc::new(AtomicBool::new(false));
    let shared = Channel::lazy(target.clone()).unwrap();
    let mut ours = Vec::new();
    for client in [
        GrpcDemoClient::new(shared.clone()),
        GrpcDemoClient::new(shared),
        GrpcDemoClient::new(Channel::lazy(target.clone()).unwrap()),
    ] {
        ours.push(tokio::spawn(load(client, stop.clone(), restarted.clone())));
    }
    let request = h2grpc::prost::Message::encode_to_vec(&DemoRequest {
        client_id: 2,
        request_data: "drain".into(),
    });
    let hex: String = request.iter().map(|b| format!("{b:02x}")).collect();
    let mut grpcio = Command::new(&venv.python);
    grpcio.args(["-c", GRPCIO_LOAD, &target, "4.0", &hex]);
    let mut grpcio = Process::spawn("grpcio load", grpcio).unwrap();

    tokio::time::sleep(Duration::from_millis(1200)).await;
    let stopped = tokio::task::block_in_place(|| server.terminate(Duration::from_secs(10)));
    assert!(stopped, "demo-server did not stop gracefully on SIGTERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _server = DemoServer::start(DEMO_SERVER, port, 2).await;
    restarted.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    stop.store(true, Ordering::SeqCst);

    for (i, task) in ours.into_iter().enumerate() {
        let (outcomes, ok_after_restart) = task.await.unwrap();
        eprintln!("our client {i}: {outcomes:?}; OK after the restart: {ok_after_restart}");
        let lost: Vec<_> = outcomes
            .iter()
            .filter(|(k, _)| *k != "OK" && !k.starts_with("Unavailable"))
            .collect();
        assert!(
            lost.is_empty(),
            "client {i}: calls lost: {lost:?} (all: {outcomes:?})"
        );
        assert!(
            outcomes.get("OK").copied().unwrap_or(0) > 100,
            "client {i}: {outcomes:?}"
        );
        assert!(
            ok_after_restart > 0,
            "client {i} not served after the restart: {outcomes:?}"
        );
    }
    let status = tokio::task::block_in_place(|| grpcio.wait_timeout(Duration::from_secs(30)));
    assert!(status.is_some_and(|s| s.success()), "{}", grpcio.dump());
    let counts: BTreeMap<String, u64> = grpcio
        .stdout()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(code, n)| (code.to_owned(), n.trim().parse().unwrap()))
        .collect();
    eprintln!("grpcio: {counts:?}");
    let lost: Vec<_> = counts
        .iter()
        .filter(|(k, _)| *k != "OK" && *k != "UNAVAILABLE")
        .collect();
    assert!(
        lost.is_empty(),
        "grpcio: calls lost: {lost:?} (all: {counts:?})"
    );
    assert!(
        counts.get("OK").copied().unwrap_or(0) > 50,
        "grpcio: {counts:?}"
    );
}
