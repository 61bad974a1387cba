//! The channel's connectivity over real sockets: states as `connectivity-semantics` names
//! them, fail-fast and wait-for-ready calls (the client started before its server),
//! reconnection paced by `connection-backoff.md`, the idle timeout, and a resolver of
//! the user's own whose address list changes under calls in flight.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use h2grpc::client::{ConnectBackoff, ConnectivityState, LoadBalancing, ManualResolver};
use h2grpc::{Channel, Code, Request, Server};
use h2grpc_test_support::demo::grpc_demo_client::GrpcDemoClient;
use h2grpc_test_support::service::*;
use tokio::net::TcpListener;

/// A port nobody listens on (bound, then released).
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// Wait (bounded) until `channel` is in `want`; the states passed through.
async fn wait_for(channel: &Channel, want: ConnectivityState) -> Vec<ConnectivityState> {
    let mut seen = vec![channel.state(false)];
    let deadline = Instant::now() + Duration::from_secs(10);
    while *seen.last().unwrap() != want {
        let left = deadline.saturating_duration_since(Instant::now());
        let from = *seen.last().unwrap();
        let next = tokio::time::timeout(left, channel.wait_for_state_change(from))
            .await
            .unwrap_or_else(|_| panic!("not {want:?} within 10 s; went {seen:?}"));
        seen.push(next);
    }
    seen
}

#[tokio::test]
async fn a_lazy_channel_is_idle_until_asked_then_connecting_then_ready() {
    bounded(async {
        let server = TestServer::start().await;
        let channel = Channel::lazy(server.addr.to_string()).unwrap();
        assert_eq!(channel.state(false), ConnectivityState::Idle);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            channel.state(false),
            ConnectivityState::Idle,
            "connected unasked"
        );
        assert_eq!(channel.state(true), ConnectivityState::Idle);
        let seen = wait_for(&channel, ConnectivityState::Ready).await;
        assert!(seen.contains(&ConnectivityState::Connecting), "{seen:?}");
        // The server goes away: the connection is lost and pick_first goes IDLE.
        server.shutdown().await;
        wait_for(&channel, ConnectivityState::Idle).await;
    })
    .await
}

#[tokio::test]
async fn fail_fast_calls_fail_at_once_while_wait_for_ready_calls_wait_for_a_server_started_later() {
    bounded(async {
        let addr = closed_port().await;
        let channel = Channel::lazy(addr.to_string()).unwrap();
        let client = GrpcDemoClient::new(channel.clone());

        // Fail-fast (the default): UNAVAILABLE as soon as the first attempt fails.
        let started = Instant::now();
        let err = client.simple_method(req("echo:fast")).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(channel.state(false), ConnectivityState::TransientFailure);

        // Wait-for-ready, with a deadline that passes first: DEADLINE_EXCEEDED, not UNAVAILABLE.
        let err = client
            .simple_method(
                Request::new(req("echo:late"))
                    .with_wait_for_ready()
                    .with_timeout(Duration::from_millis(200)),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");

        // The client is waiting before the server exists; the server then starts on that
        // address, and the call succeeds once the backoff lets the channel reconnect.
        let waiting = {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .simple_method(
                        Request::new(req("echo:patient"))
                            .with_wait_for_ready()
                            .with_timeout(Duration::from_secs(8)),
                    )
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "a wait-for-ready call did not wait");
        let listening = Server::new()
            .add_service(
                h2grpc_test_support::demo::grpc_demo_server::GrpcDemoServer::new(TestService::new(
                    tokio::sync::mpsc::unbounded_channel().0,
                )),
            )
            .bind(&addr.to_string())
            .await
            .unwrap();
        let serving = tokio::spawn(listening.serve_with_shutdown(std::future::pending()));
        let answer = waiting.await.unwrap().unwrap();
        assert_eq!(answer.message().response_data, "patient");
        assert_eq!(channel.state(false), ConnectivityState::Ready);
        serving.abort();
    })
    .await
}

#[tokio::test]
async fn reconnection_attempts_follow_the_configured_backoff() {
    bounded(async {
        // A listener that accepts and drops every connection: each attempt fails after
        // the TCP handshake, and the accept times show the attempts' pacing.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut attempts) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let _ = tx.send(Instant::now());
                drop(socket);
            }
        });
        let backoff = ConnectBackoff {
            initial: Duration::from_millis(100),
            multiplier: 2.0,
            jitter: 0.0,
            max: Duration::from_millis(800),
            min_connect_timeout: Duration::from_secs(1),
        };
        let channel = Channel::builder(addr.to_string())
            .connect_backoff(backoff)
            .lazy()
            .unwrap();
        channel.state(true);
        let mut times = Vec::new();
        for _ in 0..6 {
            let at = tokio::time::timeout(Duration::from_secs(5), attempts.recv())
                .await
                .expect("no next attempt within 5 s")
                .unwrap();
            times.push(at);
        }
        let gaps: Vec<u128> = times
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis())
            .collect();
        // 100, 200, 400, 800, 800 ms (the cap), each measured between attempt starts.
        let want = [100u128, 200, 400, 800, 800];
        for (gap, want) in gaps.iter().zip(want) {
            assert!(
                *gap + 15 >= want && *gap <= want + 150,
                "attempt gaps {gaps:?} ms, want {want:?}"
            );
        }
        assert_eq!(channel.state(false), ConnectivityState::TransientFailure);
    })
    .await
}

