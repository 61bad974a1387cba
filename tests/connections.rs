//! Connection management (gRFC A9) over real sockets: a connection idle for
//! `max_connection_idle` is closed with GOAWAY; one older than `max_connection_age` is
//! closed with GOAWAY, its calls finishing (or cut after the grace period); and past
//! `max_connections`, a new connection waits unaccepted until another closes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use h2grpc::{Channel, Code, Server};
use h2grpc_test_support::demo::grpc_demo_client::GrpcDemoClient;
use h2grpc_test_support::lpm;
use h2grpc_test_support::service::{TestServer, bounded, req};
use tokio::task::JoinHandle;

/// A bare h2 client connection: its request handle and the task driving it (which ends
/// when the server closes the connection).
async fn raw_connection(
    addr: SocketAddr,
) -> (h2::client::SendRequest<bytes::Bytes>, JoinHandle<()>) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, conn) = h2::client::handshake(tcp).await.unwrap();
    (
        send,
        tokio::spawn(async move {
            let _ = conn.await;
        }),
    )
}

/// One SimpleMethod call on `send`; the `grpc-status` it ended with.
async fn raw_call(
    send: &mut h2::client::SendRequest<bytes::Bytes>,
    command: &str,
) -> Option<String> {
    let request = http::Request::builder()
        .method("POST")
        .uri("http://localhost/demo.GRPCDemo/SimpleMethod")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let mut ready = send.clone().ready().await.ok()?;
    let (response, mut body) = ready.send_request(request, false).ok()?;
    body.send_data(lpm::encode(&req(command)).into(), true)
        .ok()?;
    let (parts, mut recv) = response.await.ok()?.into_parts();
    if let Some(status) = parts.headers.get("grpc-status") {
        return Some(status.to_str().unwrap().to_owned());
    }
    while let Some(chunk) = recv.data().await {
        let _ = recv.flow_control().release_capacity(chunk.ok()?.len());
    }
    let trailers = recv.trailers().await.ok()??;
    Some(trailers.get("grpc-status")?.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn an_idle_connection_is_closed_and_a_busy_one_is_not() {
    bounded(async {
        let idle = Duration::from_millis(300);
        let server = TestServer::start_with(Server::new().max_connection_idle(idle)).await;
        // Never used: closed after about `idle`.
        let started = Instant::now();
        let (_send, closed) = raw_connection(server.addr).await;
        closed.await.unwrap();
        let took = started.elapsed();
        assert!(took >= idle && took < idle * 10, "closed after {took:?}");
        // Busy for longer than `idle`: kept while the call runs, closed after it.
        let (mut send, closed) = raw_connection(server.addr).await;
        let started = Instant::now();
        assert_eq!(raw_call(&mut send, "sleep:900").await.as_deref(), Some("0"));
        assert!(!closed.is_finished(), "closed while a call was in flight");
        closed.await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(900) + idle);
        // A channel moves to a new connection without failing calls.
        let client = GrpcDemoClient::new(Channel::lazy(server.addr.to_string()).unwrap());
        for _ in 0..3 {
            client.simple_method(req("echo:x")).await.unwrap();
            tokio::time::sleep(idle * 2).await;
        }
    })
    .await
}

#[tokio::test]
async fn an_old_connection_is_closed_after_its_calls_or_its_grace() {
    bounded(async {
        let age = Duration::from_millis(300);
        // No grace: a call longer than the age finishes, then the connection closes.
        let server = TestServer::start_with(Server::new().max_connection_age(age)).await;
        let (mut send, closed) = raw_connection(server.addr).await;
        let started = Instant::now();
        assert_eq!(raw_call(&mut send, "sleep:800").await.as_deref(), Some("0"));
        closed.await.unwrap();
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(800), "{took:?}");
        // An unused one closes at about the age (±10%).
        let started = Instant::now();
        let (_send, closed) = raw_connection(server.addr).await;
        closed.await.unwrap();
        let took = started.elapsed();
        assert!(
            took >= age.mul_f64(0.85) && took < age * 10,
            "closed after {took:?}"
        );

        // With a grace period, a call still running when it ends is cut.
        let grace = Duration::from_millis(200);
        let server = TestServer::start_with(
            Server::new()
                .max_connection_age(age)
                .max_connection_age_grace(grace),
        )
        .await;
        let (mut send, closed) = raw_connection(server.addr).await;
        let started = Instant::now();
        let status = raw_call(&mut send, "sleep:10000").await;
        assert_ne!(
            status.as_deref(),
            Some("0"),
            "the call outlived the grace period"
        );
        closed.await.unwrap();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "cut after {took:?}");
        // A channel's calls go on, over new connections.
        let client = GrpcDemoClient::new(Channel::lazy(server.addr.to_string()).unwrap());
        for _ in 0..4 {
            let reply = client.simple_method(req("echo:y")).await;
            assert!(reply.is_ok(), "{reply:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
}

#[tokio::test]
async fn past_the_connection_limit_a_new_connection_waits_for_one_to_close() {
    bounded(async {
        let server = TestServer::start_with(Server::new().max_connections(1)).await;
        let (mut first, first_task) = raw_connection(server.addr).await;
        assert_eq!(raw_call(&mut first, "echo:1").await.as_deref(), Some("0"));
        // The second connects (the kernel's backlog) but is not served.
        let (mut second, _second_task) = raw_connection(server.addr).await;
        let waiting =
            tokio::time::timeout(Duration::from_millis(500), raw_call(&mut second, "echo:2")).await;
        assert!(waiting.is_err(), "served past the limit: {waiting:?}");
        // The first goes away: the second is served.
        drop(first);
        first_task.abort();
        assert_eq!(raw_call(&mut second, "echo:2").await.as_deref(), Some("0"));
        // And our client, on a third, waits in turn (with a deadline, DEADLINE_EXCEEDED).
        let client = GrpcDemoClient::new(Channel::lazy(server.addr.to_string()).unwrap());
        let err = client
            .simple_method(
                h2grpc::Request::new(req("echo:3")).with_timeout(Duration::from_millis(300)),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    })
    .await
}

#[tokio::test]
async fn a_graceful_stop_sends_goaway_max_then_ping_then_goaway_last_and_finishes_the_call() {
    use h2grpc_test_support::raw::{self, DATA, END_STREAM, GOAWAY, HEADERS, PING, RawConn};
    bounded(async {
        let server = TestServer::start().await;
        let addr = server.addr;
        let (mut conn, _) = RawConn::handshake(addr).await;
        // A call in flight: stream 1, a handler that sleeps 400 ms.
        conn.send(&raw::request_headers(
            1,
            "/demo.GRPCDemo/SimpleMethod",
            false,
        ))
        .await;
        conn.send(&raw::frame(
            DATA,
            END_STREAM,
            1,
            &lpm::encode(&req("sleep:400")),
        ))
        .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let stopping = tokio::spawn(server.shutdown());

        let last_stream = |f: &raw::Frame| {
            u32::from_be_bytes([f.payload[0], f.payload[1], f.payload[2], f.payload[3]])
                & 0x7fff_ffff
        };
        let first = conn
            .expect_frame("the first GOAWAY", |f| f.kind == GOAWAY)
            .await;
        assert_eq!(last_stream(&first), 0x7fff_ffff, "first GOAWAY: 2^31-1");
        let ping = conn
            .expect_frame("the drain PING", |f| {
                f.kind == PING && f.flags & raw::ACK == 0
            })
            .await;
        // The listener no longer accepts.
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "new connections are refused once draining"
        );
        conn.send(&raw::frame(PING, raw::ACK, 0, &ping.payload))
            .await;
        let second = conn
            .expect_frame("the second GOAWAY", |f| f.kind == GOAWAY)
            .await;
        assert_eq!(
            last_stream(&second),
            1,
            "second GOAWAY: the last stream taken"
        );
        // The call in flight finishes: its response, then its trailers with status 0.
        let frames = conn.frames_until_closed().await;
        let on_stream_1: Vec<_> = frames.iter().filter(|f| f.stream == 1).collect();
        assert!(
            on_stream_1.iter().any(|f| f.kind == DATA),
            "{on_stream_1:?}"
        );
        let trailers = on_stream_1
            .iter()
            .rfind(|f| f.kind == HEADERS)
            .expect("trailers");
        assert!(trailers.flags & END_STREAM != 0);
        stopping.await.unwrap();
    })
    .await
}
