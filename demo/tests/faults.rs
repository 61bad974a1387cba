//! Faults against the real `demo-server` binary: the server killed (SIGKILL) in the middle
//! of each kind of call, and the connection cut by a TCP relay. The call in flight ends
//! promptly with `UNAVAILABLE`; the same client (the same `Channel`) serves the next call
//! once the server is back, over a new connection; and a loop of calls across a kill and
//! a restart loses no call to a hang: each one either succeeds or ends `UNAVAILABLE`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use h2grpc::{Channel, Code, Status};
use h2grpc_demo::pb::Request as DemoRequest;
use h2grpc_demo::pb::grpc_demo_client::GrpcDemoClient;
use h2grpc_test_support::demo_process::DemoServer;
use h2grpc_test_support::ports::free_port;
use h2grpc_test_support::relay::Relay;
use tokio::sync::Mutex;

/// The demo server binary under test.
const DEMO_SERVER: &str = env!("CARGO_BIN_EXE_demo-server");

/// How soon a call in flight must end after its server is killed or its connection cut.
const PROMPT: Duration = Duration::from_secs(5);
/// A bound on every test body.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

async fn bounded<T>(body: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, body)
        .await
        .expect("test timed out")
}

fn req(text: impl Into<String>) -> DemoRequest {
    DemoRequest {
        client_id: 1,
        request_data: text.into(),
    }
}

fn client_to(addr: SocketAddr) -> GrpcDemoClient {
    GrpcDemoClient::new(Channel::lazy(addr.to_string()).unwrap())
}

/// A unary call that must succeed, answered by the server with id `server_id`.
async fn assert_unary_ok(client: &GrpcDemoClient, server_id: i64, what: &str) {
    // Wait-for-ready: after a restart the channel reconnects once its backoff has passed.
    let request = h2grpc::Request::new(req(what)).with_wait_for_ready();
    let answer = tokio::time::timeout(PROMPT, client.simple_method(request))
        .await
        .unwrap_or_else(|_| panic!("{what}: unary call hung"))
        .unwrap_or_else(|e| panic!("{what}: unary call failed: {e:?}"));
    assert_eq!(
        answer.message().server_id,
        server_id,
        "{what}: answered by the wrong server"
    );
    assert_eq!(
        answer.message().response_data,
        "Rust server SimpleMethod Ok!!!!"
    );
}

/// Waits (at most [`PROMPT`]) for `call` to end after a fault at `fault_at`, and checks
/// it ended `UNAVAILABLE`.
async fn assert_ends_unavailable<T: std::fmt::Debug>(
    what: &str,
    fault_at: Instant,
    call: impl std::future::Future<Output = Result<T, Status>>,
) {
    let result = tokio::time::timeout(PROMPT, call)
        .await
        .unwrap_or_else(|_| panic!("{what}: still running {PROMPT:?} after the fault"));
    let took = fault_at.elapsed();
    match result {
        Ok(v) => panic!("{what}: succeeded after the fault: {v:?}"),
        Err(status) => {
            assert_eq!(status.code(), Code::Unavailable, "{what}: {status:?}");
            eprintln!("{what}: UNAVAILABLE {took:.1?} after the fault ({status:?})");
        }
    }
}