#[tokio::test]
async fn an_idle_channel_closes_its_connection_and_reconnects_on_the_next_call() {
    bounded(async {
        let server = TestServer::start().await;
        let channel = Channel::builder(server.addr.to_string())
            .idle_timeout(Some(Duration::from_millis(200)))
            .connect()
            .await
            .unwrap();
        let client = GrpcDemoClient::new(channel.clone());
        client.simple_method(req("echo:1")).await.unwrap();
        assert_eq!(channel.state(false), ConnectivityState::Ready);
        // A call in flight keeps it from idling: closing the connection under it would
        // have failed it.
        client.simple_method(req("sleep:600")).await.unwrap();
        let seen = wait_for(&channel, ConnectivityState::Idle).await;
        assert_eq!(seen.last(), Some(&ConnectivityState::Idle));
        client.simple_method(req("echo:2")).await.unwrap();
        assert_eq!(channel.state(false), ConnectivityState::Ready);
    })
    .await
}

#[tokio::test]
async fn a_resolver_update_moves_new_calls_and_lets_calls_in_flight_finish() {
    bounded(async {
        let mut a = TestServer::start().await;
        let mut b = TestServer::start().await;
        let resolver = ManualResolver::new(vec![a.addr]);
        let channel = Channel::builder("my-service:1")
            .resolver(resolver.clone())
            .load_balancing(LoadBalancing::RoundRobin)
            .connect()
            .await
            .unwrap();
        let client = GrpcDemoClient::new(channel);
        client.simple_method(req("ran")).await.unwrap();
        assert_eq!(a.event().await, "handler ran");
        let in_flight = {
            let client = client.clone();
            tokio::spawn(async move { client.simple_method(req("sleep:500")).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        resolver.update(vec![b.addr]);
        // The channel takes the new list in its own time: calls reach b from then on
        // (wait-for-ready covers b's connection coming up).
        let updated = std::time::Instant::now();
        loop {
            client
                .simple_method(Request::new(req("ran")).with_wait_for_ready())
                .await
                .unwrap();
            if b.event_now().is_some() {
                break;
            }
            assert_eq!(a.event().await, "handler ran");
            assert!(updated.elapsed() < Duration::from_secs(5), "b got no call");
        }
        for _ in 0..5 {
            client.simple_method(req("ran")).await.unwrap();
            assert_eq!(b.event().await, "handler ran");
        }
        // The call on a's connection, removed from the list, still finishes.
        let slept = in_flight.await.unwrap().unwrap();
        assert_eq!(slept.message().response_data, "slept");
        assert_eq!(a.event_now(), None, "a got a call after it was removed");
    })
    .await
}
