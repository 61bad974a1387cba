//! Deadlines and cancellation: the client enforces its deadline itself, the server
//! enforces the `grpc-timeout` it receives, and a dropped call is seen by the handler.

use std::time::{Duration, Instant};

use h2grpc::{Code, Request};
use h2grpc_test_support::lpm;
use h2grpc_test_support::service::*;

#[tokio::test]
async fn client_deadline_expires_while_the_handler_sleeps() {
    bounded(async {
        let mut server = TestServer::start().await;
        let client = server.client().await;
        let started = Instant::now();
        let err = client
            .simple_method(Request::new(req("sleep:10000")).with_timeout(Duration::from_millis(50)))
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
        assert!(took < Duration::from_millis(500), "took {took:?}");
        // The handler was cancelled (by the server's own deadline or the client's reset).
        assert_eq!(server.event().await, "sleep dropped");
    })
    .await
}

#[tokio::test]
async fn client_deadline_holds_when_the_server_never_answers() {
    bounded(async {
        // A listener that completes the HTTP/2 handshake and then never answers a stream.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let mut conn = h2::server::handshake(socket).await.unwrap();
            let mut held = Vec::new();
            while let Some(Ok(stream)) = conn.accept().await {
                held.push(stream);
            }
        });
        let client =
            h2grpc_test_support::demo::grpc_demo_client::GrpcDemoClient::connect(addr.to_string())
                .await
                .unwrap();
        let started = Instant::now();
        let err = client
            .simple_method(Request::new(req("echo:x")).with_timeout(Duration::from_millis(50)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded);
        assert!(started.elapsed() < Duration::from_millis(500));
        let started = Instant::now();
        let err = client
            .server_streaming_method(
                Request::new(req("count:1")).with_timeout(Duration::from_millis(50)),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded);
        assert!(started.elapsed() < Duration::from_millis(500));
    })
    .await
}

#[tokio::test]
async fn client_deadline_ends_a_response_stream_midway() {
    bounded(async {
        let mut server = TestServer::start().await;
        let client = server.client().await;
        let mut responses = client
            .server_streaming_method(
                Request::new(req("forever")).with_timeout(Duration::from_millis(200)),
            )
            .await
            .unwrap()
            .into_message();
        let mut got = 0;
        let err = loop {
            match responses.message().await {
                Ok(Some(_)) => got += 1,
                Ok(None) => panic!("the stream never ends by itself"),
                Err(e) => break e,
            }
        };
        assert!(got > 0);
        assert_eq!(err.code(), Code::DeadlineExceeded);
        drop(responses);
        assert_eq!(server.event().await, "stream dropped");
    })
    .await
}

#[tokio::test]
async fn server_enforces_the_grpc_timeout_it_receives() {
    bounded(async {
        let mut server = TestServer::start().await;
        // A raw client that sends grpc-timeout but does not enforce it itself.
        let head = grpc_head(server.addr, "/demo.GRPCDemo/SimpleMethod")
            .header("grpc-timeout", "100m")
            .body(())
            .unwrap();
        let started = Instant::now();
        let response = raw_request(server.addr, head, &lpm::encode(&req("sleep:10000"))).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.grpc_status(), Some(Code::DeadlineExceeded));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(server.event().await, "sleep dropped");
        assert_serves(server.addr).await;
    })
    .await
}

#[tokio::test]
async fn a_deadline_already_passed_on_arrival_is_exceeded_without_running_the_handler() {
    bounded(async {
        let mut server = TestServer::start().await;
        // grpc-go sends `0n` for a deadline that expired before the call went out.
        let head = grpc_head(server.addr, "/demo.GRPCDemo/SimpleMethod")
            .header("grpc-timeout", "0n")
            .body(())
            .unwrap();
        let response = raw_request(server.addr, head, &lpm::encode(&req("ran"))).await;
        assert_eq!(response.status, 200);
        assert!(response.trailers.is_none(), "Trailers-Only: {response:?}");
        assert_eq!(response.grpc_status(), Some(Code::DeadlineExceeded));
        assert!(response.body.is_empty());
        assert_eq!(server.event_now(), None, "the expired call ran its handler");
        // With time left, the same request runs the handler, which the event shows.
        let client = server.client().await;
        client.simple_method(req("ran")).await.unwrap();
        assert_eq!(server.event().await, "handler ran");
    })
    .await
}

#[tokio::test]
async fn dropping_a_call_cancels_the_handler() {
    bounded(async {
        let mut server = TestServer::start().await;
        let client = server.client().await;
        // A unary call dropped while the handler runs.
        let call = tokio::spawn({
            let client = client.clone();
            async move { client.simple_method(req("sleep:10000")).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        call.abort();
        assert_eq!(server.event().await, "sleep dropped");
        // A response stream dropped after its first message.
        let mut responses = client
            .server_streaming_method(req("forever"))
            .await
            .unwrap()
            .into_message();
        responses.message().await.unwrap().unwrap();
        drop(responses);
        assert_eq!(server.event().await, "stream dropped");
        assert_serves(server.addr).await;
    })
    .await
}
