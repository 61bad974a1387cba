//! The channel's connection life: calls in flight on a connection that dies end
//! `UNAVAILABLE`, the next call reconnects; graceful shutdown lets in-flight calls
//! finish; a server binds every address its host name resolves to.

use std::net::SocketAddr;
use std::time::Duration;

use h2grpc::{Channel, Code, Server};
use h2grpc_test_support::demo::grpc_demo_client::GrpcDemoClient;
use h2grpc_test_support::relay::Relay;
use h2grpc_test_support::service::*;
use tokio::net::{TcpListener, TcpStream};

#[tokio::test]
async fn calls_in_flight_on_a_cut_connection_end_unavailable_and_the_next_call_reconnects() {
    bounded(async {
        let mut server = TestServer::start().await;
        let relay = Relay::start(server.addr).await;
        let client = GrpcDemoClient::connect(relay.addr.to_string())
            .await
            .unwrap();
        client.simple_method(req("echo:before")).await.unwrap();

        let in_flight = {
            let client = client.clone();
            tokio::spawn(async move { client.simple_method(req("sleep:10000")).await })
        };
        let mut stream = client
            .server_streaming_method(req("forever"))
            .await
            .unwrap()
            .into_message();
        stream.message().await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        relay.cut_all();

        let err = in_flight.await.unwrap().unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        let err = loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("stream ended cleanly on a cut connection"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        // The server saw both calls cancelled.
        let mut events = vec![server.event().await, server.event().await];
        events.sort();
        assert_eq!(events, ["sleep dropped", "stream dropped"]);

        // Same client, next call: a new connection.
        let again = client.simple_method(req("echo:after")).await.unwrap();
        assert_eq!(again.message().response_data, "after");
    })
    .await
}

#[tokio::test]
async fn a_channel_whose_server_is_gone_fails_unavailable_then_recovers_when_it_returns() {
    bounded(async {
        let server = TestServer::start().await;
        let addr = server.addr;
        let relay = Relay::start(addr).await;
        let client = GrpcDemoClient::new(Channel::lazy(relay.addr.to_string()).unwrap());
        client.simple_method(req("echo:1")).await.unwrap();
        relay.refuse(true);
        relay.cut_all();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let err = client.simple_method(req("echo:2")).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        relay.refuse(false);
        // The channel reconnects after its backoff (1 s at first, ±20%); a
        // wait-for-ready call waits for it.
        let started = std::time::Instant::now();
        let again = client
            .simple_method(
                h2grpc::Request::new(req("echo:3"))
                    .with_wait_for_ready()
                    .with_timeout(Duration::from_secs(5)),
            )
            .await
            .unwrap();
        assert_eq!(again.message().response_data, "3");
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "{:?}",
            started.elapsed()
        );
        server.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn connecting_to_nothing_is_unavailable() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = GrpcDemoClient::new(Channel::lazy(addr.to_string()).unwrap());
        let err = client.simple_method(req("echo:x")).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
        assert!(Channel::connect(addr.to_string()).await.is_err());
        assert!(Channel::lazy("ipv4:no-address-here").is_err());
    })
    .await
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_calls_finish() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client().await;
        let in_flight = {
            let client = client.clone();
            tokio::spawn(async move { client.simple_method(req("sleep:500")).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let addr = server.addr;
        server.shutdown().await;
        assert_eq!(
            in_flight.await.unwrap().unwrap().message().response_data,
            "slept"
        );
        // The listener is closed: no new connection.
        assert!(TcpStream::connect(addr).await.is_err());
        let err = client.simple_method(req("echo:late")).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
    })
    .await
}

#[tokio::test]
async fn calls_past_the_grace_period_are_cut() {
    bounded(async {
        let server =
            TestServer::start_with(Server::new().grace_period(Duration::from_millis(200))).await;
        let client = server.client().await;
        let in_flight = {
            let client = client.clone();
            tokio::spawn(async move { client.simple_method(req("sleep:10000")).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = std::time::Instant::now();
        server.shutdown().await;
        assert!(started.elapsed() < Duration::from_secs(2));
        let err = in_flight.await.unwrap().unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    })
    .await
}

#[tokio::test]
async fn the_server_binds_every_address_its_host_resolves_to() {
    bounded(async {
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host("localhost:0")
            .await
            .unwrap()
            .collect();
        let listening = Server::new().bind("localhost:0").await.unwrap();
        let bound = listening.local_addrs();
        assert_eq!(
            bound.len(),
            resolved.len(),
            "resolved {resolved:?}, bound {bound:?}"
        );
        for r in &resolved {
            assert!(
                bound.iter().any(|b| b.ip() == r.ip()),
                "{r} not bound: {bound:?}"
            );
        }
    })
    .await
}

/// A unary call and a three-message server stream both come back whole.
async fn serves_unary_and_streaming(client: &GrpcDemoClient) {
    let answer = client.simple_method(req("echo:served")).await.unwrap();
    assert_eq!(answer.message().response_data, "served");
    let mut responses = client
        .server_streaming_method(req("count:3"))
        .await
        .unwrap()
        .into_message();
    let mut n = 0;
    while responses.message().await.unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 3);
}

/// With `spawn_calls`, every call is a task of its own: calls are served as usual, and a
/// handler that blocks its thread does not hold up the other calls of its connection. Two
/// handlers that each block until the other has arrived meet; polled by the connection's
/// task instead, the first would keep the second from starting, and give up alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spawn_calls_mode_serves_the_same_and_runs_blocking_handlers_apart() {
    bounded(async {
        let server = TestServer::start_with(Server::new().spawn_calls(true)).await;
        let client = server.client().await;
        serves_unary_and_streaming(&client).await;
        let calls: Vec<_> = (0..2)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move { client.simple_method(req("block-meet:2")).await })
            })
            .collect();
        for call in calls {
            let answer = call.await.unwrap().unwrap();
            assert_eq!(answer.message().response_data, "met");
        }
    })
    .await
}

#[tokio::test]
async fn calls_work_over_an_in_memory_duplex() {
    bounded(async {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let (tx, _events) = tokio::sync::mpsc::unbounded_channel();
        let server = Server::new().add_service(
            h2grpc_test_support::demo::grpc_demo_server::GrpcDemoServer::new(TestService::new(tx)),
        );
        tokio::spawn(async move { server.serve_io(server_io).await });
        let channel = Channel::builder("in-memory:1")
            .connect_with(client_io)
            .await
            .unwrap();
        serves_unary_and_streaming(&GrpcDemoClient::new(channel)).await;
    })
    .await
}

#[tokio::test]
async fn a_connection_that_never_completes_the_handshake_is_closed_at_the_timeout() {
    bounded(async {
        let server =
            TestServer::start_with(Server::new().handshake_timeout(Duration::from_millis(200)))
                .await;
        let mut silent = TcpStream::connect(server.addr).await.unwrap();
        let started = std::time::Instant::now();
        let mut buf = vec![0u8; 1024];
        // The server's SETTINGS may arrive first; then the close (a read of 0 bytes).
        loop {
            use tokio::io::AsyncReadExt;
            match silent.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(150) && took < Duration::from_secs(2),
            "closed after {took:?}"
        );
        assert_serves(server.addr).await;
    })
    .await
}