/// While the server is down a call fails at once (connection refused) with
/// `UNAVAILABLE`; then the server comes back on the same port (id `new_id`) and the same
/// client's next call (wait-for-ready, as the channel reconnects after its backoff)
/// succeeds.
async fn assert_fails_while_down_then_recovers(
    client: &GrpcDemoClient,
    port: u16,
    new_id: i64,
) -> DemoServer {
    let started = Instant::now();
    let err = tokio::time::timeout(PROMPT, client.simple_method(req("while down")))
        .await
        .expect("a call to a dead server hung")
        .expect_err("a call to a dead server succeeded");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    eprintln!(
        "call while the server is down: UNAVAILABLE in {:.1?}",
        started.elapsed()
    );
    let server = DemoServer::start(DEMO_SERVER, port, new_id).await;
    assert_unary_ok(client, new_id, "first call after the restart").await;
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_during_a_unary_call() {
    bounded(async {
        let port = free_port();
        let mut server = DemoServer::start(DEMO_SERVER, port, 1).await;
        let client = client_to(server.addr());
        assert_unary_ok(&client, 1, "before").await;

        // Frozen, the server cannot answer: the call is in its hands when it dies.
        server.freeze();
        let call = {
            let client = client.clone();
            tokio::spawn(async move { client.simple_method(req("in flight")).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        if call.is_finished() {
            panic!(
                "the call ended while the server was frozen: {:?}",
                call.await
            );
        }
        let killed = Instant::now();
        server.kill();
        assert_ends_unavailable("unary call", killed, async {
            call.await.expect("call task")
        })
        .await;

        let _server = assert_fails_while_down_then_recovers(&client, port, 2).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_during_a_client_streaming_call() {
    bounded(async {
        let port = free_port();
        let mut server = DemoServer::start(DEMO_SERVER, port, 1).await;
        let client = client_to(server.addr());
        assert_unary_ok(&client, 1, "before").await;

        // A request stream that never ends: one message every 20 ms.
        let requests = stream::unfold(0u64, |i| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Some((req(format!("message {i}")), i + 1))
        });
        let call = {
            let client = client.clone();
            tokio::spawn(async move { client.client_streaming_method(requests).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!call.is_finished(), "the client-streaming call ended early");
        let killed = Instant::now();
        server.kill();
        assert_ends_unavailable("client-streaming call", killed, async {
            call.await.expect("call task")
        })
        .await;

        let _server = assert_fails_while_down_then_recovers(&client, port, 2).await;
        // The same client streams again.
        let answer = tokio::time::timeout(
            PROMPT,
            client.client_streaming_method(stream::iter((0..5).map(|i| req(format!("m{i}"))))),
        )
        .await
        .expect("client streaming after the restart hung")
        .expect("client streaming after the restart failed");
        assert_eq!(answer.message().server_id, 2);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_during_a_server_streaming_call() {
    bounded(async {
        let port = free_port();
        let mut server = DemoServer::start(DEMO_SERVER, port, 1).await;
        // A 64-byte stream window: the server's five ~39-byte messages cannot all be sent
        // until the client reads, so the call is mid-stream while the client holds off.
        let channel = Channel::builder(server.addr().to_string())
            .stream_window_size(64)
            .lazy()
            .unwrap();
        let client = GrpcDemoClient::new(channel);
        assert_unary_ok(&client, 1, "before").await;

        let mut responses = tokio::time::timeout(
            PROMPT,
            client.server_streaming_method(req("stream to be cut")),
        )
        .await
        .expect("server streaming call hung")
        .expect("server streaming call failed")
        .into_message();
        let first = responses.message().await.expect("first message");
        assert!(first.is_some(), "the stream ended before its first message");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let killed = Instant::now();
        server.kill();
        let mut received = 1;
        assert_ends_unavailable("server-streaming call", killed, async {
            loop {
                match responses.message().await {
                    Ok(Some(_)) => received += 1,
                    Ok(None) => return Ok(received),
                    Err(status) => return Err(status),
                }
            }
        })
        .await;
        assert!(
            received < 5,
            "all five messages arrived: the kill did not land mid-stream"
        );
        eprintln!("server-streaming call: {received} of 5 messages before the kill");

        let _server = assert_fails_while_down_then_recovers(&client, port, 2).await;
        // The same client, still with its small window, reads a whole stream again.
        let mut responses = client
            .server_streaming_method(req("after"))
            .await
            .expect("server streaming after the restart")
            .into_message();
        assert_eq!(
            read_all_from(&mut responses, "server streaming after the restart", 2).await,
            5
        );
    })
    .await
}

/// Read a response stream to its end, each message within `PROMPT` and from server
/// `server_id`; the number of messages.
async fn read_all_from(
    responses: &mut h2grpc::Streaming<h2grpc_demo::pb::Response>,
    what: &str,
    server_id: i64,
) -> usize {
    let mut n = 0;
    while let Some(r) = tokio::time::timeout(PROMPT, responses.message())
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
        .unwrap_or_else(|e| panic!("{what} failed: {e:?}"))
    {
        assert_eq!(r.server_id, server_id, "{what}");
        n += 1;
    }
    n
}

/// A bidirectional call whose request stream sends `first` and then stays open, with
/// the demo server's five answers read: the call is open on both sides, waiting for the
/// client to finish.
async fn open_bidi(
    client: &GrpcDemoClient,
    first: &str,
) -> h2grpc::Streaming<h2grpc_demo::pb::Response> {
    let requests = stream::iter([req(first)]).chain(stream::pending());
    let mut responses =
        tokio::time::timeout(PROMPT, client.bidirectional_streaming_method(requests))
            .await
            .expect("bidi call hung")
            .expect("bidi call failed")
            .into_message();
    for i in 0..5 {
        let r = tokio::time::timeout(PROMPT, responses.message())
            .await
            .expect("bidi answer hung")
            .expect("bidi answer failed")
            .expect("bidi stream ended early");
        assert_eq!(
            r.response_data,
            format!("send by Rust server, message= {i}")
        );
    }
    responses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_during_a_bidi_call() {
    bounded(async {
        let port = free_port();
        let mut server = DemoServer::start(DEMO_SERVER, port, 1).await;
        let client = client_to(server.addr());
        let mut responses = open_bidi(&client, "before the kill").await;
        let killed = Instant::now();
        server.kill();
        assert_ends_unavailable("bidi call", killed, async { responses.message().await }).await;

        let _server = assert_fails_while_down_then_recovers(&client, port, 2).await;
        // The same client, a complete bidi call.
        let mut responses = client
            .bidirectional_streaming_method(stream::iter((0..3).map(|i| req(format!("m{i}")))))
            .await
            .expect("bidi after the restart")
            .into_message();
        assert_eq!(
            read_all_from(&mut responses, "bidi after the restart", 2).await,
            5
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_by_a_relay_ends_the_calls_on_it_and_the_channel_reconnects() {
    bounded(async {
        let server = DemoServer::start(DEMO_SERVER, free_port(), 1).await;
        let relay = Relay::start(server.addr()).await;
        let client = client_to(relay.addr);
        assert_unary_ok(&client, 1, "before").await;

        let mut bidi = open_bidi(&client, "through the relay").await;
        let requests = stream::unfold(0u64, |i| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Some((req(format!("message {i}")), i + 1))
        });
        let streaming = {
            let client = client.clone();
            tokio::spawn(async move { client.client_streaming_method(requests).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!streaming.is_finished());
        let cut = Instant::now();
        relay.cut_all();
        assert_ends_unavailable("bidi call through the relay", cut, async {
            bidi.message().await
        })
        .await;
        assert_ends_unavailable("client-streaming call through the relay", cut, async {
            streaming.await.expect("call task")
        })
        .await;

        // Same client, next calls: a new connection through the relay.
        assert_unary_ok(&client, 1, "after the cut").await;
        drop(open_bidi(&client, "after the cut").await);
    })
    .await
}

/// Outcome counts of a call loop, by phase.
#[derive(Default, Debug)]
struct Tally {
    ok: usize,
    unavailable: usize,
    /// Any other code, with the first few statuses.
    other: Vec<String>,
    /// Calls still running [`PROMPT`] after they started.
    hung: usize,
}

const BEFORE: u8 = 0;
const DOWN: u8 = 1;
const AFTER: u8 = 2;
/// A bound on the calls one worker makes, whatever the timing.
const MAX_CALLS_PER_WORKER: usize = 20_000;
const WORKERS: usize = 4;

/// One call of kind `n % 4` with its answers checked.
async fn mixed_call(client: &GrpcDemoClient, n: usize) -> Result<(), Status> {
    let check = |text: &str, want: &str| {
        if text.starts_with(want) {
            Ok(())
        } else {
            Err(Status::internal(format!(
                "wrong answer {text:?}, want {want:?}…"
            )))
        }
    };
    match n % 4 {
        0 => {
            let r = client.simple_method(req("loop")).await?;
            check(&r.message().response_data, "Rust server SimpleMethod")
        }
        1 => {
            let mut s = client
                .server_streaming_method(req("loop"))
                .await?
                .into_message();
            five_answers(&mut s, "streamed").await
        }
        2 => {
            let r = client
                .client_streaming_method(stream::iter((0..5).map(|i| req(format!("m{i}")))))
                .await?;
            check(
                &r.message().response_data,
                "Rust server ClientStreamingMethod",
            )
        }
        _ => {
            let mut s = client
                .bidirectional_streaming_method(stream::iter((0..5).map(|i| req(format!("m{i}")))))
                .await?
                .into_message();
            five_answers(&mut s, "bidi").await
        }
    }
}

/// The demo server's five streamed answers, each checked; a wrong answer or count is an error.
async fn five_answers(
    s: &mut h2grpc::Streaming<h2grpc_demo::pb::Response>,
    what: &str,
) -> Result<(), Status> {
    let mut count = 0;
    while let Some(r) = s.message().await? {
        if !r.response_data.starts_with("send by Rust server") {
            return Err(Status::internal(format!(
                "wrong {what} answer {:?}",
                r.response_data
            )));
        }
        count += 1;
    }
    if count == 5 {
        Ok(())
    } else {
        Err(Status::internal(format!("{count} {what} messages, want 5")))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_across_a_kill_and_a_restart_succeed_or_end_unavailable_and_none_hangs() {
    bounded(async {
        let port = free_port();
        let mut server = DemoServer::start(DEMO_SERVER, port, 1).await;
        let channel = Channel::lazy(server.addr().to_string()).unwrap();
        let client = GrpcDemoClient::new(channel.clone());
        let phase = Arc::new(AtomicU8::new(BEFORE));
        let stop = Arc::new(AtomicBool::new(false));
        let tallies = Arc::new(Mutex::new(BTreeMap::<u8, Tally>::new()));
        let mut workers = Vec::new();
        for w in 0..WORKERS {
            let (client, phase, stop, tallies) =
                (client.clone(), phase.clone(), stop.clone(), tallies.clone());
            workers.push(tokio::spawn(async move {
                for n in w..w + MAX_CALLS_PER_WORKER {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let started_in = phase.load(Ordering::SeqCst);
                    let result = tokio::time::timeout(PROMPT, mixed_call(&client, n)).await;
                    let failed = !matches!(result, Ok(Ok(())));
                    {
                        let mut tallies = tallies.lock().await;
                        let tally = tallies.entry(started_in).or_default();
                        match result {
                            Ok(Ok(())) => tally.ok += 1,
                            Ok(Err(s)) if s.code() == Code::Unavailable => tally.unavailable += 1,
                            Ok(Err(s)) => tally.other.push(format!("call {n}: {s:?}")),
                            Err(_) => tally.hung += 1,
                        }
                    }
                    if failed {
                        // A client backs off a little before trying again.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }));
        }

        tokio::time::sleep(Duration::from_secs(1)).await;
        phase.store(DOWN, Ordering::SeqCst);
        server.kill();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _server = DemoServer::start(DEMO_SERVER, port, 2).await;
        // Calls fail fast until the channel's backoff lets it reconnect; from READY on,
        // every call must succeed.
        let restarted = Instant::now();
        let mut state = channel.state(true);
        while state != h2grpc::client::ConnectivityState::Ready {
            state = tokio::time::timeout(PROMPT, channel.wait_for_state_change(state))
                .await
                .expect("the channel did not reconnect to the restarted server");
        }
        eprintln!("READY again {:.1?} after the restart", restarted.elapsed());
        phase.store(AFTER, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::SeqCst);
        for w in workers {
            tokio::time::timeout(PROMPT * 2, w)
                .await
                .expect("a worker hung")
                .expect("worker task");
        }

        let tallies = tallies.lock().await;
        eprintln!("calls by the phase they started in (0 before the kill, 1 down or reconnecting, 2 once READY after the restart): {tallies:#?}");
        let total = |f: fn(&Tally) -> usize| tallies.values().map(f).sum::<usize>();
        assert_eq!(total(|t| t.hung), 0, "calls hung: {tallies:#?}");
        assert_eq!(
            total(|t| t.other.len()),
            0,
            "calls ended with a code other than UNAVAILABLE: {tallies:#?}"
        );
        let before = tallies.get(&BEFORE).expect("no call before the kill");
        assert!(before.ok > 0, "{tallies:#?}");
        let after = tallies.get(&AFTER).expect("no call after the restart");
        assert!(after.ok > 0, "no call succeeded after the restart: {tallies:#?}");
        assert_eq!(
            after.unavailable, 0,
            "calls started after the restart failed: {tallies:#?}"
        );
    })
    .await
}
